/* Benchmark baseline (a program, not a test): a bare libmicrohttpd server that answers 202 to every
 * POST, with cebroker's ingress thread model; with --sink it also counts and times what arrives. */
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

/* Latency histogram of --sink: 1 us buckets up to 100 ms, then one overflow bucket. */
#define HIST_BUCKETS 100000

static atomic_ulong count;
static atomic_uint hist[HIST_BUCKETS + 1];
static atomic_ulong hist_n, hist_max_us;
static int sink_mode;
static volatile sig_atomic_t stop;

/* --sink also counts POSTs per path (the reload benchmark gives each Trigger a path of its own):
 * GET /stats lists them as "path /p N" after the totals. */
#define PATHS    256
#define PATH_MAX_LEN 64
static pthread_mutex_t paths_lock = PTHREAD_MUTEX_INITIALIZER;
static char path_name[PATHS][PATH_MAX_LEN];
static unsigned long path_count[PATHS];
static size_t npaths;

static void count_path(const char *url)
{
	size_t i;

	pthread_mutex_lock(&paths_lock);
	for (i = 0; i < npaths; i++)
		if (strcmp(path_name[i], url) == 0)
			break;
	if (i == npaths && npaths < PATHS && strlen(url) < PATH_MAX_LEN)
		snprintf(path_name[npaths++], PATH_MAX_LEN, "%s", url);
	if (i < npaths)
		path_count[i]++;
	pthread_mutex_unlock(&paths_lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The header the bench client puts on paced requests: CLOCK_MONOTONIC nanoseconds at sending.
 * Both ends run on one host, so the clocks agree. */
static void record_latency(struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ce-benchsent");
	unsigned long long sent, us;
	unsigned long max; /* the type of hist_max_us, which the exchange writes */
	char *end;

	if (!v)
		return;
	errno = 0;
	sent = strtoull(v, &end, 10);
	if (errno || *end || end == v)
		return;
	us = (now_ns() - sent) / 1000;
	atomic_fetch_add(&hist[us < HIST_BUCKETS ? us : HIST_BUCKETS], 1);
	atomic_fetch_add(&hist_n, 1);
	max = atomic_load(&hist_max_us);
	while (us > max && !atomic_compare_exchange_weak(&hist_max_us, &max, (unsigned long)us))
		;
}

static unsigned long long percentile(unsigned long n, double p)
{
	unsigned long want = (unsigned long)((double)n * p), seen = 0;

	if (want >= n)
		want = n ? n - 1 : 0;
	for (unsigned long i = 0; i <= HIST_BUCKETS; i++) {
		seen += atomic_load(&hist[i]);
		if (seen > want)
			return i;
	}
	return HIST_BUCKETS;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* GET /stats: "count N" and, in sink mode, latency percentiles in microseconds. With ?reset=1 the
 * histogram starts afresh after the answer, so that each measurement window is separate. */
static enum MHD_Result answer_stats(struct MHD_Connection *conn)
{
	const char *reset = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "reset");
	unsigned long n = atomic_load(&hist_n);
	char text[512 + PATHS * (PATH_MAX_LEN + 32)];
	int len;

	len = snprintf(text, sizeof(text),
	               "count %lu\nlatency_n %lu\nlatency_p50_us %llu\nlatency_p90_us %llu\n"
	               "latency_p99_us %llu\nlatency_p999_us %llu\nlatency_max_us %lu\n",
	               atomic_load(&count), n, percentile(n, 0.50), percentile(n, 0.90),
	               percentile(n, 0.99), percentile(n, 0.999), atomic_load(&hist_max_us));
	pthread_mutex_lock(&paths_lock);
	for (size_t i = 0; i < npaths && len > 0 && (size_t)len < sizeof(text); i++)
		len += snprintf(text + len, sizeof(text) - (size_t)len, "path %s %lu\n",
		                path_name[i], path_count[i]);
	pthread_mutex_unlock(&paths_lock);
	if (reset && strcmp(reset, "1") == 0) {
		for (size_t i = 0; i <= HIST_BUCKETS; i++)
			atomic_store(&hist[i], 0);
		atomic_store(&hist_n, 0);
		atomic_store(&hist_max_us, 0);
	}
	return answer_text(conn, MHD_HTTP_OK, text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct MHD_Response *accepted = cls;
	static int marker;

	if (strcmp(method, "GET") == 0)
		return strcmp(url, "/stats") == 0 ? answer_stats(conn)
		                                  : answer_text(conn, MHD_HTTP_NOT_FOUND, "");
	if (!*con_cls) {
		/* Headers are in: come back with the body. */
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* the body is read and dropped */
		return MHD_YES;
	}
	if (sink_mode) {
		record_latency(conn);
		count_path(url);
	}
	atomic_fetch_add(&count, 1);
	return MHD_queue_response(conn, MHD_HTTP_ACCEPTED, accepted);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr,
	        "Usage: bare_mhd [--port N] [--threads N] [--sink]\n"
	        "Answers 202 to every POST on 127.0.0.1:PORT (0 picks one, printed on stdout).\n"
	        "--sink records the latency from the ce-benchsent header; GET /stats reports.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || *out > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long port = 0, threads = 2;
	struct MHD_Response *accepted;
	struct MHD_Daemon *mhd;
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], 65535, &port) < 0)
				goto bad;
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], 64, &threads) < 0 || threads == 0)
				goto bad;
		} else if (strcmp(argv[i], "--sink") == 0) {
			sink_mode = 1;
		} else {
			goto bad;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* One shared, persistent empty response: the cheapest answer libmicrohttpd can give. */
	accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!accepted)
		return 1;
	MHD_add_response_header(accepted, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	/* The threading of cebroker's ingress (broker/ingress.c: epoll, a pool of --threads), so
	 * that the ratio compares the work per request; other options are the defaults. */
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0,
	                       NULL, NULL, on_request, accepted, MHD_OPTION_SOCK_ADDR,
	                       (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	                       (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 10000u,
	                       MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_END);
	if (!mhd) {
		fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%lu\n", port);
		goto out;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on http://127.0.0.1:%u\n", info ? info->port : (unsigned)port);
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop)
		pause();
	MHD_stop_daemon(mhd);
	rc = 0;
out:
	MHD_destroy_response(accepted);
	return rc;
bad:
	usage();
	return 2;
}
