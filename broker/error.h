/* Error codes shared by every module of cebroker.
 * Functions return 0 on success or one of these negative values; ceb_strerror() names them. */
#ifndef CEB_ERROR_H
#define CEB_ERROR_H

#include <stddef.h>

enum ceb_err {
	CEB_OK = 0,
	CEB_ENOMEM = -1,        /* out of memory */
	CEB_EINVAL = -2,        /* invalid input: a bad event, a bad value (HTTP 400) */
	CEB_ETOOBIG = -3,       /* over a size or count limit (HTTP 413) */
	CEB_EUNSUPPORTED = -4,  /* unknown format or media type (HTTP 415) */
	CEB_ENOTFOUND = -5,     /* no such resource (HTTP 404) */
	CEB_EFULL = -6,         /* a bounded queue is full (HTTP 429) */
	CEB_EUNAVAIL = -7,      /* a backend is unavailable or the daemon is stopping (HTTP 503) */
	CEB_ETIMEDOUT = -8,     /* an operation did not complete in time */
	CEB_EIO = -9,           /* an I/O or system call failed */
	CEB_ECONFIG = -10,      /* configuration error */
	CEB_ENOTCOMPILED = -11, /* a backend or source that this build does not include */
	CEB_ESTATE = -12,       /* the object is in the wrong state for the call */
};

/* The static description of an error code; never NULL. */
const char *ceb_strerror(int err);

/* Write a message into errbuf (errbuf may be NULL or errlen 0: nothing is written). */
void ceb_seterr(char *errbuf, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A printable excerpt of untrusted text for messages: at most 40 bytes, anything outside printable
 * ASCII shown as '?', "..." when cut. Writes into dst (n bytes) and returns it. */
const char *ceb_excerpt(char *dst, size_t n, const char *s, size_t len);

#endif
