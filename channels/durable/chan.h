/* What the durable channel's files (channel.c: ops, reader, settle; writer.c: the writer's group
 * commit, its syncs, retention, checkpoints) share: the channel's structs. Used nowhere else. */
#ifndef CEB_DURABLE_CHAN_H
#define CEB_DURABLE_CHAN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "broker/buf.h"
#include "channels/channel.h"
#include "channels/durable/durable.h"
#include "channels/durable/store.h"

#define CACHE_SLOTS    4096        /* recent events kept decoded, by position */
#define CACHE_MAX_SIZE (16 * 1024) /* larger events are read back from disk */
#define PERSIST_MS     100         /* settled positions reach the disk at least this often */
#define SYNCERS        2           /* fsyncs of the log in flight at once (sync: Fsync) */

/* A message handed to a subscription and not settled DONE yet. */
struct dur_msg {
	uint64_t seq;
	struct ceb_event *ev;
	uint64_t due_ms; /* FAILED: handed out again from then on; 0 while out */
	struct dur_msg *prev, *next;
};

struct dur_sub {
	struct ceb_sub_cfg cfg;
	char key[600];        /* "ns/name": its row in the store */
	uint64_t next;        /* the next position to hand out */
	struct dur_msg *msgs; /* handed out or waiting for a retry */
	size_t inflight;      /* handed out */
	size_t retries;       /* waiting in msgs with due_ms */
};

/* One publish (one event or a batch) waiting for the writer. */
struct dur_pub {
	size_t n;
	struct ceb_event **evs;
	struct ceb_buf *enc; /* each event's JSON form */
	size_t bytes;
	int status;
	ceb_publish_done_f *done1;
	ceb_batch_done_f *doneb;
	void *arg;
	struct dur_pub *next;
};

/* A round committed to the log (written to the OS), waiting for an fsync that covers it. */
struct dur_group {
	uint64_t gen;         /* the writer's count of committed rounds */
	uint64_t first, last; /* the positions it stored (first > last: none) */
	struct dur_pub *batch;
	struct dur_group *next;
};

struct dur_cache_slot {
	uint64_t seq;
	struct ceb_event *ev;
};

struct dur_channel {
	pthread_mutex_t lock;
	pthread_cond_t wake_writer, wake_reader, wake_ckpt, wake_sync;
	char label[300];
	struct ceb_durable_channel_cfg set;
	const char *state_dir;
	char ns[256], name[256];
	struct dur_store wst, rst, cst; /* the writer's, the reader's, the checkpointer's */
	uint64_t first, last;           /* stored and synced positions (first > last: none) */
	uint64_t written;               /* the last position written to the log (>= last) */
	uint64_t bytes;                 /* what they take */
	int64_t last_ts;
	struct dur_pub *queue, **qtail;
	struct dur_sub **subs;
	size_t nsubs;
	struct dur_cache_slot *cache;
	uint64_t dropped; /* deleted by retention before every subscription settled them */
	bool dirty;       /* positions changed since they were written */
	bool started, stopping, stopped;
	pthread_t writer, reader, ckpt, syncer[SYNCERS];
	uint64_t unchecked; /* commits since the last checkpoint */
	/* sync: Fsync: the pipeline between the writer's commits and their fsyncs */
	int walfd; /* the log (-wal), fsynced by the syncers; -1: sync OS */
	struct dur_group *pending, **ptail; /* committed, not answered yet, in order */
	uint64_t gen_written, gen_syncing, gen_synced, gen_failed;
	unsigned nsyncing;
	bool writer_done;
	uint64_t commits, committed_events; /* events per sync, for the benchmark's log line */
};

static inline uint64_t dur_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t dur_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- writer.c ---- */

/* Answer a publish (done1 or doneb with its status) and free it. */
void dur_pub_complete(struct dur_pub *p);
void dur_pub_free(struct dur_pub *p);
/* The first position a subscription has not settled; the least of every subscription's. Lock held. */
uint64_t dur_sub_pos(const struct dur_sub *sub);
uint64_t dur_min_pos(const struct dur_channel *dc);
/* The threads: the writer (group commit), the syncers (sync: Fsync: fsyncs of the log, then the
 * answers), the checkpointer. The writer ends once stopping and its queue is empty; the syncers
 * once the writer ended and every commit is answered. */
void *dur_writer_main(void *arg);
void *dur_sync_main(void *arg);
void *dur_ckpt_main(void *arg);

#endif
