/* Reading the answer to a delivery of h1.c: the status line and headers (libcurl's limits and
 * the same sinks as its callbacks: dsp_job_header, dsp_job_body), then a body framed by
 * Content-Length, chunks or the connection's end. Parsed in place, consumed as it goes. */
#include "autoconfig.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/delivery/h1.h"
#include "broker/delivery/internal.h"

/* One header line of the answer (without its line end). */
static int header_line(struct h1_conn *c, const char *line, size_t n, bool *chunked, bool *has_len,
                       uint64_t *len)
{
	const char *colon = memchr(line, ':', n), *v, *end = line + n;
	size_t name_len;

	dsp_job_header(c->job, line, n);
	if (!colon)
		return 0;
	name_len = (size_t)(colon - line);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
		uint64_t x = 0;
		if (v == end)
			return -1;
		for (const char *p = v; p < end; p++) {
			if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
				return -1;
			x = x * 10 + (uint64_t)(*p - '0');
		}
		if (*has_len && *len != x)
			return -1;
		*has_len = true;
		*len = x;
	} else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
		/* chunked when it is the last coding */
		*chunked = (size_t)(end - v) >= 7 && strncasecmp(end - 7, "chunked", 7) == 0;
	} else if (name_len == 10 && strncasecmp(line, "connection", 10) == 0) {
		for (const char *p = v; p + 5 <= end; p++) {
			if (strncasecmp(p, "close", 5) == 0)
				c->close_seen = true;
			else if (p + 10 <= end && strncasecmp(p, "keep-alive", 10) == 0)
				c->keepalive = true;
		}
	} else if (name_len == 11 && strncasecmp(line, "retry-after", 11) == 0) {
		char buf[64];
		size_t k =
		        (size_t)(end - v) < sizeof(buf) - 1 ? (size_t)(end - v) : sizeof(buf) - 1;
		char *pe;
		long secs;

		memcpy(buf, v, k);
		buf[k] = '\0';
		secs = strtol(buf, &pe, 10);
		if (pe != buf && !*pe) {
			c->job->h1_retry_after = secs >= 0 ? secs : 0;
		} else {
			time_t t = curl_getdate(buf, NULL), now = time(NULL);
			c->job->h1_retry_after = t > now ? (curl_off_t)(t - now) : 0;
		}
		if (c->job->h1_retry_after > H1_MAX_RETRY_AFTER)
			c->job->h1_retry_after = H1_MAX_RETRY_AFTER;
	}
	return 0;
}

static void consume(struct h1_conn *c, size_t n)
{
	c->rlen -= n;
	if (c->rlen)
		memmove(c->r, c->r + n, c->rlen);
}

static const char *find_eol(const char *p, size_t n)
{
	return memchr(p, '\n', n);
}

/* The status line and the headers, once whole in the buffer: 1 done, 0 more wanted, -1 bad. */
int h1_parse_head(struct h1_conn *c)
{
	for (;;) {
		const char *p = c->r, *end = c->r + c->rlen, *eol, *line;
		bool chunked = false, has_len = false, http10;
		uint64_t len = 0;
		long status;
		size_t head_len = 0;

		/* the end of the head: an empty line, searched from the last line not yet whole */
		const char *q = p + c->hscan;
		for (; (eol = find_eol(q, (size_t)(end - q))); q = eol + 1) {
			if (eol == q || (eol == q + 1 && *q == '\r')) {
				head_len = (size_t)(eol + 1 - p);
				break;
			}
		}
		if (!head_len) {
			c->hscan = (size_t)(q - p);
			return c->rlen > H1_MAX_HEAD ? -1 : 0;
		}
		c->hscan = 0;
		/* the status line */
		eol = find_eol(p, head_len);
		if ((size_t)(eol - p) < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
		    (p[7] != '0' && p[7] != '1') || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
		    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
			return -1;
		http10 = p[7] == '0';
		status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		dsp_job_header(c->job, "HTTP/", 5); /* a new answer: earlier headers go */
		c->keepalive = !http10;
		c->close_seen = false;
		for (line = eol + 1; line < p + head_len;) {
			const char *le = find_eol(line, (size_t)(p + head_len - line));
			size_t n = (size_t)(le - line);
			if (n && line[n - 1] == '\r')
				n--;
			if (n && header_line(c, line, n, &chunked, &has_len, &len) < 0)
				return -1;
			line = le + 1;
		}
		consume(c, head_len);
		if (c->close_seen)
			c->keepalive = false;
		if (status < 200) {
			if (status == 101)
				return -1;
			continue; /* 100 Continue, 103 Early Hints: the answer follows */
		}
		c->head_done = true;
		c->status = status;
		if (status == 204 || status == 304) {
			c->mode = B_NONE;
		} else if (chunked) {
			c->mode = B_CHUNK_SIZE;
		} else if (has_len) {
			c->mode = len ? B_LENGTH : B_NONE;
			c->left = len;
		} else {
			c->mode = B_CLOSE;
			c->keepalive = false;
		}
		return 1;
	}
}

/* Hand n bytes of body to attempt.c's sink: false when it refused them (too big, no memory). */
static bool sink(struct h1_conn *c, const char *p, size_t n)
{
	return !n || dsp_job_body(c->job, c->status, p, n) == n;
}

/* The body in the buffer: 1 complete, 0 more wanted, -1 bad framing, -2 refused by the sink. */
int h1_parse_body(struct h1_conn *c)
{
	for (;;) {
		const char *eol;
		size_t take;

		switch (c->mode) {
		case B_NONE: return 1;
		case B_CLOSE:
			if (!sink(c, c->r, c->rlen))
				return -2;
			c->rlen = 0;
			return 0;
		case B_LENGTH:
		case B_CHUNK_DATA:
			take = c->left < c->rlen ? (size_t)c->left : c->rlen;
			if (!sink(c, c->r, take))
				return -2;
			consume(c, take);
			c->left -= take;
			if (c->left)
				return 0;
			if (c->mode == B_LENGTH)
				return 1;
			c->mode = B_CHUNK_CRLF;
			break;
		case B_CHUNK_CRLF:
			eol = find_eol(c->r, c->rlen);
			if (!eol)
				return c->rlen > 2 ? -1 : 0;
			if (eol != c->r && !(eol == c->r + 1 && *c->r == '\r'))
				return -1;
			consume(c, (size_t)(eol + 1 - c->r));
			c->mode = B_CHUNK_SIZE;
			break;
		case B_CHUNK_SIZE: {
			uint64_t x = 0;
			const char *q;
			eol = find_eol(c->r, c->rlen);
			if (!eol)
				return c->rlen > 1024 ? -1 : 0;
			for (q = c->r; q < eol; q++) {
				int d = *q >= '0' && *q <= '9'   ? *q - '0'
				        : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
				        : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
				                                 : -1;
				if (d < 0)
					break;
				if (x >> 59)
					return -1;
				x = x * 16 + (uint64_t)d;
			}
			if (q == c->r ||
			    (q < eol && *q != ';' && *q != '\r' && *q != ' ' && *q != '\t'))
				return -1;
			consume(c, (size_t)(eol + 1 - c->r));
			c->left = x;
			c->mode = x ? B_CHUNK_DATA : B_TRAILER;
			break;
		}
		case B_TRAILER:
			eol = find_eol(c->r, c->rlen);
			if (!eol)
				return c->rlen > H1_MAX_HEAD ? -1 : 0;
			take = (size_t)(eol + 1 - c->r);
			consume(c, take);
			if (take <= 2)
				return 1;
			break;
		}
	}
}
