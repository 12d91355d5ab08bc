/* The daemon's lifecycle: build the runtime (broker/endpoint.h) from a loaded configuration, start
 * the ingress, the dispatchers, the channels and the sources, drain on SIGTERM, stop. The top of
 * the core: only the command line calls it. */
#ifndef CEB_DAEMON_H
#define CEB_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/endpoint.h"

/* The whole daemon: build from a configuration (which it then owns), start, drain, stop. */
int ceb_daemon_create(const struct ceb_settings *set, struct ceb_config *cfg,
                      struct ceb_daemon **out, char *errbuf, size_t errlen);
int ceb_daemon_start(struct ceb_daemon *dmn, char *errbuf, size_t errlen);
/* What the channels would refuse at create that the configuration loader cannot know (settings a
 * backend library checks), found without starting anything: one line each appended to errs. Returns
 * their number. For `cebroker validate`. */
size_t ceb_daemon_check(const struct ceb_settings *set, const struct ceb_config *cfg,
                        struct ceb_buf *errs);
/* For tests and fuzzers: start the channels only (no listening socket, no delivery threads) and
 * mark the daemon ready, so that requests can be driven through broker/request.h; messages then
 * wait in the dispatchers until ceb_dispatcher_give_back(). */
int ceb_daemon_start_offline(struct ceb_daemon *dmn, char *errbuf, size_t errlen);
/* What a drain waits for: events stored and not settled, or deliveries held by dispatchers, whichever
 * is more (a delivery held is of an event stored: never both). Any thread. */
size_t ceb_daemon_pending(struct ceb_daemon *dmn);
/* SIGTERM: the ingress answers 503 from now on and sources emit nothing more (what they emitted is
 * still delivered; a delivery of a durable source that fails now is left for the next start). */
void ceb_daemon_drain(struct ceb_daemon *dmn);
void ceb_daemon_destroy(struct ceb_daemon *dmn);
/* Sender authentication (--auth-jwks) for every address, now and after each reload: dmn->auth = a,
 * which must outlive the daemon. Main thread, before the daemon serves. */
int ceb_daemon_auth(struct ceb_daemon *dmn, struct ceb_auth *a, char *errbuf, size_t errlen);

/* SIGHUP or a change of the files (run --watch), on the main thread: load the files again and
 * check them as `validate` does; on any error log each (file:line:col), count the failure, keep
 * the running configuration and return it. Otherwise apply the difference (broker/reload.c):
 * unchanged Brokers, channels, sources and their subscriptions keep running untouched, changed
 * ones are replaced, removed ones stop taking events and drain, new ones start. 0 on success. */
int ceb_daemon_reload(struct ceb_daemon *dmn, const char *const *paths, size_t npaths,
                      const struct ceb_config_opts *opts, bool allow_empty);
/* Advance what earlier reloads retired (the drains); main thread, often. Returns how many
 * endpoints still drain. */
size_t ceb_daemon_reap(struct ceb_daemon *dmn);

#endif
