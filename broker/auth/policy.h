/* Knative's EventPolicy (eventing.knative.dev/v1alpha1) as the loader reads it: to whom it applies
 * (spec.to: refs and label selectors), who may send (spec.from: subjects, exact or a prefix ending
 * in '*', and refs to resources, which stand for Knative's OIDC subject of that resource) and what
 * (spec.filters, the Subscriptions API dialects). Kept in the configuration as a config object of
 * kind "EventPolicy"; broker/auth/auth.c matches requests against them. Immutable once loaded. */
#ifndef CEB_AUTH_POLICY_H
#define CEB_AUTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/config/config.h"
#include "filters/filter.h"

#define CEB_EVENT_POLICY_KIND "EventPolicy"

/* A label selector requirement (matchExpressions): In, NotIn, Exists, DoesNotExist. */
enum ceb_label_op {
	CEB_LABEL_IN,
	CEB_LABEL_NOT_IN,
	CEB_LABEL_EXISTS,
	CEB_LABEL_NOT_EXISTS,
};

struct ceb_label_req {
	char *key;
	enum ceb_label_op op;
	char **values;
	size_t nvalues;
};

/* One spec.to entry: a ref (name set) or a selector (name NULL) over resources of group/kind in
 * the policy's namespace. */
struct ceb_policy_to {
	char *group, *kind;    /* the apiVersion's group ("eventing.knative.dev"), the kind */
	char *name;            /* a ref's name, NULL for a selector */
	char **lkeys, **lvals; /* matchLabels */
	size_t nlabels;
	struct ceb_label_req *reqs; /* matchExpressions */
	size_t nreqs;
};

struct ceb_event_policy {
	struct ceb_config_object object; /* what the configuration keeps (own points here) */
	char *ns, *name;
	struct ceb_policy_to *to; /* none: every address of its namespace */
	size_t nto;
	/* Subjects allowed to send: exact, or a prefix when ending in '*'; a from.ref is turned into
	 * Knative's subject for it, system:serviceaccount:<ns>:<name>-oidc-<group>-<kind>. None: no
	 * one is allowed by this policy. */
	char **from;
	size_t nfrom;
	struct ceb_filter *filter; /* spec.filters, all of them; NULL: every event */
	struct ceb_loc loc;
};

/* The policies of a configuration, in file order (EventPolicy config objects). */
const struct ceb_event_policy *ceb_policy_first(const struct ceb_config *cfg);
const struct ceb_event_policy *ceb_policy_next(const struct ceb_event_policy *p);

/* Whether policy p applies to the resource of group/kind ns/name whose labels are keys/values
 * (n of them): Knative's rule (an empty spec.to applies to all in its namespace; group, kind and
 * name compared without case). */
bool ceb_policy_applies(const struct ceb_event_policy *p, const char *group, const char *kind,
                        const char *ns, const char *name, char *const *keys, char *const *values,
                        size_t n);
/* Whether sub is one of p's subjects (Knative's SubjectContained). */
bool ceb_policy_allows_sub(const struct ceb_event_policy *p, const char *sub);

/* Knative's OIDC service account name for a resource (auth.GetOIDCServiceAccountNameForResource:
 * kmeta.ChildName(name, "-oidc-<group>-<kind>"), lower case) into buf. */
void ceb_policy_oidc_account(const char *group, const char *kind, const char *name, char *buf,
                             size_t sz);

#endif
