/* A job's life: one message's attempts at the subscriber (retries with backoff, each at most one
 * request), then at the dead-letter sink with the same policy, the reply a subscriber answered
 * with, and the settle with the channel once one of them accepted it. On the dispatcher's thread. */
#include "autoconfig.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "broker/libcurl.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/buf.h"
#include "broker/ce/base64.h"
#include "broker/error.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"
#include "broker/delivery/internal.h"
#include "broker/log.h"

static void job_reset_phase(struct job *job)
{
	free(job->hdrs);
	job->hdrs = NULL;
	ceb_buf_free(&job->body);
}

static void release_easy(struct ceb_dispatcher *dsp, struct job *job)
{
	if (job->h1_on) {
		dsp_h1_abort(dsp, job);
		if (job->requested)
			atomic_fetch_add(&job->trg->cnt.requests, 1);
		job->requested = false;
		job->h1_on = false;
	} else if (!job->easy) {
		return;
	} else {
		curl_easy_setopt(job->easy, CURLOPT_ERRORBUFFER,
		                 NULL); /* job->cerr_text goes with job */
	}
	if (job->easy && job->requested) {
		/* Bytes of request written in this transfer: on_prereq lets at most one request
		 * write any, so this counts each request that reached the subscriber once. */
		long sent = 0;

		if (curl_easy_getinfo(job->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
		    sent > 0)
			atomic_fetch_add(&job->trg->cnt.requests, 1);
		job->requested = false;
	}
	if (job->state == JOB_SENDING) {
		if (job->aprev)
			job->aprev->anext = job->anext;
		else
			dsp->active = job->anext;
		if (job->anext)
			job->anext->aprev = job->aprev;
		job->aprev = job->anext = NULL;
		job->state = JOB_NEW;
		atomic_fetch_sub_explicit(&job->trg->st.inflight, 1, memory_order_relaxed);
		job->lane->active--;
		dsp->nactive--;
		dsp->dirty = true;
	}
	if (!job->easy)
		return;
	curl_multi_remove_handle(dsp->multi, job->easy);
	if (dsp->npool == dsp->poolcap) {
		size_t ncap = dsp->poolcap ? dsp->poolcap * 2 : 16;
		CURL **p = realloc(dsp->pool, ncap * sizeof(*p));
		if (!p) {
			curl_easy_cleanup(job->easy);
			job->easy = NULL;
			return;
		}
		dsp->pool = p;
		dsp->poolcap = ncap;
	}
	dsp->pool[dsp->npool++] = job->easy;
	job->easy = NULL;
}

void dsp_job_settle(struct ceb_dispatcher *dsp, struct job *job, enum ceb_settle how)
{
	struct ceb_subscription *trg = job->trg;

	release_easy(dsp, job);
	job_reset_phase(job);
	ceb_buf_free(&job->resp);
	ceb_buf_free(&job->resp_hdrs);
	ceb_event_unref(job->ev);
	ceb_event_unref(job->dls_ev);
	ceb_event_unref(job->reply_ev);
	trg->brk->ch.ops->settle(trg->brk->ch.ctx, trg->sub, job->handle, how);
	free(job);
	atomic_fetch_sub(&dsp->busy, 1);
	atomic_fetch_sub_explicit(&trg->st.jobs, 1, memory_order_relaxed);
	/* the last touch of trg: a retired subscription is freed once nothing is held for it */
	atomic_fetch_sub(&trg->held, 1);
}

static const struct ceb_delivery *job_delivery(const struct job *job)
{
	return job->trg->delivery;
}

/* Where the job's phase sends, and what. */
static const struct ceb_target *job_target(const struct job *job)
{
	return job->dls == PHASE_DLS     ? &job->trg->dls
	       : job->dls == PHASE_REPLY ? &job->trg->reply
	                                 : &job->trg->subscriber;
}

static struct ceb_event *job_event(const struct job *job)
{
	return job->dls == PHASE_DLS     ? job->dls_ev
	       : job->dls == PHASE_REPLY ? job->reply_ev
	                                 : job->ev;
}

static const char *job_url(const struct job *job)
{
	return job_target(job)->url;
}

/* The URL of the phase as logs may show it (without credentials). */
static const char *job_shown_url(const struct job *job, char *buf, size_t len)
{
	return ceb_log_url(job_url(job), buf, len);
}

/* May an answer with this status carry a reply? Any 2xx but 202, which the Knative data plane
 * contract says is never one (Knative's dispatcher reads a reply from every other 2xx). */
static bool may_reply(const struct job *job, long status)
{
	return !job->dls && !job->trg->source && status >= 200 && status < 300 && status != 202;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct job *job = arg;
	long status = 0;

	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	return dsp_job_body(job, status, data, size * nmemb);
}

size_t dsp_job_body(struct job *job, long status, const char *data, size_t n)
{
	size_t cap;

	if (status >= 200 && status < 300 && job->trg->source)
		return n; /* a source's sink answered: its body means nothing */
	if (may_reply(job, status)) {
		/* A possible reply: keep it whole, up to the event size limit. */
		cap = job->trg->brk->dmn->set.limits.max_event_size;
		if (job->resp.len + n > cap) {
			job->resp_over = 1;
			return 0; /* aborts the transfer: the reply is too big */
		}
		/* A reply cut short by a failed allocation must not be published. */
		return ceb_buf_append(&job->resp, data, n) < 0 ? 0 : n;
	}
	/* Only the start of an error body matters (knativeerrordata). */
	if (job->resp.len < ERRORDATA_MAX) {
		size_t keep = ERRORDATA_MAX - job->resp.len;
		ceb_buf_append(&job->resp, data, n < keep ? n : keep);
	}
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	dsp_job_header(arg, data, size * nmemb);
	return size * nmemb;
}

void dsp_job_header(struct job *job, const char *data, size_t n)
{
	size_t len = n;
	const char *colon;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget earlier headers. */
		ceb_buf_reset(&job->resp_hdrs);
		return;
	}
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	colon = memchr(data, ':', len);
	if (!colon)
		return;
	if (!((colon - data == 12 && strncasecmp(data, "content-type", 12) == 0) ||
	      (colon - data > 3 && strncasecmp(data, "ce-", 3) == 0)))
		return;
	ceb_buf_append(&job->resp_hdrs, data, (size_t)(colon - data));
	ceb_buf_putc(&job->resp_hdrs, '\0');
	colon++;
	while (colon < data + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	ceb_buf_append(&job->resp_hdrs, colon, (size_t)(data + len - colon));
	ceb_buf_putc(&job->resp_hdrs, '\0');
}

/* Header lines collected as "line\0line\0...", then laid out as one curl_slist (build_headers). */
struct hdr_ctx {
	struct ceb_buf text;
	size_t n;
};

int dsp_add_header(void *arg, const char *name, const char *value)
{
	struct hdr_ctx *hc = arg;

	/* The loop guard stays inside the daemon (Knative strips it before delivery). */
	if (strcasecmp(name, "ce-knativebrokerttl") == 0)
		return 0;
	ceb_buf_puts(&hc->text, name);
	/* curl: "Name:" with no value removes a header curl would add itself. */
	ceb_buf_append(&hc->text, ": ", *value ? 2 : 1);
	ceb_buf_puts(&hc->text, value);
	ceb_buf_append(&hc->text, "", 1);
	hc->n++;
	return hc->text.failed ? CEB_ENOMEM : 0;
}

void dsp_hcache_clear(struct hdr_cache *c)
{
	ceb_event_unref(c->ev);
	c->ev = NULL;
	ceb_buf_free(&c->text);
	c->n = 0;
}

/* One allocation for the whole list: the nodes, then their text. curl only reads a header list
 * (CURLOPT_HTTPHEADER), so it need not come from curl_slist_append; it is released with free().
 * Saves two allocations per header per delivery. NULL when out of memory. */
static struct curl_slist *build_headers(const struct hdr_ctx *hc)
{
	size_t nodes = hc->n * sizeof(struct curl_slist);
	struct curl_slist *l = malloc(nodes + hc->text.len);
	char *text, *p;

	if (!l || !hc->n)
		return l;
	text = (char *)l + nodes;
	memcpy(text, hc->text.p, hc->text.len);
	p = text;
	for (size_t i = 0; i < hc->n; i++) {
		l[i].data = p;
		l[i].next = i + 1 < hc->n ? &l[i + 1] : NULL;
		p += strlen(p) + 1;
	}
	return l;
}

/* Build the headers and body of this phase (once; retries reuse them). */
static int job_prepare(struct job *job)
{
	const struct ceb_delivery *dlv = job_delivery(job);
	struct ceb_event *ev = job_event(job);
	struct hdr_ctx hc = {CEB_BUF_INIT, 0};
	const struct ceb_attr *tp;
	enum ceb_http_mode mode =
	        dlv->format == CEB_FORMAT_JSON ? CEB_HTTP_STRUCTURED : CEB_HTTP_BINARY;
	int rc = CEB_ENOMEM;

	/* Data whose own media type is application/cloudevents... would read as a structured event at
	 * the receiver: such an event can only travel structured. */
	if (mode == CEB_HTTP_BINARY && !ceb_http_binary_possible(ev))
		mode = CEB_HTTP_STRUCTURED;

	/* Room for a typical header block at once, rather than growing it header by header. */
	ceb_buf_reserve(&hc.text, 512);
	if (mode == CEB_HTTP_BINARY) {
		struct hdr_cache *c = &job->dsp->hcache;

		if (c->ev != ev) {
			struct hdr_ctx enc = {CEB_BUF_INIT, 0};

			if (ceb_http_encode_headers(ev, mode, dsp_add_header, &enc) < 0 ||
			    enc.text.failed) {
				ceb_buf_free(&enc.text);
				goto out;
			}
			dsp_hcache_clear(c);
			c->ev = ceb_event_ref(ev);
			c->text = enc.text;
			c->n = enc.n;
		}
		ceb_buf_append(&hc.text, c->text.p, c->text.len);
		hc.n = c->n;
	} else if (ceb_http_encode_headers(ev, mode, dsp_add_header, &hc) < 0) {
		goto out;
	}
	if (mode == CEB_HTTP_STRUCTURED) {
		struct ceb_event *plain = ev;
		if (ceb_event_get(ev, "knativebrokerttl")) {
			plain = ceb_event_clone(ev);
			if (!plain)
				goto out;
			ceb_event_unset(plain, "knativebrokerttl");
		}
		rc = ceb_json_encode(plain, &job->body);
		if (plain != ev)
			ceb_event_unref(plain);
		if (rc < 0)
			goto out;
		rc = CEB_ENOMEM;
	}
	if (mode == CEB_HTTP_BINARY && !ceb_event_content_type(ev))
		dsp_add_header(&hc, "Content-Type",
		               ""); /* no datacontenttype: send none, not curl's form type */
	if (!job->trg->source && job->dls == PHASE_SUBSCRIBER)
		dsp_add_header(&hc, "Prefer", "reply");
	dsp_add_header(&hc, "Kn-Namespace", job->trg->ns);
	if (job_target(job)->internal)
		dsp_add_header(&hc, CEB_INTERNAL_HEADER, job->trg->brk->dmn->token);
	if (job_target(job)->internal)
		dsp_add_header(&hc, CEB_INTERNAL_SENDER_HEADER, job->trg->label);
	tp = ceb_event_get(ev, "traceparent");
	if (tp)
		dsp_add_header(&hc, "traceparent", tp->value);
	dsp_add_header(&hc, "Expect", ""); /* no 100-continue round trip */
	if (hc.text.failed)
		goto out;
	job->hdrs = build_headers(&hc);
	if (!job->hdrs)
		goto out;
	rc = 0;
out:
	ceb_buf_free(&hc.text);
	return rc;
}

/* libcurl calls this before it writes a request, on a new or a reused connection. A reused
 * connection that closes without answering makes libcurl send the same request again on a new one
 * (Curl_retry_request), a POST whose bytes were written included: the subscriber would get the event
 * twice in one attempt, uncounted. Go's client, which Knative uses, sends a POST again only when
 * none of it was written; so do we: once bytes of a request left (CURLINFO_REQUEST_SIZE, summed over
 * the transfer), another request is refused and the attempt fails, for the retry policy to decide.
 * A pooled connection found dead before writing (libcurl checks before reuse) is still replaced.
 * One call per request, no per-byte work. */
static int on_prereq(void *arg, char *conn_ip, char *local_ip, int conn_port, int local_port)
{
	struct job *job = arg;
	long sent = 0;

	(void)conn_ip;
	(void)local_ip;
	(void)conn_port;
	(void)local_port;
	if (job->requested &&
	    curl_easy_getinfo(job->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0) {
		job->fail = FAIL_NOT_RESENT;
		return CURL_PREREQFUNC_ABORT;
	}
	job->requested = true;
	return CURL_PREREQFUNC_OK;
}

/* A curl handle from the pool, or a new one with the options every delivery shares. */
static CURL *easy_get(struct ceb_dispatcher *dsp)
{
	CURL *easy;

	if (dsp->npool)
		return dsp->pool[--dsp->npool];
	if (!dsp_multi(dsp))
		return NULL;
	easy = curl_easy_init();
	if (!easy)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "cebroker/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	return easy;
}

static void job_fail_phase(struct ceb_dispatcher *dsp, struct job *job);

/* Start a transfer now (the caller checked there is a slot). */
void dsp_job_launch(struct ceb_dispatcher *dsp, struct job *job)
{
	const struct ceb_delivery *dlv = job_delivery(job);
	struct ceb_daemon *dmn = job->trg->brk->dmn;
	uint64_t timeout = dlv->timeout_ms ? dlv->timeout_ms : dmn->set.default_timeout_ms;
	const void *body;
	size_t body_len;
	CURL *easy = NULL;
	bool h1;

	if (!job->hdrs && job_prepare(job) < 0) {
		CEB_LOG_ERR(job->trg->label, "out of memory preparing a delivery");
		job->status = 0;
		job->cerr = CURLE_OUT_OF_MEMORY;
		job_fail_phase(dsp, job);
		return;
	}
	/* A plain http:// subscriber at an IP address goes through h1.c; the rest through libcurl,
	 * whose pooled handles keep the shared options: only the per-delivery ones are set here. */
	h1 = dsp_h1_eligible(dsp, job_url(job), job_target(job)->ca_blob != NULL);
	if (!h1) {
		easy = easy_get(dsp);
		if (!easy) {
			job->cerr = ceb_libcurl_loaded() ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
			job_fail_phase(dsp, job);
			return;
		}
		job->easy = easy;
	}
	job->h1_retry_after = -1;
	job->h1_status = 0;
	job->cerr_text[0] = '\0';
	ceb_buf_reset(&job->resp);
	ceb_buf_reset(&job->resp_hdrs);
	job->resp_over = 0;
	job->status = 0;
	job->fail = FAIL_NONE;
	job->requested = false;
	job->cerr = CURLE_OK;
	if (job->body.p) {
		body = job->body.p;
		body_len = job->body.len;
	} else {
		body = ceb_event_data(job_event(job), &body_len);
		if (!body) {
			body = "";
			body_len = 0;
		}
	}
	if (h1)
		goto start;
	curl_easy_setopt(easy, CURLOPT_URL, job_url(job));
	/* https: the system's CAs, plus the Destination's CACerts when it has some; verification is
	 * libcurl's default (peer and host) and nothing turns it off. */
	if (job_target(job)->ca_blob) {
		struct curl_blob blob = {job_target(job)->ca_blob, job_target(job)->ca_len,
		                         CURL_BLOB_NOCOPY};

		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
	} else {
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, NULL);
	}
	job->cerr_text[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job->cerr_text);
	curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->hdrs);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, job);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, job);
	curl_easy_setopt(easy, CURLOPT_PREREQDATA, job);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
start:
	job->state = JOB_SENDING;
	atomic_fetch_add_explicit(&job->trg->st.inflight, 1, memory_order_relaxed);
	job->lane->active++;
	dsp->nactive++;
	job->aprev = NULL;
	job->anext = dsp->active;
	if (dsp->active)
		dsp->active->aprev = job;
	dsp->active = job;
	/* Counted when made: a retry still waiting at shutdown was never one. */
	if (job->attempt)
		atomic_fetch_add(&job->trg->cnt.retries, 1);
	else if (job->dls == PHASE_SUBSCRIBER) /* Knative's processing latency: up to the first */
		ceb_hist_observe(&job->trg->st.processing, ceb_now_us() - job->in_us);
	job->attempt++;
	atomic_fetch_add(&job->trg->cnt.attempts, 1);
	if (h1) {
		job->h1_on = true;
		job->h1_url = job_url(job);
		if (dsp_h1_start(dsp, job, body, body_len, timeout) < 0) {
			/* no socket or no memory: an attempt that failed, as libcurl reports it */
			snprintf(job->cerr_text, sizeof(job->cerr_text),
			         "cannot start a request: %s", strerror(errno));
			job->cerr = CURLE_COULDNT_CONNECT;
			job->status = 0;
			dsp_job_failed_attempt(dsp, job, 1);
		}
		return;
	}
	if (curl_multi_add_handle(dsp->multi, easy) != CURLM_OK) {
		job->cerr = CURLE_FAILED_INIT;
		release_easy(dsp, job);
		job_fail_phase(dsp, job);
	}
}

/* Start a transfer when the Trigger's lane may, else queue the job in its lane (in order: a lane
 * with jobs waiting queues new ones behind them). */
void dsp_job_start(struct ceb_dispatcher *dsp, struct job *job)
{
	if (job->lane->qhead || !dsp_may_start(dsp, job->lane))
		dsp_lane_enqueue(dsp, job);
	else
		dsp_job_launch(dsp, job);
}

static int status_retryable(const struct ceb_delivery *dlv, long status)
{
	if (dlv->retry_statuses) {
		for (const int *s = dlv->retry_statuses; *s; s++)
			if (*s == status)
				return 1;
		return 0;
	}
	return status >= 500 || status == 404 || status == 408 || status == 409 || status == 429;
}

/* Wait before retry k (k = 1..retry): linear delay*k, exponential delay*2^(k-1). */
static uint64_t backoff_ms(const struct ceb_delivery *dlv, int k)
{
	uint64_t d = dlv->backoff_delay_ms;

	if (dlv->backoff_policy == CEB_BACKOFF_LINEAR)
		return d * (uint64_t)k;
	if (k - 1 >= 40)
		k = 41;
	if (d && (UINT64_MAX >> (k - 1)) < d)
		return UINT64_MAX / 2;
	return d << (k - 1);
}

/* What went wrong with the last attempt, for logs: the subscriber's status only where the
 * subscriber gave it, never a code of our own. */
const char *dsp_job_why(const struct job *job, char *buf, size_t len)
{
	const struct ceb_endpoint *brk = job->trg->brk;

	switch (job->fail) {
	case FAIL_REPLY_INVALID:
		snprintf(buf, len, "reply is not a CloudEvent (HTTP %ld)", job->status);
		break;
	case FAIL_REPLY_TOO_BIG:
		snprintf(buf, len, "reply over %zu bytes (HTTP %ld)",
		         brk->dmn->set.limits.max_event_size, job->status);
		break;
	case FAIL_ANSWER_CUT:
		snprintf(buf, len, "answer cut short (HTTP %ld): %s", job->status,
		         curl_easy_strerror(job->cerr));
		break;
	case FAIL_REPLY_FULL: snprintf(buf, len, "reply not stored: %s is full", brk->label); break;
	case FAIL_REPLY_UNAVAIL:
		snprintf(buf, len, "reply not stored: %s cannot store events now", brk->label);
		break;
	case FAIL_NOT_RESENT:
		snprintf(buf, len,
		         "connection closed with no answer (the request is not sent twice)");
		break;
	case FAIL_NONE:
		if (job->status)
			snprintf(buf, len, "HTTP %ld", job->status);
		else if (job->cerr_text[0])
			snprintf(buf, len, "%s", job->cerr_text);
		else
			snprintf(buf, len, "%s", curl_easy_strerror(job->cerr));
		break;
	}
	return buf;
}

/* knativeerrorcode: the subscriber's last status, except that a 2xx whose reply could not be taken
 * is the code Knative's broker answers for it (502 for a bad reply), or the one our ingress would have
 * given the reply (429, 503). 0: none. */
static long job_error_code(const struct job *job)
{
	switch (job->fail) {
	case FAIL_REPLY_INVALID:
	case FAIL_REPLY_TOO_BIG:
	case FAIL_ANSWER_CUT: return 502;
	case FAIL_REPLY_FULL: return 429;
	case FAIL_REPLY_UNAVAIL: return 503;
	case FAIL_NOT_RESENT:
	case FAIL_NONE: break;
	}
	return job->status;
}

static void job_schedule_retry(struct ceb_dispatcher *dsp, struct job *job)
{
	const struct ceb_delivery *dlv = job_delivery(job);
	uint64_t wait = backoff_ms(dlv, job->attempt);
	curl_off_t ra = -1;

	if (dlv->retry_after_max_ms > 0 && !job->fail &&
	    (job->status == 429 || job->status == 503) &&
	    (job->h1_on ? (ra = job->h1_retry_after) > 0
	                : job->easy &&
	                          curl_easy_getinfo(job->easy, CURLINFO_RETRY_AFTER, &ra) ==
	                                  CURLE_OK &&
	                          ra > 0)) {
		uint64_t ra_ms = (uint64_t)(ra < 21600 ? ra : 21600) * 1000; /* libcurl's cap */
		if (ra_ms > (uint64_t)dlv->retry_after_max_ms)
			ra_ms = (uint64_t)dlv->retry_after_max_ms;
		if (ra_ms > wait)
			wait = ra_ms;
	}
	release_easy(dsp, job);
	if (ceb_log_level >= CEB_LOGLEVEL_DEBUG) {
		char why[WHY_MAX], url[URL_SHOWN];

		CEB_LOG_DEBUG(job->trg->label, "attempt %d to %s failed (%s), retrying in %llu ms",
		              job->attempt, job_shown_url(job, url, sizeof(url)),
		              dsp_job_why(job, why, sizeof(why)), (unsigned long long)wait);
	}
	job->due = ceb_now_ms() + wait;
	job->state = JOB_WAITING;
	if (dsp_heap_push(dsp, job) < 0)
		dsp_job_start(dsp,
		              job); /* no memory for the timer: retry at once rather than lose it */
}

/* Add the knativeerror* extensions to a copy of the event, for the dead-letter sink. */
static struct ceb_event *make_dls_event(struct job *job)
{
	struct ceb_event *ev = ceb_event_clone(job->ev);
	struct ceb_buf b = CEB_BUF_INIT;
	/* where it failed: the subscriber, or the reply destination */
	const char *url = job_url(job);
	size_t urlcap = strlen(url) + 4;
	char *shown = malloc(urlcap);
	long status = job_error_code(job);
	char code[16];
	char err[128];

	if (!ev || !shown) {
		ceb_event_unref(ev);
		ev = NULL;
		goto out;
	}
	/* The subscriber's credentials are not the dead-letter sink's to see. */
	url = ceb_log_url(url, shown, urlcap);
	ceb_event_set(ev, "knativeerrordest", CEB_TYPE_STRING, url, strlen(url), err, sizeof(err));
	if (status) {
		snprintf(code, sizeof(code), "%ld", status);
		ceb_event_set(ev, "knativeerrorcode", CEB_TYPE_STRING, code, strlen(code), err,
		              sizeof(err));
	}
	if (job->resp.len) {
		size_t n = job->resp.len < ERRORDATA_MAX ? job->resp.len : ERRORDATA_MAX;
		if (ceb_base64_encode(job->resp.p, n, &b) == 0 && b.p)
			ceb_event_set(ev, "knativeerrordata", CEB_TYPE_STRING, b.p, b.len, err,
			              sizeof(err));
	}
out:
	ceb_buf_free(&b);
	free(shown);
	return ev;
}

/* The current phase is out of attempts (or met a status that is not retried). */
static void job_fail_phase(struct ceb_dispatcher *dsp, struct job *job)
{
	struct ceb_subscription *trg = job->trg;
	const struct ceb_attr *id = ceb_event_get(job->ev, "id");
	char why[WHY_MAX], buf[URL_SHOWN];
	const char *url = job_shown_url(job, buf, sizeof(buf));

	release_easy(dsp, job);
	dsp_job_why(job, why, sizeof(why));
	if (job->dls != PHASE_DLS && trg->dls.url) {
		CEB_LOG_INFO(
		        trg->label,
		        "event %s: %s after %d attempt(s) to %s; sending to the dead-letter sink",
		        id ? id->value : "?", why, job->attempt, url);
		job->dls_ev = make_dls_event(job);
		job_reset_phase(job);
		job->dls = PHASE_DLS;
		job->attempt = 0;
		if (!job->dls_ev) {
			job->status = 0;
			job->fail = FAIL_NONE;
			job->cerr = CURLE_OUT_OF_MEMORY;
			job_fail_phase(dsp, job);
			return;
		}
		dsp_job_start(dsp, job);
		return;
	}
	if (job->dls == PHASE_SUBSCRIBER && trg->source &&
	    ceb_channel_has(&trg->brk->ch, CEB_CHANNEL_DURABLE)) {
		/* A durable source's progress moves only once its sink or dead-letter sink accepted
		 * (sources/source.h): the record stays, and its channel hands it again later. */
		CEB_LOG_WARN(
		        trg->label,
		        "event %s: %s after %d attempt(s) to %s, and no dead-letter sink: left "
		        "in the source, to come again",
		        id ? id->value : "?", why, job->attempt, url);
		atomic_fetch_add(&trg->cnt.left_in_source, 1);
		dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
		return;
	}
	if (job->dls != PHASE_DLS) {
		CEB_LOG_WARN(
		        trg->label,
		        "event %s dropped: %s after %d attempt(s) to %s, and no dead-letter sink",
		        id ? id->value : "?", why, job->attempt, url);
		atomic_fetch_add(&trg->cnt.dropped, 1);
		dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	CEB_LOG_ERR(
	        trg->label,
	        "event %s not delivered: dead-letter sink %s failed too (%s after %d attempt(s))",
	        id ? id->value : "?", url, why, job->attempt);
	atomic_fetch_add(&trg->cnt.lost, 1);
	dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
}

void dsp_job_failed_attempt(struct ceb_dispatcher *dsp, struct job *job, int retryable)
{
	/* Shutting down, a KafkaSource's record that failed is left uncommitted: the next start
	 * reads it again, sooner than a retry would (its sink may be our own Broker, which now
	 * answers 503 to everyone). */
	if (job->trg->source && ceb_channel_has(&job->trg->brk->ch, CEB_CHANNEL_DURABLE) &&
	    atomic_load(&dsp->dmn->draining)) {
		CEB_LOG_DEBUG(job->trg->label, "shutting down: record left for the next start");
		dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
		return;
	}
	if (retryable && job->attempt <= job_delivery(job)->retry)
		job_schedule_retry(dsp, job);
	else
		job_fail_phase(dsp, job);
}

static void reply_done(void *arg, int status)
{
	struct job *job = arg;

	job->reply_status = status;
	job->state = JOB_REPLIED;
	dsp_inbox_push(job->dsp, job);
}

/* Is `name` among the response headers kept ("name\0value\0" pairs)? */
static bool has_header(const struct ceb_buf *hdrs, const char *name)
{
	for (const char *p = hdrs->p, *end = p + hdrs->len; p && p < end;) {
		if (strcasecmp(p, name) == 0)
			return true;
		p += strlen(p) + 1;
		p += strlen(p) + 1;
	}
	return false;
}

/* A 200 with a body: it must be a CloudEvent, which goes into the same Broker. */
static void job_reply(struct ceb_dispatcher *dsp, struct job *job)
{
	struct ceb_subscription *trg = job->trg;
	struct ceb_daemon *dmn = trg->brk->dmn;
	struct ceb_http_header hdrs[64];
	struct ceb_http_request req;
	struct ceb_event **evs = NULL;
	const struct ceb_attr *ttl;
	enum ceb_http_mode mode;
	size_t n = 0, nevs = 0;
	char err[256];
	long ttlv;
	int rc;

	for (const char *p = job->resp_hdrs.p, *end = p + job->resp_hdrs.len; p && p < end;) {
		if (n == 64) {
			/* More ce- headers than an event may have attributes: a reply we must not cut. */
			n = 0;
			job->resp.len = 0;
			break;
		}
		hdrs[n].name = p;
		p += strlen(p) + 1;
		hdrs[n].value = p;
		p += strlen(p) + 1;
		n++;
	}
	req.headers = hdrs;
	req.nheaders = n;
	req.body = job->resp.p;
	req.body_len = job->resp.len;
	rc = ceb_http_decode(&req, &dmn->set.limits, &evs, &nevs, &mode, err, sizeof(err));
	if (rc < 0 || nevs != 1) {
		char url[URL_SHOWN];

		CEB_LOG_WARN(trg->label, "reply from %s is not a CloudEvent: %s",
		             job_shown_url(job, url, sizeof(url)),
		             rc < 0 ? err : "a batch is not a reply");
		for (size_t i = 0; i < nevs; i++)
			ceb_event_unref(evs[i]);
		free(evs);
		release_easy(dsp, job);
		/* Knative's broker answers 502 here, which its channel retries. */
		job->fail = FAIL_REPLY_INVALID;
		dsp_job_failed_attempt(dsp, job, 1);
		return;
	}
	release_easy(dsp, job);
	if (trg->flow) {
		/* A Subscription's reply goes on to its reply destination, retried on its own;
		 * with none, Knative drops it. */
		if (!trg->reply.url) {
			ceb_event_unref(evs[0]);
			free(evs);
			atomic_fetch_add(&trg->cnt.delivered, 1);
			dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
			return;
		}
		job->reply_ev = evs[0];
		free(evs);
		job_reset_phase(job);
		job->dls = PHASE_REPLY;
		job->attempt = 0;
		dsp_job_start(dsp, job);
		return;
	}
	ttl = ceb_event_get(job->ev, "knativebrokerttl");
	ttlv = ttl ? (ttl->type == CEB_TYPE_INTEGER ? ttl->ival : strtol(ttl->value, NULL, 10))
	           : dmn->set.max_ttl;
	ttlv--;
	if (ttlv <= 0) {
		const struct ceb_attr *id = ceb_event_get(evs[0], "id");
		CEB_LOG_WARN(trg->label,
		             "reply %s dropped: knativebrokerttl exhausted (a reply loop?)",
		             id ? id->value : "?");
		atomic_fetch_add(&trg->cnt.ttl_exhausted, 1);
		ceb_event_unref(evs[0]);
		free(evs);
		atomic_fetch_add(&trg->cnt.delivered, 1);
		dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	ceb_event_set_int(evs[0], "knativebrokerttl", (int32_t)ttlv);
	job->state = JOB_REPLYING;
	ceb_endpoint_publish(trg->brk, evs[0], reply_done, job);
	ceb_event_unref(evs[0]);
	free(evs);
}

void dsp_job_transfer_done(struct ceb_dispatcher *dsp, struct job *job, CURLcode res)
{
	struct ceb_subscription *trg = job->trg;

	job->cerr = res;
	if (job->h1_on) {
		job->status = job->h1_status;
	} else {
		curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &job->status);
		if (job->status > 0) {
			/* a host name libcurl resolved: the native client may go there next time */
			char *ip = NULL;
			if (curl_easy_getinfo(job->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
			    ip)
				dsp_h1_learn(dsp, job_url(job), ip);
		}
	}
	if (job->dls == PHASE_SUBSCRIBER && job->fail != FAIL_NOT_RESENT) {
		curl_off_t us = 0;

		/* Knative's dispatch latency: the request to the subscriber until its answer. */
		if (job->h1_on)
			us = (curl_off_t)job->h1_total_us;
		else
			curl_easy_getinfo(job->easy, CURLINFO_TOTAL_TIME_T, &us);
		ceb_stats_observe(&trg->st, job->status, us > 0 ? (uint64_t)us : 0);
	}
	if (res != CURLE_OK) {
		if (job->fail == FAIL_NOT_RESENT) {
			/* on_prereq refused to write the request again: no answer came. */
		} else if (job->resp_over) {
			char url[URL_SHOWN];

			CEB_LOG_WARN(trg->label, "reply from %s is over %zu bytes",
			             job_shown_url(job, url, sizeof(url)),
			             trg->brk->dmn->set.limits.max_event_size);
			job->fail = FAIL_REPLY_TOO_BIG;
		} else if (job->status >= 200 && job->status < 300) {
			job->fail = FAIL_ANSWER_CUT; /* not a success */
		} else if (job->status >= 100 &&
		           !status_retryable(job_delivery(job), job->status)) {
			/* A final status arrived, its body did not: still final. */
			dsp_job_failed_attempt(dsp, job, 0);
			return;
		}
		dsp_job_failed_attempt(dsp, job, 1);
		return;
	}
	if (job->status >= 200 && job->status < 300) {
		/* A reply is a body, or a binary-mode event with no data (ce- headers only). */
		if (may_reply(job, job->status) &&
		    (job->resp.len || has_header(&job->resp_hdrs, "ce-specversion"))) {
			job_reply(dsp, job);
			return;
		}
		if (job->dls == PHASE_DLS) {
			atomic_fetch_add(&trg->cnt.dead_lettered, 1);
		} else {
			if (job->dls == PHASE_REPLY)
				atomic_fetch_add(&trg->cnt.replies, 1);
			atomic_fetch_add(&trg->cnt.delivered, 1);
		}
		dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	/* 1xx, 3xx (redirects are never followed) and 4xx other than 404/408/409/429 are final. */
	dsp_job_failed_attempt(dsp, job, status_retryable(job_delivery(job), job->status));
}

void dsp_job_begin(struct ceb_dispatcher *dsp, struct job *job)
{
	struct ceb_subscription *trg = job->trg;

	if (!trg->prefiltered && trg->filter && !ceb_filter_match(trg->filter, job->ev)) {
		dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	dsp_job_start(dsp, job);
}
