/* cebroker display: an HTTP subscriber that prints every CloudEvent it receives, in the format of
 * Knative's event_display (the CloudEvents Go SDK's Event.String()), or as JSON lines. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>
#include <microhttpd.h>

#include "broker/ce/base64.h"
#include "broker/buf.h"
#include "broker/cli/cmdline.h"
#include "broker/cli/commands.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"

/* Exit statuses, as the help text documents them. */
enum {
	DISPLAY_EXIT_OK = 0,
	DISPLAY_EXIT_FAIL = 1,
	DISPLAY_EXIT_USAGE = 2
};

#define DISPLAY_DEFAULT_LISTEN     "127.0.0.1:8081"
#define DISPLAY_CONNECTION_TIMEOUT 30u
/* SIGUSR1 is how the HTTP thread tells the main thread that --count was reached. */
#define DISPLAY_SIG_DONE SIGUSR1

static const char display_usage[] =
        "Usage: cebroker display [options]\n"
        "\n"
        "Accept CloudEvents over HTTP (binary, structured or batched mode) on any path and print\n"
        "each one on stdout, like Knative's event_display. The request's path is printed on\n"
        "stderr before its events (POST /orders).\n"
        "\n"
        "Options:\n"
        "  --listen HOST:PORT  where to listen (default: " DISPLAY_DEFAULT_LISTEN
        "); port 0 picks a\n"
        "                      free port; the address is printed on stderr\n"
        "  --status CODE       answer every event request with this status (default: 202), e.g.\n"
        "                      503 to see a sender retry\n"
        "  --count N           exit after N events\n"
        "  --json              print each event as one line of JSON (the CloudEvents JSON format)\n"
        "  --append TEXT       reply to each event (200, binary mode) with the event, TEXT\n"
        "                      appended to its data's \"message\" when the data is a JSON object\n"
        "                      that has one, else to the data: Knative's appender, for the steps\n"
        "                      of a Sequence\n"
        "  -h, --help          print this help\n"
        "\n"
        "Invalid requests are answered 400 (413, 415) with the reason, which is also printed on\n"
        "stderr. OPTIONS requests get the CloudEvents webhook handshake (WebHook-Allowed-Origin: "
        "*).\n"
        "SIGINT or SIGTERM stop it. Exit status: 0 when stopped or after --count events, 1 when "
        "it\n"
        "cannot listen, 2 on a usage error.\n"
        "\n"
        "Example:\n"
        "  cebroker display --listen 127.0.0.1:8081 &\n"
        "  cebroker send --to http://127.0.0.1:8081/ --type com.example.ping --data '{\"n\": 1}'\n";

enum display_opt_id {
	OPT_LISTEN,
	OPT_STATUS,
	OPT_COUNT,
	OPT_JSON,
	OPT_HELP,
	OPT_APPEND
};

static const struct ceb_cmd_opt display_opt_defs[] = {
        {"--listen", 1, OPT_LISTEN}, {"--status", 1, OPT_STATUS}, {"--count", 1, OPT_COUNT},
        {"--json", 0, OPT_JSON},     {"-h", 0, OPT_HELP},         {"--help", 0, OPT_HELP},
        {"--append", 1, OPT_APPEND},
};

struct display_opts {
	const char *listen;
	unsigned status;
	unsigned long count; /* 0: no limit */
	int json, help;
	const char *append; /* reply with the event, this appended (Knative's appender) */
};

/* State shared with the HTTP callbacks. libmicrohttpd runs them all on its one polling thread,
 * so `seen` and `stopping` need no lock; the main thread only waits for a signal. */
struct display {
	struct display_opts opts;
	struct ceb_limits lim;
	size_t max_body;
	pthread_t main_thread;
	unsigned long seen;
	int stopping;
};

/* One HTTP request while its body arrives. */
struct display_req {
	struct ceb_buf body;
	int too_big;
	int last; /* this request reached --count: stop once its response went out */
};

/* Collects the request headers for ceb_http_decode. */
struct display_headers {
	struct ceb_http_header *v;
	size_t n, cap;
};

static int display_parse_ulong(const char *s, unsigned long min, unsigned long max,
                               unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return CEB_EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return CEB_EINVAL;
	*out = v;
	return 0;
}

/* Accepts "--opt value" and "--opt=value". Returns 0 or DISPLAY_EXIT_USAGE after saying why. */
static int display_parse_args(int argc, char **argv, struct display_opts *o)
{
	unsigned long v;
	int i;

	for (i = 1;;) {
		const char *val;
		int id, rc = ceb_cmd_next_opt("display", display_opt_defs,
		                              sizeof(display_opt_defs) /
		                                      sizeof(display_opt_defs[0]),
		                              argc, argv, &i, &id, &val);

		if (rc != 1) {
			if (rc == 0)
				break;
			return rc;
		}
		switch (id) {
		case OPT_LISTEN: o->listen = val; break;
		case OPT_STATUS:
			if (display_parse_ulong(val, 200, 599, &v) < 0)
				return ceb_cmd_usage_error(
				        "display",
				        "--status must be an HTTP status from 200 "
				        "to 599, not '%s'",
				        val);
			o->status = (unsigned)v;
			break;
		case OPT_COUNT:
			if (display_parse_ulong(val, 1, (unsigned long)-1, &v) < 0)
				return ceb_cmd_usage_error("display",
				                           "--count must be a positive number, not "
				                           "'%s'",
				                           val);
			o->count = v;
			break;
		case OPT_JSON: o->json = 1; break;
		case OPT_APPEND: o->append = val; break;
		case OPT_HELP: o->help = 1; break;
		}
	}
	return 0;
}

/* HOST:PORT or [IPv6]:PORT to a socket address; an empty host means every interface. */
static int display_resolve(const char *listen_at, struct sockaddr_storage *ss, socklen_t *sslen,
                           char *errbuf, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	char host[256], port[16];
	const char *colon, *h = listen_at;
	size_t hlen;
	unsigned long v;
	int gai, rc = CEB_EINVAL;

	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (!close || close[1] != ':') {
			snprintf(errbuf, errlen, "'%s' is not HOST:PORT", listen_at);
			goto out;
		}
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon) {
			snprintf(errbuf, errlen, "'%s' is not HOST:PORT", listen_at);
			goto out;
		}
		hlen = (size_t)(colon - h);
	}
	if (hlen >= sizeof(host) || display_parse_ulong(colon + 1, 0, 65535, &v) < 0) {
		snprintf(errbuf, errlen, "'%s' is not HOST:PORT", listen_at);
		goto out;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, sizeof(port), "%lu", v);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (gai) {
		snprintf(errbuf, errlen, "cannot resolve '%s': %s", host, gai_strerror(gai));
		goto out;
	}
	if (res->ai_addrlen > sizeof(*ss)) {
		snprintf(errbuf, errlen, "cannot resolve '%s'", host);
		goto out;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	rc = 0;
out:
	if (res)
		freeaddrinfo(res);
	return rc;
}

/* Binds the listening socket ourselves so that a busy port gives a precise message, and so that
 * the real port is known when the user asked for port 0. */
static int display_listen(const char *listen_at, int *fdp, int *family, char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	int fd = -1, one = 1, rc;

	rc = display_resolve(listen_at, &ss, &sslen, errbuf, errlen);
	if (rc < 0)
		goto out;
	rc = CEB_EIO;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 128) < 0) {
		snprintf(errbuf, errlen, "cannot listen on %s: %s", listen_at, strerror(errno));
		goto out;
	}
	*family = ss.ss_family;
	*fdp = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void display_print_address(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		return;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		fprintf(stderr, "listening on http://[%s]:%u\n", host, port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
		fprintf(stderr, "listening on http://%s:%u\n", host, port);
	}
	fflush(stderr);
}

/* --- printing events --- */

static const char *const display_core_attrs[] = {
        "specversion", "type", "source", "subject", "id", "time", "dataschema", "datacontenttype",
};

static int display_is_core(const char *name)
{
	size_t k;

	for (k = 0; k < sizeof(display_core_attrs) / sizeof(display_core_attrs[0]); k++) {
		if (strcmp(name, display_core_attrs[k]) == 0)
			return 1;
	}
	return 0;
}

static int display_attr_cmp(const void *a, const void *b)
{
	const struct ceb_attr *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* true if the bytes are one complete JSON text, as cJSON reads it. */
static int display_is_json(const char *p, size_t len)
{
	const char *end = NULL;
	cJSON *doc;

	doc = cJSON_ParseWithLengthOpts(p, len, &end, 0);
	if (!doc)
		return 0;
	cJSON_Delete(doc);
	while (end < p + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	return end == p + len;
}

static void display_newline(struct ceb_buf *b, size_t depth)
{
	size_t i;

	/* Every line of the data is indented by two spaces under "Data,", plus two per level. */
	ceb_buf_puts(b, "\n  ");
	for (i = 0; i < depth; i++)
		ceb_buf_puts(b, "  ");
}

/* Re-indents valid JSON the way Go's json.Indent(dst, src, "  ", "  ") does, which is what
 * event_display prints: only whitespace changes, so numbers and strings keep their exact spelling
 * (cJSON_Print would rewrite them and indent with tabs). {} and [] stay on one line. */
static void display_json_indent(struct ceb_buf *b, const char *p, size_t len)
{
	size_t i, depth = 0;
	int need_indent = 0, in_string = 0;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (in_string) {
			ceb_buf_putc(b, c);
			if (c == '\\' && i + 1 < len)
				ceb_buf_putc(b, p[++i]);
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (need_indent && c != '}' && c != ']') {
			need_indent = 0;
			display_newline(b, ++depth);
		}
		switch (c) {
		case '"':
			in_string = 1;
			ceb_buf_putc(b, c);
			break;
		case '{':
		case '[':
			need_indent = 1; /* delayed, so that an empty one stays {} or [] */
			ceb_buf_putc(b, c);
			break;
		case ',':
			ceb_buf_putc(b, c);
			display_newline(b, depth);
			break;
		case ':': ceb_buf_puts(b, ": "); break;
		case '}':
		case ']':
			if (need_indent)
				need_indent = 0;
			else
				display_newline(b, depth ? --depth : 0);
			ceb_buf_putc(b, c);
			break;
		default: ceb_buf_putc(b, c); break;
		}
	}
}

/* The event_display text: context attributes in the Go SDK's order, extensions sorted by name,
 * then the data (JSON re-indented, text as is, anything else in base64). */
static int display_format_text(const struct ceb_event *ev, struct ceb_buf *b)
{
	const struct ceb_attr **exts = NULL;
	const struct ceb_attr *a;
	size_t i, n, next = 0;
	int rc = 0;

	ceb_buf_puts(b, "\xe2\x98\x81\xef\xb8\x8f  cloudevents.Event\nContext Attributes,\n");
	for (i = 0; i < sizeof(display_core_attrs) / sizeof(display_core_attrs[0]); i++) {
		a = ceb_event_get(ev, display_core_attrs[i]);
		if (a)
			ceb_buf_printf(b, "  %s: %s\n", a->name, a->value);
	}
	n = ceb_event_attr_count(ev);
	exts = calloc(n ? n : 1, sizeof(*exts));
	if (!exts) {
		rc = CEB_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(ev, i);
		if (a && !display_is_core(a->name))
			exts[next++] = a;
	}
	if (next) {
		qsort(exts, next, sizeof(*exts), display_attr_cmp);
		ceb_buf_puts(b, "Extensions,\n");
		for (i = 0; i < next; i++)
			ceb_buf_printf(b, "  %s: %s\n", exts[i]->name, exts[i]->value);
	}
	if (ceb_event_has_data(ev)) {
		size_t dlen = 0;
		const char *d = ceb_event_data(ev, &dlen);

		if (!d)
			d = "";
		if (ceb_media_type_is_json(ceb_event_content_type(ev)) &&
		    display_is_json(d, dlen)) {
			ceb_buf_puts(b, "Data,\n  ");
			display_json_indent(b, d, dlen);
		} else if (ceb_utf8_valid(d, dlen)) {
			ceb_buf_puts(b, "Data,\n  ");
			ceb_buf_append(b, d, dlen);
		} else {
			ceb_buf_printf(b, "Data (binary, %zu bytes, shown in base64),\n  ", dlen);
			ceb_base64_encode(d, dlen, b);
		}
		ceb_buf_putc(b, '\n');
	}
	rc = b->failed ? CEB_ENOMEM : 0;
out:
	free(exts);
	return rc;
}

/* Prints one event on stdout in one write, and flushes, so that a reader sees whole events. */
static int display_print(const struct display *dsp, const struct ceb_event *ev)
{
	struct ceb_buf b = CEB_BUF_INIT;
	int rc;

	if (dsp->opts.json) {
		rc = ceb_json_encode(ev, &b);
		if (rc == 0)
			rc = ceb_buf_putc(&b, '\n');
	} else {
		rc = display_format_text(ev, &b);
	}
	if (rc == 0) {
		fwrite(b.p, 1, b.len, stdout);
		fflush(stdout);
	}
	ceb_buf_free(&b);
	return rc;
}

/* --- HTTP --- */

static enum MHD_Result display_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                              const char *value)
{
	struct display_headers *h = cls;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct ceb_http_header *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return MHD_NO;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n].name = key;
	h->v[h->n].value = value ? value : "";
	h->n++;
	return MHD_YES;
}

static enum MHD_Result display_reply(struct MHD_Connection *conn, unsigned status, const char *text,
                                     int handshake)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = text ? strlen(text) : 0;

	resp = MHD_create_response_from_buffer(len, (void *)(text ? text : ""),
	                                       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (len)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        "text/plain; charset=utf-8");
	if (handshake) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
		MHD_add_response_header(resp, "WebHook-Allowed-Origin", "*");
		MHD_add_response_header(resp, "WebHook-Allowed-Rate", "*");
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static unsigned display_status_for(int err)
{
	switch (err) {
	case CEB_ETOOBIG: return MHD_HTTP_CONTENT_TOO_LARGE;
	case CEB_EUNSUPPORTED: return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
	case CEB_ENOMEM: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	return MHD_HTTP_BAD_REQUEST;
}

/* A request path for the terminal: control bytes (the path is percent-decoded) shown as '?', cut
 * with "..." past n - 1 bytes. */
static void display_safe(char *dst, size_t n, const char *s)
{
	size_t i = 0;

	for (; s[i] && i + 1 < n; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	dst[i] = '\0';
	if (s[i] && n > 4)
		memcpy(dst + n - 4, "...", 4);
}

static int display_add_header(void *arg, const char *name, const char *value)
{
	return MHD_add_response_header(arg, name, value) == MHD_YES ? 0 : CEB_ENOMEM;
}

/* Knative's appender: the event back as the reply (200, binary mode), text appended to its data's
 * "message" member when the data is a JSON object that has a string one, else to the data. */
static enum MHD_Result display_append(struct MHD_Connection *conn, const struct ceb_event *ev,
                                      const char *text)
{
	struct ceb_buf data = CEB_BUF_INIT;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *p;
	size_t len = 0;
	cJSON *doc, *msg;

	p = ceb_event_data(ev, &len);
	doc = p ? cJSON_ParseWithLength(p, len) : NULL;
	msg = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "message") : NULL;
	if (cJSON_IsString(msg)) {
		struct ceb_buf m = CEB_BUF_INIT;
		char *out;

		ceb_buf_puts(&m, msg->valuestring);
		ceb_buf_puts(&m, text);
		if (m.p && cJSON_SetValuestring(msg, m.p) && (out = cJSON_PrintUnformatted(doc))) {
			ceb_buf_puts(&data, out);
			cJSON_free(out);
		}
		ceb_buf_free(&m);
	} else {
		ceb_buf_append(&data, p ? p : "", len);
		ceb_buf_puts(&data, text);
	}
	cJSON_Delete(doc);
	resp = MHD_create_response_from_buffer(data.len, data.p ? data.p : (char *)"",
	                                       MHD_RESPMEM_MUST_COPY);
	ceb_buf_free(&data);
	if (!resp)
		return MHD_NO;
	ceb_http_encode_headers(ev, CEB_HTTP_BINARY, display_add_header, resp);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A whole POST body is here: decode, print, answer. */
static enum MHD_Result display_event_request(struct display *dsp, struct MHD_Connection *conn,
                                             struct display_req *req, const char *url)
{
	struct display_headers h = {0};
	struct ceb_http_request hreq;
	struct ceb_event **evs = NULL;
	size_t nevs = 0, i;
	enum ceb_http_mode mode;
	enum MHD_Result ret;
	char errbuf[512] = "", reason[600], path[256];
	unsigned status;
	int rc;

	if (req->too_big) {
		snprintf(errbuf, sizeof(errbuf), "request body over %zu bytes", dsp->max_body);
		rc = CEB_ETOOBIG;
		goto rejected;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, display_collect_header, &h);
	hreq.headers = h.v;
	hreq.nheaders = h.n;
	hreq.body = req->body.p ? req->body.p : "";
	hreq.body_len = req->body.len;
	rc = ceb_http_decode(&hreq, &dsp->lim, &evs, &nevs, &mode, errbuf, sizeof(errbuf));
	if (rc < 0)
		goto rejected;
	/* The path tells apart the copies that several Triggers send to one display (/orders,
	 * /audit). On stderr, so that stdout stays in the event_display (or JSON) format. */
	display_safe(path, sizeof(path), url);
	if (nevs == 1)
		fprintf(stderr, "POST %s\n", path);
	else
		fprintf(stderr, "POST %s (%zu events)\n", path, nevs);
	for (i = 0; i < nevs; i++) {
		if (display_print(dsp, evs[i]) < 0)
			ceb_cmd_error("display", "cannot print an event: %s",
			              ceb_strerror(CEB_ENOMEM));
		dsp->seen++;
	}
	if (dsp->opts.count && dsp->seen >= dsp->opts.count) {
		dsp->stopping = 1;
		req->last = 1;
	}
	if (dsp->opts.append && nevs == 1)
		ret = display_append(conn, evs[0], dsp->opts.append);
	else
		ret = display_reply(conn, dsp->opts.status, NULL, 0);
	goto out;
rejected:
	status = display_status_for(rc);
	if (!errbuf[0])
		snprintf(errbuf, sizeof(errbuf), "%s", ceb_strerror(rc));
	ceb_cmd_error("display", "rejected POST %s (%u): %s", url, status, errbuf);
	snprintf(reason, sizeof(reason), "%s\n", errbuf);
	ret = display_reply(conn, status, reason, 0);
out:
	for (i = 0; i < nevs; i++)
		ceb_event_unref(evs[i]);
	free(evs);
	free(h.v);
	return ret;
}

/* MHD_AccessHandlerCallback: called once with the headers, then per body chunk, then once more
 * with no data when the body is complete. */
static enum MHD_Result display_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
	struct display *dsp = cls;
	struct display_req *req = *con_cls;

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* Keep reading a body that is too big, without storing it, so that the client
		 * gets a 413 rather than a reset connection. */
		if (!req->too_big && req->body.len + *upload_data_size > dsp->max_body) {
			req->too_big = 1;
			ceb_buf_free(&req->body);
		}
		if (!req->too_big && ceb_buf_append(&req->body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return display_reply(conn, MHD_HTTP_OK, NULL, 1);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		struct MHD_Response *resp;
		enum MHD_Result ret;

		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (dsp->stopping)
		return display_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping\n", 0);
	return display_event_request(dsp, conn, req, url);
}

/* MHD_RequestCompletedCallback: the response is out (or the client went away). */
static void display_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
	struct display *dsp = cls;
	struct display_req *req = *con_cls;

	if (!req)
		return;
	if (req->last)
		pthread_kill(dsp->main_thread, DISPLAY_SIG_DONE);
	ceb_buf_free(&req->body);
	free(req);
	*con_cls = NULL;
}

int ceb_cmd_display(int argc, char **argv)
{
	struct display dsp = {.opts = {.listen = DISPLAY_DEFAULT_LISTEN, .status = 202}};
	struct MHD_Daemon *d = NULL;
	sigset_t set, old;
	char errbuf[512];
	int fd = -1, family = AF_INET, sig, rc, blocked = 0;
	unsigned flags;

	rc = display_parse_args(argc, argv, &dsp.opts);
	if (rc)
		return rc;
	if (dsp.opts.help) {
		fputs(display_usage, stdout);
		return DISPLAY_EXIT_OK;
	}
	dsp.lim = ceb_limits_default;
	/* Room for a structured event whose data went to base64, and for a batch of a few. */
	dsp.max_body = 4 * dsp.lim.max_event_size;
	dsp.main_thread = pthread_self();

	rc = display_listen(dsp.opts.listen, &fd, &family, errbuf, sizeof(errbuf));
	if (rc == CEB_EINVAL)
		return ceb_cmd_usage_error("display", "--listen: %s", errbuf);
	if (rc < 0) {
		ceb_cmd_error("display", "%s", errbuf);
		return DISPLAY_EXIT_FAIL;
	}
	/* Block the stop signals before MHD starts its thread, which inherits the mask, so that
	 * only the sigwait below ever sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, DISPLAY_SIG_DONE);
	if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) {
		ceb_cmd_error("display", "cannot block signals");
		rc = DISPLAY_EXIT_FAIL;
		goto out;
	}
	blocked = 1;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, display_handle, &dsp, MHD_OPTION_LISTEN_SOCKET,
	                     (MHD_socket)fd, MHD_OPTION_CONNECTION_TIMEOUT,
	                     DISPLAY_CONNECTION_TIMEOUT, MHD_OPTION_NOTIFY_COMPLETED,
	                     display_completed, &dsp, MHD_OPTION_END);
	if (!d) {
		ceb_cmd_error("display", "cannot start the HTTP server on %s", dsp.opts.listen);
		rc = DISPLAY_EXIT_FAIL;
		goto out;
	}
	display_print_address(fd);
	fd = -1; /* MHD_stop_daemon closes it */
	while (sigwait(&set, &sig) != 0)
		;
	rc = DISPLAY_EXIT_OK;
out:
	if (d)
		MHD_stop_daemon(d);
	if (fd >= 0)
		close(fd);
	if (blocked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	fflush(stdout);
	return rc;
}
