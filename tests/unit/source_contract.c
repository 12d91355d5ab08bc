/* The source contract, as Check test cases over any source kind: the real daemon with sources whose
 * sink is an HTTP server in this process, told per path to accept, refuse or hold what it gets. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "source_contract.h"
#include "deadline.h"

extern char **environ;

static const struct source_driver *drv;

/* ---- the sink: an HTTP server whose paths accept (202), refuse (a status) or hold ---- */

enum sink_mode {
	SINK_ACCEPT,
	SINK_REFUSE,
	SINK_HOLD, /* answer nothing until the path's mode changes */
};

#define SINK_ROUTES 32
#define SINK_REQS   8192 /* requests kept; more are answered and counted in sink.dropped */
#define REFUSAL     "refused by the source contract's sink"

/* One request as the sink got it. */
struct sink_req {
	char path[64];
	char method[16];
	struct ceb_event *ev; /* decoded with the project's HTTP binding, or NULL (see err) */
	char err[256];
	int status; /* what the sink answered; 0 while held */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a request arrived or was answered; a mode changed */
	struct MHD_Daemon *mhd;
	int port;
	pid_t owner; /* the process whose threads serve */
	bool closing;
	struct {
		char path[64];
		enum sink_mode mode;
		int status;
	} routes[SINK_ROUTES];
	size_t nroutes;
	struct sink_req reqs[SINK_REQS];
	size_t nreqs, dropped;
} sink = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

struct sink_headers {
	struct ceb_http_header v[128];
	size_t n;
};

/* The answer for path, and its mode (lock held): 404 for a path no case set. */
static int sink_route(const char *path, enum sink_mode *mode)
{
	for (size_t i = 0; i < sink.nroutes; i++) {
		if (strcmp(sink.routes[i].path, path) == 0) {
			*mode = sink.routes[i].mode;
			return sink.routes[i].mode == SINK_ACCEPT ? 202 : sink.routes[i].status;
		}
	}
	*mode = SINK_REFUSE;
	return 404;
}

/* What the sink does with requests to /path from now on; a held request gets the new answer. */
static void sink_set(const char *path, enum sink_mode mode, int status)
{
	size_t i;

	pthread_mutex_lock(&sink.lock);
	for (i = 0; i < sink.nroutes; i++)
		if (strcmp(sink.routes[i].path, path) == 0)
			break;
	if (i == sink.nroutes && i < SINK_ROUTES) {
		snprintf(sink.routes[i].path, sizeof(sink.routes[i].path), "%s", path);
		sink.nroutes++;
	}
	if (i < SINK_ROUTES) {
		sink.routes[i].mode = mode;
		sink.routes[i].status = status;
	}
	pthread_cond_broadcast(&sink.cond);
	pthread_mutex_unlock(&sink.lock);
	ck_assert_uint_lt(i, SINK_ROUTES);
}

static enum MHD_Result sink_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
	struct sink_headers *h = cls;

	(void)kind;
	if (h->n == sizeof(h->v) / sizeof(h->v[0]))
		return MHD_NO;
	h->v[h->n].name = key;
	h->v[h->n].value = value ? value : "";
	h->n++;
	return MHD_YES;
}

/* Record the request, decoded, and answer it as its path says, holding it as long as it says. One
 * thread per connection: a held request holds only its own. */
static enum MHD_Result sink_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
	struct ceb_buf *body = *con_cls;
	struct sink_headers hs = {.n = 0};
	struct ceb_http_request hreq;
	struct ceb_event **evs = NULL;
	struct MHD_Response *resp;
	enum ceb_http_mode mode;
	struct sink_req *req = NULL;
	enum sink_mode how;
	char err[256] = "";
	size_t nevs = 0, slot = 0;
	enum MHD_Result ret;
	int status, rc;

	(void)cls;
	(void)version;
	if (!body) {
		if (!(body = calloc(1, sizeof(*body))))
			return MHD_NO;
		*con_cls = body;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (ceb_buf_append(body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, sink_collect_header, &hs);
	hreq = (struct ceb_http_request){hs.v, hs.n, body->p, body->len};
	rc = ceb_http_decode(&hreq, NULL, &evs, &nevs, &mode, err, sizeof(err));
	if (rc == 0 && nevs != 1)
		snprintf(err, sizeof(err), "%zu events in one request", nevs);

	pthread_mutex_lock(&sink.lock);
	if (sink.nreqs < SINK_REQS) {
		slot = sink.nreqs++;
		req = &sink.reqs[slot];
		snprintf(req->path, sizeof(req->path), "%s", url + (url[0] == '/'));
		snprintf(req->method, sizeof(req->method), "%s", method);
		snprintf(req->err, sizeof(req->err), "%s", err);
		if (rc == 0 && nevs == 1) {
			req->ev = evs[0];
			evs[0] = NULL;
		}
	} else {
		sink.dropped++;
	}
	pthread_cond_broadcast(&sink.cond);
	for (;;) {
		status = sink_route(url + (url[0] == '/'), &how);
		if (how != SINK_HOLD)
			break;
		if (sink.closing) {
			status = 503;
			break;
		}
		pthread_cond_wait(&sink.cond, &sink.lock);
	}
	if (req)
		sink.reqs[slot].status = status;
	pthread_cond_broadcast(&sink.cond);
	pthread_mutex_unlock(&sink.lock);

	for (size_t i = 0; i < nevs; i++)
		if (evs[i])
			ceb_event_unref(evs[i]);
	free(evs);
	if (status == 202)
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer(strlen(REFUSAL), (void *)REFUSAL,
		                                       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void sink_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
	struct ceb_buf *body = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!body)
		return;
	ceb_buf_free(body);
	free(body);
	*con_cls = NULL;
}

/* The unchecked setup: once per TCase, in the process that runs the cases (CK_NOFORK). */
static void sink_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const union MHD_DaemonInfo *info;

	signal(SIGPIPE, SIG_IGN);
	sink.mhd =
	        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
	                         NULL, NULL, sink_handle, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	                         MHD_OPTION_NOTIFY_COMPLETED, sink_completed, NULL, MHD_OPTION_END);
	if (!sink.mhd) {
		fprintf(stderr, "source contract: cannot start the sink server\n");
		exit(1);
	}
	info = MHD_get_daemon_info(sink.mhd, MHD_DAEMON_INFO_BIND_PORT);
	sink.port = info ? info->port : 0;
	if (!sink.port) {
		fprintf(stderr, "source contract: the sink server has no port\n");
		exit(1);
	}
	sink.owner = getpid();
}

static void sink_stop(void)
{
	pthread_mutex_lock(&sink.lock);
	sink.closing = true;
	pthread_cond_broadcast(&sink.cond);
	pthread_mutex_unlock(&sink.lock);
	MHD_stop_daemon(sink.mhd);
	for (size_t i = 0; i < sink.nreqs; i++)
		if (sink.reqs[i].ev)
			ceb_event_unref(sink.reqs[i].ev);
	sink.nreqs = 0;
}

/* ---- what the sink got (the *_locked functions with the sink's lock held) ---- */

/* Which requests sink_count counts. */
enum sink_count {
	COUNT_ALL,
	COUNT_HELD,
	COUNT_ACCEPTED,
};

static const char *req_id(const struct sink_req *r)
{
	const struct ceb_attr *a = r->ev ? ceb_event_get(r->ev, "id") : NULL;

	return a ? a->value : NULL;
}

/* The requests to path, from request number `from` on, whose event has id `id` (NULL: any): all of
 * them, those still held, or those the sink accepted. */
static size_t sink_count_locked(const char *path, const char *id, enum sink_count what, size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < sink.nreqs; i++) {
		const struct sink_req *r = &sink.reqs[i];
		const char *rid = req_id(r);
		if (strcmp(r->path, path) || (id && (!rid || strcmp(rid, id))))
			continue;
		n += what == COUNT_ALL || (what == COUNT_HELD && r->status == 0) ||
		     (what == COUNT_ACCEPTED && r->status == 202);
	}
	return n;
}

static size_t sink_count(const char *path, const char *id, enum sink_count what, size_t from)
{
	size_t n;

	pthread_mutex_lock(&sink.lock);
	n = sink_count_locked(path, id, what, from);
	pthread_mutex_unlock(&sink.lock);
	return n;
}

/* Distinct event ids among the requests to path. */
static size_t sink_distinct_locked(const char *path)
{
	size_t n = 0;

	for (size_t i = 0; i < sink.nreqs; i++) {
		const char *id = req_id(&sink.reqs[i]);
		size_t k;
		if (!id || strcmp(sink.reqs[i].path, path))
			continue;
		for (k = 0; k < i; k++) {
			const char *other = req_id(&sink.reqs[k]);
			if (other && strcmp(sink.reqs[k].path, path) == 0 && strcmp(other, id) == 0)
				break;
		}
		n += k == i;
	}
	return n;
}

/* Wait up to ms until sink_count(path, id, what, from) reaches n; returns the count. */
static size_t sink_wait(const char *path, const char *id, enum sink_count what, size_t from,
                        size_t n, int ms)
{
	struct timespec ts;
	size_t got;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&sink.lock);
	while ((got = sink_count_locked(path, id, what, from)) < n &&
	       pthread_cond_timedwait(&sink.cond, &sink.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&sink.lock);
	return got;
}

/* Wait up to ms until path got n distinct event ids; returns how many it got. */
static size_t sink_wait_distinct(const char *path, size_t n, int ms)
{
	struct timespec ts;
	size_t got;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&sink.lock);
	while ((got = sink_distinct_locked(path)) < n &&
	       pthread_cond_timedwait(&sink.cond, &sink.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&sink.lock);
	return got;
}

/* The id of the first request to path from request number `from` on whose id is not `not` (NULL:
 * any), copied into buf; NULL when there is none. */
static const char *sink_first_id(const char *path, size_t from, const char * not, char *buf,
                                 size_t len)
{
	const char *found = NULL;

	pthread_mutex_lock(&sink.lock);
	for (size_t i = from; i < sink.nreqs && !found; i++) {
		const char *id = req_id(&sink.reqs[i]);
		if (id && strcmp(sink.reqs[i].path, path) == 0 && (!not || strcmp(id, not ))) {
			snprintf(buf, len, "%s", id);
			found = buf;
		}
	}
	pthread_mutex_unlock(&sink.lock);
	return found;
}

/* The k-th request (from 0) to path whose event has id `id` (NULL: any), copied into *out with a
 * reference of its own to the event (the caller drops it); false when there is none. The cases
 * assert on copies: a failed assertion must never leave the sink's lock taken (no fork: the next
 * case runs in this process). */
static bool sink_get(const char *path, const char *id, size_t k, struct sink_req *out)
{
	bool found = false;

	pthread_mutex_lock(&sink.lock);
	for (size_t i = 0; i < sink.nreqs && !found; i++) {
		const struct sink_req *r = &sink.reqs[i];
		const char *rid = req_id(r);
		if (strcmp(r->path, path) || (id && (!rid || strcmp(rid, id))) || k-- > 0)
			continue;
		*out = *r;
		if (out->ev)
			ceb_event_ref(out->ev);
		found = true;
	}
	pthread_mutex_unlock(&sink.lock);
	return found;
}

static size_t sink_total(void)
{
	size_t n;

	pthread_mutex_lock(&sink.lock);
	n = sink.nreqs;
	pthread_mutex_unlock(&sink.lock);
	return n;
}

/* ---- the daemon: `cebroker run` with the case's resources, its log in a file of its own ---- */

static struct {
	pid_t pid; /* 0: none runs */
	int status;
	char dir[64];
	char url[64];
	char yaml[8192];
} dmn;

static void path_in_dir(char *out, size_t len, const char *file)
{
	snprintf(out, len, "%s/%s", dmn.dir, file);
}

/* The end of the daemon's log, for failure messages. */
static const char *daemon_log_tail(void)
{
	static char tail[4096];
	char path[128];
	ssize_t n = 0;
	off_t size;
	int fd;

	tail[0] = '\0';
	path_in_dir(path, sizeof(path), "log");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "(no log)";
	size = lseek(fd, 0, SEEK_END);
	if (size >= 0) {
		off_t at = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
		n = pread(fd, tail, sizeof(tail) - 1, at);
	}
	close(fd);
	tail[n > 0 ? n : 0] = '\0';
	return tail;
}

/* Fail the case with the message and the daemon's log unless ok. */
__attribute__((format(printf, 2, 3))) static void expect(bool ok, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck_abort_msg("%s (%s); the daemon's log ends with:\n%s", msg, drv->kind,
	             dmn.dir[0] ? daemon_log_tail() : "(no daemon ran)");
}

/* The whole log, malloc'd, or NULL. */
static char *daemon_log(void)
{
	char path[128];
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd;

	path_in_dir(path, sizeof(path), "log");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
		n = pread(fd, buf, (size_t)st.st_size, 0);
		buf[n > 0 ? n : 0] = '\0';
	}
	close(fd);
	return buf;
}

/* Whether the log has a line containing needle; with port, also reads the port that follows. */
static bool daemon_log_has(const char *needle, int *port)
{
	char *log = daemon_log(), *at;
	bool found;

	at = log ? strstr(log, needle) : NULL;
	found = at != NULL;
	if (found && port)
		found = sscanf(at + strlen(needle), "%d", port) == 1;
	free(log);
	return found;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* Whether the daemon exited; reaps it and keeps its wait status. */
static bool daemon_exited(void)
{
	if (!dmn.pid)
		return true;
	if (waitpid(dmn.pid, &dmn.status, WNOHANG) != dmn.pid)
		return false;
	dmn.pid = 0;
	return true;
}

/* Wait up to ms for the daemon to exit; true when it did. */
static bool daemon_wait_exit(int ms)
{
	for (int waited = 0; !daemon_exited(); waited += 20) {
		if (waited >= ms)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* Run the daemon on the YAML of the case (dmn.yaml) and wait until it listens (everything,
 * sources included, started). */
static void daemon_start(void)
{
	const char *bin = getenv("CEBROKER");
	char cfg[128], log[128], drain[32];
	char *argv[] = {(char *)bin,       "run",         "-f",          cfg,
	                "--listen",        "127.0.0.1:0", "--log-level", "info",
	                "--drain-timeout", drain,         NULL};
	posix_spawn_file_actions_t fa;
	FILE *f;
	int port = 0, rc;

	ck_assert_msg(bin != NULL, "CEBROKER is not set (make check sets it)");
	ck_assert_int_eq(dmn.pid, 0);
	if (!dmn.dir[0]) {
		snprintf(dmn.dir, sizeof(dmn.dir), "/tmp/ceb-source-contract-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dmn.dir));
	}
	path_in_dir(cfg, sizeof(cfg), "config.yaml");
	path_in_dir(log, sizeof(log), "log");
	/* A drain that never ends on its own before the case ends it. */
	snprintf(drain, sizeof(drain), "%d", drv->wait_ms);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fputs(dmn.yaml, f);
	ck_assert_int_eq(fclose(f), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawn(&dmn.pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		dmn.pid = 0;
	ck_assert_msg(rc == 0, "cannot run %s: %s", bin, strerror(rc));
	for (int waited = 0; !daemon_log_has("listening on http://127.0.0.1:", &port);
	     waited += 20) {
		bool exited = daemon_exited();
		expect(!exited, "the daemon exited at start (wait status %d)", dmn.status);
		expect(waited < drv->wait_ms, "the daemon did not start within %d ms",
		       drv->wait_ms);
		sleep_ms(20);
	}
	snprintf(dmn.url, sizeof(dmn.url), "http://127.0.0.1:%d", port);
}

static void daemon_signal(int sig)
{
	ck_assert_int_ne(dmn.pid, 0);
	ck_assert_int_eq(kill(dmn.pid, sig), 0);
}

/* A clean exit is part of every case: status 0 and no sanitizer report in the log. */
static void daemon_check_exit(void)
{
	char *log = daemon_log();
	bool clean = log && !strstr(log, "ERROR: AddressSanitizer") &&
	             !strstr(log, "ERROR: LeakSanitizer") && !strstr(log, "runtime error:");

	free(log);
	expect(clean, "the daemon's log has a sanitizer report");
	expect(WIFEXITED(dmn.status) && WEXITSTATUS(dmn.status) == 0,
	       "the daemon did not exit with status 0 (wait status %d)", dmn.status);
}

/* SIGTERM, the drain, a clean exit. */
static void daemon_stop(void)
{
	daemon_signal(SIGTERM);
	expect(daemon_wait_exit(drv->wait_ms), "the daemon did not exit within %d ms of SIGTERM",
	       drv->wait_ms);
	daemon_check_exit();
}

/* ---- each case's source ---- */

static void sink_uri(char *out, size_t len, const char *path)
{
	snprintf(out, len, "http://127.0.0.1:%d/%s", sink.port, path);
}

/* Add to the daemon's resources (dmn.yaml) a source named name, its feed made ready, whose sink is
 * /name on the sink server, with the delivery block `delivery` (YAML at the indent of the
 * delivery mapping's fields, or NULL). */
static void source_add(const char *name, const char *delivery)
{
	char spec[2048], uri[128];
	size_t n, used = strlen(dmn.yaml);

	if (drv->prepare)
		drv->prepare(drv->arg, name);
	sink_uri(uri, sizeof(uri), name);
	n = (size_t)snprintf(spec, sizeof(spec), "  sink:\n    uri: %s\n", uri);
	if (delivery) {
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, "  delivery:\n");
		for (const char *p = delivery; *p && n < sizeof(spec);) {
			size_t l = strcspn(p, "\n");
			n += (size_t)snprintf(spec + n, sizeof(spec) - n, "    %.*s\n", (int)l, p);
			p += l + (p[l] == '\n');
		}
	}
	ck_assert_uint_lt(n, sizeof(spec));
	drv->resource(drv->arg, name, spec, dmn.yaml + used, sizeof(dmn.yaml) - used);
	ck_assert_msg(strstr(dmn.yaml + used, uri) != NULL,
	              "the driver's resource has no sink:\n%s", dmn.yaml + used);
}

/* Feed n inputs to source name; the feed must take them. */
static void feed(const char *name, int n)
{
	int rc = drv->feed(drv->arg, name, dmn.pid ? dmn.url : NULL, n);

	expect(rc == 0, "the feed of %s refused %d input(s): %d", name, n, rc);
}

static void case_setup(void)
{
	ck_assert_msg(getpid() == sink.owner,
	              "the source contract runs in the process of its sink server: "
	              "srunner_set_fork_status(sr, CK_NOFORK)");
	ck_assert_msg(sink.dropped == 0, "the sink got more than %d requests: counts are wrong",
	              SINK_REQS);
	memset(&dmn, 0, sizeof(dmn));
}

/* Whatever a case left behind (it failed half-way): no daemon runs, nothing is held. */
static void case_teardown(void)
{
	char path[128];

	if (dmn.pid) {
		kill(dmn.pid, SIGKILL);
		waitpid(dmn.pid, NULL, 0);
		dmn.pid = 0;
	}
	pthread_mutex_lock(&sink.lock);
	for (size_t i = 0; i < sink.nroutes; i++)
		sink.routes[i].mode = SINK_ACCEPT;
	pthread_cond_broadcast(&sink.cond);
	pthread_mutex_unlock(&sink.lock);
	if (dmn.dir[0]) {
		path_in_dir(path, sizeof(path), "config.yaml");
		unlink(path);
		path_in_dir(path, sizeof(path), "log");
		unlink(path);
		rmdir(dmn.dir);
	}
}

/* ---- the cases ---- */

START_TEST(test_it_emits_valid_cloudevents_to_its_sink)
{
	const char *name = "emits";
	struct sink_req got[3];
	size_t n;

	sink_set(name, SINK_ACCEPT, 0);
	source_add(name, NULL);
	daemon_start();
	feed(name, 3);
	n = sink_wait(name, NULL, COUNT_ALL, 0, 3, drv->wait_ms);
	expect(n >= 3, "the sink got %zu of 3 events", n);
	daemon_stop();

	for (size_t k = 0; k < 3; k++) {
		char verr[256] = "";
		ck_assert(sink_get(name, NULL, k, &got[k]));
		ck_assert_str_eq(got[k].method, "POST");
		ck_assert_msg(got[k].ev != NULL, "request %zu is no CloudEvent: %s", k + 1,
		              got[k].err);
		ck_assert_msg(ceb_event_validate(got[k].ev, NULL, verr, sizeof(verr)) == 0,
		              "request %zu: %s", k + 1, verr);
		/* source + id identifies an event: every input is an event of its own */
		for (size_t j = 0; j < k; j++) {
			const char *id = ceb_event_get(got[k].ev, "id")->value,
			           *src = ceb_event_get(got[k].ev, "source")->value;
			ck_assert_msg(
			        strcmp(ceb_event_get(got[j].ev, "id")->value, id) ||
			                strcmp(ceb_event_get(got[j].ev, "source")->value, src),
			        "two inputs became one event (source %s, id %s)", src, id);
		}
	}
	for (size_t k = 0; k < 3; k++)
		ceb_event_unref(got[k].ev);
}
END_TEST

START_TEST(test_progress_moves_only_after_the_sink_accepted)
{
	const char *name = "progress";
	char accepted[256], refused[256];
	size_t mark;

	if (!drv->durable)
		return;
	sink_set(name, SINK_ACCEPT, 0);
	source_add(name, "retry: 0");
	daemon_start();
	feed(name, 1);
	expect(sink_wait(name, NULL, COUNT_ACCEPTED, 0, 1, drv->wait_ms) == 1,
	       "the first event did not arrive");
	expect(sink_first_id(name, 0, NULL, accepted, sizeof(accepted)) != NULL,
	       "what arrived is no CloudEvent");
	/* The second is refused once (retry 0, no dead-letter sink): its progress must not move. */
	sink_set(name, SINK_REFUSE, 503);
	mark = sink_total();
	feed(name, 1);
	for (int waited = 0; !sink_first_id(name, mark, accepted, refused, sizeof(refused));
	     waited += 20) {
		expect(waited < drv->wait_ms, "the second event did not arrive");
		sleep_ms(20);
	}
	daemon_stop();

	/* A daemon started again, with a sink that accepts now, gets the refused event again; the
	 * accepted one was done with. It came before the refused one, so if it were read again it
	 * would have been delivered before the drain of this second daemon ended. */
	sink_set(name, SINK_ACCEPT, 0);
	mark = sink_total();
	daemon_start();
	expect(sink_wait(name, refused, COUNT_ACCEPTED, mark, 1, drv->wait_ms) == 1,
	       "the refused event %s did not come again after a restart", refused);
	daemon_stop();
	expect(sink_count(name, accepted, COUNT_ALL, mark) == 0,
	       "the accepted event %s came again after a clean stop", accepted);
}
END_TEST

START_TEST(test_stop_emits_nothing_more_and_what_was_emitted_still_goes_out)
{
	/* Two sources of the kind in one daemon: `holder`, whose sink holds a delivery, keeps the
	 * drain going while `name`, whose sink accepts, is fed after the drain began. One source
	 * holding its own delivery would prove nothing: an ordered source hands out nothing more
	 * while a delivery is held, stopped or not. */
	const char *name = "stops", *holder = "stops-holder";
	size_t before, distinct;
	int fed;

	sink_set(name, SINK_ACCEPT, 0);
	sink_set(holder, SINK_HOLD, 0);
	source_add(name, NULL);
	source_add(holder, NULL);
	daemon_start();
	feed(holder, 1);
	feed(name, 1);
	expect(sink_wait(holder, NULL, COUNT_HELD, 0, 1, drv->wait_ms) >= 1,
	       "nothing of %s arrived at the sink", holder);
	expect(sink_wait(name, NULL, COUNT_ACCEPTED, 0, 1, drv->wait_ms) >= 1,
	       "nothing of %s arrived at the sink", name);
	/* SIGTERM while the sink holds a delivery: the daemon drains, the sources are stopped. */
	daemon_signal(SIGTERM);
	for (int waited = 0; !daemon_log_has("draining", NULL); waited += 20) {
		expect(waited < drv->wait_ms, "the daemon did not begin to drain");
		sleep_ms(20);
	}
	before = sink_count(name, NULL, COUNT_ALL, 0);
	pthread_mutex_lock(&sink.lock);
	distinct = sink_distinct_locked(name);
	pthread_mutex_unlock(&sink.lock);
	/* A webhook of a draining daemon refuses them: fine, nothing must arrive either way. */
	fed = drv->feed(drv->arg, name, dmn.url, 3);
	/* Watch for as long as the source takes to deliver an input. */
	expect(sink_wait(name, NULL, COUNT_ALL, 0, before + 1, drv->quiet_ms) == before,
	       "an input fed after the drain began reached the sink");
	if (!drv->posts_itself)
		expect(!daemon_exited(), "the daemon exited while the sink held a delivery");
	/* What was emitted still goes out: the held delivery gets its answer, the drain ends. */
	sink_set(holder, SINK_ACCEPT, 0);
	expect(daemon_wait_exit(drv->wait_ms), "the daemon did not exit after the drain");
	daemon_check_exit();
	expect(sink_count(name, NULL, COUNT_ALL, 0) == before,
	       "an input fed after the drain began reached the sink");
	/* (a program that posts itself may have left already: its answer is recorded as it comes) */
	expect(sink_wait(holder, NULL, COUNT_ACCEPTED, 0, 1,
	                 drv->posts_itself ? drv->wait_ms : 0) >= 1,
	       "the held delivery did not get its answer during the drain");
	if (!drv->durable || fed < 0)
		return;
	/* Durable: what was fed during the drain is read by the next daemon. */
	daemon_start();
	expect(sink_wait_distinct(name, distinct + 3, drv->wait_ms) == distinct + 3,
	       "the inputs fed during the drain did not arrive after a restart");
	daemon_stop();
}
END_TEST

START_TEST(test_a_failing_sink_gets_the_retries_and_then_the_dead_letter_sink)
{
	const char *name = "retries", *dls = "retries-dls";
	char delivery[512], uri[128], id[256], dest[128];
	const struct ceb_attr *code, *errdest;
	struct sink_req letter;
	size_t attempts, letters;

	if (drv->no_delivery)
		return;
	sink_set(name, SINK_REFUSE, 503);
	sink_set(dls, SINK_ACCEPT, 0);
	sink_uri(uri, sizeof(uri), dls);
	snprintf(delivery, sizeof(delivery),
	         "retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.1S\n"
	         "deadLetterSink:\n  uri: %s",
	         uri);
	source_add(name, delivery);
	daemon_start();
	feed(name, 1);
	expect(sink_wait(dls, NULL, COUNT_ACCEPTED, 0, 1, drv->wait_ms) >= 1,
	       "nothing reached the dead-letter sink");
	expect(sink_first_id(dls, 0, NULL, id, sizeof(id)) != NULL,
	       "what arrived is no CloudEvent");
	daemon_stop(); /* after the drain, the counts are final */

	sink_uri(dest, sizeof(dest), name);
	attempts = sink_count(name, id, COUNT_ALL, 0);
	letters = sink_count(dls, id, COUNT_ALL, 0);
	ck_assert(sink_get(dls, id, 0, &letter));
	code = ceb_event_get(letter.ev, "knativeerrorcode");
	errdest = ceb_event_get(letter.ev, "knativeerrordest");
	expect(code && strcmp(code->value, "503") == 0,
	       "the dead letter's knativeerrorcode is %s, not 503", code ? code->value : "missing");
	expect(errdest && strcmp(errdest->value, dest) == 0,
	       "the dead letter's knativeerrordest is %s, not %s",
	       errdest ? errdest->value : "missing", dest);
	ceb_event_unref(letter.ev);
	/* retry: 2 is the first attempt and two more, then one dead letter, accepted: done with */
	expect(attempts == 3, "the sink got %zu attempts of %s, not 1 + 2 retries", attempts, id);
	expect(letters == 1, "the dead-letter sink got %s %zu times", id, letters);
}
END_TEST

START_TEST(test_a_crash_before_the_sink_accepted_redelivers)
{
	const char *name = "crash";
	char id[256];
	size_t mark;

	if (!drv->durable)
		return;
	sink_set(name, SINK_HOLD, 0);
	source_add(name, NULL);
	daemon_start();
	feed(name, 1);
	expect(sink_wait(name, NULL, COUNT_HELD, 0, 1, drv->wait_ms) >= 1,
	       "nothing arrived at the sink");
	expect(sink_first_id(name, 0, NULL, id, sizeof(id)) != NULL,
	       "what arrived is no CloudEvent");
	/* Give a source that would move its progress before the sink accepted the time to do it. */
	sleep_ms(drv->quiet_ms);
	expect(sink_count(name, id, COUNT_HELD, 0) >= 1, "the held delivery of %s ended", id);
	daemon_signal(SIGKILL);
	expect(daemon_wait_exit(drv->wait_ms), "the daemon did not die of SIGKILL");
	ck_assert(WIFSIGNALED(dmn.status) && WTERMSIG(dmn.status) == SIGKILL);
	/* The held request is answered to a dead connection: the sink never accepted it. */
	sink_set(name, SINK_ACCEPT, 0);
	mark = sink_total();
	daemon_start();
	expect(sink_wait(name, id, COUNT_ACCEPTED, mark, 1, drv->wait_ms) == 1,
	       "the event %s held when the daemon was killed did not come again", id);
	daemon_stop();
}
END_TEST

void source_contract_add_tests(TCase *tc, const struct source_driver *driver)
{
	drv = driver;
	tcase_add_unchecked_fixture(tc, sink_start, sink_stop);
	tcase_add_checked_fixture(tc, case_setup, case_teardown);
	tcase_add_test(tc, test_it_emits_valid_cloudevents_to_its_sink);
	tcase_add_test(tc, test_progress_moves_only_after_the_sink_accepted);
	tcase_add_test(tc, test_stop_emits_nothing_more_and_what_was_emitted_still_goes_out);
	tcase_add_test(tc, test_a_failing_sink_gets_the_retries_and_then_the_dead_letter_sink);
	tcase_add_test(tc, test_a_crash_before_the_sink_accepted_redelivers);
}
