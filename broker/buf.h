/* A growable byte buffer, used wherever the code builds output of unknown length.
 * The buffer owns its memory; it is always NUL-terminated after a successful append. */
#ifndef CEB_BUF_H
#define CEB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct ceb_buf {
	char *p;    /* NUL-terminated contents, or NULL while empty */
	size_t len; /* bytes used, not counting the NUL */
	size_t cap; /* bytes allocated */
	int failed; /* set once an allocation failed; later appends do nothing */
};

#define CEB_BUF_INIT          \
	{                     \
		NULL, 0, 0, 0 \
	}

/* Append bytes; returns 0 or CEB_ENOMEM (and marks the buffer failed). */
int ceb_buf_append(struct ceb_buf *b, const void *data, size_t len);
int ceb_buf_puts(struct ceb_buf *b, const char *s);
int ceb_buf_putc(struct ceb_buf *b, char c);
int ceb_buf_printf(struct ceb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ceb_buf_vprintf(struct ceb_buf *b, const char *fmt, va_list ap);
/* Make room for at least extra more bytes. */
int ceb_buf_reserve(struct ceb_buf *b, size_t extra);
/* Forget the contents, keep the memory. */
void ceb_buf_reset(struct ceb_buf *b);
/* Hand the memory to the caller (who frees it); the buffer is empty afterwards.
 * Returns an empty allocated string rather than NULL when nothing was appended, NULL on failure. */
char *ceb_buf_steal(struct ceb_buf *b, size_t *len);
void ceb_buf_free(struct ceb_buf *b);

#endif
