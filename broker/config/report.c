/* The loader's error reporter: every error and note kept with its place, and written sorted by file,
 * line and column at the end (the checks run in passes, but a user reads a file from the top). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/loader.h"
#include "broker/config/yaml.h"
#include "broker/error.h"
#include "channels/channel.h"

/* The start of an error's or a note's line: "file:line:col" then sep (line 0: no position). Returns
 * the file's index in cfg->files, by which lines are sorted; every file name was added there before
 * anything is reported about it. */
static size_t put_place(struct ceb_config_loader *ld, struct ceb_buf *b, const char *file, int line,
                        int col, const char *sep)
{
	size_t fi;

	for (fi = 0; fi < ld->cfg->nfiles && ld->cfg->files[fi] != file; fi++)
		;
	ceb_buf_puts(b, file);
	if (line > 0)
		ceb_buf_printf(b, ":%d:%d", line, col);
	ceb_buf_puts(b, sep);
	return fi;
}

/* "who: path: message" (each part only when given), and the whole line kept one line: a key or
 * value with a newline in it must not split it. */
static void put_text(struct ceb_buf *b, const char *who, const char *path, const char *fmt,
                     va_list ap)
{
	if (who && *who)
		ceb_buf_printf(b, "%s: ", who);
	if (path && *path)
		ceb_buf_printf(b, "%s: ", path);
	ceb_buf_vprintf(b, fmt, ap);
}

static void one_line(struct ceb_buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->p[i] < 0x20 || b->p[i] == 0x7f)
			b->p[i] = '?';
}

static void verr(struct ceb_config_loader *ld, const char *file, int line, int col, const char *who,
                 const char *path, const char *fmt, va_list ap)
{
	struct ceb_buf b = CEB_BUF_INIT;
	struct errrec *rec;
	size_t fi;

	if (ld->stop || ld->enomem)
		return;
	if (ld->nerr == ld->caperr) {
		size_t cap = ld->caperr ? 2 * ld->caperr : 16;

		rec = realloc(ld->recs, cap * sizeof(*rec));
		if (!rec) {
			ld->enomem = true;
			return;
		}
		ld->recs = rec;
		ld->caperr = cap;
	}
	fi = put_place(ld, &b, file, line, col, ": ");
	if (ld->nerr + 1 == MAX_ERRORS) {
		ceb_buf_printf(&b, "too many errors, stopping after %d", MAX_ERRORS);
		ld->stop = true;
	} else {
		put_text(&b, who, path, fmt, ap);
	}
	one_line(&b);
	ceb_buf_putc(&b, '\n');
	if (b.failed) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	ld->recs[ld->nerr] = (struct errrec){fi, line, col, ld->nerr, b.p};
	ld->nerr++;
}

/* Errors and notes are written by file, line and column, and in the order made at one place. */
#define CMP_PLACE(x, y)                                              \
	((x)->file != (y)->file   ? ((x)->file < (y)->file ? -1 : 1) \
	 : (x)->line != (y)->line ? ((x)->line < (y)->line ? -1 : 1) \
	 : (x)->col != (y)->col   ? ((x)->col < (y)->col ? -1 : 1)   \
	                          : ((x)->seq > (y)->seq) - ((x)->seq < (y)->seq))

static int cmp_errrec(const void *a, const void *b)
{
	const struct errrec *x = a, *y = b;

	return CMP_PLACE(x, y);
}

/* Write the errors, sorted, to the caller's buffer. */
void ceb_ld_flush_errors(struct ceb_config_loader *ld)
{
	if (ld->nerr > 1)
		qsort(ld->recs, ld->nerr, sizeof(*ld->recs), cmp_errrec);
	for (size_t i = 0; i < ld->nerr; i++) {
		if (ceb_buf_puts(&ld->errs->text, ld->recs[i].text) < 0)
			ld->enomem = true;
		free(ld->recs[i].text);
	}
	ld->errs->count += ld->nerr;
	free(ld->recs);
	ld->recs = NULL;
}

__attribute__((format(printf, 5, 6))) void ceb_ld_file_err(struct ceb_config_loader *ld,
                                                           const char *file, int line, int col,
                                                           const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(ld, file, line, col, NULL, NULL, fmt, ap);
	va_end(ap);
}

void ceb_config_err(struct ceb_config_res *r, const struct ceb_yaml_node *at, const char *path,
                    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(r->ld, r->file, ceb_yaml_line(at), ceb_yaml_col(at), r->who, path, fmt, ap);
	va_end(ap);
	r->nerr++;
}

void ceb_config_err_at(struct ceb_config_res *r, const struct ceb_loc *at, const char *path,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(r->ld, at->file ? at->file : r->file, at->line, at->col, r->who, path, fmt, ap);
	va_end(ap);
	r->nerr++;
}

struct ceb_loc ceb_config_loc(const struct ceb_config_res *r, const struct ceb_yaml_node *n)
{
	return (struct ceb_loc){r->file, ceb_yaml_line(n), ceb_yaml_col(n)};
}

/* Notes are kept like errors, and sorted the same way when the load succeeds. */
static void vnote(struct ceb_config_loader *ld, bool warning, const struct ceb_loc *at,
                  const char *who, const char *path, const char *fmt, va_list ap)
{
	struct ceb_buf b = CEB_BUF_INIT;
	size_t fi;

	if (ld->enomem || ld->stop)
		return;
	if (ld->nnotes == MAX_NOTES) {
		ld->notes_dropped++;
		return;
	}
	if (ld->nnotes == ld->capnotes) {
		size_t cap = ld->capnotes ? 2 * ld->capnotes : 16;
		struct noterec *p = realloc(ld->notes, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->notes = p;
		ld->capnotes = cap;
	}
	fi = put_place(ld, &b, at->file, at->line, at->col, warning ? ": warning: " : ": ");
	put_text(&b, who, path, fmt, ap);
	one_line(&b);
	if (b.failed || !b.p) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	ld->notes[ld->nnotes] = (struct noterec){fi, at->line, at->col, ld->nnotes, warning, b.p};
	ld->nnotes++;
}

void ceb_config_note_at(struct ceb_config_res *r, bool warning, const struct ceb_loc *at,
                        const char *path, const char *fmt, ...)
{
	va_list ap;
	struct ceb_loc loc = *at;

	if (!loc.file)
		loc.file = r->file;
	va_start(ap, fmt);
	vnote(r->ld, warning, &loc, r->who, path, fmt, ap);
	va_end(ap);
}

static int cmp_noterec(const void *a, const void *b)
{
	const struct noterec *x = a, *y = b;

	return CMP_PLACE(x, y);
}

/* Hand the notes to the config (sorted, and how many more there were), or drop them when there is
 * no config. */
void ceb_ld_flush_notes(struct ceb_config_loader *ld, struct ceb_config *cfg)
{
	if (cfg && ld->nnotes) {
		cfg->notes = calloc(ld->nnotes + 1, sizeof(*cfg->notes));
		if (!cfg->notes) {
			ld->enomem = true;
		} else {
			qsort(ld->notes, ld->nnotes, sizeof(*ld->notes), cmp_noterec);
			for (size_t i = 0; i < ld->nnotes; i++) {
				cfg->notes[i] = (struct ceb_config_note){ld->notes[i].warning,
				                                         ld->notes[i].text};
				ld->notes[i].text = NULL;
			}
			cfg->nnotes = ld->nnotes;
			if (ld->notes_dropped) {
				struct ceb_buf b = CEB_BUF_INIT;

				ceb_buf_printf(&b, "cebroker: %zu more note%s not shown",
				               ld->notes_dropped,
				               ld->notes_dropped == 1 ? "" : "s");
				if (!(cfg->notes[cfg->nnotes].text = ceb_buf_steal(&b, NULL)))
					ld->enomem = true;
				else
					cfg->nnotes++;
			}
		}
	}
	for (size_t i = 0; i < ld->nnotes; i++)
		free(ld->notes[i].text);
	free(ld->notes);
	ld->notes = NULL;
	ld->nnotes = 0;
}

struct ceb_config_refs *ceb_config_loader_refs(struct ceb_config_loader *ld)
{
	return ld->refs;
}

char *ceb_ld_xstrdup(struct ceb_config_loader *ld, const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		ld->enomem = true;
	return p;
}

char *ceb_config_strdup(struct ceb_config_res *r, const char *s)
{
	return ceb_ld_xstrdup(r->ld, s);
}

void ceb_config_oom(struct ceb_config_res *r)
{
	r->ld->enomem = true;
}

bool ceb_config_is_oom(const struct ceb_config_res *r)
{
	return r->ld->enomem;
}
