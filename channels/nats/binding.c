/* The CloudEvents NATS binding and NatsSource's mapping of plain messages. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"
#include "broker/error.h"
#include "channels/nats/binding.h"

const struct ceb_limits ceb_nats_limits = {
        .max_event_size = (64u << 20) + (64u << 10),
        .max_attrs = 1024,
        .max_value_len = 1u << 20,
        .max_json_depth = 128,
        .max_batch = 1,
};

static int set_enc(natsMsg *msg, const char *name, const char *v, size_t len, struct ceb_buf *b)
{
	/* nats.c drops a header with an empty value when it reads one: write the empty
	 * quoted-string instead, which the decoding (unquote, then percent-decode) makes empty
	 * again; a '"' in a value is always percent-encoded, so nothing else reads as it. */
	if (len == 0)
		return natsMsgHeader_Add(msg, name, "\"\"") == NATS_OK ? 0 : CEB_ENOMEM;
	b->len = 0;
	if (ceb_percent_encode(v, len, b) < 0 || ceb_buf_putc(b, '\0') < 0)
		return CEB_ENOMEM;
	return natsMsgHeader_Add(msg, name, b->p) == NATS_OK ? 0 : CEB_ENOMEM;
}

int ceb_nats_set_headers(natsMsg *msg, const struct ceb_event *ev)
{
	struct ceb_buf b = CEB_BUF_INIT;
	const struct ceb_attr *src = ceb_event_get(ev, "source"), *id = ceb_event_get(ev, "id");
	char name[80];
	int rc = 0;

	/* Every attribute as a ce- header, datacontenttype too (ce-datacontenttype, unlike HTTP's
	 * Content-Type: the NATS binding's rule). */
	for (size_t i = 0; i < ceb_event_attr_count(ev) && !rc; i++) {
		const struct ceb_attr *a = ceb_event_attr_at(ev, i);
		snprintf(name, sizeof(name), "ce-%s", a->name);
		rc = set_enc(msg, name, a->value, a->len, &b);
	}
	if (!rc && src && id) {
		b.len = 0;
		if (ceb_percent_encode(src->value, src->len, &b) < 0 || ceb_buf_putc(&b, ' ') < 0 ||
		    ceb_percent_encode(id->value, id->len, &b) < 0 || ceb_buf_putc(&b, '\0') < 0 ||
		    natsMsgHeader_Set(msg, "Nats-Msg-Id", b.p) != NATS_OK)
			rc = CEB_ENOMEM;
	}
	ceb_buf_free(&b);
	return rc;
}

static const char *header(natsMsg *msg, const char *name)
{
	const char *v = NULL;

	return natsMsgHeader_Get(msg, name, &v) == NATS_OK ? v : NULL;
}

/* A case-insensitive look-up: NATS headers keep the case their writer chose. */
static const char *header_ci(natsMsg *msg, const char *name)
{
	const char **keys = NULL, *v = NULL;
	int n = 0;

	if ((v = header(msg, name)))
		return v;
	if (natsMsgHeader_Keys(msg, &keys, &n) != NATS_OK)
		return NULL;
	for (int i = 0; i < n && !v; i++)
		if (strcasecmp(keys[i], name) == 0)
			v = header(msg, keys[i]);
	free((void *)keys);
	return v;
}

static int decode_binary(natsMsg *msg, const char *ct, struct ceb_event **out, char *errbuf,
                         size_t errlen)
{
	struct ceb_event *ev = ceb_event_new();
	struct ceb_buf b = CEB_BUF_INIT;
	const char **keys = NULL;
	const char *data = natsMsg_GetData(msg);
	int n = 0, len = natsMsg_GetDataLength(msg), rc = CEB_ENOMEM;
	char attr[80];

	if (!ev)
		goto fail;
	if (natsMsgHeader_Keys(msg, &keys, &n) != NATS_OK)
		n = 0;
	for (int i = 0; i < n; i++) {
		const char **vals = NULL;
		size_t nlen = strlen(keys[i]);
		int nv = 0;
		if (nlen <= 3 || strncasecmp(keys[i], "ce-", 3) != 0)
			continue;
		if (nlen - 3 >= sizeof(attr)) {
			snprintf(errbuf, errlen, "header %.40s...: name too long", keys[i]);
			rc = CEB_EINVAL;
			goto fail;
		}
		for (size_t k = 3; k <= nlen; k++)
			attr[k - 3] =
			        (char)(keys[i][k] >= 'A' && keys[i][k] <= 'Z' ? keys[i][k] + 32
			                                                      : keys[i][k]);
		/* nats.c lists a header with an empty value but has no value for it */
		if (natsMsgHeader_Values(msg, keys[i], &vals, &nv) != NATS_OK || nv < 1) {
			free((void *)vals);
			vals = NULL;
		}
		b.len = 0;
		rc = ceb_percent_decode(vals ? vals[0] : "", vals ? strlen(vals[0]) : 0, &b);
		free((void *)vals);
		if (rc == 0)
			rc = ceb_event_set(ev, attr, CEB_TYPE_STRING, b.p ? b.p : "", b.len, errbuf,
			                   errlen);
		else if (rc == CEB_EINVAL)
			snprintf(errbuf, errlen, "header %s: bad percent-encoding", keys[i]);
		if (rc < 0)
			goto fail;
	}
	/* ce-datacontenttype is the binding's; a Content-Type stands in for it where it is missing
	 * (what cebroker wrote before, and other writers that follow HTTP's rule) */
	if (ct && !ceb_event_get(ev, "datacontenttype") &&
	    (rc = ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, ct, strlen(ct), errbuf,
	                        errlen)) < 0)
		goto fail;
	if (len > 0) {
		unsigned flags = 0;
		const struct ceb_attr *dct = ceb_event_get(ev, "datacontenttype");
		if (dct && ceb_media_type_is_json(dct->value) &&
		    ceb_json_valid(data, (size_t)len, ceb_nats_limits.max_json_depth))
			flags = CEB_DATA_JSON;
		if ((rc = ceb_event_set_data(ev, data, (size_t)len, flags)) < 0)
			goto fail;
	}
	if ((rc = ceb_event_validate(ev, &ceb_nats_limits, errbuf, errlen)) < 0)
		goto fail;
	free((void *)keys);
	ceb_buf_free(&b);
	*out = ev;
	return 0;
fail:
	if (rc == CEB_ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	free((void *)keys);
	ceb_buf_free(&b);
	ceb_event_unref(ev);
	return rc;
}

int ceb_nats_decode(natsMsg *msg, struct ceb_event **out, char *errbuf, size_t errlen)
{
	const char *ct = header_ci(msg, "Content-Type");
	const char *data = natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);

	if (header_ci(msg, "ce-specversion"))
		return decode_binary(msg, ct, out, errbuf, errlen);
	if (ct && strncasecmp(ct, "application/cloudevents", 23) == 0) {
		if (strncasecmp(ct + 23, "+json", 5) != 0) {
			snprintf(errbuf, errlen, "structured mode with a format other than JSON");
			return CEB_EUNSUPPORTED;
		}
		return ceb_json_decode(data ? data : "", (size_t)(len > 0 ? len : 0),
		                       &ceb_nats_limits, out, errbuf, errlen);
	}
	/* No Content-Type, or a JSON one: a structured CloudEvent when the body is one. */
	if ((!ct || ceb_media_type_is_json(ct)) && len > 0 && data[0] == '{' &&
	    ceb_json_decode(data, (size_t)len, &ceb_nats_limits, out, errbuf, errlen) == 0)
		return 0;
	snprintf(errbuf, errlen, "not a CloudEvent (no ce-specversion header, no structured body)");
	return CEB_ENOTFOUND;
}

static int set_str(struct ceb_event *ev, const char *name, enum ceb_type t, const char *v)
{
	char err[128];

	return ceb_event_set(ev, name, t, v, strlen(v), err, sizeof(err));
}

/* Headers as natsheader<name> extensions: the name lower-cased, characters other than [a-z0-9]
 * dropped; the binding's own headers are left out. */
static int set_headers(struct ceb_event *ev, natsMsg *msg)
{
	const char **keys = NULL;
	int n = 0;
	char name[72], err[128];

	if (natsMsgHeader_Keys(msg, &keys, &n) != NATS_OK)
		return 0;
	for (int i = 0; i < n; i++) {
		size_t k = 10;
		const char *v = header(msg, keys[i]);
		if (!v || strcasecmp(keys[i], "Content-Type") == 0 ||
		    strcasecmp(keys[i], "Nats-Msg-Id") == 0)
			continue;
		memcpy(name, "natsheader", 10);
		for (const char *c = keys[i]; *c && k < sizeof(name) - 1; c++) {
			if (*c >= 'A' && *c <= 'Z')
				name[k++] = (char)(*c + 32);
			else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
				name[k++] = *c;
		}
		name[k] = '\0';
		if (k == 10 || !ceb_attr_name_valid(name, k))
			continue;
		if (ceb_event_set(ev, name, CEB_TYPE_STRING, v, strlen(v), err, sizeof(err)) ==
		    CEB_ENOMEM) {
			free((void *)keys);
			return CEB_ENOMEM;
		}
	}
	free((void *)keys);
	return 0;
}

int ceb_nats_map_plain(natsMsg *msg, const char *ns, const char *name, const char *stream,
                       uint64_t seq, struct ceb_event **out)
{
	static atomic_uint_fast64_t counter;
	struct ceb_event *ev = ceb_event_new();
	const char *ct = header_ci(msg, "Content-Type");
	const char *data = natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);
	char buf[1024];

	if (!ev)
		return CEB_ENOMEM;
	if (stream) {
		snprintf(buf, sizeof(buf), "%s:%" PRIu64, stream, seq);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(buf, sizeof(buf), "%llx-%lx-%" PRIxFAST64, (unsigned long long)ts.tv_sec,
		         (long)ts.tv_nsec, atomic_fetch_add(&counter, 1));
	}
	if (set_str(ev, "id", CEB_TYPE_STRING, buf) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "/apis/v1alpha1/namespaces/%s/natssources/%s", ns, name);
	if (set_str(ev, "source", CEB_TYPE_URIREF, buf) < 0 ||
	    set_str(ev, "specversion", CEB_TYPE_STRING, "1.0") < 0 ||
	    set_str(ev, "type", CEB_TYPE_STRING, "dev.cebroker.nats.message") < 0 ||
	    set_str(ev, "subject", CEB_TYPE_STRING, natsMsg_GetSubject(msg)) < 0)
		goto fail;
	if (set_headers(ev, msg) < 0)
		goto fail;
	if (ct && ceb_media_type_valid(ct, strlen(ct)) &&
	    set_str(ev, "datacontenttype", CEB_TYPE_STRING, ct) == CEB_ENOMEM)
		goto fail;
	if (len > 0) {
		bool json = ceb_json_valid(data, (size_t)len, ceb_nats_limits.max_json_depth);
		const struct ceb_attr *dct = ceb_event_get(ev, "datacontenttype");
		if (!dct && json &&
		    set_str(ev, "datacontenttype", CEB_TYPE_STRING, "application/json") < 0)
			goto fail;
		dct = ceb_event_get(ev, "datacontenttype");
		if (ceb_event_set_data(ev, data, (size_t)len,
		                       json && dct && ceb_media_type_is_json(dct->value)
		                               ? CEB_DATA_JSON
		                               : 0) < 0)
			goto fail;
	}
	*out = ev;
	return 0;
fail:
	ceb_event_unref(ev);
	return CEB_ENOMEM;
}
