/* Where a ref to something cebroker does not serve goes: the address table (--address, and the
 * cebroker-addresses ConfigMap), else for a Service the DNS name Knative gives it in a cluster, with
 * a uri beside the ref resolved against that address as Knative resolves it (RFC 3986). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"

#define TABLE_NAME     "cebroker-addresses"
#define TABLE_KEY      "addresses"
#define DEFAULT_DOMAIN "cluster.local"

struct addr { /* an address table entry */
	char *kind, *ns, *name, *url;
	struct ceb_loc at;
	bool option; /* from --address: the command line wins over the files */
	size_t seq;
};

struct pending { /* a ref waiting for the table */
	struct ceb_dest *d;
	char *who, *path;
	const char *file;
	const char *ns; /* the namespace of the resource that holds it, for its notes */
};

struct ceb_config_refs {
	const struct ceb_config_opts *opts;
	struct addr *addrs;
	size_t naddrs, capaddrs;
	struct pending *refs;
	size_t nrefs, caprefs;
};

struct ceb_config_refs *ceb_config_refs_new(const struct ceb_config_opts *opts)
{
	struct ceb_config_refs *refs = calloc(1, sizeof(*refs));

	if (refs)
		refs->opts = opts;
	return refs;
}

void ceb_config_refs_free(struct ceb_config_refs *refs)
{
	if (!refs)
		return;
	for (size_t i = 0; i < refs->naddrs; i++) {
		free(refs->addrs[i].kind);
		free(refs->addrs[i].ns);
		free(refs->addrs[i].name);
		free(refs->addrs[i].url);
	}
	for (size_t i = 0; i < refs->nrefs; i++) {
		free(refs->refs[i].who);
		free(refs->refs[i].path);
	}
	free(refs->addrs);
	free(refs->refs);
	free(refs);
}

/* ------------------------------------------------------------------------------------------------
 * The table: "Kind namespace/name = URL", one entry a line.
 */

static bool kind_name(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static char *dupn(struct ceb_config_res *r, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p) {
		ceb_config_oom(r);
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One entry, s[0..len), into the table; errors about r at `at`, under `path`. */
static void read_entry(struct ceb_config_res *r, struct ceb_config_refs *refs, const char *s,
                       size_t len, const struct ceb_loc *at, const char *path, bool option)
{
	const char *end = s + len, *eq = memchr(s, '=', len), *k, *ke, *nsp, *nse, *nm, *nme, *u,
	           *ue, *why;
	char q[80], *url = NULL, *entry = dupn(r, s, len);
	struct addr a = {.at = *at};

	if (!entry)
		return;
	ceb_config_quoted(q, sizeof(q), entry);
	if (!eq)
		goto bad;
	for (k = s; k < eq && is_space(*k); k++)
		;
	for (ke = k; ke < eq && !is_space(*ke); ke++)
		;
	for (nsp = ke; nsp < eq && is_space(*nsp); nsp++)
		;
	for (nme = eq; nme > nsp && is_space(nme[-1]); nme--)
		;
	nse = memchr(nsp, '/', (size_t)(nme - nsp));
	for (u = eq + 1; u < end && is_space(*u); u++)
		;
	for (ue = end; ue > u && is_space(ue[-1]); ue--)
		;
	if (!nse || ke == nsp || !kind_name(k, (size_t)(ke - k)))
		goto bad;
	nm = nse + 1;
	if (!ceb_config_dns_label(nsp, (size_t)(nse - nsp)) ||
	    !ceb_config_dns_label(nm, (size_t)(nme - nm))) {
		ceb_config_err_at(
		        r, at, path,
		        "\"%s\": namespace and name must be DNS labels (lower-case letters, "
		        "digits and '-')",
		        q);
		goto out;
	}
	if (!(url = dupn(r, u, (size_t)(ue - u))))
		goto out;
	if ((why = ceb_config_http_uri_why(url))) {
		char q2[80];

		ceb_config_err_at(r, at, path, "\"%s\": the address \"%s\" %s", q,
		                  ceb_config_quoted(q2, sizeof(q2), url), why);
		goto out;
	}
	if (ceb_config_addressable(k, (size_t)(ke - k), NULL)) {
		ceb_config_err_at(r, at, path,
		                  "\"%s\": a %.*s of this daemon is served at its own ingress, not "
		                  "through the address table",
		                  q, (int)(ke - k), k);
		goto out;
	}
	if (refs->naddrs == refs->capaddrs) {
		size_t cap = refs->capaddrs ? 2 * refs->capaddrs : 16;
		struct addr *p = realloc(refs->addrs, cap * sizeof(*p));

		if (!p) {
			ceb_config_oom(r);
			goto out;
		}
		refs->addrs = p;
		refs->capaddrs = cap;
	}
	a.kind = dupn(r, k, (size_t)(ke - k));
	a.ns = dupn(r, nsp, (size_t)(nse - nsp));
	a.name = dupn(r, nm, (size_t)(nme - nm));
	a.url = url;
	a.option = option;
	a.seq = refs->naddrs;
	url = NULL;
	if (!a.kind || !a.ns || !a.name) {
		free(a.kind);
		free(a.ns);
		free(a.name);
		free(a.url);
		goto out;
	}
	refs->addrs[refs->naddrs++] = a;
	goto out;
bad:
	ceb_config_err_at(
	        r, at, path,
	        "\"%s\" is not an address table entry: write KIND NAMESPACE/NAME=URL, e.g. "
	        "Service default/event-display=http://127.0.0.1:9099",
	        q);
out:
	free(url);
	free(entry);
}

void ceb_config_refs_read_options(struct ceb_config_res *r, struct ceb_config_refs *refs)
{
	const struct ceb_config_opts *o = refs->opts;
	struct ceb_loc at = {r->file, 0, 0};

	for (size_t i = 0; o && i < o->naddresses; i++)
		read_entry(r, refs, o->addresses[i], strlen(o->addresses[i]), &at, NULL, true);
}

bool ceb_config_refs_is_table(const struct ceb_configmap *cm)
{
	return !strcmp(cm->name, TABLE_NAME);
}

void ceb_config_refs_read_table(struct ceb_config_res *r, struct ceb_config_refs *refs,
                                const struct ceb_configmap *cm)
{
	for (size_t i = 0; i < cm->n; i++) {
		const struct ceb_yaml_origin *o = cm->at ? &cm->at[i] : NULL;
		const char *s = cm->values[i], *eol;
		char p[512];
		int line = 0;

		ceb_config_path_key(p, sizeof(p), "data", cm->keys[i]);
		if (strcmp(cm->keys[i], TABLE_KEY)) {
			struct ceb_loc at = {cm->loc.file, o ? o->line : cm->loc.line,
			                     o ? o->col : cm->loc.col};

			ceb_config_err_at(r, &at, p,
			                  "unknown key (" TABLE_NAME " takes " TABLE_KEY ": one "
			                  "\"KIND NAMESPACE/NAME=URL\" a line)");
			continue;
		}
		for (; *s; s = *eol ? eol + 1 : eol, line++) {
			const char *b = s;
			struct ceb_loc at = {cm->loc.file, o ? o->line : cm->loc.line,
			                     o ? o->col : cm->loc.col};

			eol = s + strcspn(s, "\n");
			while (b < eol && is_space(*b))
				b++;
			if (b == eol || *b == '#') /* blank lines and comments */
				continue;
			/* a literal block (|) keeps its lines where they are in the file */
			if (o && o->exact) {
				at.line += line;
				at.col += (int)(b - s);
			}
			read_entry(r, refs, b, (size_t)(eol - b), &at, p, false);
		}
	}
}

/* ------------------------------------------------------------------------------------------------
 * Refs waiting for the table, and their resolution.
 */

void ceb_config_refs_queue(struct ceb_config_res *r, struct ceb_dest *d, const char *path)
{
	struct ceb_config_refs *refs = ceb_config_loader_refs(r->ld);
	struct pending pr = {d, NULL, NULL, r->file, NULL};

	if (refs->nrefs == refs->caprefs) {
		size_t cap = refs->caprefs ? 2 * refs->caprefs : 16;
		struct pending *p = realloc(refs->refs, cap * sizeof(*p));

		if (!p) {
			ceb_config_oom(r);
			return;
		}
		refs->refs = p;
		refs->caprefs = cap;
	}
	pr.who = ceb_config_strdup(r, r->who);
	pr.path = ceb_config_strdup(r, path);
	if (!pr.who || !pr.path) {
		free(pr.who);
		free(pr.path);
		return;
	}
	refs->refs[refs->nrefs++] = pr;
}

static int cmp_addr(const void *a, const void *b)
{
	const struct addr *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	if (!c)
		c = strcmp(x->ns, y->ns);
	if (!c)
		c = strcmp(x->name, y->name);
	if (!c && x->option != y->option) /* --address first: it wins */
		return x->option ? -1 : 1;
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static const struct addr *find_addr(const struct ceb_config_refs *refs, const char *kind,
                                    const char *ns, const char *name)
{
	struct addr key = {
	        .kind = (char *)kind, .ns = (char *)ns, .name = (char *)name, .option = true};
	size_t lo = 0, hi = refs->naddrs;

	while (lo < hi) { /* the first of equal entries (duplicates are errors anyway) */
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_addr(&refs->addrs[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < refs->naddrs && !strcmp(refs->addrs[lo].kind, kind) &&
	    !strcmp(refs->addrs[lo].ns, ns) && !strcmp(refs->addrs[lo].name, name))
		return &refs->addrs[lo];
	return NULL;
}

/* A ref Knative resolves without asking the object for its address: a Kubernetes Service (v1) is
 * http://<name>.<ns>.svc.<domain> (https with CACerts), and a Knative Service publishes that same
 * name as its cluster-local address. */
static bool service_ref(const struct ceb_dest *d)
{
	return !strcmp(d->ref_kind, "Service") &&
	       (!strcmp(d->ref_api, "v1") || !strncmp(d->ref_api, "serving.knative.dev/", 20));
}

void ceb_config_refs_resolve(struct ceb_config_loader *ld, struct ceb_config_refs *refs)
{
	const char *domain = refs->opts && refs->opts->cluster_domain && *refs->opts->cluster_domain
	                             ? refs->opts->cluster_domain
	                             : DEFAULT_DOMAIN;

	if (refs->naddrs > 1)
		qsort(refs->addrs, refs->naddrs, sizeof(*refs->addrs), cmp_addr);
	/* an entry given twice in the files, or twice on the command line, is a mistake; one on the
	 * command line overrides the files' */
	for (size_t i = 1; i < refs->naddrs; i++) {
		const struct addr *a = &refs->addrs[i], *first = &refs->addrs[i - 1];
		struct ceb_config_res r = {.ld = ld, .file = a->at.file};

		if (strcmp(a->kind, first->kind) || strcmp(a->ns, first->ns) ||
		    strcmp(a->name, first->name) || a->option != first->option)
			continue;
		while (first > refs->addrs && first[-1].option == a->option &&
		       !strcmp(first[-1].kind, a->kind) && !strcmp(first[-1].ns, a->ns) &&
		       !strcmp(first[-1].name, a->name))
			first--;
		if (a->option)
			ceb_config_err_at(&r, &a->at, NULL, "%s %s/%s is given twice", a->kind,
			                  a->ns, a->name);
		else
			ceb_config_err_at(&r, &a->at, NULL,
			                  "address table: %s %s/%s is given twice (first at %s:%d)",
			                  a->kind, a->ns, a->name, first->at.file, first->at.line);
	}
	for (size_t i = 0;
	     i < refs->nrefs && !ceb_config_is_oom(&(struct ceb_config_res){.ld = ld}); i++) {
		const struct pending *pr = &refs->refs[i];
		struct ceb_dest *d = pr->d;
		struct ceb_config_res r = {.ld = ld, .file = pr->file};
		const struct addr *a = find_addr(refs, d->ref_kind, d->ref_ns, d->ref_name);
		struct ceb_buf base = CEB_BUF_INIT;
		char *url = NULL, q[80], q2[80], how[300];
		const char *why;

		snprintf(r.who, sizeof(r.who), "%s", pr->who);
		if (a) {
			ceb_buf_puts(&base, a->url);
			if (a->at.line)
				snprintf(how, sizeof(how), "from the address table at %s:%d",
				         a->at.file, a->at.line);
			else
				snprintf(how, sizeof(how), "from --address");
		} else if (service_ref(d)) {
			ceb_buf_printf(&base, "%s://%s.%s.svc.%s",
			               d->ca_certs && *d->ca_certs && !strcmp(d->ref_api, "v1")
			                       ? "https"
			                       : "http",
			               d->ref_name, d->ref_ns, domain);
			snprintf(how, sizeof(how),
			         "its cluster DNS name; outside a cluster give its address with "
			         "--address '%s %s/%s=URL'",
			         d->ref_kind, d->ref_ns, d->ref_name);
		} else {
			ceb_config_err_at(
			        &r, &d->loc, pr->path,
			        "cebroker cannot serve a ref to %s (%s) %s/%s: it runs only its "
			        "own Brokers and KafkaSinks; give the address in the address "
			        "table (--address '%s %s/%s=http://HOST:PORT/' or the " TABLE_NAME
			        " ConfigMap), or use uri:",
			        ceb_config_quoted(q, sizeof(q), d->ref_kind),
			        ceb_config_quoted(q2, sizeof(q2), d->ref_api), d->ref_ns,
			        d->ref_name, d->ref_kind, d->ref_ns, d->ref_name);
			continue;
		}
		if (base.failed) {
			ceb_config_oom(&r);
			ceb_buf_free(&base);
			continue;
		}
		url = d->uri ? ceb_config_uri_resolve(base.p, d->uri) : ceb_buf_steal(&base, NULL);
		ceb_buf_free(&base);
		if (!url) {
			ceb_config_oom(&r);
			continue;
		}
		if ((why = ceb_config_http_uri_why(url))) {
			ceb_config_err_at(&r, &d->loc, pr->path,
			                  "%s %s/%s resolves to \"%s\", which %s", d->ref_kind,
			                  d->ref_ns, d->ref_name,
			                  ceb_config_quoted(q, sizeof(q), url), why);
			free(url);
			continue;
		}
		free(d->uri);
		d->uri = url;
		ceb_config_note_at(&r, false, &d->loc, pr->path, "%s %s/%s is %s (%s)", d->ref_kind,
		                   d->ref_ns, d->ref_name, url, how);
	}
}

/* ------------------------------------------------------------------------------------------------
 * RFC 3986, section 5.2: a reference resolved against a base URI, as Go's URL.ResolveReference does
 * for Knative.
 */

struct uri_parts { /* pointers into a string; NULL for an absent component */
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_n, auth_n, path_n, query_n, frag_n;
};

static void uri_split(const char *s, struct uri_parts *u)
{
	const char *p = s, *e;

	memset(u, 0, sizeof(*u));
	e = s + strcspn(s, ":/?#");
	if (*e == ':' && e > s) {
		u->scheme = s;
		u->scheme_n = (size_t)(e - s);
		p = e + 1;
	}
	if (p[0] == '/' && p[1] == '/') {
		p += 2;
		u->auth = p;
		u->auth_n = strcspn(p, "/?#");
		p += u->auth_n;
	}
	u->path = p;
	u->path_n = strcspn(p, "?#");
	p += u->path_n;
	if (*p == '?') {
		u->query = ++p;
		u->query_n = strcspn(p, "#");
		p += u->query_n;
	}
	if (*p == '#') {
		u->frag = ++p;
		u->frag_n = strlen(p);
	}
}

/* Append n bytes (none: nothing, whatever s is). */
static void app(struct ceb_buf *out, const char *s, size_t n)
{
	if (n)
		ceb_buf_append(out, s, n);
}

/* remove_dot_segments (5.2.4) of in[0..n) appended to out. */
static void remove_dots(struct ceb_buf *out, const char *in, size_t n)
{
	size_t start = out->len;
	const char *p = in, *end = in + n;

	while (p < end) {
		size_t rest = (size_t)(end - p);

		if (rest >= 3 && !memcmp(p, "../", 3)) {
			p += 3;
		} else if (rest >= 2 && !memcmp(p, "./", 2)) {
			p += 2;
		} else if ((rest >= 3 && !memcmp(p, "/./", 3)) ||
		           (rest == 2 && !memcmp(p, "/.", 2))) {
			p += 2;
			if (rest == 2) {
				ceb_buf_putc(out, '/');
				break;
			}
		} else if ((rest >= 4 && !memcmp(p, "/../", 4)) ||
		           (rest == 3 && !memcmp(p, "/..", 3))) {
			p += 3;
			/* drop the last segment of the output */
			while (out->len > start && out->p[out->len - 1] != '/')
				out->len--;
			if (out->len > start)
				out->len--;
			if (rest == 3) {
				ceb_buf_putc(out, '/');
				break;
			}
		} else if ((rest == 1 && *p == '.') || (rest == 2 && !memcmp(p, "..", 2))) {
			break;
		} else {
			/* the first segment, with its leading '/', up to the next '/' */
			const char *seg = p + (*p == '/');

			while (seg < end && *seg != '/')
				seg++;
			ceb_buf_append(out, p, (size_t)(seg - p));
			p = seg;
		}
	}
	if (out->p)
		out->p[out->len] = '\0';
}

char *ceb_config_uri_resolve(const char *base, const char *ref)
{
	struct uri_parts b, r;
	struct ceb_buf out = CEB_BUF_INIT;

	uri_split(base, &b);
	uri_split(ref, &r);
	if (r.scheme) /* absolute: itself */
		return strdup(ref);
	app(&out, b.scheme, b.scheme_n);
	ceb_buf_putc(&out, ':');
	if (r.auth) {
		ceb_buf_puts(&out, "//");
		app(&out, r.auth, r.auth_n);
		remove_dots(&out, r.path, r.path_n);
		if (r.query) {
			ceb_buf_putc(&out, '?');
			app(&out, r.query, r.query_n);
		}
	} else {
		if (b.auth) {
			ceb_buf_puts(&out, "//");
			app(&out, b.auth, b.auth_n);
		}
		if (r.path_n == 0) {
			app(&out, b.path, b.path_n);
			if (r.query || b.query) {
				ceb_buf_putc(&out, '?');
				if (r.query)
					app(&out, r.query, r.query_n);
				else
					app(&out, b.query, b.query_n);
			}
		} else {
			if (r.path[0] == '/') {
				remove_dots(&out, r.path, r.path_n);
			} else {
				/* merge (5.2.3): the base path up to its last '/', or "/" */
				struct ceb_buf merged = CEB_BUF_INIT;
				size_t keep = b.path_n;

				while (keep && b.path[keep - 1] != '/')
					keep--;
				if (b.auth && b.path_n == 0)
					ceb_buf_putc(&merged, '/');
				else
					app(&merged, b.path, keep);
				app(&merged, r.path, r.path_n);
				if (merged.failed)
					out.failed = true;
				else if (merged.p)
					remove_dots(&out, merged.p, merged.len);
				ceb_buf_free(&merged);
			}
			if (r.query) {
				ceb_buf_putc(&out, '?');
				app(&out, r.query, r.query_n);
			}
		}
	}
	if (r.frag) {
		ceb_buf_putc(&out, '#');
		app(&out, r.frag, r.frag_n);
	}
	if (out.failed) {
		ceb_buf_free(&out);
		return NULL;
	}
	return ceb_buf_steal(&out, NULL);
}
