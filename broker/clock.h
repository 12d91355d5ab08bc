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

#endif
