/* Logging to stderr, one line per call, written with a single write(2) so that lines from
 * different threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/log.h"

int ceb_log_level = CEB_LOGLEVEL_INFO;
static int log_json;
static int log_journal; /* stderr is systemd's journal: each line starts with its priority */

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon(3)'s prefixes: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const char *const journal_prefix[] = {"<3>", "<4>", "<6>", "<7>"};

/* Whether stderr is the journal's stream: systemd sets $JOURNAL_STREAM to its "device:inode"
 * (systemd.exec(5)); a process whose stderr was redirected since has another. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void ceb_log_setup(enum ceb_log_level level, int json)
{
	ceb_log_level = level;
	log_json = json;
	log_journal = stderr_is_journal();
}

int ceb_log_level_parse(const char *s, enum ceb_log_level *out)
{
	for (int i = 0; i <= CEB_LOGLEVEL_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum ceb_log_level)i;
			return 0;
		}
	}
	return CEB_EINVAL;
}

static void json_escape(struct ceb_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			ceb_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			ceb_buf_printf(b, "\\u%04x", c);
		else
			ceb_buf_putc(b, (char)c);
	}
}

void ceb_log_write(enum ceb_log_level level, const char *component, const char *fmt, ...)
{
	char msg[2048], ts[40];
	struct ceb_buf b = CEB_BUF_INIT;
	struct timespec now;
	struct tm tm;
	va_list ap;
	ssize_t w;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	if (log_journal) /* the journal takes it off and files the line at that priority */
		ceb_buf_puts(&b, journal_prefix[level]);
	if (log_json) {
		ceb_buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", ts,
		               now.tv_nsec / 1000000, level_names[level]);
		json_escape(&b, component);
		ceb_buf_puts(&b, "\",\"msg\":\"");
		json_escape(&b, msg);
		ceb_buf_puts(&b, "\"}\n");
	} else {
		ceb_buf_printf(&b, "%s.%03ldZ %-5s [%s] %s\n", ts, now.tv_nsec / 1000000,
		               level_names[level], component, msg);
	}
	if (b.p)
		w = write(STDERR_FILENO, b.p, b.len);
	(void)w;
	ceb_buf_free(&b);
}

const char *ceb_log_url(const char *url, char *buf, size_t len)
{
	const char *auth = strstr(url, "://"), *end, *at = NULL;

	/* "://" inside a path or query is no scheme separator. */
	if (!auth || strcspn(url, "/?#") < (size_t)(auth - url))
		return url;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	/* The last '@' ends the userinfo, as libcurl and browsers read it: a password may hold an '@'. */
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return url;
	if (!len)
		return "***";
	snprintf(buf, len, "%.*s***%s", (int)(auth - url), url, at);
	return buf;
}
