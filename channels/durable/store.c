/* The durable channel's log on disk (store.h): SQLite in WAL mode, chosen over LMDB because a group
 * commit in WAL mode costs one fsync of the log where LMDB's costs two (data, then meta page). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/error.h"
#include "channels/durable/store.h"

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, "
                             "ts INTEGER NOT NULL, size INTEGER NOT NULL, ev BLOB NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS subs(name TEXT PRIMARY KEY, "
                             "pos INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER);"
                             "INSERT OR IGNORE INTO meta VALUES('bytes', 0);";

/* mkdir -p of path's directories (the last component is a file). */
static int make_dirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0750) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* A namespace or name as one path component: Kubernetes names are [a-z0-9.-], anything else is
 * replaced so that no name can leave the directory. */
static void component(char *out, size_t sz, const char *s)
{
	size_t i = 0;

	for (; s[i] && i + 1 < sz; i++)
		out[i] = (char)((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		                                (s[i] == '-') || (s[i] == '.' && i > 0)
		                        ? s[i]
		                        : '_');
	out[i] = '\0';
}

static int prep(struct dur_store *st, struct sqlite3_stmt **s, const char *sql)
{
	return sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
}

int dur_store_open(struct dur_store *st, const char *dir, const char *ns, const char *name,
                   bool sync_os, char *errbuf, size_t errlen)
{
	char n1[256], n2[256];
	int rc;

	memset(st, 0, sizeof(*st));
	component(n1, sizeof(n1), ns);
	component(n2, sizeof(n2), name);
	if ((size_t)snprintf(st->path, sizeof(st->path), "%s/durable/%s/%s.db", dir, n1, n2) >=
	    sizeof(st->path)) {
		snprintf(errbuf, errlen, "state directory path too long");
		return CEB_EIO;
	}
	if (make_dirs(st->path) < 0) {
		snprintf(errbuf, errlen, "cannot create the directories of %s: %s", st->path,
		         strerror(errno));
		return CEB_EIO;
	}
	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(st->db, 10000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->db, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->db,
		                  sync_os ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL",
		                  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = prep(st, &st->ins, "INSERT INTO events(seq, ts, size, ev) VALUES(?,?,?,?)");
	if (rc == SQLITE_OK)
		rc = prep(
		        st, &st->scan,
		        "SELECT seq, ts, size, ev FROM events WHERE seq >= ? ORDER BY seq LIMIT ?");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->get,
		          "SELECT seq, ts, size FROM events WHERE seq >= ? ORDER BY seq LIMIT ?");
	if (rc == SQLITE_OK)
		/* an upsert, not INSERT OR REPLACE: updating the row in place leaves the name's
		 * index alone, one page less in the log per commit */
		rc = prep(st, &st->setpos,
		          "INSERT INTO subs(name, pos) VALUES(?,?) "
		          "ON CONFLICT(name) DO UPDATE SET pos = excluded.pos");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->getpos, "SELECT pos FROM subs WHERE name = ?");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->setbytes, "UPDATE meta SET v = ? WHERE k = 'bytes'");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->cut, "DELETE FROM events WHERE seq <= ?");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->ts_at,
		          "SELECT seq, ts FROM events WHERE seq >= ? ORDER BY seq LIMIT 1");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->qmin, "SELECT min(seq) FROM events");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->qmax, "SELECT max(seq) FROM events");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->qbytes, "SELECT v FROM meta WHERE k = 'bytes'");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->dver, "PRAGMA data_version");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->begin, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = prep(st, &st->commit, "COMMIT");
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "cannot open %s: %s", st->path,
		         st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		dur_store_close(st);
		return CEB_EIO;
	}
	return 0;
}

void dur_store_close(struct dur_store *st)
{
	struct sqlite3_stmt *all[] = {st->ins,      st->get,  st->scan,   st->setpos, st->getpos,
	                              st->setbytes, st->cut,  st->ts_at,  st->begin,  st->commit,
	                              st->qmin,     st->qmax, st->qbytes, st->dver};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(st->db);
	memset(st, 0, sizeof(*st));
}

static int one_int(struct dur_store *st, const char *sql, int64_t *v, bool *null)
{
	struct sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*null = sqlite3_column_type(s, 0) == SQLITE_NULL;
			*v = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int dur_store_bounds(struct dur_store *st, uint64_t *first, uint64_t *last, uint64_t *bytes)
{
	int64_t lo = 0, hi = 0, b = 0;
	bool n1 = true, n2 = true, n3 = true;
	int rc = one_int(st, "SELECT min(seq) FROM events", &lo, &n1);

	if (rc == SQLITE_OK)
		rc = one_int(st, "SELECT max(seq) FROM events", &hi, &n2);
	if (rc == SQLITE_OK)
		rc = one_int(st, "SELECT v FROM meta WHERE k = 'bytes'", &b, &n3);
	if (rc != SQLITE_OK)
		return rc;
	if (n1 || n2) {
		/* Empty: the next position continues after the highest one ever handed to a
		 * subscription, so that positions never go back. */
		int64_t p = 0;
		bool np = true;

		if (one_int(st, "SELECT max(pos) FROM subs", &p, &np) != SQLITE_OK || np)
			p = 1;
		*first = (uint64_t)(p > 0 ? p : 1);
		*last = *first - 1;
		*bytes = 0;
		return 0;
	}
	*first = (uint64_t)lo;
	*last = (uint64_t)hi;
	*bytes = n3 ? 0 : (uint64_t)b;
	return 0;
}

/* One integer of a prepared one-row query; *null when it is NULL. */
static int one_prepared(struct sqlite3_stmt *s, int64_t *v, bool *null)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		*null = sqlite3_column_type(s, 0) == SQLITE_NULL;
		*v = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(s);
	return rc;
}

int dur_store_refresh(struct dur_store *st, uint64_t *first, uint64_t *last, uint64_t *bytes)
{
	int64_t lo = 0, hi = 0, b = 0;
	bool n1 = true, n2 = true, n3 = true;
	int rc = one_prepared(st->qmin, &lo, &n1);

	if (rc == SQLITE_OK)
		rc = one_prepared(st->qmax, &hi, &n2);
	if (rc == SQLITE_OK)
		rc = one_prepared(st->qbytes, &b, &n3);
	if (rc != SQLITE_OK)
		return rc;
	if (n1 || n2) {
		*first = *last + 1;
		*bytes = 0;
		return 0;
	}
	*first = (uint64_t)lo;
	*last = (uint64_t)hi;
	*bytes = n3 ? 0 : (uint64_t)b;
	return 0;
}

bool dur_store_changed(struct dur_store *st)
{
	int64_t v = 0;
	bool null = true, changed;

	if (one_prepared(st->dver, &v, &null) != SQLITE_OK || null) {
		st->dver_valid = false;
		return true;
	}
	changed = !st->dver_valid || v != st->dver_seen;
	st->dver_seen = v;
	st->dver_valid = true;
	return changed;
}

bool dur_store_get_pos(struct dur_store *st, const char *sub, uint64_t *pos)
{
	bool found = false;

	sqlite3_bind_text(st->getpos, 1, sub, -1, SQLITE_STATIC);
	if (sqlite3_step(st->getpos) == SQLITE_ROW) {
		*pos = (uint64_t)sqlite3_column_int64(st->getpos, 0);
		found = true;
	}
	sqlite3_reset(st->getpos);
	sqlite3_clear_bindings(st->getpos);
	return found;
}

int dur_store_exec(struct dur_store *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

static int step_done(struct sqlite3_stmt *s);

int dur_store_begin(struct dur_store *st)
{
	return step_done(st->begin);
}

int dur_store_commit(struct dur_store *st)
{
	return step_done(st->commit);
}

void dur_store_rollback(struct dur_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		dur_store_exec(st, "ROLLBACK");
}

static int step_done(struct sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int dur_store_append(struct dur_store *st, uint64_t seq, int64_t ts_ms, const void *blob,
                     size_t size)
{
	sqlite3_bind_int64(st->ins, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(st->ins, 2, ts_ms);
	sqlite3_bind_int64(st->ins, 3, (sqlite3_int64)size);
	sqlite3_bind_blob64(st->ins, 4, blob, size, SQLITE_STATIC);
	return step_done(st->ins);
}

int dur_store_set_pos(struct dur_store *st, const char *sub, uint64_t pos)
{
	sqlite3_bind_text(st->setpos, 1, sub, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->setpos, 2, (sqlite3_int64)pos);
	return step_done(st->setpos);
}

int dur_store_set_bytes(struct dur_store *st, uint64_t bytes)
{
	sqlite3_bind_int64(st->setbytes, 1, (sqlite3_int64)bytes);
	return step_done(st->setbytes);
}

int dur_store_cut(struct dur_store *st, uint64_t seq)
{
	sqlite3_bind_int64(st->cut, 1, (sqlite3_int64)seq);
	return step_done(st->cut);
}

int dur_store_scan(struct dur_store *st, uint64_t from, size_t max, bool with_blob,
                   int (*fn)(void *arg, const struct dur_row *row), void *arg)
{
	struct sqlite3_stmt *s = with_blob ? st->scan : st->get;
	int rc;

	sqlite3_bind_int64(s, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct dur_row row = {
		        .seq = (uint64_t)sqlite3_column_int64(s, 0),
		        .ts_ms = sqlite3_column_int64(s, 1),
		        .size = (size_t)sqlite3_column_int64(s, 2),
		        .blob = with_blob ? sqlite3_column_blob(s, 3) : NULL,
		};
		if (with_blob)
			row.size = (size_t)sqlite3_column_bytes(s, 3);
		if (fn(arg, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

bool dur_store_ts_at(struct dur_store *st, uint64_t seq, int64_t *ts_ms, uint64_t *at)
{
	bool found = false;

	sqlite3_bind_int64(st->ts_at, 1, (sqlite3_int64)seq);
	if (sqlite3_step(st->ts_at) == SQLITE_ROW) {
		*at = (uint64_t)sqlite3_column_int64(st->ts_at, 0);
		*ts_ms = sqlite3_column_int64(st->ts_at, 1);
		found = true;
	}
	sqlite3_reset(st->ts_at);
	sqlite3_clear_bindings(st->ts_at);
	return found;
}

void dur_store_manual_checkpoints(struct dur_store *st)
{
	sqlite3_wal_autocheckpoint(st->db, 0);
}

int dur_store_checkpoint(struct dur_store *st)
{
	return sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

int dur_store_find_time(const char *dir, const char *ns, const char *name, int64_t since_ms,
                        uint64_t first, uint64_t last, uint64_t *out, char *errbuf, size_t errlen)
{
	struct dur_store st;
	uint64_t lo = first, hi = last + 1;
	int rc = dur_store_open(&st, dir, ns, name, false, errbuf, errlen);

	if (rc < 0)
		return rc;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2, at;
		int64_t ts;

		if (!dur_store_ts_at(&st, mid, &ts, &at)) {
			hi = mid; /* deleted meanwhile from the end: cannot be, but stay finite */
			continue;
		}
		if (ts >= since_ms)
			hi = mid;
		else
			lo = at + 1;
	}
	dur_store_close(&st);
	*out = lo;
	return 0;
}

const char *dur_store_errmsg(struct dur_store *st)
{
	return st->db ? sqlite3_errmsg(st->db) : "not open";
}

bool dur_store_is_full(int rc)
{
	return (rc & 0xff) == SQLITE_FULL;
}
