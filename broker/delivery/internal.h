/* What the dispatcher's two files share, and nothing else includes: dispatcher.c (the thread, its
 * curl multi loop, inbox, timer heap and lanes) and attempt.c (a job's life: one message's attempts
 * at the subscriber and the dead-letter sink, its reply, its settle). All of it runs on the
 * dispatcher's own thread but the inbox, which the lock guards. */
#ifndef CEB_DELIVERY_INTERNAL_H
#define CEB_DELIVERY_INTERNAL_H

#include "broker/libcurl.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/buf.h"
#include "broker/endpoint.h"

#define ERRORDATA_MAX 1024 /* bytes of the response body kept for knativeerrordata */
#define SLOTS \
	128              /* transfers running at once per dispatcher (or --max-inflight if more),
			      beyond the minimum shares */
#define MIN_SHARE    1   /* transfers each Trigger may run whatever the others hold */
#define IDLE_TRIM_MS 200 /* after this long with nothing to deliver, give memory back */
#define POOL_KEEP    8   /* curl handles kept through idle times */

#define URL_SHOWN 1024 /* bytes of a URL in a log line */
#define WHY_MAX   400  /* bytes of job_why(), with room for a Broker's label */

/* A job's phases (job->dls): the subscriber; the dead-letter sink; a Subscription's reply sent on
 * to its reply destination (retried on its own: the subscriber is not called again). */
#define PHASE_SUBSCRIBER 0
#define PHASE_DLS        1
#define PHASE_REPLY      2

enum job_state {
	JOB_NEW = 0,  /* in the inbox, not started */
	JOB_WAITING,  /* in the timer heap */
	JOB_SENDING,  /* a transfer is running */
	JOB_REPLYING, /* the reply is being published */
	JOB_REPLIED,  /* back in the inbox with the reply's publish status */
	JOB_QUEUED,   /* in its lane, waiting for a transfer slot */
};

/* Why an attempt failed although the subscriber answered 2xx, or failed with no answer at all. */
enum job_fail {
	FAIL_NONE = 0,
	FAIL_REPLY_INVALID, /* a body that is not one CloudEvent */
	FAIL_REPLY_TOO_BIG, /* a body over the event size limit */
	FAIL_ANSWER_CUT,    /* the 2xx answer's body stopped short */
	FAIL_REPLY_FULL,    /* the reply could not be stored: the Broker's channel is full */
	FAIL_REPLY_UNAVAIL, /* the reply could not be stored: the channel is unavailable */
	FAIL_NOT_RESENT,    /* no answer after the request was written: not sent again */
};

struct job;

/* One Trigger's share of one dispatcher: its running transfers and its jobs waiting for a slot. */
struct lane {
	const struct ceb_subscription *trg; /* NULL for an unused slot of the table */
	size_t active;
	struct job *qhead, *qtail; /* waiting, oldest first */
	struct lane *rnext;        /* the ring of lanes with waiting jobs */
	bool in_ring;
};

/* One message of one Trigger on its way to the subscriber or the dead-letter sink. */
struct job {
	struct ceb_subscription *trg;
	struct ceb_dispatcher *dsp; /* the dispatcher that runs it */
	struct lane *lane;          /* set when the dispatcher takes the job in */
	struct ceb_event *ev;       /* as the channel gave it */
	struct ceb_event *dls_ev;   /* ev + knativeerror* extensions, in the dead-letter phase */
	struct ceb_event *reply_ev; /* the subscriber's reply, in the reply phase */
	void *handle;
	enum job_state state;
	int dls;            /* the phase: PHASE_SUBSCRIBER, PHASE_DLS or PHASE_REPLY */
	int attempt;        /* attempts made in this phase */
	long status;        /* the subscriber's last HTTP status, 0 for none */
	enum job_fail fail; /* what went wrong beyond status and cerr */
	bool requested;     /* this transfer let libcurl write a request (on_prereq) */
	CURLcode cerr;
	char cerr_text[CURL_ERROR_SIZE]; /* libcurl's words on cerr (a certificate's fault...) */
	int reply_status;
	uint64_t due;
	uint64_t in_us; /* when the channel handed it over (its processing latency starts) */
	size_t heap_idx;
	CURL *easy;
	struct curl_slist *hdrs; /* built once per phase, one allocation (see build_headers) */
	struct ceb_buf body;     /* structured-mode body, per phase */
	struct ceb_buf resp;     /* response body, capped */
	struct ceb_buf
	        resp_hdrs; /* "name\0value\0" pairs of content-type and ce-* response headers */
	int resp_over;     /* a 200 body went over the reply cap */
	/* the HTTP/1.1 client of h1.c, in place of easy (h1_on) */
	bool h1_on;
	struct h1_conn *h1; /* the connection while the attempt runs */
	const char *h1_url;
	long h1_status;            /* the answer's status, 0 for none */
	uint64_t h1_total_us;      /* request to answer (CURLINFO_TOTAL_TIME_T) */
	curl_off_t h1_retry_after; /* seconds, -1 for none (CURLINFO_RETRY_AFTER) */
	struct job *next;          /* inbox, or the lane's queue */
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
	struct lane spare;  /* for a subscription without lanes (none should have) */
	struct lane *ring_head, *ring_tail;
	size_t nring;
	bool dirty; /* a slot was freed or a job queued: run pump() */
	struct hdr_cache hcache;
	struct h1_state *h1; /* h1.c's connections */
	uint64_t h1_due;     /* when h1.c has a deadline or a failure to report; 0: none */
	uint64_t idle_since; /* when the last job ended (0: busy) */
	bool trimmed;        /* memory was given back since */
	atomic_uint rr; /* dispatcher 0 only: spreads unordered messages over the dispatchers */
};

/* ---- dispatcher.c ---- */

/* The libcurl multi handle, made on first use; NULL when libcurl cannot start. */
CURLM *dsp_multi(struct ceb_dispatcher *dsp);
/* Push a job on the timer heap (it runs again at job->due); CEB_ENOMEM when the heap cannot grow. */
int dsp_heap_push(struct ceb_dispatcher *dsp, struct job *job);
/* Hand a job to the dispatcher thread (any thread). */
void dsp_inbox_push(struct ceb_dispatcher *dsp, struct job *job);
/* Queue a job in its Trigger's lane until a transfer slot frees. */
void dsp_lane_enqueue(struct ceb_dispatcher *dsp, struct job *job);
/* Whether the lane may start a transfer now (its share, or a free slot). */
bool dsp_may_start(const struct ceb_dispatcher *dsp, const struct lane *ln);

/* ---- attempt.c ---- */

/* hdr_ctx callback: one "name: value" request header; CEB_ENOMEM when out of memory. */
int dsp_add_header(void *arg, const char *name, const char *value);
/* Empty the binary-mode header cache. */
void dsp_hcache_clear(struct hdr_cache *c);
/* A job the thread took from its inbox: new (start it), or back with its reply's status. */
void dsp_job_begin(struct ceb_dispatcher *dsp, struct job *job);
/* An attempt failed: retry after the backoff, or go on to the dead-letter phase. */
void dsp_job_failed_attempt(struct ceb_dispatcher *dsp, struct job *job, int retryable);
/* Start the job's transfer now (a slot is free). */
void dsp_job_launch(struct ceb_dispatcher *dsp, struct job *job);
/* Settle the job's message with its channel and free the job. */
void dsp_job_settle(struct ceb_dispatcher *dsp, struct job *job, enum ceb_settle how);
/* Start an attempt, or queue it in its lane when no slot is free. */
void dsp_job_start(struct ceb_dispatcher *dsp, struct job *job);
/* A transfer ended: success, reply, retry or dead letter. */
void dsp_job_transfer_done(struct ceb_dispatcher *dsp, struct job *job, CURLcode res);
/* Why the job's last attempt failed, for a log line (buf of len bytes). */
const char *dsp_job_why(const struct job *job, char *buf, size_t len);

/* The body and header lines of an answer, from libcurl's callbacks or h1.c: n when taken, less to
 * abort the transfer (a reply too big, or no memory). */
size_t dsp_job_body(struct job *job, long status, const char *data, size_t n);
void dsp_job_header(struct job *job, const char *data, size_t n);

/* ---- h1.c: a POST to a plain http:// subscriber at an IP address, without libcurl ---- */

struct h1_conn;
struct h1_state;
int dsp_h1_init(struct ceb_dispatcher *dsp);
void dsp_h1_free(struct ceb_dispatcher *dsp);
/* Whether h1.c can send to this URL (plain http, an IP address, no proxy, no CA of its own). */
bool dsp_h1_eligible(const struct ceb_dispatcher *dsp, const char *url, bool has_ca);
/* libcurl connected to ip for url: the native client may use that address for the URL's host
 * name for a while (libcurl's DNS cache timeout). */
void dsp_h1_learn(struct ceb_dispatcher *dsp, const char *url, const char *ip);
/* Start the attempt (job->h1_url, job->hdrs): 0, or -1 when it could not (errno). */
int dsp_h1_start(struct ceb_dispatcher *dsp, struct job *job, const void *body, size_t body_len,
                 uint64_t timeout_ms);
/* An epoll event whose data has h1.c's tag (dsp_h1_tagged). */
void dsp_h1_event(struct ceb_dispatcher *dsp, uint64_t data, uint32_t events);
static inline bool dsp_h1_tagged(uint64_t data)
{
	return data >> 63;
}
/* Attempts past their deadline, failures seen during a launch; sets dsp->h1_due again. */
void dsp_h1_expire(struct ceb_dispatcher *dsp);
/* Give back the buffers of idle connections (the dispatcher has been idle a while). */
void dsp_h1_trim(struct ceb_dispatcher *dsp);
/* Free the connections closed since the last call (none is named by a pending epoll event). */
void dsp_h1_reap(struct ceb_dispatcher *dsp);
/* Close the connection of an attempt that ends before its answer. */
void dsp_h1_abort(struct ceb_dispatcher *dsp, struct job *job);

#endif
