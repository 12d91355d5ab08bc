/* A small HTTP/1.1 client for the common delivery: a POST to a plain http:// subscriber at an IP
 * address (or at a host name libcurl resolved in the last minute: dsp_h1_learn), on the
 * dispatcher's own epoll loop, over pooled keep-alive connections. libcurl costs more
 * CPU per request than nginx spends receiving and proxying one (README, "Where the time goes"); this
 * writes the request with one writev() and parses the answer in place. Anything else (https, a host
 * name not resolved yet, credentials in the URL, a proxy in the environment) goes through libcurl.
 *
 * It keeps libcurl's semantics where the rest of attempt.c relies on them: the status, the CURLcode
 * of a failure (and curl_easy_strerror's words for it), the Retry-After header, the response headers
 * and body through the same sinks as libcurl's callbacks, and the one-request-per-attempt rule: a
 * pooled connection found closed before anything was written is replaced, but a request that was
 * written and got no answer is never written again (FAIL_NOT_RESENT). */
#include "autoconfig.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "broker/clock.h"
#include "broker/delivery/h1.h"
#include "broker/delivery/internal.h"
#include "broker/stats.h"

/* A host name's address as libcurl last connected to it (its resolver, its happy eyeballs): the
 * native client uses it until it expires, then libcurl resolves the name again. */
#define H1_NAMES   32
#define H1_NAME_MS 60000 /* libcurl's DNS cache timeout */
struct h1_name {
	char host[64];
	struct sockaddr_storage addr; /* the port is the URL's */
	socklen_t alen;
	uint64_t expires_ms; /* 0: unused */
};

struct h1_state {
	struct h1_name names[H1_NAMES];
	struct h1_conn *dead; /* closed, freed once the epoll batch that may name them is done */
	struct h1_conn *idle; /* most recently used first */
	size_t nidle;
	bool disabled; /* a proxy is set in the environment: libcurl honours it */
};

struct h1_url {
	struct sockaddr_storage addr;
	socklen_t alen;
	int name; /* index in h1_state.names, -1 for an address in the URL */
	const char *authority, *path;
	size_t authority_len;
};

static void h1_close(struct h1_conn *c);

int dsp_h1_init(struct ceb_dispatcher *dsp)
{
	static const char *const proxies[] = {"http_proxy", "all_proxy", "ALL_PROXY"};

	dsp->h1 = calloc(1, sizeof(*dsp->h1));
	if (!dsp->h1)
		return -1;
	dsp->h1->disabled = dsp->dmn->set.delivery_libcurl;
	for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
		const char *v = getenv(proxies[i]);
		if (v && *v)
			dsp->h1->disabled = true;
	}
	return 0;
}

void dsp_h1_free(struct ceb_dispatcher *dsp)
{
	if (!dsp->h1)
		return;
	while (dsp->h1->idle)
		h1_close(dsp->h1->idle);
	dsp_h1_reap(dsp);
	free(dsp->h1);
	dsp->h1 = NULL;
}

/* The host part of an http:// URL: host (without brackets) and the port; false when not plain
 * http or when it carries credentials. */
static bool split_url(const char *url, char *host, size_t hostcap, unsigned long *portp,
                      const char **ap, const char **endp)
{
	const char *a, *end, *hp;
	size_t hlen;
	unsigned long port = 80;

	if (strncmp(url, "http://", 7) != 0)
		return false;
	a = url + 7;
	end = a + strcspn(a, "/?#");
	if (end == a || memchr(a, '@', (size_t)(end - a)))
		return false;
	if (*a == '[') {
		hp = memchr(a, ']', (size_t)(end - a));
		if (!hp)
			return false;
		hlen = (size_t)(hp - a - 1);
		if (hlen >= hostcap)
			return false;
		memcpy(host, a + 1, hlen);
		hp++;
	} else {
		hp = memchr(a, ':', (size_t)(end - a));
		if (!hp)
			hp = end;
		hlen = (size_t)(hp - a);
		if (hlen >= hostcap)
			return false;
		memcpy(host, a, hlen);
	}
	host[hlen] = '\0';
	if (hp < end) {
		char *pe;
		if (*hp != ':' || hp + 1 == end)
			return false;
		port = strtoul(hp + 1, &pe, 10);
		if (pe != end || port == 0 || port > 65535)
			return false;
	}
	*portp = port;
	*ap = a;
	*endp = end;
	return true;
}

static void set_port(struct sockaddr_storage *ss, unsigned long port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* Where a URL goes: an IP address in it, or a host name libcurl connected to lately. */
static bool parse_url_names(const struct h1_state *h1, const char *url, struct h1_url *u)
{
	char host[64];
	unsigned long port;
	const char *a, *end;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&u->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->addr;

	if (!split_url(url, host, sizeof(host), &port, &a, &end))
		return false;
	memset(&u->addr, 0, sizeof(u->addr));
	u->name = -1;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		u->alen = sizeof(*s4);
	} else if (*a == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		u->alen = sizeof(*s6);
	} else if (*a != '[') {
		const struct h1_name *n = NULL;
		uint64_t now = ceb_now_ms();

		for (size_t i = 0; h1 && i < H1_NAMES && !n; i++) {
			if (h1->names[i].expires_ms > now && strcmp(h1->names[i].host, host) == 0) {
				n = &h1->names[i];
				u->name = (int)i;
			}
		}
		if (!n)
			return false;
		u->addr = n->addr;
		u->alen = n->alen;
	} else {
		return false; /* a bracketed host that is not an IPv6 address (a zone id): libcurl */
	}
	set_port(&u->addr, port);
	u->authority = a;
	u->authority_len = (size_t)(end - a);
	u->path = end;
	return true;
}

void dsp_h1_learn(struct ceb_dispatcher *dsp, const char *url, const char *ip)
{
	struct h1_state *h1 = dsp->h1;
	struct sockaddr_storage ss;
	socklen_t alen;
	char host[64];
	unsigned long port;
	const char *a, *end;
	struct h1_name *slot = NULL;
	uint64_t now = ceb_now_ms();

	if (!h1 || h1->disabled || !ip || !split_url(url, host, sizeof(host), &port, &a, &end) ||
	    *a == '[')
		return;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		alen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		alen = sizeof(struct sockaddr_in6);
	} else {
		return;
	}
	if (strcmp(host, ip) == 0)
		return; /* an address already */
	for (size_t i = 0; i < H1_NAMES; i++) {
		struct h1_name *n = &h1->names[i];
		if (strcmp(n->host, host) == 0) {
			slot = n;
			break;
		}
		if (!slot || n->expires_ms < slot->expires_ms)
			slot = n; /* the oldest, or an unused one */
	}
	snprintf(slot->host, sizeof(slot->host), "%s", host);
	slot->addr = ss;
	slot->alen = alen;
	slot->expires_ms = now + H1_NAME_MS;
}

bool dsp_h1_eligible(const struct ceb_dispatcher *dsp, const char *url, bool has_ca)
{
	struct h1_url u;

	return dsp->h1 && !dsp->h1->disabled && !has_ca && parse_url_names(dsp->h1, url, &u);
}

static int watch(struct ceb_dispatcher *dsp, struct h1_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = H1_TAG | (uint64_t)(uintptr_t)c};
	int op = c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (c->events == events)
		return 0;
	if (epoll_ctl(dsp->epfd, op, c->fd, &ev) < 0)
		return -1;
	c->events = events;
	return 0;
}

static void idle_unlink(struct h1_conn *c)
{
	struct h1_state *h1 = c->h1;

	if (c->iprev)
		c->iprev->inext = c->inext;
	else if (h1->idle == c)
		h1->idle = c->inext;
	else
		return; /* not in the list */
	if (c->inext)
		c->inext->iprev = c->iprev;
	c->inext = c->iprev = NULL;
	h1->nidle--;
}

static void h1_close(struct h1_conn *c)
{
	if (c->state == C_DEAD)
		return;
	if (c->state == C_IDLE)
		idle_unlink(c);
	if (c->fd >= 0)
		close(c->fd); /* epoll forgets it with the last reference */
	c->fd = -1;
	c->state = C_DEAD;
	c->job = NULL;
	c->inext = c->h1->dead;
	c->h1->dead = c;
}

void dsp_h1_trim(struct ceb_dispatcher *dsp)
{
	if (!dsp->h1)
		return;
	for (struct h1_conn *c = dsp->h1->idle, *next; c; c = next) {
		next = c->inext;
		if (ceb_now_ms() - c->parked_ms > H1_MAX_AGE_MS) {
			h1_close(c);
			continue;
		}
		free(c->r);
		c->r = NULL;
		c->rcap = 0;
		ceb_buf_free(&c->out);
	}
}

void dsp_h1_reap(struct ceb_dispatcher *dsp)
{
	struct h1_conn *c;

	if (!dsp->h1)
		return;
	while ((c = dsp->h1->dead)) {
		dsp->h1->dead = c->inext;
		ceb_buf_free(&c->out);
		free(c->r);
		free(c);
	}
}

/* An idle connection to addr whose peer has not closed it, else NULL. */
static struct h1_conn *take_idle(struct h1_state *h1, const struct h1_url *u)
{
	for (struct h1_conn *c = h1->idle, *next; c; c = next) {
		char b;
		ssize_t n;

		next = c->inext;
		if (ceb_now_ms() - c->parked_ms > H1_MAX_AGE_MS) {
			h1_close(c); /* idle too long: the path to it may be gone without a word */
			continue;
		}
		if (c->alen != u->alen || memcmp(&c->addr, &u->addr, u->alen) != 0)
			continue;
		idle_unlink(c);
		/* Closed, reset, or talking out of turn: not for a request. */
		n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return c;
		h1_close(c);
	}
	return NULL;
}

static struct h1_conn *open_conn(struct ceb_dispatcher *dsp, const struct h1_url *u)
{
	struct h1_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return NULL;
	c->h1 = dsp->h1;
	c->addr = u->addr;
	c->alen = u->alen;
	c->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		free(c);
		return NULL;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = C_CONNECTING;
	return c;
}

/* The head of the request: what libcurl would write for this job, Expect and a Content-Type
 * with no value left out as libcurl leaves them out. */
static int build_head(struct h1_conn *c, const struct h1_url *u, const struct job *job,
                      size_t body_len)
{
	struct ceb_buf *b = &c->out;
	char num[32];

	ceb_buf_reset(b);
	ceb_buf_reserve(b, 512);
	ceb_buf_puts(b, "POST ");
	if (*u->path == '/' || *u->path == '?') {
		if (*u->path == '?')
			ceb_buf_putc(b, '/');
		ceb_buf_append(b, u->path, strcspn(u->path, "#"));
	} else {
		ceb_buf_putc(b, '/');
	}
	ceb_buf_puts(b, " HTTP/1.1\r\nHost: ");
	ceb_buf_append(b, u->authority, u->authority_len);
	ceb_buf_puts(b, "\r\nUser-Agent: cebroker/" PACKAGE_VERSION "\r\nAccept: */*\r\n");
	for (const struct curl_slist *l = job->hdrs; l; l = l->next) {
		size_t n = strlen(l->data);
		const char *colon = memchr(l->data, ':', n), *v;

		/* "Name:" with nothing after the colon tells libcurl not to send it; a value that
		 * ends in a colon (ce-source: urn:a:) is sent. */
		for (v = colon ? colon + 1 : l->data + n; *v == ' ' || *v == '\t'; v++)
			;
		if (colon && !*v)
			continue;
		ceb_buf_append(b, l->data, n);
		ceb_buf_puts(b, "\r\n");
	}
	snprintf(num, sizeof(num), "Content-Length: %zu\r\n\r\n", body_len);
	ceb_buf_puts(b, num);
	return b->failed ? -1 : 0;
}

/* Write what is left of the request: 0 all of it, 1 the socket is full, or -errno. */
static int do_write(struct h1_conn *c)
{
	size_t head = c->out.len, total = head + c->body_len;

	while (c->off < total) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (c->off < head)
			iov[n++] = (struct iovec){c->out.p + c->off, head - c->off};
		if (c->body_len)
			iov[n++] = (struct iovec){
			        (char *)c->body + (c->off > head ? c->off - head : 0),
			        c->body_len - (c->off > head ? c->off - head : 0)};
		w = sendmsg(c->fd, &(struct msghdr){.msg_iov = iov, .msg_iovlen = (size_t)n},
		            MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		c->wrote = true;
		c->off += (size_t)w;
	}
	return 0;
}

static void finish(struct ceb_dispatcher *dsp, struct h1_conn *c, CURLcode res);
static void restart(struct ceb_dispatcher *dsp, struct h1_conn *c);

/* The request could not be written (errno e). */
static void do_read(struct ceb_dispatcher *dsp, struct h1_conn *c);

static void write_failed(struct ceb_dispatcher *dsp, struct h1_conn *c, int e)
{
	struct job *job = c->job;

	if (c->wrote) {
		/* The subscriber may have answered before it reset the connection (a 413 to a
		 * large body): that answer, as libcurl would read it. */
		do_read(dsp, c);
		if (c->job != job)
			return;
	}
	if (c->reused && !c->wrote) {
		restart(dsp, c); /* a pooled connection that died idle: replaced, as libcurl does */
		return;
	}
	if (c->reused && !c->got) {
		job->fail = FAIL_NOT_RESENT;
		finish(dsp, c, CURLE_ABORTED_BY_CALLBACK);
		return;
	}
	snprintf(job->cerr_text, sizeof(job->cerr_text), "Failed sending data to the peer: %s",
	         strerror(e));
	finish(dsp, c, CURLE_SEND_ERROR);
}

static int send_now(struct ceb_dispatcher *dsp, struct h1_conn *c)
{
	int r = do_write(c);

	if (r < 0) {
		c->pending_err = -r;
		c->state = C_WRITING;
		dsp->h1_due = ceb_now_ms(); /* reported from the loop, not from inside the launch */
		return 0;
	}
	c->state = r ? C_WRITING : C_READING;
	return watch(dsp, c, r ? EPOLLIN | EPOLLOUT : EPOLLIN) < 0 ? -1 : 0;
}

int dsp_h1_start(struct ceb_dispatcher *dsp, struct job *job, const void *body, size_t body_len,
                 uint64_t timeout_ms)
{
	struct h1_url u;
	struct h1_conn *c;
	uint64_t now = ceb_now_ms();

	if (!parse_url_names(dsp->h1, job->h1_url, &u))
		return -1;
	c = take_idle(dsp->h1, &u);
	if (!c) {
		c = open_conn(dsp, &u);
		if (!c)
			return -1;
	} else {
		c->reused = true;
		c->state = C_WRITING;
	}
	if (build_head(c, &u, job, body_len) < 0) {
		h1_close(c);
		return -1;
	}
	c->job = job;
	job->h1 = c;
	c->body = body;
	c->body_len = body_len;
	c->off = 0;
	c->wrote = c->got = c->head_done = false;
	c->rlen = 0;
	c->status = 0;
	c->mode = B_NONE;
	c->left = 0;
	c->keepalive = true;
	c->close_seen = false;
	c->hscan = 0;
	c->name = u.name;
	c->pending_err = 0;
	c->t0_us = ceb_now_us();
	c->deadline_ms = now + timeout_ms;
	c->connect_deadline_ms = now + (timeout_ms < H1_CONNECT_MS ? timeout_ms : H1_CONNECT_MS);
	if (!dsp->h1_due || c->connect_deadline_ms < dsp->h1_due)
		dsp->h1_due = c->connect_deadline_ms;
	if (c->state == C_CONNECTING) {
		if (connect(c->fd, (struct sockaddr *)&u.addr, u.alen) < 0 &&
		    errno != EINPROGRESS) {
			/* Refused at once (loopback does that): reported from the loop, as libcurl
			 * would, not from inside the launch. */
			c->pending_err = errno;
			dsp->h1_due = now;
		}
		return watch(dsp, c, EPOLLOUT) < 0 ? -1 : 0;
	}
	/* A kept-alive connection takes the request at once; epoll already watches it for input. */
	return send_now(dsp, c);
}

/* Keep a connection whose answer was read whole for the next request to the same address. */
static void park(struct ceb_dispatcher *dsp, struct h1_conn *c)
{
	struct h1_state *h1 = dsp->h1;

	if (h1->nidle >= H1_MAX_IDLE || watch(dsp, c, EPOLLIN) < 0) {
		h1_close(c);
		return;
	}
	c->state = C_IDLE;
	c->job = NULL;
	c->reused = false;
	c->parked_ms = ceb_now_ms();
	c->iprev = NULL;
	c->inext = h1->idle;
	if (h1->idle)
		h1->idle->iprev = c;
	h1->idle = c;
	h1->nidle++;
}

/* The attempt is over: hand what came to attempt.c, the connection to the pool or closed. */
static void finish(struct ceb_dispatcher *dsp, struct h1_conn *c, CURLcode res)
{
	struct job *job = c->job;
	bool reuse = res == CURLE_OK && c->keepalive && c->rlen == 0 &&
	             c->off == c->out.len + c->body_len;

	job->h1_status = c->head_done ? c->status : 0;
	job->h1_total_us = ceb_now_us() - c->t0_us;
	job->requested = c->wrote;
	job->h1 = NULL;
	c->job = NULL;
	if (reuse)
		park(dsp, c);
	else
		h1_close(c);
	dsp_job_transfer_done(dsp, job, res);
}

/* The same request on a new connection (the pooled one was found closed before any byte went). */
static void restart(struct ceb_dispatcher *dsp, struct h1_conn *c)
{
	struct job *job = c->job;
	const char *body = c->body;
	size_t len = c->body_len;
	uint64_t now = ceb_now_ms(), left = c->deadline_ms > now ? c->deadline_ms - now : 1;

	c->job = NULL;
	job->h1 = NULL;
	h1_close(c);
	if (dsp_h1_start(dsp, job, body, len, left) < 0) {
		job->h1_status = 0;
		job->requested = false;
		snprintf(job->cerr_text, sizeof(job->cerr_text), "cannot open a connection: %s",
		         strerror(errno));
		dsp_job_transfer_done(dsp, job, CURLE_COULDNT_CONNECT);
	}
}

/* What came so far: finish the attempt when the answer is whole or wrong. True when finished. */
static bool parse(struct ceb_dispatcher *dsp, struct h1_conn *c)
{
	int r;

	if (!c->head_done) {
		r = h1_parse_head(c);
		if (r < 0) {
			snprintf(c->job->cerr_text, sizeof(c->job->cerr_text),
			         "the subscriber's answer is not HTTP/1.x");
			c->keepalive = false;
			finish(dsp, c, CURLE_WEIRD_SERVER_REPLY);
			return true;
		}
		if (!r)
			return false;
	}
	r = h1_parse_body(c);
	if (r == 0)
		return false;
	if (r == 1) {
		if (c->rlen)
			c->keepalive =
			        false; /* more than the answer: the connection is not trusted */
		finish(dsp, c, CURLE_OK);
	} else {
		c->keepalive = false;
		if (r == -1)
			snprintf(c->job->cerr_text, sizeof(c->job->cerr_text),
			         "the subscriber's answer has a bad chunked encoding");
		finish(dsp, c, r == -2 ? CURLE_WRITE_ERROR : CURLE_RECV_ERROR);
	}
	return true;
}

/* The connection ended (0) or failed (errno e) while the answer was awaited. */
static void ended(struct ceb_dispatcher *dsp, struct h1_conn *c, int e)
{
	struct job *job = c->job;

	c->keepalive = false;
	if (!c->got) {
		if (c->reused && c->wrote) {
			/* libcurl would send it again on a new connection; the subscriber may have it */
			job->fail = FAIL_NOT_RESENT;
			finish(dsp, c, CURLE_ABORTED_BY_CALLBACK);
			return;
		}
		if (c->reused && !c->wrote) {
			restart(dsp, c);
			return;
		}
		if (e)
			snprintf(job->cerr_text, sizeof(job->cerr_text), "Recv failure: %s",
			         strerror(e));
		finish(dsp, c, e ? CURLE_RECV_ERROR : CURLE_GOT_NOTHING);
		return;
	}
	if (c->head_done && c->mode == B_CLOSE && !e) {
		finish(dsp, c, CURLE_OK);
		return;
	}
	if (e)
		snprintf(job->cerr_text, sizeof(job->cerr_text), "Recv failure: %s", strerror(e));
	else if (c->head_done)
		snprintf(job->cerr_text, sizeof(job->cerr_text),
		         "transfer closed with the body unfinished");
	finish(dsp, c, c->head_done && !e ? CURLE_PARTIAL_FILE : CURLE_RECV_ERROR);
}

static void do_read(struct ceb_dispatcher *dsp, struct h1_conn *c)
{
	for (;;) {
		ssize_t n;
		size_t room;

		if (c->rcap - c->rlen < 1024) {
			size_t ncap = c->rcap ? c->rcap * 2 : 4096;
			char *r;
			if (ncap > 4 * H1_MAX_HEAD) {
				/* cannot happen: the parsers consume as they go, and refuse a head
				 * over H1_MAX_HEAD */
				c->keepalive = false;
				finish(dsp, c, CURLE_RECV_ERROR);
				return;
			}
			r = realloc(c->r, ncap);
			if (!r) {
				c->keepalive = false;
				finish(dsp, c, CURLE_OUT_OF_MEMORY);
				return;
			}
			c->r = r;
			c->rcap = ncap;
		}
		room = c->rcap - c->rlen;
		n = recv(c->fd, c->r + c->rlen, room, 0);
		if (n > 0) {
			c->got = true;
			c->rlen += (size_t)n;
			if (parse(dsp, c))
				return;
			if ((size_t)n < room)
				return; /* drained: epoll says when more comes */
			continue;
		}
		if (n == 0) {
			ended(dsp, c, 0);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			ended(dsp, c, errno);
		return;
	}
}

/* A learned address that did not take a connection: libcurl resolves the name again next time
 * (and tries its other addresses). */
static void forget_name(struct ceb_dispatcher *dsp, const struct h1_conn *c)
{
	if (c->name >= 0)
		dsp->h1->names[c->name].expires_ms = 0;
}

static void connect_failed(struct ceb_dispatcher *dsp, struct h1_conn *c, int e)
{
	snprintf(c->job->cerr_text, sizeof(c->job->cerr_text),
	         "Failed to connect to the subscriber: %s", strerror(e));
	forget_name(dsp, c);
	c->keepalive = false;
	finish(dsp, c, CURLE_COULDNT_CONNECT);
}

void dsp_h1_event(struct ceb_dispatcher *dsp, uint64_t data, uint32_t events)
{
	struct h1_conn *c = (struct h1_conn *)(uintptr_t)(data & ~H1_TAG);

	if (c->state == C_DEAD)
		return;
	if (c->state == C_IDLE) {
		h1_close(c); /* the subscriber closed it, or spoke out of turn */
		return;
	}
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err) {
			connect_failed(dsp, c, err);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		c->state = C_WRITING;
	}
	if (c->state == C_WRITING && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		/* An answer before the whole request went (a 413 to a large body): read first,
		 * as libcurl does, so that a reset after it does not hide it. */
		struct job *job = c->job;

		do_read(dsp, c);
		if (c->job != job)
			return;
	}
	if (c->state == C_WRITING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int r = do_write(c);
		if (r < 0) {
			write_failed(dsp, c, -r);
			return;
		}
		if (r == 0) {
			c->state = C_READING;
			if (watch(dsp, c, EPOLLIN) < 0) {
				ended(dsp, c, errno);
				return;
			}
		} else if (watch(dsp, c, EPOLLIN | EPOLLOUT) < 0) {
			ended(dsp, c, errno);
			return;
		}
	}
	if (c->state == C_READING && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		do_read(dsp, c);
}

/* Attempts past their time, and failures seen during a launch. The due connections are taken
 * first and then finished: finishing one may start other attempts, which go to the list's head. */
void dsp_h1_expire(struct ceb_dispatcher *dsp)
{
	uint64_t now = ceb_now_ms(), next = 0;
	struct h1_conn *due[64];
	size_t n;

	do {
		n = 0;
		for (struct job *job = dsp->active; job && n < 64; job = job->anext) {
			struct h1_conn *c = job->h1;
			if (c && (c->pending_err || now >= c->deadline_ms ||
			          (c->state == C_CONNECTING && now >= c->connect_deadline_ms)))
				due[n++] = c;
		}
		for (size_t i = 0; i < n; i++) {
			struct h1_conn *c = due[i];
			struct job *job = c->job;

			/* still that attempt's (connections are freed only by dsp_h1_reap) */
			if (c->state == C_DEAD || !job || job->h1 != c)
				continue;
			if (c->pending_err) {
				int e = c->pending_err;
				c->pending_err = 0;
				if (c->state == C_CONNECTING)
					connect_failed(dsp, c, e);
				else
					write_failed(dsp, c, e);
			} else if (c->state == C_CONNECTING && now >= c->connect_deadline_ms) {
				snprintf(job->cerr_text, sizeof(job->cerr_text),
				         "Connection timed out");
				forget_name(dsp, c);
				c->keepalive = false;
				finish(dsp, c, CURLE_OPERATION_TIMEDOUT);
			} else {
				snprintf(job->cerr_text, sizeof(job->cerr_text),
				         "Operation timed out with %zu bytes received", c->rlen);
				c->keepalive = false;
				finish(dsp, c, CURLE_OPERATION_TIMEDOUT);
			}
		}
	} while (n == 64);
	for (struct job *job = dsp->active; job; job = job->anext) {
		struct h1_conn *c = job->h1;
		uint64_t d;
		if (!c)
			continue;
		d = c->state == C_CONNECTING && c->connect_deadline_ms < c->deadline_ms
		            ? c->connect_deadline_ms
		            : c->deadline_ms;
		if (c->pending_err)
			d = now;
		if (!next || d < next)
			next = d;
	}
	dsp->h1_due = next;
}

/* The job's attempt ends before its answer (shutdown, a Trigger removed): close its connection. */
void dsp_h1_abort(struct ceb_dispatcher *dsp, struct job *job)
{
	struct h1_conn *c = job->h1;

	(void)dsp;
	if (!c)
		return;
	job->requested = c->wrote;
	job->h1 = NULL;
	c->job = NULL;
	h1_close(c);
}
