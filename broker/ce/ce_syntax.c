/* The syntax of CloudEvents attribute names and values (the type system of the spec's "Type
 * System" section): validators that take a byte range, used by the event model and every codec. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/ce/event.h"
#include "broker/error.h"

bool ceb_attr_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > CEB_ATTR_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	return !(len == 4 && memcmp(name, "data", 4) == 0);
}

/* Decodes one UTF-8 sequence at s[*i]; returns the code point and advances *i, or -1 when the bytes
 * are not valid UTF-8 (overlong, surrogate, above U+10FFFF, truncated). */
static long utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	long cp;
	size_t n, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return -1;
	}
	if (len - *i <= n)
		return -1;
	for (k = 1; k <= n; k++) {
		c = s[*i + k];
		if ((c & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (c & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return cp;
}

/* Eight bytes at s, any alignment. */
static uint64_t load8(const unsigned char *s)
{
	uint64_t w;

	memcpy(&w, s, sizeof(w));
	return w;
}

#define ONES  0x0101010101010101u
#define HIGHS 0x8080808080808080u

/* true if the eight bytes of w are all printable ASCII, 0x20 to 0x7e. With no high bit set, a
 * byte below 0x20 borrows into its own high bit when 0x20 is taken from each, and 0x7f carries
 * into it when 1 is added (no byte carries into the next); a borrow that runs on past a byte
 * below 0x20 only makes a false "no", and the caller then looks byte by byte. */
static bool printable8(uint64_t w)
{
	return ((w | (w - 0x20 * ONES) | (w + ONES)) & HIGHS) == 0;
}

bool ceb_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		/* ASCII runs are the common case: eight bytes at a time. */
		if (len - i >= 8 && (load8(u + i) & HIGHS) == 0) {
			i += 8;
			/* the last eight bytes, overlapping those seen, for the tail */
			if (len - i < 8 && len - i && (load8(u + len - 8) & HIGHS) == 0)
				i = len;
			continue;
		}
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (utf8_next(u, len, &i) < 0)
			return false;
	}
	return true;
}

/* The String rule of the type system; 0 or CEB_EINVAL with a reason. */
int ceb_string_check(const char *name, const char *s, size_t len, char *errbuf, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	long cp;

	while (i < len) {
		/* Printable ASCII, the common case, needs no decoding: eight bytes at a time. */
		if (len - i >= 8 && printable8(load8(u + i))) {
			i += 8;
			/* the last eight bytes, overlapping those seen, for the tail */
			if (len - i < 8 && len - i && printable8(load8(u + len - 8)))
				i = len;
			continue;
		}
		if (u[i] >= 0x20 && u[i] < 0x7f) {
			i++;
			continue;
		}
		cp = utf8_next(u, len, &i);
		if (cp < 0) {
			ceb_seterr(errbuf, errlen, "attribute '%s': not valid UTF-8", name);
			return CEB_EINVAL;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			ceb_seterr(errbuf, errlen,
			           "attribute '%s': control character U+%04lX is not allowed in a "
			           "String",
			           name, cp);
			return CEB_EINVAL;
		}
		if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe) {
			ceb_seterr(
			        errbuf, errlen,
			        "attribute '%s': noncharacter U+%04lX is not allowed in a String",
			        name, cp);
			return CEB_EINVAL;
		}
	}
	return 0;
}

bool ceb_integer_parse(const char *s, size_t len, int32_t *v)
{
	size_t i = 0;
	int64_t n = 0;
	bool neg = false;

	if (len && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == len || len - i > 10)
		return false;
	if (s[i] == '0' && len - i > 1)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (s[i] - '0');
	}
	if (neg)
		n = -n;
	if (n < INT32_MIN || n > INT32_MAX)
		return false;
	if (v)
		*v = (int32_t)n;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* RFC 3339 section 5.6 date-time: full-date "T" full-time, T and Z in either case (section 5.6 note),
 * with the ranges of section 5.7. */
bool ceb_timestamp_valid(const char *s, size_t len)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int year, mon, day, hour, min, sec;
	size_t i;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return false;
	year = digits(s, 4);
	mon = digits(s + 5, 2);
	day = digits(s + 8, 2);
	hour = digits(s + 11, 2);
	min = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour < 0 ||
	    hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60)
		return false;
	if (mon == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return false;
	i = 19;
	if (s[i] == '.') {
		i++;
		if (i == len || !is_digit(s[i]))
			return false;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i == len)
		return false;
	if (s[i] == 'Z' || s[i] == 'z')
		return i + 1 == len;
	if ((s[i] != '+' && s[i] != '-') || len - i != 6 || s[i + 3] != ':')
		return false;
	hour = digits(s + i + 1, 2);
	min = digits(s + i + 4, 2);
	return hour >= 0 && hour <= 23 && min >= 0 && min <= 59;
}

/* RFC 3986 characters: unreserved, gen-delims, sub-delims (and '%' for escapes). */
static bool uri_char(char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return c && strchr("-._~:/?#[]@!$&'()*+,;=", c) != NULL;
}

/* RFC 3986 section 4.1 URI-reference, checked by characters and shape: every character allowed,
 * well-formed %XX escapes, at most one '#', and a ':' before the first '/', '?' or '#' only after a
 * valid scheme (a relative reference cannot have one there, section 4.2). */
static bool uri_check(const char *s, size_t len, bool need_scheme)
{
	size_t i, colon = len;
	bool frag = false;

	for (i = 0; i < len; i++) {
		if (s[i] == ':' || s[i] == '/' || s[i] == '?' || s[i] == '#') {
			if (s[i] == ':')
				colon = i;
			break;
		}
	}
	if (colon < len) {
		if (colon == 0 || !is_alpha(s[0]))
			return false;
		for (i = 1; i < colon; i++)
			if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' && s[i] != '-' &&
			    s[i] != '.')
				return false;
	} else if (need_scheme) {
		return false;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (len - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (s[i] == '#') {
			if (frag)
				return false;
			frag = true;
		} else if (!uri_char(s[i])) {
			return false;
		}
	}
	return true;
}

bool ceb_uri_valid(const char *s, size_t len)
{
	return len > 0 && uri_check(s, len, true);
}

bool ceb_uriref_valid(const char *s, size_t len)
{
	return uri_check(s, len, false);
}

/* RFC 2045 token character: any CHAR except SPACE, CTLs and tspecials. */
static bool token_char(char c)
{
	/* letters and digits (most of a media type) without the strchr() */
	if (is_alpha(c) || is_digit(c))
		return true;
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

static size_t token_len(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && token_char(s[i]))
		i++;
	return i;
}

/* RFC 2046 / RFC 7231 section 3.1.1.1: type "/" subtype *( OWS ";" OWS name "=" value ), value a token
 * or a quoted-string. Printable ASCII only, no leading or trailing whitespace. */
bool ceb_media_type_valid(const char *s, size_t len)
{
	size_t i, n;

	n = token_len(s, len);
	if (n == 0 || n == len || s[n] != '/')
		return false;
	i = n + 1;
	n = token_len(s + i, len - i);
	if (n == 0)
		return false;
	i += n;
	while (i < len) {
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == len || s[i] != ';')
			return false;
		i++;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		n = token_len(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
		if (i == len || s[i] != '=')
			return false;
		i++;
		if (i < len && s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\') {
					i++;
					if (i == len)
						return false;
				}
				if (s[i] != '\t' && (s[i] < 0x20 || s[i] > 0x7e))
					return false;
			}
			if (i == len)
				return false;
			i++;
		} else {
			n = token_len(s + i, len - i);
			if (n == 0)
				return false;
			i += n;
		}
	}
	return true;
}

bool ceb_media_type_is_json(const char *ct)
{
	size_t n, slash;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	slash = strcspn(ct, "/");
	if (slash == 0 || slash >= n)
		return false;
	ct += slash + 1;
	n -= slash + 1;
	if (n == 4 && strncasecmp(ct, "json", 4) == 0)
		return true;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}
