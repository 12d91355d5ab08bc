/* See service.h: sd_notify(3) when libsystemd was found at configure time, else nothing. sd_notify
 * itself does nothing when $NOTIFY_SOCKET is unset (not started by systemd with Type=notify). */
#include "autoconfig.h"
#include "broker/service.h"

#ifdef HAVE_LIBSYSTEMD
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "broker/log.h"

/* libsystemd is opened only when systemd listens ($NOTIFY_SOCKET set), not linked: with what it
 * brings (libgcrypt, liblzma, libcap...) it was 0.65 MB of resident pages in every daemon. */
static __typeof__(&sd_notify) notify_fn;
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;

static void notify_load(void)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	void *h, *p = NULL;

	if (!sock || !*sock)
		return;
	h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h)
		p = dlsym(h, "sd_notify");
	if (!p) {
		const char *e = dlerror();

		CEB_LOG_ERR("service", "$NOTIFY_SOCKET is set but sd_notify cannot be loaded: %s",
		            e ? e : "libsystemd.so.0 has no sd_notify");
		return;
	}
	memcpy(&notify_fn, &p, sizeof(p));
}

void ceb_service_notify(const char *state)
{
	/* unset_environment 0: the processes a ContainerSource starts are not systemd's to
	 * notify, but they get an environment of their own, not ours. */
	pthread_once(&notify_once, notify_load);
	if (notify_fn)
		(void)notify_fn(0, state);
}
#else
void ceb_service_notify(const char *state)
{
	(void)state;
}
#endif
