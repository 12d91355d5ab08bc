/* Sender authentication and EventPolicy at the ingress, as Knative's receivers do it: with
 * --auth-jwks and --auth-issuer every address takes only requests with a bearer JWT of that issuer,
 * signed by a key of the JWKS, for the address's audience; the EventPolicies that apply to the
 * address then say which subjects may send which events. Two steps: the token once the header
 * block is in (ceb_auth_check_token: 401, or 403 when no policy admits the subject at all), the
 * policies' filters once the events are decoded (ceb_auth_check_event: 403). */
#ifndef CEB_AUTH_H
#define CEB_AUTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "broker/auth/jwt.h"
#include "broker/buf.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "broker/config/config.h"

struct ceb_auth;
struct ceb_daemon;
struct ceb_endpoint;

/* What one address requires: its audience and the EventPolicies that apply to it. Made by
 * ceb_auth_attach, owned by what it returns, read-only afterwards. */
struct ceb_auth_target {
	char audience[512]; /* Knative's: <group>/<kind>/<namespace>/<name>, lower case */
	const char *ns;     /* the address's namespace (the endpoint's) */
	const struct ceb_event_policy **policies;
	size_t npolicies; /* 0: the default mode says (ceb_auth_set_default_mode) */
};

/* What an address that no EventPolicy applies to admits: Knative's default-authorization-mode. */
enum ceb_auth_mode {
	CEB_AUTH_ALLOW_ALL = 0,        /* any valid token (cebroker's default) */
	CEB_AUTH_ALLOW_SAME_NAMESPACE, /* a subject system:serviceaccount:<the address's ns>:... */
	CEB_AUTH_DENY_ALL,             /* nobody: every address needs a policy */
};
/* "allow-all", "allow-same-namespace" or "deny-all" into *mode; -1 for anything else. */
int ceb_auth_mode_parse(const char *s, enum ceb_auth_mode *mode);

/* Room for a token's subject. */
#define CEB_AUTH_SUB_MAX 256

/* Load the JWKS file and keep the issuer (both required). 0 and *out, or an error with a message
 * (the file, what is wrong with it). Main thread. */
int ceb_auth_create(const char *jwks_path, const char *issuer, struct ceb_auth **out, char *err,
                    size_t errlen);
/* The same from a JWKS document in memory (tests, fuzzers); reload then fails. */
int ceb_auth_create_json(const char *json, size_t len, const char *issuer, struct ceb_auth **out,
                         char *err, size_t errlen);
/* Re-read the JWKS file (SIGHUP): on success the new keys serve every request that starts after,
 * on failure (logged by the caller with err) the old keys stay. Any thread. */
int ceb_auth_reload(struct ceb_auth *a, char *err, size_t errlen);
/* Set the default mode (before the daemon serves). */
void ceb_auth_set_default_mode(struct ceb_auth *a, enum ceb_auth_mode mode);
/* Frees a, after the daemon stopped serving. Accepts NULL. */
void ceb_auth_destroy(struct ceb_auth *a);

/* One attach's targets (ceb_auth_attach). */
struct ceb_auth_targets;

/* Give every endpoint with an address on the lists its audience and the EventPolicies of cfg that
 * apply to it: one atomic store of ep->auth each, which a request reads once when it is routed
 * (ceb_endpoint_auth). Returns the targets, which point into cfg: the caller keeps cfg alive, and
 * frees them (ceb_auth_targets_free) only once no request can hold one; NULL with err when out of
 * memory. Main thread; at start and at each reload, before new endpoints are reachable. */
struct ceb_auth_targets *ceb_auth_attach(struct ceb_auth *a, const struct ceb_config *cfg,
                                         struct ceb_endpoint *const *lists, size_t nlists,
                                         char *err, size_t errlen);
void ceb_auth_targets_free(struct ceb_auth_targets *ts);

/* Knative's audience of a resource, lower case, into buf: "eventing.knative.dev/broker/ns/name". */
void ceb_auth_audience(const char *group, const char *kind, const char *ns, const char *name,
                       char *buf, size_t sz);
/* The API group of a kind this build loads ("Broker" -> "eventing.knative.dev"; compared without
 * case), or "" when unknown. */
const char *ceb_auth_kind_group(const char *kind);

/* Step one, once the header block is in: the Authorization header of a request to address t.
 * Returns 0 (admitted so far; sub holds the token's subject), 401 (no or bad token) or 403 (no
 * policy of the address admits the subject). reason gets the short answer for the client; the
 * precise reason is logged at debug level; the refusal is counted by reason. Any thread. */
int ceb_auth_check_token(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                         const struct ceb_http_header *headers, size_t nheaders, char *sub,
                         size_t subsz, char *reason, size_t rlen);
/* Step one for a delivery of this daemon's own (a request with its internal token): sender is the
 * resource that delivers, "kind ns/name" (CEB_INTERNAL_SENDER_HEADER), judged by the OIDC subject
 * Knative gives that resource (system:serviceaccount:<ns>:<name>-oidc-<group>-<kind>), which goes
 * into sub. 0 or 403, as ceb_auth_check_token. Any thread. */
int ceb_auth_check_sender(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                          const char *sender, char *sub, size_t subsz, char *reason, size_t rlen);
/* Step two, for each decoded event of a request that passed step one: 0, or 403 when no policy of
 * t that admits sub lets this event through its filters. Any thread. */
int ceb_auth_check_event(struct ceb_auth *a, const struct ceb_auth_target *t, const char *label,
                         const char *sub, const struct ceb_event *ev, char *reason, size_t rlen);

/* cebroker_auth_rejected_total{reason="..."} for /metrics (nothing when a is NULL). */
void ceb_auth_metrics(const struct ceb_auth *a, struct ceb_buf *out);

#endif
