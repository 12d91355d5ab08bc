/* What daemon.c (building the runtime from a configuration) and reload.c (applying a new one) share,
 * and nothing else includes. Main thread only. */
#ifndef CEB_RUNTIME_H
#define CEB_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config/config.h"
#include "broker/endpoint.h"

/* A loaded configuration and the endpoints built from it (plus one while it is the one in force):
 * freed when nothing points into it any more. */
struct ceb_gen {
	struct ceb_config *cfg;
	size_t refs;
	unsigned seq; /* 0 for the configuration loaded at start, then 1, 2... for each reload */
};

struct ceb_gen *ceb_gen_new(struct ceb_config *cfg);
void ceb_gen_unref(struct ceb_gen *gen);

/* A running endpoint to keep in place of the unit (an endpoint and its subscriptions) that label,
 * path and fingerprint fp describe (own_fp: of the endpoint alone, 0 when its subscriptions cannot
 * change while it runs), or NULL to build it. A kept endpoint's subscriptions are not built. */
typedef struct ceb_endpoint *ceb_rt_keep_f(void *arg, const char *label, const char *path,
                                           uint64_t fp, uint64_t own_fp);

/* Build cfg's units into the lists *eps and *subs (appended; not started, dispatchers attached),
 * but those keep returns an endpoint for (keep NULL: every one). Endpoints take a reference on gen.
 * On failure what was built stays on the lists for ceb_rt_free. */
int ceb_rt_build(struct ceb_daemon *dmn, struct ceb_gen *gen, ceb_rt_keep_f *keep, void *arg,
                 struct ceb_endpoint **eps, struct ceb_subscription **subs, char *errbuf,
                 size_t errlen);
/* A Trigger's runtime on brk, appended at *tail, its dispatchers attached, not subscribed. NULL
 * when out of memory. */
struct ceb_subscription *ceb_rt_trigger_new(struct ceb_daemon *dmn, const struct ceb_config *cfg,
                                            const struct ceb_trigger_cfg *tc,
                                            struct ceb_endpoint *brk,
                                            struct ceb_subscription ***tail);
/* Subscribe a Trigger on its Broker's running channel (channel_ops.subscribe_live). */
int ceb_rt_subscribe_live(struct ceb_daemon *dmn, struct ceb_subscription *trg, char *errbuf,
                          size_t errlen);
/* Resolve the destinations of subscriptions (the port is bound). */
int ceb_rt_resolve(struct ceb_daemon *dmn, struct ceb_subscription *subs, bool all, char *errbuf,
                   size_t errlen);
/* Start an endpoint's channel (and its source). */
int ceb_rt_start(struct ceb_endpoint *brk, char *errbuf, size_t errlen);
/* Stop its source and its channel (once). */
void ceb_rt_stop(struct ceb_endpoint *brk);
/* Free one endpoint (its source, its channel) and one subscription; stopped, nothing held. */
void ceb_rt_free_endpoint(struct ceb_endpoint *brk);
void ceb_rt_free_subscription(struct ceb_subscription *trg);

/* The fingerprint of an endpoint's unit as cfg describes it (reload.c); of a Broker alone, and of a
 * Trigger alone. */
uint64_t ceb_rt_fp_broker(const struct ceb_config *cfg, const struct ceb_broker_cfg *bc);
uint64_t ceb_rt_fp_broker_own(const struct ceb_config *cfg, const struct ceb_broker_cfg *bc);
uint64_t ceb_rt_fp_trigger(const struct ceb_config *cfg, const struct ceb_trigger_cfg *tc);
uint64_t ceb_rt_fp_endpoint(const struct ceb_config *cfg, const struct ceb_endpoint_cfg *ec);
uint64_t ceb_rt_fp_source(const struct ceb_config *cfg, const struct ceb_source_cfg *sc,
                          bool takes_requests);
/* Advance the drain of retired endpoints; with force, stop what still drains. Returns how many are
 * left. */
size_t ceb_rt_reap(struct ceb_daemon *dmn, bool force);

/* Free every sender-authentication target set (ceb_daemon_destroy, once nothing serves). */
void ceb_rt_auth_free(struct ceb_daemon *dmn);

#endif
