/* What the contract suites share for waiting: an absolute CLOCK_REALTIME deadline for
 * pthread_cond_timedwait, ms milliseconds from now. */
#ifndef CEB_TEST_DEADLINE_H
#define CEB_TEST_DEADLINE_H

#include <time.h>

static inline void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

#endif
