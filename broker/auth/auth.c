/* Sender authentication at the ingress: the daemon's JWKS (swapped whole on SIGHUP), each address's
 * audience and EventPolicies, the two checks a request goes through and their counters. */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/auth/auth.h"
#include "broker/auth/policy.h"
#include "broker/config/fields.h"
#include "broker/endpoint.h"
#include "broker/error.h"
#include "broker/log.h"

#define KIND(x)          extern const struct ceb_kind ceb_kind_##x;
#define BROKER_CONFIG(x) /* */
#define CHANNEL_KIND(x)  /* */
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND

static const struct ceb_kind *const kinds[] = {
#define KIND(x)          &ceb_kind_##x,
#define BROKER_CONFIG(x) /* */
#define CHANNEL_KIND(x)  /* */
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND
};

/* Verified tokens, so that a sender that sends its token again (an OIDC token serves until it
 * expires) costs a SHA-256 instead of a signature check: direct-mapped by the token's digest, only
 * successes, for one address each, dropped when the keys change (gen), and the times checked
 * again at every use. */
#define TOKEN_CACHE 512

struct cached_token {
	unsigned char digest[32];
	const struct ceb_auth_target *t;
	unsigned long gen; /* the keys' generation it was verified with; 0: empty */
	struct ceb_jwt_times times;
	char sub[CEB_AUTH_SUB_MAX];
};

struct ceb_auth {
	char *path, *issuer;
	bool in_memory;        /* ceb_auth_create_json: nothing to reload */
	pthread_rwlock_t lock; /* guards keys: requests read, a reload swaps */
	struct ceb_jwks *keys;
	atomic_ulong rejected[CEB_JWT_NREASONS];
	enum ceb_auth_mode mode;
	unsigned long gen; /* the keys' generation, raised on each reload (under lock) */
	pthread_mutex_t cache_lock;
	struct cached_token cache[TOKEN_CACHE];
};

const char *ceb_auth_kind_group(const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *api = kinds[i]->api_versions[0], *slash = strchr(api, '/');
		static __thread char group[128];

		if (strcasecmp(kinds[i]->kind, kind) != 0)
			continue;
		if (!slash)
			return "";
		snprintf(group, sizeof(group), "%.*s", (int)(slash - api), api);
		return group;
	}
	return "";
}

/* The kind as its resource spells it ("trigger" -> "Trigger"), for the names Knative derives from
 * it; kind itself when this build has no such kind. */
static const char *kind_name(const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcasecmp(kinds[i]->kind, kind))
			return kinds[i]->kind;
	return kind;
}

void ceb_auth_audience(const char *group, const char *kind, const char *ns, const char *name,
                       char *buf, size_t sz)
{
	snprintf(buf, sz, "%s/%s/%s/%s", group, kind, ns, name);
	for (char *c = buf; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
}

int ceb_auth_create(const char *jwks_path, const char *issuer, struct ceb_auth **out, char *err,
                    size_t errlen)
{
	struct ceb_auth *a = calloc(1, sizeof(*a));
	size_t skipped = 0;
	int rc;

	if (!a)
		return CEB_ENOMEM;
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->cache_lock, NULL);
	a->gen = 1;
	a->path = strdup(jwks_path);
	a->issuer = strdup(issuer);
	if (!a->path || !a->issuer) {
		rc = CEB_ENOMEM;
		goto out;
	}
	rc = ceb_jwks_load(jwks_path, &a->keys, &skipped, err, errlen);
	if (rc < 0)
		goto out;
	CEB_LOG_INFO("auth", "sender authentication on: issuer %s, %zu key%s from %s%s", issuer,
	             ceb_jwks_count(a->keys), ceb_jwks_count(a->keys) == 1 ? "" : "s", jwks_path,
	             skipped ? " (keys of other types skipped)" : "");
	*out = a;
	a = NULL;
out:
	ceb_auth_destroy(a);
	return rc;
}

int ceb_auth_create_json(const char *json, size_t len, const char *issuer, struct ceb_auth **out,
                         char *err, size_t errlen)
{
	struct ceb_auth *a = calloc(1, sizeof(*a));
	int rc = CEB_ENOMEM;

	if (!a)
		return CEB_ENOMEM;
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->cache_lock, NULL);
	a->gen = 1;
	if (!(a->path = strdup("(in memory)")) || !(a->issuer = strdup(issuer)))
		goto out;
	rc = ceb_jwks_parse(json, len, &a->keys, NULL, err, errlen);
	if (rc < 0)
		goto out;
	a->in_memory = true;
	*out = a;
	a = NULL;
out:
	ceb_auth_destroy(a);
	return rc;
}

int ceb_auth_reload(struct ceb_auth *a, char *err, size_t errlen)
{
	struct ceb_jwks *keys = NULL, *old;
	int rc;

	if (a->in_memory) {
		ceb_seterr(err, errlen, "the keys were given in memory: no file to re-read");
		return CEB_ESTATE;
	}
	rc = ceb_jwks_load(a->path, &keys, NULL, err, errlen);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&a->lock);
	old = a->keys;
	a->keys = keys;
	a->gen++; /* what the old keys verified is no longer taken from the cache */
	pthread_rwlock_unlock(&a->lock);
	ceb_jwks_free(old);
	CEB_LOG_INFO("auth", "JWKS reloaded from %s: %zu key%s", a->path, ceb_jwks_count(keys),
	             ceb_jwks_count(keys) == 1 ? "" : "s");
	return 0;
}

int ceb_auth_mode_parse(const char *s, enum ceb_auth_mode *mode)
{
	static const char *const names[] = {"allow-all", "allow-same-namespace", "deny-all"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*mode = (enum ceb_auth_mode)i;
			return 0;
		}
	return -1;
}

void ceb_auth_set_default_mode(struct ceb_auth *a, enum ceb_auth_mode mode)
{
	a->mode = mode;
}

void ceb_auth_destroy(struct ceb_auth *a)
{
	if (!a)
		return;
	ceb_jwks_free(a->keys);
	pthread_rwlock_destroy(&a->lock);
	pthread_mutex_destroy(&a->cache_lock);
	free(a->path);
	free(a->issuer);
	free(a);
}

/* The identity of an endpoint as Knative names it: its kind's group and kind, and for a Channel
 * the kind of the channel that backs it (its address, and so its audience, is that channel's). */
static void identity(const struct ceb_endpoint *ep, const char **kind, const char **backing)
{
	*backing = NULL;
	if (ep->cfg) {
		*kind = "Broker";
		return;
	}
	if (ep->ecfg) {
		*kind = ep->ecfg->kind;
		if (!strcmp(ep->ecfg->kind, "Channel") && ep->ecfg->own) {
			const struct ceb_msg_channel *c = ep->ecfg->own;
			if (c->backing_kind)
				*backing = c->backing_kind;
		}
		return;
	}
	*kind = ep->kind; /* a source's: its kind in lower case, as good for both uses */
}

/* Does policy p apply to ep (as itself, or as its backing channel)? */
static bool applies(const struct ceb_config *cfg, const struct ceb_event_policy *p,
                    const char *kind, const char *ns, const char *name)
{
	char *const *keys = NULL, *const *values = NULL;
	size_t n = 0;

	ceb_config_find_labels(cfg, kind, ns, name, &keys, &values, &n);
	return ceb_policy_applies(p, ceb_auth_kind_group(kind), kind, ns, name, keys, values, n);
}

struct ceb_auth_targets {
	struct ceb_auth_target *t;
	size_t n;
};

void ceb_auth_targets_free(struct ceb_auth_targets *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->n; i++)
		free(ts->t[i].policies);
	free(ts->t);
	free(ts);
}

struct ceb_auth_targets *ceb_auth_attach(struct ceb_auth *a, const struct ceb_config *cfg,
                                         struct ceb_endpoint *const *lists, size_t nlists,
                                         char *err, size_t errlen)
{
	struct ceb_auth_targets *ts = calloc(1, sizeof(*ts));
	size_t n = 0, npol = 0, policed = 0;

	for (const struct ceb_event_policy *p = ceb_policy_first(cfg); p; p = ceb_policy_next(p))
		npol++;
	for (size_t l = 0; l < nlists; l++)
		for (struct ceb_endpoint *ep = lists[l]; ep; ep = ep->next)
			n += ep->path[0] != '\0';
	if (!ts || !(ts->t = calloc(n ? n : 1, sizeof(*ts->t))))
		goto oom;
	for (size_t l = 0; l < nlists; l++)
		for (struct ceb_endpoint *ep = lists[l]; ep; ep = ep->next) {
			struct ceb_auth_target *t;
			const char *kind, *backing;
			char okind[32], oname[256];

			if (!ep->path[0])
				continue;
			t = &ts->t[ts->n++];
			t->ns = ep->ns;
			identity(ep, &kind, &backing);
			ceb_auth_audience(ceb_auth_kind_group(backing ? backing : kind),
			                  backing ? backing : kind, ep->ns, ep->name, t->audience,
			                  sizeof(t->audience));
			t->policies = calloc(npol ? npol : 1, sizeof(*t->policies));
			if (!t->policies)
				goto oom;
			/* the first channel of a Sequence or Parallel takes events at the flow's
			 * address: policies to the flow apply there */
			okind[0] = oname[0] = '\0';
			if (ep->ecfg && ep->ecfg->owner && ep->ecfg->address)
				sscanf(ep->ecfg->owner, "%31s %*[^/]/%255s", okind, oname);
			for (const struct ceb_event_policy *p = ceb_policy_first(cfg); p;
			     p = ceb_policy_next(p))
				if (applies(cfg, p, kind, ep->ns, ep->name) ||
				    (backing && applies(cfg, p, backing, ep->ns, ep->name)) ||
				    (okind[0] && oname[0] && applies(cfg, p, okind, ep->ns, oname)))
					t->policies[t->npolicies++] = p;
			CEB_LOG_DEBUG("auth", "%s: audience %s, %zu EventPolic%s", ep->label,
			              t->audience, t->npolicies, t->npolicies == 1 ? "y" : "ies");
			policed += t->npolicies > 0;
		}
	/* every target is complete before any endpoint can see one */
	for (size_t l = 0, i = 0; l < nlists; l++)
		for (struct ceb_endpoint *ep = lists[l]; ep; ep = ep->next)
			if (ep->path[0])
				__atomic_store_n(&ep->auth, &ts->t[i++], __ATOMIC_RELEASE);
	CEB_LOG_INFO("auth",
	             "%zu address%s a bearer token; %zu EventPolic%s, applying to %zu of them; "
	             "the others admit %s",
	             ts->n, ts->n == 1 ? " needs" : "es need", npol, npol == 1 ? "y" : "ies",
	             policed,
	             a->mode == CEB_AUTH_ALLOW_ALL  ? "any valid token"
	             : a->mode == CEB_AUTH_DENY_ALL ? "nobody (deny-all)"
	                                            : "subjects of their namespace");
	return ts;
oom:
	ceb_auth_targets_free(ts);
	ceb_seterr(err, errlen, "out of memory");
	return NULL;
}

static int reject(struct ceb_auth *a, enum ceb_jwt_reason rs, const char *label, const char *why,
                  char *reason, size_t rlen)
{
	atomic_fetch_add(&a->rejected[rs], 1);
	CEB_LOG_DEBUG("auth", "%s: refused (%s): %s", label, ceb_jwt_reason_name(rs), why);
	switch (rs) {
	case CEB_JWT_MISSING:
		ceb_seterr(reason, rlen,
		           "a bearer token is required (Authorization: Bearer <JWT>)");
		return 401;
	case CEB_JWT_FORBIDDEN:
		ceb_seterr(reason, rlen, "no EventPolicy of %s allows this sender%s", label,
		           strstr(why, "event ") == why ? " to send this event" : "");
		return 403;
	case CEB_JWT_EXPIRED: ceb_seterr(reason, rlen, "the bearer token has expired"); return 401;
	case CEB_JWT_AUDIENCE:
		ceb_seterr(reason, rlen, "the bearer token is not for this address");
		return 401;
	default: ceb_seterr(reason, rlen, "the bearer token is not valid"); return 401;
	}
}

static struct cached_token *slot(struct ceb_auth *a, const unsigned char *digest)
{
	return &a->cache[((size_t)digest[0] | (size_t)digest[1] << 8) % TOKEN_CACHE];
}

/* A token verified before for t with the current keys, still within its times: its subject. */
static bool cache_get(struct ceb_auth *a, const unsigned char *digest,
                      const struct ceb_auth_target *t, unsigned long gen, double now, char *sub,
                      size_t subsz)
{
	struct cached_token *c = slot(a, digest);
	bool hit;

	pthread_mutex_lock(&a->cache_lock);
	hit = c->gen == gen && c->t == t && !memcmp(c->digest, digest, sizeof(c->digest)) &&
	      c->times.exp + CEB_JWT_LEEWAY_S > now &&
	      c->times.not_before - CEB_JWT_LEEWAY_S <= now;
	if (hit)
		snprintf(sub, subsz, "%s", c->sub);
	pthread_mutex_unlock(&a->cache_lock);
	return hit;
}

static void cache_put(struct ceb_auth *a, const unsigned char *digest,
                      const struct ceb_auth_target *t, unsigned long gen,
                      const struct ceb_jwt_times *times, const char *sub)
{
	struct cached_token *c = slot(a, digest);

	pthread_mutex_lock(&a->cache_lock);
	memcpy(c->digest, digest, sizeof(c->digest));
	c->t = t;
	c->gen = gen;
	c->times = *times;
	snprintf(c->sub, sizeof(c->sub), "%s", sub);
	pthread_mutex_unlock(&a->cache_lock);
}

/* An address no EventPolicy applies to: Knative's default-authorization-mode. */
static int default_mode(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                        const char *sub, char *reason, size_t rlen)
{
	char prefix[300], why[600];

	switch (a->mode) {
	case CEB_AUTH_ALLOW_ALL: return 0;
	case CEB_AUTH_DENY_ALL:
		return reject(a, CEB_JWT_FORBIDDEN, label,
		              "no EventPolicy applies, and the default mode is deny-all", reason,
		              rlen);
	case CEB_AUTH_ALLOW_SAME_NAMESPACE:
		snprintf(prefix, sizeof(prefix), "system:serviceaccount:%s:", t->ns);
		if (!strncmp(sub, prefix, strlen(prefix)))
			return 0;
		snprintf(why, sizeof(why),
		         "no EventPolicy applies, and subject '%.200s' is not of namespace %s "
		         "(default mode allow-same-namespace)",
		         sub, t->ns);
		return reject(a, CEB_JWT_FORBIDDEN, label, why, reason, rlen);
	}
	return 0;
}

/* A verified subject at address t: its policies, else the default mode. */
static int admit_subject(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                         const char *sub, char *reason, size_t rlen)
{
	char why[300];

	if (t->npolicies == 0)
		return default_mode(a, t, label, sub, reason, rlen);
	for (size_t i = 0; i < t->npolicies; i++)
		if (ceb_policy_allows_sub(t->policies[i], sub))
			return 0;
	snprintf(why, sizeof(why), "subject '%.200s' is in none of its %zu EventPolic%s", sub,
	         t->npolicies, t->npolicies == 1 ? "y" : "ies");
	return reject(a, CEB_JWT_FORBIDDEN, label, why, reason, rlen);
}

int ceb_auth_check_token(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                         const struct ceb_http_header *headers, size_t nheaders, char *sub,
                         size_t subsz, char *reason, size_t rlen)
{
	const char *value = NULL, *tok;
	const struct ceb_jwt_expect want = {a->issuer, t->audience, (int64_t)time(NULL)};
	enum ceb_jwt_reason rs;
	struct ceb_jwt_times times;
	unsigned char digest[32];
	unsigned long gen;
	bool hashed, cached = false;
	char why[300];
	size_t n = 0, len;

	for (size_t i = 0; i < nheaders; i++)
		if (!strcasecmp(headers[i].name, "authorization")) {
			value = headers[i].value;
			n++;
		}
	if (!value)
		return reject(a, CEB_JWT_MISSING, label, "no Authorization header", reason, rlen);
	if (n > 1)
		return reject(a, CEB_JWT_MALFORMED, label, "Authorization appears more than once",
		              reason, rlen);
	tok = value + strspn(value, " \t");
	if (strncasecmp(tok, "Bearer ", 7) != 0)
		return reject(a, CEB_JWT_MISSING, label,
		              "Authorization is not of the Bearer scheme", reason, rlen);
	tok += 7;
	tok += strspn(tok, " \t");
	len = strlen(tok);
	while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	hashed = len <= CEB_JWT_MAX_LEN &&
	         gnutls_hash_fast(GNUTLS_DIG_SHA256, tok, len, digest) == 0;
	/* One read lock over the look-up and the check: a reload cannot come between them, so
	 * nothing the old keys verified is taken once the new keys are in. */
	pthread_rwlock_rdlock(&a->lock);
	gen = a->gen;
	if (hashed && cache_get(a, digest, t, gen, (double)want.now, sub, subsz)) {
		rs = CEB_JWT_OK;
		cached = true;
	} else {
		rs = ceb_jwt_verify_times(a->keys, tok, len, &want, sub, subsz, &times, why,
		                          sizeof(why));
	}
	pthread_rwlock_unlock(&a->lock);
	if (rs == CEB_JWT_OK && !cached && strlen(sub) + 1 >= subsz) {
		/* cut short, it could match a policy's subject it is not */
		rs = CEB_JWT_MALFORMED;
		snprintf(why, sizeof(why), "a sub claim of %zu bytes or more", subsz - 1);
	}
	if (rs != CEB_JWT_OK)
		return reject(a, rs, label, why, reason, rlen);
	if (hashed && !cached)
		cache_put(a, digest, t, gen, &times, sub);
	return admit_subject(a, t, label, sub, reason, rlen);
}

int ceb_auth_check_sender(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                          const char *sender, char *sub, size_t subsz, char *reason, size_t rlen)
{
	char kind[64], ns[256], name[256], account[128];
	const char *proper;

	if (sscanf(sender, "%63s %255[^/]/%255s", kind, ns, name) != 3) {
		/* not one of ours: the internal token vouches for the daemon, nothing more */
		return reject(a, CEB_JWT_FORBIDDEN, label,
		              "an internal delivery that names no sender", reason, rlen);
	}
	proper = kind_name(kind);
	ceb_policy_oidc_account(ceb_auth_kind_group(proper), proper, name, account,
	                        sizeof(account));
	snprintf(sub, subsz, "system:serviceaccount:%s:%s", ns, account);
	return admit_subject(a, t, label, sub, reason, rlen);
}

int ceb_auth_check_event(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                         const char *sub, const struct ceb_event *ev, char *reason, size_t rlen)
{
	const struct ceb_attr *id, *type;
	char why[600];

	if (t->npolicies == 0)
		return 0;
	for (size_t i = 0; i < t->npolicies; i++) {
		const struct ceb_event_policy *p = t->policies[i];

		if (ceb_policy_allows_sub(p, sub) &&
		    (!p->filter || ceb_filter_match(p->filter, ev)))
			return 0;
	}
	id = ceb_event_get(ev, "id");
	type = ceb_event_get(ev, "type");
	snprintf(why, sizeof(why),
	         "event %.100s of type %.100s from '%.150s' passes the filters of no EventPolicy "
	         "that admits the sender",
	         id ? id->value : "?", type ? type->value : "?", sub);
	return reject(a, CEB_JWT_FORBIDDEN, label, why, reason, rlen);
}

void ceb_auth_metrics(const struct ceb_auth *a, struct ceb_buf *out)
{
	if (!a)
		return;
	ceb_buf_puts(out, "# HELP cebroker_auth_rejected_total Requests refused by sender "
	                  "authentication (401) or EventPolicy (403), by reason.\n"
	                  "# TYPE cebroker_auth_rejected_total counter\n");
	for (int rs = CEB_JWT_MISSING; rs < CEB_JWT_NREASONS; rs++)
		ceb_buf_printf(out, "cebroker_auth_rejected_total{reason=\"%s\"} %lu\n",
		               ceb_jwt_reason_name((enum ceb_jwt_reason)rs),
		               atomic_load(&a->rejected[rs]));
}
