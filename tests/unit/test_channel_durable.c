/* The channel contract suite against the durable channel (SQLite under a temporary state directory
 * made once for the program), plus what only it does: the disk bound, settled positions that
 * survive a restart, rewinding by time and by position, retention that says what it deleted, the
 * writer's own hand-out to caught-up subscriptions, a full disk (SQLite's page limit on the
 * writer's connection: internal.h gives the test the store and the writer's count of failures). */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "channels/durable/durable.h"
#include "channels/durable/internal.h"
#include "channel_contract.h"
#include "collector.h"
#include "deadline.h"

#define WAIT_MS 10000

extern const struct channel_ops ceb_channel_durable;

static char state_dir[] = "/tmp/ceb-durable-XXXXXX";

static void durable_cfg(struct ceb_channel_cfg *cfg, const char *name)
{
	(void)name;
	cfg->state_dir = state_dir;
}

static const struct contract_backend durable_be = {
        .ops = &ceb_channel_durable,
        .setup_cfg = durable_cfg,
        .bounded = 0, /* bounded by bytes on disk (tested below), not by max_events */
        .wait_ms = WAIT_MS,
};

/* ---- helpers ---- */

struct one_pub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, status;
};

static void one_done(void *arg, int status)
{
	struct one_pub *p = arg;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	p->status = status;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static struct ceb_event *event(int i, size_t data_len)
{
	struct ceb_event *ev = ceb_event_new();
	char id[32], err[128], *data = malloc(data_len + 1);

	snprintf(id, sizeof(id), "id-%d", i);
	ck_assert_ptr_nonnull(ev);
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', data_len);
	ck_assert_int_eq(ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, 128), 0);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, id, strlen(id), err, 128), 0);
	ck_assert_int_eq(ceb_event_set(ev, "source", CEB_TYPE_URIREF, "/d", 2, err, 128), 0);
	ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, "t", 1, err, 128), 0);
	ck_assert_int_eq(ceb_event_set_data(ev, data, data_len, 0), 0);
	free(data);
	return ev;
}

static int publish(struct ceb_channel *ch, int i, size_t data_len)
{
	struct one_pub p = {.calls = 0};
	struct ceb_event *ev = event(i, data_len);
	struct timespec ts;

	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	ch->ops->publish(ch->ctx, ev, one_done, &p);
	ceb_event_unref(ev);
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&p.lock);
	while (p.calls == 0 && pthread_cond_timedwait(&p.cond, &p.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&p.lock);
	ck_assert_int_eq(p.calls, 1);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	return p.status;
}

/* A channel contract/<name> with a DurableChannel spec of its own. */
static void open_channel(struct ceb_channel *ch, const char *name,
                         const struct ceb_durable_channel_cfg *dset, struct ceb_msg_channel *mc)
{
	struct ceb_channel_cfg cfg = {.ns = "durable", .name = name, .state_dir = state_dir};
	char err[256];

	if (dset) {
		memset(mc, 0, sizeof(*mc));
		mc->backend_spec = (void *)dset;
		cfg.kind = CEB_DURABLE_CHANNEL_KIND;
		cfg.spec = mc;
	}
	ck_assert_msg(ceb_channel_create(ch, &ceb_channel_durable, &cfg, err, sizeof(err)) == 0,
	              "create: %s", err);
}

static void *sub_open(struct ceb_channel *ch, const char *name, size_t inflight, bool ordered,
                      struct coll *c)
{
	struct ceb_sub_cfg sc = {.ns = "durable",
	                         .name = name,
	                         .max_inflight = inflight,
	                         .ordered = ordered,
	                         .on_msg = coll_on_msg,
	                         .arg = c};
	void *sub = NULL;

	coll_init(c);
	ck_assert_int_eq(ch->ops->subscribe(ch->ctx, &sc, &sub), 0);
	c->sub = sub;
	return sub;
}

static void start(struct ceb_channel *ch)
{
	char err[256];

	ck_assert_msg(ceb_channel_start(ch, err, sizeof(err)) == 0, "start: %s", err);
}

static void settle_all(struct ceb_channel *ch, struct coll *c, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		ch->ops->settle(ch->ctx, c->sub, c->handles[i], CEB_SETTLE_DONE);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The writer's failed commits so far. */
static uint64_t failed_commits(struct ceb_channel *ch)
{
	struct dur_channel *dc = ch->ctx;
	uint64_t n;

	pthread_mutex_lock(&dc->lock);
	n = dc->failed_commits;
	pthread_mutex_unlock(&dc->lock);
	return n;
}

/* A disk that is full once the store holds `pages` more pages than now: SQLite's page limit on the
 * writer's connection fails a write with SQLITE_FULL, as a full disk does. Before start. */
static void disk_full_after(struct ceb_channel *ch, int pages)
{
	struct dur_channel *dc = ch->ctx;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	char sql[64];

	ck_assert_int_eq(sqlite3_prepare_v2(dc->wst.db, "PRAGMA page_count", -1, &st, NULL),
	                 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	ck_assert_int_gt(n, 0);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)(n + pages));
	ck_assert_int_eq(sqlite3_exec(dc->wst.db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* ---- what only the durable channel does ---- */

START_TEST(test_durable_backend_is_found_by_name_and_by_its_channel_kind)
{
	ck_assert_ptr_eq(ceb_channel_ops_find("durable"), &ceb_channel_durable);
	ck_assert_str_eq(ceb_channel_for_kind("DurableChannel"), "durable");
	ck_assert(ceb_channel_durable.flags & CEB_CHANNEL_DURABLE);
	ck_assert(ceb_channel_durable.flags & CEB_CHANNEL_BATCH_ATOMIC);
	ck_assert_ptr_nonnull(ceb_channel_durable.rewind);
}
END_TEST

START_TEST(test_a_full_disk_bound_refuses_with_full_and_settled_events_make_room)
{
	struct ceb_durable_channel_cfg d = {.retention_ms = 0, .retention_bytes = 64 * 1024};
	struct ceb_msg_channel mc;
	struct ceb_channel ch;
	struct coll c;
	int i, st = 0;

	open_channel(&ch, "bound", &d, &mc);
	sub_open(&ch, "slow", 1000, false, &c);
	start(&ch);
	/* ~4 KiB events: the 64 KiB bound holds about 15 */
	for (i = 0; i < 40 && (st = publish(&ch, i, 4000)) == 0; i++)
		;
	ck_assert_int_eq(st, CEB_EFULL);
	ck_assert_int_gt(i, 5);
	ck_assert_int_lt(i, 20);
	/* larger than the whole bound: too big, not full */
	ck_assert_int_eq(publish(&ch, 999, 70000), CEB_ETOOBIG);
	/* nothing accepted was lost to make room: every stored one is handed out */
	ck_assert_uint_eq(coll_wait(&c, (size_t)i, WAIT_MS), (size_t)i);
	ck_assert_int_eq(publish(&ch, 100, 4000), CEB_EFULL);
	settle_all(&ch, &c, 0, c.n);
	/* settled events are deleted for room once positions were written (every 100 ms) */
	for (int k = 0; k < 100 && (st = publish(&ch, 100, 4000)) == CEB_EFULL; k++)
		usleep(50 * 1000);
	ck_assert_int_eq(st, 0);
	ck_assert_uint_eq(coll_wait(&c, (size_t)i + 1, WAIT_MS), (size_t)i + 1);
	ck_assert_str_eq(coll_id(&c, (size_t)i), "id-100");
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

/* A full disk (SQLITE_FULL before the channel's bound): publishes are refused with FULL (429), and
 * the writer backs off instead of trying again at once, forever; once the subscriber settled, the
 * settled events are deleted for room and new ones are taken again, without a restart; a stop
 * while the disk is full ends, and a publish it caught is answered. */
START_TEST(test_a_full_disk_refuses_with_full_backs_off_and_recovers_once_settled)
{
	struct ceb_channel ch;
	struct coll c;
	struct one_pub p = {.calls = 0};
	struct ceb_event *ev;
	uint64_t before;
	int i, n, st = 0;

	open_channel(&ch, "diskfull", NULL, NULL); /* 1 GiB bound: the disk fills up first */
	sub_open(&ch, "slow", 1000, false, &c);
	disk_full_after(&ch, 40);
	start(&ch);
	/* ~4 KiB events, a page and more each: full after some 15 */
	for (i = 0; i < 100 && (st = publish(&ch, i, 4000)) == 0; i++)
		;
	ck_assert_int_eq(st, CEB_EFULL);
	ck_assert_int_gt(i, 5);
	ck_assert_uint_eq(coll_wait(&c, (size_t)i, WAIT_MS), (size_t)i);
	/* a publish every 10 ms for a second: each refused, and a few failed commits, not one for
	 * each publish (nor thousands: the writer that retried at once) */
	before = failed_commits(&ch);
	for (int k = 0; k < 100; k++) {
		ck_assert_int_eq(publish(&ch, 1000 + k, 4000), CEB_EFULL);
		usleep(10 * 1000);
	}
	ck_assert_uint_gt(failed_commits(&ch), before);
	ck_assert_uint_lt(failed_commits(&ch) - before, 30);
	ck_assert_uint_eq(coll_wait(&c, (size_t)i + 1, 100), (size_t)i); /* nothing refused came */

	/* settled: room again, by itself (the back-off is 2 s at most) */
	settle_all(&ch, &c, 0, c.n);
	for (int k = 0; k < 200 && (st = publish(&ch, 200, 4000)) == CEB_EFULL; k++)
		usleep(50 * 1000);
	ck_assert_int_eq(st, 0);
	ck_assert_uint_eq(coll_wait(&c, (size_t)i + 1, WAIT_MS), (size_t)i + 1);
	ck_assert_str_eq(coll_id(&c, (size_t)i), "id-200");

	/* full again: a stop ends, and a publish it caught is answered with a refusal */
	for (n = 0; n < 100 && (st = publish(&ch, 300 + n, 4000)) == 0; n++)
		;
	ck_assert_int_eq(st, CEB_EFULL);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	ev = event(999, 4000);
	ch.ops->publish(ch.ctx, ev, one_done, &p);
	ceb_event_unref(ev);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_ne(p.status, 0);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	coll_free(&c);
}
END_TEST

START_TEST(test_settled_positions_survive_a_restart_and_only_new_events_come)
{
	struct ceb_channel ch;
	struct coll c;

	open_channel(&ch, "positions", NULL, NULL);
	sub_open(&ch, "t", 100, false, &c);
	start(&ch);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	ck_assert_uint_eq(coll_wait(&c, 5, WAIT_MS), 5);
	settle_all(&ch, &c, 0, 5);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);

	open_channel(&ch, "positions", NULL, NULL);
	sub_open(&ch, "t", 100, false, &c);
	start(&ch);
	ck_assert_int_eq(publish(&ch, 5, 10), 0);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_str_eq(coll_id(&c, 0), "id-5");
	ck_assert_uint_eq(coll_wait(&c, 2, 300), 1); /* nothing settled came back */
	settle_all(&ch, &c, 0, 1);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

START_TEST(test_rewinding_by_time_hands_exactly_the_window_again_in_order)
{
	struct ceb_channel ch;
	struct coll c, other;
	uint64_t since, first = 0, count = 0;
	char err[256];

	open_channel(&ch, "rewind", NULL, NULL);
	sub_open(&ch, "lost-a-day", 1, true, &c);
	sub_open(&ch, "fine", 100, false, &other);
	start(&ch);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	for (size_t k = 0; k < 5; k++) {
		ck_assert_uint_eq(coll_wait(&c, k + 1, WAIT_MS), k + 1);
		settle_all(&ch, &c, k, k + 1);
	}
	usleep(20 * 1000);
	since = wall_ms();
	usleep(20 * 1000);
	for (int i = 5; i < 10; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	for (size_t k = 5; k < 10; k++) {
		ck_assert_uint_eq(coll_wait(&c, k + 1, WAIT_MS), k + 1);
		settle_all(&ch, &c, k, k + 1);
	}
	ck_assert_uint_eq(coll_wait(&other, 10, WAIT_MS), 10);
	settle_all(&ch, &other, 0, 10);

	ck_assert_msg(ch.ops->rewind(ch.ctx, c.sub, (int64_t)since, -1, &first, &count, err,
	                             sizeof(err)) == 0,
	              "rewind: %s", err);
	ck_assert_uint_eq(count, 5);
	for (size_t k = 10; k < 15; k++) {
		ck_assert_uint_eq(coll_wait(&c, k + 1, WAIT_MS), k + 1);
		settle_all(&ch, &c, k, k + 1);
	}
	for (size_t k = 0; k < 5; k++) {
		char id[16];
		snprintf(id, sizeof(id), "id-%zu", k + 5);
		ck_assert_str_eq(coll_id(&c, 10 + k), id);
	}
	ck_assert_uint_eq(coll_wait(&c, 16, 300), 15);     /* exactly the window */
	ck_assert_uint_eq(coll_wait(&other, 11, 100), 10); /* the other Trigger: nothing */

	/* by position: from the first stored on, everything */
	ck_assert_int_eq(ch.ops->rewind(ch.ctx, c.sub, -1, 0, &first, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 10);
	for (size_t k = 15; k < 25; k++) {
		ck_assert_uint_eq(coll_wait(&c, k + 1, WAIT_MS), k + 1);
		settle_all(&ch, &c, k, k + 1);
	}
	ck_assert_str_eq(coll_id(&c, 15), "id-0");
	ck_assert_str_eq(coll_id(&c, 24), "id-9");
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
	coll_free(&other);
}
END_TEST

START_TEST(test_age_retention_deletes_unsettled_events_only_counted_and_logged)
{
	struct ceb_durable_channel_cfg d = {.retention_ms = 1, .retention_bytes = 1 << 20};
	struct ceb_msg_channel mc;
	struct ceb_channel ch;
	struct coll c;
	uint64_t dropped = 0;

	open_channel(&ch, "aging", &d, &mc);
	sub_open(&ch, "stuck", 1, false, &c);
	start(&ch);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	/* one handed out and never settled; three waiting: retention (every second) takes them, and
	 * counts the one out too (a restart before it is settled goes on after it) */
	for (int k = 0; k < 200 && (dropped = ch.ops->retention_dropped(ch.ctx)) < 4; k++)
		usleep(50 * 1000);
	ck_assert_uint_eq(dropped, 4);
	settle_all(&ch, &c, 0, 1);
	ck_assert_uint_eq(coll_wait(&c, 2, 300), 1);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

/* What a reload does with a changed Broker: its replacement is created and started beside the
 * running channel, on the same store, and the old one stops after the swap. */
START_TEST(test_a_replacement_started_beside_the_running_channel_shares_its_store)
{
	struct ceb_channel a, b;
	struct coll ca, cb;

	open_channel(&a, "shared", NULL, NULL);
	sub_open(&a, "t", 100, false, &ca);
	start(&a);
	ck_assert_int_eq(publish(&a, 0, 10), 0);
	ck_assert_uint_eq(coll_wait(&ca, 1, WAIT_MS), 1);
	settle_all(&a, &ca, 0, 1);

	open_channel(&b, "shared", NULL, NULL);
	sub_open(&b, "t", 100, false, &cb);
	start(&b);
	/* stored by the old one after the replacement was made: the replacement hands it out */
	ck_assert_int_eq(publish(&a, 1, 10), 0);
	for (int k = 0; k < 200 && coll_count(&cb, "id-1") == 0; k++)
		usleep(20 * 1000);
	ck_assert_int_eq(coll_count(&cb, "id-1"), 1);
	ceb_channel_stop(&a);
	ceb_channel_destroy(&a);
	/* the replacement stores after the old one's events, not over them */
	ck_assert_int_eq(publish(&b, 2, 10), 0);
	for (int k = 0; k < 200 && coll_count(&cb, "id-2") == 0; k++)
		usleep(20 * 1000);
	ck_assert_int_eq(coll_count(&cb, "id-2"), 1);
	ck_assert_int_le(coll_count(&cb, "id-0"), 1); /* settled before: at most once more */
	settle_all(&b, &cb, 0, cb.n);
	ceb_channel_stop(&b);
	ceb_channel_destroy(&b);
	coll_free(&ca);
	coll_free(&cb);
}
END_TEST

/* The integer the query (with ?1 bound to arg, when given) reads from the file of `channel` while
 * the channel runs, as a crash would leave it; -1 when it gives no integer. */
static int64_t int_on_disk(const char *channel, const char *sql, const char *arg)
{
	char path[600];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/durable/durable/%s.db", state_dir, channel);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The position of subscription `name` on disk; -1 when it has none. */
static int64_t pos_on_disk(const char *channel, const char *name)
{
	return int_on_disk(channel, "SELECT pos FROM subs WHERE name = ?1", name);
}

/* Run sql on the file of `channel` (closed), as a crash after retention would have left it. */
static void exec_on_disk(const char *channel, const char *sql)
{
	char path[600];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/durable/durable/%s.db", state_dir, channel);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A subscription whose position on disk is before the first event stored (retention deleted events
 * it had been handed and not settled, then the daemon stopped): at open it goes on from the first
 * stored, and the events it lost are counted (and logged), not skipped quietly. */
START_TEST(test_a_position_that_retention_passed_is_moved_up_at_open_and_counted)
{
	struct ceb_channel ch;
	struct coll c;

	open_channel(&ch, "passed", NULL, NULL);
	sub_open(&ch, "behind", 100, false, &c);
	start(&ch);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
	/* none settled, and the first two deleted */
	ck_assert_int_eq(pos_on_disk("passed", "durable/behind"),
	                 int_on_disk("passed", "SELECT min(seq) FROM events", NULL));
	exec_on_disk("passed", "DELETE FROM events WHERE seq < (SELECT max(seq) FROM events)");

	open_channel(&ch, "passed", NULL, NULL);
	ck_assert_uint_eq(ch.ops->retention_dropped(ch.ctx), 0);
	sub_open(&ch, "behind", 100, false, &c);
	ck_assert_uint_eq(ch.ops->retention_dropped(ch.ctx), 2);
	start(&ch);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_str_eq(coll_id(&c, 0), "id-2");
	settle_all(&ch, &c, 0, 1);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

/* Positions go to disk every 100 ms, not with every commit; but a new subscription's start must be
 * there before any event it is to get is acknowledged, or a crash then would make it start after
 * that event (a new subscription starts at the end). Read from the file while the channel runs,
 * as a crash would leave it. */
START_TEST(test_a_new_subscriptions_start_is_on_disk_before_its_first_event_is_acknowledged)
{
	struct ceb_channel ch;
	struct coll c;
	int64_t pos;

	open_channel(&ch, "startpos", NULL, NULL);
	sub_open(&ch, "fresh", 100, false, &c);
	start(&ch);
	ck_assert_int_eq(publish(&ch, 0, 10), 0);
	pos = pos_on_disk("startpos", "durable/fresh");
	ck_assert_int_ge(pos, 0);
	ck_assert_int_le(pos, int_on_disk("startpos", "SELECT max(seq) FROM events", NULL));
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	settle_all(&ch, &c, 0, 1);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

/* Settled positions go to disk every 100 ms; a rewind goes with the very next round: once an event
 * published after the rewind is acknowledged, the rewound position is on disk, so that a crash
 * right after `cebroker replay` answered does not forget the replay. */
START_TEST(test_a_rewind_is_on_disk_once_the_next_event_is_acknowledged)
{
	struct ceb_channel ch;
	struct coll c;
	uint64_t first = 0, count = 0;
	int64_t start_pos;
	char err[256];

	open_channel(&ch, "rewindpos", NULL, NULL);
	sub_open(&ch, "again", 100, false, &c);
	start(&ch);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(publish(&ch, i, 10), 0);
	start_pos = pos_on_disk("rewindpos", "durable/again"); /* the first event's position */
	ck_assert_int_ge(start_pos, 0);
	ck_assert_uint_eq(coll_wait(&c, 5, WAIT_MS), 5);
	settle_all(&ch, &c, 0, 5);
	/* the settled position reaches the disk within 100 ms or so, with a round of its own */
	for (int k = 0; k < 500 && pos_on_disk("rewindpos", "durable/again") != start_pos + 5; k++)
		usleep(5 * 1000);
	ck_assert_int_eq(pos_on_disk("rewindpos", "durable/again"), start_pos + 5);
	/* at once: the next round is well within 100 ms of the one that wrote start_pos + 5 */
	ck_assert_int_eq(ch.ops->rewind(ch.ctx, c.sub, -1, 0, &first, &count, err, sizeof(err)), 0);
	ck_assert_int_eq((int64_t)first, start_pos);
	ck_assert_int_eq(publish(&ch, 5, 10), 0);
	ck_assert_int_eq(pos_on_disk("rewindpos", "durable/again"), start_pos);
	ck_assert_uint_eq(coll_wait(&c, 11, WAIT_MS), 11); /* the five again and the new one */
	settle_all(&ch, &c, 5, 11);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

struct batch_pub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, status;
};

static void batch_pub_done(void *arg, int status, const int *each, size_t n)
{
	struct batch_pub *b = arg;

	(void)each;
	(void)n;
	pthread_mutex_lock(&b->lock);
	b->calls++;
	b->status = status;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* A round of 12 events committed at once: the writer hands an ordered subscription (one in flight)
 * the first, and the rest come one by one as each is settled, in the order stored. */
START_TEST(test_an_ordered_subscription_gets_a_round_one_at_a_time_in_order)
{
	struct ceb_channel ch;
	struct coll c;
	struct ceb_event *evs[12];
	struct batch_pub b = {.calls = 0};
	struct timespec ts;

	open_channel(&ch, "ordered-round", NULL, NULL);
	sub_open(&ch, "o", 8, true, &c);
	start(&ch);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	for (int i = 0; i < 12; i++)
		evs[i] = event(i, 10);
	ceb_channel_publish_batch(&ch, evs, 12, batch_pub_done, &b);
	for (int i = 0; i < 12; i++)
		ceb_event_unref(evs[i]);
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&b.lock);
	while (b.calls == 0 && pthread_cond_timedwait(&b.cond, &b.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&b.lock);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(b.status, 0);
	for (size_t i = 0; i < 12; i++) {
		char id[32];

		ck_assert_uint_eq(coll_wait(&c, i + 1, WAIT_MS), i + 1);
		ck_assert_uint_eq(coll_wait(&c, i + 2, 20), i + 1); /* one in flight */
		snprintf(id, sizeof(id), "id-%zu", i);
		ck_assert_str_eq(coll_id(&c, i), id);
		settle_all(&ch, &c, i, i + 1);
	}
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.cond);
}
END_TEST

/* An ordered subscription whose event is settled FAILED (its dead-letter sink failed too): that
 * event comes again before any later one, as README says (the failing event holds up the whole
 * Trigger), not after the next. */
START_TEST(test_an_ordered_subscription_gets_a_failed_event_again_before_the_next)
{
	struct ceb_channel ch;
	struct coll c;

	open_channel(&ch, "ordered-failed", NULL, NULL);
	sub_open(&ch, "o", 1, true, &c);
	start(&ch);
	ck_assert_int_eq(publish(&ch, 0, 10), 0);
	ck_assert_int_eq(publish(&ch, 1, 10), 0);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_str_eq(coll_id(&c, 0), "id-0");
	ch.ops->settle(ch.ctx, c.sub, c.handles[0], CEB_SETTLE_FAILED);
	ck_assert_uint_eq(coll_wait(&c, 2, WAIT_MS), 2); /* after its 1 s */
	ck_assert_str_eq(coll_id(&c, 1), "id-0");
	settle_all(&ch, &c, 1, 2);
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	ck_assert_str_eq(coll_id(&c, 2), "id-1");
	settle_all(&ch, &c, 2, 3);
	ceb_channel_stop(&ch);
	ceb_channel_destroy(&ch);
	coll_free(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel_durable");
	TCase *tc = tcase_create("contract");
	TCase *td = tcase_create("durable");
	SRunner *sr;
	int failed;
	char cmd[128];

	if (!mkdtemp(state_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	contract_add_tests(tc, &durable_be);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tcase_set_timeout(td, 120);
	tcase_add_test(td, test_durable_backend_is_found_by_name_and_by_its_channel_kind);
	tcase_add_test(td, test_a_full_disk_bound_refuses_with_full_and_settled_events_make_room);
	tcase_add_test(td, test_a_full_disk_refuses_with_full_backs_off_and_recovers_once_settled);
	tcase_add_test(td, test_settled_positions_survive_a_restart_and_only_new_events_come);
	tcase_add_test(td, test_rewinding_by_time_hands_exactly_the_window_again_in_order);
	tcase_add_test(td, test_age_retention_deletes_unsettled_events_only_counted_and_logged);
	tcase_add_test(td, test_a_replacement_started_beside_the_running_channel_shares_its_store);
	tcase_add_test(
	        td,
	        test_a_new_subscriptions_start_is_on_disk_before_its_first_event_is_acknowledged);
	tcase_add_test(td, test_an_ordered_subscription_gets_a_round_one_at_a_time_in_order);
	tcase_add_test(td, test_a_rewind_is_on_disk_once_the_next_event_is_acknowledged);
	tcase_add_test(td, test_an_ordered_subscription_gets_a_failed_event_again_before_the_next);
	tcase_add_test(td, test_a_position_that_retention_passed_is_moved_up_at_open_and_counted);
	suite_add_tcase(s, td);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", state_dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
