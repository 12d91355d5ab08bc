/* The records of the ingress's libmicrohttpd glue (ingress.c): a connection, a listener, the
 * ingress, a request in MHD's hands; and what outlives one request: the record kept for the
 * connection's next request, and the resumes queued per MHD thread (conn.c). */
#ifndef CEB_INGRESS_CONN_H
#define CEB_INGRESS_CONN_H

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/ingress/request.h"
#include "broker/ingress/tls.h"

/* Where a connection's current request is, as the request timeout sees it. */
enum conn_phase {
	CONN_IDLE,  /* between requests: no byte of the next one seen yet */
	CONN_HEAD,  /* a request began: its line and header block are coming */
	CONN_BODY,  /* routed: its body is coming */
	CONN_DRAIN, /* refused (answer in ans_status, ans_reason): the rest of its body is dropped */
	CONN_OWNED, /* the body is in: the answer is ours to give, the timeout no longer applies */
	CONN_CLOSING, /* answered straight on the socket; MHD closes the connection */
};

#define RX_UNKNOWN UINT64_MAX

struct mhd_req;

/* A connection, from MHD's connection notifications (its socket context): the watchdog and MHD's
 * thread for the connection share it under its lock. It lives in the ingress's list until MHD
 * notifies the close, which happens before MHD closes the socket: a watchdog holding the list lock
 * never writes to a socket that was closed, or reused. */
struct conn {
	struct conn *prev, *next; /* ing->conns, under ing->lock */
	int fd;
	bool secure;          /* a connection to the HTTPS listener */
	gnutls_session_t tls; /* its session, if MHD told it */
	pthread_mutex_t lock; /* guards the fields below */
	enum conn_phase phase;
	uint64_t start_ms; /* the current request's first byte (as seen), 0 in CONN_IDLE */
	uint64_t rx_mark;  /* bytes received when the previous request ended, or RX_UNKNOWN */
	struct ceb_endpoint *brk; /* the request's Broker once routed (its counters), else NULL */
	int ans_status;           /* CONN_DRAIN: the answer */
	char ans_reason[sizeof(((struct ceb_request *)0)->reason)];
	/* MHD's thread alone: the current request's start as on_uri() saw it (start_ms then), so
	 * that on_head() need not take the lock again to read it */
	uint64_t uri_ms;
	/* MHD's thread alone: the previous request's record, ended (ceb_request_fini) but kept with
	 * its body buffer for the next request on this keep-alive connection, or NULL */
	struct mhd_req *spare;
};

/* One listening socket: the main one (HTTPS with --tls-cert), the plain one of --listen-plain, and
 * with TLS a loopback one that takes only the daemon's deliveries to itself (which carry its
 * internal token), so that a ref to a Broker needs no certificate. */
struct listener {
	struct ceb_ingress *ing;
	struct MHD_Daemon *mhd;
	bool tls;
	bool internal_only;
};

#define LISTENERS 3

/* The resumes of one MHD thread's suspended requests. MHD 0.9 takes its daemon's mutex and writes
 * its eventfd for each MHD_resume_connection(); from a completing thread that is a contended lock
 * and a wake-up per event. So the first completion resumes its request itself (the leader) and the
 * ones that come while that resume is on its way queue here; the MHD thread, running the leader,
 * resumes them all from its own thread (drain), with no other thread at its daemon's lock. */
struct resumeq {
	struct resumeq *next; /* ing->queues, under ing->lock */
	const struct ceb_ingress *ing;
	pthread_mutex_t lock; /* guards the fields below */
	struct mhd_req *head, *tail;
	bool leader; /* a leader was resumed and has not drained yet */
};

struct ceb_ingress {
	struct listener lis[LISTENERS];
	size_t nlis;
	struct ceb_tls *tls; /* NULL without --tls-cert */
	struct ceb_daemon *dmn;
	atomic_int suspended; /* requests waiting for a publish: MHD must not stop while any is */
	struct MHD_Response *accepted; /* the 202 answer, built once and shared by every request */
	pthread_mutex_t lock;          /* guards conns and stopping */
	pthread_cond_t wake;           /* stop the watchdog */
	struct conn *conns;
	bool stopping;
	bool watching; /* the watchdog thread runs */
	bool mhd_0975; /* the running libmicrohttpd is 0.9.75: dropped_bytes() applies */
	pthread_t watchdog;
	struct resumeq *queues; /* one per MHD thread that suspended a request, under lock */
};

#define INLINE_HEADERS 32

struct hdr_list {
	struct ceb_http_header *h; /* inl, until a request has more headers */
	size_t n, cap;
	int oom;
	struct ceb_http_header inl[INLINE_HEADERS];
};

/* A request in MHD's hands: the logic's state plus its connection, for resuming. */
struct mhd_req {
	struct ceb_request req;
	struct MHD_Connection *conn;
	struct ceb_ingress *ing;
	struct conn *cn;
	struct hdr_list hl;   /* the header fields, pointing into MHD's memory for the request */
	struct hdr_list ql;   /* the query's parameters, the same way */
	const char *internal; /* the first CEB_INTERNAL_HEADER field's value, or NULL */
	bool suspended;
	bool owned;            /* the body is complete: cn moved to CONN_OWNED */
	struct resumeq *q;     /* while suspended: the queue of the MHD thread that suspended it */
	struct mhd_req *qnext; /* in q */
};

/* Frees a request record. */
void ceb_mhd_req_free(struct mhd_req *mr);
/* A request ended (MHD's thread for cn): its record is kept as cn's spare for the connection's next
 * request, or freed. */
void ceb_mhd_req_end(struct mhd_req *mr, struct conn *cn);
/* Frees a spare record (ended already); accepts NULL. */
void ceb_mhd_req_free_spare(struct mhd_req *mr);

/* request.c's suspend and resume for a request in MHD's hands (arg: its struct mhd_req). */
void ceb_mhd_suspend(void *arg);
void ceb_mhd_resume(void *arg);
/* A resumed request runs (or ends) on its MHD thread: the resumes queued behind it go out. */
void ceb_mhd_drain(struct resumeq *q);
/* Frees the ingress's resume queues, once its MHD daemons stopped. */
void ceb_mhd_queues_free(struct ceb_ingress *ing);

#endif
