/* The monotonic clock every part of the daemon measures time with: deadlines, timers, durations.
 * A leaf: it includes nothing of the project. */
#ifndef CEB_CLOCK_H
#define CEB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds. Any thread. */
static inline uint64_t ceb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds on the same time line, up to a scheduler tick (1 to 10 ms) behind: for the
 * checks per request against limits of seconds, where the precise clock's read (the TSC, slow in a
 * virtual machine) would be most of their cost. Any thread. */
static inline uint64_t ceb_now_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The time `ms` milliseconds from now on clock `clk`, as pthread_cond_timedwait() takes it:
 * CLOCK_REALTIME for a condition variable with default attributes, CLOCK_MONOTONIC for one made
 * with that clock. Any thread. */
static inline struct timespec ceb_timespec_in_ms(clockid_t clk, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif
