/* Benchmark baseline and load tool (a program, not a test): a bare libcurl-multi client (one
 * thread) posting a binary-mode CloudEvent as fast as it can, or at a set rate with timestamps. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The digits of the ce-benchsent header, rewritten in place before each paced request. */
#define SENT_DIGITS 20

struct xfer {
	CURL *easy;
	struct curl_slist *hdrs;
	char *sent; /* the digits inside this transfer's ce-benchsent header line */
	struct xfer *next_idle;
};

struct opts {
	const char *url;
	const char *type;
	unsigned long connections;
	double duration;
	double rate;         /* 0: flood */
	unsigned long total; /* flood: stop after this many 2xx (0: no limit) */
	unsigned long size;  /* bytes of data */
};

struct stats {
	unsigned long sent, ok, full, other, failed, late;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000u + (unsigned long long)ts.tv_nsec;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

/* A JSON document of exactly n bytes (n >= 16): {"pad":"xxxx...x"}. */
static char *make_body(size_t n)
{
	char *b = malloc(n + 1);

	if (!b)
		return NULL;
	memcpy(b, "{\"pad\":\"", 8);
	memset(b + 8, 'x', n - 10);
	memcpy(b + n - 2, "\"}", 2);
	b[n] = '\0';
	return b;
}

static int setup_xfer(struct xfer *x, const struct opts *o, const char *body)
{
	char line[256];
	struct curl_slist *l;
	static const char *const fixed[] = {
	        "ce-specversion: 1.0",
	        "ce-id: bench-1",
	        "ce-source: /cebroker/bench",
	        "Content-Type: application/json",
	        "Expect:",
	};

	x->easy = curl_easy_init();
	if (!x->easy)
		return -1;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (!(l = curl_slist_append(x->hdrs, fixed[i])))
			return -1;
		x->hdrs = l;
	}
	snprintf(line, sizeof(line), "ce-type: %s", o->type);
	if (!(l = curl_slist_append(x->hdrs, line)))
		return -1;
	x->hdrs = l;
	if (o->rate > 0) {
		snprintf(line, sizeof(line), "ce-benchsent: %0*d", SENT_DIGITS, 0);
		if (!(l = curl_slist_append(x->hdrs, line)))
			return -1;
		x->hdrs = l;
		while (l->next)
			l = l->next;
		x->sent = l->data + strlen(l->data) - SENT_DIGITS;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, o->url);
	curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->size);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 30000L);
	return 0;
}

static void start_xfer(CURLM *multi, struct xfer *x, struct stats *st)
{
	if (x->sent) {
		char digits[SENT_DIGITS + 1];

		snprintf(digits, sizeof(digits), "%0*llu", SENT_DIGITS, now_ns());
		memcpy(x->sent, digits, SENT_DIGITS);
	}
	curl_multi_add_handle(multi, x->easy);
	st->sent++;
}

static int parse_num(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < 0 ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "Usage: bare_curl --url URL [--connections N] [--duration S] [--rate R] [--total "
	        "N]\n"
	        "                 [--size BYTES] [--type TYPE]\n"
	        "Posts a binary-mode CloudEvent with BYTES of JSON data (default 300) on N "
	        "connections\n"
	        "(default 64) for S seconds (default 5): as fast as it can, or R per second with "
	        "a\n"
	        "ce-benchsent header (CLOCK_MONOTONIC ns); --total stops after N 2xx answers.\n"
	        "Prints sent, ok (2xx), full (429), other, failed, late, elapsed and rate "
	        "(ok/s).\n");
}

int main(int argc, char **argv)
{
	struct opts o = {NULL, "dev.cebroker.bench", 64, 5.0, 0, 0, 300};
	struct stats st = {0};
	struct xfer *xs, *idle = NULL;
	unsigned long busy = 0;
	double t0, t, v;
	CURLM *multi;
	char *body;
	int running;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			goto bad;
		if (strcmp(a, "--url") == 0)
			o.url = argv[++i];
		else if (strcmp(a, "--type") == 0)
			o.type = argv[++i];
		else if (parse_num(argv[i + 1], &v) < 0)
			goto bad;
		else if (strcmp(a, "--connections") == 0 && v >= 1)
			o.connections = (unsigned long)v, i++;
		else if (strcmp(a, "--duration") == 0)
			o.duration = v, i++;
		else if (strcmp(a, "--rate") == 0)
			o.rate = v, i++;
		else if (strcmp(a, "--total") == 0)
			o.total = (unsigned long)v, i++;
		else if (strcmp(a, "--size") == 0 && v >= 16)
			o.size = (unsigned long)v, i++;
		else
			goto bad;
	}
	if (!o.url)
		goto bad;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	body = make_body(o.size);
	xs = calloc(o.connections, sizeof(*xs));
	if (!multi || !body || !xs)
		return 1;
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)o.connections);
	for (unsigned long i = 0; i < o.connections; i++) {
		if (setup_xfer(&xs[i], &o, body) < 0)
			return 1;
		xs[i].next_idle = idle;
		idle = &xs[i];
	}
	t0 = now_s();
	for (;;) {
		CURLMsg *msg;
		int left, done;

		t = now_s() - t0;
		if (t < o.duration && !(o.total && st.ok >= o.total)) {
			/* Paced: start what is due by now; flood: keep every connection busy. */
			unsigned long due =
			        o.rate > 0 ? (unsigned long)(t * o.rate) : (unsigned long)-1;
			while (st.sent < due && idle && !(o.total && st.ok + busy >= o.total)) {
				struct xfer *x = idle;
				idle = x->next_idle;
				busy++;
				start_xfer(multi, x, &st);
			}
			if (o.rate > 0 && st.sent < due)
				st.late = due - st.sent;
		} else if (!busy) {
			break;
		}
		curl_multi_perform(multi, &running);
		done = 0;
		while ((msg = curl_multi_info_read(multi, &left))) {
			struct xfer *x = NULL;
			long code = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK)
				st.failed++;
			else if (code >= 200 && code < 300)
				st.ok++;
			else if (code == 429)
				st.full++;
			else
				st.other++;
			curl_multi_remove_handle(multi, x->easy);
			x->next_idle = idle;
			idle = x;
			busy--;
			done++;
		}
		/* A flood restarts finished transfers at once: waiting would idle connections. */
		if (done && o.rate == 0)
			continue;
		curl_multi_poll(multi, NULL, 0, o.rate > 0 ? 1 : 100, NULL);
	}
	t = now_s() - t0;
	printf("sent %lu\nok %lu\nfull %lu\nother %lu\nfailed %lu\nlate %lu\nelapsed %.3f\nrate "
	       "%.1f\n",
	       st.sent, st.ok, st.full, st.other, st.failed, st.late, t, (double)st.ok / t);
	for (unsigned long i = 0; i < o.connections; i++) {
		curl_easy_cleanup(xs[i].easy);
		curl_slist_free_all(xs[i].hdrs);
	}
	free(xs);
	free(body);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return 0;
bad:
	usage();
	return 2;
}
