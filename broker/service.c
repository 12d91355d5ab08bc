/* See service.h: sd_notify(3) when libsystemd was found at configure time, else nothing. sd_notify
 * itself does nothing when $NOTIFY_SOCKET is unset (not started by systemd with Type=notify). */
#include "autoconfig.h"
#include "broker/service.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

void ceb_service_notify(const char *state)
{
	/* unset_environment 0: the processes a ContainerSource starts are not systemd's to
	 * notify, but they get an environment of their own, not ours. */
	(void)sd_notify(0, state);
}
#else
void ceb_service_notify(const char *state)
{
	(void)state;
}
#endif
