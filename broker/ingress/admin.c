/* The admin endpoint on the ingress's listener: POST /admin/replay rewinds one Trigger's position on
 * a channel that keeps history (channel_ops.rewind), for `cebroker replay`. Only loopback peers may
 * call it: anyone who can reach the port could otherwise make subscribers receive old events. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/ingress/request.h"
#include "channels/channel.h"

static bool loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (!memcmp(b, mapped, sizeof(mapped)) && b[12] == 127);
	}
	return false;
}

static const char *query(const struct ceb_request_head *head, const char *name)
{
	for (size_t i = 0; head->query && i < head->nquery; i++)
		if (!strcmp(head->query[i].name, name))
			return head->query[i].value;
	return NULL;
}

static enum ceb_route answer(struct ceb_request *req, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static enum ceb_route answer(struct ceb_request *req, int status, const char *fmt, ...)
{
	va_list ap;

	req->status = status;
	va_start(ap, fmt);
	vsnprintf(req->reason, sizeof(req->reason), fmt, ap);
	va_end(ap);
	return CEB_ROUTE_ANSWER;
}

static bool parse_i64(const char *s, long long min, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min)
		return false;
	*out = v;
	return true;
}

enum ceb_route ceb_admin_request(struct ceb_request *req, const struct ceb_request_head *head)
{
	const char *trigger, *since, *offset, *slash;
	long long since_ms = -1, from = -1;
	struct ceb_subscription *trg = NULL;
	uint64_t first = 0, count = 0;
	char err[256] = "";
	unsigned rd;
	int rc;

	if (!loopback(head->client))
		return answer(req, 403, "the admin endpoint answers only loopback clients");
	if (strcmp(head->method, "POST") != 0)
		return answer(req, 405, "only POST is allowed on /admin/replay");
	trigger = query(head, "trigger");
	since = query(head, "since_ms");
	offset = query(head, "offset");
	if (!trigger || !(slash = strchr(trigger, '/')) || slash == trigger || !slash[1])
		return answer(req, 400, "give the Trigger as ?trigger=NAMESPACE/NAME");
	if ((since && offset) || (!since && !offset))
		return answer(req, 400, "give one of since_ms (ms since the epoch) or offset");
	if (since && !parse_i64(since, 0, &since_ms))
		return answer(req, 400, "since_ms: not a count of ms since the epoch: %.40s",
		              since);
	if (offset && !parse_i64(offset, 0, &from))
		return answer(req, 400, "offset: not a position (0 or more): %.40s", offset);
	/* the Trigger list is a reload's: read within a read section, which a reload waits out
	 * before it stops or frees what it unlinked */
	rd = ceb_daemon_read_begin(req->dmn);
	for (struct ceb_subscription *t = req->dmn->triggers; t && !trg; t = t->next)
		if (t->cfg && strlen(t->ns) == (size_t)(slash - trigger) &&
		    !strncmp(t->ns, trigger, (size_t)(slash - trigger)) &&
		    !strcmp(t->name, slash + 1))
			trg = t;
	if (!trg) {
		ceb_daemon_read_end(req->dmn, rd);
		return answer(req, 404, "no Trigger %.200s", trigger);
	}
	if (!trg->brk->ch.ops || !trg->brk->ch.ops->rewind) {
		enum ceb_route r = answer(
		        req, 409,
		        "Trigger %.200s: the channel of %.60s (%s) keeps no history to replay "
		        "(a DurableChannel and a Kafka Broker do)",
		        trigger, trg->brk->label,
		        trg->brk->ch.ops ? trg->brk->ch.ops->name : "none");
		ceb_daemon_read_end(req->dmn, rd);
		return r;
	}
	rc = trg->brk->ch.ops->rewind(trg->brk->ch.ctx, trg->sub, since_ms, from, &first, &count,
	                              err, sizeof(err));
	ceb_daemon_read_end(req->dmn, rd);
	if (rc < 0)
		return answer(req, rc == CEB_EINVAL ? 400 : 503, "Trigger %.200s: %s", trigger,
		              err);
	return answer(req, 200,
	              "Trigger %.200s rewound to position %llu: %llu events to deliver again",
	              trigger, (unsigned long long)first, (unsigned long long)count);
}
