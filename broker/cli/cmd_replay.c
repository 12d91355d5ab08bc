/* cebroker replay: ask a running daemon (its admin endpoint, POST /admin/replay, loopback only) to
 * rewind one Trigger on a channel that keeps history, by time or by position; prints its answer. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/libcurl.h"

#include "broker/buf.h"
#include "broker/cli/commands.h"
#include "broker/config/config.h"

static const char replay_usage[] =
        "Usage: cebroker replay --trigger NAMESPACE/NAME (--since TIME | --from-offset N) "
        "[--daemon HOST:PORT]\n"
        "\n"
        "Deliver a Trigger's events again: the running daemon rewinds the Trigger's position on\n"
        "its Broker's DurableChannel to the first event stored at or after TIME (or to position\n"
        "N), and delivers everything from there on again, through the Trigger's filter, settled\n"
        "events too. Other Triggers and the events stored do not change.\n"
        "\n"
        "Options:\n"
        "  --trigger NS/NAME    the Trigger (required)\n"
        "  --since TIME         an RFC 3339 time (2026-12-07T09:00:00Z, "
        "2026-12-07T10:00:00+01:00)\n"
        "                       or a duration back from now (24h, 90m, 30s, 1h30m, PT24H)\n"
        "  --from-offset N      a position in the channel (its log says which are stored)\n"
        "  --daemon HOST:PORT   the daemon's listener (default 127.0.0.1:8080); the admin\n"
        "                       endpoint answers loopback clients only\n"
        "  -h, --help\n"
        "\n"
        "Exit status: 0 when rewound, 1 when the daemon refused (its reason is printed), 2 on a\n"
        "usage error or when the daemon could not be reached.\n";

/* "24h", "90m", "1h30m", "30s", "500ms", "2d"; or ISO 8601 (PT24H). */
static int parse_ago(const char *s, uint64_t *ms)
{
	uint64_t total = 0;
	const char *p = s;

	if (s[0] == 'P')
		return ceb_duration_parse(s, ms);
	if (!*p)
		return -1;
	while (*p) {
		char *end;
		unsigned long long v;
		uint64_t unit;

		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || end == p)
			return -1;
		p = end;
		if (!strncmp(p, "ms", 2)) {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1000;
			p++;
		} else if (*p == 'm') {
			unit = 60000;
			p++;
		} else if (*p == 'h') {
			unit = 3600000;
			p++;
		} else if (*p == 'd') {
			unit = 86400000;
			p++;
		} else {
			return -1;
		}
		if (v > UINT64_MAX / unit / 2)
			return -1;
		total += v * unit;
	}
	*ms = total;
	return 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct ceb_buf *b = arg;

	if (b->len < 4096)
		ceb_buf_append(b, p, sz * n);
	return sz * n;
}

int ceb_cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"trigger", required_argument, NULL, 't'},
	        {"since", required_argument, NULL, 's'},
	        {"from-offset", required_argument, NULL, 'o'},
	        {"daemon", required_argument, NULL, 'd'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *trigger = NULL, *since = NULL, *offset = NULL, *daemon = "127.0.0.1:8080";
	char url[2048], *etrg = NULL, cerr[CURL_ERROR_SIZE] = "";
	struct ceb_buf body = CEB_BUF_INIT;
	long status = 0;
	int64_t since_ms = -1;
	CURL *curl = NULL;
	CURLcode cc;
	int c, ret = 2;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': trigger = optarg; break;
		case 's': since = optarg; break;
		case 'o': offset = optarg; break;
		case 'd': daemon = optarg; break;
		case 'h': fputs(replay_usage, stdout); return 0;
		default: fputs(replay_usage, stderr); return 2;
		}
	}
	if (optind < argc || !trigger || !strchr(trigger, '/') || (!since == !offset)) {
		fprintf(stderr, "cebroker replay: give --trigger NAMESPACE/NAME and one of --since "
		                "or --from-offset\n");
		fputs(replay_usage, stderr);
		return 2;
	}
	if (since) {
		uint64_t ago;
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		if (ceb_rfc3339_parse(since, &since_ms) < 0) {
			if (parse_ago(since, &ago) < 0) {
				fprintf(stderr,
				        "cebroker replay: --since %s: neither an RFC 3339 time "
				        "(2026-12-07T09:00:00Z) nor a duration (24h, 90m, PT24H)\n",
				        since);
				return 2;
			}
			since_ms =
			        (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)ago;
			if (since_ms < 0)
				since_ms = 0;
		}
	} else {
		char *end;
		errno = 0;
		if (strtoll(offset, &end, 10) < 0 || errno || *end || end == offset) {
			fprintf(stderr, "cebroker replay: --from-offset %s: not a position\n",
			        offset);
			return 2;
		}
	}
	curl = curl_easy_init();
	if (!curl || !(etrg = curl_easy_escape(curl, trigger, 0))) {
		fprintf(stderr, "cebroker replay: out of memory\n");
		goto out;
	}
	if (since)
		snprintf(url, sizeof(url), "http://%s/admin/replay?trigger=%s&since_ms=%lld",
		         daemon, etrg, (long long)since_ms);
	else
		snprintf(url, sizeof(url), "http://%s/admin/replay?trigger=%s&offset=%s", daemon,
		         etrg, offset);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cebroker-replay/" PACKAGE_VERSION);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		fprintf(stderr, "cebroker replay: cannot reach the daemon at %s: %s\n", daemon,
		        cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	while (body.len && (body.p[body.len - 1] == '\n' || body.p[body.len - 1] == '\r'))
		body.len--;
	if (status == 200) {
		printf("%.*s\n", (int)body.len, body.p ? body.p : "");
		ret = 0;
	} else {
		fprintf(stderr, "cebroker replay: %ld: %.*s\n", status, (int)body.len,
		        body.p ? body.p : "");
		ret = 1;
	}
out:
	curl_free(etrg);
	curl_easy_cleanup(curl);
	ceb_buf_free(&body);
	return ret;
}
