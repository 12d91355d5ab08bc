/* The durable channel's log on disk: one SQLite database in WAL mode per channel, with the events
 * (seq, arrival time, size, JSON-format bytes), each subscription's position and the bytes stored.
 * Stored events are always one contiguous run of positions [first, last]: retention deletes only
 * from the front. Not thread-safe: one store per thread (the writer's, the reader's). */
#ifndef CEB_DURABLE_STORE_H
#define CEB_DURABLE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

struct dur_store {
	struct sqlite3 *db;
	struct sqlite3_stmt *ins, *get, *scan, *setpos, *getpos, *setbytes, *cut, *ts_at;
	struct sqlite3_stmt *begin, *commit; /* compiled once: a group commit runs them per round */
	struct sqlite3_stmt *qmin, *qmax, *qbytes;
	struct sqlite3_stmt *dver; /* PRAGMA data_version: other connections' commits */
	int64_t dver_seen;         /* its value at the last dur_store_changed() */
	bool dver_valid;
	char path[4096];
};

/* One stored row, as read back. */
struct dur_row {
	uint64_t seq;
	int64_t ts_ms;
	size_t size;
	const void *blob; /* valid until the next call on the store */
};

/* Open (creating the directories and the database as needed) dir/<ns>/<name>.db. sync_os: commits
 * reach the OS but are not fsynced. 0, or CEB_EIO with one line in errbuf. */
int dur_store_open(struct dur_store *st, const char *dir, const char *ns, const char *name,
                   bool sync_os, char *errbuf, size_t errlen);
void dur_store_close(struct dur_store *st);
/* The run of stored positions (first > last when empty), and the bytes they take. */
int dur_store_bounds(struct dur_store *st, uint64_t *first, uint64_t *last, uint64_t *bytes);
/* The same as read by every group commit: the stored run may have grown by another instance's
 * commits (a reload starts the replacement of a channel beside it). An empty store leaves *first and
 * *last as they are. 0 or a SQLite code. */
int dur_store_refresh(struct dur_store *st, uint64_t *first, uint64_t *last, uint64_t *bytes);
/* Whether another connection (another instance of the channel: a reload starts the replacement
 * beside the running one) committed since the last call; true on the first call and on an error.
 * Inside a transaction, it answers for the transaction's snapshot. */
bool dur_store_changed(struct dur_store *st);
/* A subscription's position (the first event it has not settled), or false if it has none. */
bool dur_store_get_pos(struct dur_store *st, const char *sub, uint64_t *pos);
/* Transactions: begin, commit (one sync), rollback. 0 or a SQLite result code. */
int dur_store_begin(struct dur_store *st);
int dur_store_commit(struct dur_store *st);
void dur_store_rollback(struct dur_store *st);
int dur_store_exec(struct dur_store *st, const char *sql);
int dur_store_append(struct dur_store *st, uint64_t seq, int64_t ts_ms, const void *blob,
                     size_t size);
int dur_store_set_pos(struct dur_store *st, const char *sub, uint64_t pos);
int dur_store_set_bytes(struct dur_store *st, uint64_t bytes);
/* Delete every event up to seq. */
int dur_store_cut(struct dur_store *st, uint64_t seq);
/* Rows from seq on (at most max), in order, through fn (which returns nonzero to stop). */
int dur_store_scan(struct dur_store *st, uint64_t from, size_t max, bool with_blob,
                   int (*fn)(void *arg, const struct dur_row *row), void *arg);
/* The arrival time of the first row at or after seq, or false. */
bool dur_store_ts_at(struct dur_store *st, uint64_t seq, int64_t *ts_ms, uint64_t *at);
/* Leave checkpoints (copying the log into the database, with its fsync) to another connection, so
 * that they are not in the way of a group commit (the writer's). */
void dur_store_manual_checkpoints(struct dur_store *st);
/* Copy what the log holds into the database, as far as readers allow (never blocks the writer). */
int dur_store_checkpoint(struct dur_store *st);
/* The first position in [first, last] stored at or after since_ms (arrival times never decrease
 * along positions; last + 1 when none is), by a binary search on a connection of its own to
 * dir/<ns>/<name>.db. 0, or CEB_EIO with one line in errbuf. Any thread. */
int dur_store_find_time(const char *dir, const char *ns, const char *name, int64_t since_ms,
                        uint64_t first, uint64_t last, uint64_t *out, char *errbuf, size_t errlen);
/* The SQLite message of the last failure. */
const char *dur_store_errmsg(struct dur_store *st);
/* Whether rc is SQLite's "disk full". */
bool dur_store_is_full(int rc);

#endif
