/* Filter benchmark (a program, not a test): evaluations per second of each dialect, and routing
 * throughput through the Trigger index as Triggers grow, against a linear scan as the baseline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/ce/event.h"
#include "filters/filter.h"

#define ROUNDS        3 /* best of, to dampen noise on a shared machine */
#define ROUND_SECONDS 0.3

static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ceb_event *make_event(void)
{
	static const char *const attrs[][2] = {
	        {"specversion", "1.0"},
	        {"id", "b5a0c2d4-1f0e-4c55-9a86-7d1f1b0e4b1a"},
	        {"source", "/orders/eu-west"},
	        {"type", "com.example.order.created"},
	        {"subject", "order-123"},
	        {"time", "2024-05-01T10:00:00Z"},
	        {"tenant", "acme"},
	};
	struct ceb_event *ev = ceb_event_new();
	char err[128];

	if (!ev)
		exit(1);
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (ceb_event_set(ev, attrs[i][0], CEB_TYPE_STRING, attrs[i][1],
		                  strlen(attrs[i][1]), err, sizeof(err)) != 0) {
			fprintf(stderr, "event: %s\n", err);
			exit(1);
		}
	}
	if (ceb_event_set_int(ev, "priority", 42) != 0)
		exit(1);
	return ev;
}

static struct ceb_filter *attrs1(enum ceb_filter_kind kind, const char *name, const char *value)
{
	struct ceb_filter *flt;
	char err[128];

	if (ceb_filter_attrs(kind, 1, &name, &value, &flt, err, sizeof(err)) != 0) {
		fprintf(stderr, "filter: %s\n", err);
		exit(1);
	}
	return flt;
}

static struct ceb_filter *group(enum ceb_filter_kind kind, struct ceb_filter *a,
                                struct ceb_filter *b)
{
	struct ceb_filter *kids[2] = {a, b}, *flt;
	char err[128];

	if (ceb_filter_group(kind, kids, b ? 2 : 1, &flt, err, sizeof(err)) != 0) {
		fprintf(stderr, "filter: %s\n", err);
		exit(1);
	}
	return flt;
}

/* Best rate (calls per second) of fn over ROUNDS rounds of about ROUND_SECONDS each. */
static double rate(void (*fn)(void *arg, unsigned long n), void *arg)
{
	double best = 0;

	for (int r = 0; r < ROUNDS; r++) {
		unsigned long n = 1000, done = 0;
		double start = now(), el;

		do {
			fn(arg, n);
			done += n;
			el = now() - start;
			if (el < ROUND_SECONDS / 10)
				n *= 2;
		} while (el < ROUND_SECONDS);
		if (done / el > best)
			best = done / el;
	}
	return best;
}

struct match_arg {
	const struct ceb_filter *flt;
	const struct ceb_event *ev;
};

static void run_match(void *arg, unsigned long n)
{
	struct match_arg *m = arg;
	unsigned long hits = 0;

	for (unsigned long i = 0; i < n; i++)
		hits += ceb_filter_match(m->flt, m->ev);
	sink += hits;
}

struct route_arg {
	struct ceb_filter_index *idx;
	struct ceb_filter **flts; /* for the linear baseline */
	size_t nflts;
	const struct ceb_event *ev;
};

static int count_cb(void *arg, void *item)
{
	(*(unsigned long *)arg)++;
	return 0;
}

static void run_index(void *arg, unsigned long n)
{
	struct route_arg *r = arg;
	unsigned long hits = 0;

	for (unsigned long i = 0; i < n; i++)
		ceb_filter_index_match(r->idx, r->ev, count_cb, &hits);
	sink += hits;
}

static void run_linear(void *arg, unsigned long n)
{
	struct route_arg *r = arg;
	unsigned long hits = 0;

	for (unsigned long i = 0; i < n; i++)
		for (size_t k = 0; k < r->nflts; k++)
			hits += ceb_filter_match(r->flts[k], r->ev);
	sink += hits;
}

/* n Triggers on distinct types, of which exactly one is the event's type. */
static void route_setup(struct route_arg *r, const struct ceb_event *ev, size_t n)
{
	unsigned long hits = 0;
	char type[64];

	r->ev = ev;
	r->nflts = n;
	r->flts = calloc(n, sizeof(*r->flts));
	r->idx = ceb_filter_index_new();
	if (!r->idx || !r->flts)
		exit(1);
	for (size_t i = 0; i < n; i++) {
		if (i == n / 2)
			snprintf(type, sizeof(type), "com.example.order.created");
		else
			snprintf(type, sizeof(type), "com.example.other.%zu", i);
		r->flts[i] = attrs1(CEB_FILTER_EXACT, "type", type);
		if (ceb_filter_index_add(r->idx, r->flts[i], r->flts[i]))
			exit(1);
	}
	ceb_filter_index_match(r->idx, ev, count_cb, &hits);
	if (hits != 1) {
		fprintf(stderr, "route: %lu matches, expected 1\n", hits);
		exit(1);
	}
}

static void route_teardown(struct route_arg *r)
{
	ceb_filter_index_free(r->idx);
	for (size_t i = 0; i < r->nflts; i++)
		ceb_filter_free(r->flts[i]);
	free(r->flts);
}

int main(void)
{
	struct ceb_event *ev = make_event();
	struct ceb_filter *cq;
	char err[256];
	struct {
		const char *name;
		struct ceb_filter *flt;
	} cases[7];
	static const size_t sizes[3] = {1, 100, 10000};
	struct route_arg routes[3];
	double best[3] = {0}, r, lin1, lin10000;

	cases[0].name = "exact";
	cases[0].flt = attrs1(CEB_FILTER_EXACT, "type", "com.example.order.created");
	cases[1].name = "prefix";
	cases[1].flt = attrs1(CEB_FILTER_PREFIX, "type", "com.example.");
	cases[2].name = "suffix";
	cases[2].flt = attrs1(CEB_FILTER_SUFFIX, "type", ".created");
	cases[3].name = "all";
	cases[3].flt =
	        group(CEB_FILTER_ALL, attrs1(CEB_FILTER_EXACT, "type", "com.example.order.created"),
	              attrs1(CEB_FILTER_PREFIX, "source", "/orders/"));
	cases[4].name = "any";
	cases[4].flt = group(CEB_FILTER_ANY, attrs1(CEB_FILTER_EXACT, "type", "com.example.refund"),
	                     attrs1(CEB_FILTER_SUFFIX, "type", ".created"));
	cases[5].name = "not";
	cases[5].flt =
	        group(CEB_FILTER_NOT, attrs1(CEB_FILTER_EXACT, "type", "com.example.refund"), NULL);
	if (ceb_filter_cesql("type LIKE 'com.example.%' AND tenant = 'acme' AND priority > 10",
	                     NULL, &cq, err, sizeof(err), NULL) != 0) {
		fprintf(stderr, "cesql: %s\n", err);
		return 1;
	}
	cases[6].name = "cesql";
	cases[6].flt = cq;

	printf("filter evaluations per second (one event, every filter matches it):\n");
	for (size_t i = 0; i < 7; i++) {
		struct match_arg m = {cases[i].flt, ev};

		if (!ceb_filter_match(cases[i].flt, ev)) {
			fprintf(stderr, "%s does not match\n", cases[i].name);
			return 1;
		}
		printf("  %-7s %12.0f\n", cases[i].name, rate(run_match, &m));
	}
	printf("  (cesql: type LIKE 'com.example.%%' AND tenant = 'acme' AND priority > 10)\n");

	/* The three sizes are measured in turns, best of several, so that load from other
	 * processes hits them alike. */
	for (size_t i = 0; i < 3; i++)
		route_setup(&routes[i], ev, sizes[i]);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 3; i++)
			if ((r = rate(run_index, &routes[i])) > best[i])
				best[i] = r;
	printf("routing through the index, events per second (one Trigger of N matches):\n");
	for (size_t i = 0; i < 3; i++)
		printf("  triggers=%-6zu %12.0f\n", sizes[i], best[i]);
	printf("  ratio 10000/1:  %12.2f  (goal >= 0.9)\n", best[2] / best[0]);
	lin1 = rate(run_linear, &routes[0]);
	lin10000 = rate(run_linear, &routes[2]);
	printf("baseline, linear scan of every Trigger:\n");
	printf("  triggers=1      %12.0f\n", lin1);
	printf("  triggers=10000  %12.0f\n", lin10000);
	printf("  ratio 10000/1:  %12.4f\n", lin10000 / lin1);
	for (size_t i = 0; i < 3; i++)
		route_teardown(&routes[i]);

	for (size_t i = 0; i < 7; i++)
		ceb_filter_free(cases[i].flt);
	ceb_event_unref(ev);
	return 0;
}
