/* See stats.h: relaxed atomic adds only; /metrics reads them with relaxed loads, so a scrape sees
 * each figure whole, though not all of them at the same instant. */
#include <time.h>

#include "broker/stats.h"

const unsigned ceb_hist_bounds_ms[CEB_HIST_BOUNDS] = {1,   2,   5,    10,   20,   50,   100,
                                                      200, 500, 1000, 2000, 5000, 10000};

uint64_t ceb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void count_status(struct ceb_codes *c, long status)
{
	int want = status >= 0 && status < 1000 ? (int)status + 1 : 1;

	for (unsigned i = 0; i < CEB_CODES; i++) {
		int have = atomic_load_explicit(&c->code[i], memory_order_acquire);

		if (have == 0) {
			int none = 0;
			/* claim it; if another thread claimed it first, have is what it wrote */
			if (atomic_compare_exchange_strong(&c->code[i], &none, want))
				have = want;
			else
				have = none;
		}
		if (have == want) {
			atomic_fetch_add_explicit(&c->n[i], 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&c->other, 1, memory_order_relaxed);
}

void ceb_hist_observe(struct ceb_hist *h, uint64_t us)
{
	unsigned b = 0;

	/* bucket le=B holds observations <= B ms: 1000 us is in le="1" */
	while (b < CEB_HIST_BOUNDS && us > (uint64_t)ceb_hist_bounds_ms[b] * 1000)
		b++;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void ceb_stats_observe(struct ceb_stats *st, long status, uint64_t us)
{
	count_status(&st->codes, status);
	ceb_hist_observe(&st->latency, us);
}
