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

#endif
