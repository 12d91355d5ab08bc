/* The channel contract, as Check test cases over any backend: publish completes exactly once, every
 * subscription gets every matching event once with its own progress, at most max_inflight unsettled,
 * bounded backends refuse rather than grow. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/error.h"
#include "broker/ce/event.h"
#include "channel_contract.h"
#include "deadline.h"

static const struct contract_backend *be;

/* A subscription that collects what it is handed. */
struct collector {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ceb_event *evs[4096];
	void *handles[4096];
	size_t n;
	size_t settled;
};

/* A publish completion. */
struct pub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int status;
};

static void collector_init(struct collector *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

static void on_msg(void *arg, struct ceb_event *ev, void *handle)
{
	struct collector *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->n < 4096) {
		c->evs[c->n] = ev;
		c->handles[c->n] = handle;
		c->n++;
	} else {
		ceb_event_unref(ev);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wait until the collector holds at least n messages; returns how many it holds. */
static size_t collector_wait(struct collector *c, size_t n, int ms)
{
	struct timespec ts;
	size_t got;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&c->lock);
	while (c->n < n && pthread_cond_timedwait(&c->cond, &c->lock, &ts) == 0)
		;
	got = c->n;
	pthread_mutex_unlock(&c->lock);
	return got;
}

static void collector_free(struct collector *c)
{
	for (size_t i = 0; i < c->n; i++)
		ceb_event_unref(c->evs[i]);
}

static void pub_done(void *arg, int status)
{
	struct pub *p = arg;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	p->status = status;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static struct ceb_event *make_event(const char *type, int i)
{
	struct ceb_event *ev = ceb_event_new();
	char id[32], err[128];

	snprintf(id, sizeof(id), "id-%d", i);
	ck_assert_ptr_nonnull(ev);
	ck_assert_int_eq(
	        ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, id, strlen(id), err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	        ceb_event_set(ev, "source", CEB_TYPE_URIREF, "/contract", 9, err, sizeof(err)), 0);
	ck_assert_int_eq(
	        ceb_event_set(ev, "type", CEB_TYPE_STRING, type, strlen(type), err, sizeof(err)),
	        0);
	ck_assert_int_eq(ceb_event_set_data(ev, "payload", 7, 0), 0);
	return ev;
}

/* Publish and wait for the completion; returns its status. Checks it completes exactly once. */
static int publish_wait(struct ceb_channel *ch, struct ceb_event *ev)
{
	struct pub p = {.calls = 0};
	struct timespec ts;
	int st;

	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	ch->ops->publish(ch->ctx, ev, pub_done, &p);
	deadline_in(&ts, be->wait_ms);
	pthread_mutex_lock(&p.lock);
	while (p.calls == 0 && pthread_cond_timedwait(&p.cond, &p.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&p.lock);
	ck_assert_msg(p.calls == 1, "publish completed %d times", p.calls);
	st = p.status;
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	return st;
}

struct fixture {
	struct ceb_channel ch;
	struct ceb_filter *flt_all, *flt_a;
};

static void fixture_open(struct fixture *fx, const char *name, size_t max_events)
{
	struct ceb_channel_cfg cfg = {.ns = "contract", .name = name};
	char err[256];

	memset(fx, 0, sizeof(*fx));
	be->setup_cfg(&cfg, name);
	if (max_events)
		cfg.max_events = max_events;
	fx->ch.ops = be->ops;
	ck_assert_msg(be->ops->create(&cfg, &fx->ch.ctx, err, sizeof(err)) == 0, "create: %s", err);
	fx->flt_all = ceb_filter_true();
	{
		const char *names[] = {"type"}, *values[] = {"a"};
		ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_EXACT, 1, names, values, &fx->flt_a,
		                                  err, sizeof(err)),
		                 0);
	}
}

static void subscribe(struct fixture *fx, const char *name, const struct ceb_filter *flt,
                      size_t max_inflight, struct collector *c, void **sub)
{
	struct ceb_sub_cfg sc = {.ns = "contract",
	                         .name = name,
	                         .filter = flt,
	                         .max_inflight = max_inflight,
	                         .on_msg = on_msg,
	                         .arg = c};

	collector_init(c);
	ck_assert_int_eq(fx->ch.ops->subscribe(fx->ch.ctx, &sc, sub), 0);
}

static void start(struct fixture *fx)
{
	char err[256];

	ck_assert_msg(fx->ch.ops->start(fx->ch.ctx, err, sizeof(err)) == 0, "start: %s", err);
}

static void fixture_close(struct fixture *fx)
{
	fx->ch.ops->destroy(fx->ch.ctx);
	ceb_filter_free(fx->flt_all);
	ceb_filter_free(fx->flt_a);
}

/* An event that passes the channel has to pass the subscription's filter at the dispatcher too:
 * count what a consumer would deliver. */
static size_t matching(struct collector *c, const struct ceb_filter *flt)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += ceb_filter_match(flt, c->evs[i]);
	return n;
}

START_TEST(test_publish_completes_once_and_every_subscription_gets_each_event_once)
{
	struct fixture fx;
	struct collector c1, c2;
	void *s1, *s2;

	fixture_open(&fx, "once", 0);
	subscribe(&fx, "one", fx.flt_all, 100, &c1, &s1);
	subscribe(&fx, "two", fx.flt_all, 100, &c2, &s2);
	start(&fx);
	for (int i = 0; i < 20; i++) {
		struct ceb_event *ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	ck_assert_uint_eq(collector_wait(&c1, 20, be->wait_ms), 20);
	ck_assert_uint_eq(collector_wait(&c2, 20, be->wait_ms), 20);
	for (int i = 0; i < 20; i++) {
		char id[32];
		snprintf(id, sizeof(id), "id-%d", i);
		int seen1 = 0, seen2 = 0;
		for (size_t k = 0; k < 20; k++) {
			seen1 += strcmp(ceb_event_get(c1.evs[k], "id")->value, id) == 0;
			seen2 += strcmp(ceb_event_get(c2.evs[k], "id")->value, id) == 0;
		}
		ck_assert_int_eq(seen1, 1);
		ck_assert_int_eq(seen2, 1);
	}
	for (size_t k = 0; k < 20; k++) {
		fx.ch.ops->settle(fx.ch.ctx, s1, c1.handles[k], CEB_SETTLE_DONE);
		fx.ch.ops->settle(fx.ch.ctx, s2, c2.handles[k], CEB_SETTLE_DONE);
	}
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&c1);
	collector_free(&c2);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_no_more_than_max_inflight_are_unsettled_and_settling_hands_the_next)
{
	struct fixture fx;
	struct collector c;
	void *s;

	fixture_open(&fx, "inflight", 0);
	subscribe(&fx, "slow", fx.flt_all, 3, &c, &s);
	start(&fx);
	for (int i = 0; i < 10; i++) {
		struct ceb_event *ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	ck_assert_uint_eq(collector_wait(&c, 3, be->wait_ms), 3);
	ck_assert_uint_eq(collector_wait(&c, 4, 200), 3); /* no fourth before a settle */
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[0], CEB_SETTLE_DONE);
	ck_assert_uint_eq(collector_wait(&c, 4, be->wait_ms), 4);
	for (size_t k = 1; k < 10; k++) {
		ck_assert_uint_eq(collector_wait(&c, k + 3 < 10 ? k + 3 : 10, be->wait_ms),
		                  k + 3 < 10 ? k + 3 : 10);
		fx.ch.ops->settle(fx.ch.ctx, s, c.handles[k], CEB_SETTLE_DONE);
	}
	ck_assert_uint_eq(c.n, 10);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_a_stalled_subscription_does_not_stall_another)
{
	struct fixture fx;
	struct collector stalled, fast;
	void *s1, *s2;

	fixture_open(&fx, "isolation", 0);
	subscribe(&fx, "stalled", fx.flt_all, 1, &stalled, &s1);
	subscribe(&fx, "fast", fx.flt_all, 1, &fast, &s2);
	start(&fx);
	for (int i = 0; i < 50; i++) {
		struct ceb_event *ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	for (size_t k = 0; k < 50; k++) {
		ck_assert_uint_eq(collector_wait(&fast, k + 1, be->wait_ms), k + 1);
		fx.ch.ops->settle(fx.ch.ctx, s2, fast.handles[k], CEB_SETTLE_DONE);
	}
	/* a backend with a thread per subscription may hand the stalled one its message later */
	ck_assert_uint_eq(collector_wait(&stalled, 1, be->wait_ms), 1);
	ck_assert_uint_eq(collector_wait(&stalled, 2, 100), 1);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx) > 0, 1);
	collector_free(&stalled);
	collector_free(&fast);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_subscriptions_receive_only_what_their_filter_can_match)
{
	struct fixture fx;
	struct collector ca, call;
	void *sa, *sall;

	fixture_open(&fx, "filters", 0);
	subscribe(&fx, "only-a", fx.flt_a, 100, &ca, &sa);
	subscribe(&fx, "all", fx.flt_all, 100, &call, &sall);
	start(&fx);
	for (int i = 0; i < 10; i++) {
		struct ceb_event *ev = make_event(i % 2 ? "a" : "b", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	ck_assert_uint_eq(collector_wait(&call, 10, be->wait_ms), 10);
	/* Each subscription is on its own: "only-a" may lag behind "all" (a Kafka consumer group of
	 * its own joins when it joins). A prefiltering channel hands it the 5 matching events and
	 * no more; another hands it all 10. */
	if (ceb_channel_has(&fx.ch, CEB_CHANNEL_PREFILTERS)) {
		collector_wait(&ca, 5, be->wait_ms);
		collector_wait(&ca, 6, 200);
	} else {
		collector_wait(&ca, 10, be->wait_ms);
	}
	/* A channel may hand everything and let the dispatcher filter, or prefilter: either way what
	 * a consumer delivers is exactly the matching half. */
	ck_assert_uint_eq(matching(&ca, fx.flt_a), 5);
	if (ceb_channel_has(&fx.ch, CEB_CHANNEL_PREFILTERS))
		ck_assert_uint_eq(ca.n, 5);
	for (size_t k = 0; k < ca.n; k++)
		fx.ch.ops->settle(fx.ch.ctx, sa, ca.handles[k], CEB_SETTLE_DONE);
	for (size_t k = 0; k < call.n; k++)
		fx.ch.ops->settle(fx.ch.ctx, sall, call.handles[k], CEB_SETTLE_DONE);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&ca);
	collector_free(&call);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_a_full_bounded_channel_refuses_and_recovers_after_settles)
{
	struct fixture fx;
	struct collector c;
	void *s;
	struct ceb_event *ev;

	if (!be->bounded)
		return;
	fixture_open(&fx, "bounded", 4);
	subscribe(&fx, "stuck", fx.flt_all, 1, &c, &s);
	start(&fx);
	for (int i = 0; i < 4; i++) {
		ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	ev = make_event("a", 99);
	ck_assert_int_eq(publish_wait(&fx.ch, ev), CEB_EFULL);
	ck_assert_uint_eq(collector_wait(&c, 1, be->wait_ms), 1);
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[0], CEB_SETTLE_DONE);
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 4);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_fan_out_shares_one_event_instead_of_copying)
{
	struct fixture fx;
	struct collector c1, c2;
	void *s1, *s2;
	struct ceb_event *ev;

	fixture_open(&fx, "shared", 0);
	subscribe(&fx, "one", fx.flt_all, 10, &c1, &s1);
	subscribe(&fx, "two", fx.flt_all, 10, &c2, &s2);
	start(&fx);
	ev = make_event("a", 1);
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ck_assert_uint_eq(collector_wait(&c1, 1, be->wait_ms), 1);
	ck_assert_uint_eq(collector_wait(&c2, 1, be->wait_ms), 1);
	if (ceb_channel_has(&fx.ch, CEB_CHANNEL_PREFILTERS)) {
		/* memory: one immutable event object, reference-counted, shared by both (the
		 * channel keeps a packed copy of what it was given and unpacks it once) */
		ck_assert_ptr_eq(c1.evs[0], c2.evs[0]);
		ck_assert(ceb_event_equal(c1.evs[0], ev));
	}
	fx.ch.ops->settle(fx.ch.ctx, s1, c1.handles[0], CEB_SETTLE_DONE);
	fx.ch.ops->settle(fx.ch.ctx, s2, c2.handles[0], CEB_SETTLE_DONE);
	ceb_event_unref(ev);
	collector_free(&c1);
	collector_free(&c2);
	fixture_close(&fx);
}
END_TEST

/* Wait until the collector received every id in ids (at least once); returns how many it got. */
static size_t collector_wait_ids(struct collector *c, const char *const *ids, size_t n, int ms)
{
	struct timespec ts;
	size_t found = 0;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		found = 0;
		for (size_t i = 0; i < n; i++) {
			for (size_t k = 0; k < c->n; k++) {
				if (strcmp(ceb_event_get(c->evs[k], "id")->value, ids[i]) == 0) {
					found++;
					break;
				}
			}
		}
		if (found == n || pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

START_TEST(test_a_message_settled_failed_is_handed_again_by_a_durable_channel)
{
	struct fixture fx;
	struct collector c;
	struct ceb_event *ev;
	void *s;

	if (!(be->ops->flags & CEB_CHANNEL_DURABLE))
		return;
	fixture_open(&fx, "redeliver", 0);
	subscribe(&fx, "flaky", fx.flt_all, 10, &c, &s);
	start(&fx);
	ev = make_event("a", 7);
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(collector_wait(&c, 1, be->wait_ms), 1);
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[0], CEB_SETTLE_FAILED);
	ck_assert_uint_eq(collector_wait(&c, 2, be->wait_ms), 2);
	ck_assert_str_eq(ceb_event_get(c.evs[1], "id")->value, "id-7");
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[1], CEB_SETTLE_DONE);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	ck_assert_uint_eq(collector_wait(&c, 3, 300), 2); /* settled: never again */
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_unsettled_messages_are_handed_again_after_the_channel_is_created_again)
{
	static const char *const unsettled[] = {"id-3", "id-4", "id-5"};
	struct fixture fx;
	struct collector c;
	void *s;

	if (!(be->ops->flags & CEB_CHANNEL_DURABLE))
		return;
	fixture_open(&fx, "restart", 0);
	subscribe(&fx, "crashes", fx.flt_all, 10, &c, &s);
	start(&fx);
	for (int i = 0; i < 6; i++) {
		struct ceb_event *ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	ck_assert_uint_eq(collector_wait_ids(&c,
	                                     (const char *const[]){"id-0", "id-1", "id-2", "id-3",
	                                                           "id-4", "id-5"},
	                                     6, be->wait_ms),
	                  6);
	for (size_t k = 0; k < c.n; k++) {
		const char *id = ceb_event_get(c.evs[k], "id")->value;
		if (strcmp(id, "id-0") == 0 || strcmp(id, "id-1") == 0 || strcmp(id, "id-2") == 0)
			fx.ch.ops->settle(fx.ch.ctx, s, c.handles[k], CEB_SETTLE_DONE);
	}
	collector_free(&c);
	fixture_close(&fx); /* the other three were never settled: a crash, as far as they know */

	fixture_open(&fx, "restart", 0);
	subscribe(&fx, "crashes", fx.flt_all, 10, &c, &s);
	start(&fx);
	ck_assert_uint_eq(collector_wait_ids(&c, unsettled, 3, be->wait_ms), 3);
	for (size_t k = 0; k < c.n; k++)
		fx.ch.ops->settle(fx.ch.ctx, s, c.handles[k], CEB_SETTLE_DONE);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

struct settler {
	struct fixture *fx;
	struct collector *c;
	void *sub;
	size_t from, step, total;
};

static void *settle_thread(void *arg)
{
	struct settler *st = arg;

	for (size_t k = st->from; k < st->total; k += st->step) {
		collector_wait(st->c, k + 1, be->wait_ms);
		pthread_mutex_lock(&st->c->lock);
		void *h = st->c->handles[k];
		pthread_mutex_unlock(&st->c->lock);
		st->fx->ch.ops->settle(st->fx->ch.ctx, st->sub, h, CEB_SETTLE_DONE);
	}
	return NULL;
}

START_TEST(test_settles_may_come_from_several_threads_at_once)
{
	struct fixture fx;
	struct collector c;
	struct settler st[2];
	pthread_t t[2];
	void *s;

	fixture_open(&fx, "threads", 0);
	subscribe(&fx, "shared", fx.flt_all, 8, &c, &s);
	start(&fx);
	for (int i = 0; i < 200; i++) {
		struct ceb_event *ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	for (int i = 0; i < 2; i++) {
		st[i] = (struct settler){&fx, &c, s, (size_t)i, 2, 200};
		pthread_create(&t[i], NULL, settle_thread, &st[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(c.n, 200);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

/* A batch completion, with a copy of each event's status. */
struct batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int status;
	int each[16];
	bool has_each;
	size_t n;
};

static void batch_done(void *arg, int status, const int *each, size_t n)
{
	struct batch *b = arg;

	pthread_mutex_lock(&b->lock);
	b->calls++;
	b->status = status;
	b->n = n;
	b->has_each = each != NULL;
	for (size_t i = 0; i < n && i < 16; i++)
		b->each[i] = each ? each[i] : status;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Publish events ids first..first+n-1 of type "a" as one batch and wait for its one completion;
 * returns the batch's status and fills b. Checks that it completes exactly once, for n events, and
 * that an atomic backend gives every event the same status. */
static int publish_batch_wait(struct ceb_channel *ch, int first, size_t n, struct batch *b)
{
	struct ceb_event *evs[16];
	struct timespec ts;

	ck_assert_uint_le(n, 16);
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	for (size_t i = 0; i < n; i++)
		evs[i] = make_event("a", first + (int)i);
	ceb_channel_publish_batch(ch, evs, n, batch_done, b);
	for (size_t i = 0; i < n; i++)
		ceb_event_unref(evs[i]);
	deadline_in(&ts, be->wait_ms);
	pthread_mutex_lock(&b->lock);
	while (b->calls == 0 && pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&b->lock);
	ck_assert_msg(b->calls == 1, "batch publish completed %d times", b->calls);
	ck_assert_uint_eq(b->n, n);
	for (size_t i = 0; i < n; i++) {
		if (ch->ops->flags & CEB_CHANNEL_BATCH_ATOMIC)
			ck_assert_int_eq(b->each[i], b->status);
		else if (b->status == 0)
			ck_assert_int_eq(b->each[i], 0);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	return b->status;
}

/* How many of the collector's events have ids first..first+n-1. */
static size_t count_ids(struct collector *c, int first, size_t n)
{
	size_t found = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t k = 0; k < c->n; k++) {
		int id = atoi(ceb_event_get(c->evs[k], "id")->value + 3);
		found += id >= first && id < first + (int)n;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

START_TEST(test_a_batch_completes_once_and_each_event_it_stored_is_handed_once)
{
	struct fixture fx;
	struct collector c;
	struct batch b;
	void *s;

	fixture_open(&fx, "batch", 0);
	subscribe(&fx, "all", fx.flt_all, 100, &c, &s);
	start(&fx);
	ck_assert_int_eq(publish_batch_wait(&fx.ch, 0, 5, &b), 0);
	ck_assert_uint_eq(collector_wait(&c, 5, be->wait_ms), 5);
	ck_assert_uint_eq(collector_wait(&c, 6, 200), 5); /* each once */
	ck_assert_uint_eq(count_ids(&c, 0, 5), 5);
	for (size_t k = 0; k < c.n; k++)
		fx.ch.ops->settle(fx.ch.ctx, s, c.handles[k], CEB_SETTLE_DONE);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_a_batch_that_does_not_fit_whole_stores_none_of_it)
{
	struct fixture fx;
	struct collector c;
	struct batch b;
	struct ceb_event *ev;
	void *s;

	if (!be->bounded)
		return;
	/* A bounded channel is all or nothing; a backend that stores event by event would have
	 * stored the first two of the refused batch below, the sender's retry duplicating them. */
	ck_assert_msg(be->ops->flags & CEB_CHANNEL_BATCH_ATOMIC,
	              "a bounded channel must store batches all or nothing");
	fixture_open(&fx, "batch-full", 4);
	subscribe(&fx, "stuck", fx.flt_all, 1, &c, &s);
	start(&fx);
	for (int i = 0; i < 2; i++) {
		ev = make_event("a", i);
		ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
		ceb_event_unref(ev);
	}
	/* Room for 2, a batch of 3: refused whole, nothing of it queued. */
	ck_assert_int_eq(publish_batch_wait(&fx.ch, 10, 3, &b), CEB_EFULL);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 2);
	/* Larger than the empty channel: never fits, so not "full" either. */
	ck_assert_int_eq(publish_batch_wait(&fx.ch, 30, 5, &b), CEB_ETOOBIG);
	ck_assert_uint_eq(collector_wait(&c, 1, be->wait_ms), 1);
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[0], CEB_SETTLE_DONE);
	ck_assert_uint_eq(collector_wait(&c, 2, be->wait_ms), 2);
	fx.ch.ops->settle(fx.ch.ctx, s, c.handles[1], CEB_SETTLE_DONE);
	/* Emptied: the same three fit now, and only they come out. */
	ck_assert_int_eq(publish_batch_wait(&fx.ch, 20, 3, &b), 0);
	for (size_t k = 2; k < 5; k++) {
		ck_assert_uint_eq(collector_wait(&c, k + 1, be->wait_ms), k + 1);
		fx.ch.ops->settle(fx.ch.ctx, s, c.handles[k], CEB_SETTLE_DONE);
	}
	ck_assert_uint_eq(collector_wait(&c, 6, 200), 5);
	ck_assert_uint_eq(count_ids(&c, 10, 3), 0);
	ck_assert_uint_eq(count_ids(&c, 30, 5), 0);
	ck_assert_uint_eq(count_ids(&c, 20, 3), 3);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

START_TEST(test_an_event_larger_than_the_whole_channel_is_too_big_not_full)
{
	struct fixture fx;
	struct collector c;
	struct ceb_event *ev;
	struct ceb_channel_cfg cfg = {.ns = "contract", .name = "huge"};
	size_t big;
	char *data;
	void *s;

	if (!be->bounded)
		return;
	fixture_open(&fx, "huge", 0);
	be->setup_cfg(&cfg, "huge");
	subscribe(&fx, "all", fx.flt_all, 1, &c, &s);
	start(&fx);
	big = cfg.max_bytes + 1;
	data = calloc(1, big);
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', big);
	ev = make_event("a", 1);
	ck_assert_int_eq(ceb_event_set_data(ev, data, big, 0), 0);
	/* Empty, and still it could never hold it: 413, where 429 would be retried forever. */
	ck_assert_int_eq(publish_wait(&fx.ch, ev), CEB_ETOOBIG);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	ceb_event_unref(ev);
	free(data);
	collector_free(&c);
	fixture_close(&fx);
}
END_TEST

/* A backend that can change its subscriptions while it runs (a reload of Triggers: subscribe_live,
 * unsubscribe): a subscription added gets what is published from then on, one removed is routed
 * nothing more, still hands out what it had queued, and once unsubscribe says 0 its filter is no
 * longer read (freed here: AddressSanitizer would see a read). */
START_TEST(test_subscriptions_added_and_removed_while_running)
{
	struct fixture fx;
	struct collector ca, cb;
	struct ceb_filter *flt = ceb_filter_true();
	struct ceb_sub_cfg sc = {
	        .ns = "contract", .name = "b", .max_inflight = 10, .on_msg = on_msg};
	void *sa, *sb;
	struct ceb_event *ev;

	if (!be->ops->subscribe_live || !be->ops->unsubscribe) {
		ceb_filter_free(flt);
		return; /* subscriptions fixed at start: a reload replaces the channel */
	}
	fixture_open(&fx, "live", 0);
	subscribe(&fx, "a", flt, 1, &ca, &sa);
	start(&fx);
	ev = make_event("a", 1);
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(collector_wait(&ca, 1, be->wait_ms), 1);
	collector_init(&cb);
	sc.filter = fx.flt_all;
	sc.arg = &cb;
	ck_assert_int_eq(fx.ch.ops->subscribe_live(fx.ch.ctx, &sc, &sb), 0);
	ev = make_event("a", 2); /* a: queued behind 1 (max_inflight 1); b: handed */
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(collector_wait(&cb, 1, be->wait_ms), 1);
	ck_assert_uint_eq(fx.ch.ops->unsubscribe(fx.ch.ctx, sa), 2);
	ev = make_event("a", 3); /* b only */
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(collector_wait(&cb, 2, be->wait_ms), 2);
	fx.ch.ops->settle(fx.ch.ctx, sa, ca.handles[0], CEB_SETTLE_DONE); /* hands it 2 */
	ck_assert_uint_eq(collector_wait(&ca, 2, be->wait_ms), 2);
	ck_assert_uint_eq(fx.ch.ops->unsubscribe(fx.ch.ctx, sa), 1);
	fx.ch.ops->settle(fx.ch.ctx, sa, ca.handles[1], CEB_SETTLE_DONE);
	ck_assert_uint_eq(fx.ch.ops->unsubscribe(fx.ch.ctx, sa), 0);
	ceb_filter_free(flt);
	ev = make_event("a", 4); /* routed without reading a's filter */
	ck_assert_int_eq(publish_wait(&fx.ch, ev), 0);
	ceb_event_unref(ev);
	ck_assert_uint_eq(collector_wait(&cb, 3, be->wait_ms), 3);
	ck_assert_uint_eq(ca.n, 2);
	ck_assert_str_eq(ceb_event_get(ca.evs[1], "id")->value, "id-2");
	for (size_t i = 0; i < cb.n; i++)
		fx.ch.ops->settle(fx.ch.ctx, sb, cb.handles[i], CEB_SETTLE_DONE);
	ck_assert_uint_eq(fx.ch.ops->pending(fx.ch.ctx), 0);
	if (fx.ch.ops->stop)
		fx.ch.ops->stop(fx.ch.ctx);
	collector_free(&ca);
	collector_free(&cb);
	fixture_close(&fx);
}
END_TEST

void contract_add_tests(TCase *tc, const struct contract_backend *backend)
{
	be = backend;
	tcase_add_test(tc, test_publish_completes_once_and_every_subscription_gets_each_event_once);
	tcase_add_test(tc,
	               test_no_more_than_max_inflight_are_unsettled_and_settling_hands_the_next);
	tcase_add_test(tc, test_a_stalled_subscription_does_not_stall_another);
	tcase_add_test(tc, test_subscriptions_receive_only_what_their_filter_can_match);
	tcase_add_test(tc, test_a_full_bounded_channel_refuses_and_recovers_after_settles);
	tcase_add_test(tc, test_fan_out_shares_one_event_instead_of_copying);
	tcase_add_test(tc, test_settles_may_come_from_several_threads_at_once);
	tcase_add_test(tc, test_a_message_settled_failed_is_handed_again_by_a_durable_channel);
	tcase_add_test(tc,
	               test_unsettled_messages_are_handed_again_after_the_channel_is_created_again);
	tcase_add_test(tc, test_a_batch_completes_once_and_each_event_it_stored_is_handed_once);
	tcase_add_test(tc, test_a_batch_that_does_not_fit_whole_stores_none_of_it);
	tcase_add_test(tc, test_an_event_larger_than_the_whole_channel_is_too_big_not_full);
	tcase_add_test(tc, test_subscriptions_added_and_removed_while_running);
}
