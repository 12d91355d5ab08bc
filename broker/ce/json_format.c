/* The CloudEvents JSON format: a small strict JSON scanner (no recursion, bounded depth) that decodes
 * events straight into ceb_event, keeping `data` as the raw input slice, and a compact encoder. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/ce/base64.h"
#include "broker/error.h"
#include "broker/ce/json_format.h"

/* Nesting is tracked in a bit stack (1 = object); deeper limits than this are capped. */
#define DEPTH_CAP       1024
#define MAX_MEMBER_NAME 64
#define ERRTMP          256

struct scan {
	const char *buf; /* the whole input, for byte offsets in messages */
	const char *p;
	const char *end;
	size_t max_depth;
	char *errbuf;
	size_t errlen;
};

/* Reports a syntax error at the current position; always returns CEB_EINVAL. */
static int syntax(struct scan *s, const char *what)
{
	if (s->p >= s->end)
		ceb_seterr(s->errbuf, s->errlen, "invalid JSON: unexpected end of input (%s)",
		           what);
	else
		ceb_seterr(s->errbuf, s->errlen, "invalid JSON at byte %zu: %s",
		           (size_t)(s->p - s->buf), what);
	return CEB_EINVAL;
}

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Four hex digits at p (the caller checked there are four bytes), or -1. */
static long hex4(const char *p)
{
	long v = 0;
	int h;

	for (int i = 0; i < 4; i++) {
		h = ceb_hex_digit(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Scans a string at s->p (which is '"'). On success [*start, *stop) is the text between the quotes
 * and *escaped says whether it holds backslash escapes. */
static int scan_string(struct scan *s, const char **start, const char **stop, bool *escaped)
{
	const char *p = s->p + 1, *run;
	long u, lo;

	*escaped = false;
	for (;;) {
		if (p >= s->end) {
			s->p = p;
			return syntax(s, "unterminated string");
		}
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20) {
			s->p = p;
			return syntax(s, "control character in a string (escape it)");
		}
		if (c >= 0x80) {
			/* A run of non-ASCII bytes ends before an ASCII byte, which can never be inside a
			 * UTF-8 sequence, so checking runs is exact. */
			run = p;
			while (p < s->end && (unsigned char)*p >= 0x80)
				p++;
			if (!ceb_utf8_valid(run, (size_t)(p - run))) {
				s->p = run;
				return syntax(s, "invalid UTF-8 in a string");
			}
			continue;
		}
		if (c != '\\') {
			p++;
			continue;
		}
		*escaped = true;
		if (s->end - p < 2) {
			s->p = s->end;
			return syntax(s, "unterminated string");
		}
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't': p += 2; continue;
		case 'u': break;
		default: s->p = p; return syntax(s, "invalid escape in a string");
		}
		if (s->end - p < 6 || (u = hex4(p + 2)) < 0) {
			s->p = p;
			return syntax(s, "invalid \\u escape");
		}
		p += 6;
		if (u >= 0xdc00 && u <= 0xdfff) {
			s->p = p - 6;
			return syntax(s, "unpaired surrogate in a \\u escape");
		}
		if (u >= 0xd800 && u <= 0xdbff) {
			if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
			    (lo = hex4(p + 2)) < 0 || lo < 0xdc00 || lo > 0xdfff) {
				s->p = p - 6;
				return syntax(s, "unpaired surrogate in a \\u escape");
			}
			p += 6;
		}
	}
	*start = s->p + 1;
	*stop = p;
	s->p = p + 1;
	return 0;
}

static int put_utf8(struct ceb_buf *out, long cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return ceb_buf_append(out, b, n);
}

/* Appends the unescaped text of a string that scan_string accepted. */
static int unescape(const char *p, const char *stop, struct ceb_buf *out)
{
	const char *run;
	long cp, lo;
	char c;

	while (p < stop) {
		run = p;
		while (p < stop && *p != '\\')
			p++;
		if (p > run && ceb_buf_append(out, run, (size_t)(p - run)) < 0)
			return CEB_ENOMEM;
		if (p == stop)
			break;
		switch (p[1]) {
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': c = 0; break;
		default: c = p[1]; break;
		}
		if (p[1] != 'u') {
			p += 2;
			if (ceb_buf_putc(out, c) < 0)
				return CEB_ENOMEM;
			continue;
		}
		cp = hex4(p + 2);
		p += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			lo = hex4(p + 2);
			p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (put_utf8(out, cp) < 0)
			return CEB_ENOMEM;
	}
	return out->failed ? CEB_ENOMEM : 0;
}

/* RFC 8259 number; *is_int is true without fraction and exponent. */
static int scan_number(struct scan *s, bool *is_int)
{
	const char *p = s->p, *e = s->end;

	*is_int = true;
	if (p < e && *p == '-')
		p++;
	if (p >= e || *p < '0' || *p > '9') {
		s->p = p;
		return syntax(s, "invalid number");
	}
	if (*p == '0')
		p++;
	else
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	if (p < e && *p == '.') {
		*is_int = false;
		p++;
		if (p >= e || *p < '0' || *p > '9') {
			s->p = p;
			return syntax(s, "invalid number: digits expected after '.'");
		}
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9') {
			s->p = p;
			return syntax(s, "invalid number: digits expected in the exponent");
		}
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	s->p = p;
	return 0;
}

static int scan_literal(struct scan *s)
{
	static const char *const lits[] = {"true", "false", "null"};
	size_t n, avail = (size_t)(s->end - s->p);

	for (int i = 0; i < 3; i++) {
		n = strlen(lits[i]);
		if (avail >= n && memcmp(s->p, lits[i], n) == 0) {
			s->p += n;
			return 0;
		}
	}
	return syntax(s, "unexpected character");
}

/* A member name followed by ':', inside data (names there are only checked, never compared). */
static int member_key(struct scan *s)
{
	const char *a, *b;
	bool esc;

	ws(s);
	if (s->p >= s->end || *s->p != '"')
		return syntax(s, "expected a member name");
	if (scan_string(s, &a, &b, &esc) < 0)
		return CEB_EINVAL;
	ws(s);
	if (s->p >= s->end || *s->p != ':')
		return syntax(s, "expected ':'");
	s->p++;
	return 0;
}

static int too_deep(struct scan *s)
{
	ceb_seterr(s->errbuf, s->errlen, "JSON nested deeper than %zu levels at byte %zu",
	           s->max_depth, (size_t)(s->p - s->buf));
	return CEB_EINVAL;
}

/* Scans one value without building anything, iteratively; depth is the nesting of the container
 * that holds the value (0 at the top). */
static int skip_value(struct scan *s, size_t depth)
{
	uint64_t kinds[DEPTH_CAP / 64];
	size_t top = 0;
	bool is_int, obj;
	const char *a, *b;
	char c;

	for (;;) {
		ws(s);
		if (s->p >= s->end)
			return syntax(s, "expected a value");
		c = *s->p;
		if (c == '{' || c == '[') {
			if (depth + top + 1 > s->max_depth || top >= DEPTH_CAP)
				return too_deep(s);
			if (c == '{')
				kinds[top / 64] |= (uint64_t)1 << (top % 64);
			else
				kinds[top / 64] &= ~((uint64_t)1 << (top % 64));
			top++;
			s->p++;
			ws(s);
			if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) {
				s->p++;
				top--;
			} else {
				if (c == '{' && member_key(s) < 0)
					return CEB_EINVAL;
				continue;
			}
		} else if (c == '"') {
			if (scan_string(s, &a, &b, &is_int) < 0)
				return CEB_EINVAL;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (scan_number(s, &is_int) < 0)
				return CEB_EINVAL;
		} else if (scan_literal(s) < 0) {
			return CEB_EINVAL;
		}
		/* After a value: close containers until one continues with ','. */
		for (;;) {
			if (top == 0)
				return 0;
			ws(s);
			if (s->p >= s->end)
				return syntax(s, "unterminated object or array");
			obj = kinds[(top - 1) / 64] >> ((top - 1) % 64) & 1;
			if (*s->p == ',') {
				s->p++;
				if (obj && member_key(s) < 0)
					return CEB_EINVAL;
				break;
			}
			if (*s->p != (obj ? '}' : ']'))
				return syntax(s,
				              obj ? "expected ',' or '}'" : "expected ',' or ']'");
			s->p++;
			top--;
		}
	}
}

bool ceb_json_valid(const char *s, size_t len, size_t max_depth)
{
	struct scan sc = {s, s, NULL, max_depth, NULL, 0};

	if (len == 0 || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r')
		return false;
	sc.end = s + len;
	if (skip_value(&sc, 0) < 0)
		return false;
	return sc.p == sc.end;
}

/* Decoding state of one event object. */
struct dec {
	struct scan *s;
	const struct ceb_limits *lim;
	struct ceb_event *ev;
	struct ceb_buf tmp;    /* unescaped strings */
	struct ceb_buf nulls;  /* names of members that were null, NUL-separated, for duplicates */
	struct ceb_buf b64buf; /* data_base64 text when it had escapes */
	const char *data, *data_end; /* raw `data` value */
	const char *b64, *b64_end;   /* text of `data_base64` */
	bool has_data, has_b64, seen_data, seen_b64;
};

static bool seen_null(const struct dec *d, const char *name, size_t len)
{
	const char *p = d->nulls.p, *end;

	if (!p)
		return false;
	end = p + d->nulls.len;
	while (p < end) {
		size_t n = strlen(p);

		if (n == len && memcmp(p, name, len) == 0)
			return true;
		p += n + 1;
	}
	return false;
}

static bool is_core(const char *name)
{
	static const char *const core[] = {"specversion",     "id",         "source",  "type",
	                                   "datacontenttype", "dataschema", "subject", "time"};

	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (strcmp(name, core[i]) == 0)
			return true;
	return false;
}

static int want_string(struct scan *s, const char *name)
{
	ceb_seterr(s->errbuf, s->errlen, "attribute '%s': must be a JSON string", name);
	return CEB_EINVAL;
}

/* One attribute member (not data or data_base64); name is NUL-terminated and checked. The JSON type
 * decides the type of an extension; a core attribute must be a string. */
static int attr_member(struct dec *d, const char *name, size_t nlen)
{
	struct scan *s = d->s;
	const char *a, *b, *v;
	bool flag;
	size_t len;
	int rc;
	char c = *s->p;

	if (c == '"') {
		if (scan_string(s, &a, &b, &flag) < 0)
			return CEB_EINVAL;
		v = a;
		len = (size_t)(b - a);
		if (flag) {
			ceb_buf_reset(&d->tmp);
			if (unescape(a, b, &d->tmp) < 0)
				return CEB_ENOMEM;
			v = d->tmp.p;
			len = d->tmp.len;
		}
		if (len > d->lim->max_value_len) {
			ceb_seterr(s->errbuf, s->errlen,
			           "attribute '%s': value is %zu bytes (limit %zu)", name, len,
			           d->lim->max_value_len);
			return CEB_EINVAL;
		}
		return ceb_event_set(d->ev, name, CEB_TYPE_STRING, v, len, s->errbuf, s->errlen);
	}
	if (c == '{' || c == '[') {
		ceb_seterr(s->errbuf, s->errlen,
		           "attribute '%s': a JSON %s is not an attribute value (string, number or "
		           "boolean)",
		           name, c == '{' ? "object" : "array");
		return CEB_EINVAL;
	}
	a = s->p;
	if (c == '-' || (c >= '0' && c <= '9')) {
		if (scan_number(s, &flag) < 0)
			return CEB_EINVAL;
		len = (size_t)(s->p - a);
		if (is_core(name))
			return want_string(s, name);
		if (!flag) {
			ceb_seterr(
			        s->errbuf, s->errlen,
			        "attribute '%s': %.*s is not an Integer (no fraction or exponent "
			        "allowed)",
			        name, (int)(len > 40 ? 40 : len), a);
			return CEB_EINVAL;
		}
		rc = ceb_event_set(d->ev, name, CEB_TYPE_INTEGER, a, len, s->errbuf, s->errlen);
		if (rc == CEB_EINVAL)
			ceb_seterr(s->errbuf, s->errlen,
			           "attribute '%s': %.*s is outside the Integer range "
			           "(-2147483648..2147483647)",
			           name, (int)(len > 40 ? 40 : len), a);
		return rc;
	}
	if (scan_literal(s) < 0)
		return CEB_EINVAL;
	if (c == 'n') {
		/* null: unset; remember the name to catch a later duplicate. */
		if (ceb_buf_append(&d->nulls, name, nlen + 1) < 0)
			return CEB_ENOMEM;
		return 0;
	}
	if (is_core(name))
		return want_string(s, name);
	return ceb_event_set(d->ev, name, CEB_TYPE_BOOLEAN, a, (size_t)(s->p - a), s->errbuf,
	                     s->errlen);
}

/* Reads a member name into name (NUL-terminated) and checks it; *kind: 0 attribute, 1 data,
 * 2 data_base64. *known: index >= 0 for a core attribute. */
static int member_name(struct dec *d, char *name, size_t *nlen, int *kind)
{
	struct scan *s = d->s;
	const char *a, *b, *v;
	bool esc;
	size_t len;
	char ex[48];

	if (s->p >= s->end || *s->p != '"')
		return syntax(s, "expected a member name");
	if (scan_string(s, &a, &b, &esc) < 0)
		return CEB_EINVAL;
	v = a;
	len = (size_t)(b - a);
	if (esc) {
		ceb_buf_reset(&d->tmp);
		if (unescape(a, b, &d->tmp) < 0)
			return CEB_ENOMEM;
		v = d->tmp.p;
		len = d->tmp.len;
	}
	*kind = 0;
	if (len == 4 && memcmp(v, "data", 4) == 0)
		*kind = 1;
	else if (len == 11 && memcmp(v, "data_base64", 11) == 0)
		*kind = 2;
	else if (!ceb_attr_name_valid(v, len)) {
		size_t i, m = len < 40 ? len : 40;

		for (i = 0; i < m; i++)
			ex[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
		ex[i] = '\0';
		if (len == 0)
			ceb_seterr(s->errbuf, s->errlen, "attribute name must not be empty");
		else if (len > MAX_MEMBER_NAME)
			ceb_seterr(s->errbuf, s->errlen,
			           "attribute name '%s...' is longer than %d characters", ex,
			           MAX_MEMBER_NAME);
		else
			ceb_seterr(
			        s->errbuf, s->errlen,
			        "attribute name '%s' is invalid: only lower-case letters a-z and "
			        "digits "
			        "0-9 are allowed",
			        ex);
		return CEB_EINVAL;
	}
	memcpy(name, v, len);
	name[len] = '\0';
	*nlen = len;
	return 0;
}

static int duplicate(struct scan *s, const char *name)
{
	ceb_seterr(s->errbuf, s->errlen, "member '%s' appears more than once", name);
	return CEB_EINVAL;
}

/* The Base64 text d->b64..b64_end (unescaped) as the event's data; what: the member, for errors. */
static int take_base64(struct dec *d, const char *what)
{
	struct scan *s = d->s;
	struct ceb_buf bytes = CEB_BUF_INIT;
	size_t len;
	char *p;
	int rc = ceb_base64_decode(d->b64, (size_t)(d->b64_end - d->b64), &bytes);

	if (rc == CEB_EINVAL) {
		ceb_seterr(s->errbuf, s->errlen,
		           "'%s': not valid Base64 (RFC 4648, padded, no whitespace)", what);
		ceb_buf_free(&bytes);
		return rc;
	}
	p = ceb_buf_steal(&bytes, &len);
	if (rc < 0 || !p)
		return CEB_ENOMEM;
	return ceb_event_take_data(d->ev, p, len, CEB_DATA_BASE64);
}

/* Point d->b64 at the Base64 text of the JSON string a..b, unescaped into d->b64buf when esc
 * (some encoders write '/' as "\/"). */
static int base64_text(struct dec *d, const char *a, const char *b, bool esc)
{
	int rc;

	d->b64 = a;
	d->b64_end = b;
	if (!esc)
		return 0;
	rc = unescape(a, b, &d->b64buf);
	if (rc == 0) {
		d->b64 = d->b64buf.p;
		d->b64_end = d->b64buf.p + d->b64buf.len;
	}
	return rc;
}

/* Turns the recorded data member into the event's data. */
static int finish_data(struct dec *d)
{
	struct scan *s = d->s;
	const struct ceb_attr *ct, *enc, *sv;
	struct ceb_buf bytes = CEB_BUF_INIT;
	const char *a, *b, *save;
	bool esc;
	char *p;
	size_t len;
	int rc;

	if (d->has_data && d->has_b64) {
		ceb_seterr(s->errbuf, s->errlen,
		           "'data' and 'data_base64' must not both be present");
		return CEB_EINVAL;
	}
	if (d->has_b64)
		return take_base64(d, "data_base64");
	if (!d->has_data)
		return 0;
	/* CloudEvents 0.3: binary data is a Base64 string in `data`, datacontentencoding says so
	 * (kept, so that the event goes out as it came). */
	enc = ceb_event_get(d->ev, "datacontentencoding");
	sv = ceb_event_get(d->ev, "specversion");
	if (enc && sv && !strcmp(sv->value, "0.3") && !strcasecmp(enc->value, "base64")) {
		if (*d->data != '"') {
			ceb_seterr(s->errbuf, s->errlen,
			           "'data' must be a Base64 string when datacontentencoding is "
			           "base64");
			return CEB_EINVAL;
		}
		save = s->p;
		s->p = d->data;
		rc = scan_string(s, &a, &b, &esc);
		s->p = save;
		if (rc < 0 || (rc = base64_text(d, a, b, esc)) < 0)
			return rc;
		return take_base64(d, "data");
	}
	ct = ceb_event_get(d->ev, "datacontenttype");
	if (!ct || ceb_media_type_is_json(ct->value))
		return ceb_event_set_data(d->ev, d->data, (size_t)(d->data_end - d->data),
		                          CEB_DATA_JSON);
	if (*d->data != '"')
		/* A non-string value with a non-JSON type: keep its text, as sdk-go does. */
		return ceb_event_set_data(d->ev, d->data, (size_t)(d->data_end - d->data), 0);
	/* Scanned once already; scan again for the span and escapes, then restore the position. */
	save = s->p;
	s->p = d->data;
	rc = scan_string(s, &a, &b, &esc);
	s->p = save;
	if (rc < 0)
		return rc;
	if (!esc)
		return ceb_event_set_data(d->ev, a, (size_t)(b - a), 0);
	if (unescape(a, b, &bytes) < 0) {
		ceb_buf_free(&bytes);
		return CEB_ENOMEM;
	}
	p = ceb_buf_steal(&bytes, &len);
	if (!p)
		return CEB_ENOMEM;
	return ceb_event_take_data(d->ev, p, len, 0);
}

/* Decodes the object at s->p ('{'), nested at depth (0 for a single event), into a new event. */
static int decode_object(struct scan *s, size_t depth, const struct ceb_limits *lim,
                         struct ceb_event **out)
{
	struct dec d = {.s = s,
	                .lim = lim,
	                .tmp = CEB_BUF_INIT,
	                .nulls = CEB_BUF_INIT,
	                .b64buf = CEB_BUF_INIT};
	char name[MAX_MEMBER_NAME + 1];
	size_t nlen = 0, members = 0;
	int rc, kind = 0;

	if (depth + 1 > s->max_depth)
		return too_deep(s);
	d.ev = ceb_event_new();
	if (!d.ev) {
		rc = CEB_ENOMEM;
		goto out;
	}
	s->p++;
	for (;;) {
		ws(s);
		if (members == 0 && s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		rc = member_name(&d, name, &nlen, &kind);
		if (rc < 0)
			goto out;
		if (++members > lim->max_attrs + 2) {
			ceb_seterr(s->errbuf, s->errlen,
			           "too many members in the event (limit %zu attributes)",
			           lim->max_attrs);
			rc = CEB_EINVAL;
			goto out;
		}
		ws(s);
		if (s->p >= s->end || *s->p != ':') {
			rc = syntax(s, "expected ':'");
			goto out;
		}
		s->p++;
		ws(s);
		if (s->p >= s->end) {
			rc = syntax(s, "expected a value");
			goto out;
		}
		if (kind == 1) {
			if (d.seen_data) {
				rc = duplicate(s, "data");
				goto out;
			}
			d.seen_data = d.has_data = true;
			d.data = s->p;
			rc = skip_value(s, depth + 1);
			d.data_end = s->p;
		} else if (kind == 2) {
			const char *a, *b;
			bool esc;

			if (d.seen_b64) {
				rc = duplicate(s, "data_base64");
				goto out;
			}
			d.seen_b64 = true;
			if (*s->p == '"') {
				rc = scan_string(s, &a, &b, &esc);
				d.has_b64 = true;
				if (rc == 0)
					rc = base64_text(&d, a, b, esc);
			} else if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
				s->p += 4;
				rc = 0;
			} else {
				ceb_seterr(s->errbuf, s->errlen,
				           "'data_base64' must be a JSON string");
				rc = CEB_EINVAL;
			}
		} else {
			if (ceb_event_get(d.ev, name) || seen_null(&d, name, nlen)) {
				rc = duplicate(s, name);
				goto out;
			}
			rc = attr_member(&d, name, nlen);
		}
		if (rc < 0)
			goto out;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		rc = syntax(s, "expected ',' or '}'");
		goto out;
	}
	rc = finish_data(&d);
	if (rc < 0)
		goto out;
	rc = ceb_event_validate(d.ev, lim, s->errbuf, s->errlen);
	if (rc < 0)
		goto out;
	*out = d.ev;
	d.ev = NULL;
out:
	if (rc == CEB_ENOMEM)
		ceb_seterr(s->errbuf, s->errlen, "out of memory");
	ceb_event_unref(d.ev);
	ceb_buf_free(&d.tmp);
	ceb_buf_free(&d.nulls);
	ceb_buf_free(&d.b64buf);
	return rc;
}

static void scan_init(struct scan *s, const char *buf, size_t len, const struct ceb_limits *lim,
                      char *errbuf, size_t errlen)
{
	/* An empty body may come as NULL; arithmetic on NULL is undefined even with 0. */
	if (!buf)
		buf = "";
	s->buf = buf;
	s->p = buf;
	s->end = buf + len;
	s->max_depth = lim->max_json_depth < DEPTH_CAP ? lim->max_json_depth : DEPTH_CAP;
	s->errbuf = errbuf;
	s->errlen = errlen;
}

int ceb_json_decode(const char *buf, size_t len, const struct ceb_limits *lim,
                    struct ceb_event **out, char *errbuf, size_t errlen)
{
	struct ceb_event *ev = NULL;
	struct scan s;
	int rc;

	if (!lim)
		lim = &ceb_limits_default;
	if (len > lim->max_event_size) {
		ceb_seterr(errbuf, errlen, "event is %zu bytes (limit %zu)", len,
		           lim->max_event_size);
		return CEB_ETOOBIG;
	}
	scan_init(&s, buf, len, lim, errbuf, errlen);
	ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		rc = s.p >= s.end ? syntax(&s, "empty body")
		                  : syntax(&s, "a JSON-format event must be an object");
		goto out;
	}
	rc = decode_object(&s, 0, lim, &ev);
	if (rc < 0)
		goto out;
	ws(&s);
	if (s.p != s.end) {
		rc = syntax(&s, "unexpected text after the event");
		goto out;
	}
	*out = ev;
	ev = NULL;
out:
	ceb_event_unref(ev);
	return rc;
}

/* Decodes the elements of a batch after its '['. The events decoded so far stay in *evs and *count,
 * also on failure; the caller releases them. */
static int batch_elements(struct scan *s, const struct ceb_limits *lim, struct ceb_event ***evs,
                          size_t *count, char *errbuf, size_t errlen)
{
	struct ceb_event **grown;
	const struct ceb_attr *sv0, *sv;
	size_t cap = 0, n;
	const char *start;
	char tmp[ERRTMP] = "";
	int rc;

	for (;;) {
		ws(s);
		n = *count;
		if (n == lim->max_batch) {
			ceb_seterr(errbuf, errlen, "batch has more than %zu events",
			           lim->max_batch);
			return CEB_ETOOBIG;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			grown = realloc(*evs, cap * sizeof(**evs));
			if (!grown) {
				ceb_seterr(errbuf, errlen, "out of memory");
				return CEB_ENOMEM;
			}
			*evs = grown;
		}
		start = s->p;
		/* Element errors go to tmp first, to be prefixed with the element's number. */
		s->errbuf = tmp;
		s->errlen = sizeof(tmp);
		if (s->p >= s->end || *s->p != '{')
			rc = syntax(s, "expected an event object");
		else
			rc = decode_object(s, 1, lim, &(*evs)[n]);
		s->errbuf = errbuf;
		s->errlen = errlen;
		if (rc < 0) {
			ceb_seterr(errbuf, errlen, "event %zu: %s", n + 1, tmp);
			return rc;
		}
		*count = ++n;
		if ((size_t)(s->p - start) > lim->max_event_size) {
			ceb_seterr(errbuf, errlen, "event %zu: %zu bytes (limit %zu)", n,
			           (size_t)(s->p - start), lim->max_event_size);
			return CEB_ETOOBIG;
		}
		/* A batch holds one specversion (1.0 or 0.3). */
		sv0 = ceb_event_get((*evs)[0], "specversion");
		sv = ceb_event_get((*evs)[n - 1], "specversion");
		if (strcmp(sv0->value, sv->value) != 0) {
			ceb_seterr(errbuf, errlen,
			           "event %zu: specversion differs from the first event's; a batch "
			           "holds "
			           "one specversion",
			           n);
			return CEB_EINVAL;
		}
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return syntax(s, "expected ',' or ']'");
	}
}

int ceb_json_decode_batch(const char *buf, size_t len, const struct ceb_limits *lim,
                          struct ceb_event ***out, size_t *n, char *errbuf, size_t errlen)
{
	struct ceb_event **evs = NULL;
	size_t count = 0, max_len;
	struct scan s;
	int rc = 0;

	if (!lim)
		lim = &ceb_limits_default;
	max_len = lim->max_batch && lim->max_event_size > SIZE_MAX / lim->max_batch
	                  ? SIZE_MAX
	                  : lim->max_event_size * (lim->max_batch ? lim->max_batch : 1);
	if (len > max_len) {
		ceb_seterr(errbuf, errlen, "batch is %zu bytes (limit %zu)", len, max_len);
		return CEB_ETOOBIG;
	}
	scan_init(&s, buf, len, lim, errbuf, errlen);
	ws(&s);
	if (s.p >= s.end || *s.p != '[') {
		rc = s.p >= s.end ? syntax(&s, "empty body")
		                  : syntax(&s, "a JSON batch must be an array of events");
		goto out;
	}
	if (s.max_depth < 1) {
		rc = too_deep(&s);
		goto out;
	}
	s.p++;
	ws(&s);
	if (s.p < s.end && *s.p == ']')
		s.p++;
	else
		rc = batch_elements(&s, lim, &evs, &count, errbuf, errlen);
	if (rc < 0)
		goto out;
	ws(&s);
	if (s.p != s.end) {
		rc = syntax(&s, "unexpected text after the batch");
		goto out;
	}
	if (count == 0) {
		free(evs);
		evs = NULL;
	}
	*out = evs;
	*n = count;
	evs = NULL;
	count = 0;
out:
	for (size_t i = 0; i < count; i++)
		ceb_event_unref(evs[i]);
	free(evs);
	return rc;
}
