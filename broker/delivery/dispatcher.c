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
#include "broker/libcurl.h"
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/delivery/dispatcher.h"
#include "broker/delivery/internal.h"
#include "broker/error.h"
#include "broker/log.h"

int ceb_delivery_ca_blob(const char *ca_certs, char **out, size_t *len)
{
	struct ceb_buf b = CEB_BUF_INIT;
	CURL *easy = curl_easy_init();
	char *path = NULL, chunk[16384];
	FILE *f = NULL;
	size_t n;

	ceb_buf_printf(&b, "%s\n", ca_certs);
	/* libcurl's built-in bundle, which CURLOPT_CAINFO_BLOB replaces: read it into the blob so
	 * that the system's CAs are still trusted. */
	if (easy && curl_easy_getinfo(easy, CURLINFO_CAINFO, &path) == CURLE_OK && path)
		f = fopen(path, "re");
	while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ceb_buf_append(&b, chunk, n);
	if (f)
		fclose(f);
	curl_easy_cleanup(easy);
	*out = ceb_buf_steal(&b, len);
	return *out ? 0 : CEB_ENOMEM;
}

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

int dsp_heap_push(struct ceb_dispatcher *dsp, struct job *job)
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

void dsp_inbox_push(struct ceb_dispatcher *dsp, struct job *job)
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
static struct ceb_dispatcher *pick_dispatcher(struct ceb_subscription *trg)
{
	struct ceb_daemon *dmn = trg->dsp->dmn;
	unsigned i;

	if (dmn->ndsp < 2 || trg->ordered)
		return trg->dsp;
	i = atomic_fetch_add_explicit(&dmn->dsp[0]->rr, 1, memory_order_relaxed);
	return dmn->dsp[i % dmn->ndsp];
}

void ceb_dispatcher_on_msg(void *subscription, struct ceb_event *ev, void *handle)
{
	struct ceb_subscription *trg = subscription;
	struct ceb_dispatcher *dsp = pick_dispatcher(trg);
	struct job *job = calloc(1, sizeof(*job));

	if (!job) {
		/* The channel calls us under its own lock, so the message cannot be given back from
		 * here (settle would deadlock), and dropping it would lose an acknowledged event
		 * silently. Out of memory for a 200-byte job: stop loudly; a durable channel
		 * redelivers after the restart. */
		CEB_LOG_ERR(trg->label, "out of memory queueing a delivery: exiting");
		abort();
	}
	atomic_fetch_add(&dsp->busy, 1);
	atomic_fetch_add(&trg->held, 1);
	atomic_fetch_add_explicit(&trg->st.jobs, 1, memory_order_relaxed);
	job->trg = trg;
	job->dsp = dsp;
	job->ev = ev;
	job->handle = handle;
	job->in_us = ceb_now_us();
	dsp_inbox_push(dsp, job);
}

/* ---- lanes ---- */

int ceb_dispatcher_attach(struct ceb_daemon *dmn, struct ceb_subscription *trg)
{
	trg->lanes = calloc(dmn->ndsp, sizeof(*trg->lanes));
	if (!trg->lanes)
		return CEB_ENOMEM;
	for (size_t i = 0; i < dmn->ndsp; i++)
		trg->lanes[i].trg = trg;
	return 0;
}

void ceb_dispatcher_detach(struct ceb_subscription *trg)
{
	free(trg->lanes);
	trg->lanes = NULL;
}

static struct lane *lane_of(struct ceb_dispatcher *dsp, const struct ceb_subscription *trg)
{
	return trg->lanes ? &trg->lanes[dsp->index] : &dsp->spare;
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

void dsp_lane_enqueue(struct ceb_dispatcher *dsp, struct job *job)
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

bool dsp_may_start(const struct ceb_dispatcher *dsp, const struct lane *ln)
{
	return ln->active < MIN_SHARE || dsp->nactive < dsp->slots;
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

			if (dsp_may_start(dsp, ln)) {
				dsp_job_launch(dsp, lane_dequeue(ln));
				progress = true;
			}
			if (ln->qhead && !ln->in_ring)
				ring_push(dsp, ln);
		}
	}
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
				dsp_job_settle(dsp, job, CEB_SETTLE_DONE);
			} else {
				/* The reply could not be stored: the whole delivery failed (Knative's rule).
				 * The subscriber answered well: the log must not say it did not. */
				job->fail = job->reply_status == CEB_EFULL ? FAIL_REPLY_FULL
				                                           : FAIL_REPLY_UNAVAIL;
				dsp_job_failed_attempt(dsp, job, 1);
			}
		} else {
			job->lane = lane_of(dsp, job->trg);
			dsp_job_begin(dsp, job);
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
		CEB_LOG_ERR(dsp->label, "cannot watch a socket: %s", strerror(errno));
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

	while (dsp->multi && (msg = curl_multi_info_read(dsp->multi, &left))) {
		struct job *job = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
		dsp_job_transfer_done(dsp, job, msg->data.result);
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
	if (dsp->h1_due && dsp->h1_due < due)
		due = dsp->h1_due;
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
	dsp_hcache_clear(&dsp->hcache);
	dsp_h1_trim(dsp);
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

		dsp_h1_reap(dsp);
		take_inbox(dsp);
		now = ceb_now_ms();
		while (dsp->nheap && dsp->heap[0]->due <= now)
			dsp_job_start(dsp, heap_pop(dsp));
		if (dsp->dirty)
			pump(dsp);
		if (dsp->curl_due <= ceb_now_ms()) {
			dsp->curl_due = UINT64_MAX;
			if (dsp->multi)
				curl_multi_socket_action(dsp->multi, CURL_SOCKET_TIMEOUT, 0,
				                         &running);
			take_completions(dsp);
		}
		if (dsp->h1_due && dsp->h1_due <= ceb_now_ms())
			dsp_h1_expire(dsp);
		n = epoll_wait(dsp->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait_ms(dsp));
		for (int i = 0; i < n; i++) {
			int mask = 0;

			if (dsp_h1_tagged(evs[i].data.u64)) {
				dsp_h1_event(dsp, evs[i].data.u64, evs[i].events);
				continue;
			}
			if (evs[i].data.fd == dsp->wakefd) {
				uint64_t cnt;
				/* Reset the counter; the inbox is taken at the top of the
				 * loop. EAGAIN only means there was nothing left to reset. */
				if (read(dsp->wakefd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					CEB_LOG_DEBUG(dsp->label, "wake-up: %s", strerror(errno));
				continue;
			}
			if (evs[i].events & EPOLLIN)
				mask |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				mask |= CURL_CSELECT_ERR;
			if (dsp->multi)
				curl_multi_socket_action(dsp->multi, evs[i].data.fd, mask,
				                         &running);
		}
		take_completions(dsp);
		idle_housekeeping(dsp);
	}
	return NULL;
}

/* The dispatcher's libcurl multi handle, made on its first libcurl transfer (https, a host name
 * not learned yet, or --delivery-client libcurl). Dispatcher thread only. */
CURLM *dsp_multi(struct ceb_dispatcher *dsp)
{
	if (dsp->multi)
		return dsp->multi;
	dsp->multi = curl_multi_init();
	if (!dsp->multi) {
		static int told;

		if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
			CEB_LOG_ERR(dsp->label,
			            "libcurl cannot start (https and host names cannot be "
			            "delivered): %s",
			            *ceb_libcurl_error() ? ceb_libcurl_error() : "out of memory");
		return NULL;
	}
	curl_multi_setopt(dsp->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(dsp->multi, CURLMOPT_SOCKETDATA, dsp);
	curl_multi_setopt(dsp->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(dsp->multi, CURLMOPT_TIMERDATA, dsp);
	/* Keep connections to busy subscribers open across deliveries. */
	curl_multi_setopt(dsp->multi, CURLMOPT_MAXCONNECTS, 1024L);
	return dsp->multi;
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
	if (dsp->epfd < 0 || dsp->wakefd < 0) {
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
	if (dsp_h1_init(dsp) < 0) {
		ceb_dispatcher_free(dsp);
		return NULL;
	}
	return dsp;
}

int ceb_dispatcher_start(struct ceb_dispatcher *dsp)
{
	if (pthread_create(&dsp->thread, NULL, dispatcher_main, dsp) != 0)
		return CEB_EIO;
	pthread_setname_np(dsp->thread, "ceb-dispatch");
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
			dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->nheap) {
			struct job *job = heap_pop(dsp);
			atomic_fetch_add(&job->trg->cnt.lost, 1);
			dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->active) {
			struct job *job = dsp->active;
			atomic_fetch_add(&job->trg->cnt.lost, 1);
			dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
		}
		while (dsp->ring_head) {
			struct lane *ln = ring_pop(dsp);
			while (ln->qhead) {
				struct job *job = lane_dequeue(ln);
				atomic_fetch_add(&job->trg->cnt.lost, 1);
				dsp_job_settle(dsp, job, CEB_SETTLE_FAILED);
			}
		}
	}
	return n;
}

size_t ceb_dispatcher_give_back(struct ceb_dispatcher *dsp)
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
	dsp_h1_free(dsp);
	for (size_t i = 0; i < dsp->npool; i++)
		curl_easy_cleanup(dsp->pool[i]);
	free(dsp->pool);
	free(dsp->heap);
	dsp_hcache_clear(&dsp->hcache);
	if (dsp->multi)
		curl_multi_cleanup(dsp->multi);
	if (dsp->epfd >= 0)
		close(dsp->epfd);
	if (dsp->wakefd >= 0)
		close(dsp->wakefd);
	pthread_mutex_destroy(&dsp->lock);
	free(dsp);
}
