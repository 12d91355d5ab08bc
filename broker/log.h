/* Logging: level-checked macros with printf format checking and a component prefix on each line.
 * Text to stderr by default, JSON lines on request. Safe to call from any thread. */
#ifndef CEB_LOG_H
#define CEB_LOG_H

#include <stddef.h>

enum ceb_log_level {
	CEB_LOGLEVEL_ERROR = 0,
	CEB_LOGLEVEL_WARN,
	CEB_LOGLEVEL_INFO,
	CEB_LOGLEVEL_DEBUG
};

extern int ceb_log_level;

/* Set the level and format once at start-up, before threads run. When stderr is systemd's journal
 * ($JOURNAL_STREAM names it), each line starts with its syslog priority ("<3>"), which the journal
 * takes off and files the line under (journalctl -p err). */
void ceb_log_setup(enum ceb_log_level level, int json);
/* Parse "error", "warn", "info" or "debug"; returns 0 or CEB_EINVAL. */
int ceb_log_level_parse(const char *s, enum ceb_log_level *out);

void ceb_log_write(enum ceb_log_level level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A URL as the daemon may show it in logs, errors and the knativeerrordest extension: the userinfo
 * of its authority (`user:password@`), which holds credentials, becomes `***@`. Returns url itself
 * when it has no userinfo, else buf, holding the first len - 1 bytes of the result; a buffer of
 * strlen(url) + 4 bytes always holds all of it. Any thread. */
const char *ceb_log_url(const char *url, char *buf, size_t len);

/* comp is the component prefix: "ingress", "trigger default/orders"... */
#define CEB_LOG(lvl, comp, ...)                                    \
	do {                                                       \
		if ((lvl) <= ceb_log_level)                        \
			ceb_log_write((lvl), (comp), __VA_ARGS__); \
	} while (0)
#define CEB_LOG_ERR(comp, ...)   CEB_LOG(CEB_LOGLEVEL_ERROR, comp, __VA_ARGS__)
#define CEB_LOG_WARN(comp, ...)  CEB_LOG(CEB_LOGLEVEL_WARN, comp, __VA_ARGS__)
#define CEB_LOG_INFO(comp, ...)  CEB_LOG(CEB_LOGLEVEL_INFO, comp, __VA_ARGS__)
#define CEB_LOG_DEBUG(comp, ...) CEB_LOG(CEB_LOGLEVEL_DEBUG, comp, __VA_ARGS__)

#endif
