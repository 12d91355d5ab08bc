/* The CloudEvents 1.0.2 event model: typed attributes with their canonical strings, data as bytes.
 * Events are reference-counted; once ingress accepted one it is immutable and shared by every Trigger. */
#ifndef CEB_EVENT_H
#define CEB_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CloudEvents type system (core spec, "Type System"). */
enum ceb_type {
	CEB_TYPE_STRING = 0,
	CEB_TYPE_INTEGER,
	CEB_TYPE_BOOLEAN,
	CEB_TYPE_BINARY,
	CEB_TYPE_URI,
	CEB_TYPE_URIREF,
	CEB_TYPE_TIMESTAMP,
};

/* One attribute. Every value keeps its canonical string (what a binding puts on the wire). */
struct ceb_attr {
	const char *name;  /* [a-z0-9]+, never "data" */
	const char *value; /* canonical string, NUL-terminated: "true", "42", RFC 3339... */
	size_t len;        /* strlen(value) */
	enum ceb_type type;
	int32_t ival; /* the value of an Integer; 1 or 0 for a Boolean; 0 otherwise */
};

/* Limits applied while decoding untrusted input. */
struct ceb_limits {
	size_t max_event_size; /* bytes of one event on the wire (body + ce- headers); default 1 MiB */
	size_t max_attrs;      /* attributes per event, extensions included; default 64 */
	size_t max_value_len;  /* bytes of one attribute value; default 4096 */
	size_t max_json_depth; /* nesting of a JSON document, data included; default 64 */
	size_t max_batch;      /* events in one batch; default 100 */
};

extern const struct ceb_limits ceb_limits_default;

struct ceb_event;

/* Data flags: how the data bytes came in, so that encoders can write them back faithfully. */
enum {
	CEB_DATA_JSON = 1 << 0, /* the bytes are a JSON text (from a JSON-format `data` member whose
				   datacontenttype is JSON or absent) */
	CEB_DATA_BASE64 =
	        1 << 1, /* the bytes came from a JSON-format `data_base64` member: the JSON
				     encoder writes them back as `data_base64`, whatever their content */
};

/* A new empty, mutable event with refcount 1. NULL when out of memory. */
struct ceb_event *ceb_event_new(void);
/* A mutable deep copy (refcount 1), for changing attributes of a shared event. NULL on ENOMEM. */
struct ceb_event *ceb_event_clone(const struct ceb_event *ev);
/* Reference counting; thread-safe. unref frees at zero; accepts NULL. */
struct ceb_event *ceb_event_ref(struct ceb_event *ev);
void ceb_event_unref(struct ceb_event *ev);

/* Set an attribute from its canonical string (len bytes, not necessarily NUL-terminated), as the given
 * type. The name and the value are checked (naming rules, type syntax, Integer range, String
 * characters); on failure returns CEB_EINVAL and writes a sender-facing reason to errbuf, e.g.
 * "attribute 'time': not an RFC 3339 timestamp". The known attributes (id, source, specversion, type,
 * datacontenttype, dataschema, subject, time) always take their spec type, whatever `type` says.
 * Replaces an existing attribute of the same name. The event copies name and value. */
int ceb_event_set(struct ceb_event *ev, const char *name, enum ceb_type type, const char *value,
                  size_t len, char *errbuf, size_t errlen);
/* The same with the name's length given (strlen(name), which the caller knows). */
int ceb_event_set_n(struct ceb_event *ev, const char *name, size_t nlen, enum ceb_type type,
                    const char *value, size_t len, char *errbuf, size_t errlen);
int ceb_event_set_int(struct ceb_event *ev, const char *name, int32_t v);
int ceb_event_set_bool(struct ceb_event *ev, const char *name, bool v);
/* Remove an attribute; 0 if removed, CEB_ENOTFOUND if absent. */
int ceb_event_unset(struct ceb_event *ev, const char *name);

/* Set the data: set_data copies, take_data takes ownership of a malloc'd buffer (also on failure).
 * flags: CEB_DATA_*. data may be NULL with len 0 for "no data". */
int ceb_event_set_data(struct ceb_event *ev, const void *data, size_t len, unsigned flags);
int ceb_event_take_data(struct ceb_event *ev, void *data, size_t len, unsigned flags);

/* Look-ups; pointers stay valid while the caller holds a reference and nobody mutates the event. */
const struct ceb_attr *ceb_event_get(const struct ceb_event *ev, const char *name);
/* The same with the name's length given (name need not be NUL-terminated). */
const struct ceb_attr *ceb_event_get_n(const struct ceb_event *ev, const char *name, size_t nlen);
/* Attributes in a stable order: specversion, id, source, type, then the optional ones, then the
 * extensions in the order they were set. */
size_t ceb_event_attr_count(const struct ceb_event *ev);
const struct ceb_attr *ceb_event_attr_at(const struct ceb_event *ev, size_t i);
/* The data bytes (NULL when the event has none) and their flags. */
const void *ceb_event_data(const struct ceb_event *ev, size_t *len);
bool ceb_event_has_data(const struct ceb_event *ev);
unsigned ceb_event_data_flags(const struct ceb_event *ev);
/* The media type a binding should send the data as: datacontenttype, or "application/json" when the
 * data is JSON with no datacontenttype, or NULL. */
const char *ceb_event_content_type(const struct ceb_event *ev);
/* An estimate of the wire size (attributes plus data), used for limits and memory accounting. */
size_t ceb_event_size(const struct ceb_event *ev);

/* The packed form: attributes and data in one flat run of bytes with no pointers and no slack,
 * about the event's wire size, for a store that keeps many events (the memory channel packs what
 * it queues and unpacks what it hands out). packed_size is the bytes pack writes into buf; unpack
 * builds a new event (refcount 1, owned by the caller) from exactly those bytes, or NULL when out
 * of memory or when they are not a packed event. Any thread; pack reads ev only. */
size_t ceb_event_packed_size(const struct ceb_event *ev);
void ceb_event_pack(const struct ceb_event *ev, void *buf);
struct ceb_event *ceb_event_unpack(const void *buf, size_t len);

/* Check the whole event against CloudEvents 1.0.2: required attributes present and non-empty,
 * specversion "1.0", and the limits in lim (may be NULL). 0 or CEB_EINVAL / CEB_ETOOBIG with a
 * reason in errbuf. */
int ceb_event_validate(const struct ceb_event *ev, const struct ceb_limits *lim, char *errbuf,
                       size_t errlen);

/* Same attributes (names, types, canonical values; extensions in any order), both with data or both
 * without, and byte-identical data. Data flags are not compared. For tests. */
bool ceb_event_equal(const struct ceb_event *a, const struct ceb_event *b);

/* Helpers used by the bindings. */
/* true if the media type (parameters ignored, case-insensitive) is application/json, * /json or
 * * / *+json. NULL is false. */
bool ceb_media_type_is_json(const char *ct);
/* The longest attribute name accepted (the spec advises 20 and requires none). */
#define CEB_ATTR_NAME_MAX 64
/* An attribute name: one or more of [a-z0-9], not "data", at most CEB_ATTR_NAME_MAX bytes. */
bool ceb_attr_name_valid(const char *name, size_t len);
/* true if s is valid UTF-8 (no overlong forms, no surrogates). */
bool ceb_utf8_valid(const char *s, size_t len);
/* Syntax checks of the CloudEvents types, for other modules that take values from users (no
 * allocation, any thread): an RFC 3339 date-time with real calendar ranges (leap years, leap second),
 * an RFC 3986 absolute URI (scheme ":" ..., fragment allowed) or URI-reference, an RFC 2046 media type
 * `type/subtype *(; param=value)`, a canonical Integer `-?(0|[1-9][0-9]*)` within int32 (stored in
 * *v when v is not NULL). */
bool ceb_timestamp_valid(const char *s, size_t len);
bool ceb_uri_valid(const char *s, size_t len);
bool ceb_uriref_valid(const char *s, size_t len);
bool ceb_media_type_valid(const char *s, size_t len);
bool ceb_integer_parse(const char *s, size_t len, int32_t *v);
/* The String rule of the type system for attribute `name` (valid UTF-8, no control characters, no
 * noncharacters): 0, or CEB_EINVAL with a reason in errbuf. Any thread. */
int ceb_string_check(const char *name, const char *s, size_t len, char *errbuf, size_t errlen);
/* The value of a hexadecimal digit (either case), or -1: percent-encoding and JSON \u escapes. */
static inline int ceb_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
