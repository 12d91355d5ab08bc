/* Descriptions of the shared error codes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/error.h"

const char *ceb_strerror(int err)
{
	switch (err) {
	case CEB_OK: return "success";
	case CEB_ENOMEM: return "out of memory";
	case CEB_EINVAL: return "invalid input";
	case CEB_ETOOBIG: return "too large";
	case CEB_EUNSUPPORTED: return "unsupported format";
	case CEB_ENOTFOUND: return "not found";
	case CEB_EFULL: return "queue full";
	case CEB_EUNAVAIL: return "unavailable";
	case CEB_ETIMEDOUT: return "timed out";
	case CEB_EIO: return "I/O error";
	case CEB_ECONFIG: return "configuration error";
	case CEB_ENOTCOMPILED: return "not compiled into this build";
	case CEB_ESTATE: return "wrong state";
	}
	return "unknown error";
}

void ceb_seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

const char *ceb_excerpt(char *dst, size_t n, const char *s, size_t len)
{
	size_t i, max = len < 40 ? len : 40;

	for (i = 0; i < max && i + 4 < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < len && i + 3 < n) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
	return dst;
}
