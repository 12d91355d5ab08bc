/* Option scanning for the subcommands: "--opt value" and "--opt=value", exact names, with the
 * same usage messages everywhere. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/cli/cmdline.h"

/* "cebroker CMD: <message>\n" on stderr. */
static void say(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "cebroker %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ceb_cmd_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(cmd, fmt, ap);
	va_end(ap);
}

int ceb_cmd_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'cebroker %s --help'.\n", cmd);
	return 2;
}

int ceb_cmd_next_opt(const char *cmd, const struct ceb_cmd_opt *opts, size_t nopts, int argc,
                     char **argv, int *i, int *id, const char **val)
{
	const struct ceb_cmd_opt *def = NULL;
	const char *arg, *eq;
	size_t k, nlen;

	if (*i >= argc)
		return 0;
	arg = argv[(*i)++];
	eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
	nlen = eq ? (size_t)(eq - arg) : strlen(arg);
	for (k = 0; k < nopts && !def; k++)
		if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, arg, nlen) == 0)
			def = &opts[k];
	if (!def) {
		if (arg[0] == '-')
			return ceb_cmd_usage_error(cmd, "unknown option '%s'", arg);
		return ceb_cmd_usage_error(cmd, "unexpected argument '%s'", arg);
	}
	*val = NULL;
	if (def->has_arg) {
		if (eq)
			*val = eq + 1;
		else if (*i < argc)
			*val = argv[(*i)++];
		else
			return ceb_cmd_usage_error(cmd, "option '%s' needs a value", def->name);
	} else if (eq) {
		return ceb_cmd_usage_error(cmd, "option '%.*s' takes no value", (int)nlen, arg);
	}
	*id = def->id;
	return 1;
}
