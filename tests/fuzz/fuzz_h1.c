/* libFuzzer target for the delivery client's answer parser (broker/delivery/h1_answer.c): any bytes
 * as a subscriber's answer, fed in pieces as recv() would hand them (the first byte picks the piece
 * size), through the status line, headers, 1xx answers and a body framed by length, chunks or the
 * connection's end. It must never read out of bounds, never keep more than its limits in the
 * buffer, and end with a verdict or a wish for more. Links h1_answer.c alone, with the sinks of
 * attempt.c replaced by ones that count. Also built as a replay program over tests/fuzz/corpus/h1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery/h1.h"
#include "broker/delivery/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t body_bytes;
static volatile unsigned sum; /* every byte handed out is read, for the sanitizers to see */

static void touch(const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum += (unsigned char)data[i];
}

size_t dsp_job_body(struct job *job, long status, const char *data, size_t n)
{
	(void)job;
	if (status < 200 || status > 599)
		abort(); /* a body before a final status */
	touch(data, n);
	body_bytes += n;
	return body_bytes > 4u << 20 ? 0 : n; /* refuse past 4 MiB, as a reply cap would */
}

void dsp_job_header(struct job *job, const char *data, size_t n)
{
	(void)job;
	touch(data, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job job;
	struct h1_conn c;
	size_t piece, off = 0;
	int r = 0;

	if (!size)
		return 0;
	piece = (size_t)data[0] % 64 + 1;
	data++, size--;
	memset(&job, 0, sizeof(job));
	memset(&c, 0, sizeof(c));
	c.job = &job;
	c.keepalive = true;
	c.rcap = 4 * H1_MAX_HEAD;
	c.r = malloc(c.rcap);
	if (!c.r)
		return 0;
	body_bytes = 0;
	while (off < size && r == 0) {
		size_t n = size - off < piece ? size - off : piece;

		if (c.rlen + n > c.rcap)
			abort(); /* the parsers must consume as they go */
		memcpy(c.r + c.rlen, data + off, n);
		c.rlen += n;
		off += n;
		if (!c.head_done) {
			r = h1_parse_head(&c);
			if (r <= 0)
				continue;
			r = 0;
			if (c.status < 200 || c.status > 599)
				abort();
		}
		r = h1_parse_body(&c);
	}
	if (c.rlen > c.rcap)
		abort();
	free(c.r);
	return 0;
}
