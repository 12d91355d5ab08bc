/* The CloudEvents AMQP binding on AMQP 0-9-1 messages, and eventing-rabbitmq's mapping of plain
 * messages to CloudEvents (RabbitmqSource). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "broker/ce/json_format.h"
#include "broker/error.h"
#include "channels/amqp/binding.h"

const struct ceb_limits ceb_amqp_limits = {
        .max_event_size = (64u << 20) + (64u << 10),
        .max_attrs = 1024,
        .max_value_len = 1u << 20,
        .max_json_depth = 128,
        .max_batch = 1,
};

#define PREFIX     "cloudEvents_"
#define PREFIX_LEN 12
#define CE_JSON    "application/cloudevents+json"

static amqp_bytes_t bytes_of(const char *s, size_t len)
{
	return (amqp_bytes_t){.len = len, .bytes = (void *)s};
}

int ceb_amqp_encode(const struct ceb_event *ev, struct ceb_amqp_out *out)
{
	size_t n = ceb_event_attr_count(ev), off = 0;
	const char *ct = ceb_event_content_type(ev);
	const struct ceb_attr *id = ceb_event_get(ev, "id");

	memset(out, 0, sizeof(*out));
	out->hdr = calloc(n ? n : 1, sizeof(*out->hdr));
	out->names = malloc(n * (PREFIX_LEN + CEB_ATTR_NAME_MAX + 1) + 1);
	if (!out->hdr || !out->names)
		return CEB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct ceb_attr *a = ceb_event_attr_at(ev, i);
		amqp_table_entry_t *e = &out->hdr[out->nhdr];
		size_t len = strlen(a->name);

		if (strcmp(a->name, "datacontenttype") == 0)
			continue; /* the binding carries it as content_type */
		memcpy(out->names + off, PREFIX, PREFIX_LEN);
		memcpy(out->names + off + PREFIX_LEN, a->name, len);
		e->key = bytes_of(out->names + off, PREFIX_LEN + len);
		off += PREFIX_LEN + len;
		/* Integer and Boolean keep their AMQP type, so that a reader gets them typed back. */
		if (a->type == CEB_TYPE_INTEGER) {
			e->value.kind = AMQP_FIELD_KIND_I32;
			e->value.value.i32 = a->ival;
		} else if (a->type == CEB_TYPE_BOOLEAN) {
			e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
			e->value.value.boolean = a->ival != 0;
		} else {
			e->value.kind = AMQP_FIELD_KIND_UTF8;
			e->value.value.bytes = bytes_of(a->value, a->len);
		}
		out->nhdr++;
	}
	out->props._flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	out->props.headers.num_entries = (int)out->nhdr;
	out->props.headers.entries = out->hdr;
	out->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	if (ct) {
		out->props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		out->props.content_type = bytes_of(ct, strlen(ct));
	}
	if (id) {
		out->props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		out->props.message_id = bytes_of(id->value, id->len);
	}
	return 0;
}

void ceb_amqp_out_free(struct ceb_amqp_out *out)
{
	free(out->hdr);
	free(out->names);
	memset(out, 0, sizeof(*out));
}

/* The attribute a header names, lower-cased into attr (CEB_ATTR_NAME_MAX + 1 bytes): "cloudEvents_x",
 * "cloudEvents:x", "ce-x", "ce_x" and bare "x" all name x. False for x-* headers and names that are
 * no attribute name. */
static bool header_attr(const amqp_bytes_t *key, char *attr)
{
	const char *k = key->bytes;
	size_t len = key->len, skip = 0;

	if (len >= 2 && (k[0] == 'x' || k[0] == 'X') && k[1] == '-')
		return false;
	if (len > PREFIX_LEN && strncasecmp(k, "cloudEvents", 11) == 0 &&
	    (k[11] == '_' || k[11] == ':'))
		skip = PREFIX_LEN;
	else if (len > 3 && strncasecmp(k, "ce", 2) == 0 && (k[2] == '-' || k[2] == '_'))
		skip = 3;
	if (len - skip > CEB_ATTR_NAME_MAX)
		return false;
	for (size_t i = skip; i < len; i++)
		attr[i - skip] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
	attr[len - skip] = '\0';
	return ceb_attr_name_valid(attr, len - skip);
}

static const amqp_table_entry_t *find_header(const amqp_basic_properties_t *props, const char *attr)
{
	char a[CEB_ATTR_NAME_MAX + 1];

	if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < props->headers.num_entries; i++)
		if (header_attr(&props->headers.entries[i].key, a) && strcmp(a, attr) == 0)
			return &props->headers.entries[i];
	return NULL;
}

static bool structured_ct(const amqp_basic_properties_t *props)
{
	return (props->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) && props->content_type.len >= 23 &&
	       strncasecmp(props->content_type.bytes, "application/cloudevents", 23) == 0;
}

bool ceb_amqp_is_cloudevent(const amqp_basic_properties_t *props)
{
	return structured_ct(props) || find_header(props, "specversion") != NULL;
}

/* RFC 3339 in UTC for a time in seconds. */
static size_t rfc3339(uint64_t secs, char *buf, size_t sz)
{
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	return strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One header value as the attribute attr. Values of kinds that carry no scalar are skipped. */
static int set_header(struct ceb_event *ev, const char *attr, const amqp_field_value_t *v,
                      char *errbuf, size_t errlen)
{
	char num[64];
	int64_t i;

	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		return ceb_event_set(ev, attr, CEB_TYPE_STRING,
		                     v->value.bytes.bytes ? v->value.bytes.bytes : "",
		                     v->value.bytes.len, errbuf, errlen);
	case AMQP_FIELD_KIND_BOOLEAN: return ceb_event_set_bool(ev, attr, v->value.boolean != 0);
	case AMQP_FIELD_KIND_I8: i = v->value.i8; break;
	case AMQP_FIELD_KIND_U8: i = v->value.u8; break;
	case AMQP_FIELD_KIND_I16: i = v->value.i16; break;
	case AMQP_FIELD_KIND_U16: i = v->value.u16; break;
	case AMQP_FIELD_KIND_I32: i = v->value.i32; break;
	case AMQP_FIELD_KIND_U32: i = v->value.u32; break;
	case AMQP_FIELD_KIND_I64: i = v->value.i64; break;
	case AMQP_FIELD_KIND_U64:
		snprintf(num, sizeof(num), "%" PRIu64, v->value.u64);
		return ceb_event_set(ev, attr, CEB_TYPE_STRING, num, strlen(num), errbuf, errlen);
	case AMQP_FIELD_KIND_TIMESTAMP: {
		size_t n = rfc3339(v->value.u64, num, sizeof(num));
		return ceb_event_set(ev, attr, CEB_TYPE_TIMESTAMP, num, n, errbuf, errlen);
	}
	case AMQP_FIELD_KIND_F32:
		snprintf(num, sizeof(num), "%.9g", (double)v->value.f32);
		return ceb_event_set(ev, attr, CEB_TYPE_STRING, num, strlen(num), errbuf, errlen);
	case AMQP_FIELD_KIND_F64:
		snprintf(num, sizeof(num), "%.17g", v->value.f64);
		return ceb_event_set(ev, attr, CEB_TYPE_STRING, num, strlen(num), errbuf, errlen);
	default: return 0;
	}
	if (i >= INT32_MIN && i <= INT32_MAX && strcmp(attr, "id") && strcmp(attr, "specversion"))
		return ceb_event_set_int(ev, attr, (int32_t)i);
	snprintf(num, sizeof(num), "%" PRId64, i);
	return ceb_event_set(ev, attr, CEB_TYPE_STRING, num, strlen(num), errbuf, errlen);
}

static int set_data(struct ceb_event *ev, const amqp_bytes_t *body)
{
	const struct ceb_attr *dct = ceb_event_get(ev, "datacontenttype");
	unsigned flags = 0;

	if (!body->len)
		return 0;
	if (dct && ceb_media_type_is_json(dct->value) &&
	    ceb_json_valid(body->bytes, body->len, ceb_amqp_limits.max_json_depth))
		flags = CEB_DATA_JSON;
	return ceb_event_set_data(ev, body->bytes, body->len, flags);
}

static int decode_binary(const amqp_basic_properties_t *props, const amqp_bytes_t *body,
                         struct ceb_event **out, char *errbuf, size_t errlen)
{
	struct ceb_event *ev = ceb_event_new();
	const amqp_table_entry_t *hct = NULL;
	char attr[CEB_ATTR_NAME_MAX + 1];
	int rc = CEB_ENOMEM;

	if (!ev)
		goto fail;
	for (int i = 0; (props->_flags & AMQP_BASIC_HEADERS_FLAG) && i < props->headers.num_entries;
	     i++) {
		const amqp_table_entry_t *e = &props->headers.entries[i];

		if (e->key.len == 12 && strncasecmp(e->key.bytes, "content-type", 12) == 0)
			hct = e; /* what eventing-rabbitmq writes beside content_type */
		if (!header_attr(&e->key, attr))
			continue;
		rc = set_header(ev, attr, &e->value, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	if (props->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		rc = ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING,
		                   props->content_type.bytes, props->content_type.len, errbuf,
		                   errlen);
	else if (hct && !ceb_event_get(ev, "datacontenttype") &&
	         (hct->value.kind == AMQP_FIELD_KIND_UTF8 ||
	          hct->value.kind == AMQP_FIELD_KIND_BYTES))
		rc = ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING,
		                   hct->value.value.bytes.bytes, hct->value.value.bytes.len, errbuf,
		                   errlen);
	else
		rc = 0;
	if (rc < 0 || (rc = set_data(ev, body)) < 0)
		goto fail;
	rc = ceb_event_validate(ev, &ceb_amqp_limits, errbuf, errlen);
	if (rc < 0)
		goto fail;
	*out = ev;
	return 0;
fail:
	if (rc == CEB_ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	ceb_event_unref(ev);
	return rc;
}

int ceb_amqp_decode(const amqp_basic_properties_t *props, const amqp_bytes_t *body,
                    struct ceb_event **out, char *errbuf, size_t errlen)
{
	if (structured_ct(props)) {
		const char *ct = props->content_type.bytes;
		size_t len = props->content_type.len;

		if (len >= 29 && strncasecmp(ct + 23, "-batch", 6) == 0) {
			snprintf(errbuf, errlen, "batched mode is not part of the AMQP binding");
			return CEB_EUNSUPPORTED;
		}
		if (len < 28 || strncasecmp(ct + 23, "+json", 5) != 0 ||
		    (len > 28 && ct[28] != ';' && ct[28] != ' ')) {
			snprintf(errbuf, errlen, "structured mode with a format other than JSON");
			return CEB_EUNSUPPORTED;
		}
		return ceb_json_decode(body->bytes, body->len, &ceb_amqp_limits, out, errbuf,
		                       errlen);
	}
	if (!find_header(props, "specversion")) {
		snprintf(errbuf, errlen, "not a CloudEvent: no specversion header");
		return CEB_EINVAL;
	}
	return decode_binary(props, body, out, errbuf, errlen);
}

/* A random (version 4) UUID. */
static void uuid4(char out[37])
{
	unsigned char b[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, b, sizeof(b)) : -1;

	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof(b)) { /* no /dev/urandom: time and a counter, still unique */
		static unsigned long seq;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v[2] = {(uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
		                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED) ^
		                         (uint64_t)getpid()};
		memcpy(b, v, sizeof(b));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

int ceb_amqp_map_message(const amqp_basic_properties_t *props, const amqp_bytes_t *body,
                         const char *ns, const char *name, const char *queue,
                         struct ceb_event **out)
{
	struct ceb_event *ev = ceb_event_new();
	char buf[1024], err[128], id[37];
	const char *idv = id;
	size_t idlen;

	if (!ev)
		return CEB_ENOMEM;
	if ((props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && props->message_id.len) {
		idv = props->message_id.bytes;
		idlen = props->message_id.len;
	} else {
		uuid4(id);
		idlen = 36;
	}
	/* a message_id that is no valid String falls back to a new UUID */
	if (ceb_event_set(ev, "id", CEB_TYPE_STRING, idv, idlen, err, sizeof(err)) < 0) {
		uuid4(id);
		idv = id;
		idlen = 36;
		if (ceb_event_set(ev, "id", CEB_TYPE_STRING, idv, idlen, err, sizeof(err)) < 0)
			goto fail;
	}
	snprintf(buf, sizeof(buf), "/apis/v1/namespaces/%s/rabbitmqsources/%s#%s", ns, name, queue);
	if (ceb_event_set(ev, "source", CEB_TYPE_URIREF, buf, strlen(buf), err, sizeof(err)) < 0 ||
	    ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)) < 0 ||
	    ceb_event_set(ev, "type", CEB_TYPE_STRING, "dev.knative.rabbitmq.event", 26, err,
	                  sizeof(err)) < 0 ||
	    ceb_event_set(ev, "subject", CEB_TYPE_STRING, idv, idlen, err, sizeof(err)) < 0)
		goto fail;
	if (props->_flags & AMQP_BASIC_TIMESTAMP_FLAG) {
		size_t n = rfc3339(props->timestamp, buf, sizeof(buf));
		ceb_event_set(ev, "time", CEB_TYPE_TIMESTAMP, buf, n, err, sizeof(err));
	}
	if ((props->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) &&
	    ceb_media_type_valid(props->content_type.bytes, props->content_type.len) &&
	    ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, props->content_type.bytes,
	                  props->content_type.len, err, sizeof(err)) == CEB_ENOMEM)
		goto fail;
	if (set_data(ev, body) < 0)
		goto fail;
	*out = ev;
	return 0;
fail:
	ceb_event_unref(ev);
	return CEB_ENOMEM;
}
