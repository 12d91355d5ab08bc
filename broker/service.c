/* See service.h. */
#include "broker/service.h"

void ceb_service_notify(const char *state)
{
	(void)state;
}
