/* Cron schedules as Knative's PingSource reads them (robfig/cron v3 with SecondOptional, Minute,
 * Hour, Dom, Month, Dow and Descriptor): 5 fields, or 6 with seconds first; `*`, `?`, ranges,
 * steps, lists, month and day names; @yearly... @hourly; a CRON_TZ= or TZ= prefix. The next fire
 * time is computed in the schedule's zone with ICU's calendar (never the process's TZ), as robfig's
 * Next does it, daylight-saving transitions included: a skipped hour's times skip, a repeated
 * hour's run twice. */
#ifndef CEB_CRON_H
#define CEB_CRON_H

#include <stddef.h>
#include <stdint.h>

struct ceb_cron;

/* What ceb_cron_parse returns besides 0. */
enum {
	CEB_CRON_ESYNTAX = -1, /* the schedule (its zone prefix included) is wrong */
	CEB_CRON_EZONE = -2,   /* `zone` is no time zone of the database */
	CEB_CRON_ENOMEM = -3,
};

/* Parse spec in zone (an IANA name, applied as Knative does: a CRON_TZ= prefix; NULL or "": the
 * prefix of spec, else the process's local zone). 0 and *out (the caller frees it with
 * ceb_cron_free), or a CEB_CRON_E* code with the reason in err. Any thread. */
int ceb_cron_parse(const char *spec, const char *zone, struct ceb_cron **out, char *err,
                   size_t errlen);
/* The first fire time strictly after `after` (Unix seconds), or -1 when none comes within five
 * years (0 0 30 2 *). Not thread-safe on one schedule (it holds a calendar). */
int64_t ceb_cron_next(struct ceb_cron *c, int64_t after);
/* The zone the schedule runs in ("America/New_York", or the local zone's name). */
const char *ceb_cron_zone(const struct ceb_cron *c);
/* Whether name is a time zone the database knows. */
int ceb_cron_zone_valid(const char *name);
void ceb_cron_free(struct ceb_cron *c);

#endif
