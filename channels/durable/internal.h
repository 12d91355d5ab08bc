/* What the durable channel's files share (channel.c: create, subscribe, start, stop, rewind;
 * writer.c: publish and the group commit; retention.c: retention and the stored bounds; reader.c:
 * handing out and settle): the channel's structs and the functions that cross files. Used nowhere
 * else but by the channel's unit test (the writer's count of failed commits, the store's page limit
 * that makes its disk full). */
#ifndef CEB_DURABLE_INTERNAL_H
#define CEB_DURABLE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/buf.h"
#include "channels/channel.h"
#include "channels/durable/durable.h"
#include "channels/durable/store.h"

#define CACHE_SLOTS    4096        /* recent events kept decoded, by position */
#define CACHE_MAX_SIZE (16 * 1024) /* larger events are read back from disk */
#define READ_BATCH     256
#define RETRY_MS       1000 /* a message settled FAILED comes again after this */
#define PERSIST_MS     100  /* settled positions reach the disk at least this often */
#define RETENTION_MS   1000 /* how often age retention runs */
#define BACKOFF_MIN_MS 100  /* after a failed commit, no round for this long, doubling... */
#define BACKOFF_MAX_MS 2000 /* ...up to this while commits fail */
#define FAIL_LOG_MS    5000 /* a commit that keeps failing is said again at most this often */
#define ROOM_MIN       (1024 * 1024) /* a full disk: settled bytes deleted at least, for room */

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

struct dur_cache_slot {
	uint64_t seq;
	struct ceb_event *ev;
};

struct dur_channel {
	pthread_mutex_t lock;
	pthread_cond_t wake_writer, wake_reader, wake_ckpt;
	/* Held by the writer around each transaction and by the checkpointer's last pass, so that
	 * this pass copies the whole log and the next transaction starts the log again (writer.c) */
	pthread_mutex_t wlock;
	char label[300];
	struct ceb_durable_channel_cfg set;
	const char *state_dir;
	char ns[256], name[256];
	struct dur_store wst, rst, cst; /* the writer's, the reader's, the checkpointer's */
	uint64_t first, last;           /* stored positions (first > last: none) */
	uint64_t bytes;                 /* what they take */
	int64_t last_ts;
	struct dur_pub *queue, **qtail;
	struct dur_sub **subs;
	size_t nsubs;
	struct dur_cache_slot *cache;
	uint64_t dropped; /* deleted by retention before every subscription settled them */
	/* What retention deleted unsettled in the round being written, said (warnings) and counted
	 * (dropped) once the round commits, forgotten if it fails: a failed round is tried again and
	 * would say and count the same events again. Writer thread. */
	char ret_notes[4][360];
	size_t nret_notes;
	uint64_t ret_lost;
	/* Every subscription's position as last committed is at least this: what retention for
	 * room may delete (settled in memory is not enough: a crash goes back to the positions on
	 * disk, which would then be before the first event stored, and be counted as lost). */
	uint64_t settled_on_disk;
	bool dirty;       /* positions changed since they were written */
	bool persist_now; /* a rewind: positions go to disk with the next round, not within 100 ms */
	bool started, stopping, stopped;
	pthread_t writer, reader, ckpt;
	uint64_t unchecked;                 /* commits since the last checkpoint */
	uint64_t commits, committed_events; /* events per sync, for the benchmark's log line */
	/* Failed commits (a full disk): every one (under the lock: the tests read it); since
	 * events were last stored, and of those not said yet: one error line, then at most one
	 * every FAIL_LOG_MS with the count, and one when events are stored again. */
	uint64_t failed_commits;
	uint64_t fails, fails_unsaid, fail_said_ms;
	bool fail_said;
};

/* channel.c */
uint64_t dur_now_ms(void);
uint64_t dur_mono_ms(void);
/* The first position a subscription has not settled: its next, or an older message out. Lock. */
uint64_t dur_sub_pos(const struct dur_sub *sub);
/* The first position some subscription has not settled (last + 1 when all are). Lock. */
uint64_t dur_min_pos(const struct dur_channel *dc);

/* writer.c */
/* Answer a publish with its status and free it. */
void dur_pub_complete(struct dur_pub *p);
void dur_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg);
void dur_publish_batch(void *ctx, struct ceb_event *const *evs, size_t n, ceb_batch_done_f *done,
                       void *arg);
/* The writer thread (group commits) and the checkpointer thread; arg is the channel. */
void *dur_writer_main(void *arg);
void *dur_ckpt_main(void *arg);

/* retention.c: writer thread, inside its transaction, without the lock. 0 or a SQLite code. */
int dur_retention(struct dur_channel *dc, uint64_t need, uint64_t first, uint64_t settled);
/* After a round: its retention warnings said and its count added when it committed, both
 * forgotten when it failed. Writer thread. */
void dur_retention_said(struct dur_channel *dc, bool committed);
int dur_sync_bounds(struct dur_channel *dc, uint64_t *first, uint64_t *next, uint64_t *bytes);

/* reader.c */
/* Messages counted out under the lock and given to the dispatcher after it is released: the
 * dispatcher's hand-over (a job, its queue's lock, maybe a wake-up write) then never holds up the
 * writer, settles or publishes. A message is its counter's alone until it is given. */
#define HAND_MAX 64

struct dur_handouts {
	size_t n;
	struct {
		struct dur_sub *sub;
		struct dur_msg *m;
		struct ceb_event *ev;
	} h[HAND_MAX];
};

/* Count out what a subscription has credit for, up to HAND_MAX in ho, in order of position:
 * messages due for a retry, then the next positions stored (for an ordered subscription, only
 * once no message waits for a retry). cached_only (the writer, for the
 * events it just committed): only what the cache holds, no retries, never the disk. Called with
 * the lock held, which it may drop to read from disk (never when cached_only). Returns true if it
 * counted out something. */
bool dur_pump(struct dur_channel *dc, struct dur_sub *sub, uint64_t now, bool cached_only,
              struct dur_handouts *ho);
/* Give what dur_pump() counted out; called with the lock held, which it drops meanwhile. */
void dur_give(struct dur_channel *dc, struct dur_handouts *ho);
void *dur_reader_main(void *arg);
void dur_settle(void *ctx, void *subp, void *handle, enum ceb_settle how);

#endif
