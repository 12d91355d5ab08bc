/* cebroker send: build one CloudEvent from the command line and POST it with libcurl, like
 * `kn event send`; prints the HTTP status line and the response body. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker/libcurl.h"

#include "broker/buf.h"
#include "broker/cli/cmdline.h"
#include "broker/cli/commands.h"
#include "broker/delivery/dispatcher.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"

/* Exit statuses, as the help text documents them. */
enum {
	SEND_EXIT_OK = 0,
	SEND_EXIT_STATUS = 1,
	SEND_EXIT_USAGE = 2
};

/* A response body is shown to a human; past this much it is cut rather than held in memory. */
#define SEND_MAX_RESPONSE    (1024 * 1024)
#define SEND_CONNECT_TIMEOUT 10L
#define SEND_TIMEOUT         60L

static const char send_usage[] =
        "Usage: cebroker send --to URL --type TYPE [options]\n"
        "\n"
        "Post one CloudEvent to URL, print the HTTP status and the response body.\n"
        "\n"
        "Options:\n"
        "  --to URL                 where to POST the event (required)\n"
        "  --type TYPE              the type attribute (required)\n"
        "  --id ID                  the id attribute (default: a random UUID)\n"
        "  --source SRC             the source attribute (default: cebroker/send)\n"
        "  --subject S              the subject attribute\n"
        "  --time T|now             the time attribute: an RFC 3339 timestamp, or now\n"
        "  --dataschema URI         the dataschema attribute\n"
        "  --content-type CT        the datacontenttype (default: application/json with data)\n"
        "  --ext NAME[:TYPE]=VALUE  an extension attribute, repeatable; TYPE is string (default),\n"
        "                           int, bool, uri, urlref, time or binary\n"
        "  --data TEXT              the event data\n"
        "  --data-file FILE         read the event data from FILE, or from stdin with -\n"
        "  --mode binary|structured the HTTP content mode (default: binary)\n"
        "  --cacert FILE            https: trust the PEM certificates of FILE too (a private CA)\n"
        "  -v, --verbose            print the request and response headers on stderr\n"
        "  -h, --help               print this help\n"
        "\n"
        "Exit status: 0 on a 2xx answer, 1 on any other status, 2 on a usage error or when the\n"
        "request could not be sent.\n"
        "\n"
        "Example:\n"
        "  cebroker send --to http://127.0.0.1:8080/default/default \\\n"
        "      --type com.example.order.created --source /shop --ext region=eu \\\n"
        "      --data '{\"order\": 42}'\n";

enum send_opt_id {
	OPT_TO,
	OPT_ID,
	OPT_SOURCE,
	OPT_TYPE,
	OPT_SUBJECT,
	OPT_TIME,
	OPT_DATASCHEMA,
	OPT_CONTENT_TYPE,
	OPT_EXT,
	OPT_DATA,
	OPT_DATA_FILE,
	OPT_MODE,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_CACERT,
};

static const struct ceb_cmd_opt send_opt_defs[] = {
        {"--to", 1, OPT_TO},
        {"--id", 1, OPT_ID},
        {"--source", 1, OPT_SOURCE},
        {"--type", 1, OPT_TYPE},
        {"--subject", 1, OPT_SUBJECT},
        {"--time", 1, OPT_TIME},
        {"--dataschema", 1, OPT_DATASCHEMA},
        {"--content-type", 1, OPT_CONTENT_TYPE},
        {"--ext", 1, OPT_EXT},
        {"--data", 1, OPT_DATA},
        {"--data-file", 1, OPT_DATA_FILE},
        {"--mode", 1, OPT_MODE},
        {"-v", 0, OPT_VERBOSE},
        {"--verbose", 0, OPT_VERBOSE},
        {"-h", 0, OPT_HELP},
        {"--help", 0, OPT_HELP},
        {"--cacert", 1, OPT_CACERT},
};

struct send_opts {
	const char *to, *id, *source, *type, *subject, *time, *dataschema, *content_type;
	const char *data, *data_file;
	const char **exts; /* the --ext arguments, in order */
	size_t nexts;
	enum ceb_http_mode mode;
	int verbose, help;
	const char *cacert; /* --cacert FILE */
};

/* What the curl callbacks collect while the request runs. */
struct send_xfer {
	struct curl_slist *headers;
	int has_content_type;
	char reason[128]; /* reason phrase of the last status line */
	struct ceb_buf body;
	int truncated;
};

/* Accepts "--opt value" and "--opt=value". Returns 0 or SEND_EXIT_USAGE after saying why. */
static int send_parse_args(int argc, char **argv, struct send_opts *o)
{
	int i;

	for (i = 1;;) {
		const char *val;
		int id, rc = ceb_cmd_next_opt("send", send_opt_defs,
		                              sizeof(send_opt_defs) / sizeof(send_opt_defs[0]),
		                              argc, argv, &i, &id, &val);

		if (rc != 1) {
			if (rc == 0)
				break;
			return rc;
		}
		switch (id) {
		case OPT_TO: o->to = val; break;
		case OPT_ID: o->id = val; break;
		case OPT_SOURCE: o->source = val; break;
		case OPT_TYPE: o->type = val; break;
		case OPT_SUBJECT: o->subject = val; break;
		case OPT_TIME: o->time = val; break;
		case OPT_DATASCHEMA: o->dataschema = val; break;
		case OPT_CONTENT_TYPE: o->content_type = val; break;
		case OPT_EXT: o->exts[o->nexts++] = val; break;
		case OPT_DATA: o->data = val; break;
		case OPT_DATA_FILE: o->data_file = val; break;
		case OPT_MODE:
			if (strcmp(val, "binary") == 0)
				o->mode = CEB_HTTP_BINARY;
			else if (strcmp(val, "structured") == 0)
				o->mode = CEB_HTTP_STRUCTURED;
			else
				return ceb_cmd_usage_error(
				        "send", "--mode must be binary or structured, not '%s'",
				        val);
			break;
		case OPT_VERBOSE: o->verbose = 1; break;
		case OPT_HELP: o->help = 1; break;
		case OPT_CACERT: o->cacert = val; break;
		}
	}
	if (o->help)
		return 0;
	if (!o->to)
		return ceb_cmd_usage_error("send", "--to URL is required");
	if (!o->type)
		return ceb_cmd_usage_error("send", "--type is required");
	if (o->data && o->data_file)
		return ceb_cmd_usage_error("send", "--data and --data-file cannot both be given");
	return 0;
}

static int send_uuid4(char *out, size_t outlen)
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return CEB_EIO;
	/* RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the top bits of byte 8. */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, outlen,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
	return 0;
}

/* The current UTC time in RFC 3339 with milliseconds, e.g. 2026-01-02T03:04:05.678Z. */
static int send_time_now(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm))
		return CEB_EIO;
	if (!strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm))
		return CEB_EIO;
	snprintf(out, outlen, "%s.%03ldZ", sec, ts.tv_nsec / 1000000L);
	return 0;
}

/* Reads a whole file, or stdin for "-", into buf. */
static int send_read_file(const char *path, struct ceb_buf *buf)
{
	char chunk[65536];
	ssize_t n;
	int fd, rc = 0;

	fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ceb_cmd_error("send", "cannot open '%s': %s", path, strerror(errno));
		return CEB_EIO;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ceb_cmd_error("send", "cannot read '%s': %s", path, strerror(errno));
			rc = CEB_EIO;
			goto out;
		}
		if (n == 0)
			break;
		rc = ceb_buf_append(buf, chunk, (size_t)n);
		if (rc < 0) {
			ceb_cmd_error("send", "'%s': %s", path, ceb_strerror(rc));
			goto out;
		}
	}
out:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

struct send_ext_type {
	const char *name;
	enum ceb_type type;
};

static const struct send_ext_type send_ext_types[] = {
        {"string", CEB_TYPE_STRING},   {"int", CEB_TYPE_INTEGER},
        {"integer", CEB_TYPE_INTEGER}, {"bool", CEB_TYPE_BOOLEAN},
        {"boolean", CEB_TYPE_BOOLEAN}, {"uri", CEB_TYPE_URI},
        {"urlref", CEB_TYPE_URIREF},   {"uriref", CEB_TYPE_URIREF},
        {"time", CEB_TYPE_TIMESTAMP},  {"timestamp", CEB_TYPE_TIMESTAMP},
        {"binary", CEB_TYPE_BINARY},
};

/* The context attributes that have their own option; --ext must not set them behind its back. */
static const char *const send_core_attrs[] = {
        "specversion", "id",         "source",          "type", "subject",
        "time",        "dataschema", "datacontenttype", "data", "data_base64",
};

/* --ext NAME[:TYPE]=VALUE. Returns 0 or SEND_EXIT_USAGE after saying why. */
static int send_set_ext(struct ceb_event *ev, const char *spec)
{
	const char *eq = strchr(spec, '='), *colon, *value;
	enum ceb_type type = CEB_TYPE_STRING;
	char name[128], errbuf[256];
	size_t nlen, k;

	if (!eq)
		return ceb_cmd_usage_error(
		        "send", "--ext '%s': expected NAME=VALUE or NAME:TYPE=VALUE", spec);
	value = eq + 1;
	colon = memchr(spec, ':', (size_t)(eq - spec));
	nlen = (size_t)((colon ? colon : eq) - spec);
	if (nlen == 0 || nlen >= sizeof(name))
		return ceb_cmd_usage_error("send", "--ext '%s': bad extension name", spec);
	memcpy(name, spec, nlen);
	name[nlen] = '\0';
	if (colon) {
		size_t tlen = (size_t)(eq - colon - 1);
		const struct send_ext_type *t = NULL;

		for (k = 0; k < sizeof(send_ext_types) / sizeof(send_ext_types[0]); k++) {
			if (strlen(send_ext_types[k].name) == tlen &&
			    strncmp(send_ext_types[k].name, colon + 1, tlen) == 0) {
				t = &send_ext_types[k];
				break;
			}
		}
		if (!t)
			return ceb_cmd_usage_error(
			        "send",
			        "--ext '%s': unknown type '%.*s' (string, int, bool, "
			        "uri, urlref, time or binary)",
			        spec, (int)tlen, colon + 1);
		type = t->type;
	}
	for (k = 0; k < sizeof(send_core_attrs) / sizeof(send_core_attrs[0]); k++) {
		if (strcmp(name, send_core_attrs[k]) == 0)
			return ceb_cmd_usage_error(
			        "send", "--ext: '%s' is not an extension; use its own option",
			        name);
	}
	if (ceb_event_set(ev, name, type, value, strlen(value), errbuf, sizeof(errbuf)) < 0)
		return ceb_cmd_usage_error("send", "--ext '%s': %s", spec, errbuf);
	return 0;
}

static int send_set_attr(struct ceb_event *ev, const char *name, const char *value)
{
	char errbuf[256];

	if (ceb_event_set(ev, name, CEB_TYPE_STRING, value, strlen(value), errbuf, sizeof(errbuf)) <
	    0)
		return ceb_cmd_usage_error("send", "%s", errbuf);
	return 0;
}

static int send_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* JSON data loses the whitespace around it (a file usually ends with a newline), since the JSON
 * format can only embed data that is exactly one JSON text. true if what is left is that. */
static int send_trim_json(const char **p, size_t *len)
{
	const char *s = *p;
	size_t n = *len;

	while (n && send_is_space(*s)) {
		s++;
		n--;
	}
	while (n && send_is_space(s[n - 1]))
		n--;
	if (!ceb_json_valid(s, n, ceb_limits_default.max_json_depth))
		return 0;
	*p = s;
	*len = n;
	return 1;
}

/* Builds the event from the options. Returns 0, or SEND_EXIT_USAGE after saying why. */
static int send_build_event(const struct send_opts *o, struct ceb_event **evp)
{
	struct ceb_buf data = CEB_BUF_INIT;
	struct ceb_event *ev;
	char id[40], now[48], errbuf[256];
	const char *ct = o->content_type;
	const char *dp = NULL;
	size_t dlen = 0, i;
	unsigned flags = 0;
	int rc = SEND_EXIT_USAGE;

	ev = ceb_event_new();
	if (!ev) {
		ceb_cmd_error("send", "%s", ceb_strerror(CEB_ENOMEM));
		return SEND_EXIT_USAGE;
	}
	if (send_set_attr(ev, "specversion", "1.0"))
		goto out;
	if (!o->id && send_uuid4(id, sizeof(id)) < 0) {
		ceb_cmd_error("send", "cannot make a random id: %s", strerror(errno));
		goto out;
	}
	if (send_set_attr(ev, "id", o->id ? o->id : id) ||
	    send_set_attr(ev, "source", o->source ? o->source : "cebroker/send") ||
	    send_set_attr(ev, "type", o->type))
		goto out;
	if (o->subject && send_set_attr(ev, "subject", o->subject))
		goto out;
	if (o->time) {
		const char *t = o->time;

		if (strcmp(t, "now") == 0) {
			if (send_time_now(now, sizeof(now)) < 0) {
				ceb_cmd_error("send", "cannot read the clock: %s", strerror(errno));
				goto out;
			}
			t = now;
		}
		if (send_set_attr(ev, "time", t))
			goto out;
	}
	if (o->dataschema && send_set_attr(ev, "dataschema", o->dataschema))
		goto out;
	for (i = 0; i < o->nexts; i++) {
		if (send_set_ext(ev, o->exts[i]))
			goto out;
	}

	if (o->data) {
		dp = o->data;
		dlen = strlen(o->data);
	} else if (o->data_file) {
		if (send_read_file(o->data_file, &data) < 0)
			goto out;
		dp = data.p ? data.p : "";
		dlen = data.len;
	}
	if (dp && !ct)
		ct = "application/json";
	if (ct && send_set_attr(ev, "datacontenttype", ct))
		goto out;
	if (dp) {
		/* The JSON format embeds JSON data as a value only when it is one valid JSON text
		 * (it would fall back to data_base64, which surprises whoever typed --data);
		 * binary mode sends the bytes as they are, valid or not, to test a receiver. */
		if (ceb_media_type_is_json(ct)) {
			if (send_trim_json(&dp, &dlen))
				flags |= CEB_DATA_JSON;
			else if (o->mode == CEB_HTTP_STRUCTURED) {
				rc = ceb_cmd_usage_error(
				        "send",
				        "the data is not valid JSON, which structured mode "
				        "needs for content type '%s'; fix the data or set "
				        "--content-type",
				        ct);
				goto out;
			}
		}
		if (ceb_event_set_data(ev, dp, dlen, flags) < 0) {
			ceb_cmd_error("send", "%s", ceb_strerror(CEB_ENOMEM));
			goto out;
		}
	}
	if (ceb_event_validate(ev, NULL, errbuf, sizeof(errbuf)) < 0) {
		rc = ceb_cmd_usage_error("send", "%s", errbuf);
		goto out;
	}
	*evp = ev;
	ev = NULL;
	rc = 0;
out:
	ceb_buf_free(&data);
	ceb_event_unref(ev);
	return rc;
}

/* ceb_http_header_f: one encoded header into the curl list. */
static int send_add_header(void *arg, const char *name, const char *value)
{
	struct send_xfer *x = arg;
	struct ceb_buf line = CEB_BUF_INIT;
	struct curl_slist *l;
	int rc;

	/* curl drops "Name:" headers; "Name;" is its way to send one with an empty value. */
	if (*value)
		rc = ceb_buf_printf(&line, "%s: %s", name, value);
	else
		rc = ceb_buf_printf(&line, "%s;", name);
	if (rc < 0)
		goto out;
	l = curl_slist_append(x->headers, line.p);
	if (!l) {
		rc = CEB_ENOMEM;
		goto out;
	}
	x->headers = l;
	if (strcasecmp(name, "Content-Type") == 0)
		x->has_content_type = 1;
out:
	ceb_buf_free(&line);
	return rc;
}

/* Keeps the reason phrase of the final status line (a 100 Continue may come first). */
static size_t send_on_header(char *p, size_t size, size_t n, void *arg)
{
	struct send_xfer *x = arg;
	size_t len = size * n, i = 0, end;

	if (len < 5 || strncmp(p, "HTTP/", 5) != 0)
		return len;
	x->reason[0] = '\0';
	while (i < len && p[i] != ' ')
		i++;
	while (i < len && p[i] == ' ')
		i++;
	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	while (i < len && p[i] == ' ')
		i++;
	end = len;
	while (end > i && (p[end - 1] == '\r' || p[end - 1] == '\n'))
		end--;
	if (end - i >= sizeof(x->reason))
		end = i + sizeof(x->reason) - 1;
	memcpy(x->reason, p + i, end - i);
	x->reason[end - i] = '\0';
	return len;
}

static size_t send_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct send_xfer *x = arg;
	size_t len = size * n, room = SEND_MAX_RESPONSE - x->body.len;

	if (len > room) {
		x->truncated = 1;
		len = room;
	}
	if (len && ceb_buf_append(&x->body, p, len) < 0)
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	return size * n;
}

/* -v: the headers as they went out and came back, curl -v style. */
static int send_on_debug(CURL *curl, curl_infotype type, char *p, size_t len, void *arg)
{
	const char *mark;
	size_t i = 0, j, end;

	if (type == CURLINFO_HEADER_OUT)
		mark = "> ";
	else if (type == CURLINFO_HEADER_IN)
		mark = "< ";
	else
		return 0;
	while (i < len) {
		j = i;
		while (j < len && p[j] != '\n')
			j++;
		end = j > i && p[j - 1] == '\r' ? j - 1 : j;
		if (end > i) /* not the blank line that ends the header block */
			fprintf(stderr, "%s%.*s\n", mark, (int)(end - i), p + i);
		i = j + 1;
	}
	return 0;
}

/* For HTTP/2 and for servers that send no reason phrase. */
static const char *send_reason_default(long code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "";
}

static void send_report_curl_error(CURL *curl, CURLcode cc, const char *url, const char *detail)
{
	long oserr = 0;

	curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		if (oserr == ECONNREFUSED || oserr == 0)
			ceb_cmd_error("send", "connection refused: %s", url);
		else
			ceb_cmd_error("send", "cannot connect (%s): %s", strerror((int)oserr), url);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		ceb_cmd_error("send", "cannot resolve host: %s", url);
		break;
	case CURLE_OPERATION_TIMEDOUT: ceb_cmd_error("send", "timed out: %s", url); break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		ceb_cmd_error("send", "unsupported URL scheme (use http:// or https://): %s", url);
		break;
	case CURLE_URL_MALFORMAT: ceb_cmd_error("send", "malformed URL: %s", url); break;
	default:
		ceb_cmd_error("send", "%s: %s", *detail ? detail : curl_easy_strerror(cc), url);
		break;
	}
}

/* --cacert: FILE's PEM plus the system's CAs, as the daemon trusts a Destination's CACerts. */
static int send_cacert(CURL *curl, const char *path)
{
	struct ceb_buf pem = CEB_BUF_INIT;
	struct curl_blob blob;
	char *all = NULL;
	size_t len;
	int rc = -1;

	if (send_read_file(path, &pem) < 0 || !pem.p)
		goto out; /* said why */
	if (ceb_delivery_ca_blob(pem.p, &all, &len) < 0) {
		ceb_cmd_error("send", "%s", ceb_strerror(CEB_ENOMEM));
		goto out;
	}
	blob = (struct curl_blob){all, len, CURL_BLOB_COPY};
	curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
	rc = 0;
out:
	free(all);
	ceb_buf_free(&pem);
	return rc;
}

/* Posts the event; returns the exit status. */
static int send_post(const struct send_opts *o, const struct ceb_event *ev)
{
	struct send_xfer x = {.body = CEB_BUF_INIT};
	struct ceb_buf body = CEB_BUF_INIT;
	struct curl_slist *l;
	char cerr[CURL_ERROR_SIZE] = "";
	const char *bp = NULL;
	size_t blen = 0;
	CURL *curl = NULL;
	CURLcode cc;
	long code = 0;
	int rc = SEND_EXIT_USAGE, err;

	if (o->mode == CEB_HTTP_BINARY && !ceb_http_binary_possible(ev)) {
		rc = ceb_cmd_usage_error(
		        "send",
		        "content type '%s' cannot travel in binary mode; use --mode "
		        "structured",
		        ceb_event_content_type(ev));
		goto out;
	}
	err = ceb_http_encode_headers(ev, o->mode, send_add_header, &x);
	if (err < 0) {
		ceb_cmd_error("send", "cannot encode the event: %s", ceb_strerror(err));
		goto out;
	}
	if (o->mode == CEB_HTTP_STRUCTURED) {
		err = ceb_json_encode(ev, &body);
		if (err < 0) {
			ceb_cmd_error("send", "cannot encode the event: %s", ceb_strerror(err));
			goto out;
		}
		bp = body.p;
		blen = body.len;
	} else {
		bp = ceb_event_data(ev, &blen);
	}
	/* Without data there is no Content-Type to send; curl would invent a form one. Expect:
	 * 100-continue would only add a round trip. */
	if (!x.has_content_type) {
		if (!(l = curl_slist_append(x.headers, "Content-Type:")))
			goto nomem;
		x.headers = l;
	}
	if (!(l = curl_slist_append(x.headers, "Expect:")))
		goto nomem;
	x.headers = l;

	curl = curl_easy_init();
	if (!curl)
		goto nomem;
	curl_easy_setopt(curl, CURLOPT_URL, o->to);
	if (o->cacert && send_cacert(curl, o->cacert) < 0)
		goto out;
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, bp ? bp : "");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, x.headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cebroker-send/" PACKAGE_VERSION);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, SEND_CONNECT_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, SEND_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, send_on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, send_on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
	if (o->verbose) {
		curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, send_on_debug);
	}
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		send_report_curl_error(curl, cc, o->to, cerr);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	printf("%ld %s\n", code, x.reason[0] ? x.reason : send_reason_default(code));
	if (x.body.len) {
		fwrite(x.body.p, 1, x.body.len, stdout);
		if (x.body.p[x.body.len - 1] != '\n')
			putchar('\n');
	}
	if (x.truncated)
		ceb_cmd_error("send", "response body cut at %d bytes", SEND_MAX_RESPONSE);
	fflush(stdout);
	rc = code >= 200 && code < 300 ? SEND_EXIT_OK : SEND_EXIT_STATUS;
	goto out;
nomem:
	ceb_cmd_error("send", "%s", ceb_strerror(CEB_ENOMEM));
out:
	curl_easy_cleanup(curl);
	curl_slist_free_all(x.headers);
	ceb_buf_free(&x.body);
	ceb_buf_free(&body);
	return rc;
}

int ceb_cmd_send(int argc, char **argv)
{
	struct send_opts o = {.mode = CEB_HTTP_BINARY};
	struct ceb_event *ev = NULL;
	int rc;

	o.exts = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*o.exts));
	if (!o.exts) {
		ceb_cmd_error("send", "%s", ceb_strerror(CEB_ENOMEM));
		return SEND_EXIT_USAGE;
	}
	rc = send_parse_args(argc, argv, &o);
	if (rc)
		goto out;
	if (o.help) {
		fputs(send_usage, stdout);
		goto out;
	}
	rc = send_build_event(&o, &ev);
	if (rc)
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ceb_cmd_error("send", "cannot initialise libcurl");
		rc = SEND_EXIT_USAGE;
		goto out;
	}
	rc = send_post(&o, ev);
	curl_global_cleanup();
out:
	ceb_event_unref(ev);
	free(o.exts);
	return rc;
}
