/* Base64 encoding and strict decoding (RFC 4648 section 4), without allocations of its own: the output
 * goes into the caller's ceb_buf. */
#include <stdint.h>

#include "broker/ce/base64.h"
#include "broker/error.h"

static const char enc_table[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for an alphabet character, 64 for '=', 255 for anything else. */
static uint8_t dec_char(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return (uint8_t)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (uint8_t)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (uint8_t)(c - '0' + 52);
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	if (c == '=')
		return 64;
	return 255;
}

size_t ceb_base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

int ceb_base64_encode(const void *data, size_t len, struct ceb_buf *out)
{
	const uint8_t *in = data;
	char *p;
	size_t i;
	uint32_t v;

	if (ceb_buf_reserve(out, ceb_base64_encoded_len(len)) < 0)
		return CEB_ENOMEM;
	p = out->p + out->len;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = enc_table[v >> 18];
		*p++ = enc_table[(v >> 12) & 63];
		*p++ = enc_table[(v >> 6) & 63];
		*p++ = enc_table[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = enc_table[v >> 18];
		*p++ = enc_table[(v >> 12) & 63];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = enc_table[v >> 18];
		*p++ = enc_table[(v >> 12) & 63];
		*p++ = enc_table[(v >> 6) & 63];
		*p++ = '=';
	}
	out->len = (size_t)(p - out->p);
	out->p[out->len] = '\0';
	return 0;
}

/* Decodes into dst when it is not NULL; returns the number of bytes, or -1 for bad text. */
static long decode(const char *s, size_t len, uint8_t *dst)
{
	const uint8_t *in = (const uint8_t *)s;
	size_t i, n = 0;
	uint8_t a, b, c, d;

	if (len % 4)
		return -1;
	for (i = 0; i < len; i += 4) {
		a = dec_char(in[i]);
		b = dec_char(in[i + 1]);
		c = dec_char(in[i + 2]);
		d = dec_char(in[i + 3]);
		if (a > 63 || b > 63 || c == 255 || d == 255)
			return -1;
		/* '=' only in the last group, as "xx==" or "xxx=". */
		if (c == 64 || d == 64) {
			if (i + 4 != len || (c == 64 && d != 64))
				return -1;
		}
		if (dst) {
			dst[n] = (uint8_t)(a << 2 | b >> 4);
			if (c != 64)
				dst[n + 1] = (uint8_t)(b << 4 | c >> 2);
			if (d != 64)
				dst[n + 2] = (uint8_t)(c << 6 | d);
		}
		n += c == 64 ? 1 : d == 64 ? 2 : 3;
	}
	return (long)n;
}

bool ceb_base64_valid(const char *s, size_t len)
{
	return decode(s, len, NULL) >= 0;
}

int ceb_base64_decode(const char *s, size_t len, struct ceb_buf *out)
{
	long n;

	if (ceb_buf_reserve(out, len / 4 * 3) < 0)
		return CEB_ENOMEM;
	n = decode(s, len, (uint8_t *)out->p + out->len);
	if (n < 0) {
		out->p[out->len] = '\0';
		return CEB_EINVAL;
	}
	out->len += (size_t)n;
	out->p[out->len] = '\0';
	return 0;
}
