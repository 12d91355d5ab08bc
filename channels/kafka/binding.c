/* The CloudEvents Kafka protocol binding and Knative's KafkaSource mapping of plain records. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/ce/base64.h"
#include "broker/error.h"
#include "broker/ce/json_format.h"
#include "channels/kafka/binding.h"

const struct ceb_limits ceb_kafka_limits = {
        .max_event_size = (64u << 20) + (64u << 10),
        .max_attrs = 1024,
        .max_value_len = 1u << 20,
        .max_json_depth = 128,
        .max_batch = 1,
};

#define STRUCTURED_CT "application/cloudevents+json; charset=UTF-8"

rd_kafka_headers_t *ceb_kafka_binary_headers(const struct ceb_event *ev)
{
	size_t n = ceb_event_attr_count(ev);
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n + 1);
	const char *ct = ceb_event_content_type(ev);
	char name[80];

	if (!hdrs)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct ceb_attr *a = ceb_event_attr_at(ev, i);
		/* datacontenttype travels as content-type only */
		if (strcmp(a->name, "datacontenttype") == 0)
			continue;
		snprintf(name, sizeof(name), "ce_%s", a->name);
		rd_kafka_header_add(hdrs, name, -1, a->value, (ssize_t)a->len);
	}
	if (ct)
		rd_kafka_header_add(hdrs, "content-type", -1, ct, -1);
	return hdrs;
}

int ceb_kafka_structured(const struct ceb_event *ev, struct ceb_buf *value,
                         rd_kafka_headers_t **hdrs)
{
	*hdrs = NULL;
	if (ceb_json_encode(ev, value) < 0 || !(*hdrs = rd_kafka_headers_new(1)))
		return CEB_ENOMEM;
	rd_kafka_header_add(*hdrs, "content-type", -1, STRUCTURED_CT, -1);
	return 0;
}

/* The content-type header of a record, or NULL. */
static const char *record_ct(rd_kafka_headers_t *hdrs, size_t *len)
{
	const char *hname;
	const void *hval;
	size_t hlen;

	for (size_t i = 0; hdrs && rd_kafka_header_get_all(hdrs, i, &hname, &hval, &hlen) == 0;
	     i++) {
		if (strcasecmp(hname, "content-type") == 0 && hval) {
			*len = hlen;
			return hval;
		}
	}
	return NULL;
}

static rd_kafka_headers_t *record_headers(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	return hdrs;
}

bool ceb_kafka_is_cloudevent(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = record_headers(m);
	const void *v;
	size_t len = 0;
	const char *ct = record_ct(hdrs, &len);

	if (ct && len >= 23 && strncasecmp(ct, "application/cloudevents", 23) == 0)
		return true;
	return hdrs && (rd_kafka_header_get_last(hdrs, "ce_specversion", &v, &len) == 0 ||
	                rd_kafka_header_get_last(hdrs, "ce-specversion", &v, &len) == 0);
}

static int record_binary(const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs, const char *ct,
                         size_t ctlen, struct ceb_event **out, char *errbuf, size_t errlen)
{
	struct ceb_event *ev = ceb_event_new();
	const char *hname;
	const void *hval;
	size_t hlen;
	char attr[80];
	int rc = CEB_ENOMEM;

	if (!ev)
		goto fail;
	for (size_t i = 0; hdrs && rd_kafka_header_get_all(hdrs, i, &hname, &hval, &hlen) == 0;
	     i++) {
		size_t nlen = strlen(hname);
		if (nlen <= 3 || strncasecmp(hname, "ce_", 3) != 0)
			continue;
		if (nlen - 3 >= sizeof(attr)) {
			snprintf(errbuf, errlen, "header %.40s...: name too long", hname);
			rc = CEB_EINVAL;
			goto fail;
		}
		for (size_t k = 3; k <= nlen; k++)
			attr[k - 3] = (char)(hname[k] >= 'A' && hname[k] <= 'Z' ? hname[k] + 32
			                                                        : hname[k]);
		if (strcmp(attr, "datacontenttype") == 0)
			continue; /* the binding carries it as content-type */
		rc = ceb_event_set(ev, attr, CEB_TYPE_STRING, hval ? hval : "", hval ? hlen : 0,
		                   errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	if (ct) {
		rc = ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, ct, ctlen, errbuf,
		                   errlen);
		if (rc < 0)
			goto fail;
	}
	if (m->payload) {
		unsigned flags = 0;
		const struct ceb_attr *dct = ceb_event_get(ev, "datacontenttype");
		if (dct && ceb_media_type_is_json(dct->value) &&
		    ceb_json_valid(m->payload, m->len, ceb_kafka_limits.max_json_depth))
			flags = CEB_DATA_JSON;
		rc = ceb_event_set_data(ev, m->payload, m->len, flags);
		if (rc < 0)
			goto fail;
	}
	rc = ceb_event_validate(ev, &ceb_kafka_limits, errbuf, errlen);
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

int ceb_kafka_decode(const rd_kafka_message_t *m, struct ceb_event **out, char *errbuf,
                     size_t errlen)
{
	rd_kafka_headers_t *hdrs = record_headers(m);
	size_t ctlen = 0;
	const char *ct = record_ct(hdrs, &ctlen);

	if (ct && ctlen >= 23 && strncasecmp(ct, "application/cloudevents", 23) == 0) {
		if (ctlen >= 29 && strncasecmp(ct + 23, "-batch", 6) == 0) {
			snprintf(errbuf, errlen, "batched mode is not part of the Kafka binding");
			return CEB_EUNSUPPORTED;
		}
		if (ctlen < 28 || strncasecmp(ct + 23, "+json", 5) != 0 ||
		    (ctlen > 28 && ct[28] != ';' && ct[28] != ' ')) {
			snprintf(errbuf, errlen, "structured mode with a format other than JSON");
			return CEB_EUNSUPPORTED;
		}
		if (!m->payload) {
			snprintf(errbuf, errlen, "structured mode record without a value");
			return CEB_EINVAL;
		}
		return ceb_json_decode(m->payload, m->len, &ceb_kafka_limits, out, errbuf, errlen);
	}
	return record_binary(m, hdrs, ct, ctlen, out, errbuf, errlen);
}

/* ---- KafkaSource: plain records ---- */

/* Set an extension as a String when the bytes make one, else as Binary (base64). */
static int set_text_or_bytes(struct ceb_event *ev, const char *name, const void *val, size_t len)
{
	struct ceb_buf b = CEB_BUF_INIT;
	char err[128];
	int rc;

	if (ceb_event_set(ev, name, CEB_TYPE_STRING, val ? val : "", val ? len : 0, err,
	                  sizeof(err)) == 0)
		return 0;
	if (ceb_base64_encode(val, len, &b) < 0) {
		ceb_buf_free(&b);
		return CEB_ENOMEM;
	}
	rc = ceb_event_set(ev, name, CEB_TYPE_BINARY, b.p ? b.p : "", b.len, err, sizeof(err));
	ceb_buf_free(&b);
	return rc == CEB_ENOMEM ? rc : 0;
}

static uint64_t be_uint(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The `key` extension as the key-type label asks; a key that does not fit (an int key of 3 bytes,
 * say) goes as byte-array rather than being lost. */
static int set_key(struct ceb_event *ev, const unsigned char *key, size_t len, enum ceb_key_type kt)
{
	char num[64], err[128];
	struct ceb_buf b = CEB_BUF_INIT;
	int rc;

	switch (kt) {
	case CEB_KEY_STRING: return set_text_or_bytes(ev, "key", key, len);
	case CEB_KEY_INT:
		if (len == 4) {
			return ceb_event_set_int(ev, "key", (int32_t)(uint32_t)be_uint(key, 4));
		} else if (len == 8) {
			int64_t v = (int64_t)be_uint(key, 8);
			if (v >= INT32_MIN && v <= INT32_MAX)
				return ceb_event_set_int(ev, "key", (int32_t)v);
			snprintf(num, sizeof(num), "%" PRId64, v);
			return ceb_event_set(ev, "key", CEB_TYPE_STRING, num, strlen(num), err,
			                     sizeof(err));
		}
		break;
	case CEB_KEY_FLOAT:
		if (len == 4) {
			uint32_t u = (uint32_t)be_uint(key, 4);
			float f;
			memcpy(&f, &u, sizeof(f));
			snprintf(num, sizeof(num), "%.9g", (double)f);
		} else if (len == 8) {
			uint64_t u = be_uint(key, 8);
			double d;
			memcpy(&d, &u, sizeof(d));
			snprintf(num, sizeof(num), "%.17g", d);
		} else {
			break;
		}
		return ceb_event_set(ev, "key", CEB_TYPE_STRING, num, strlen(num), err,
		                     sizeof(err));
	case CEB_KEY_BYTES: break;
	}
	if (ceb_base64_encode(key, len, &b) < 0) {
		ceb_buf_free(&b);
		return CEB_ENOMEM;
	}
	rc = ceb_event_set(ev, "key", CEB_TYPE_BINARY, b.p ? b.p : "", b.len, err, sizeof(err));
	ceb_buf_free(&b);
	return rc;
}

/* Headers as kafkaheader<name> extensions: the name lower-cased with characters other than
 * [a-z0-9] dropped (Knative's rule); names that end up empty or too long are left out. */
static int set_headers(struct ceb_event *ev, rd_kafka_headers_t *hdrs)
{
	const char *hname;
	const void *hval;
	size_t hlen;
	char name[72];

	for (size_t i = 0; hdrs && rd_kafka_header_get_all(hdrs, i, &hname, &hval, &hlen) == 0;
	     i++) {
		size_t n = 11;
		if (strcasecmp(hname, "content-type") == 0)
			continue; /* it is the datacontenttype */
		memcpy(name, "kafkaheader", 11);
		for (const char *c = hname; *c && n < sizeof(name) - 1; c++) {
			if (*c >= 'A' && *c <= 'Z')
				name[n++] = (char)(*c + 32);
			else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
				name[n++] = *c;
		}
		name[n] = '\0';
		if (n == 11 || !ceb_attr_name_valid(name, n))
			continue;
		if (set_text_or_bytes(ev, name, hval, hval ? hlen : 0) < 0)
			return CEB_ENOMEM;
	}
	return 0;
}

int ceb_kafka_map_record(const rd_kafka_message_t *m, const char *ns, const char *name,
                         enum ceb_key_type key_type, struct ceb_event **out)
{
	struct ceb_event *ev = ceb_event_new();
	rd_kafka_headers_t *hdrs = record_headers(m);
	const char *topic = rd_kafka_topic_name(m->rkt);
	char buf[1024], err[128];
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(m, &tstype);
	size_t ctlen = 0;
	const char *ct = record_ct(hdrs, &ctlen);
	int rc = CEB_ENOMEM;

	if (!ev)
		return CEB_ENOMEM;
	snprintf(buf, sizeof(buf), "partition:%d/offset:%" PRId64, (int)m->partition, m->offset);
	if (ceb_event_set(ev, "id", CEB_TYPE_STRING, buf, strlen(buf), err, sizeof(err)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "/apis/v1/namespaces/%s/kafkasources/%s#%s", ns, name, topic);
	if (ceb_event_set(ev, "source", CEB_TYPE_URIREF, buf, strlen(buf), err, sizeof(err)) < 0 ||
	    ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)) < 0 ||
	    ceb_event_set(ev, "type", CEB_TYPE_STRING, "dev.knative.kafka.event", 23, err,
	                  sizeof(err)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "partition:%d#%" PRId64, (int)m->partition, m->offset);
	if (ceb_event_set(ev, "subject", CEB_TYPE_STRING, buf, strlen(buf), err, sizeof(err)) < 0)
		goto fail;
	if (ts >= 0) {
		time_t secs = (time_t)(ts / 1000);
		struct tm tm;
		size_t n;
		gmtime_r(&secs, &tm);
		n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ts % 1000));
		ceb_event_set(ev, "time", CEB_TYPE_TIMESTAMP, buf, strlen(buf), err, sizeof(err));
	}
	if (m->key) {
		const struct ceb_attr *k;
		if (set_key(ev, m->key, m->key_len, key_type) == CEB_ENOMEM)
			goto fail;
		/* Knative also sets partitionkey to the key: a KafkaSink or Kafka Broker downstream
		 * then writes the record with the same key. */
		if ((k = ceb_event_get(ev, "key")) &&
		    ceb_event_set(ev, "partitionkey", CEB_TYPE_STRING, k->value, k->len, err,
		                  sizeof(err)) == CEB_ENOMEM)
			goto fail;
	}
	if (set_headers(ev, hdrs) < 0)
		goto fail;
	if (ct && ceb_media_type_valid(ct, ctlen)) {
		if (ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, ct, ctlen, err,
		                  sizeof(err)) == CEB_ENOMEM)
			goto fail;
	}
	if (m->payload) {
		unsigned flags = 0;
		const struct ceb_attr *dct = ceb_event_get(ev, "datacontenttype");
		bool json = ceb_json_valid(m->payload, m->len, ceb_kafka_limits.max_json_depth);
		if (!dct && json &&
		    ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, "application/json", 16,
		                  err, sizeof(err)) < 0)
			goto fail;
		dct = ceb_event_get(ev, "datacontenttype");
		if (json && dct && ceb_media_type_is_json(dct->value))
			flags = CEB_DATA_JSON;
		if (ceb_event_set_data(ev, m->payload, m->len, flags) < 0)
			goto fail;
	}
	*out = ev;
	return 0;
fail:
	ceb_event_unref(ev);
	return rc;
}
