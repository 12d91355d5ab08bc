/* The CloudEvents JSON format, encoding: an event (or a batch) as one JSON object with the
 * attributes first and the data as JSON, a string or data_base64, whichever keeps it exact. */
#include <stdio.h>
#include <string.h>

#include "broker/ce/base64.h"
#include "broker/ce/json_format.h"
#include "broker/error.h"

int ceb_json_put_string(struct ceb_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const char *end, *run;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};
	unsigned char c;

	if (!s)
		s = "";
	end = s + len;

	ceb_buf_putc(out, '"');
	while (s < end) {
		run = s;
		while (s < end && (unsigned char)*s >= 0x20 && *s != '"' && *s != '\\')
			s++;
		ceb_buf_append(out, run, (size_t)(s - run));
		if (s == end)
			break;
		c = (unsigned char)*s++;
		switch (c) {
		case '"': ceb_buf_append(out, "\\\"", 2); break;
		case '\\': ceb_buf_append(out, "\\\\", 2); break;
		case '\n': ceb_buf_append(out, "\\n", 2); break;
		case '\r': ceb_buf_append(out, "\\r", 2); break;
		case '\t': ceb_buf_append(out, "\\t", 2); break;
		case '\b': ceb_buf_append(out, "\\b", 2); break;
		case '\f': ceb_buf_append(out, "\\f", 2); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			ceb_buf_append(out, esc, 6);
		}
	}
	ceb_buf_putc(out, '"');
	return out->failed ? CEB_ENOMEM : 0;
}

enum data_form {
	DATA_NONE,
	DATA_RAW,
	DATA_STRING,
	DATA_BASE64
};

/* How the data goes into JSON; depth is the nesting the envelope adds around `data`. */
static enum data_form data_form(const struct ceb_event *ev, size_t depth)
{
	const struct ceb_attr *ct = ceb_event_get(ev, "datacontenttype");
	unsigned flags = ceb_event_data_flags(ev);
	size_t len, max = ceb_limits_default.max_json_depth;
	const char *data;

	if (!ceb_event_has_data(ev))
		return DATA_NONE;
	data = ceb_event_data(ev, &len);
	if (flags & CEB_DATA_BASE64)
		return DATA_BASE64;
	/* The data must decode again under the default depth limit, inside the envelope. */
	if (ct ? ceb_media_type_is_json(ct->value) : (flags & CEB_DATA_JSON))
		return max > depth && ceb_json_valid(data, len, max - depth) ? DATA_RAW
		                                                             : DATA_BASE64;
	if (ct && ceb_utf8_valid(data, len))
		return DATA_STRING;
	return DATA_BASE64;
}

static bool v03(const struct ceb_event *ev)
{
	const struct ceb_attr *sv = ceb_event_get(ev, "specversion");

	return sv && !strcmp(sv->value, "0.3");
}

static int encode_event(const struct ceb_event *ev, size_t depth, struct ceb_buf *out)
{
	const struct ceb_attr *a;
	const char *data;
	size_t i, n, len;

	ceb_buf_putc(out, '{');
	n = ceb_event_attr_count(ev);
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(ev, i);
		if (i)
			ceb_buf_putc(out, ',');
		ceb_json_put_string(out, a->name, strlen(a->name));
		ceb_buf_putc(out, ':');
		if (a->type == CEB_TYPE_INTEGER || a->type == CEB_TYPE_BOOLEAN)
			ceb_buf_append(out, a->value, a->len);
		else
			ceb_json_put_string(out, a->value, a->len);
	}
	data = ceb_event_data(ev, &len);
	switch (data_form(ev, depth)) {
	case DATA_NONE: break;
	case DATA_RAW:
		ceb_buf_puts(out, n ? ",\"data\":" : "\"data\":");
		ceb_buf_append(out, data, len);
		break;
	case DATA_STRING:
		ceb_buf_puts(out, n ? ",\"data\":" : "\"data\":");
		ceb_json_put_string(out, data, len);
		break;
	case DATA_BASE64:
		if (v03(ev)) {
			/* 0.3 has no data_base64: a Base64 string in data, which
			 * datacontentencoding announces */
			if (!ceb_event_get(ev, "datacontentencoding"))
				ceb_buf_puts(out, n ? ",\"datacontentencoding\":\"base64\""
				                    : "\"datacontentencoding\":\"base64\"");
			ceb_buf_puts(out, ",\"data\":\"");
			ceb_base64_encode(data, len, out);
			ceb_buf_putc(out, '"');
			break;
		}
		ceb_buf_puts(out, n ? ",\"data_base64\":\"" : "\"data_base64\":\"");
		ceb_base64_encode(data, len, out);
		ceb_buf_putc(out, '"');
		break;
	}
	ceb_buf_putc(out, '}');
	return out->failed ? CEB_ENOMEM : 0;
}

int ceb_json_encode(const struct ceb_event *ev, struct ceb_buf *out)
{
	return encode_event(ev, 1, out);
}

int ceb_json_encode_batch(struct ceb_event *const *evs, size_t n, struct ceb_buf *out)
{
	ceb_buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			ceb_buf_putc(out, ',');
		encode_event(evs[i], 2, out);
	}
	ceb_buf_putc(out, ']');
	return out->failed ? CEB_ENOMEM : 0;
}
