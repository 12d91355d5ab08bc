/* `cebroker run` (the daemon: load, start, serve until SIGTERM or SIGINT, reload on SIGHUP or, with
 * --watch, when the files change, drain, exit) and `cebroker validate` (report every configuration
 * error). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "broker/auth/auth.h"
#include "broker/auth/policy.h"
#include "broker/daemon.h"
#include "broker/libcurl.h"
#include "broker/cli/watch.h"
#include "broker/cli/commands.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ingress/ingress.h"
#include "broker/log.h"
#include "broker/service.h"

#define MAX_PATHS     64
#define MAX_ADDRESSES 1024

static int parse_ulong(const char *opt, const char *s, unsigned long min, unsigned long max,
                       unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr,
		        "cebroker: --%s: expected a whole number from %lu to %lu, got '%s'\n", opt,
		        min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* HOST:PORT, [V6]:PORT or :PORT. */
static int parse_listen(const char *s, struct ceb_settings *set)
{
	const char *colon;
	unsigned long port;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			goto bad;
		hlen = (size_t)(close - s - 1);
		memcpy(set->listen_host, s + 1, hlen < sizeof(set->listen_host) ? hlen : 0);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(set->listen_host))
			goto bad;
		memcpy(set->listen_host, s, hlen);
	}
	if (hlen >= sizeof(set->listen_host))
		goto bad;
	set->listen_host[hlen] = '\0';
	if (hlen == 0)
		snprintf(set->listen_host, sizeof(set->listen_host), "0.0.0.0");
	if (parse_ulong("listen", colon + 1, 0, 65535, &port) < 0)
		return -1;
	set->listen_port = (int)port;
	return 0;
bad:
	fprintf(stderr, "cebroker: --listen: expected HOST:PORT, got '%s'\n", s);
	return -1;
}

/* --listen-plain HOST:PORT, read as --listen is. */
static int parse_listen_plain(const char *s, struct ceb_settings *set)
{
	struct ceb_settings tmp = *set;

	if (parse_listen(s, &tmp) < 0)
		return -1;
	memcpy(set->listen_plain_host, tmp.listen_host, sizeof(set->listen_plain_host));
	set->listen_plain_port = tmp.listen_port;
	return 0;
}

/* --tls-cert and --tls-key go together; --listen-plain only beside an HTTPS listener. */
static int tls_options_check(const struct ceb_settings *set)
{
	if (!set->tls_cert != !set->tls_key) {
		fprintf(stderr, "cebroker: --tls-cert and --tls-key go together: give both\n");
		return -1;
	}
	if (set->listen_plain_host[0] && !set->tls_cert) {
		fprintf(stderr,
		        "cebroker: --listen-plain adds a plain HTTP listener beside the HTTPS "
		        "one: give --tls-cert and --tls-key (--listen alone serves plain "
		        "HTTP)\n");
		return -1;
	}
	return 0;
}

/* The cluster domain of Services' DNS names, found as Knative finds it (knative.dev/pkg/network):
 * --cluster-domain, else $CLUSTER_DOMAIN, else the svc.<domain> search domain of /etc/resolv.conf
 * (what a pod in a cluster has), else cluster.local. */
static const char *cluster_domain(const char *flag, char *buf, size_t sz)
{
	const char *env = getenv("CLUSTER_DOMAIN");
	char line[1024];
	FILE *f;

	if (flag)
		return flag;
	if (env && *env)
		return env;
	f = fopen("/etc/resolv.conf", "re");
	if (!f)
		return NULL;
	buf[0] = '\0';
	while (!buf[0] && fgets(line, sizeof(line), f)) {
		const char *p = line, *tok;
		size_t n;
		bool search = false;

		/* "search a.svc.cluster.local svc.cluster.local cluster.local": words apart */
		for (;;) {
			p += strspn(p, " \t\r\n");
			if (!*p)
				break;
			tok = p;
			n = strcspn(p, " \t\r\n");
			p += n;
			if (!search) {
				if (n != 6 || memcmp(tok, "search", 6))
					break;
				search = true;
			} else if (n > 4 && !memcmp(tok, "svc.", 4)) {
				n -= 4 + (tok[n - 1] == '.');
				if (n && n < sz) {
					memcpy(buf, tok + 4, n);
					buf[n] = '\0';
				}
				break;
			}
		}
	}
	fclose(f);
	return buf[0] ? buf : NULL;
}

static void usage_run(FILE *f)
{
	fprintf(f,
	        "Usage: cebroker run -f FILE|DIR [-f ...] [options]\n"
	        "Run the broker on Knative Broker/Trigger YAML.\n\n"
	        "  -f, --file PATH             YAML file or directory (repeatable)\n"
	        "  -l, --listen HOST:PORT      listen address (default 127.0.0.1:8080; port 0 "
	        "picks one)\n"
	        "      --address 'KIND NS/NAME=URL'  where a ref to that resource delivers "
	        "(repeatable),\n"
	        "                              e.g. 'Service default/event-display="
	        "http://127.0.0.1:9099'\n"
	        "      --cluster-domain DOMAIN Services' DNS names are NAME.NS.svc.DOMAIN "
	        "(default: "
	        "as\n"
	        "                              Knative finds it: $CLUSTER_DOMAIN, resolv.conf, "
	        "cluster.local)\n"
	        "      --log-level LEVEL       error, warn, info (default) or debug\n"
	        "      --log-json              log JSON lines instead of text\n"
	        "      --max-event-size BYTES  largest event accepted (default 1048576)\n"
	        "      --max-header-size BYTES request line and headers, in at most BYTES/64 "
	        "fields\n"
	        "                              (default 16384)\n"
	        "      --max-connections N     connections in total (default 10000)\n"
	        "      --max-connections-per-ip N (default 0 = no limit)\n"
	        "      --idle-timeout SECONDS  close idle connections (default 15)\n"
	        "      --request-timeout SECONDS whole request from its first byte, body "
	        "included\n"
	        "                              (default 30; 0 = none)\n"
	        "      --ingress-threads N     (default 2)\n"
	        "      --dispatchers N         delivery threads (default 2)\n"
	        "      --delivery-client CLIENT native (default: plain http without libcurl) or\n"
	        "                              libcurl (every delivery through libcurl)\n"
	        "      --max-inflight N        deliveries in flight per Trigger (default 100)\n"
	        "      --delivery-timeout MS   per attempt when a Trigger sets no timeout (default "
	        "30000)\n"
	        "      --drain-timeout MS      on SIGTERM, time to finish deliveries (default "
	        "30000)\n"
	        "      --channel-max-events N  memory channel bound per Broker (default 100000)\n"
	        "      --channel-max-bytes N   memory channel bound per Broker (default "
	        "268435456)\n"
	        "      --max-ttl N             knativebrokerttl given at first ingress; a higher "
	        "one\n"
	        "                              sent is lowered to it (default 255)\n"
	        "      --rate-limit N          requests per second per client address, bursts of "
	        "2N;\n"
	        "                              over it: 429 (default 0 = no limit)\n"
	        "      --allow-empty           start even if the files declare no Broker, "
	        "KafkaSink or\n"
	        "                              KafkaSource (serving nothing)\n"
	        "      --auth-jwks FILE        sender authentication: every address takes only "
	        "a bearer\n"
	        "                              JWT signed by a key of this JWKS (RS256, ES256), "
	        "for its\n"
	        "                              audience; EventPolicies apply; SIGHUP re-reads "
	        "FILE\n"
	        "      --auth-issuer ISS       the tokens' issuer (iss), required with "
	        "--auth-jwks\n"
	        "      --auth-default-mode MODE  for an address no EventPolicy applies to: "
	        "allow-all\n"
	        "                              (default), allow-same-namespace or deny-all\n"
	        "      --state-dir DIR         where DurableChannels keep their data (default:\n"
	        "                              $STATE_DIRECTORY, which systemd's StateDirectory=\n"
	        "                              sets, else /var/lib/cebroker)\n"
	        "      --tls-cert FILE         serve HTTPS only on --listen with this PEM "
	        "certificate\n"
	        "                              chain (TLS 1.2+); re-read on SIGHUP\n"
	        "      --tls-key FILE          its PEM private key (unencrypted)\n"
	        "      --listen-plain HOST:PORT  with TLS, also serve plain HTTP there\n"
	        "      --watch                 reload when a file given with -f (or a YAML file "
	        "in a\n"
	        "                              directory given) changes, as SIGHUP does\n"
	        "  -h, --help\n\n"
	        "Signals: SIGTERM or SIGINT drain and exit; SIGHUP reloads the files: the new\n"
	        "configuration is checked whole and, if it has any error, the running one stays;\n"
	        "else unchanged resources keep running untouched, changed ones are replaced,\n"
	        "removed ones drain.\n\n"
	        "Example:\n  cebroker run -f samples/quickstart.yaml --listen 127.0.0.1:8080\n");
}

enum {
	OPT_LOG_LEVEL = 1000,
	OPT_LOG_JSON,
	OPT_MAX_EVENT,
	OPT_MAX_HEADER,
	OPT_MAX_CONN,
	OPT_MAX_CONN_IP,
	OPT_IDLE,
	OPT_REQ_TIMEOUT,
	OPT_INGRESS_THREADS,
	OPT_DISPATCHERS,
	OPT_DELIVERY_CLIENT,
	OPT_MAX_INFLIGHT,
	OPT_DELIVERY_TIMEOUT,
	OPT_DRAIN,
	OPT_CH_EVENTS,
	OPT_CH_BYTES,
	OPT_MAX_TTL,
	OPT_RATE_LIMIT,
	OPT_ALLOW_EMPTY,
	OPT_ADDRESS,
	OPT_CLUSTER_DOMAIN,
	OPT_WATCH,
	OPT_AUTH_JWKS,
	OPT_AUTH_ISSUER,
	OPT_AUTH_MODE,
	OPT_STATE_DIR,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_LISTEN_PLAIN,
};

static const struct option run_opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"log-json", no_argument, NULL, OPT_LOG_JSON},
        {"max-event-size", required_argument, NULL, OPT_MAX_EVENT},
        {"max-header-size", required_argument, NULL, OPT_MAX_HEADER},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONN_IP},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
        {"ingress-threads", required_argument, NULL, OPT_INGRESS_THREADS},
        {"dispatchers", required_argument, NULL, OPT_DISPATCHERS},
        {"delivery-client", required_argument, NULL, OPT_DELIVERY_CLIENT},
        {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
        {"delivery-timeout", required_argument, NULL, OPT_DELIVERY_TIMEOUT},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN},
        {"channel-max-events", required_argument, NULL, OPT_CH_EVENTS},
        {"channel-max-bytes", required_argument, NULL, OPT_CH_BYTES},
        {"max-ttl", required_argument, NULL, OPT_MAX_TTL},
        {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
        {"allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY},
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"cluster-domain", required_argument, NULL, OPT_CLUSTER_DOMAIN},
        {"watch", no_argument, NULL, OPT_WATCH},
        {"auth-jwks", required_argument, NULL, OPT_AUTH_JWKS},
        {"auth-issuer", required_argument, NULL, OPT_AUTH_ISSUER},
        {"auth-default-mode", required_argument, NULL, OPT_AUTH_MODE},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"listen-plain", required_argument, NULL, OPT_LISTEN_PLAIN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

/* A burst of writes (an editor saving, a tool writing several files) reloads once, this long after
 * the last change seen. */
#define WATCH_DEBOUNCE_MS 300

/* Serve until SIGTERM or SIGINT (returned): SIGHUP, or a change of the files with --watch,
 * reloads; what reloads retired drains meanwhile. */
static int serve(struct ceb_daemon *dmn, const sigset_t *sigs, struct ceb_watch *watch,
                 const char *const *paths, size_t npaths, const struct ceb_config_opts *opts,
                 bool allow_empty)
{
	int sfd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC), sig = 0;
	uint64_t due = 0;

	if (sfd < 0) { /* cannot happen short of running out of descriptors: wait as before */
		CEB_LOG_WARN("cebroker", "signalfd: %s: SIGHUP and --watch cannot reload",
		             strerror(errno));
		sigwait(sigs, &sig);
		return sig;
	}
	while (!sig) {
		struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN},
		                        {.fd = watch ? ceb_watch_fd(watch) : -1, .events = POLLIN}};
		struct signalfd_siginfo si;
		char err[512];
		uint64_t now = ceb_now_ms();
		int timeout = 200;
		bool reload = false;

		if (due)
			timeout = due > now ? (int)(due - now < 200 ? due - now : 200) : 0;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			break;
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				/* With TLS, SIGHUP re-reads the certificate and key too (a bad pair
				 * keeps the old one). */
				if (dmn->set.tls_cert)
					ceb_ingress_tls_reload(dmn->ing);
				/* with sender authentication, the JWKS (a key rotated) */
				if (dmn->auth && ceb_auth_reload(dmn->auth, err, sizeof(err)) < 0)
					CEB_LOG_ERR(
					        "auth",
					        "SIGHUP: JWKS not reloaded, the old keys stay: %s",
					        err);
				CEB_LOG_INFO("cebroker", "SIGHUP: reloading the configuration");
				reload = true;
			} else if (!sig) {
				sig = (int)si.ssi_signo;
			}
		}
		if (watch && (pfd[1].revents & POLLIN) && ceb_watch_changed(watch))
			due = ceb_now_ms() + WATCH_DEBOUNCE_MS;
		if (due && ceb_now_ms() >= due) {
			CEB_LOG_INFO("cebroker", "the configuration files changed: reloading");
			due = 0;
			reload = true;
		}
		if (reload && !sig)
			ceb_daemon_reload(dmn, paths, npaths, opts, allow_empty);
		ceb_daemon_reap(dmn);
	}
	close(sfd);
	return sig;
}

/* EventPolicies need sender authentication: Knative's webhook refuses them while its
 * authentication-oidc feature is off, and a policy that nothing enforces would be a lie. */
static int check_policies(const struct ceb_settings *set, const struct ceb_config *cfg)
{
	const struct ceb_event_policy *p = ceb_policy_first(cfg);

	if (!p || set->auth_jwks)
		return 0;
	fprintf(stderr,
	        "%s:%d:%d: EventPolicy %s/%s: EventPolicies need sender authentication: run with "
	        "--auth-jwks FILE --auth-issuer ISS (Knative refuses them too while its "
	        "authentication-oidc feature is off)\n",
	        p->loc.file, p->loc.line, p->loc.col, p->ns, p->name);
	return -1;
}

/* Sender authentication for the daemon's addresses, before it serves any. */
static int auth_setup(const struct ceb_settings *set, enum ceb_auth_mode mode,
                      struct ceb_daemon *dmn, struct ceb_auth **auth, char *err, size_t errlen)
{
	if (!set->auth_jwks)
		return 0;
	if (ceb_auth_create(set->auth_jwks, set->auth_issuer, auth, err, errlen) < 0)
		return -1;
	ceb_auth_set_default_mode(*auth, mode);
	return ceb_daemon_auth(dmn, *auth, err, errlen);
}

/* Load the files; with !allow_empty, a configuration that serves nothing is an error too. */
static int load(const char *const *paths, size_t npaths, const struct ceb_config_opts *opts,
                bool allow_empty, struct ceb_config **cfg)
{
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_opts(paths, npaths, opts, cfg, &errs);

	if (rc < 0) {
		if (errs.text.p)
			fputs(errs.text.p, stderr);
		fprintf(stderr, "cebroker: %zu error%s in the configuration\n", errs.count,
		        errs.count == 1 ? "" : "s");
	} else if (!allow_empty && (*cfg)->nbrokers + (*cfg)->nendpoints + (*cfg)->nsources == 0) {
		/* A daemon with nothing to serve would answer /readyz 200 and 404 to every event:
		 * nearly always a wrong -f path or a file not saved yet. */
		fprintf(stderr, "cebroker: the configuration declares no Broker, KafkaSink or "
		                "KafkaSource, so there is nothing to serve (check the -f paths; "
		                "--allow-empty accepts it)\n");
		ceb_config_free(*cfg);
		*cfg = NULL;
		rc = CEB_ECONFIG;
	}
	ceb_buf_free(&errs.text);
	return rc;
}

/* How many resources of a kind: kinds[] holds the distinct kinds in first-seen order. */
struct kind_count {
	const char *kind;
	size_t n;
};

static void count_kind(struct kind_count *kinds, size_t *nkinds, size_t cap, const char *kind)
{
	for (size_t i = 0; i < *nkinds; i++)
		if (strcmp(kinds[i].kind, kind) == 0) {
			kinds[i].n++;
			return;
		}
	if (*nkinds < cap)
		kinds[(*nkinds)++] = (struct kind_count){kind, 1};
}

/* "1 broker, 2 triggers", then each source and endpoint kind that has resources ("1 KafkaSource"). */
static void counts(const struct ceb_config *cfg, char *out, size_t sz)
{
	struct kind_count kinds[32];
	size_t nkinds = 0;
	int n = snprintf(out, sz, "%zu broker%s, %zu trigger%s", cfg->nbrokers,
	                 cfg->nbrokers == 1 ? "" : "s", cfg->ntriggers,
	                 cfg->ntriggers == 1 ? "" : "s");

	for (const struct ceb_source_cfg *sc = cfg->sources; sc; sc = sc->next)
		count_kind(kinds, &nkinds, sizeof(kinds) / sizeof(kinds[0]), sc->kind);
	for (const struct ceb_endpoint_cfg *ec = cfg->endpoints; ec; ec = ec->next) {
		char flow[32];

		if (!ec->owner) {
			count_kind(kinds, &nkinds, sizeof(kinds) / sizeof(kinds[0]), ec->kind);
		} else if (ec->address) { /* a flow, counted once: at its first channel */
			snprintf(flow, sizeof(flow), "%.*s", (int)strcspn(ec->owner, " "),
			         ec->owner);
			count_kind(kinds, &nkinds, sizeof(kinds) / sizeof(kinds[0]),
			           !strcmp(flow, "Sequence") ? "Sequence" : "Parallel");
		}
	}
	for (const struct ceb_subscription_cfg *s = cfg->subscriptions; s; s = s->next)
		if (!s->owner)
			count_kind(kinds, &nkinds, sizeof(kinds) / sizeof(kinds[0]),
			           "Subscription");
	for (size_t i = 0; i < nkinds && n > 0 && (size_t)n < sz; i++)
		n += snprintf(out + n, sz - (size_t)n, ", %zu %s%s", kinds[i].n, kinds[i].kind,
		              kinds[i].n == 1 ? "" : "s");
}

/* glibc raises its mmap and trim thresholds each time it frees a large block (reading the
 * configuration takes a 16 MiB buffer): from then on a thread's arena keeps up to 32 MiB of freed
 * pages at its top, which malloc_trim() does not release. A burst that queued 10 000 deliveries
 * left 5 MB so in an ingress thread's arena of an idle daemon. Fixed at glibc's own defaults,
 * they stay put. Not under AddressSanitizer, whose allocator replaces glibc's. */
static void malloc_tune(void)
{
#if defined(__SANITIZE_ADDRESS__)
#define CEB_NO_MALLOPT
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CEB_NO_MALLOPT
#endif
#endif
#ifndef CEB_NO_MALLOPT
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
}

int ceb_cmd_run(int argc, char **argv)
{
	struct ceb_settings set = ceb_settings_default;
	const char *paths[MAX_PATHS], *addresses[MAX_ADDRESSES], *domain = NULL;
	struct ceb_config_opts opts = {.addresses = addresses};
	struct ceb_config *cfg = NULL;
	struct ceb_daemon *dmn = NULL;
	struct ceb_auth *auth = NULL;
	enum ceb_auth_mode auth_mode = CEB_AUTH_ALLOW_ALL;
	bool auth_mode_given = false;
	enum ceb_log_level level = CEB_LOGLEVEL_INFO;
	size_t npaths = 0, left;
	unsigned long v;
	int json = 0, c, sig, rc = 2;
	bool allow_empty = false, watching = false;
	struct ceb_watch *watch = NULL;
	char err[1024], what[160], dombuf[256];
	sigset_t sigs;
	uint64_t deadline;
	struct timespec tick = {0, 50 * 1000 * 1000};

	malloc_tune();
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:l:h", run_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (npaths == MAX_PATHS) {
				fprintf(stderr, "cebroker: at most %d -f options\n", MAX_PATHS);
				return 2;
			}
			paths[npaths++] = optarg;
			break;
		case 'l':
			if (parse_listen(optarg, &set) < 0)
				return 2;
			break;
		case OPT_LOG_LEVEL:
			if (ceb_log_level_parse(optarg, &level) < 0) {
				fprintf(stderr,
				        "cebroker: --log-level: error, warn, info or debug\n");
				return 2;
			}
			break;
		case OPT_LOG_JSON: json = 1; break;
		case OPT_DELIVERY_CLIENT:
			if (strcmp(optarg, "native") != 0 && strcmp(optarg, "libcurl") != 0) {
				fprintf(stderr, "cebroker: --delivery-client: native or libcurl\n");
				return 2;
			}
			set.delivery_libcurl = strcmp(optarg, "libcurl") == 0;
			break;
#define NUM(opt, name, min, max, field)                          \
	case opt:                                                \
		if (parse_ulong(name, optarg, min, max, &v) < 0) \
			return 2;                                \
		set.field = v;                                   \
		break;
			NUM(OPT_MAX_EVENT, "max-event-size", 1024, 64UL << 20,
			    limits.max_event_size)
			NUM(OPT_MAX_HEADER, "max-header-size", 4096, 16UL << 20, max_header_block)
			NUM(OPT_MAX_CONN, "max-connections", 1, 1000000, max_connections)
			NUM(OPT_MAX_CONN_IP, "max-connections-per-ip", 0, 1000000, max_conn_per_ip)
			NUM(OPT_IDLE, "idle-timeout", 0, 86400, idle_timeout_s)
			NUM(OPT_REQ_TIMEOUT, "request-timeout", 0, 86400, request_timeout_s)
			NUM(OPT_INGRESS_THREADS, "ingress-threads", 1, 256, ingress_threads)
			NUM(OPT_DISPATCHERS, "dispatchers", 1, 256, dispatchers)
			NUM(OPT_MAX_INFLIGHT, "max-inflight", 1, 100000, max_inflight)
			NUM(OPT_DELIVERY_TIMEOUT, "delivery-timeout", 1, 86400000,
			    default_timeout_ms)
			NUM(OPT_DRAIN, "drain-timeout", 0, 86400000, drain_timeout_ms)
			NUM(OPT_CH_EVENTS, "channel-max-events", 1, 100000000, channel_max_events)
			NUM(OPT_CH_BYTES, "channel-max-bytes", 1024, ULONG_MAX, channel_max_bytes)
			NUM(OPT_MAX_TTL, "max-ttl", 1, 100000, max_ttl)
#undef NUM
		case OPT_RATE_LIMIT:
			if (parse_ulong("rate-limit", optarg, 0, 10000000, &v) < 0)
				return 2;
			set.rate_limit = (double)v;
			break;
		case OPT_ALLOW_EMPTY: allow_empty = true; break;
		case OPT_ADDRESS:
			if (opts.naddresses == MAX_ADDRESSES) {
				fprintf(stderr, "cebroker: at most %d --address options\n",
				        MAX_ADDRESSES);
				return 2;
			}
			addresses[opts.naddresses++] = optarg;
			break;
		case OPT_CLUSTER_DOMAIN: domain = optarg; break;
		case OPT_WATCH: watching = true; break;
		case OPT_AUTH_JWKS: set.auth_jwks = optarg; break;
		case OPT_AUTH_ISSUER: set.auth_issuer = optarg; break;
		case OPT_AUTH_MODE:
			if (ceb_auth_mode_parse(optarg, &auth_mode) < 0) {
				fprintf(stderr, "cebroker: --auth-default-mode: allow-all, "
				                "allow-same-namespace or deny-all\n");
				return 2;
			}
			auth_mode_given = true;
			break;
		case OPT_STATE_DIR:
			if (!optarg[0] || strlen(optarg) >= sizeof(set.state_dir)) {
				fprintf(stderr, "cebroker: --state-dir: an existing or creatable "
				                "directory, at most 1023 bytes\n");
				return 2;
			}
			snprintf(set.state_dir, sizeof(set.state_dir), "%s", optarg);
			break;
		case OPT_TLS_CERT: set.tls_cert = optarg; break;
		case OPT_TLS_KEY: set.tls_key = optarg; break;
		case OPT_LISTEN_PLAIN:
			if (parse_listen_plain(optarg, &set) < 0)
				return 2;
			break;
		case 'h': usage_run(stdout); return 0;
		default: usage_run(stderr); return 2;
		}
	}
	if (auth_mode_given && !set.auth_jwks) {
		fprintf(stderr,
		        "cebroker: --auth-default-mode needs --auth-jwks and --auth-issuer\n");
		return 2;
	}
	if (!set.auth_jwks != !set.auth_issuer || (set.auth_issuer && !set.auth_issuer[0])) {
		fprintf(stderr, "cebroker: --auth-jwks FILE and --auth-issuer ISS go together: the "
		                "keys and the issuer whose tokens they verify\n");
		return 2;
	}
	if (tls_options_check(&set) < 0)
		return 2;
	if (optind < argc || npaths == 0) {
		if (npaths == 0)
			fprintf(stderr, "cebroker run: give the configuration with -f FILE|DIR\n");
		else
			fprintf(stderr, "cebroker run: unexpected argument '%s'\n", argv[optind]);
		usage_run(stderr);
		return 2;
	}
	if (set.channel_max_bytes < set.limits.max_event_size) {
		/* The largest event accepted could never be stored: it would get 429 forever. */
		fprintf(stderr,
		        "cebroker: --channel-max-bytes %zu is below --max-event-size %zu: an event "
		        "of the largest accepted size could never be stored; raise "
		        "--channel-max-bytes or lower --max-event-size\n",
		        set.channel_max_bytes, set.limits.max_event_size);
		return 2;
	}
	if (!set.state_dir[0]) {
		/* systemd's StateDirectory=cebroker gives $STATE_DIRECTORY (its first entry) */
		const char *sd = getenv("STATE_DIRECTORY");
		size_t n = sd ? strcspn(sd, ":") : 0;

		if (n)
			snprintf(set.state_dir, sizeof(set.state_dir), "%.*s", (int)n, sd);
		else
			snprintf(set.state_dir, sizeof(set.state_dir), "/var/lib/cebroker");
	}
	ceb_log_setup(level, json);

	/* Signals go to this thread only (serve() below); every other thread inherits the mask.
	 * SIGHUP reloads, as for nginx and HAProxy (run it under nohup, or as a service, where a
	 * closing terminal cannot send it). */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	opts.cluster_domain = cluster_domain(domain, dombuf, sizeof(dombuf));
	if (load(paths, npaths, &opts, allow_empty, &cfg) < 0)
		return 2;
	if (check_policies(&set, cfg) < 0) {
		ceb_config_free(cfg);
		return 2;
	}
	for (size_t i = 0; i < cfg->nnotes; i++) {
		if (cfg->notes[i].warning)
			CEB_LOG_WARN("config", "%s", cfg->notes[i].text);
		else
			CEB_LOG_INFO("config", "%s", cfg->notes[i].text);
	}
	if (watching && ceb_watch_new(paths, npaths, &watch, err, sizeof(err)) < 0) {
		fprintf(stderr, "cebroker: %s\n", err);
		ceb_config_free(cfg);
		goto out;
	}
	if (ceb_daemon_create(&set, cfg, &dmn, err, sizeof(err)) < 0) {
		fprintf(stderr, "cebroker: %s\n", err);
		goto out;
	}
	if (auth_setup(&set, auth_mode, dmn, &auth, err, sizeof(err)) < 0) {
		fprintf(stderr, "cebroker: --auth-jwks %s\n", err);
		goto out;
	}
	if (ceb_daemon_start(dmn, err, sizeof(err)) < 0) {
		fprintf(stderr, "cebroker: %s\n", err);
		goto out;
	}
	counts(dmn->cfg, what, sizeof(what));
	CEB_LOG_INFO("cebroker", "listening on %s://%s%s%s:%d (%s)",
	             set.tls_cert ? "https" : "http", strchr(set.listen_host, ':') ? "[" : "",
	             set.listen_host, strchr(set.listen_host, ':') ? "]" : "", dmn->port, what);
	if (set.listen_plain_host[0])
		CEB_LOG_INFO("cebroker", "listening on http://%s%s%s:%d too (--listen-plain)",
		             strchr(set.listen_plain_host, ':') ? "[" : "", set.listen_plain_host,
		             strchr(set.listen_plain_host, ':') ? "]" : "", dmn->plain_port);
	if (allow_empty && !dmn->brokers)
		CEB_LOG_WARN("cebroker",
		             "the configuration declares nothing to serve (--allow-empty)");
	ceb_service_notify("READY=1"); /* systemd (Type=notify): the ingress listens */

	sig = serve(dmn, &sigs, watch, paths, npaths, &opts, allow_empty);
	/* Drain first, then say so: once the line is out, the ingress refuses and no source emits. */
	ceb_service_notify("STOPPING=1");
	ceb_daemon_drain(dmn);
	CEB_LOG_INFO("cebroker",
	             "%s: draining (up to %llu ms); a second SIGTERM or SIGINT exits at once",
	             strsignal(sig), (unsigned long long)set.drain_timeout_ms);
	deadline = ceb_now_ms() + set.drain_timeout_ms;
	while ((left = ceb_daemon_pending(dmn)) > 0 && ceb_now_ms() < deadline) {
		sig = sigtimedwait(&sigs, NULL, &tick);
		/* No reload while draining, and a SIGHUP must not cut the drain short. */
		if (sig == SIGHUP) {
			CEB_LOG_INFO("cebroker", "SIGHUP while draining: no reload");
		} else if (sig > 0) {
			CEB_LOG_WARN("cebroker",
			             "second signal: exiting without finishing %zu deliveries",
			             left);
			break;
		}
	}
	left = ceb_daemon_pending(dmn);
	if (left)
		CEB_LOG_WARN("cebroker",
		             "%zu event deliveries not finished at exit (memory channel: lost)",
		             left);
	else
		CEB_LOG_INFO("cebroker", "drained; exiting");
	rc = 0;
out:
	if (dmn)
		ceb_daemon_destroy(dmn);
	else
		ceb_config_free(NULL);
	ceb_watch_free(watch);
	ceb_auth_destroy(auth); /* after the daemon: no request reads it any more */
	ceb_libcurl_cleanup();
	return rc;
}

static void usage_validate(FILE *f)
{
	fprintf(f,
	        "Usage: cebroker validate -f FILE|DIR [-f ...] [--address 'KIND NS/NAME=URL' ...]\n"
	        "                         [--cluster-domain DOMAIN] [--allow-empty]\n"
	        "                         [--auth-jwks FILE --auth-issuer ISS]\n"
	        "Check the YAML resources as `run` would, short of reaching any server, and "
	        "report\n"
	        "every error as FILE:LINE:COL; exit 1 if any. On success, print what was "
	        "skipped,\n"
	        "where each ref delivers and any warning, then a summary. A configuration that\n"
	        "declares nothing to serve is an error unless --allow-empty is given, as for "
	        "`run`.\n"
	        "With --auth-jwks, the JWKS file is checked too; without it, each EventPolicy is\n"
	        "noted as enforced only by a `run` with --auth-jwks (which refuses it "
	        "otherwise).\n\n"
	        "Example:\n  cebroker validate -f samples/quickstart.yaml\n");
}

/* What `run` would say of the --auth-jwks file. */
static int validate_jwks(const char *path)
{
	struct ceb_jwks *keys = NULL;
	char err[512];
	int rc = ceb_jwks_load(path, &keys, NULL, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "cebroker: --auth-jwks %s\n", err);
	ceb_jwks_free(keys);
	return rc;
}

/* Without --auth-jwks, `run` refuses EventPolicies: say so of each, as a note. */
static void note_policies(const struct ceb_config *cfg)
{
	for (const struct ceb_event_policy *p = ceb_policy_first(cfg); p; p = ceb_policy_next(p))
		printf("%s:%d:%d: EventPolicy %s/%s: enforced only by a run with --auth-jwks and "
		       "--auth-issuer (run refuses it without them)\n",
		       p->loc.file, p->loc.line, p->loc.col, p->ns, p->name);
}

int ceb_cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"file", required_argument, NULL, 'f'},
	        {"allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY},
	        {"address", required_argument, NULL, OPT_ADDRESS},
	        {"cluster-domain", required_argument, NULL, OPT_CLUSTER_DOMAIN},
	        {"auth-jwks", required_argument, NULL, OPT_AUTH_JWKS},
	        {"auth-issuer", required_argument, NULL, OPT_AUTH_ISSUER},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *paths[MAX_PATHS], *addresses[MAX_ADDRESSES], *domain = NULL;
	const char *jwks = NULL, *issuer = NULL;
	struct ceb_config_opts copts = {.addresses = addresses};
	struct ceb_config *cfg = NULL;
	struct ceb_buf errs = CEB_BUF_INIT;
	size_t npaths = 0, nerr;
	bool allow_empty = false;
	char line[512], dombuf[256];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (npaths == MAX_PATHS)
				return 2;
			paths[npaths++] = optarg;
			break;
		case OPT_ALLOW_EMPTY: allow_empty = true; break;
		case OPT_ADDRESS:
			if (copts.naddresses == MAX_ADDRESSES)
				return 2;
			addresses[copts.naddresses++] = optarg;
			break;
		case OPT_CLUSTER_DOMAIN: domain = optarg; break;
		case OPT_AUTH_JWKS: jwks = optarg; break;
		case OPT_AUTH_ISSUER: issuer = optarg; break;
		case 'h': usage_validate(stdout); return 0;
		default: usage_validate(stderr); return 2;
		}
	}
	while (optind < argc && npaths < MAX_PATHS)
		paths[npaths++] = argv[optind++];
	if (npaths == 0) {
		usage_validate(stderr);
		return 2;
	}
	copts.cluster_domain = cluster_domain(domain, dombuf, sizeof(dombuf));
	if (load(paths, npaths, &copts, allow_empty, &cfg) < 0)
		return 1;
	/* what the channels would refuse at start without reaching a server (librdkafka settings) */
	nerr = ceb_daemon_check(&ceb_settings_default, cfg, &errs);
	if (nerr) {
		if (errs.p)
			fputs(errs.p, stderr);
		fprintf(stderr, "cebroker: %zu error%s in the configuration\n", nerr,
		        nerr == 1 ? "" : "s");
		ceb_buf_free(&errs);
		ceb_config_free(cfg);
		return 1;
	}
	if (!jwks != !issuer) {
		fprintf(stderr, "cebroker: --auth-jwks FILE and --auth-issuer ISS go together\n");
		ceb_config_free(cfg);
		return 2;
	}
	if (jwks && validate_jwks(jwks) < 0) {
		ceb_config_free(cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg->nnotes; i++)
		printf("%s\n", cfg->notes[i].text);
	if (!jwks)
		note_policies(cfg);
	counts(cfg, line, sizeof(line));
	printf("ok: %s\n", line);
	ceb_config_free(cfg);
	return 0;
}
