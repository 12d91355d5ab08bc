/* What h1.c (connections, requests, the dispatcher's side) and h1_answer.c (reading an answer)
 * share: a connection of the delivery's own HTTP/1.1 client. Nothing else includes it. */
#ifndef CEB_DELIVERY_H1_H
#define CEB_DELIVERY_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "broker/buf.h"

struct job;
struct h1_state;

#define H1_TAG             (1ULL << 63) /* epoll data of a connection of ours, not curl's socket */
#define H1_MAX_HEAD        (100 * 1024) /* libcurl's CURL_MAX_HTTP_HEADER */
#define H1_MAX_IDLE        1024 /* idle connections kept per dispatcher (curl: MAXCONNECTS) */
#define H1_CONNECT_MS      5000
#define H1_MAX_AGE_MS      118000 /* an idle connection older than this is not reused (libcurl's) */
#define H1_MAX_RETRY_AFTER 21600  /* seconds: libcurl caps Retry-After the same */

enum conn_state {
	C_CONNECTING,
	C_WRITING,
	C_READING,
	C_IDLE,
	C_DEAD
};
enum body_mode {
	B_NONE,
	B_LENGTH,
	B_CHUNK_SIZE,
	B_CHUNK_DATA,
	B_CHUNK_CRLF,
	B_TRAILER,
	B_CLOSE
};

struct h1_conn {
	int fd;
	enum conn_state state;
	struct h1_state *h1;
	struct h1_conn *inext, *iprev; /* the idle list */
	struct job *job;
	struct sockaddr_storage addr;
	socklen_t alen;
	uint32_t events; /* what epoll watches for */
	bool reused;     /* this request goes on a connection an earlier one used */
	bool wrote;      /* a byte of this request was written */
	bool got;        /* a byte of the answer arrived */
	uint64_t t0_us, deadline_ms, connect_deadline_ms;
	uint64_t parked_ms; /* when it went idle */
	int name;           /* the learned host name it goes to (h1_state.names), -1: an address */
	size_t hscan;       /* bytes of the answer's head already searched for its end */
	bool close_seen;    /* Connection: close */
	/* the request: the head in out, then the body (not copied) */
	struct ceb_buf out;
	size_t off; /* bytes of head + body written */
	const char *body;
	size_t body_len;
	/* the answer */
	char *r;
	size_t rlen, rcap;
	bool head_done;
	long status;
	enum body_mode mode;
	uint64_t left; /* bytes left in the body or the chunk */
	bool keepalive;
	int pending_err; /* connect() failed at once with this errno */
};

/* The status line and headers once whole in c->r (interim 1xx answers skipped): 1 done, 0 more
 * wanted, -1 not HTTP/1.x or too large. */
int h1_parse_head(struct h1_conn *c);
/* The body in c->r, handed to attempt.c as it comes: 1 complete, 0 more wanted, -1 bad framing,
 * -2 refused by attempt.c (a reply too big, no memory). */
int h1_parse_body(struct h1_conn *c);

#endif
