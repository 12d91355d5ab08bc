/* Knative's cron grammar (robfig/cron v3's parser with optional seconds and descriptors) and its
 * next fire time, computed in the schedule's zone with ICU's calendar as robfig's Next computes it
 * with Go's time package: months and days advance in wall time, hours, minutes and seconds in
 * absolute time, so a skipped hour's times skip and a repeated hour's come twice. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>
#include <unicode/uvernum.h>

#include "sources/cron.h"

#define STAR_BIT (1ULL << 63) /* the field was * or ?: unrestricted (dom and dow rule) */
#define ZONE_MAX 128

struct ceb_cron {
	uint64_t sec, min, hour, dom, month, dow;
	UCalendar *cal;
	char zone[ZONE_MAX];
};

struct bounds {
	int min, max;
	const char *const *names; /* names[i] is the value min+i... (month: 1, dow: 0) */
	const char *what;
};

/* ICU is opened the first time a schedule needs it rather than linked: a daemon without a
 * PingSource then maps neither ICU nor the C++ runtime it brings (2.6 MB of resident pages, a
 * sixth of an idle daemon). The headers give the types and the exported names, which carry the
 * major version (ucal_open_72) unless ICU was built without renaming. */
#define ICU_STR_(x) #x
#define ICU_STR(x)  ICU_STR_(x)
#define ICU_LIB     "libicui18n.so." ICU_STR(U_ICU_VERSION_MAJOR_NUM)
#define ICU_FNS(X)                     \
	X(u_austrncpy)                 \
	X(u_errorName)                 \
	X(u_uastrncpy)                 \
	X(ucal_clear)                  \
	X(ucal_close)                  \
	X(ucal_get)                    \
	X(ucal_getCanonicalTimeZoneID) \
	X(ucal_getMillis)              \
	X(ucal_getTimeZoneID)          \
	X(ucal_open)                   \
	X(ucal_set)                    \
	X(ucal_setAttribute)           \
	X(ucal_setMillis)
#define ICU_FIELD(f) __typeof__(&f) f;

static struct {
	ICU_FNS(ICU_FIELD)
} icu;
static pthread_once_t icu_once = PTHREAD_ONCE_INIT;
static char icu_error[256] = "cannot load ICU"; /* why; "" once ICU is loaded */

static void icu_load(void)
{
	void *h = dlopen(ICU_LIB, RTLD_NOW | RTLD_LOCAL), *p;
	const char *e;

	if (!h) {
		e = dlerror();
		snprintf(icu_error, sizeof(icu_error), "cannot load ICU: %s", e ? e : ICU_LIB);
		return;
	}
#define ICU_SYM(f)                                                                               \
	if (!(p = dlsym(h, ICU_STR(f)))) {                                                       \
		snprintf(icu_error, sizeof(icu_error), "cannot load ICU: %s has no %s", ICU_LIB, \
		         ICU_STR(f));                                                            \
		return;                                                                          \
	}                                                                                        \
	memcpy(&icu.f, &p, sizeof(p));
	ICU_FNS(ICU_SYM)
#undef ICU_SYM
	icu_error[0] = '\0';
}

/* Whether ICU is loaded (loading it the first time); else false with the reason in err. Any
 * thread. */
static bool icu_ready(char *err, size_t errlen)
{
	pthread_once(&icu_once, icu_load);
	if (icu_error[0] && err)
		snprintf(err, errlen, "%s", icu_error);
	return !icu_error[0];
}

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct bounds b_sec = {0, 59, NULL, "second"}, b_min = {0, 59, NULL, "minute"},
                           b_hour = {0, 23, NULL, "hour"}, b_dom = {1, 31, NULL, "day of month"},
                           b_month = {1, 12, month_names, "month"},
                           b_dow = {0, 6, dow_names, "day of week"};

/* A non-negative decimal number (Go's strconv.Atoi, a sign allowed) or, when names, a name. */
static bool parse_num(const char *s, size_t n, const struct bounds *b, int *out, char *err,
                      size_t errlen)
{
	char buf[32];
	long v = 0;
	size_t i = 0;
	bool neg = false;

	if (b->names && n > 0 && n < sizeof(buf)) {
		for (size_t k = 0; k < n; k++)
			buf[k] = (char)tolower((unsigned char)s[k]);
		buf[n] = 0;
		for (size_t k = 0; b->names[k]; k++) {
			if (strcmp(buf, b->names[k]) == 0) {
				*out = (int)k + b->min;
				return true;
			}
		}
	}
	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		goto bad;
	for (; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			goto bad;
		v = v * 10 + (s[i] - '0');
		if (v > 100000)
			goto bad;
	}
	if (neg && v) {
		snprintf(err, errlen, "negative number (-%ld) not allowed: %.*s", v, (int)n, s);
		return false;
	}
	*out = (int)v;
	return true;
bad:
	snprintf(err, errlen, "failed to parse int from %.*s", (int)n, s);
	return false;
}

/* One comma-separated part of a field: *, ?, n, a-b, with an optional /step. */
static bool parse_range(const char *s, size_t n, const struct bounds *b, uint64_t *bits, char *err,
                        size_t errlen)
{
	const char *slash = memchr(s, '/', n), *dash;
	size_t rlen = slash ? (size_t)(slash - s) : n;
	int start, end, step = 1;
	uint64_t extra = 0;
	bool single;

	if (slash && memchr(slash + 1, '/', n - rlen - 1)) {
		snprintf(err, errlen, "too many slashes: %.*s", (int)n, s);
		return false;
	}
	dash = memchr(s, '-', rlen);
	if (dash && dash != s && memchr(dash + 1, '-', rlen - (size_t)(dash - s) - 1)) {
		snprintf(err, errlen, "too many hyphens: %.*s", (int)n, s);
		return false;
	}
	if (dash == s) /* a leading '-' is a sign: a negative number, said as such */
		dash = memchr(s + 1, '-', rlen - 1);
	single = !dash;
	if ((dash ? (size_t)(dash - s) : rlen) == 1 && (s[0] == '*' || s[0] == '?')) {
		start = b->min;
		end = b->max;
		extra = STAR_BIT;
	} else {
		size_t l1 = dash ? (size_t)(dash - s) : rlen;
		if (!parse_num(s, l1, b, &start, err, errlen))
			return false;
		if (!dash)
			end = start;
		else if (!parse_num(dash + 1, rlen - l1 - 1, b, &end, err, errlen))
			return false;
	}
	if (slash) {
		if (!parse_num(slash + 1, n - rlen - 1, &b_sec, &step, err, errlen))
			return false;
		if (single && !extra)
			end = b->max; /* a/s is a-max/s */
		if (step > 1)
			extra = 0;
	}
	if (start < b->min) {
		snprintf(err, errlen, "beginning of range (%d) below minimum (%d) for the %s: %.*s",
		         start, b->min, b->what, (int)n, s);
		return false;
	}
	if (end > b->max) {
		snprintf(err, errlen, "end of range (%d) above maximum (%d) for the %s: %.*s", end,
		         b->max, b->what, (int)n, s);
		return false;
	}
	if (start > end) {
		snprintf(err, errlen, "beginning of range (%d) beyond end of range (%d): %.*s",
		         start, end, (int)n, s);
		return false;
	}
	if (step == 0) {
		snprintf(err, errlen, "step of range should be a positive number: %.*s", (int)n, s);
		return false;
	}
	for (int v = start; v <= end; v += step)
		*bits |= 1ULL << v;
	*bits |= extra;
	return true;
}

static bool parse_field(const char *s, size_t n, const struct bounds *b, uint64_t *bits, char *err,
                        size_t errlen)
{
	*bits = 0;
	for (size_t i = 0; i <= n;) {
		size_t l = 0;
		while (i + l < n && s[i + l] != ',')
			l++;
		if (!parse_range(s + i, l, b, bits, err, errlen))
			return false;
		i += l + 1;
	}
	return true;
}

static const struct {
	const char *name;
	const char *fields;
} descriptors[] = {
        {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"},
};

static bool parse_fields(struct ceb_cron *c, const char *spec, char *err, size_t errlen)
{
	static const struct bounds *const order[] = {&b_sec, &b_min,   &b_hour,
	                                             &b_dom, &b_month, &b_dow};
	uint64_t *const out[] = {&c->sec, &c->min, &c->hour, &c->dom, &c->month, &c->dow};
	const char *f[7];
	size_t fl[7], n = 0, first;

	if (spec[0] == '@') {
		for (size_t i = 0; i < sizeof(descriptors) / sizeof(descriptors[0]); i++)
			if (strcmp(spec, descriptors[i].name) == 0)
				return parse_fields(c, descriptors[i].fields, err, errlen);
		snprintf(err, errlen, "unrecognized descriptor: %s", spec);
		return false;
	}
	for (const char *p = spec; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (n == 7) {
			n++;
			break;
		}
		f[n] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		fl[n] = (size_t)(p - f[n]);
		n++;
	}
	if (n < 5 || n > 6) {
		snprintf(err, errlen, "expected 5 to 6 fields, found %s%zu: %s",
		         n > 7 ? "more than " : "", n > 7 ? (size_t)7 : n, spec);
		return false;
	}
	first = 6 - n; /* 5 fields: seconds are 0 */
	if (first)
		c->sec = 1;
	for (size_t i = first; i < 6; i++)
		if (!parse_field(f[i - first], fl[i - first], order[i], out[i], err, errlen))
			return false;
	return true;
}

static bool zone_utf16(const char *name, UChar *out, size_t cap)
{
	size_t n = strlen(name);

	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
			return false;
	icu.u_uastrncpy(out, name, (int32_t)(n + 1));
	return true;
}

int ceb_cron_zone_valid(const char *name)
{
	UChar id[ZONE_MAX], canon[ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;
	UBool sys = 0;

	if (!icu_ready(NULL, 0) || !zone_utf16(name, id, ZONE_MAX))
		return 0;
	icu.ucal_getCanonicalTimeZoneID(id, -1, canon, ZONE_MAX, &sys, &st);
	return U_SUCCESS(st) && sys;
}

static bool open_calendar(struct ceb_cron *c, const char *zone, char *err, size_t errlen)
{
	UChar id[ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;

	if (zone && !ceb_cron_zone_valid(zone)) {
		snprintf(err, errlen, "unknown time zone %s", zone);
		return false;
	}
	if (zone)
		zone_utf16(zone, id, ZONE_MAX);
	c->cal = icu.ucal_open(zone ? id : NULL, zone ? -1 : 0, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || !c->cal) {
		snprintf(err, errlen, "cannot open a calendar in %s: %s",
		         zone ? zone : "the local zone", icu.u_errorName(st));
		return false;
	}
	/* Go's time.Date takes a skipped wall time with the offset before the transition and a
	 * repeated one as its first instance; robfig's Next relies on it. */
	icu.ucal_setAttribute(c->cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_FIRST);
	icu.ucal_setAttribute(c->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	if (zone) {
		snprintf(c->zone, sizeof(c->zone), "%s", zone);
	} else {
		UChar got[ZONE_MAX];
		int32_t n = icu.ucal_getTimeZoneID(c->cal, got, ZONE_MAX, &st);
		if (U_FAILURE(st) || n <= 0 || n >= ZONE_MAX)
			snprintf(c->zone, sizeof(c->zone), "local");
		else
			icu.u_austrncpy(c->zone, got, ZONE_MAX);
	}
	return true;
}

int ceb_cron_parse(const char *spec, const char *zone, struct ceb_cron **out, char *err,
                   size_t errlen)
{
	struct ceb_cron *c = calloc(1, sizeof(*c));
	char zbuf[ZONE_MAX];
	int rc = CEB_CRON_ESYNTAX;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return CEB_CRON_ENOMEM;
	}
	if (!icu_ready(err, errlen)) /* every schedule has a calendar, whatever its zone */
		goto out;
	if (strstr(spec, "@every")) {
		snprintf(err, errlen, "unsupported schedule: @every is not a PingSource schedule");
		goto out;
	}
	while (isspace((unsigned char)*spec))
		spec++;
	if (strncmp(spec, "TZ=", 3) == 0 || strncmp(spec, "CRON_TZ=", 8) == 0) {
		const char *eq = strchr(spec, '='), *sp = strchr(spec, ' ');
		if (zone && *zone) {
			snprintf(
			        err, errlen,
			        "the schedule has a time zone prefix and spec.timezone is set too");
			goto out;
		}
		if (!sp || (size_t)(sp - eq - 1) >= sizeof(zbuf)) {
			snprintf(err, errlen,
			         "a time zone prefix must be followed by a space and the "
			         "schedule");
			goto out;
		}
		snprintf(zbuf, sizeof(zbuf), "%.*s", (int)(sp - eq - 1), eq + 1);
		if (!ceb_cron_zone_valid(zbuf)) {
			snprintf(err, errlen, "provided bad location %s: unknown time zone", zbuf);
			goto out;
		}
		zone = zbuf;
		spec = sp;
		while (isspace((unsigned char)*spec))
			spec++;
	} else if (zone && *zone && !ceb_cron_zone_valid(zone)) {
		snprintf(err, errlen, "unknown time zone %s", zone);
		rc = CEB_CRON_EZONE;
		goto out;
	}
	if (zone && !*zone)
		zone = NULL;
	if (!*spec) {
		snprintf(err, errlen, "empty spec string");
		goto out;
	}
	if (!parse_fields(c, spec, err, errlen))
		goto out;
	if (!open_calendar(c, zone, err, errlen))
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	ceb_cron_free(c);
	return rc;
}

/* Wall-clock fields of an instant in the schedule's zone. */
struct wall {
	int year, mon, day, hour, min, sec, dow; /* mon 1-12, dow 0 = Sunday */
};

static struct wall wall_of(UCalendar *cal, int64_t t)
{
	UErrorCode st = U_ZERO_ERROR;
	struct wall w;

	icu.ucal_setMillis(cal, (UDate)t * 1000.0, &st);
	w.year = icu.ucal_get(cal, UCAL_EXTENDED_YEAR, &st);
	w.mon = icu.ucal_get(cal, UCAL_MONTH, &st) + 1;
	w.day = icu.ucal_get(cal, UCAL_DATE, &st);
	w.hour = icu.ucal_get(cal, UCAL_HOUR_OF_DAY, &st);
	w.min = icu.ucal_get(cal, UCAL_MINUTE, &st);
	w.sec = icu.ucal_get(cal, UCAL_SECOND, &st);
	w.dow = icu.ucal_get(cal, UCAL_DAY_OF_WEEK, &st) - 1;
	return w;
}

/* Go's time.Date in the zone: fields may overflow (month 13, day 32) and are normalized. */
static int64_t date_of(UCalendar *cal, int year, int mon, int day, int hour, int min, int sec)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate ms;

	icu.ucal_clear(cal);
	icu.ucal_set(cal, UCAL_EXTENDED_YEAR, year);
	icu.ucal_set(cal, UCAL_MONTH, mon - 1);
	icu.ucal_set(cal, UCAL_DATE, day);
	icu.ucal_set(cal, UCAL_HOUR_OF_DAY, hour);
	icu.ucal_set(cal, UCAL_MINUTE, min);
	icu.ucal_set(cal, UCAL_SECOND, sec);
	ms = icu.ucal_getMillis(cal, &st);
	return (int64_t)(ms / 1000.0);
}

static bool has(uint64_t bits, int v)
{
	return (bits >> v) & 1;
}

static bool day_matches(const struct ceb_cron *c, const struct wall *w)
{
	bool dom = has(c->dom, w->day), dow = has(c->dow, w->dow);

	if ((c->dom & STAR_BIT) || (c->dow & STAR_BIT))
		return dom && dow;
	return dom || dow;
}

int64_t ceb_cron_next(struct ceb_cron *c, int64_t after)
{
	UCalendar *cal = c->cal;
	int64_t t = after + 1;
	struct wall w = wall_of(cal, t);
	int year_limit = w.year + 5;
	bool added = false;

wrap:
	w = wall_of(cal, t);
	if (w.year > year_limit)
		return -1;
	while (!has(c->month, w.mon)) {
		if (!added) {
			added = true;
			t = date_of(cal, w.year, w.mon, 1, 0, 0, 0);
			w = wall_of(cal, t);
		}
		t = date_of(cal, w.year, w.mon + 1, w.day, w.hour, w.min, w.sec);
		w = wall_of(cal, t);
		if (w.mon == 1)
			goto wrap;
	}
	while (!day_matches(c, &w)) {
		if (!added) {
			added = true;
			t = date_of(cal, w.year, w.mon, w.day, 0, 0, 0);
			w = wall_of(cal, t);
		}
		t = date_of(cal, w.year, w.mon, w.day + 1, w.hour, w.min, w.sec);
		w = wall_of(cal, t);
		/* a day that does not start at midnight (DST at 00:00): back to its start */
		if (w.hour != 0) {
			if (w.hour > 12)
				t += (int64_t)(24 - w.hour) * 3600;
			else
				t -= (int64_t)w.hour * 3600;
			w = wall_of(cal, t);
		}
		if (w.day == 1)
			goto wrap;
	}
	while (!has(c->hour, w.hour)) {
		if (!added) {
			added = true;
			t = date_of(cal, w.year, w.mon, w.day, w.hour, 0, 0);
		}
		t += 3600;
		w = wall_of(cal, t);
		if (w.hour == 0)
			goto wrap;
	}
	while (!has(c->min, w.min)) {
		if (!added) {
			added = true;
			t -= ((t % 60) + 60) % 60;
		}
		t += 60;
		w = wall_of(cal, t);
		if (w.min == 0)
			goto wrap;
	}
	while (!has(c->sec, w.sec)) {
		added = true;
		t += 1;
		w = wall_of(cal, t);
		if (w.sec == 0)
			goto wrap;
	}
	return t;
}

const char *ceb_cron_zone(const struct ceb_cron *c)
{
	return c->zone;
}

void ceb_cron_free(struct ceb_cron *c)
{
	if (!c)
		return;
	if (c->cal)
		icu.ucal_close(c->cal);
	free(c);
}
