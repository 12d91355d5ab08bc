/* The figures /metrics shows beside the counters: HTTP status counts and latency histograms (with
 * Knative's millisecond buckets), and the in-flight and queued gauges of a delivery. Lock-free:
 * every update is one relaxed atomic add, so the hot paths (ingress threads, dispatchers) never
 * wait on each other or on a scrape. */
#ifndef CEB_STATS_H
#define CEB_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds in milliseconds: Knative's (1, 2, 5, ... 10000), then +Inf. */
#define CEB_HIST_BOUNDS 13
extern const unsigned ceb_hist_bounds_ms[CEB_HIST_BOUNDS];

/* A Prometheus histogram: counts per bucket (not cumulative: one add per observation) and the sum
 * in microseconds. */
struct ceb_hist {
	atomic_ulong bucket[CEB_HIST_BOUNDS + 1];
	atomic_ulong sum_us;
};

/* Answers by HTTP status, in a small lock-free table: a slot is claimed for a status the first time
 * it is seen (compare-and-swap), then counted in; a status with no slot left counts in `other`.
 * Status 0 is "no answer" (could not connect, timed out). */
#define CEB_CODES 16
struct ceb_codes {
	atomic_int code[CEB_CODES]; /* status + 1; 0: free */
	atomic_ulong n[CEB_CODES];
	atomic_ulong other;
};

/* What an endpoint (a Broker's ingress) or a delivery (a Trigger) records. Zeroed with its owner
 * (calloc); any thread updates it. */
struct ceb_stats {
	struct ceb_codes codes;
	struct ceb_hist latency;
	struct ceb_hist processing; /* a delivery: from the channel to its first request */
	atomic_long inflight;       /* a delivery: requests being written or awaited now */
	atomic_long jobs;           /* a delivery: events the dispatchers hold (in flight, queued,
				 waiting for a retry) */
};

/* Record one duration in a histogram. Any thread. */
void ceb_hist_observe(struct ceb_hist *h, uint64_t us);

/* Record one answer: its status (0: none) and how long it took. Any thread. */
void ceb_stats_observe(struct ceb_stats *st, long status, uint64_t us);

/* Monotonic microseconds. Any thread. */
uint64_t ceb_now_us(void);

#endif
