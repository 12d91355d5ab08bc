/* The CloudEvents event model: attribute storage, the type system's syntax checks, validation.
 * One allocation holds a typical event: known attributes in fixed slots, strings in an inline arena. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ce/base64.h"
#include "broker/error.h"
#include "broker/ce/event.h"

const struct ceb_limits ceb_limits_default = {
        .max_event_size = 1024 * 1024,
        .max_attrs = 64,
        .max_value_len = 4096,
        .max_json_depth = 64,
        .max_batch = 100,
};

/* The known attributes, in the order ceb_event_attr_at() lists them. */
enum {
	K_SPECVERSION,
	K_ID,
	K_SOURCE,
	K_TYPE,
	K_DATACONTENTTYPE,
	K_DATASCHEMA,
	K_SUBJECT,
	K_TIME,
	K_COUNT
};

/* With each name's length: every decoded attribute is looked up here, twice (the duplicate check,
 * then the store), and the size estimate adds the names up; a strlen() each cost more than the
 * rest of the look-up. */
#define KNOWN(n, t)                 \
	{                           \
		n, sizeof(n) - 1, t \
	}
static const struct {
	const char *name;
	size_t len;
	enum ceb_type type;
} known_attrs[K_COUNT] = {
        [K_SPECVERSION] = KNOWN("specversion", CEB_TYPE_STRING),
        [K_ID] = KNOWN("id", CEB_TYPE_STRING),
        [K_SOURCE] = KNOWN("source", CEB_TYPE_URIREF),
        [K_TYPE] = KNOWN("type", CEB_TYPE_STRING),
        [K_DATACONTENTTYPE] = KNOWN("datacontenttype", CEB_TYPE_STRING),
        [K_DATASCHEMA] = KNOWN("dataschema", CEB_TYPE_URI),
        [K_SUBJECT] = KNOWN("subject", CEB_TYPE_STRING),
        [K_TIME] = KNOWN("time", CEB_TYPE_TIMESTAMP),
};
#undef KNOWN

#define INLINE_ARENA 768 /* bytes for strings and data in a new event */
#define INLINE_EXTS  4   /* extension slots carved from the arena of a new event */
#define CHUNK_MIN    1024

/* Overflow storage for strings once the inline arena is full; chunks never move, so attribute
 * pointers stay valid while the event grows. */
struct chunk {
	struct chunk *next;
	size_t cap;
	size_t used;
	char mem[];
};

struct ceb_event {
	atomic_uint refs;
	unsigned data_flags;
	unsigned known_mask; /* bit k set: known[k] holds a value */
	bool has_data;
	const char *data; /* NULL when absent; "" (static) when present and empty */
	size_t data_len;
	void *data_owned; /* malloc'd data buffer, or NULL when the data lives in the arena */
	struct ceb_attr known[K_COUNT];
	struct ceb_attr *ext; /* extensions in the order they were set: slots at the start of the
				 arena, until they grow into a malloc'd array (ext_owned) */
	size_t next;
	size_t ext_cap;
	bool ext_owned;
	struct chunk *chunks;
	size_t inl_used;
	size_t inl_cap;
	/* The arena. Its size is chosen at allocation: a fixed size for events being built, the
	 * exact size for copies (ceb_event_clone), so that stored events carry no slack. */
	char inl[];
};

/* The extension slots live at the start of the arena. */
_Static_assert(offsetof(struct ceb_event, inl) % _Alignof(struct ceb_attr) == 0,
               "the arena must be aligned for struct ceb_attr");

static char *arena_alloc(struct ceb_event *ev, size_t n)
{
	struct chunk *c;
	size_t cap;

	if (ev->inl_cap - ev->inl_used >= n) {
		ev->inl_used += n;
		return ev->inl + ev->inl_used - n;
	}
	c = ev->chunks;
	if (c && c->cap - c->used >= n) {
		c->used += n;
		return c->mem + c->used - n;
	}
	cap = n > CHUNK_MIN ? n : CHUNK_MIN;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		return NULL;
	c->cap = cap;
	c->used = n;
	c->next = ev->chunks;
	ev->chunks = c;
	return c->mem;
}

/* An empty event whose arena holds ext_cap extension slots, then `arena` bytes for strings and
 * data. */
static struct ceb_event *event_alloc(size_t ext_cap, size_t arena)
{
	size_t slots = ext_cap * sizeof(struct ceb_attr);
	struct ceb_event *ev = malloc(sizeof(*ev) + slots + arena);

	if (!ev)
		return NULL;
	atomic_init(&ev->refs, 1);
	ev->data_flags = 0;
	ev->known_mask = 0;
	ev->has_data = false;
	ev->data = NULL;
	ev->data_len = 0;
	ev->data_owned = NULL;
	ev->ext = (struct ceb_attr *)(void *)ev->inl;
	ev->next = 0;
	ev->ext_cap = ext_cap;
	ev->ext_owned = false;
	ev->chunks = NULL;
	ev->inl_used = slots;
	ev->inl_cap = slots + arena;
	for (int k = 0; k < K_COUNT; k++) {
		ev->known[k].name = known_attrs[k].name;
		ev->known[k].value = NULL;
		ev->known[k].len = 0;
		ev->known[k].type = known_attrs[k].type;
		ev->known[k].ival = 0;
	}
	return ev;
}

struct ceb_event *ceb_event_new(void)
{
	return event_alloc(INLINE_EXTS, INLINE_ARENA);
}

static void event_free(struct ceb_event *ev)
{
	struct chunk *c, *next;

	for (c = ev->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	if (ev->ext_owned)
		free(ev->ext);
	free(ev->data_owned);
	free(ev);
}

struct ceb_event *ceb_event_ref(struct ceb_event *ev)
{
	if (ev)
		atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
	return ev;
}

void ceb_event_unref(struct ceb_event *ev)
{
	if (ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1)
		event_free(ev);
}

/* The known attribute named by len bytes at name, or -1: by the length, then one comparison of
 * constant length, which the compiler makes a load or two instead of a call. */
static int known_index(const char *name, size_t len)
{
	switch (len) {
	case 2: return memcmp(name, "id", 2) == 0 ? K_ID : -1;
	case 4:
		return memcmp(name, "type", 4) == 0   ? K_TYPE
		       : memcmp(name, "time", 4) == 0 ? K_TIME
		                                      : -1;
	case 6: return memcmp(name, "source", 6) == 0 ? K_SOURCE : -1;
	case 7: return memcmp(name, "subject", 7) == 0 ? K_SUBJECT : -1;
	case 10: return memcmp(name, "dataschema", 10) == 0 ? K_DATASCHEMA : -1;
	case 11: return memcmp(name, "specversion", 11) == 0 ? K_SPECVERSION : -1;
	case 15: return memcmp(name, "datacontenttype", 15) == 0 ? K_DATACONTENTTYPE : -1;
	default: return -1;
	}
}

/* Checks a value against its type (and, for a known attribute, its extra rules); for an Integer or a
 * Boolean stores the number in *ival. */
static int check_value(const char *name, int k, enum ceb_type type, const char *v, size_t len,
                       int32_t *ival, char *errbuf, size_t errlen)
{
	char ex[48];

	if (k >= 0 && k != K_DATACONTENTTYPE && len == 0) {
		ceb_seterr(errbuf, errlen, "attribute '%s': must not be empty", name);
		return CEB_EINVAL;
	}
	*ival = 0;
	switch (type) {
	case CEB_TYPE_STRING:
		if (ceb_string_check(name, v, len, errbuf, errlen) < 0)
			return CEB_EINVAL;
		if (k == K_DATACONTENTTYPE && !ceb_media_type_valid(v, len)) {
			ceb_seterr(
			        errbuf, errlen,
			        "attribute 'datacontenttype': '%s' is not a media type (RFC 2046 "
			        "type/subtype[; name=value])",
			        ceb_excerpt(ex, sizeof(ex), v, len));
			return CEB_EINVAL;
		}
		return 0;
	case CEB_TYPE_INTEGER:
		if (!ceb_integer_parse(v, len, ival)) {
			ceb_seterr(
			        errbuf, errlen,
			        "attribute '%s': '%s' is not an Integer (-?(0|[1-9][0-9]*) within "
			        "-2147483648..2147483647)",
			        name, ceb_excerpt(ex, sizeof(ex), v, len));
			return CEB_EINVAL;
		}
		return 0;
	case CEB_TYPE_BOOLEAN:
		if (len == 4 && memcmp(v, "true", 4) == 0) {
			*ival = 1;
			return 0;
		}
		if (len == 5 && memcmp(v, "false", 5) == 0)
			return 0;
		ceb_seterr(errbuf, errlen, "attribute '%s': a Boolean must be 'true' or 'false'",
		           name);
		return CEB_EINVAL;
	case CEB_TYPE_BINARY:
		if (!ceb_base64_valid(v, len)) {
			ceb_seterr(errbuf, errlen, "attribute '%s': not valid Base64 (RFC 4648)",
			           name);
			return CEB_EINVAL;
		}
		return 0;
	case CEB_TYPE_URI:
		if (!ceb_uri_valid(v, len)) {
			ceb_seterr(
			        errbuf, errlen,
			        "attribute '%s': '%s' is not an absolute URI (RFC 3986 scheme:...)",
			        name, ceb_excerpt(ex, sizeof(ex), v, len));
			return CEB_EINVAL;
		}
		return 0;
	case CEB_TYPE_URIREF:
		if (!ceb_uriref_valid(v, len)) {
			ceb_seterr(errbuf, errlen,
			           "attribute '%s': '%s' is not a URI-reference (RFC 3986: invalid "
			           "character, bad %%-escape or misplaced ':' or '#')",
			           name, ceb_excerpt(ex, sizeof(ex), v, len));
			return CEB_EINVAL;
		}
		return 0;
	case CEB_TYPE_TIMESTAMP:
		if (!ceb_timestamp_valid(v, len)) {
			ceb_seterr(errbuf, errlen,
			           "attribute '%s': not an RFC 3339 timestamp (e.g. "
			           "2018-04-05T17:31:00Z)",
			           name);
			return CEB_EINVAL;
		}
		return 0;
	}
	ceb_seterr(errbuf, errlen, "attribute '%s': unknown type %d", name, (int)type);
	return CEB_EINVAL;
}

/* --- storage --- */

/* The canonical decimal form of an Integer into buf (at least 12 bytes), NUL-terminated; returns its
 * length. Every ingress sets one (knativebrokerttl), where snprintf would cost more than the rest. */
static size_t format_int32(char *buf, int32_t v)
{
	char tmp[12];
	uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
	size_t n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

static struct ceb_attr *find_ext(const struct ceb_event *ev, const char *name, size_t len)
{
	for (size_t i = 0; i < ev->next; i++) {
		struct ceb_attr *a = &ev->ext[i];

		if (strncmp(a->name, name, len) == 0 && a->name[len] == '\0')
			return a;
	}
	return NULL;
}

/* Stores a checked value in a (an existing slot, or a new one whose name is set). Reuses the old
 * value's bytes when the new value fits, so that repeated sets do not grow the arena. */
static int store_value(struct ceb_event *ev, struct ceb_attr *a, enum ceb_type type, const char *v,
                       size_t len, int32_t ival)
{
	char *dst;

	if (a->value && a->len >= len) {
		dst = (char *)a->value;
	} else {
		dst = arena_alloc(ev, len + 1);
		if (!dst)
			return CEB_ENOMEM;
	}
	if (len)
		memmove(dst, v, len);
	dst[len] = '\0';
	a->value = dst;
	a->len = len;
	a->type = type;
	a->ival = ival;
	return 0;
}

static struct ceb_attr *new_ext(struct ceb_event *ev, const char *name, size_t nlen)
{
	struct ceb_attr *a, *grown;
	char *n;

	if (ev->next == ev->ext_cap) {
		size_t ncap = ev->ext_cap ? 2 * ev->ext_cap : INLINE_EXTS;

		grown = malloc(ncap * sizeof(*grown));
		if (!grown)
			return NULL;
		if (ev->next)
			memcpy(grown, ev->ext, ev->next * sizeof(*grown));
		if (ev->ext_owned)
			free(ev->ext);
		ev->ext = grown;
		ev->ext_cap = ncap;
		ev->ext_owned = true;
	}
	n = arena_alloc(ev, nlen + 1);
	if (!n)
		return NULL;
	memcpy(n, name, nlen);
	n[nlen] = '\0';
	a = &ev->ext[ev->next];
	a->name = n;
	a->value = NULL;
	a->len = 0;
	a->type = CEB_TYPE_STRING;
	a->ival = 0;
	return a;
}

/* Stores an already checked value under a checked name. */
static int put(struct ceb_event *ev, const char *name, size_t nlen, int k, enum ceb_type type,
               const char *v, size_t len, int32_t ival)
{
	struct ceb_attr *a;
	int rc;

	if (k >= 0) {
		rc = store_value(ev, &ev->known[k], type, v, len, ival);
		if (rc == 0)
			ev->known_mask |= 1u << k;
		return rc;
	}
	a = find_ext(ev, name, nlen);
	if (a)
		return store_value(ev, a, type, v, len, ival);
	a = new_ext(ev, name, nlen);
	if (!a)
		return CEB_ENOMEM;
	rc = store_value(ev, a, type, v, len, ival);
	if (rc == 0)
		ev->next++;
	return rc;
}

/* Checks the name; returns the known index, -1 for an extension, or -2 for an invalid name. */
static int check_name(const char *name, size_t nlen, char *errbuf, size_t errlen)
{
	char ex[48];
	int k;

	if (nlen == 0) {
		ceb_seterr(errbuf, errlen, "attribute name must not be empty");
		return -2;
	}
	k = known_index(name, nlen);
	if (k >= 0)
		return k;
	if (!ceb_attr_name_valid(name, nlen)) {
		ceb_excerpt(ex, sizeof(ex), name, nlen);
		if (nlen == 4 && memcmp(name, "data", 4) == 0)
			ceb_seterr(errbuf, errlen, "attribute name 'data' is reserved");
		else if (nlen > CEB_ATTR_NAME_MAX)
			ceb_seterr(errbuf, errlen,
			           "attribute name '%s' is longer than %d characters", ex,
			           CEB_ATTR_NAME_MAX);
		else
			ceb_seterr(
			        errbuf, errlen,
			        "attribute name '%s' is invalid: only lower-case letters a-z and "
			        "digits "
			        "0-9 are allowed",
			        ex);
		return -2;
	}
	return -1;
}

int ceb_event_set(struct ceb_event *ev, const char *name, enum ceb_type type, const char *value,
                  size_t len, char *errbuf, size_t errlen)
{
	return ceb_event_set_n(ev, name, strlen(name), type, value, len, errbuf, errlen);
}

int ceb_event_set_n(struct ceb_event *ev, const char *name, size_t nlen, enum ceb_type type,
                    const char *value, size_t len, char *errbuf, size_t errlen)
{
	char canon[16];
	int32_t ival;
	int k;

	k = check_name(name, nlen, errbuf, errlen);
	if (k == -2)
		return CEB_EINVAL;
	if (k >= 0)
		type = known_attrs[k].type;
	if (check_value(name, k, type, value, len, &ival, errbuf, errlen) < 0)
		return CEB_EINVAL;
	if (type == CEB_TYPE_INTEGER) {
		/* One canonical form ("-0" is 0), so that equal numbers compare equal. */
		len = format_int32(canon, ival);
		value = canon;
	}
	if (put(ev, name, nlen, k, type, value, len, ival) < 0) {
		ceb_seterr(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	return 0;
}

int ceb_event_set_int(struct ceb_event *ev, const char *name, int32_t v)
{
	size_t nlen = strlen(name);
	char canon[16];
	int len;

	if (check_name(name, nlen, NULL, 0) != -1)
		return CEB_EINVAL;
	len = (int)format_int32(canon, v);
	return put(ev, name, nlen, -1, CEB_TYPE_INTEGER, canon, (size_t)len, v);
}

int ceb_event_set_bool(struct ceb_event *ev, const char *name, bool v)
{
	size_t nlen = strlen(name);

	if (check_name(name, nlen, NULL, 0) != -1)
		return CEB_EINVAL;
	return put(ev, name, nlen, -1, CEB_TYPE_BOOLEAN, v ? "true" : "false", v ? 4 : 5, v);
}

int ceb_event_unset(struct ceb_event *ev, const char *name)
{
	size_t nlen = strlen(name);
	struct ceb_attr *a;
	int k;

	if (nlen == 0)
		return CEB_ENOTFOUND;
	k = known_index(name, nlen);
	if (k >= 0) {
		if (!(ev->known_mask & (1u << k)))
			return CEB_ENOTFOUND;
		ev->known_mask &= ~(1u << k);
		return 0;
	}
	a = find_ext(ev, name, nlen);
	if (!a)
		return CEB_ENOTFOUND;
	memmove(a, a + 1, (size_t)(ev->ext + ev->next - (a + 1)) * sizeof(*a));
	ev->next--;
	return 0;
}

static void drop_data(struct ceb_event *ev)
{
	free(ev->data_owned);
	ev->data_owned = NULL;
	ev->data = NULL;
	ev->data_len = 0;
	ev->has_data = false;
	ev->data_flags = 0;
}

int ceb_event_take_data(struct ceb_event *ev, void *data, size_t len, unsigned flags)
{
	drop_data(ev);
	if (!data) {
		if (len)
			return CEB_EINVAL;
		return 0;
	}
	ev->data_owned = data;
	ev->data = len ? data : "";
	ev->data_len = len;
	ev->has_data = true;
	ev->data_flags = flags;
	return 0;
}

int ceb_event_set_data(struct ceb_event *ev, const void *data, size_t len, unsigned flags)
{
	char *copy;

	if (!data) {
		drop_data(ev);
		return len ? CEB_EINVAL : 0;
	}
	if (len == 0) {
		drop_data(ev);
		ev->data = "";
		ev->has_data = true;
		ev->data_flags = flags;
		return 0;
	}
	/* Small data shares the event's inline arena: one allocation for the whole event. */
	if (ev->inl_cap - ev->inl_used >= len) {
		copy = arena_alloc(ev, len);
		memcpy(copy, data, len);
		drop_data(ev);
	} else {
		copy = malloc(len);
		if (!copy)
			return CEB_ENOMEM;
		memcpy(copy, data, len);
		drop_data(ev);
		ev->data_owned = copy;
	}
	ev->data = copy;
	ev->data_len = len;
	ev->has_data = true;
	ev->data_flags = flags;
	return 0;
}

/* --- look-ups --- */

const struct ceb_attr *ceb_event_get(const struct ceb_event *ev, const char *name)
{
	return ceb_event_get_n(ev, name, strlen(name));
}

const struct ceb_attr *ceb_event_get_n(const struct ceb_event *ev, const char *name, size_t nlen)
{
	int k;

	if (nlen == 0)
		return NULL;
	k = known_index(name, nlen);
	if (k >= 0)
		return (ev->known_mask & (1u << k)) ? &ev->known[k] : NULL;
	return find_ext(ev, name, nlen);
}

size_t ceb_event_attr_count(const struct ceb_event *ev)
{
	return (size_t)__builtin_popcount(ev->known_mask) + ev->next;
}

const struct ceb_attr *ceb_event_attr_at(const struct ceb_event *ev, size_t i)
{
	for (int k = 0; k < K_COUNT; k++) {
		if (!(ev->known_mask & (1u << k)))
			continue;
		if (i == 0)
			return &ev->known[k];
		i--;
	}
	return i < ev->next ? &ev->ext[i] : NULL;
}

const void *ceb_event_data(const struct ceb_event *ev, size_t *len)
{
	if (len)
		*len = ev->data_len;
	return ev->data;
}

bool ceb_event_has_data(const struct ceb_event *ev)
{
	return ev->has_data;
}

unsigned ceb_event_data_flags(const struct ceb_event *ev)
{
	return ev->data_flags;
}

const char *ceb_event_content_type(const struct ceb_event *ev)
{
	if (ev->known_mask & (1u << K_DATACONTENTTYPE))
		return ev->known[K_DATACONTENTTYPE].value;
	if (ev->has_data && (ev->data_flags & CEB_DATA_JSON))
		return "application/json";
	return NULL;
}

size_t ceb_event_size(const struct ceb_event *ev)
{
	size_t n = ev->data_len;

	/* Roughly what the JSON format spends: "name":"value", per attribute. */
	for (int k = 0; k < K_COUNT; k++)
		if (ev->known_mask & (1u << k))
			n += known_attrs[k].len + ev->known[k].len + 6;
	for (size_t i = 0; i < ev->next; i++)
		n += strlen(ev->ext[i].name) + ev->ext[i].len + 6;
	return n;
}

/* Where a pointer into [lo, hi) of one arena lands in a copy of those bytes at base; other pointers
 * (static strings, NULL) stay. */
static const char *moved(const char *p, const char *lo, const char *hi, char *base)
{
	return p && p >= lo && p < hi ? base + (p - lo) : p;
}

/* ceb_event_clone for the usual case, an event whose strings and data all sit in its arena: one
 * copy of the used bytes, then every pointer moved by the same offset. Unused extension slots are
 * left out. NULL when the event does not qualify (or out of memory): the caller then copies
 * attribute by attribute. */
static struct ceb_event *clone_flat(const struct ceb_event *ev)
{
	size_t old_slots = ev->ext_cap * sizeof(struct ceb_attr);
	size_t new_slots = ev->next * sizeof(struct ceb_attr);
	size_t strings = ev->inl_used - old_slots;
	const char *lo = ev->inl + old_slots, *hi = ev->inl + ev->inl_used;
	struct ceb_event *cp;
	char *base;

	if (ev->chunks || ev->ext_owned || ev->data_owned)
		return NULL;
	cp = event_alloc(ev->next, strings);
	if (!cp)
		return NULL;
	base = cp->inl + new_slots;
	memcpy(base, lo, strings);
	cp->inl_used = new_slots + strings;
	for (int k = 0; k < K_COUNT; k++) {
		if (!(ev->known_mask & (1u << k)))
			continue; /* a cleared slot keeps no pointer into the old arena */
		cp->known[k] = ev->known[k];
		cp->known[k].value = moved(ev->known[k].value, lo, hi, base);
	}
	cp->known_mask = ev->known_mask;
	for (size_t i = 0; i < ev->next; i++) {
		cp->ext[i] = ev->ext[i];
		cp->ext[i].name = moved(ev->ext[i].name, lo, hi, base);
		cp->ext[i].value = moved(ev->ext[i].value, lo, hi, base);
	}
	cp->next = ev->next;
	cp->has_data = ev->has_data;
	cp->data = moved(ev->data, lo, hi, base);
	cp->data_len = ev->data_len;
	cp->data_flags = ev->data_flags;
	return cp;
}

struct ceb_event *ceb_event_clone(const struct ceb_event *ev)
{
	struct ceb_event *cp, *ret = NULL;
	const struct ceb_attr *a;
	size_t i, n, arena = ev->data_len;

	/* Exactly the arena the copy needs, data included: a stored event (the memory channel keeps
	 * the copy the broker makes at ingress) wastes nothing. */
	cp = clone_flat(ev);
	if (cp)
		return cp;
	n = ceb_event_attr_count(ev);
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(ev, i);
		arena += a->len + 1;
		if (i >= (size_t)__builtin_popcount(ev->known_mask))
			arena += strlen(a->name) + 1;
	}
	cp = event_alloc(ev->next, arena);
	if (!cp)
		goto out;
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(ev, i);
		if (put(cp, a->name, strlen(a->name), known_index(a->name, strlen(a->name)),
		        a->type, a->value, a->len, a->ival) < 0)
			goto out;
	}
	if (ev->has_data && ceb_event_set_data(cp, ev->data, ev->data_len, ev->data_flags) < 0)
		goto out;
	ret = cp;
	cp = NULL;
out:
	ceb_event_unref(cp);
	return ret;
}

/* --- the packed form ---
 *
 * has_data (1 byte), data flags (1 byte), then as varints (LEB128) the attribute count and the
 * data length; then each attribute in ceb_event_attr_at() order: its known index (0xff for an
 * extension), its type (1 byte), for an extension the name's length (varint) and bytes, the
 * value's length (varint) and bytes; then the data. Strings carry no NUL: unpack adds them. */

#define PACK_EXT 0xff

static size_t varint_size(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static unsigned char *varint_put(unsigned char *p, size_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

/* Reads a varint at *p (not past end) into *v; false when cut short or too long. */
static bool varint_get(const unsigned char **p, const unsigned char *end, size_t *v)
{
	size_t r = 0;

	for (unsigned shift = 0; *p < end && shift < 8 * sizeof(size_t); shift += 7) {
		unsigned char b = *(*p)++;

		r |= (size_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

size_t ceb_event_packed_size(const struct ceb_event *ev)
{
	size_t n = 2 + varint_size(ceb_event_attr_count(ev)) + varint_size(ev->data_len) +
	           ev->data_len;

	for (int k = 0; k < K_COUNT; k++)
		if (ev->known_mask & (1u << k))
			n += 2 + varint_size(ev->known[k].len) + ev->known[k].len;
	for (size_t i = 0; i < ev->next; i++) {
		size_t nlen = strlen(ev->ext[i].name);

		n += 2 + varint_size(nlen) + nlen + varint_size(ev->ext[i].len) + ev->ext[i].len;
	}
	return n;
}

static unsigned char *pack_attr(unsigned char *p, int k, const struct ceb_attr *a)
{
	*p++ = (unsigned char)k;
	*p++ = (unsigned char)a->type;
	if (k == PACK_EXT) {
		size_t nlen = strlen(a->name);

		p = varint_put(p, nlen);
		memcpy(p, a->name, nlen);
		p += nlen;
	}
	p = varint_put(p, a->len);
	if (a->len)
		memcpy(p, a->value, a->len);
	return p + a->len;
}

void ceb_event_pack(const struct ceb_event *ev, void *buf)
{
	unsigned char *p = buf;

	*p++ = ev->has_data;
	*p++ = (unsigned char)ev->data_flags;
	p = varint_put(p, ceb_event_attr_count(ev));
	p = varint_put(p, ev->data_len);
	for (int k = 0; k < K_COUNT; k++)
		if (ev->known_mask & (1u << k))
			p = pack_attr(p, k, &ev->known[k]);
	for (size_t i = 0; i < ev->next; i++)
		p = pack_attr(p, PACK_EXT, &ev->ext[i]);
	if (ev->data_len)
		memcpy(p, ev->data, ev->data_len);
}

/* One attribute of a packed event: where its name and value are. */
struct packed_attr {
	int k;
	enum ceb_type type;
	const char *name, *value;
	size_t nlen, vlen;
};

static bool unpack_attr(const unsigned char **p, const unsigned char *end, struct packed_attr *pa)
{
	if (end - *p < 2)
		return false;
	pa->k = *(*p)++;
	pa->type = (enum ceb_type) * (*p)++;
	if (pa->k != PACK_EXT && pa->k >= K_COUNT)
		return false;
	pa->name = pa->k == PACK_EXT ? NULL : known_attrs[pa->k].name;
	pa->nlen = 0;
	if (pa->k == PACK_EXT) {
		if (!varint_get(p, end, &pa->nlen) || pa->nlen == 0 ||
		    pa->nlen > (size_t)(end - *p))
			return false;
		pa->name = (const char *)*p;
		*p += pa->nlen;
	}
	if (!varint_get(p, end, &pa->vlen) || pa->vlen > (size_t)(end - *p))
		return false;
	pa->value = (const char *)*p;
	*p += pa->vlen;
	return true;
}

struct ceb_event *ceb_event_unpack(const void *buf, size_t len)
{
	const unsigned char *start = buf, *end = start + len, *p;
	struct ceb_event *ev = NULL, *ret = NULL;
	size_t nattrs, data_len, arena = 0, next = 0, i;
	struct packed_attr pa;
	unsigned data_flags;
	bool has_data;

	if (len < 2)
		return NULL;
	has_data = start[0];
	data_flags = start[1];
	p = start + 2;
	if (!varint_get(&p, end, &nattrs) || !varint_get(&p, end, &data_len))
		return NULL;
	/* First pass: the arena the strings and the data need, and the extension slots. */
	for (i = 0; i < nattrs; i++) {
		if (!unpack_attr(&p, end, &pa))
			return NULL;
		arena += pa.vlen + 1 + (pa.k == PACK_EXT ? pa.nlen + 1 : 0);
		next += pa.k == PACK_EXT;
	}
	if (data_len != (size_t)(end - p) || (!has_data && data_len))
		return NULL;
	ev = event_alloc(next, arena + data_len);
	if (!ev)
		return NULL;
	p = start + 2;
	varint_get(&p, end, &nattrs);
	varint_get(&p, end, &data_len);
	for (i = 0; i < nattrs; i++) {
		int32_t ival = 0;

		unpack_attr(&p, end, &pa);
		/* The values were checked when the event was built: only the number is derived. */
		if (pa.type == CEB_TYPE_INTEGER && !ceb_integer_parse(pa.value, pa.vlen, &ival))
			goto out;
		if (pa.type == CEB_TYPE_BOOLEAN)
			ival = pa.vlen == 4;
		if (put(ev, pa.name, pa.k == PACK_EXT ? pa.nlen : strlen(pa.name),
		        pa.k == PACK_EXT ? -1 : pa.k, pa.type, pa.value, pa.vlen, ival) < 0)
			goto out;
	}
	if (has_data && ceb_event_set_data(ev, p, data_len, data_flags) < 0)
		goto out;
	ret = ev;
	ev = NULL;
out:
	ceb_event_unref(ev);
	return ret;
}

/* --- whole-event checks --- */

int ceb_event_validate(const struct ceb_event *ev, const struct ceb_limits *lim, char *errbuf,
                       size_t errlen)
{
	static const int required[] = {K_SPECVERSION, K_ID, K_SOURCE, K_TYPE};
	const struct ceb_attr *a;
	char ex[48];
	size_t i, n, size;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		a = &ev->known[required[i]];
		if (!(ev->known_mask & (1u << required[i]))) {
			ceb_seterr(errbuf, errlen, "missing required attribute '%s'", a->name);
			return CEB_EINVAL;
		}
		if (a->len == 0) {
			ceb_seterr(errbuf, errlen, "attribute '%s': must not be empty", a->name);
			return CEB_EINVAL;
		}
	}
	a = &ev->known[K_SPECVERSION];
	/* 0.3 too: Knative's channels take it and must deliver it unchanged */
	if (a->len != 3 || (memcmp(a->value, "1.0", 3) != 0 && memcmp(a->value, "0.3", 3) != 0)) {
		ceb_seterr(errbuf, errlen,
		           "attribute 'specversion': '%s' is not supported, only '1.0' and '0.3'",
		           ceb_excerpt(ex, sizeof(ex), a->value, a->len));
		return CEB_EINVAL;
	}
	if (!lim)
		return 0;
	n = ceb_event_attr_count(ev);
	if (n > lim->max_attrs) {
		ceb_seterr(errbuf, errlen, "too many attributes: %zu (limit %zu)", n,
		           lim->max_attrs);
		return CEB_EINVAL;
	}
	/* in ceb_event_attr_at()'s order, without its walk from the start for each */
	for (i = 0; i < K_COUNT + ev->next; i++) {
		if (i < K_COUNT && !(ev->known_mask & (1u << i)))
			continue;
		a = i < K_COUNT ? &ev->known[i] : &ev->ext[i - K_COUNT];
		if (a->len > lim->max_value_len) {
			ceb_seterr(errbuf, errlen, "attribute '%s': value is %zu bytes (limit %zu)",
			           a->name, a->len, lim->max_value_len);
			return CEB_EINVAL;
		}
	}
	size = ceb_event_size(ev);
	if (size > lim->max_event_size) {
		ceb_seterr(errbuf, errlen, "event is %zu bytes (limit %zu)", size,
		           lim->max_event_size);
		return CEB_ETOOBIG;
	}
	return 0;
}

bool ceb_event_equal(const struct ceb_event *a, const struct ceb_event *b)
{
	const struct ceb_attr *x, *y;
	size_t i, n;

	n = ceb_event_attr_count(a);
	if (n != ceb_event_attr_count(b))
		return false;
	for (i = 0; i < n; i++) {
		x = ceb_event_attr_at(a, i);
		y = ceb_event_get(b, x->name);
		if (!y || x->type != y->type || x->len != y->len ||
		    memcmp(x->value, y->value, x->len))
			return false;
	}
	if (a->has_data != b->has_data || a->data_len != b->data_len)
		return false;
	return a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0;
}
