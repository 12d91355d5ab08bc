/* Option scanning shared by the subcommands that take "--opt value" and "--opt=value" (send,
 * display): one loop, one set of usage messages. */
#ifndef CEB_CMDLINE_H
#define CEB_CMDLINE_H

#include <stddef.h>

struct ceb_cmd_opt {
	const char *name; /* "--listen", "-h" */
	int has_arg;
	int id;
};

/* Print "cebroker CMD: <message>" on stderr, so that a user can tell which tool spoke. */
void ceb_cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "cebroker CMD: <message>" and "Try 'cebroker CMD --help'." on stderr; returns 2, the
 * exit status of a usage error. */
int ceb_cmd_usage_error(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* The next option of argv, from index *i (start at 1; advanced past the option and its value).
 * Returns 1 with *id and *val (NULL for an option without a value), 0 when argv is done, or the
 * usage-error status 2 after saying why (unknown option, unexpected argument, missing or extra
 * value). */
int ceb_cmd_next_opt(const char *cmd, const struct ceb_cmd_opt *opts, size_t nopts, int argc,
                     char **argv, int *i, int *id, const char **val);

#endif
