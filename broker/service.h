/* The service manager's side of the lifecycle: tells systemd (Type=notify) that the daemon is ready,
 * reloading or stopping. Without libsystemd, or when not started by systemd, it does nothing. */
#ifndef CEB_SERVICE_H
#define CEB_SERVICE_H

/* state is sd_notify's: "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". Any thread. */
void ceb_service_notify(const char *state);

#endif
