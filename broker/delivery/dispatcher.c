/* Delivery threads. Each runs one libcurl multi handle (keep-alive connections reused, many
 * transfers in flight) driven by its own epoll through curl_multi_socket_action, and a timer heap
 * for backoff; channels hand messages in through a locked inbox and an eventfd. A message goes to
 * the subscriber with retries, then to the dead-letter sink with the same policy, and is settled
 * with its channel only when one of them accepted it.
 *
 * Transfers running at once are bounded per dispatcher (SLOTS), so that a fan-out to many Triggers
 * reuses a few hundred keep-alive connections instead of opening one per message; jobs beyond wait
 * in their Trigger's lane, without a curl handle, and lanes take turns. Every Trigger may always
 * run MIN_SHARE transfers, so that subscribers that hang cannot starve the others. */
#include "autoconfig.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/ce/base64.h"
#include "broker/buf.h"
#include "broker/delivery/dispatcher.h"
#include "broker/error.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"
#include "broker/ingress/request.h"
#include "broker/log.h"

#define ERRORDATA_MAX 1024 /* bytes of the response body kept for knativeerrordata */
#define SLOTS \
	128              /* transfers running at once per dispatcher (or --max-inflight if more),
			      beyond the minimum shares */
#define MIN_SHARE    1   /* transfers each Trigger may run whatever the others hold */
#define IDLE_TRIM_MS 200 /* after this long with nothing to deliver, give memory back */
#define POOL_KEEP    8   /* curl handles kept through idle times */

enum job_state {
	JOB_NEW = 0,  /* in the inbox, not started */
	JOB_WAITING,  /* in the timer heap */
	JOB_SENDING,  /* a transfer is running */
	JOB_REPLYING, /* the reply is being published */
	JOB_REPLIED,  /* back in the inbox with the reply's publish status */
	JOB_QUEUED,   /* in its lane, waiting for a transfer slot */
};

struct job;

/* One Trigger's share of one dispatcher: its running transfers and its jobs waiting for a slot. */
struct lane {
	const struct ceb_trigger *trg; /* NULL for an unused slot of the table */
	size_t active;
	struct job *qhead, *qtail; /* waiting, oldest first */
	struct lane *rnext;        /* the ring of lanes with waiting jobs */
	bool in_ring;
};

/* One message of one Trigger on its way to the subscriber or the dead-letter sink. */
struct job {
	struct ceb_trigger *trg;
	struct ceb_dispatcher *dsp; /* the dispatcher that runs it */
	struct lane *lane;          /* set when the dispatcher takes the job in */
	struct ceb_event *ev;       /* as the channel gave it */
	struct ceb_event *dls_ev;   /* ev + knativeerror* extensions, in the dead-letter phase */
	void *handle;
	enum job_state state;
	int dls;     /* 0: subscriber, 1: dead-letter sink */
	int attempt; /* attempts made in this phase */
	long status; /* last HTTP status, 0 for none */
	CURLcode cerr;
	int reply_status;
	uint64_t due;
	size_t heap_idx;
	CURL *easy;
	struct curl_slist *hdrs; /* built once per phase, one allocation (see build_headers) */
	struct ceb_buf body;     /* structured-mode body, per phase */
	struct ceb_buf resp;     /* response body, capped */
	struct ceb_buf
	        resp_hdrs; /* "name\0value\0" pairs of content-type and ce-* response headers */
	int resp_over;     /* a 200 body went over the reply cap */
	struct job *next;  /* inbox, or the lane's queue */
	struct job *aprev, *anext; /* the list of jobs with a transfer running */
};

/* The ce- headers of the last event this dispatcher encoded for binary mode: a fan-out hands it the
 * same event once per matching Trigger, and a copy costs less than percent-encoding every value. */
struct hdr_cache {
	struct ceb_event *ev; /* a reference, so that its address cannot be reused; NULL: empty */
	struct ceb_buf text;  /* "line\0line\0..." as add_header() writes them */
	size_t n;
};

struct ceb_dispatcher {
	struct ceb_daemon *dmn;
	int index;
	char label[32];
	pthread_t thread;
	int started;
	atomic_int stop;
	CURLM *multi;
	int epfd;             /* curl's sockets and the wake-up eventfd */
	int wakefd;           /* written when the inbox turns non-empty, and to stop */
	uint64_t curl_due;    /* when curl wants socket_action(TIMEOUT); UINT64_MAX: never */
	pthread_mutex_t lock; /* guards the inbox */
	struct job *inbox, *inbox_tail;
	struct job **heap;
	size_t nheap, heapcap;
	CURL **pool;
	size_t npool, poolcap;
	struct job *active; /* transfers running (curl 7.88 cannot list a multi's handles) */
	size_t nactive;
	size_t slots;       /* SLOTS, or --max-inflight if larger: one Trigger may use all of it */
	atomic_size_t busy; /* jobs alive */
	struct lane *lanes; /* open addressing on the Trigger pointer, built at start */
	size_t lanes_cap;
	struct lane spare; /* for a Trigger missing from the table (none should) */
	struct lane *ring_head, *ring_tail;
	size_t nring;
	bool dirty; /* a slot was freed or a job queued: run pump() */
	struct hdr_cache hcache;
	uint64_t idle_since; /* when the last job ended (0: busy) */
	bool trimmed;        /* memory was given back since */
	atomic_uint rr; /* dispatcher 0 only: spreads unordered messages over the dispatchers */
};

/* Give free pages back to the system. Under AddressSanitizer, whose allocator replaces glibc's,
 * glibc's arena is never set up and malloc_trim() crashes in it: there it does nothing. */
#if defined(__SANITIZE_ADDRESS__)
#define release_free_pages() ((void)0)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define release_free_pages() ((void)0)
#endif
#endif
#ifndef release_free_pages
#define release_free_pages() malloc_trim(0)
#endif

/* ---- timer heap (min-heap on due) ---- */

static void heap_swap(struct ceb_dispatcher *dsp, size_t a, size_t b)
{
	struct job *t = dsp->heap[a];

	dsp->heap[a] = dsp->heap[b];
	dsp->heap[b] = t;
	dsp->heap[a]->heap_idx = a;
	dsp->heap[b]->heap_idx = b;
}

static int heap_push(struct ceb_dispatcher *dsp, struct job *job)
{
	size_t i;

	if (dsp->nheap == dsp->heapcap) {
		size_t ncap = dsp->heapcap ? dsp->heapcap * 2 : 64;
		struct job **h = realloc(dsp->heap, ncap * sizeof(*h));
		if (!h)
			return CEB_ENOMEM;
		dsp->heap = h;
		dsp->heapcap = ncap;
	}
	i = dsp->nheap++;
	dsp->heap[i] = job;
	job->heap_idx = i;
	while (i > 0 && dsp->heap[(i - 1) / 2]->due > dsp->heap[i]->due) {
		heap_swap(dsp, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct job *heap_pop(struct ceb_dispatcher *dsp)
{
	struct job *top = dsp->heap[0];
	size_t i = 0;

	dsp->nheap--;
	if (dsp->nheap) {
		dsp->heap[0] = dsp->heap[dsp->nheap];
		dsp->heap[0]->heap_idx = 0;
		for (;;) {
			size_t l = 2 * i + 1, r = l + 1, m = i;
			if (l < dsp->nheap && dsp->heap[l]->due < dsp->heap[m]->due)
				m = l;
			if (r < dsp->nheap && dsp->heap[r]->due < dsp->heap[m]->due)
				m = r;
			if (m == i)
				break;
			heap_swap(dsp, i, m);
			i = m;
		}
	}
	return top;
}

/* ---- inbox ---- */

static void wake_up(struct ceb_dispatcher *dsp)
{
	uint64_t one = 1;

	/* Fails only when the counter is saturated, which wakes the thread anyway. */
	if (write(dsp->wakefd, &one, sizeof(one)) < 0)
		return;
}

static void inbox_push(struct ceb_dispatcher *dsp, struct job *job)
{
	int wake;

	job->next = NULL;
	pthread_mutex_lock(&dsp->lock);
	wake = dsp->inbox == NULL;
	if (dsp->inbox_tail)
		dsp->inbox_tail->next = job;
	else
		dsp->inbox = job;
	dsp->inbox_tail = job;
	pthread_mutex_unlock(&dsp->lock);
	if (wake)
		wake_up(dsp);
}

/* The dispatcher for a new message. A Trigger's messages are spread over every dispatcher, so that
 * one busy Trigger uses every delivery thread; ordered ones stay on their own, one at a time. */
static struct ceb_dispatcher *pick_dispatcher(struct ceb_trigger *trg)
{
	struct ceb_daemon *dmn = trg->dsp->dmn;
	unsigned i;

	if (dmn->ndsp < 2 || trg->ordered)
		return trg->dsp;
	i = atomic_fetch_add_explicit(&dmn->dsp[0]->rr, 1, memory_order_relaxed);
	return dmn->dsp[i % dmn->ndsp];
}

void ceb_dispatcher_on_msg(void *trigger, struct ceb_event *ev, void *handle)
{
	struct ceb_trigger *trg = trigger;
	struct ceb_dispatcher *dsp = pick_dispatcher(trg);
	struct job *job = calloc(1, sizeof(*job));

	if (!job) {
		/* The channel calls us under its own lock, so the message cannot be given back from
		 * here (settle would deadlock), and dropping it would lose an acknowledged event
		 * silently. Out of memory for a 200-byte job: stop loudly; a durable channel
		 * redelivers after the restart. */
		LOG_ERR(trg->label, "out of memory queueing a delivery: exiting");
		abort();
	}
	atomic_fetch_add(&dsp->busy, 1);
	job->trg = trg;
	job->dsp = dsp;
	job->ev = ev;
	job->handle = handle;
	inbox_push(dsp, job);
}

/* ---- lanes ---- */

static size_t lane_hash(const void *trg, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)trg;

	h ^= h >> 29;
	h *= 0x9e3779b97f4a7c15u;
	return (size_t)(h >> 32) & (cap - 1);
}

static int lanes_build(struct ceb_dispatcher *dsp)
{
	size_t n = 0, cap = 16;

	for (struct ceb_trigger *trg = dsp->dmn->triggers; trg; trg = trg->next)
		n++;
	while (cap < 2 * n)
		cap *= 2;
	dsp->lanes = calloc(cap, sizeof(*dsp->lanes));
	if (!dsp->lanes)
		return CEB_ENOMEM;
	dsp->lanes_cap = cap;
	for (struct ceb_trigger *trg = dsp->dmn->triggers; trg; trg = trg->next) {
		size_t i = lane_hash(trg, cap);
		while (dsp->lanes[i].trg)
			i = (i + 1) & (cap - 1);
		dsp->lanes[i].trg = trg;
	}
	return 0;
}

static struct lane *lane_of(struct ceb_dispatcher *dsp, const struct ceb_trigger *trg)
{
	if (dsp->lanes_cap) {
		size_t mask = dsp->lanes_cap - 1;

		for (size_t i = lane_hash(trg, dsp->lanes_cap);; i = (i + 1) & mask) {
			if (dsp->lanes[i].trg == trg)
				return &dsp->lanes[i];
			if (!dsp->lanes[i].trg)
				break;
		}
	}
	return &dsp->spare;
}

static void ring_push(struct ceb_dispatcher *dsp, struct lane *ln)
{
	ln->rnext = NULL;
	ln->in_ring = true;
	if (dsp->ring_tail)
		dsp->ring_tail->rnext = ln;
	else
		dsp->ring_head = ln;
	dsp->ring_tail = ln;
	dsp->nring++;
}

static struct lane *ring_pop(struct ceb_dispatcher *dsp)
{
	struct lane *ln = dsp->ring_head;

	dsp->ring_head = ln->rnext;
	if (!dsp->ring_head)
		dsp->ring_tail = NULL;
	ln->rnext = NULL;
	ln->in_ring = false;
	dsp->nring--;
	return ln;
}

static void lane_enqueue(struct ceb_dispatcher *dsp, struct job *job)
{
	struct lane *ln = job->lane;

	job->state = JOB_QUEUED;
	job->next = NULL;
	if (ln->qtail)
		ln->qtail->next = job;
	else
		ln->qhead = job;
	ln->qtail = job;
	if (!ln->in_ring)
		ring_push(dsp, ln);
	dsp->dirty = true;
}

static struct job *lane_dequeue(struct lane *ln)
{
	struct job *job = ln->qhead;

	ln->qhead = job->next;
	if (!ln->qhead)
		ln->qtail = NULL;
	job->next = NULL;
	job->state = JOB_NEW;
	return job;
}

static bool may_start(const struct ceb_dispatcher *dsp, const struct lane *ln)
{
	return ln->active < MIN_SHARE || dsp->nactive < dsp->slots;
}

/* ---- job life ---- */

static void job_reset_phase(struct job *job)
{
	free(job->hdrs);
	job->hdrs = NULL;
	ceb_buf_free(&job->body);
}

static void release_easy(struct ceb_dispatcher *dsp, struct job *job)
{
	if (!job->easy)
		return;
	if (job->state == JOB_SENDING) {
		if (job->aprev)
			job->aprev->anext = job->anext;
		else
			dsp->active = job->anext;
		if (job->anext)
			job->anext->aprev = job->aprev;
		job->aprev = job->anext = NULL;
		job->state = JOB_NEW;
		job->lane->active--;
		dsp->nactive--;
		dsp->dirty = true;
	}
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

static void job_settle(struct ceb_dispatcher *dsp, struct job *job, enum ceb_settle how)
{
	struct ceb_trigger *trg = job->trg;

	release_easy(dsp, job);
	job_reset_phase(job);
	ceb_buf_free(&job->resp);
	ceb_buf_free(&job->resp_hdrs);
	ceb_event_unref(job->ev);
	ceb_event_unref(job->dls_ev);
	trg->brk->ch.ops->settle(trg->brk->ch.ctx, trg->sub, job->handle, how);
	free(job);
	atomic_fetch_sub(&dsp->busy, 1);
}

static const struct ceb_delivery *job_delivery(const struct job *job)
{
	return job->trg->delivery;
}

static const char *job_url(const struct job *job)
{
	return job->dls ? job->trg->dls.url : job->trg->subscriber.url;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct job *job = arg;
	size_t n = size * nmemb;
	long status = 0;
	size_t cap;

	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && job->trg->source)
		return n; /* a source's sink answered: its body means nothing */
	if (status == 200 && !job->dls) {
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
	struct job *job = arg;
	size_t n = size * nmemb, len = n;
	const char *colon;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget earlier headers. */
		ceb_buf_reset(&job->resp_hdrs);
		return n;
	}
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	colon = memchr(data, ':', len);
	if (!colon)
		return n;
	if (!((colon - data == 12 && strncasecmp(data, "content-type", 12) == 0) ||
	      (colon - data > 3 && strncasecmp(data, "ce-", 3) == 0)))
		return n;
	ceb_buf_append(&job->resp_hdrs, data, (size_t)(colon - data));
	ceb_buf_putc(&job->resp_hdrs, '\0');
	colon++;
	while (colon < data + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	ceb_buf_append(&job->resp_hdrs, colon, (size_t)(data + len - colon));
	ceb_buf_putc(&job->resp_hdrs, '\0');
	return n;
}

/* Header lines collected as "line\0line\0...", then laid out as one curl_slist (build_headers). */
struct hdr_ctx {
	struct ceb_buf text;
	size_t n;
};

static int add_header(void *arg, const char *name, const char *value)
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

static void hcache_clear(struct hdr_cache *c)
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
	struct ceb_event *ev = job->dls ? job->dls_ev : job->ev;
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

			if (ceb_http_encode_headers(ev, mode, add_header, &enc) < 0 ||
			    enc.text.failed) {
				ceb_buf_free(&enc.text);
				goto out;
			}
			hcache_clear(c);
			c->ev = ceb_event_ref(ev);
			c->text = enc.text;
			c->n = enc.n;
		}
		ceb_buf_append(&hc.text, c->text.p, c->text.len);
		hc.n = c->n;
	} else if (ceb_http_encode_headers(ev, mode, add_header, &hc) < 0) {
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
		add_header(&hc, "Content-Type",
		           ""); /* no datacontenttype: send none, not curl's form type */
	if (!job->trg->source)
		add_header(&hc, "Prefer", "reply");
	add_header(&hc, "Kn-Namespace", job->trg->ns);
	if ((job->dls ? &job->trg->dls : &job->trg->subscriber)->internal)
		add_header(&hc, CEB_INTERNAL_HEADER, job->trg->brk->dmn->token);
	tp = ceb_event_get(ev, "traceparent");
	if (tp)
		add_header(&hc, "traceparent", tp->value);
	add_header(&hc, "Expect", ""); /* no 100-continue round trip */
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

/* A curl handle from the pool, or a new one with the options every delivery shares. */
static CURL *easy_get(struct ceb_dispatcher *dsp)
{
	CURL *easy;

	if (dsp->npool)
		return dsp->pool[--dsp->npool];
	easy = curl_easy_init();
	if (!easy)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "cebroker/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	return easy;
}

static void job_fail_phase(struct ceb_dispatcher *dsp, struct job *job);

/* Start a transfer now (the caller checked there is a slot). */
static void job_launch(struct ceb_dispatcher *dsp, struct job *job)
{
	const struct ceb_delivery *dlv = job_delivery(job);
	struct ceb_daemon *dmn = job->trg->brk->dmn;
	uint64_t timeout = dlv->timeout_ms ? dlv->timeout_ms : dmn->set.default_timeout_ms;
	const void *body;
	size_t body_len;
	CURL *easy;

	if (!job->hdrs && job_prepare(job) < 0) {
		LOG_ERR(job->trg->label, "out of memory preparing a delivery");
		job->status = 0;
		job->cerr = CURLE_OUT_OF_MEMORY;
		job_fail_phase(dsp, job);
		return;
	}
	/* Pooled handles keep the shared options: only the per-delivery ones are set here. */
	easy = easy_get(dsp);
	if (!easy) {
		job->cerr = CURLE_OUT_OF_MEMORY;
		job_fail_phase(dsp, job);
		return;
	}
	job->easy = easy;
	ceb_buf_reset(&job->resp);
	ceb_buf_reset(&job->resp_hdrs);
	job->resp_over = 0;
	job->status = 0;
	job->cerr = CURLE_OK;
	if (job->body.p) {
		body = job->body.p;
		body_len = job->body.len;
	} else {
		body = ceb_event_data(job->dls ? job->dls_ev : job->ev, &body_len);
		if (!body) {
			body = "";
			body_len = 0;
		}
	}
	curl_easy_setopt(easy, CURLOPT_URL, job_url(job));
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->hdrs);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, job);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, job);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
	job->state = JOB_SENDING;
	job->lane->active++;
	dsp->nactive++;
	job->aprev = NULL;
	job->anext = dsp->active;
	if (dsp->active)
		dsp->active->aprev = job;
	dsp->active = job;
	job->attempt++;
	atomic_fetch_add(&job->trg->cnt.attempts, 1);
	if (curl_multi_add_handle(dsp->multi, easy) != CURLM_OK) {
		job->cerr = CURLE_FAILED_INIT;
		release_easy(dsp, job);
		job_fail_phase(dsp, job);
	}
}

/* Start a transfer when the Trigger's lane may, else queue the job in its lane (in order: a lane
 * with jobs waiting queues new ones behind them). */
static void job_start(struct ceb_dispatcher *dsp, struct job *job)
{
	if (job->lane->qhead || !may_start(dsp, job->lane))
		lane_enqueue(dsp, job);
	else
		job_launch(dsp, job);
}

/* Hand free slots to waiting jobs, one lane at a time in turn, until no lane may start. */
static void pump(struct ceb_dispatcher *dsp)
{
	bool progress = true;

	dsp->dirty = false;
	while (progress && dsp->ring_head) {
		size_t n = dsp->nring;

		progress = false;
		while (n-- && dsp->ring_head) {
			struct lane *ln = ring_pop(dsp);

			if (may_start(dsp, ln)) {
				job_launch(dsp, lane_dequeue(ln));
				progress = true;
			}
			if (ln->qhead && !ln->in_ring)
				ring_push(dsp, ln);
		}
	}
}

static int status_retryable(long status)
{
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

static void job_schedule_retry(struct ceb_dispatcher *dsp, struct job *job)
{
	const struct ceb_delivery *dlv = job_delivery(job);
	uint64_t wait = backoff_ms(dlv, job->attempt);
	curl_off_t ra = -1;

	if (dlv->retry_after_max_ms > 0 && (job->status == 429 || job->status == 503) &&
	    job->easy && curl_easy_getinfo(job->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0) {
		uint64_t ra_ms = (uint64_t)ra * 1000;
		if (ra_ms > (uint64_t)dlv->retry_after_max_ms)
			ra_ms = (uint64_t)dlv->retry_after_max_ms;
		if (ra_ms > wait)
			wait = ra_ms;
	}
	release_easy(dsp, job);
	atomic_fetch_add(&job->trg->cnt.retries, 1);
	LOG_DEBUG(job->trg->label, "attempt %d to %s failed (%ld), retrying in %llu ms",
	          job->attempt, job_url(job), job->status, (unsigned long long)wait);
	job->due = ceb_now_ms() + wait;
	job->state = JOB_WAITING;
	if (heap_push(dsp, job) < 0)
		job_start(dsp,
		          job); /* no memory for the timer: retry at once rather than lose it */
}

/* Add the knativeerror* extensions to a copy of the event, for the dead-letter sink. */
static struct ceb_event *make_dls_event(struct job *job)
{
	struct ceb_event *ev = ceb_event_clone(job->ev);
	struct ceb_buf b = CEB_BUF_INIT;
	const char *url = job->trg->subscriber.url;
	char code[16];

	char err[128];

	if (!ev)
		return NULL;
	ceb_event_set(ev, "knativeerrordest", CEB_TYPE_STRING, url, strlen(url), err, sizeof(err));
	if (job->status) {
		snprintf(code, sizeof(code), "%ld", job->status);
		ceb_event_set(ev, "knativeerrorcode", CEB_TYPE_STRING, code, strlen(code), err,
		              sizeof(err));
	}
	if (job->resp.len) {
		size_t n = job->resp.len < ERRORDATA_MAX ? job->resp.len : ERRORDATA_MAX;
		if (ceb_base64_encode(job->resp.p, n, &b) == 0 && b.p)
			ceb_event_set(ev, "knativeerrordata", CEB_TYPE_STRING, b.p, b.len, err,
			              sizeof(err));
	}
	ceb_buf_free(&b);
	return ev;
}

static const char *job_why(const struct job *job, char *buf, size_t len)
{
	if (job->status)
		snprintf(buf, len, "HTTP %ld", job->status);
	else if (job->resp_over)
		snprintf(buf, len, "reply over %zu bytes",
		         job->trg->brk->dmn->set.limits.max_event_size);
	else
		snprintf(buf, len, "%s", curl_easy_strerror(job->cerr));
	return buf;
}

/* The current phase is out of attempts (or met a status that is not retried). */
static void job_fail_phase(struct ceb_dispatcher *dsp, struct job *job)
{
	struct ceb_trigger *trg = job->trg;
	const struct ceb_attr *id = ceb_event_get(job->ev, "id");
	char why[128];

	release_easy(dsp, job);
	job_why(job, why, sizeof(why));
	if (!job->dls && trg->dls.url) {
		LOG_INFO(trg->label,
		         "event %s: %s after %d attempt(s) to %s; sending to the dead-letter sink",
		         id ? id->value : "?", why, job->attempt, job_url(job));
		job->dls_ev = make_dls_event(job);
		job_reset_phase(job);
		job->dls = 1;
		job->attempt = 0;
		if (!job->dls_ev) {
			job->cerr = CURLE_OUT_OF_MEMORY;
			job_fail_phase(dsp, job);
			return;
		}
		job_start(dsp, job);
		return;
	}
	if (!job->dls && trg->source && ceb_channel_has(&trg->brk->ch, CEB_CHANNEL_DURABLE)) {
		/* A durable source's progress moves only once its sink or dead-letter sink accepted
		 * (sources/source.h): the record stays, and its channel hands it again later. */
		LOG_WARN(trg->label,
		         "event %s: %s after %d attempt(s) to %s, and no dead-letter sink: left in "
		         "the source, to come again",
		         id ? id->value : "?", why, job->attempt, job_url(job));
		job_settle(dsp, job, CEB_SETTLE_FAILED);
		return;
	}
	if (!job->dls) {
		LOG_WARN(trg->label,
		         "event %s dropped: %s after %d attempt(s) to %s, and no dead-letter sink",
		         id ? id->value : "?", why, job->attempt, job_url(job));
		atomic_fetch_add(&trg->cnt.dropped, 1);
		job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	LOG_ERR(trg->label,
	        "event %s not delivered: dead-letter sink %s failed too (%s after %d attempt(s))",
	        id ? id->value : "?", job_url(job), why, job->attempt);
	atomic_fetch_add(&trg->cnt.lost, 1);
	job_settle(dsp, job, CEB_SETTLE_FAILED);
}

static void job_failed_attempt(struct ceb_dispatcher *dsp, struct job *job, int retryable)
{
	/* Shutting down, a KafkaSource's record that failed is left uncommitted: the next start
	 * reads it again, sooner than a retry would (its sink may be our own Broker, which now
	 * answers 503 to everyone). */
	if (job->trg->source && ceb_channel_has(&job->trg->brk->ch, CEB_CHANNEL_DURABLE) &&
	    atomic_load(&dsp->dmn->draining)) {
		LOG_DEBUG(job->trg->label, "shutting down: record left for the next start");
		job_settle(dsp, job, CEB_SETTLE_FAILED);
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
	inbox_push(job->dsp, job);
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
	struct ceb_trigger *trg = job->trg;
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
		LOG_WARN(trg->label, "reply from %s is not a CloudEvent: %s", job_url(job),
		         rc < 0 ? err : "a batch is not a reply");
		for (size_t i = 0; i < nevs; i++)
			ceb_event_unref(evs[i]);
		free(evs);
		release_easy(dsp, job);
		/* Knative's broker answers 502 here, which its channel retries. */
		job->status = 502;
		job_failed_attempt(dsp, job, 1);
		return;
	}
	release_easy(dsp, job);
	ttl = ceb_event_get(job->ev, "knativebrokerttl");
	ttlv = ttl ? (ttl->type == CEB_TYPE_INTEGER ? ttl->ival : strtol(ttl->value, NULL, 10))
	           : dmn->set.max_ttl;
	ttlv--;
	if (ttlv <= 0) {
		const struct ceb_attr *id = ceb_event_get(evs[0], "id");
		LOG_WARN(trg->label, "reply %s dropped: knativebrokerttl exhausted (a reply loop?)",
		         id ? id->value : "?");
		atomic_fetch_add(&trg->cnt.ttl_exhausted, 1);
		ceb_event_unref(evs[0]);
		free(evs);
		atomic_fetch_add(&trg->cnt.delivered, 1);
		job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	ceb_event_set_int(evs[0], "knativebrokerttl", (int32_t)ttlv);
	job->state = JOB_REPLYING;
	ceb_broker_publish(trg->brk, evs[0], reply_done, job);
	ceb_event_unref(evs[0]);
	free(evs);
}

static void job_transfer_done(struct ceb_dispatcher *dsp, struct job *job, CURLcode res)
{
	struct ceb_trigger *trg = job->trg;

	job->cerr = res;
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &job->status);
	if (res != CURLE_OK) {
		if (job->resp_over) {
			LOG_WARN(trg->label, "reply from %s is over %zu bytes", job_url(job),
			         trg->brk->dmn->set.limits.max_event_size);
			job->status = 0;
		} else if (job->status >= 200 && job->status < 300) {
			job->status = 0; /* the answer was cut short: not a success */
		} else if (job->status >= 100 && !status_retryable(job->status)) {
			/* A final status arrived, its body did not: still final. */
			job_failed_attempt(dsp, job, 0);
			return;
		}
		job_failed_attempt(dsp, job, 1);
		return;
	}
	if (job->status >= 200 && job->status < 300) {
		/* A reply is a 200 with a body, or a binary-mode event with no data (ce- headers only). */
		if (!job->dls && job->status == 200 && !trg->source &&
		    (job->resp.len || has_header(&job->resp_hdrs, "ce-specversion"))) {
			job_reply(dsp, job);
			return;
		}
		if (job->dls)
			atomic_fetch_add(&trg->cnt.dead_lettered, 1);
		else
			atomic_fetch_add(&trg->cnt.delivered, 1);
		job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	/* 1xx, 3xx (redirects are never followed) and 4xx other than 404/408/409/429 are final. */
	job_failed_attempt(dsp, job, status_retryable(job->status));
}

static void job_begin(struct ceb_dispatcher *dsp, struct job *job)
{
	struct ceb_trigger *trg = job->trg;

	if (!trg->prefiltered && trg->filter && !ceb_filter_match(trg->filter, job->ev)) {
		job_settle(dsp, job, CEB_SETTLE_DONE);
		return;
	}
	job_start(dsp, job);
}

static void take_inbox(struct ceb_dispatcher *dsp)
{
	struct job *list, *next;

	pthread_mutex_lock(&dsp->lock);
	list = dsp->inbox;
	dsp->inbox = dsp->inbox_tail = NULL;
	pthread_mutex_unlock(&dsp->lock);
	for (struct job *job = list; job; job = next) {
		next = job->next;
		if (job->state == JOB_REPLIED) {
			if (job->reply_status == 0) {
				atomic_fetch_add(&job->trg->cnt.replies, 1);
				atomic_fetch_add(&job->trg->cnt.delivered, 1);
				job_settle(dsp, job, CEB_SETTLE_DONE);
			} else {
				/* The reply could not be stored: the whole delivery failed (Knative's rule). */
				LOG_WARN(job->trg->label,
				         "reply not stored (%s): delivery will be retried",
				         ceb_strerror(job->reply_status));
				job->status = job->reply_status == CEB_EFULL ? 429 : 503;
				job_failed_attempt(dsp, job, 1);
			}
		} else {
			job->lane = lane_of(dsp, job->trg);
			job_begin(dsp, job);
		}
	}
}

/* ---- the loop: curl's sockets in our epoll (curl_multi_socket_action), so that an event costs
 * work only on its connection; curl_multi_perform would poll every transfer each time. */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
	struct ceb_dispatcher *dsp = arg;
	struct epoll_event ev = {0};

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* curl forgets the socket's assigned pointer with it. */
		epoll_ctl(dsp->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
	ev.data.fd = s;
	/* A socket new to curl's watch list has no assigned pointer yet: add it, else modify. */
	if (epoll_ctl(dsp->epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0) {
		LOG_ERR(dsp->label, "cannot watch a socket: %s", strerror(errno));
		return -1;
	}
	if (!socketp)
		curl_multi_assign(dsp->multi, s, dsp);
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct ceb_dispatcher *dsp = arg;

	(void)multi;
	dsp->curl_due = timeout_ms < 0 ? UINT64_MAX : ceb_now_ms() + (uint64_t)timeout_ms;
	return 0;
}

static void take_completions(struct ceb_dispatcher *dsp)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(dsp->multi, &left))) {
		struct job *job = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
		job_transfer_done(dsp, job, msg->data.result);
	}
	/* Slots freed by finished transfers go to waiting jobs at once. */
	if (dsp->dirty)
		pump(dsp);
}

/* Milliseconds until the next thing to do: a retry, curl's timer, or at most a second. */
static int wait_ms(struct ceb_dispatcher *dsp)
{
	uint64_t now = ceb_now_ms(), due = now + 1000;
	int empty;

	if (dsp->nheap && dsp->heap[0]->due < due)
		due = dsp->heap[0]->due;
	if (dsp->curl_due < due)
		due = dsp->curl_due;
	if (dsp->idle_since && !dsp->trimmed && dsp->idle_since + IDLE_TRIM_MS < due)
		due = dsp->idle_since + IDLE_TRIM_MS;
	pthread_mutex_lock(&dsp->lock);
	empty = dsp->inbox == NULL;
	pthread_mutex_unlock(&dsp->lock);
	return !empty || due <= now ? 0 : (int)(due - now);
}

/* A burst leaves curl handles in the pool and free pages with the allocator: once the dispatcher
 * has been idle a while, keep a few handles and hand the rest back to the system, so that an idle
 * daemon stays small. Connections stay open for the next burst. */
static void idle_housekeeping(struct ceb_dispatcher *dsp)
{
	uint64_t now = ceb_now_ms();

	if (atomic_load(&dsp->busy) || dsp->nheap) {
		dsp->idle_since = 0;
		dsp->trimmed = false;
		return;
	}
	if (!dsp->idle_since) {
		dsp->idle_since = now;
		return;
	}
	if (dsp->trimmed || now - dsp->idle_since < IDLE_TRIM_MS)
		return;
	while (dsp->npool > POOL_KEEP)
		curl_easy_cleanup(dsp->pool[--dsp->npool]);
	hcache_clear(&dsp->hcache);
	release_free_pages();
	dsp->trimmed = true;
}

static void *dispatcher_main(void *arg)
{
	struct ceb_dispatcher *dsp = arg;
	struct epoll_event evs[64];
	int running, n;

	while (!atomic_load(&dsp->stop)) {
		uint64_t now;

		take_inbox(dsp);
		now = ceb_now_ms();
		while (dsp->nheap && dsp->heap[0]->due <= now)
			job_start(dsp, heap_pop(dsp));
		if (dsp->dirty)
			pump(dsp);
		if (dsp->curl_due <= ceb_now_ms()) {
			dsp->curl_due = UINT64_MAX;
			curl_multi_socket_action(dsp->multi, CURL_SOCKET_TIMEOUT, 0, &running);
			take_completions(dsp);
		}
		n = epoll_wait(dsp->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait_ms(dsp));
		for (int i = 0; i < n; i++) {
			int mask = 0;

			if (evs[i].data.fd == dsp->wakefd) {
				uint64_t cnt;
				/* Reset the counter; the inbox is taken at the top of the
				 * loop. EAGAIN only means there was nothing left to reset. */
				if (read(dsp->wakefd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					LOG_DEBUG(dsp->label, "wake-up: %s", strerror(errno));
				continue;
			}
			if (evs[i].events & EPOLLIN)
				mask |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				mask |= CURL_CSELECT_ERR;
			curl_multi_socket_action(dsp->multi, evs[i].data.fd, mask, &running);
		}
		take_completions(dsp);
		idle_housekeeping(dsp);
	}
	return NULL;
}

struct ceb_dispatcher *ceb_dispatcher_new(struct ceb_daemon *dmn, int index)
{
	struct ceb_dispatcher *dsp = calloc(1, sizeof(*dsp));

	if (!dsp)
		return NULL;
	dsp->dmn = dmn;
	dsp->index = index;
	dsp->slots = dmn->set.max_inflight > SLOTS ? dmn->set.max_inflight : SLOTS;
	snprintf(dsp->label, sizeof(dsp->label), "dispatcher %d", index);
	pthread_mutex_init(&dsp->lock, NULL);
	dsp->curl_due = UINT64_MAX;
	dsp->epfd = epoll_create1(EPOLL_CLOEXEC);
	dsp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dsp->multi = curl_multi_init();
	if (dsp->epfd < 0 || dsp->wakefd < 0 || !dsp->multi) {
		ceb_dispatcher_free(dsp);
		return NULL;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = dsp->wakefd};
		if (epoll_ctl(dsp->epfd, EPOLL_CTL_ADD, dsp->wakefd, &ev) < 0) {
			ceb_dispatcher_free(dsp);
			return NULL;
		}
	}
	curl_multi_setopt(dsp->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(dsp->multi, CURLMOPT_SOCKETDATA, dsp);
	curl_multi_setopt(dsp->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(dsp->multi, CURLMOPT_TIMERDATA, dsp);
	/* Keep connections to busy subscribers open across deliveries. */
	curl_multi_setopt(dsp->multi, CURLMOPT_MAXCONNECTS, 1024L);
	return dsp;
}

int ceb_dispatcher_start(struct ceb_dispatcher *dsp)
{
	if (!dsp->lanes && lanes_build(dsp) < 0)
		return CEB_ENOMEM;
	if (pthread_create(&dsp->thread, NULL, dispatcher_main, dsp) != 0)
		return CEB_EIO;
	dsp->started = 1;
	return 0;
}

size_t ceb_dispatcher_busy(struct ceb_dispatcher *dsp)
{
	return atomic_load(&dsp->busy);
}

/* Settle everything still held as failed: the memory channel counts it lost, a durable one
 * redelivers it after a restart. */
static size_t fail_all(struct ceb_dispatcher *dsp)
{
	size_t n = ceb_dispatcher_busy(dsp);

	for (;;) {
		struct job *list;

		pthread_mutex_lock(&dsp->lock);
		list = dsp->inbox;
		dsp->inbox = dsp->inbox_tail = NULL;
		pthread_mutex_unlock(&dsp->lock);
		if (!list && !dsp->nheap && !dsp->active && !dsp->ring_head)
			break;
		/* Settling may hand more messages in: loop until nothing is left. */
		for (struct job *job = list, *next; job; job = next) {
			next = job->next;
			atomic_fetch_add(&job->trg->cnt.lost, 1);
			job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->nheap) {
			struct job *job = heap_pop(dsp);
			atomic_fetch_add(&job->trg->cnt.lost, 1);
			job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->active) {
			struct job *job = dsp->active;
			atomic_fetch_add(&job->trg->cnt.lost, 1);
			job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->ring_head) {
			struct lane *ln = ring_pop(dsp);
			while (ln->qhead) {
				struct job *job = lane_dequeue(ln);
				atomic_fetch_add(&job->trg->cnt.lost, 1);
				job_settle(dsp, job, CEB_SETTLE_FAILED);
			}
		}
	}
	return n;
}

size_t ceb_dispatcher_abandon(struct ceb_dispatcher *dsp)
{
	return dsp ? fail_all(dsp) : 0;
}

void ceb_dispatcher_stop(struct ceb_dispatcher *dsp)
{
	if (!dsp || !dsp->started)
		return;
	atomic_store(&dsp->stop, 1);
	wake_up(dsp);
	pthread_join(dsp->thread, NULL);
	dsp->started = 0;
}

void ceb_dispatcher_free(struct ceb_dispatcher *dsp)
{
	if (!dsp)
		return;
	ceb_dispatcher_stop(dsp);
	fail_all(dsp);
	for (size_t i = 0; i < dsp->npool; i++)
		curl_easy_cleanup(dsp->pool[i]);
	free(dsp->pool);
	free(dsp->heap);
	free(dsp->lanes);
	hcache_clear(&dsp->hcache);
	if (dsp->multi)
		curl_multi_cleanup(dsp->multi);
	if (dsp->epfd >= 0)
		close(dsp->epfd);
	if (dsp->wakefd >= 0)
		close(dsp->wakefd);
	pthread_mutex_destroy(&dsp->lock);
	free(dsp);
}
