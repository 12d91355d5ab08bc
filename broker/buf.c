/* A growable byte buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/error.h"

int ceb_buf_reserve(struct ceb_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return CEB_ENOMEM;
	if (extra > ((size_t)-1) / 2 - b->len)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		goto fail;
	b->p = p;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return CEB_ENOMEM;
}

int ceb_buf_append(struct ceb_buf *b, const void *data, size_t len)
{
	if (ceb_buf_reserve(b, len) < 0)
		return CEB_ENOMEM;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int ceb_buf_puts(struct ceb_buf *b, const char *s)
{
	return ceb_buf_append(b, s, strlen(s));
}

int ceb_buf_putc(struct ceb_buf *b, char c)
{
	return ceb_buf_append(b, &c, 1);
}

int ceb_buf_vprintf(struct ceb_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || ceb_buf_reserve(b, (size_t)n) < 0)
		return CEB_ENOMEM;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int ceb_buf_printf(struct ceb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ceb_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void ceb_buf_reset(struct ceb_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

char *ceb_buf_steal(struct ceb_buf *b, size_t *len)
{
	char *p;

	if (b->failed) {
		ceb_buf_free(b);
		return NULL;
	}
	if (!b->p && ceb_buf_reserve(b, 0) < 0)
		return NULL;
	if (!b->len)
		b->p[0] = '\0';
	p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void ceb_buf_free(struct ceb_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}
