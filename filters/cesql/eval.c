/* CESQL evaluator: walks a compiled tree against one event with the typed semantics of CESQL v1.0.0
 * (casts, zero values, error kinds) and implements the built-in functions. */
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "broker/error.h"
#include "filters/cesql/cesql.h"

/* Scratch memory for strings that functions and casts produce: a stack buffer first, then heap
 * chunks, all released when the evaluation ends. The cap stops CONCAT(CONCAT(x, x), ...) from
 * doubling its way through memory: past it, a function fails with functionEvaluation. */
#define SCRATCH_INLINE 512
#define SCRATCH_CHUNK  8192
#define SCRATCH_MAX    ((size_t)4 << 20)

struct chunk {
	struct chunk *next;
	size_t cap, used;
	alignas(max_align_t) char data[];
};

struct ceb_cesql_ctx {
	const struct ceb_event *ev;
	alignas(max_align_t) char inline_buf[SCRATCH_INLINE];
	size_t inline_used;
	struct chunk *chunks;
	size_t total;
};

static void *scratch(struct ceb_cesql_ctx *ctx, size_t n)
{
	struct chunk *ch;
	size_t cap;
	void *mem;

	if (n > SCRATCH_MAX)
		return NULL;
	n = (n + 15) & ~(size_t)15;
	if (n <= SCRATCH_INLINE - ctx->inline_used) {
		mem = ctx->inline_buf + ctx->inline_used;
		ctx->inline_used += n;
		return mem;
	}
	ch = ctx->chunks;
	if (ch && n <= ch->cap - ch->used) {
		mem = ch->data + ch->used;
		ch->used += n;
		return mem;
	}
	cap = n > SCRATCH_CHUNK ? n : SCRATCH_CHUNK;
	if (ctx->total + cap > SCRATCH_MAX)
		return NULL;
	ch = malloc(sizeof(*ch) + cap);
	if (!ch)
		return NULL;
	ch->next = ctx->chunks;
	ch->cap = cap;
	ch->used = n;
	ctx->chunks = ch;
	ctx->total += cap;
	return ch->data;
}

/* An evaluation of ev with empty scratch space. */
static void scratch_init(struct ceb_cesql_ctx *ctx, const struct ceb_event *ev)
{
	ctx->ev = ev;
	ctx->inline_used = 0;
	ctx->chunks = NULL;
	ctx->total = 0;
}

static void scratch_release(struct ceb_cesql_ctx *ctx)
{
	while (ctx->chunks) {
		struct chunk *next = ctx->chunks->next;

		free(ctx->chunks);
		ctx->chunks = next;
	}
}

/* ---- values and casts (§3.7) ---- */

static void zero(struct ceb_cesql_val *v, enum ceb_cesql_type type)
{
	memset(v, 0, sizeof(*v));
	v->type = type;
	v->s = "";
}

/* The node could not produce its value: the zero value of its own type goes with the error. */
static enum ceb_cesql_error fail(struct ceb_cesql_val *out, enum ceb_cesql_type type,
                                 enum ceb_cesql_error err)
{
	zero(out, type);
	return err;
}

static void set_bool(struct ceb_cesql_val *out, bool b)
{
	zero(out, CEB_CESQL_BOOLEAN);
	out->b = b;
}

static void set_int(struct ceb_cesql_val *out, int32_t i)
{
	zero(out, CEB_CESQL_INTEGER);
	out->i = i;
}

static void set_str(struct ceb_cesql_val *out, const char *s, size_t len)
{
	zero(out, CEB_CESQL_STRING);
	out->s = s;
	out->len = len;
}

/* String -> Integer: optional sign, base-10 digits, within int32. */
static bool parse_int(const char *s, size_t len, int32_t *out)
{
	size_t i = 0;
	bool neg = false;
	int64_t v = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i == len)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > (int64_t)INT32_MAX + 1)
			return false;
	}
	if (neg)
		v = -v;
	if (v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

static enum ceb_cesql_error cast(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *v,
                                 enum ceb_cesql_type to)
{
	int32_t i;

	if (v->type == to)
		return CEB_CESQL_OK;
	switch (to) {
	case CEB_CESQL_STRING:
		if (v->type == CEB_CESQL_BOOLEAN) {
			if (v->b)
				set_str(v, "true", 4);
			else
				set_str(v, "false", 5);
		} else {
			char tmp[12], *buf;
			size_t n = 0;
			uint32_t mag = v->i < 0 ? 0u - (uint32_t)v->i : (uint32_t)v->i;

			do {
				tmp[n++] = (char)('0' + mag % 10);
				mag /= 10;
			} while (mag);
			if (v->i < 0)
				tmp[n++] = '-';
			buf = scratch(ctx, n);
			if (!buf)
				return fail(v, to, CEB_CESQL_EGENERIC);
			for (size_t k = 0; k < n; k++)
				buf[k] = tmp[n - 1 - k];
			set_str(v, buf, n);
		}
		return CEB_CESQL_OK;
	case CEB_CESQL_INTEGER:
		if (v->type == CEB_CESQL_BOOLEAN) {
			set_int(v, v->b ? 1 : 0);
			return CEB_CESQL_OK;
		}
		if (!parse_int(v->s, v->len, &i))
			return fail(v, to, CEB_CESQL_ECAST);
		set_int(v, i);
		return CEB_CESQL_OK;
	case CEB_CESQL_BOOLEAN:
		if (v->type == CEB_CESQL_INTEGER) {
			set_bool(v, v->i != 0);
			return CEB_CESQL_OK;
		}
		if (v->len == 4 && strncasecmp(v->s, "true", 4) == 0) {
			set_bool(v, true);
			return CEB_CESQL_OK;
		}
		if (v->len == 5 && strncasecmp(v->s, "false", 5) == 0) {
			set_bool(v, false);
			return CEB_CESQL_OK;
		}
		return fail(v, to, CEB_CESQL_ECAST);
	}
	return fail(v, to, CEB_CESQL_EGENERIC);
}

static bool equal(const struct ceb_cesql_val *a, const struct ceb_cesql_val *b)
{
	switch (a->type) {
	case CEB_CESQL_BOOLEAN: return a->b == b->b;
	case CEB_CESQL_INTEGER: return a->i == b->i;
	case CEB_CESQL_STRING: return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
	}
	return false;
}

/* ---- UTF-8: characters are code points; invalid bytes count as one character each ---- */

/* Decodes the character at s (len > 0 bytes left); returns its length, *cp the code point or
 * UINT32_MAX for an invalid byte. */
static size_t u8_decode(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	*cp = UINT32_MAX;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		n = 2, c = s[0] & 0x1F, min = 0x80;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		n = 3, c = s[0] & 0x0F, min = 0x800;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 1;
	}
	if (n > len)
		return 1;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 1;
		c = (c << 6) | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid bytes too. */
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 1;
	*cp = c;
	return n;
}

static size_t u8_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

static size_t u8_length(const char *s, size_t len)
{
	size_t n = 0;
	uint32_t cp;

	for (size_t i = 0; i < len; n++)
		i += u8_decode(s + i, len - i, &cp);
	return n;
}

/* Byte offset of character number k (clipped to len). */
static size_t u8_offset(const char *s, size_t len, size_t k)
{
	size_t i = 0;
	uint32_t cp;

	while (k-- > 0 && i < len)
		i += u8_decode(s + i, len - i, &cp);
	return i;
}

/* ---- LIKE: an iterative two-pointer match; only the last % is ever revisited, so the cost is
 * bounded by value length x pattern length and is linear for the usual shapes, with no recursion.
 * % and _ work on characters. ---- */
static bool like_match(const char *s, size_t n, const int16_t *pat, size_t m)
{
	size_t v = 0, p = 0, star_p = SIZE_MAX, star_v = 0;
	uint32_t cp;

	while (v < n) {
		if (p < m && pat[p] == CEB_CESQL_LIKE_ONE) {
			v += u8_decode(s + v, n - v, &cp);
			p++;
		} else if (p < m && pat[p] >= 0 && (unsigned char)s[v] == pat[p]) {
			v++;
			p++;
		} else if (p < m && pat[p] == CEB_CESQL_LIKE_ANY) {
			star_p = p++;
			star_v = v;
		} else if (star_p != SIZE_MAX) {
			/* Let the last % swallow one more character and retry from there. */
			p = star_p + 1;
			star_v += u8_decode(s + star_v, n - star_v, &cp);
			v = star_v;
		} else {
			return false;
		}
	}
	while (p < m && pat[p] == CEB_CESQL_LIKE_ANY)
		p++;
	return p == m;
}

/* ---- case mapping ---- */

static pthread_once_t case_once = PTHREAD_ONCE_INIT;
static locale_t case_locale;

static void case_init(void)
{
	/* A private locale object: towupper_l needs no setlocale(), which would change the whole
	 * process. Missing C.UTF-8 leaves (locale_t)0 and the table below takes over. */
	case_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Pairs where the upper case is even and the lower case the next code point (or the reverse). */
static uint32_t pair_case(uint32_t c, bool upper, bool upper_even)
{
	bool is_upper = ((c & 1) == 0) == upper_even;

	if (upper && !is_upper)
		return c - 1;
	if (!upper && is_upper)
		return c + 1;
	return c;
}

uint32_t ceb_cesql_case_table(uint32_t c, bool upper)
{
	if (c < 0x80) {
		if (upper && c >= 'a' && c <= 'z')
			return c - 32;
		if (!upper && c >= 'A' && c <= 'Z')
			return c + 32;
		return c;
	}
	if (c >= 0xC0 && c <= 0xFE && c != 0xD7 && c != 0xF7 && c != 0xDF) {
		if (upper && c >= 0xE0)
			return c - 0x20;
		if (!upper && c <= 0xDE)
			return c + 0x20;
		return c;
	}
	if (c == 0xFF)
		return upper ? 0x178 : c;
	if (c == 0x178)
		return upper ? c : 0xFF;
	if (c == 0xB5)
		return upper ? 0x39C : c;
	if (c == 0x130)
		return upper ? c : 'i';
	if (c == 0x131)
		return upper ? 'I' : c;
	if (c == 0x17F)
		return upper ? 'S' : c;
	if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
		return pair_case(c, upper, true);
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return pair_case(c, upper, false);
	/* Greek */
	if ((c >= 0x391 && c <= 0x3A9 && c != 0x3A2))
		return upper ? c : c + 0x20;
	if (c >= 0x3B1 && c <= 0x3C9)
		return upper ? (c == 0x3C2 ? 0x3A3 : c - 0x20) : c;
	if (c == 0x386)
		return upper ? c : 0x3AC;
	if (c == 0x3AC)
		return upper ? 0x386 : c;
	if (c >= 0x388 && c <= 0x38A)
		return upper ? c : c + 0x25;
	if (c >= 0x3AD && c <= 0x3AF)
		return upper ? c - 0x25 : c;
	if (c == 0x38C)
		return upper ? c : 0x3CC;
	if (c == 0x3CC)
		return upper ? 0x38C : c;
	if (c == 0x38E || c == 0x38F)
		return upper ? c : c + 0x3F;
	if (c == 0x3CD || c == 0x3CE)
		return upper ? c - 0x3F : c;
	/* Cyrillic */
	if (c >= 0x400 && c <= 0x40F)
		return upper ? c : c + 0x50;
	if (c >= 0x410 && c <= 0x42F)
		return upper ? c : c + 0x20;
	if (c >= 0x430 && c <= 0x44F)
		return upper ? c - 0x20 : c;
	if (c >= 0x450 && c <= 0x45F)
		return upper ? c - 0x50 : c;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
		return pair_case(c, upper, true);
	if (c >= 0x4C1 && c <= 0x4CE)
		return pair_case(c, upper, false);
	return c;
}

static uint32_t map_case(uint32_t c, bool upper)
{
	wint_t w;

	if (c < 0x80)
		return ceb_cesql_case_table(c, upper);
	pthread_once(&case_once, case_init);
	if (!case_locale)
		return ceb_cesql_case_table(c, upper);
	w = upper ? towupper_l((wint_t)c, case_locale) : towlower_l((wint_t)c, case_locale);
	/* Never produce something that is not a scalar value. */
	if ((uint32_t)w > 0x10FFFF || ((uint32_t)w >= 0xD800 && (uint32_t)w <= 0xDFFF))
		return c;
	return (uint32_t)w;
}

/* ---- built-in functions (§4, plus INT, BOOL, STRING); arguments arrive cast to their types ---- */

static enum ceb_cesql_error fn_length(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                      struct ceb_cesql_val *out)
{
	size_t len = u8_length(a[0].s, a[0].len);

	set_int(out, len > INT32_MAX ? INT32_MAX : (int32_t)len);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error join(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_val *sep,
                                 struct ceb_cesql_val *items, size_t n, struct ceb_cesql_val *out)
{
	size_t total = 0, at = 0;
	char *buf;

	for (size_t i = 0; i < n; i++) {
		total += items[i].len;
		if (sep && i > 0)
			total += sep->len;
		if (total > SCRATCH_MAX)
			return fail(out, CEB_CESQL_STRING, CEB_CESQL_EFUNCTION_EVALUATION);
	}
	if (total == 0) {
		set_str(out, "", 0);
		return CEB_CESQL_OK;
	}
	buf = scratch(ctx, total);
	if (!buf)
		return fail(out, CEB_CESQL_STRING, CEB_CESQL_EFUNCTION_EVALUATION);
	for (size_t i = 0; i < n; i++) {
		if (sep && i > 0) {
			memcpy(buf + at, sep->s, sep->len);
			at += sep->len;
		}
		memcpy(buf + at, items[i].s, items[i].len);
		at += items[i].len;
	}
	set_str(out, buf, total);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error fn_concat(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                      struct ceb_cesql_val *out)
{
	return join(ctx, NULL, a, n, out);
}

static enum ceb_cesql_error fn_concat_ws(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a,
                                         size_t n, struct ceb_cesql_val *out)
{
	return join(ctx, &a[0], a + 1, n - 1, out);
}

static enum ceb_cesql_error change_case(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a,
                                        struct ceb_cesql_val *out, bool upper)
{
	const char *s = a->s;
	size_t len = a->len, need = 0, at = 0, k;
	char enc[4], *buf;
	uint32_t cp;

	/* Two passes: mapping can change the encoded length (U+0131 -> 'I'). */
	for (size_t i = 0; i < len; i += k) {
		k = u8_decode(s + i, len - i, &cp);
		need += cp == UINT32_MAX ? 1 : u8_encode(map_case(cp, upper), enc);
	}
	if (need == 0) {
		set_str(out, "", 0);
		return CEB_CESQL_OK;
	}
	buf = scratch(ctx, need);
	if (!buf)
		return fail(out, CEB_CESQL_STRING, CEB_CESQL_EFUNCTION_EVALUATION);
	for (size_t i = 0; i < len; i += k) {
		k = u8_decode(s + i, len - i, &cp);
		if (cp == UINT32_MAX)
			buf[at++] = s[i];
		else
			at += u8_encode(map_case(cp, upper), buf + at);
	}
	set_str(out, buf, at);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error fn_lower(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                     struct ceb_cesql_val *out)
{
	return change_case(ctx, a, out, false);
}

static enum ceb_cesql_error fn_upper(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                     struct ceb_cesql_val *out)
{
	return change_case(ctx, a, out, true);
}

/* Unicode White_Space; control characters other than these are kept. */
static bool is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

static enum ceb_cesql_error fn_trim(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                    struct ceb_cesql_val *out)
{
	size_t start = a->len, end = 0, k;
	bool seen = false;
	uint32_t cp;

	for (size_t i = 0; i < a->len; i += k) {
		k = u8_decode(a->s + i, a->len - i, &cp);
		if (is_space(cp))
			continue;
		if (!seen)
			start = i;
		seen = true;
		end = i + k;
	}
	if (!seen)
		set_str(out, "", 0);
	else
		set_str(out, a->s + start, end - start);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error fn_left(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                    struct ceb_cesql_val *out)
{
	if (a[1].i < 0) {
		set_str(out, a[0].s, a[0].len);
		return CEB_CESQL_EFUNCTION_EVALUATION;
	}
	set_str(out, a[0].s, u8_offset(a[0].s, a[0].len, (size_t)a[1].i));
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error fn_right(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                     struct ceb_cesql_val *out)
{
	size_t len, skip;

	if (a[1].i < 0) {
		set_str(out, a[0].s, a[0].len);
		return CEB_CESQL_EFUNCTION_EVALUATION;
	}
	len = u8_length(a[0].s, a[0].len);
	skip = (size_t)a[1].i >= len ? 0 : len - (size_t)a[1].i;
	skip = u8_offset(a[0].s, a[0].len, skip);
	set_str(out, a[0].s + skip, a[0].len - skip);
	return CEB_CESQL_OK;
}

/* SUBSTRING(x, pos [, len]): 1-based, negative pos counts from the end, pos 0 is ''. */
static enum ceb_cesql_error fn_substring(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a,
                                         size_t n, struct ceb_cesql_val *out)
{
	int64_t len = (int64_t)u8_length(a[0].s, a[0].len), pos = a[1].i, begin, end;
	size_t from, to;

	if (pos == 0) {
		set_str(out, "", 0);
		return CEB_CESQL_OK;
	}
	if (pos > len || pos < -len || (n == 3 && a[2].i < 0)) {
		set_str(out, "", 0);
		return CEB_CESQL_EFUNCTION_EVALUATION;
	}
	begin = pos < 0 ? len + pos : pos - 1;
	end = n == 3 && begin + a[2].i < len ? begin + a[2].i : len;
	from = u8_offset(a[0].s, a[0].len, (size_t)begin);
	to = from + u8_offset(a[0].s + from, a[0].len - from, (size_t)(end - begin));
	set_str(out, a[0].s + from, to - from);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error fn_abs(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a, size_t n,
                                   struct ceb_cesql_val *out)
{
	if (a[0].i == INT32_MIN) {
		set_int(out, INT32_MAX);
		return CEB_CESQL_EMATH;
	}
	set_int(out, a[0].i < 0 ? -a[0].i : a[0].i);
	return CEB_CESQL_OK;
}

/* INT, BOOL, STRING: the call already cast the argument to the parameter type. */
static enum ceb_cesql_error fn_identity(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *a,
                                        size_t n, struct ceb_cesql_val *out)
{
	*out = a[0];
	return CEB_CESQL_OK;
}

#define S CEB_CESQL_STRING
#define I CEB_CESQL_INTEGER
#define B CEB_CESQL_BOOLEAN
static const struct ceb_cesql_func funcs[] = {
        {"ABS", 1, false, {I}, I, fn_abs},
        {"BOOL", 1, false, {B}, B, fn_identity},
        {"CONCAT", 0, true, {S}, S, fn_concat},
        {"CONCAT_WS", 1, true, {S}, S, fn_concat_ws},
        {"INT", 1, false, {I}, I, fn_identity},
        {"LEFT", 2, false, {S, I}, S, fn_left},
        {"LENGTH", 1, false, {S}, I, fn_length},
        {"LOWER", 1, false, {S}, S, fn_lower},
        {"RIGHT", 2, false, {S, I}, S, fn_right},
        {"STRING", 1, false, {S}, S, fn_identity},
        {"SUBSTRING", 2, false, {S, I}, S, fn_substring},
        {"SUBSTRING", 3, false, {S, I, I}, S, fn_substring},
        {"TRIM", 1, false, {S}, S, fn_trim},
        {"UPPER", 1, false, {S}, S, fn_upper},
};
#undef S
#undef I
#undef B

const struct ceb_cesql_func *ceb_cesql_func_find(const char *name, size_t namelen, size_t nargs)
{
	const struct ceb_cesql_func *variadic = NULL;

	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		const struct ceb_cesql_func *fn = &funcs[i];

		if (strlen(fn->name) != namelen || strncasecmp(fn->name, name, namelen) != 0)
			continue;
		/* A fixed arity wins over the variadic overload (§4.1). */
		if (!fn->variadic && fn->nfixed == nargs)
			return fn;
		if (fn->variadic && nargs >= fn->nfixed)
			variadic = fn;
	}
	return variadic;
}

/* ---- the tree walk ---- */

static enum ceb_cesql_error eval(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                 struct ceb_cesql_val *out);

/* Evaluates a kid and casts it; on any error the caller's node returns its own zero value. */
static enum ceb_cesql_error eval_as(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                    enum ceb_cesql_type type, struct ceb_cesql_val *out)
{
	enum ceb_cesql_error err = eval(ctx, node, out);

	return err ? err : cast(ctx, out, type);
}

static enum ceb_cesql_error eval_attr(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                      struct ceb_cesql_val *out)
{
	const struct ceb_attr *attr = ceb_event_get(ctx->ev, node->name);

	/* The type of a missing attribute is unknown: Boolean false, as §3.2 says. */
	if (!attr)
		return fail(out, CEB_CESQL_BOOLEAN, CEB_CESQL_EMISSING_ATTRIBUTE);
	if (attr->type == CEB_TYPE_INTEGER)
		set_int(out, attr->ival);
	else if (attr->type == CEB_TYPE_BOOLEAN)
		set_bool(out, attr->ival != 0);
	else
		set_str(out, attr->value, attr->len);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error eval_arith(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                       struct ceb_cesql_val *out)
{
	struct ceb_cesql_val l, r;
	enum ceb_cesql_error err;
	uint32_t a, b;

	if ((err = eval_as(ctx, node->kids[0], CEB_CESQL_INTEGER, &l)) ||
	    (err = eval_as(ctx, node->kids[1], CEB_CESQL_INTEGER, &r)))
		return fail(out, CEB_CESQL_INTEGER, err);
	/* + - * wrap as int32 (what sdk-go does; the spec leaves overflow open). */
	a = (uint32_t)l.i;
	b = (uint32_t)r.i;
	switch (node->op) {
	case CEB_CESQL_T_PLUS: set_int(out, (int32_t)(a + b)); return CEB_CESQL_OK;
	case CEB_CESQL_T_MINUS: set_int(out, (int32_t)(a - b)); return CEB_CESQL_OK;
	case CEB_CESQL_T_STAR: set_int(out, (int32_t)(a * b)); return CEB_CESQL_OK;
	case CEB_CESQL_T_SLASH:
	case CEB_CESQL_T_PERCENT:
		if (r.i == 0)
			return fail(out, CEB_CESQL_INTEGER, CEB_CESQL_EMATH);
		if (l.i == INT32_MIN && r.i == -1)
			set_int(out, node->op == CEB_CESQL_T_SLASH ? INT32_MIN : 0);
		else
			set_int(out, node->op == CEB_CESQL_T_SLASH ? l.i / r.i : l.i % r.i);
		return CEB_CESQL_OK;
	default: return fail(out, CEB_CESQL_INTEGER, CEB_CESQL_EGENERIC);
	}
}

static enum ceb_cesql_error eval_order(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                       struct ceb_cesql_val *out)
{
	struct ceb_cesql_val l, r;
	enum ceb_cesql_error err;

	if ((err = eval_as(ctx, node->kids[0], CEB_CESQL_INTEGER, &l)) ||
	    (err = eval_as(ctx, node->kids[1], CEB_CESQL_INTEGER, &r)))
		return fail(out, CEB_CESQL_BOOLEAN, err);
	switch (node->op) {
	case CEB_CESQL_T_LT: set_bool(out, l.i < r.i); break;
	case CEB_CESQL_T_LE: set_bool(out, l.i <= r.i); break;
	case CEB_CESQL_T_GT: set_bool(out, l.i > r.i); break;
	default: set_bool(out, l.i >= r.i); break;
	}
	return CEB_CESQL_OK;
}

/* = != <>: the right operand's type picks the overload and the left one is cast to it (§3.7). */
static enum ceb_cesql_error eval_equal(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                       struct ceb_cesql_val *out)
{
	struct ceb_cesql_val l, r;
	enum ceb_cesql_error err;

	if ((err = eval(ctx, node->kids[0], &l)) || (err = eval(ctx, node->kids[1], &r)) ||
	    (err = cast(ctx, &l, r.type)))
		return fail(out, CEB_CESQL_BOOLEAN, err);
	set_bool(out, equal(&l, &r) != node->negate);
	return CEB_CESQL_OK;
}

/* A right-associative chain a op1 (b op2 (c ...)). Walking left to right, an AND with a false left
 * side or an OR with a true one decides its whole subtree (short-circuit, §3.4); XOR only flips what
 * the rest of the chain yields. */
static enum ceb_cesql_error eval_logic(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                       struct ceb_cesql_val *out)
{
	bool flip = false;

	for (size_t i = 0; i < node->nkids; i++) {
		struct ceb_cesql_val v;
		enum ceb_cesql_error err = eval_as(ctx, node->kids[i], CEB_CESQL_BOOLEAN, &v);

		if (err)
			return fail(out, CEB_CESQL_BOOLEAN, err);
		if (i + 1 == node->nkids) {
			set_bool(out, v.b != flip);
			break;
		}
		switch (node->ops[i]) {
		case CEB_CESQL_T_AND:
			if (!v.b) {
				set_bool(out, flip);
				return CEB_CESQL_OK;
			}
			break;
		case CEB_CESQL_T_OR:
			if (v.b) {
				set_bool(out, !flip);
				return CEB_CESQL_OK;
			}
			break;
		default: flip = flip != v.b; break;
		}
	}
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error eval_in(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                    struct ceb_cesql_val *out)
{
	struct ceb_cesql_val l, r;
	enum ceb_cesql_error err;
	bool found = false;

	if ((err = eval(ctx, node->kids[0], &l)))
		return fail(out, CEB_CESQL_BOOLEAN, err);
	/* Every element is cast to the left operand's type; the first match ends the search. */
	for (size_t i = 1; i < node->nkids && !found; i++) {
		if ((err = eval_as(ctx, node->kids[i], l.type, &r)))
			return fail(out, CEB_CESQL_BOOLEAN, err);
		found = equal(&l, &r);
	}
	set_bool(out, found != node->negate);
	return CEB_CESQL_OK;
}

static enum ceb_cesql_error eval_call(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                      struct ceb_cesql_val *out)
{
	const struct ceb_cesql_func *fn = node->fn;
	struct ceb_cesql_val local[4], *args = local;
	enum ceb_cesql_error err;

	if (!fn)
		return fail(out, CEB_CESQL_BOOLEAN, CEB_CESQL_EMISSING_FUNCTION);
	if (node->nkids > sizeof(local) / sizeof(local[0])) {
		args = scratch(ctx, node->nkids * sizeof(*args));
		if (!args)
			return fail(out, fn->ret, CEB_CESQL_EFUNCTION_EVALUATION);
	}
	for (size_t i = 0; i < node->nkids; i++) {
		enum ceb_cesql_type type = i < fn->nfixed ? fn->params[i] : CEB_CESQL_STRING;

		if ((err = eval_as(ctx, node->kids[i], type, &args[i])))
			return fail(out, fn->ret, err);
	}
	return fn->fn(ctx, args, node->nkids, out);
}

static enum ceb_cesql_error eval(struct ceb_cesql_ctx *ctx, const struct ceb_cesql_node *node,
                                 struct ceb_cesql_val *out)
{
	struct ceb_cesql_val v;
	enum ceb_cesql_error err;

	switch (node->kind) {
	case CEB_CESQL_N_LITERAL: *out = node->lit; return CEB_CESQL_OK;
	case CEB_CESQL_N_ATTR: return eval_attr(ctx, node, out);
	case CEB_CESQL_N_EXISTS:
		set_bool(out, ceb_event_get(ctx->ev, node->name) != NULL);
		return CEB_CESQL_OK;
	case CEB_CESQL_N_NOT:
		if ((err = eval_as(ctx, node->kids[0], CEB_CESQL_BOOLEAN, &v)))
			return fail(out, CEB_CESQL_BOOLEAN, err);
		set_bool(out, !v.b);
		return CEB_CESQL_OK;
	case CEB_CESQL_N_NEG:
		if ((err = eval_as(ctx, node->kids[0], CEB_CESQL_INTEGER, &v)))
			return fail(out, CEB_CESQL_INTEGER, err);
		set_int(out, (int32_t)(0u - (uint32_t)v.i));
		return CEB_CESQL_OK;
	case CEB_CESQL_N_ARITH: return eval_arith(ctx, node, out);
	case CEB_CESQL_N_ORDER: return eval_order(ctx, node, out);
	case CEB_CESQL_N_EQUAL: return eval_equal(ctx, node, out);
	case CEB_CESQL_N_LOGIC: return eval_logic(ctx, node, out);
	case CEB_CESQL_N_LIKE:
		if ((err = eval_as(ctx, node->kids[0], CEB_CESQL_STRING, &v)))
			return fail(out, CEB_CESQL_BOOLEAN, err);
		set_bool(out,
		         like_match(v.s, v.len, node->pattern, node->npattern) != node->negate);
		return CEB_CESQL_OK;
	case CEB_CESQL_N_IN: return eval_in(ctx, node, out);
	case CEB_CESQL_N_CALL: return eval_call(ctx, node, out);
	}
	return fail(out, node->type, CEB_CESQL_EGENERIC);
}

enum ceb_cesql_error ceb_cesql_eval(const struct ceb_cesql *q, const struct ceb_event *ev,
                                    struct ceb_cesql_value *out)
{
	struct ceb_cesql_ctx ctx;
	struct ceb_cesql_val v;
	enum ceb_cesql_error err;

	scratch_init(&ctx, ev);
	memset(out, 0, sizeof(*out));
	err = eval(&ctx, q->root, &v);
	out->type = v.type;
	out->b = v.b;
	out->i = v.i;
	if (v.type == CEB_CESQL_STRING) {
		out->s = malloc(v.len + 1);
		if (out->s) {
			memcpy(out->s, v.s, v.len);
			out->s[v.len] = '\0';
			out->len = v.len;
		} else {
			memset(out, 0, sizeof(*out));
			err = CEB_CESQL_EGENERIC;
		}
	}
	scratch_release(&ctx);
	return err;
}

bool ceb_cesql_match(const struct ceb_cesql *q, const struct ceb_event *ev)
{
	struct ceb_cesql_ctx ctx;
	struct ceb_cesql_val v;
	enum ceb_cesql_error err;

	scratch_init(&ctx, ev);
	err = eval(&ctx, q->root, &v);
	scratch_release(&ctx);
	return err == CEB_CESQL_OK && v.type == CEB_CESQL_BOOLEAN && v.b;
}

void ceb_cesql_value_clear(struct ceb_cesql_value *val)
{
	if (!val)
		return;
	free(val->s);
	memset(val, 0, sizeof(*val));
}

const char *ceb_cesql_error_name(enum ceb_cesql_error err)
{
	switch (err) {
	case CEB_CESQL_OK: return "";
	case CEB_CESQL_EPARSE: return "parse";
	case CEB_CESQL_EMATH: return "math";
	case CEB_CESQL_ECAST: return "cast";
	case CEB_CESQL_EMISSING_ATTRIBUTE: return "missingAttribute";
	case CEB_CESQL_EMISSING_FUNCTION: return "missingFunction";
	case CEB_CESQL_EFUNCTION_EVALUATION: return "functionEvaluation";
	case CEB_CESQL_EGENERIC: return "generic";
	}
	return "generic";
}
