/* The YAML resource loader: Knative Broker, Trigger and ConfigMap manifests, read with libfyaml's event
 * parser into a small located tree, checked against a table of kinds; every error as file:line:col. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/error.h"

#define MAX_FILE_SIZE (16u << 20)
#define MAX_DEPTH 64          /* nesting of YAML collections; real manifests stay under 10 */
#define PRESCAN_DEPTH 1000    /* see prescan() */
#define CEB_STR_(x) #x
#define CEB_STR(x) CEB_STR_(x)
#define MAX_DOC_NODES 1000000 /* per document, so that a 16 MiB file cannot build a huge tree */
#define MAX_ERRORS 1000       /* a user fixes the first ones; beyond this we only burn memory */
#define DEFAULT_BROKER_CLASS "MTChannelBasedBroker"
#define EVENTING_V1 "eventing.knative.dev/v1"

/* ------------------------------------------------------------------------------------------------
 * A located YAML tree, one document at a time. Nodes and strings live in an arena freed per document.
 */

enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };

struct ynode {
	enum ynode_type type;
	bool plain;     /* plain scalar: may be null; quoted and block scalars are always strings */
	int line, col;  /* 1-based */
	size_t n;       /* scalar: bytes; map: pairs; sequence: items */
	char *str;      /* scalar text, NUL-terminated */
	struct ynode **kids; /* map: key, value, key, value...; sequence: items */
};

struct chunk {
	struct chunk *next;
	size_t cap, used;
	max_align_t data[];
};

struct arena {
	struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	struct chunk *c = a->head;
	size_t cap;
	void *p;

	n = (n + align - 1) / align * align;
	if (!c || c->cap - c->used < n) {
		cap = n > 65536 ? n : 65536;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(struct arena *a)
{
	struct chunk *c, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

/* YAML 1.2 core schema nulls: what Kubernetes treats as an absent field. */
static bool is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->type != YN_SCALAR || !n->plain)
		return false;
	return n->n == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
	       !strcmp(n->str, "NULL");
}

static const char *type_name(const struct ynode *n)
{
	if (is_null(n))
		return "null";
	switch (n->type) {
	case YN_MAP: return "a mapping";
	case YN_SEQ: return "a list";
	default: return "a string";
	}
}

/* ------------------------------------------------------------------------------------------------
 * The loader state and error reporting.
 */

struct entry {                 /* a loaded resource, for duplicates and references */
	const char *kind, *ns, *name;
	struct ceb_loc loc;
	void *obj;
	size_t seq;
};

struct check {                 /* a reference to resolve once every file is loaded */
	const char *kind;      /* what must exist: "Broker" or "ConfigMap" */
	char *ns, *name;
	char *who, *path;      /* for the message */
	struct ceb_loc loc;
	const struct ceb_configmap **cm_out;
	const struct ceb_broker_cfg **broker_out;
};

/* Errors are kept until the end and written sorted by file, line and column: the checks run in
 * passes (fields, then references) but a user reads a file from the top. */
struct errrec {
	size_t file;           /* index in cfg->files */
	int line, col;
	size_t seq;
	char *text;
};

struct loader {
	struct ceb_config *cfg;
	struct ceb_config_errors *errs;
	struct errrec *recs;
	size_t nerr, caperr;
	bool enomem, stop;
	struct ceb_configmap **cm_tail;
	struct ceb_broker_cfg **broker_tail;
	struct ceb_trigger_cfg **trigger_tail;
	struct entry *entries;
	size_t nentries, capentries;
	struct check *checks;
	size_t nchecks, capchecks;
	/* the document being built */
	struct arena arena;
	struct ynode **pend;
	size_t npend, cappend;
	size_t nodes;
};

/* The resource being checked: its name for messages and its namespace for defaults. */
struct res {
	struct loader *ld;
	const char *file;
	char who[256];
	const char *ns;
	size_t nerr;
};

static void verr(struct loader *ld, const char *file, int line, int col, const char *who,
		 const char *path, const char *fmt, va_list ap)
{
	struct ceb_buf b = CEB_BUF_INIT;
	struct errrec *rec;
	size_t fi;

	if (ld->stop || ld->enomem)
		return;
	if (ld->nerr == ld->caperr) {
		size_t cap = ld->caperr ? 2 * ld->caperr : 16;

		rec = realloc(ld->recs, cap * sizeof(*rec));
		if (!rec) {
			ld->enomem = true;
			return;
		}
		ld->recs = rec;
		ld->caperr = cap;
	}
	/* every file name was added to cfg->files before anything is reported about it */
	for (fi = 0; fi < ld->cfg->nfiles && ld->cfg->files[fi] != file; fi++)
		;
	ceb_buf_puts(&b, file);
	if (line > 0)
		ceb_buf_printf(&b, ":%d:%d", line, col);
	ceb_buf_puts(&b, ": ");
	if (ld->nerr + 1 == MAX_ERRORS) {
		ceb_buf_printf(&b, "too many errors, stopping after %d", MAX_ERRORS);
		ld->stop = true;
	} else {
		if (who)
			ceb_buf_printf(&b, "%s: ", who);
		if (path && *path)
			ceb_buf_printf(&b, "%s: ", path);
		ceb_buf_vprintf(&b, fmt, ap);
	}
	/* one error, one line: a key or value with a newline in it must not split it */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.p[i] < 0x20 || b.p[i] == 0x7f)
			b.p[i] = '?';
	ceb_buf_putc(&b, '\n');
	if (b.failed) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	ld->recs[ld->nerr] = (struct errrec){ fi, line, col, ld->nerr, b.p };
	ld->nerr++;
}

static int cmp_errrec(const void *a, const void *b)
{
	const struct errrec *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Write the errors, sorted, to the caller's buffer. */
static void flush_errors(struct loader *ld)
{
	if (ld->nerr > 1)
		qsort(ld->recs, ld->nerr, sizeof(*ld->recs), cmp_errrec);
	for (size_t i = 0; i < ld->nerr; i++) {
		if (ceb_buf_puts(&ld->errs->text, ld->recs[i].text) < 0)
			ld->enomem = true;
		free(ld->recs[i].text);
	}
	ld->errs->count += ld->nerr;
	free(ld->recs);
	ld->recs = NULL;
}

__attribute__((format(printf, 5, 6)))
static void file_err(struct loader *ld, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(ld, file, line, col, NULL, NULL, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 4, 5)))
static void r_err(struct res *r, const struct ynode *at, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(r->ld, r->file, at->line, at->col, r->who, path, fmt, ap);
	va_end(ap);
	r->nerr++;
}

static char *xstrdup(struct loader *ld, const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		ld->enomem = true;
	return p;
}

/* A user's value inside a message: cut short, control characters shown as '?'. */
static const char *quoted(char *buf, size_t sz, const char *s)
{
	size_t i, j = 0;

	for (i = 0; s[i] && j + 4 < sz; i++)
		buf[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i] && sz > 4) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

/* "base.key", or base["key"] when the key is not a plain identifier (annotation names, say). */
static const char *path_key(char *buf, size_t sz, const char *base, const char *key)
{
	bool ident = *key != '\0';

	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			ident = false;
	if (!*base)
		snprintf(buf, sz, ident ? "%s" : "[\"%s\"]", key);
	else
		snprintf(buf, sz, ident ? "%s.%s" : "%s[\"%s\"]", base, key);
	return buf;
}

static const char *path_idx(char *buf, size_t sz, const char *base, size_t i)
{
	snprintf(buf, sz, "%s[%zu]", base, i);
	return buf;
}

/* ------------------------------------------------------------------------------------------------
 * Typed access to the tree. Each reports a wrong type at the node and returns false.
 */

static bool want_map(struct res *r, const struct ynode *n, const char *path)
{
	if (n->type == YN_MAP)
		return true;
	r_err(r, n, path, "expected a mapping, got %s", type_name(n));
	return false;
}

static bool want_seq(struct res *r, const struct ynode *n, const char *path)
{
	if (n->type == YN_SEQ)
		return true;
	r_err(r, n, path, "expected a list, got %s", type_name(n));
	return false;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->kids[2 * i];

		if (k->type == YN_SCALAR && !strcmp(k->str, key))
			return map->kids[2 * i + 1];
	}
	return NULL;
}

/* The text of a present scalar, else NULL (no report: for names in messages). */
static const char *peek_str(const struct ynode *n)
{
	return n && n->type == YN_SCALAR && !is_null(n) ? n->str : NULL;
}

/* Check a mapping against its known fields: unknown, duplicate and non-string keys are reported (and
 * the caller goes on with the rest). vals[i] gets the value of names[i], or NULL when absent or null;
 * keys[i] (optional) its key. False only when the node is not a mapping. */
static bool get_fields(struct res *r, const struct ynode *map, const char *path,
		       const char *const *names, const struct ynode **vals, const struct ynode **keys)
{
	const struct ynode *seen[16];
	char p[512], known[256];
	size_t nn = 0, len = 0;

	if (!want_map(r, map, path))
		return false;
	for (nn = 0; names[nn] && nn < 16; nn++) {
		vals[nn] = NULL;
		seen[nn] = NULL;
		if (keys)
			keys[nn] = NULL;
	}
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->kids[2 * i], *v = map->kids[2 * i + 1];
		size_t j;

		if (k->type != YN_SCALAR) {
			r_err(r, k, path, "keys must be strings, got %s", type_name(k));
			continue;
		}
		for (j = 0; j < nn && strcmp(names[j], k->str); j++)
			;
		path_key(p, sizeof(p), path, k->str);
		if (j == nn) {
			known[0] = '\0';
			len = 0;
			for (size_t m = 0; m < nn && len < sizeof(known); m++)
				len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
							m ? ", " : "", names[m]);
			r_err(r, k, p, "unknown field (%s takes %s)", *path ? path : "a resource", known);
		} else if (seen[j]) {
			r_err(r, k, p, "duplicate key (first at line %d)", seen[j]->line);
		} else {
			seen[j] = k;
			vals[j] = is_null(v) ? NULL : v;
			if (keys)
				keys[j] = k;
		}
	}
	return true;
}

/* A string field; node NULL (absent or null) leaves *out NULL. Any scalar is taken as its text. */
static bool get_str(struct res *r, const struct ynode *n, const char *path, char **out)
{
	*out = NULL;
	if (!n)
		return true;
	if (n->type != YN_SCALAR) {
		r_err(r, n, path, "expected a string, got %s", type_name(n));
		return false;
	}
	*out = xstrdup(r->ld, n->str);
	return *out != NULL;
}

static bool get_int(struct res *r, const struct ynode *n, const char *path, long min, long max, int *out)
{
	const char *s = n->str;
	char *end;
	long v;

	if (n->type != YN_SCALAR || !n->plain) {
		r_err(r, n, path, "expected an integer, got %s", type_name(n));
		return false;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+')) {
		char q[80];

		r_err(r, n, path, "expected an integer, got \"%s\"", quoted(q, sizeof(q), s));
		return false;
	}
	if (v < min || v > max) {
		r_err(r, n, path, "%ld is out of range (%ld to %ld)", v, min, max);
		return false;
	}
	*out = (int)v;
	return true;
}

struct keyref {
	const char *key;
	size_t idx;
};

static int cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A map of strings (labels, annotations, ConfigMap data, filter attributes). Values may be any
 * scalar (10 is "10"), null is "". Duplicate keys are reported in document order. */
static bool get_strmap(struct res *r, const struct ynode *map, const char *path, char ***keys_out,
		       char ***vals_out, size_t *n_out)
{
	struct keyref *sorted = NULL;
	size_t *first = NULL; /* per pair: the index of the first pair with its key */
	char **keys = NULL, **vals = NULL, p[512];
	bool ok = false, bad = false;
	size_t n = 0;

	*keys_out = *vals_out = NULL;
	*n_out = 0;
	if (!want_map(r, map, path))
		return false;
	if (map->n) {
		sorted = malloc(map->n * sizeof(*sorted));
		first = malloc(map->n * sizeof(*first));
		keys = calloc(map->n, sizeof(*keys));
		vals = calloc(map->n, sizeof(*vals));
		if (!sorted || !first || !keys || !vals) {
			r->ld->enomem = true;
			goto out;
		}
	}
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->kids[2 * i];

		if (k->type != YN_SCALAR) {
			r_err(r, k, path, "keys must be strings, got %s", type_name(k));
			bad = true;
		}
	}
	if (bad)
		goto out;
	/* Duplicates: sort the key nodes (O(n log n) even for a hostile map), then flag repeats. */
	for (size_t i = 0; i < map->n; i++) {
		sorted[i] = (struct keyref){ map->kids[2 * i]->str, i };
		first[i] = i;
	}
	if (map->n > 1)
		qsort(sorted, map->n, sizeof(*sorted), cmp_keyref);
	for (size_t i = 1; i < map->n; i++)
		if (!strcmp(sorted[i].key, sorted[i - 1].key))
			first[sorted[i].idx] = first[sorted[i - 1].idx];
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->kids[2 * i], *v = map->kids[2 * i + 1];

		path_key(p, sizeof(p), path, k->str);
		if (first[i] != i) {
			r_err(r, k, p, "duplicate key (first at line %d)", map->kids[2 * first[i]]->line);
			bad = true;
			continue;
		}
		if (v->type != YN_SCALAR) {
			r_err(r, v, p, "expected a string, got %s", type_name(v));
			bad = true;
			continue;
		}
		keys[n] = xstrdup(r->ld, k->str);
		vals[n] = xstrdup(r->ld, is_null(v) ? "" : v->str);
		n++;
		if (!keys[n - 1] || !vals[n - 1])
			goto out;
	}
	if (bad)
		goto out;
	*keys_out = keys;
	*vals_out = vals;
	*n_out = n;
	keys = vals = NULL;
	ok = true;
out:
	free_strv(keys, n);
	free_strv(vals, n);
	free(sorted);
	free(first);
	return ok;
}

/* ------------------------------------------------------------------------------------------------
 * Values: names, URIs, durations.
 */

/* A DNS-1123 label, as Kubernetes requires of most names: what the ingress path /ns/name carries. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* An absolute http or https URI with a host (and a numeric port if any): what libcurl will POST to. */
static bool http_uri(const char *s, const char **why)
{
	const char *p, *auth, *end, *host, *host_end, *colon = NULL;

	*why = "must be an absolute http:// or https:// URI";
	if (!strncasecmp(s, "http://", 7))
		auth = s + 7;
	else if (!strncasecmp(s, "https://", 8))
		auth = s + 8;
	else
		return false;
	for (p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			*why = "must not contain spaces or control characters";
			return false;
		}
	end = auth + strcspn(auth, "/?#");
	host = auth;
	for (p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end || host_end == host + 1) {
			*why = "has a malformed IPv6 host";
			return false;
		}
		host_end++;
		if (host_end < end && *host_end != ':') {
			*why = "has a malformed IPv6 host";
			return false;
		}
		colon = host_end < end ? host_end : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		host_end = colon ? colon : end;
	}
	if (host_end == host) {
		*why = "has no host";
		return false;
	}
	if (colon) {
		long port = 0;

		if (colon + 1 == end || end - colon > 6) {
			*why = "has an invalid port";
			return false;
		}
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9') {
				*why = "has an invalid port";
				return false;
			}
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535) {
			*why = "has an invalid port";
			return false;
		}
	}
	return true;
}

/* ISO 8601 durations as Knative's DeliverySpec takes them. Years and months have no fixed length, so
 * they are refused rather than guessed; a fraction may end any number (PT0.5S, PT1.5H). */
static int duration_parse(const char *s, uint64_t *ms, const char **why)
{
	static const char units[] = "WDHMS";
	static const uint64_t unit_ms[] = { 604800000ull, 86400000ull, 3600000ull, 60000ull, 1000ull };
	const uint64_t max = (uint64_t)INT64_MAX;
	const char *p = s;
	bool in_time = false, any = false;
	int last = -1;
	uint64_t total = 0;

	*why = "not an ISO 8601 duration (e.g. PT10S, PT0.5S, PT1M30S, P1D)";
	if (*p == '-') {
		*why = "negative durations are not allowed";
		return CEB_EINVAL;
	}
	if (*p++ != 'P')
		return CEB_EINVAL;
	while (*p) {
		uint64_t ip = 0, frac = 0, scale = 1, v;
		int u;

		if (*p == 'T') {
			if (in_time || !p[1])
				return CEB_EINVAL;
			in_time = true;
			p++;
			continue;
		}
		if (*p < '0' || *p > '9')
			return CEB_EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (ip > max / 10) {
				*why = "duration too large";
				return CEB_EINVAL;
			}
			ip = ip * 10 + (uint64_t)(*p - '0');
		}
		if (*p == '.' || *p == ',') {
			p++;
			if (*p < '0' || *p > '9')
				return CEB_EINVAL;
			for (; *p >= '0' && *p <= '9'; p++)
				if (scale < 1000000000ull) { /* finer than a nanosecond of a week is noise */
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
		}
		if (!in_time && (*p == 'Y' || *p == 'M')) {
			*why = "years and months are not supported (their length varies); use days, e.g. P30D";
			return CEB_EINVAL;
		}
		if (!*p || !strchr(units, *p))
			return CEB_EINVAL;
		u = (int)(strchr(units, *p) - units);
		if ((in_time && u < 2) || (!in_time && u >= 2)) {
			*why = in_time ? "days and weeks go before T (e.g. P1DT2H)"
				       : "hours, minutes and seconds go after T (e.g. PT2H, PT30S)";
			return CEB_EINVAL;
		}
		if (u <= last) {
			*why = "units must appear once each, largest first (e.g. P1DT2H3M4.5S)";
			return CEB_EINVAL;
		}
		last = u;
		if (ip > max / unit_ms[u]) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		v = ip * unit_ms[u] + frac * unit_ms[u] / scale;
		if (v > max - total) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		total += v;
		any = true;
		p++;
	}
	if (!any)
		return CEB_EINVAL;
	*ms = total;
	return 0;
}

int ceb_duration_parse(const char *s, uint64_t *ms)
{
	const char *why;

	if (!s || !ms)
		return CEB_EINVAL;
	return duration_parse(s, ms, &why);
}

static bool get_duration(struct res *r, const struct ynode *n, const char *path, uint64_t *ms)
{
	const char *why;
	char q[80];

	if (n->type != YN_SCALAR) {
		r_err(r, n, path, "expected an ISO 8601 duration (e.g. PT10S), got %s", type_name(n));
		return false;
	}
	if (duration_parse(n->str, ms, &why) < 0) {
		r_err(r, n, path, "invalid duration \"%s\": %s", quoted(q, sizeof(q), n->str), why);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------------------------------
 * References, destinations and delivery.
 */

static void check_free(struct check *c)
{
	free(c->ns);
	free(c->name);
	free(c->who);
	free(c->path);
}

/* Remember that kind ns/name must exist; resolved once every file is loaded. */
static void add_check(struct res *r, const char *kind, const char *ns, const char *name,
		      const struct ynode *at, const char *path, const struct ceb_configmap **cm_out,
		      const struct ceb_broker_cfg **broker_out)
{
	struct loader *ld = r->ld;
	struct check c = { .kind = kind, .cm_out = cm_out, .broker_out = broker_out };

	if (ld->nchecks == ld->capchecks) {
		size_t cap = ld->capchecks ? 2 * ld->capchecks : 16;
		struct check *p = realloc(ld->checks, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->checks = p;
		ld->capchecks = cap;
	}
	c.ns = xstrdup(ld, ns);
	c.name = xstrdup(ld, name);
	c.who = xstrdup(ld, r->who);
	c.path = xstrdup(ld, path);
	c.loc = (struct ceb_loc){ r->file, at->line, at->col };
	if (!c.ns || !c.name || !c.who || !c.path) {
		check_free(&c);
		return;
	}
	ld->checks[ld->nchecks++] = c;
}

static void dest_free(struct ceb_dest *d)
{
	free(d->uri);
	free(d->ref_kind);
	free(d->ref_api);
	free(d->ref_ns);
	free(d->ref_name);
	free(d->ca_certs);
	free(d->audience);
	memset(d, 0, sizeof(*d));
}

static bool dest_copy(struct loader *ld, struct ceb_dest *dst, const struct ceb_dest *src)
{
	*dst = (struct ceb_dest){ .loc = src->loc };
	dst->uri = xstrdup(ld, src->uri);
	dst->ref_kind = xstrdup(ld, src->ref_kind);
	dst->ref_api = xstrdup(ld, src->ref_api);
	dst->ref_ns = xstrdup(ld, src->ref_ns);
	dst->ref_name = xstrdup(ld, src->ref_name);
	dst->ca_certs = xstrdup(ld, src->ca_certs);
	dst->audience = xstrdup(ld, src->audience);
	if (ld->enomem) {
		dest_free(dst);
		return false;
	}
	return true;
}

/* A Knative Destination: exactly one of uri or ref. cebroker resolves refs only to what it serves. */
static bool parse_dest(struct res *r, const struct ynode *n, const char *path, struct ceb_dest *d)
{
	static const char *const fields[] = { "uri", "ref", "CACerts", "audience", NULL };
	static const char *const ref_fields[] = { "apiVersion", "kind", "name", "namespace", NULL };
	const struct ynode *v[4], *rv[4];
	char p[512], q[80];
	const char *why;
	size_t nerr = r->nerr;

	memset(d, 0, sizeof(*d));
	d->loc = (struct ceb_loc){ r->file, n->line, n->col };
	if (!get_fields(r, n, path, fields, v, NULL))
		return false;
	get_str(r, v[2], path_key(p, sizeof(p), path, "CACerts"), &d->ca_certs);
	get_str(r, v[3], path_key(p, sizeof(p), path, "audience"), &d->audience);
	if (v[0] && v[1]) {
		r_err(r, n, path, "give either uri or ref, not both");
		goto out;
	}
	if (!v[0] && !v[1]) {
		r_err(r, n, path, "needs a uri (or a ref to a Broker)");
		goto out;
	}
	if (v[0]) {
		path_key(p, sizeof(p), path, "uri");
		d->loc = (struct ceb_loc){ r->file, v[0]->line, v[0]->col };
		if (!get_str(r, v[0], p, &d->uri))
			goto out;
		if (!http_uri(d->uri, &why))
			r_err(r, v[0], p, "\"%s\" %s", quoted(q, sizeof(q), d->uri), why);
		goto out;
	}
	path_key(p, sizeof(p), path, "ref");
	d->loc = (struct ceb_loc){ r->file, v[1]->line, v[1]->col };
	if (!get_fields(r, v[1], p, ref_fields, rv, NULL))
		goto out;
	for (int i = 0; i < 3; i++) {
		char fp[512];

		if (!rv[i])
			r_err(r, v[1], path_key(fp, sizeof(fp), p, ref_fields[i]), "required field missing");
	}
	if (r->nerr != nerr)
		goto out;
	{
		char fp[512];

		if (!get_str(r, rv[0], path_key(fp, sizeof(fp), p, "apiVersion"), &d->ref_api) ||
		    !get_str(r, rv[1], path_key(fp, sizeof(fp), p, "kind"), &d->ref_kind) ||
		    !get_str(r, rv[2], path_key(fp, sizeof(fp), p, "name"), &d->ref_name) ||
		    !get_str(r, rv[3], path_key(fp, sizeof(fp), p, "namespace"), &d->ref_ns))
			goto out;
	}
	if (!d->ref_ns)
		d->ref_ns = xstrdup(r->ld, r->ns);
	if (!d->ref_ns)
		goto out;
	if (strcmp(d->ref_kind, "Broker") || strcmp(d->ref_api, EVENTING_V1)) {
		char q2[80];

		r_err(r, v[1], p,
		      "cebroker cannot serve a ref to %s (%s): without Kubernetes it resolves only its own "
		      "Brokers; give the address as uri: instead (e.g. uri: http://127.0.0.1:8081/)",
		      quoted(q, sizeof(q), d->ref_kind), quoted(q2, sizeof(q2), d->ref_api));
		goto out;
	}
	add_check(r, "Broker", d->ref_ns, d->ref_name, v[1], p, NULL, NULL);
out:
	return r->nerr == nerr && !r->ld->enomem;
}

static void delivery_init(struct ceb_delivery *dl)
{
	memset(dl, 0, sizeof(*dl));
	dl->backoff_policy = CEB_BACKOFF_EXPONENTIAL;
	dl->retry_after_max_ms = -1;
	dl->format = CEB_FORMAT_BINARY;
}

static void delivery_free(struct ceb_delivery *dl)
{
	if (dl->has_dls)
		dest_free(&dl->dls);
	delivery_init(dl);
}

static bool delivery_copy(struct loader *ld, struct ceb_delivery *dst, const struct ceb_delivery *src)
{
	*dst = *src;
	if (src->has_dls && !dest_copy(ld, &dst->dls, &src->dls)) {
		delivery_init(dst);
		return false;
	}
	return true;
}

/* Knative's DeliverySpec. */
static void parse_delivery(struct res *r, const struct ynode *n, const char *path, struct ceb_delivery *dl)
{
	static const char *const fields[] = { "deadLetterSink", "retry", "backoffPolicy", "backoffDelay",
					      "timeout", "retryAfterMax", "format", NULL };
	const struct ynode *v[7];
	char p[512], *s = NULL, q[80];
	uint64_t ms;

	if (!get_fields(r, n, path, fields, v, NULL))
		return;
	for (int i = 0; i < 7; i++)
		if (v[i])
			dl->set = true;
	if (v[0]) {
		dl->has_dls = true;
		parse_dest(r, v[0], path_key(p, sizeof(p), path, "deadLetterSink"), &dl->dls);
	}
	if (v[1])
		get_int(r, v[1], path_key(p, sizeof(p), path, "retry"), 0, INT32_MAX, &dl->retry);
	if (v[2] && get_str(r, v[2], path_key(p, sizeof(p), path, "backoffPolicy"), &s)) {
		if (!strcmp(s, "linear"))
			dl->backoff_policy = CEB_BACKOFF_LINEAR;
		else if (!strcmp(s, "exponential"))
			dl->backoff_policy = CEB_BACKOFF_EXPONENTIAL;
		else
			r_err(r, v[2], p, "\"%s\" is not a backoff policy (linear or exponential)",
			      quoted(q, sizeof(q), s));
	}
	free(s);
	s = NULL;
	if (v[3] && get_duration(r, v[3], path_key(p, sizeof(p), path, "backoffDelay"), &ms))
		dl->backoff_delay_ms = ms;
	if (v[4] && get_duration(r, v[4], path_key(p, sizeof(p), path, "timeout"), &ms)) {
		if (ms == 0)
			r_err(r, v[4], p, "must be greater than zero");
		dl->timeout_ms = ms;
	}
	if (v[5] && get_duration(r, v[5], path_key(p, sizeof(p), path, "retryAfterMax"), &ms))
		dl->retry_after_max_ms = (int64_t)ms;
	if (v[6] && get_str(r, v[6], path_key(p, sizeof(p), path, "format"), &s)) {
		if (!strcmp(s, "json"))
			dl->format = CEB_FORMAT_JSON;
		else if (!strcmp(s, "binary"))
			dl->format = CEB_FORMAT_BINARY;
		else
			r_err(r, v[6], p, "\"%s\" is not a format (json or binary)", quoted(q, sizeof(q), s));
	}
	free(s);
}

/* ------------------------------------------------------------------------------------------------
 * Trigger filters: filter.attributes and the Subscriptions API dialects, compiled with filters/.
 */

/* The filter module prefixes its messages with the dialect ("exact: ..."), which our path already
 * names: drop it so as not to say it twice. */
static const char *filter_reason(const char *path, const char *errbuf, int rc)
{
	const char *sep = strstr(errbuf, ": ");
	size_t plen = strlen(path), k;

	if (!*errbuf)
		return ceb_strerror(rc);
	if (!sep)
		return errbuf;
	k = (size_t)(sep - errbuf);
	if (k <= plen && !memcmp(path + plen - k, errbuf, k) && (k == plen || path[plen - k - 1] == '.'))
		return sep + 2;
	return errbuf;
}

static struct ceb_filter *filter_true(struct res *r)
{
	struct ceb_filter *flt = ceb_filter_true();

	if (!flt)
		r->ld->enomem = true;
	return flt;
}

static struct ceb_filter *parse_attr_filter(struct res *r, const struct ynode *n, const char *path,
					    enum ceb_filter_kind kind)
{
	struct ceb_filter *flt = NULL;
	char **keys, **vals, errbuf[256] = "";
	size_t cnt;
	int rc;

	if (!get_strmap(r, n, path, &keys, &vals, &cnt))
		return NULL;
	if (cnt == 0 && kind == CEB_FILTER_LEGACY) {
		flt = filter_true(r); /* Knative: no attributes, no constraint */
		goto out;
	}
	if (cnt == 0) {
		r_err(r, n, path, "needs at least one attribute");
		goto out;
	}
	rc = ceb_filter_attrs(kind, cnt, (const char *const *)keys, (const char *const *)vals, &flt,
			      errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		r->ld->enomem = true;
	else if (rc < 0)
		r_err(r, n, path, "%s", filter_reason(path, errbuf, rc));
	if (rc < 0)
		flt = NULL;
out:
	free_strv(keys, cnt);
	free_strv(vals, cnt);
	return flt;
}

static struct ceb_filter *parse_filter_obj(struct res *r, const struct ynode *n, const char *path);

/* all / any: a list of filter objects. An empty list constrains nothing, as in Knative. */
static struct ceb_filter *parse_filter_list(struct res *r, const struct ynode *n, const char *path,
					    enum ceb_filter_kind kind)
{
	struct ceb_filter **kids = NULL, *flt = NULL;
	char p[512], errbuf[256] = "";
	size_t cnt = 0;
	bool bad = false;
	int rc;

	if (!want_seq(r, n, path))
		return NULL;
	if (n->n == 0)
		return filter_true(r);
	kids = calloc(n->n, sizeof(*kids));
	if (!kids) {
		r->ld->enomem = true;
		return NULL;
	}
	for (size_t i = 0; i < n->n; i++) {
		kids[cnt] = parse_filter_obj(r, n->kids[i], path_idx(p, sizeof(p), path, i));
		if (kids[cnt])
			cnt++;
		else
			bad = true;
	}
	if (bad || r->ld->enomem) {
		for (size_t i = 0; i < cnt; i++)
			ceb_filter_free(kids[i]);
		goto out;
	}
	if (cnt == 1 && kind == CEB_FILTER_ALL) {
		flt = kids[0];
		goto out;
	}
	rc = ceb_filter_group(kind, kids, cnt, &flt, errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		r->ld->enomem = true;
	else if (rc < 0)
		r_err(r, n, path, "%s", filter_reason(path, errbuf, rc));
	if (rc < 0)
		flt = NULL;
out:
	free(kids);
	return flt;
}

static struct ceb_filter *parse_cesql(struct res *r, const struct ynode *n, const char *path)
{
	struct ceb_filter *flt = NULL;
	char errbuf[256] = "";
	int rc, col = 0;

	if (n->type != YN_SCALAR) {
		r_err(r, n, path, "expected a CESQL expression string, got %s", type_name(n));
		return NULL;
	}
	rc = ceb_filter_cesql(n->str, NULL, &flt, errbuf, sizeof(errbuf), &col);
	if (rc == CEB_ENOMEM) {
		r->ld->enomem = true;
	} else if (rc < 0) {
		/* the node's position is the scalar's; the column inside the expression says where */
		if (col > 0 && !strstr(errbuf, "column"))
			r_err(r, n, path, "%s at column %d", *errbuf ? errbuf : "syntax error", col);
		else
			r_err(r, n, path, "%s", *errbuf ? errbuf : ceb_strerror(rc));
	}
	return rc < 0 ? NULL : flt;
}

/* One element of spec.filters: an object with exactly one dialect key. */
static struct ceb_filter *parse_filter_obj(struct res *r, const struct ynode *n, const char *path)
{
	static const char *const dialects[] = { "exact", "prefix", "suffix", "all", "any", "not", "cesql",
						NULL };
	const struct ynode *v[7], *k[7];
	struct ceb_filter *flt = NULL, *kid;
	char p[512], errbuf[256] = "", found[128] = "";
	size_t cnt = 0, len = 0;
	int which = -1, rc;
	size_t nerr = r->nerr;

	if (!get_fields(r, n, path, dialects, v, k) || r->nerr != nerr)
		return NULL;
	for (int i = 0; i < 7; i++)
		if (k[i]) {
			which = i;
			cnt++;
			/* seven short names always fit */
			len += (size_t)snprintf(found + len, sizeof(found) - len, "%s%s", cnt > 1 ? ", " : "",
						dialects[i]);
		}
	if (cnt != 1) {
		if (cnt == 0)
			r_err(r, n, path, "a filter needs one dialect: exact, prefix, suffix, all, any, not "
					  "or cesql");
		else
			r_err(r, n, path, "a filter takes exactly one dialect, found %zu (%s); combine them "
					  "with all:", cnt, found);
		return NULL;
	}
	path_key(p, sizeof(p), path, dialects[which]);
	if (!v[which]) {
		r_err(r, k[which], p, "expected a value, got null");
		return NULL;
	}
	switch (which) {
	case 0: return parse_attr_filter(r, v[which], p, CEB_FILTER_EXACT);
	case 1: return parse_attr_filter(r, v[which], p, CEB_FILTER_PREFIX);
	case 2: return parse_attr_filter(r, v[which], p, CEB_FILTER_SUFFIX);
	case 3: return parse_filter_list(r, v[which], p, CEB_FILTER_ALL);
	case 4: return parse_filter_list(r, v[which], p, CEB_FILTER_ANY);
	case 6: return parse_cesql(r, v[which], p);
	}
	kid = parse_filter_obj(r, v[which], p);
	if (!kid)
		return NULL;
	rc = ceb_filter_group(CEB_FILTER_NOT, &kid, 1, &flt, errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		r->ld->enomem = true;
	else if (rc < 0)
		r_err(r, v[which], p, "%s", filter_reason(p, errbuf, rc));
	return rc < 0 ? NULL : flt;
}

/* ------------------------------------------------------------------------------------------------
 * Resources: metadata, then one parse function per kind.
 */

struct meta {
	char *name, *ns;
	char **akeys, **avals;
	size_t nannot;
	const struct ynode *annots; /* to point errors at an annotation's value */
	const struct ynode *name_node;
};

static void meta_free(struct meta *md)
{
	free(md->name);
	free(md->ns);
	free_strv(md->akeys, md->nannot);
	free_strv(md->avals, md->nannot);
	memset(md, 0, sizeof(*md));
}

static void parse_meta(struct res *r, const struct ynode *root, const struct ynode *n, struct meta *md)
{
	static const char *const fields[] = { "name", "namespace", "labels", "annotations", NULL };
	const struct ynode *v[4];
	char **lk, **lv, q[80];
	size_t nl;

	if (!n) {
		r_err(r, root, "metadata.name", "required field missing");
		goto out;
	}
	if (!get_fields(r, n, "metadata", fields, v, NULL))
		goto out;
	md->name_node = v[0];
	if (!v[0])
		r_err(r, n, "metadata.name", "required field missing");
	else if (get_str(r, v[0], "metadata.name", &md->name) && !dns_label(md->name))
		r_err(r, v[0], "metadata.name",
		      "\"%s\" is not a valid name (lower-case letters, digits and '-', starting and ending "
		      "with a letter or digit, at most 63 characters)", quoted(q, sizeof(q), md->name));
	if (v[1] && get_str(r, v[1], "metadata.namespace", &md->ns) && !dns_label(md->ns))
		r_err(r, v[1], "metadata.namespace",
		      "\"%s\" is not a valid namespace (lower-case letters, digits and '-', starting and "
		      "ending with a letter or digit, at most 63 characters)", quoted(q, sizeof(q), md->ns));
	/* labels are checked but not kept: nothing in the data plane selects on them yet */
	if (v[2] && get_strmap(r, v[2], "metadata.labels", &lk, &lv, &nl)) {
		free_strv(lk, nl);
		free_strv(lv, nl);
	}
	if (v[3]) {
		md->annots = v[3];
		get_strmap(r, v[3], "metadata.annotations", &md->akeys, &md->avals, &md->nannot);
	}
out:
	if (!md->ns)
		md->ns = xstrdup(r->ld, "default");
}

/* The value node of an annotation, for error positions. */
static const struct ynode *annot_node(const struct meta *md, const char *key)
{
	return map_get(md->annots, key);
}

/* Register a loaded resource, located at its metadata.name for duplicate reports. */
static void add_entry(struct res *r, const char *kind, const char *ns, const char *name,
		      const struct meta *md, void *obj)
{
	struct loader *ld = r->ld;
	struct ceb_loc loc = { r->file, md->name_node->line, md->name_node->col };

	if (ld->nentries == ld->capentries) {
		size_t cap = ld->capentries ? 2 * ld->capentries : 16;
		struct entry *p = realloc(ld->entries, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->entries = p;
		ld->capentries = cap;
	}
	ld->entries[ld->nentries] = (struct entry){ kind, ns, name, loc, obj, ld->nentries };
	ld->nentries++;
}

static void configmap_free(struct ceb_configmap *cm)
{
	if (!cm)
		return;
	free(cm->ns);
	free(cm->name);
	free_strv(cm->keys, cm->n);
	free_strv(cm->values, cm->n);
	free(cm);
}

static void broker_free(struct ceb_broker_cfg *b)
{
	if (!b)
		return;
	free(b->ns);
	free(b->name);
	free(b->broker_class);
	delivery_free(&b->delivery);
	free_strv(b->annot_keys, b->nannot);
	free_strv(b->annot_values, b->nannot);
	free(b);
}

static void trigger_free(struct ceb_trigger_cfg *t)
{
	if (!t)
		return;
	free(t->ns);
	free(t->name);
	free(t->broker);
	ceb_filter_free(t->filter);
	dest_free(&t->subscriber);
	delivery_free(&t->delivery);
	free_strv(t->annot_keys, t->nannot);
	free_strv(t->annot_values, t->nannot);
	free(t);
}

/* A kind's parse function gets the metadata (and takes what it keeps from it) and the values of its
 * own top-level fields, in the order of its fields list. */
typedef void kind_parse_f(struct res *r, struct meta *md, const struct ynode *root,
			  const struct ynode *const *vals);

struct kind_def {
	const char *api_version;
	const char *kind;
	const char *const *fields; /* top-level fields besides apiVersion, kind, metadata */
	kind_parse_f *parse;
};

static void parse_configmap(struct res *r, struct meta *md, const struct ynode *root,
			    const struct ynode *const *vals)
{
	struct ceb_configmap *cm;

	if (!md->name)
		return;
	cm = calloc(1, sizeof(*cm));
	if (!cm) {
		r->ld->enomem = true;
		return;
	}
	cm->ns = md->ns;
	cm->name = md->name;
	md->ns = md->name = NULL;
	cm->loc = (struct ceb_loc){ r->file, root->line, root->col };
	if (vals[0])
		get_strmap(r, vals[0], "data", &cm->keys, &cm->values, &cm->n);
	*r->ld->cm_tail = cm;
	r->ld->cm_tail = &cm->next;
	add_entry(r, "ConfigMap", cm->ns, cm->name, md, cm);
}

static const char *const broker_classes[] = { "MTChannelBasedBroker", "Kafka", "RabbitMQBroker",
					      "NatsJetStreamBroker", NULL };

static void parse_broker(struct res *r, struct meta *md, const struct ynode *root,
			 const struct ynode *const *vals)
{
	static const char *const spec_fields[] = { "config", "delivery", NULL };
	static const char *const ref_fields[] = { "apiVersion", "kind", "name", "namespace", NULL };
	const char *cls = ceb_annotation(md->akeys, md->avals, md->nannot, "eventing.knative.dev/broker.class");
	const struct ynode *v[2], *rv[4];
	struct ceb_broker_cfg *b;
	char q[80], *api = NULL, *kind = NULL, *name = NULL, *ns = NULL;
	size_t i;

	if (!md->name)
		return;
	b = calloc(1, sizeof(*b));
	if (!b) {
		r->ld->enomem = true;
		return;
	}
	delivery_init(&b->delivery);
	b->ns = md->ns;
	b->name = md->name;
	b->annot_keys = md->akeys;
	b->annot_values = md->avals;
	b->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	b->loc = (struct ceb_loc){ r->file, root->line, root->col };
	*r->ld->broker_tail = b;
	r->ld->broker_tail = &b->next;
	r->ld->cfg->nbrokers++;
	add_entry(r, "Broker", b->ns, b->name, md, b);

	for (i = 0; cls && broker_classes[i] && strcmp(cls, broker_classes[i]); i++)
		;
	if (cls && !broker_classes[i])
		r_err(r, annot_node(md, "eventing.knative.dev/broker.class"),
		      "metadata.annotations[\"eventing.knative.dev/broker.class\"]",
		      "unknown broker class \"%s\" (known: MTChannelBasedBroker, Kafka, RabbitMQBroker, "
		      "NatsJetStreamBroker)", quoted(q, sizeof(q), cls));
	b->broker_class = xstrdup(r->ld, cls ? cls : DEFAULT_BROKER_CLASS);

	if (!vals[0] || !get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[0] && get_fields(r, v[0], "spec.config", ref_fields, rv, NULL)) {
		if (!rv[1] || !rv[2]) {
			r_err(r, v[0], !rv[1] ? "spec.config.kind" : "spec.config.name",
			      "required field missing");
		} else if (get_str(r, rv[0], "spec.config.apiVersion", &api) &&
			   get_str(r, rv[1], "spec.config.kind", &kind) &&
			   get_str(r, rv[2], "spec.config.name", &name) &&
			   get_str(r, rv[3], "spec.config.namespace", &ns)) {
			if (strcmp(kind, "ConfigMap") || (api && strcmp(api, "v1")))
				r_err(r, v[0], "spec.config",
				      "only a ConfigMap (apiVersion v1) can hold a Broker's config, got %s",
				      quoted(q, sizeof(q), kind));
			else
				add_check(r, "ConfigMap", ns ? ns : b->ns, name, v[0], "spec.config", &b->config,
					  NULL);
		}
		free(api);
		free(kind);
		free(name);
		free(ns);
	}
	if (v[1])
		parse_delivery(r, v[1], "spec.delivery", &b->delivery);
}

static void parse_trigger(struct res *r, struct meta *md, const struct ynode *root,
			  const struct ynode *const *vals)
{
	static const char *const spec_fields[] = { "broker", "brokerRef", "filter", "filters",
						    "subscriber", "delivery", NULL };
	static const char *const filter_fields[] = { "attributes", NULL };
	const char *order = ceb_annotation(md->akeys, md->avals, md->nannot,
					   "kafka.eventing.knative.dev/delivery.order");
	const struct ynode *v[6], *fv[1];
	struct ceb_filter *legacy = NULL, *flt = NULL;
	struct ceb_trigger_cfg *t;
	char q[80], p[512];

	if (!md->name)
		return;
	t = calloc(1, sizeof(*t));
	if (!t) {
		r->ld->enomem = true;
		return;
	}
	delivery_init(&t->delivery);
	t->ns = md->ns;
	t->name = md->name;
	t->annot_keys = md->akeys;
	t->annot_values = md->avals;
	t->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	t->loc = (struct ceb_loc){ r->file, root->line, root->col };
	*r->ld->trigger_tail = t;
	r->ld->trigger_tail = &t->next;
	r->ld->cfg->ntriggers++;
	add_entry(r, "Trigger", t->ns, t->name, md, t);

	if (order && !strcmp(order, "ordered"))
		t->ordered = true;
	else if (order && strcmp(order, "unordered"))
		r_err(r, annot_node(md, "kafka.eventing.knative.dev/delivery.order"),
		      "metadata.annotations[\"kafka.eventing.knative.dev/delivery.order\"]",
		      "\"%s\" is not a delivery order (ordered or unordered)", quoted(q, sizeof(q), order));

	if (!vals[0]) {
		r_err(r, root, "spec", "required field missing (a Trigger needs spec.broker and "
				       "spec.subscriber)");
		return;
	}
	if (!get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[1])
		r_err(r, v[1], "spec.brokerRef", "not supported (cross-namespace Triggers); use "
						  "spec.broker with a Broker in the Trigger's namespace");
	else if (!v[0])
		r_err(r, vals[0], "spec.broker", "required field missing");
	else if (get_str(r, v[0], "spec.broker", &t->broker))
		add_check(r, "Broker", t->ns, t->broker, v[0], "spec.broker", NULL, &t->broker_cfg);

	if (v[2] && get_fields(r, v[2], "spec.filter", filter_fields, fv, NULL) && fv[0])
		legacy = parse_attr_filter(r, fv[0], "spec.filter.attributes", CEB_FILTER_LEGACY);
	/* Knative: a non-empty filters list wins over filter */
	if (v[3] && want_seq(r, v[3], "spec.filters") && v[3]->n)
		flt = parse_filter_list(r, v[3], "spec.filters", CEB_FILTER_ALL);
	if (flt) {
		ceb_filter_free(legacy);
		t->filter = flt;
	} else if (legacy) {
		t->filter = legacy;
	} else {
		t->filter = filter_true(r);
	}

	if (!v[4])
		r_err(r, vals[0], "spec.subscriber", "required field missing");
	else
		parse_dest(r, v[4], "spec.subscriber", &t->subscriber);
	if (v[5])
		parse_delivery(r, v[5], path_key(p, sizeof(p), "spec", "delivery"), &t->delivery);
}

static const char *const spec_only[] = { "spec", NULL };
static const char *const data_only[] = { "data", NULL };

/* The kinds this build loads. A new kind is one entry here and its parse function. */
static const struct kind_def kinds[] = {
	{ EVENTING_V1, "Broker", spec_only, parse_broker },
	{ EVENTING_V1, "Trigger", spec_only, parse_trigger },
	{ "v1", "ConfigMap", data_only, parse_configmap },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *supported_kinds(char *buf, size_t sz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKINDS && len < sz; i++)
		len += (size_t)snprintf(buf + len, sz - len, "%s%s (%s)", i ? ", " : "", kinds[i].kind,
					kinds[i].api_version);
	return buf;
}

static void load_resource(struct loader *ld, const char *file, const struct ynode *root)
{
	const struct ynode *kn, *an, *mn, *vals[8], *keys[8];
	const char *names[8], *kind, *api, *name, *ns;
	const struct kind_def *def = NULL;
	struct res r = { .ld = ld, .file = file };
	struct meta md = { 0 };
	char q[80], q2[80], sup[256];
	bool kind_known = false;
	size_t nf = 0;

	if (is_null(root))
		return; /* an empty document */
	if (root->type != YN_MAP) {
		file_err(ld, file, root->line, root->col,
			 "a resource must be a mapping with apiVersion, kind and metadata, got %s",
			 type_name(root));
		return;
	}
	kn = map_get(root, "kind");
	an = map_get(root, "apiVersion");
	mn = map_get(root, "metadata");
	kind = peek_str(kn);
	api = peek_str(an);
	name = peek_str(map_get(mn, "name"));
	ns = peek_str(map_get(mn, "namespace"));
	snprintf(r.who, sizeof(r.who), "%s %s/%s", kind ? quoted(q, sizeof(q), kind) : "resource",
		 ns ? ns : "default", name ? quoted(q2, sizeof(q2), name) : "(no name)");
	for (size_t i = 0; kind && i < NKINDS; i++)
		if (!strcmp(kind, kinds[i].kind)) {
			kind_known = true;
			if (api && !strcmp(api, kinds[i].api_version))
				def = &kinds[i];
		}
	if (!kind) {
		r_err(&r, kn ? kn : root, "kind", "required field missing (supported: %s)",
		      supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!kind_known) {
		r_err(&r, kn, "kind", "unknown kind \"%s\" (supported: %s)", quoted(q, sizeof(q), kind),
		      supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!def) {
		if (!api)
			r_err(&r, an ? an : root, "apiVersion", "required field missing (supported: %s)",
			      supported_kinds(sup, sizeof(sup)));
		else
			r_err(&r, an, "apiVersion", "unknown apiVersion \"%s\" for %s (supported: %s)",
			      quoted(q, sizeof(q), api), kind, supported_kinds(sup, sizeof(sup)));
		return;
	}

	names[nf++] = "apiVersion";
	names[nf++] = "kind";
	names[nf++] = "metadata";
	names[nf++] = "status";
	for (size_t i = 0; def->fields[i] && nf < 7; i++)
		names[nf++] = def->fields[i];
	names[nf] = NULL;
	get_fields(&r, root, "", names, vals, keys);
	parse_meta(&r, root, vals[2], &md);
	r.ns = md.ns;
	if (!ld->enomem && md.ns)
		def->parse(&r, &md, root, vals + 4);
	if (keys[3])
		r_err(&r, keys[3], "status", "not accepted: status is reported by the system, not configured");
	meta_free(&md);
}

/* ------------------------------------------------------------------------------------------------
 * The YAML event stream to trees, one document at a time.
 */

struct frame {
	struct ynode *node;
	size_t base; /* where its children start in ld->pend */
};

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	/* nothing: errors are collected and reported as file:line:col lines instead */
}

static bool is_white(char c)
{
	return c == ' ' || c == '\t';
}

/* The value of a single-quoted scalar from its source bytes (YAML 1.2, 7.3.2): '' is a quote, and
 * line breaks fold: one break is a space, n > 1 breaks are n - 1 newlines, with the whitespace around
 * them dropped. We do this style ourselves because libfyaml 0.7.12 leaks its text iterator's chunk
 * array on runs of escaped quotes (libfyaml#233, fixed upstream after the release Debian 12 has). */
static char *single_quoted(struct arena *a, const char *src, size_t len, size_t *outlen)
{
	char *out = arena_alloc(a, len + 1), *o = out;
	size_t i = 0, empty = 0;
	bool first = true;

	if (!out)
		return NULL;
	while (i <= len) {
		size_t bol = i, eol = i, b, e;
		bool last;

		while (eol < len && src[eol] != '\n' && src[eol] != '\r')
			eol++;
		last = eol == len;
		b = bol;
		e = eol;
		if (!first)
			while (b < e && is_white(src[b]))
				b++;
		if (!last)
			while (e > b && is_white(src[e - 1]))
				e--;
		if (!first && !last && b == e) {
			empty++; /* an empty line between two others */
		} else {
			if (!first) {
				if (empty)
					for (; empty; empty--)
						*o++ = '\n';
				else
					*o++ = ' ';
			}
			for (size_t k = b; k < e; k++) {
				*o++ = src[k];
				if (src[k] == '\'' && k + 1 < e && src[k + 1] == '\'')
					k++;
			}
			first = false;
		}
		if (last)
			break;
		i = eol + (src[eol] == '\r' && eol + 1 < len && src[eol + 1] == '\n' ? 2 : 1);
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* Fill a scalar node's text (val NULL: an empty scalar). False when out of memory. */
static bool scalar_text(struct loader *ld, struct fy_token *val, const char *data, size_t len,
			struct ynode *n)
{
	const struct fy_mark *sm, *em;
	const char *text;
	size_t tlen = 0;

	if (val && fy_token_scalar_style(val) == FYSS_SINGLE_QUOTED && (sm = fy_token_start_mark(val)) &&
	    (em = fy_token_end_mark(val)) && sm->input_pos <= em->input_pos && em->input_pos <= len) {
		n->str = single_quoted(&ld->arena, data + sm->input_pos, em->input_pos - sm->input_pos,
				       &n->n);
	} else {
		text = val ? fy_token_get_text(val, &tlen) : "";
		n->str = text ? arena_alloc(&ld->arena, tlen + 1) : NULL;
		if (n->str) {
			memcpy(n->str, text, tlen);
			n->str[tlen] = '\0';
			n->n = tlen;
		}
	}
	if (!n->str)
		ld->enomem = true;
	return n->str != NULL;
}

/* Report at a token (an anchor, a tag) rather than at the node it decorates. An anchor's mark is
 * its name: back is 1 to point at the '&' before it. */
static void token_err(struct loader *ld, const char *file, struct fy_token *fyt, int back, int line,
		      int col, const char *msg)
{
	const struct fy_mark *m = fyt ? fy_token_start_mark(fyt) : NULL;

	if (m)
		file_err(ld, file, m->line + 1, m->column + 1 - (m->column >= back ? back : 0), "%s", msg);
	else
		file_err(ld, file, line, col, "%s", msg);
}

static bool pend_push(struct loader *ld, struct ynode *n)
{
	if (ld->npend == ld->cappend) {
		size_t cap = ld->cappend ? 2 * ld->cappend : 64;
		struct ynode **p = realloc(ld->pend, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return false;
		}
		ld->pend = p;
		ld->cappend = cap;
	}
	ld->pend[ld->npend++] = n;
	return true;
}

/* YAML's c-printable: tab, line breaks and printable Unicode. */
static bool yaml_printable(uint32_t cp)
{
	return cp == 0x09 || cp == 0x0a || cp == 0x0d || (cp >= 0x20 && cp <= 0x7e) || cp == 0x85 ||
	       (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) ||
	       (cp >= 0x10000 && cp <= 0x10ffff);
}

/* YAML is printable Unicode, and the strings end up in URIs, headers and logs: refuse what is not
 * UTF-8 (which also refuses UTF-16 and UTF-32 files, by their byte order marks) and control
 * characters, at their position. Raw NUL bytes also crash libfyaml 0.7.12 in fy_parser_destroy(). */
static const char ctrl_msg[] =
	"control characters are not allowed in YAML (write them as escapes in a double-quoted string)";

static const char *text_invalid(const char *str, size_t len, int *line, int *col)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *why = "invalid UTF-8 (YAML files must be UTF-8)";
	size_t i = 0, bol = 0;
	int ln = 1;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			if (c == '\n') {
				ln++;
				bol = i + 1;
			} else if (!yaml_printable(c)) {
				why = ctrl_msg;
				goto out;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			goto out;
		if (len - i <= n)
			goto out;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto out;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto out;
		if (!yaml_printable(cp)) {
			why = ctrl_msg;
			goto out;
		}
		i += n + 1;
	}
	return NULL;
out:
	*line = ln;
	*col = (int)(i - bol) + 1;
	return why;
}

/* Two things are checked on the bytes before libfyaml sees them, skipping quoted strings and
 * comments:
 * - libfyaml keeps every open flow level of a line before it emits the first event of it, so
 *   `[[[[...` on one 16 MiB line costs gigabytes before the depth check on events can refuse it.
 *   The estimate here is loose (brackets inside block or plain scalars count too), so it only
 *   refuses what is far deeper than MAX_DEPTH, reporting where MAX_DEPTH was passed.
 * - A tab between ':' and an indicator (`? k:<TAB>-`, `? k:<TAB>:x`, `? k:<TAB>|`) crashes libfyaml
 *   0.7.12 in fy_parser_destroy() (found by fuzzing). That is invalid YAML or very rare YAML (a block
 *   scalar header after a tab, `key:<TAB>|`), so it is refused, asking for a space instead. */
static const char *prescan(const char *s, size_t len, int *line, int *col)
{
	size_t depth = 0, bol = 0;
	int ln = 1, deep_line = 0, deep_col = 0;
	char prev = '\n';

	for (size_t i = 0; i < len; i++) {
		char c = s[i], q;
		size_t j;
		bool tab = false;

		switch (c) {
		case '\n':
			ln++;
			bol = i + 1;
			break;
		case '#':
			if (prev != ' ' && prev != '\t' && prev != '\n')
				break;
			while (i + 1 < len && s[i + 1] != '\n')
				i++;
			break;
		case '"':
		case '\'':
			if (!strchr(" \t\n[{,:", prev))
				break;
			for (q = c, i++; i < len && s[i] != q; i++) {
				if (s[i] == '\\' && q == '"' && i + 1 < len && s[i + 1] != '\n')
					i++;
				else if (s[i] == '\n')
					ln++, bol = i + 1;
			}
			break;
		case ':':
			for (j = i + 1; j < len && (s[j] == ' ' || s[j] == '\t'); j++)
				tab |= s[j] == '\t';
			/* whatever follows ? : | >, but -5 after a tab is a fine number */
			if (tab && j < len && strchr("-?:|>", s[j]) &&
			    (s[j] != '-' || j + 1 == len || strchr(" \t\r\n", s[j + 1]))) {
				*line = ln;
				*col = (int)(j - bol) + 1;
				return "a tab before a block indicator is not supported; use spaces";
			}
			break;
		case '[':
		case '{':
			if (++depth == MAX_DEPTH + 1) {
				deep_line = ln;
				deep_col = (int)(i - bol) + 1;
			}
			if (depth > PRESCAN_DEPTH) {
				*line = deep_line;
				*col = deep_col;
				return "YAML nesting deeper than " CEB_STR(MAX_DEPTH) " levels";
			}
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		}
		prev = i < len ? s[i] : '\n';
	}
	return NULL;
}

static void parse_stream(struct loader *ld, const char *file, const char *data, size_t len)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parse_cfg pcfg = { 0 };
	struct fy_parser *fyp = NULL;
	struct fy_event *fye = NULL;
	struct frame frames[MAX_DEPTH + 1];
	struct ynode *root = NULL;
	int depth = 0, line = 1, col = 1;
	bool skip = false, done = false;
	const char *why = text_invalid(data, len, &line, &col);

	if (!why)
		why = prescan(data, len, &line, &col);
	if (why) {
		file_err(ld, file, line, col, "%s", why);
		return;
	}
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		ld->enomem = true;
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, data, len) != 0) {
		ld->enomem = true;
		goto out;
	}
	while (!done && !ld->enomem && !ld->stop) {
		const struct fy_mark *m;
		struct fy_token *anchor = NULL, *tag = NULL;
		struct ynode *n = NULL;
		size_t tlen;
		const char *text;

		fye = fy_parser_parse(fyp);
		if (!fye)
			break;
		m = fy_event_start_mark(fye);
		if (m) {
			line = m->line + 1;
			col = m->column + 1;
		}
		switch (fye->type) {
		case FYET_STREAM_END:
			done = true;
			break;
		case FYET_DOCUMENT_START:
			skip = false;
			root = NULL;
			depth = 0;
			ld->npend = 0;
			ld->nodes = 0;
			break;
		case FYET_DOCUMENT_END:
			if (!skip && root)
				load_resource(ld, file, root);
			arena_free(&ld->arena);
			root = NULL;
			break;
		case FYET_ALIAS:
			if (!skip)
				file_err(ld, file, line, col > 1 ? col - 1 : col, /* at the '*' */
					 "YAML aliases are not supported");
			skip = true;
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
		case FYET_SCALAR:
			anchor = fy_event_get_anchor_token(fye);
			tag = fy_event_get_tag_token(fye);
			if (fye->type != FYET_SCALAR && ++depth > MAX_DEPTH) {
				/* stop reading the file: the parser's own stack grows with the nesting */
				file_err(ld, file, line, col, "YAML nesting deeper than %d levels", MAX_DEPTH);
				done = true;
				break;
			}
			if (skip)
				break;
			if (anchor) {
				/* refused at the anchor, so an alias bomb is never expanded */
				token_err(ld, file, anchor, 1, line, col, "YAML anchors are not supported (nor aliases)");
				skip = true;
				break;
			}
			if (tag) {
				text = fy_token_get_text(tag, &tlen);
				if (!text || tlen != 21 || memcmp(text, "tag:yaml.org,2002:str", 21)) {
					token_err(ld, file, tag, 0, line, col, "YAML tags are not supported (except !!str)");
					skip = true;
					break;
				}
			}
			if (++ld->nodes > MAX_DOC_NODES) {
				file_err(ld, file, line, col, "document has more than %d YAML nodes",
					 MAX_DOC_NODES);
				skip = true;
				break;
			}
			n = arena_alloc(&ld->arena, sizeof(*n));
			if (!n) {
				ld->enomem = true;
				break;
			}
			memset(n, 0, sizeof(*n));
			n->line = line;
			n->col = col;
			if (fye->type == FYET_SCALAR) {
				struct fy_token *val = fye->scalar.value;

				n->type = YN_SCALAR;
				n->plain = !tag && (!val || fy_token_scalar_style(val) == FYSS_PLAIN);
				/* libfyaml marks a quoted scalar after its opening quote; users count from it */
				if (val && n->col > 1 && (fy_token_scalar_style(val) == FYSS_SINGLE_QUOTED ||
							  fy_token_scalar_style(val) == FYSS_DOUBLE_QUOTED))
					n->col--;
				if (!scalar_text(ld, val, data, len, n))
					break;
				if (memchr(n->str, '\0', n->n)) { /* "\0" in a double-quoted string */
					file_err(ld, file, n->line, n->col, "NUL characters are not allowed in strings");
					skip = true;
					break;
				}
			} else {
				n->type = fye->type == FYET_MAPPING_START ? YN_MAP : YN_SEQ;
			}
			/* depth counts the open collections, this one included */
			if (depth > (fye->type == FYET_SCALAR ? 0 : 1)) {
				if (!pend_push(ld, n))
					break;
			} else {
				root = n;
			}
			if (fye->type != FYET_SCALAR)
				frames[depth] = (struct frame){ n, ld->npend };
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			if (depth <= 0)
				break;
			if (!skip) {
				struct frame *f = &frames[depth];
				size_t cnt = ld->npend - f->base;

				if (cnt) {
					f->node->kids = arena_alloc(&ld->arena, cnt * sizeof(*f->node->kids));
					if (!f->node->kids) {
						ld->enomem = true;
						break;
					}
					memcpy(f->node->kids, ld->pend + f->base, cnt * sizeof(*f->node->kids));
				}
				f->node->n = f->node->type == YN_MAP ? cnt / 2 : cnt;
				ld->npend = f->base;
			}
			depth--;
			break;
		default:
			break;
		}
		fy_parser_event_free(fyp, fye);
		fye = NULL;
	}
	if (!done && !ld->enomem && !ld->stop) {
		struct fy_diag_error *e;
		void *it = NULL;

		while ((e = fy_diag_errors_iterate(diag, &it)) && e->type < FYET_ERROR)
			;
		if (e && e->msg)
			file_err(ld, file, e->line > 0 ? e->line : line, e->line > 0 ? e->column : col,
				 "invalid YAML: %s", e->msg);
		else
			file_err(ld, file, line, col, "invalid YAML");
	}
out:
	arena_free(&ld->arena);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
}

/* ------------------------------------------------------------------------------------------------
 * Files, directories, and the checks that need every resource.
 */

/* Keep a file name for the locations (and the error order) that point to it. */
static const char *add_file(struct loader *ld, const char *name)
{
	struct ceb_config *cfg = ld->cfg;
	char **files, *copy;

	files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*files));
	if (!files) {
		ld->enomem = true;
		return NULL;
	}
	cfg->files = files;
	copy = xstrdup(ld, name);
	if (!copy)
		return NULL;
	cfg->files[cfg->nfiles++] = copy;
	return copy;
}

static void load_buffer(struct loader *ld, const char *file, const char *data, size_t len)
{
	if (len > MAX_FILE_SIZE) {
		file_err(ld, file, 0, 0, "larger than %u MiB", MAX_FILE_SIZE >> 20);
		return;
	}
	parse_stream(ld, file, data, len);
}

static void load_file(struct loader *ld, const char *name)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	const char *path = add_file(ld, name);
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;

	if (!path)
		return;

	if (fd < 0 || fstat(fd, &st) != 0) {
		file_err(ld, path, 0, 0, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (st.st_size > (off_t)MAX_FILE_SIZE) {
		file_err(ld, path, 0, 0, "larger than %u MiB", MAX_FILE_SIZE >> 20);
		goto out;
	}
	/* read up to one byte past the limit, in case the file grew since fstat */
	data = malloc(MAX_FILE_SIZE + 1);
	if (!data) {
		ld->enomem = true;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, data + len, MAX_FILE_SIZE + 1 - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			file_err(ld, path, 0, 0, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len > MAX_FILE_SIZE)
			break;
	}
	load_buffer(ld, path, data, len);
out:
	free(data);
	if (fd >= 0)
		close(fd);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.') /* editors' and tools' hidden files */
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static void load_dir(struct loader *ld, const char *name)
{
	const char *path = add_file(ld, name);
	DIR *dir = path ? opendir(path) : NULL;
	struct dirent *de;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0, found = 0;
	bool slash;

	if (!path)
		return;
	slash = *path && path[strlen(path) - 1] == '/';
	if (!dir) {
		file_err(ld, path, 0, 0, "cannot read: %s", strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		if (!yaml_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				ld->enomem = true;
				goto out;
			}
			names = grown;
		}
		if (!(names[n] = xstrdup(ld, de->d_name)))
			goto out;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && !ld->enomem && !ld->stop; i++) {
		struct stat st;
		struct ceb_buf full = CEB_BUF_INIT;

		ceb_buf_printf(&full, "%s%s%s", path, slash ? "" : "/", names[i]);
		if (full.failed) {
			ld->enomem = true;
			ceb_buf_free(&full);
			break;
		}
		if (stat(full.p, &st) == 0 && S_ISREG(st.st_mode)) { /* not recursive */
			load_file(ld, full.p);
			found++;
		}
		ceb_buf_free(&full);
	}
	if (!found && !ld->enomem)
		file_err(ld, path, 0, 0, "no *.yaml or *.yml files in this directory");
out:
	free_strv(names, n);
	closedir(dir);
}

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	if (!c)
		c = strcmp(x->ns, y->ns);
	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static const struct entry *find_entry(const struct entry *sorted, size_t n, const char *kind,
				      const char *ns, const char *name)
{
	struct entry key = { .kind = kind, .ns = ns, .name = name, .seq = 0 };
	size_t lo = 0, hi = n;

	/* lower bound: the first definition wins when there are duplicates */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_entries(&sorted[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && !strcmp(sorted[lo].kind, kind) && !strcmp(sorted[lo].ns, ns) &&
	    !strcmp(sorted[lo].name, name))
		return &sorted[lo];
	return NULL;
}

static void resolve(struct loader *ld)
{
	struct entry *sorted = NULL;
	size_t n = ld->nentries, *dup_of = NULL;

	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		dup_of = malloc(n * sizeof(*dup_of));
		if (!sorted || !dup_of) {
			ld->enomem = true;
			goto out;
		}
		memcpy(sorted, ld->entries, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_entries);
	}
	/* duplicates, reported in the order they were defined */
	for (size_t i = 0; i < n; i++)
		dup_of[i] = SIZE_MAX;
	for (size_t i = 1; i < n; i++)
		if (!strcmp(sorted[i].kind, sorted[i - 1].kind) && !strcmp(sorted[i].ns, sorted[i - 1].ns) &&
		    !strcmp(sorted[i].name, sorted[i - 1].name))
			dup_of[sorted[i].seq] = sorted[i - 1].seq;
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &ld->entries[i], *first;
		struct ceb_buf who = CEB_BUF_INIT;

		if (dup_of[i] == SIZE_MAX)
			continue;
		while (dup_of[dup_of[i]] != SIZE_MAX)
			dup_of[i] = dup_of[dup_of[i]];
		first = &ld->entries[dup_of[i]];
		ceb_buf_printf(&who, "%s %s/%s", e->kind, e->ns, e->name);
		file_err(ld, e->loc.file, e->loc.line, e->loc.col,
			 "%s: metadata.name: duplicate %s (first defined at %s:%d:%d)", who.p ? who.p : e->kind,
			 e->kind, first->loc.file, first->loc.line, first->loc.col);
		ceb_buf_free(&who);
	}
	for (size_t i = 0; i < ld->nchecks; i++) {
		const struct check *c = &ld->checks[i];
		const struct entry *e = find_entry(sorted, n, c->kind, c->ns, c->name);

		if (!e) {
			file_err(ld, c->loc.file, c->loc.line, c->loc.col, "%s: %s: %s %s/%s not found", c->who,
				 c->path, c->kind, c->ns, c->name);
			continue;
		}
		if (c->cm_out)
			*c->cm_out = e->obj;
		if (c->broker_out)
			*c->broker_out = e->obj;
	}
	/* Knative: a Trigger that sets any delivery field ignores its Broker's delivery as a whole */
	for (struct ceb_trigger_cfg *t = ld->cfg->triggers; t && !ld->enomem; t = t->next) {
		if (t->delivery.set || !t->broker_cfg)
			continue;
		delivery_free(&t->delivery);
		delivery_copy(ld, &t->delivery, &t->broker_cfg->delivery);
	}
out:
	free(sorted);
	free(dup_of);
}

/* ------------------------------------------------------------------------------------------------
 * The API.
 */

void ceb_config_free(struct ceb_config *cfg)
{
	if (!cfg)
		return;
	while (cfg->configmaps) {
		struct ceb_configmap *next = cfg->configmaps->next;

		configmap_free(cfg->configmaps);
		cfg->configmaps = next;
	}
	while (cfg->brokers) {
		struct ceb_broker_cfg *next = cfg->brokers->next;

		broker_free(cfg->brokers);
		cfg->brokers = next;
	}
	while (cfg->triggers) {
		struct ceb_trigger_cfg *next = cfg->triggers->next;

		trigger_free(cfg->triggers);
		cfg->triggers = next;
	}
	free_strv(cfg->files, cfg->nfiles);
	free(cfg);
}

static int loader_begin(struct loader *ld, struct ceb_config_errors *errs)
{
	memset(ld, 0, sizeof(*ld));
	ld->errs = errs;
	ld->cfg = calloc(1, sizeof(*ld->cfg));
	if (!ld->cfg)
		return CEB_ENOMEM;
	ld->cm_tail = &ld->cfg->configmaps;
	ld->broker_tail = &ld->cfg->brokers;
	ld->trigger_tail = &ld->cfg->triggers;
	return 0;
}

static int loader_end(struct loader *ld, struct ceb_config **out)
{
	int rc;

	if (!ld->enomem && !ld->stop)
		resolve(ld);
	flush_errors(ld);
	if (ld->enomem)
		rc = CEB_ENOMEM;
	else if (ld->nerr || ld->stop)
		rc = CEB_ECONFIG;
	else
		rc = 0;
	if (rc == 0) {
		*out = ld->cfg;
		ld->cfg = NULL;
	}
	ceb_config_free(ld->cfg);
	for (size_t i = 0; i < ld->nchecks; i++)
		check_free(&ld->checks[i]);
	free(ld->checks);
	free(ld->entries);
	free(ld->pend);
	arena_free(&ld->arena);
	return rc;
}

/* errs may be NULL (nobody reads the messages); the loader still needs somewhere to count. */
static int load(const char *const *paths, size_t npaths, const char *name, const char *yaml, size_t len,
		struct ceb_config **out, struct ceb_config_errors *errs)
{
	struct ceb_config_errors scratch = { CEB_BUF_INIT, 0 };
	struct ceb_config_errors *e = errs ? errs : &scratch;
	struct loader ld;
	int rc;

	if (!out)
		return CEB_EINVAL;
	rc = loader_begin(&ld, e);
	if (rc < 0) {
		free(ld.cfg);
		return rc;
	}
	if (yaml) {
		const char *file = add_file(&ld, name ? name : "<string>");

		if (file)
			load_buffer(&ld, file, yaml, len);
	} else if (npaths == 0) {
		const char *file = add_file(&ld, "cebroker");

		if (file)
			file_err(&ld, file, 0, 0, "no configuration files given");
	}
	for (size_t i = 0; !yaml && i < npaths && !ld.enomem && !ld.stop; i++) {
		struct stat st;

		if (stat(paths[i], &st) != 0)
			load_file(&ld, paths[i]); /* reports why it cannot be read */
		else if (S_ISDIR(st.st_mode))
			load_dir(&ld, paths[i]);
		else
			load_file(&ld, paths[i]);
	}
	rc = loader_end(&ld, out);
	ceb_buf_free(&scratch.text);
	return rc;
}

int ceb_config_load(const char *const *paths, size_t npaths, struct ceb_config **out,
		    struct ceb_config_errors *errs)
{
	return load(paths, npaths, NULL, NULL, 0, out, errs);
}

int ceb_config_load_string(const char *name, const char *yaml, size_t len, struct ceb_config **out,
			   struct ceb_config_errors *errs)
{
	if (!yaml)
		return CEB_EINVAL;
	return load(NULL, 0, name, yaml, len, out, errs);
}

const struct ceb_broker_cfg *ceb_config_find_broker(const struct ceb_config *cfg, const char *ns,
						    const char *name)
{
	for (const struct ceb_broker_cfg *b = cfg ? cfg->brokers : NULL; b; b = b->next)
		if (!strcmp(b->ns, ns) && !strcmp(b->name, name))
			return b;
	return NULL;
}

const char *ceb_configmap_get(const struct ceb_configmap *cm, const char *key)
{
	for (size_t i = 0; cm && i < cm->n; i++)
		if (!strcmp(cm->keys[i], key))
			return cm->values[i];
	return NULL;
}

const char *ceb_annotation(char *const *keys, char *const *values, size_t n, const char *key)
{
	for (size_t i = 0; keys && i < n; i++)
		if (!strcmp(keys[i], key))
			return values[i];
	return NULL;
}
