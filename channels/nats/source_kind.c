/* NatsSource (sources.cebroker.dev/v1alpha1): no Knative kind exists, so it is cebroker's own,
 * shaped like Knative's sources (sink, ceOverrides, delivery) with Argo Events' NATS field names
 * (url, subject, queue). Without a jetstream block it is a core NATS subscription (at most once);
 * with one, a durable JetStream consumer (at least once: acknowledged after the sink accepted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/config/fields.h"
#include "broker/error.h"
#include "channels/nats/kinds.h"

static void nats_source_free(void *own)
{
	struct ceb_nats_source_cfg *src = own;

	if (!src)
		return;
	free(src->ns);
	free(src->name);
	free(src->url);
	free(src->subject);
	free(src->queue);
	free(src->stream);
	free(src->consumer);
	ceb_config_dest_free(&src->sink);
	ceb_config_delivery_free(&src->delivery);
	ceb_config_strv_free(src->ce_ext_keys, src->nce_ext);
	ceb_config_strv_free(src->ce_ext_values, src->nce_ext);
	free(src);
}

/* A subject to subscribe to: tokens of [^ \t.*>] separated by '.', '*' a whole token, '>' the last. */
static bool subject_valid(const char *s, bool wildcards)
{
	size_t tok = 0;

	if (!*s)
		return false;
	for (const char *p = s;; p++) {
		if (*p == '.' || !*p) {
			if (tok == 0)
				return false;
			if (!*p)
				return true;
			tok = 0;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			return false;
		if ((*p == '*' || *p == '>') &&
		    (!wildcards || tok || (p[1] && p[1] != '.') || (*p == '>' && p[1])))
			return false;
		tok++;
	}
}

static bool name_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s == '.' || *s == '*' || *s == '>' || *s == ' ' || *s == '/' || *s == '\\')
			return false;
	return true;
}

static void parse_jetstream(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                            struct ceb_nats_source_cfg *src)
{
	static const char *const f[] = {"stream",      "consumer",     "deliverPolicy",
	                                "optStartSeq", "optStartTime", "ackWait",
	                                NULL};
	static const char *const pol[] = {"all",         "new", "last", "byStartSequence",
	                                  "byStartTime", NULL};
	const struct ceb_yaml_node *v[6];
	char *s = NULL, q[80];
	uint64_t ms;
	int seq;

	src->jetstream = true;
	if (!ceb_config_get_fields(r, n, "spec.jetstream", f, v, NULL))
		return;
	if (!v[0])
		ceb_config_err(r, n, "spec.jetstream.stream", "required field missing");
	else if (ceb_config_get_str(r, v[0], "spec.jetstream.stream", &s) && !name_valid(s))
		ceb_config_err(r, v[0], "spec.jetstream.stream", "\"%s\" is not a stream name",
		               ceb_config_quoted(q, sizeof(q), s));
	src->stream = s;
	s = NULL;
	if (v[1] && ceb_config_get_str(r, v[1], "spec.jetstream.consumer", &s) && !name_valid(s))
		ceb_config_err(r, v[1], "spec.jetstream.consumer",
		               "\"%s\" is not a consumer name (no '.', '*', '>', space)",
		               ceb_config_quoted(q, sizeof(q), s));
	src->consumer = s;
	s = NULL;
	src->deliver = CEB_NATS_DELIVER_ALL;
	if (v[2] && ceb_config_get_str(r, v[2], "spec.jetstream.deliverPolicy", &s)) {
		int i;
		for (i = 0; pol[i] && strcmp(pol[i], s); i++)
			;
		if (pol[i])
			src->deliver = (enum ceb_nats_deliver)i;
		else
			ceb_config_err(r, v[2], "spec.jetstream.deliverPolicy",
			               "\"%s\" is not one of all, new, last, byStartSequence, "
			               "byStartTime",
			               ceb_config_quoted(q, sizeof(q), s));
	}
	free(s);
	s = NULL;
	if (v[3] && ceb_config_get_int(r, v[3], "spec.jetstream.optStartSeq", 1, INT32_MAX, &seq))
		src->start_seq = (uint64_t)seq;
	if (src->deliver == CEB_NATS_DELIVER_SEQ && !src->start_seq)
		ceb_config_err(r, v[2], "spec.jetstream.optStartSeq",
		               "required with deliverPolicy byStartSequence");
	if (v[4] && ceb_config_get_str(r, v[4], "spec.jetstream.optStartTime", &s)) {
		int64_t at_ms;

		if (ceb_rfc3339_parse(s, &at_ms) < 0 || at_ms > INT64_MAX / 1000000)
			ceb_config_err(r, v[4], "spec.jetstream.optStartTime",
			               "\"%s\" is not an RFC 3339 time (2026-01-31T12:00:00Z)",
			               ceb_config_quoted(q, sizeof(q), s));
		else
			src->start_time_ns = at_ms * 1000000;
	}
	free(s);
	if (src->deliver == CEB_NATS_DELIVER_TIME && !src->start_time_ns)
		ceb_config_err(r, v[2], "spec.jetstream.optStartTime",
		               "required with deliverPolicy byStartTime");
	if (v[5] && ceb_config_get_duration(r, v[5], "spec.jetstream.ackWait", &ms)) {
		if (ms < 1000)
			ceb_config_err(r, v[5], "spec.jetstream.ackWait", "must be at least 1s");
		src->ack_wait_ms = (int64_t)ms;
	}
}

static void parse_nats_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                              const struct ceb_yaml_node *root,
                              const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"url",  "subject",  "queue",       "jetstream",
	                                          "sink", "delivery", "ceOverrides", NULL};
	const struct ceb_yaml_node *v[7];
	struct ceb_nats_source_cfg *src;
	char q[80];

	if (!md->name)
		return;
	if (!(src = calloc(1, sizeof(*src)))) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&src->delivery);
	src->ns = md->ns;
	src->name = md->name;
	md->ns = md->name = NULL;
	src->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	src->source.own = src;
	src->source.own_free = nats_source_free;
	ceb_config_add_source(r, &src->source);
	ceb_config_add_entry(r, CEB_NATS_SOURCE_KIND, src->ns, src->name, md, src);
	if (!ceb_channel_ops_find("nats"))
		ceb_config_err(r, ceb_yaml_map_get(root, "kind"), "kind",
		               "a NatsSource needs the nats channel, which this build does not "
		               "include (configure found no libnats)");
	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a NatsSource needs spec.subject or "
		               "spec.jetstream, and spec.sink)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	if (v[0] && ceb_config_get_str(r, v[0], "spec.url", &src->url) &&
	    strncmp(src->url, "nats://", 7) && strncmp(src->url, "tls://", 6))
		ceb_config_err(r, v[0], "spec.url", "\"%s\" is not a nats:// or tls:// URL",
		               ceb_config_quoted(q, sizeof(q), src->url));
	if (!src->url && !(src->url = ceb_config_strdup(r, CEB_NATS_DEFAULT_URL)))
		goto out;
	if (v[1] && ceb_config_get_str(r, v[1], "spec.subject", &src->subject) &&
	    !subject_valid(src->subject, true))
		ceb_config_err(r, v[1], "spec.subject", "\"%s\" is not a NATS subject",
		               ceb_config_quoted(q, sizeof(q), src->subject));
	if (v[2])
		ceb_config_get_str(r, v[2], "spec.queue", &src->queue);
	if (v[3])
		parse_jetstream(r, v[3], src);
	if (!src->subject && !src->jetstream)
		ceb_config_err(r, vals[0], "spec.subject",
		               "required field missing (or spec.jetstream with a stream)");
	if (src->queue && src->jetstream)
		ceb_config_err(r, v[2], "spec.queue",
		               "a JetStream source shares its durable consumer instead: leave "
		               "spec.queue out");
	if (!v[4])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[4], "spec.sink", &src->sink);
	if (v[5])
		ceb_config_parse_delivery(r, v[5], "spec.delivery", false, &src->delivery);
	if (v[6])
		ceb_config_parse_ce_overrides(r, v[6], &src->ce_ext_keys, &src->ce_ext_values,
		                              &src->nce_ext);
out:
	src->source = (struct ceb_source_cfg){
	        .kind = CEB_NATS_SOURCE_KIND,
	        .ns = src->ns,
	        .name = src->name,
	        .sink = &src->sink,
	        .delivery = &src->delivery,
	        .ce_ext_keys = src->ce_ext_keys,
	        .ce_ext_values = src->ce_ext_values,
	        .nce_ext = src->nce_ext,
	        .ordered = false,
	        .own = src,
	        .own_free = nats_source_free,
	        .loc = src->loc,
	        .next = src->source.next,
	};
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const cebroker_sources[] = {"sources.cebroker.dev/v1alpha1", NULL};

const struct ceb_kind ceb_kind_nats_source = {cebroker_sources, CEB_NATS_SOURCE_KIND, spec_only,
                                              parse_nats_source, false};
