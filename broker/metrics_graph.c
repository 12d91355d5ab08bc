/* The /metrics series operators graph: Knative's (pre-OpenTelemetry) event counts by response code
 * and dispatch latency histograms of the broker ingress and filter, the in-flight and queued
 * gauges of each delivery and channel, what the build holds, and the process's CPU, memory and
 * file descriptors under the names every Prometheus client library gives them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "autoconfig.h"
#include "broker/metrics.h"
#include "broker/stats.h"

/* Knative's mt_broker_ingress and mt_broker_filter series: a Broker's and a Trigger's. A source's
 * delivery and a Subscription of a channel or flow have the cebroker_ gauges only. */
static bool is_broker(const struct ceb_endpoint *brk)
{
	return brk->cfg && brk->path[0];
}

static bool is_trigger(const struct ceb_subscription *trg)
{
	return trg->cfg && !trg->source && !trg->flow && is_broker(trg->brk);
}

static void ingress_labels(struct ceb_buf *out, const struct ceb_endpoint *brk)
{
	ceb_buf_printf(out, "namespace_name=\"%s\",broker_name=\"%s\"", brk->ns, brk->name);
}

static void filter_labels(struct ceb_buf *out, const struct ceb_subscription *trg)
{
	ceb_buf_printf(out, "namespace_name=\"%s\",broker_name=\"%s\",trigger_name=\"%s\"", trg->ns,
	               trg->brk->name, trg->name);
}

/* The labels of the cebroker_ series of a delivery, as metrics.c names them. */
static void delivery_labels(struct ceb_buf *out, const struct ceb_subscription *trg)
{
	if (trg->source)
		ceb_buf_printf(out, "namespace=\"%s\",%s=\"%s\"", trg->ns, trg->brk->kind,
		               trg->name);
	else if (trg->flow)
		ceb_buf_printf(out, "namespace=\"%s\",subscription=\"%s\",%s=\"%s\"", trg->ns,
		               trg->name, trg->brk->kind, trg->brk->name);
	else
		ceb_buf_printf(out, "namespace=\"%s\",trigger=\"%s\",broker=\"%s\"", trg->ns,
		               trg->name, trg->brk->name);
}

typedef void labels_f(struct ceb_buf *out, const void *owner);

static void ingress_labels_f(struct ceb_buf *out, const void *owner)
{
	ingress_labels(out, owner);
}

static void filter_labels_f(struct ceb_buf *out, const void *owner)
{
	filter_labels(out, owner);
}

static void no_labels_f(struct ceb_buf *out, const void *owner)
{
	(void)out;
	(void)owner;
}

/* One series per status seen: {labels,response_code="202",response_code_class="2xx"}; a
 * request that got no answer (no connection, timeout) is response_code="0", class "none"; statuses
 * past the table's room, response_code="other". */
static void codes(struct ceb_buf *out, const char *name, const struct ceb_stats *st,
                  labels_f *labels, const void *owner)
{
	unsigned long other = atomic_load_explicit(&st->codes.other, memory_order_relaxed);
	struct ceb_buf lb = CEB_BUF_INIT;
	const char *l, *sep;

	labels(&lb, owner);
	l = lb.p ? lb.p : "";
	sep = *l ? "," : "";
	for (unsigned i = 0; i < CEB_CODES; i++) {
		int code = atomic_load_explicit(&st->codes.code[i], memory_order_acquire);
		unsigned long n = atomic_load_explicit(&st->codes.n[i], memory_order_relaxed);
		long status = code - 1;

		if (!code)
			break; /* slots are claimed in order */
		if (status)
			ceb_buf_printf(
			        out,
			        "%s{%s%sresponse_code=\"%ld\",response_code_class=\"%ldxx\"} "
			        "%lu\n",
			        name, l, sep, status, status / 100, n);
		else
			ceb_buf_printf(
			        out,
			        "%s{%s%sresponse_code=\"0\",response_code_class=\"none\"} %lu\n",
			        name, l, sep, n);
	}
	if (other)
		ceb_buf_printf(
		        out, "%s{%s%sresponse_code=\"other\",response_code_class=\"other\"} %lu\n",
		        name, l, sep, other);
	ceb_buf_free(&lb);
}

/* A histogram in milliseconds: cumulative buckets, the sum and the count. */
static void hist(struct ceb_buf *out, const char *name, const struct ceb_hist *h, labels_f *labels,
                 const void *owner)
{
	unsigned long cum = 0;

	for (unsigned b = 0; b <= CEB_HIST_BOUNDS; b++) {
		cum += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		ceb_buf_printf(out, "%s_bucket{", name);
		labels(out, owner);
		if (b < CEB_HIST_BOUNDS)
			ceb_buf_printf(out, ",le=\"%u\"} %lu\n", ceb_hist_bounds_ms[b], cum);
		else
			ceb_buf_printf(out, ",le=\"+Inf\"} %lu\n", cum);
	}
	ceb_buf_printf(out, "%s_sum{", name);
	labels(out, owner);
	ceb_buf_printf(out, "} %.3f\n",
	               (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1000.0);
	ceb_buf_printf(out, "%s_count{", name);
	labels(out, owner);
	ceb_buf_printf(out, "} %lu\n", cum);
}

static void head(struct ceb_buf *out, const char *name, const char *type, const char *help)
{
	ceb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void build_info(struct ceb_buf *out)
{
	const struct channel_ops *ops;

	head(out, "cebroker_build_info", "gauge",
	     "Always 1: the version and the channel backends this build holds.");
	ceb_buf_printf(out, "cebroker_build_info{version=\"%s\",channels=\"", PACKAGE_VERSION);
	for (size_t i = 0; (ops = ceb_channel_ops_at(i)); i++)
		ceb_buf_printf(out, "%s%s", i ? "," : "", ops->name);
	ceb_buf_puts(out, "\"} 1\n");
}

/* The figures of /proc/self/stat after the command's name: fields 3 (state) onwards. */
static int proc_stat(char *buf, size_t sz, const char **rest)
{
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;
	char *paren;

	if (!f)
		return -1;
	n = fread(buf, 1, sz - 1, f);
	fclose(f);
	buf[n] = '\0';
	paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!paren)
		return -1;
	*rest = paren + 2;
	return 0;
}

/* The boot time, in seconds since the epoch (/proc/stat's btime), or 0. */
static unsigned long long boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	unsigned long long btime = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return btime;
}

static void process_metrics(struct ceb_buf *out)
{
	char buf[1024];
	const char *rest;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	DIR *fds;
	long nfds = 0;

	if (proc_stat(buf, sizeof(buf), &rest) < 0 || ticks <= 0 || page <= 0 ||
	    sscanf(rest,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
	           "%llu %llu %lld",
	           &utime, &stime, &start, &vsize, &rss) != 5)
		return;
	head(out, "process_cpu_seconds_total", "counter",
	     "User and system CPU time spent in seconds.");
	ceb_buf_printf(out, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / ticks);
	head(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	ceb_buf_printf(out, "process_resident_memory_bytes %lld\n", rss * page);
	head(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	ceb_buf_printf(out, "process_virtual_memory_bytes %llu\n", vsize);
	head(out, "process_start_time_seconds", "gauge",
	     "Start time of the process since unix epoch in seconds.");
	ceb_buf_printf(out, "process_start_time_seconds %.2f\n",
	               (double)boot_time() + (double)start / ticks);
	fds = opendir("/proc/self/fd");
	if (fds) {
		while (readdir(fds))
			nfds++;
		closedir(fds);
		head(out, "process_open_fds", "gauge", "Number of open file descriptors.");
		/* less ".", ".." and the directory's own descriptor */
		ceb_buf_printf(out, "process_open_fds %ld\n", nfds > 3 ? nfds - 3 : 0);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		head(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		ceb_buf_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

void ceb_metrics_graph(struct ceb_daemon *dmn, struct ceb_buf *out)
{
	head(out, "mt_broker_ingress_event_count_total", "counter",
	     "Requests a Broker's ingress answered, by HTTP status (a batch is one request).");
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		if (is_broker(brk))
			codes(out, "mt_broker_ingress_event_count_total", &brk->st,
			      ingress_labels_f, brk);
	head(out, "cebroker_ingress_unrouted_total", "counter",
	     "Requests refused that named no Broker or other endpoint of the configuration (404 to "
	     "an unknown path...), by HTTP status.");
	codes(out, "cebroker_ingress_unrouted_total", &dmn->st, no_labels_f, NULL);
	head(out, "mt_broker_ingress_event_dispatch_latencies", "histogram",
	     "Milliseconds from a request's whole body in to its answer (the events stored in "
	     "the Broker's channel, or refused).");
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		if (is_broker(brk))
			hist(out, "mt_broker_ingress_event_dispatch_latencies", &brk->st.latency,
			     ingress_labels_f, brk);
	head(out, "mt_broker_filter_event_count_total", "counter",
	     "Requests to a Trigger's subscriber, retries included, by its HTTP status "
	     "(response_code 0: no answer).");
	for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next)
		if (is_trigger(trg))
			codes(out, "mt_broker_filter_event_count_total", &trg->st, filter_labels_f,
			      trg);
	head(out, "mt_broker_filter_event_dispatch_latencies", "histogram",
	     "Milliseconds from a request to a Trigger's subscriber to its answer.");
	for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next)
		if (is_trigger(trg))
			hist(out, "mt_broker_filter_event_dispatch_latencies", &trg->st.latency,
			     filter_labels_f, trg);

	head(out, "mt_broker_filter_event_processing_latencies", "histogram",
	     "Milliseconds from the channel handing an event to a Trigger's delivery to its first "
	     "request to the subscriber (a wait for a slot included).");
	for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next)
		if (is_trigger(trg))
			hist(out, "mt_broker_filter_event_processing_latencies",
			     &trg->st.processing, filter_labels_f, trg);

	head(out, "cebroker_delivery_inflight_requests", "gauge",
	     "Requests of a delivery (a Trigger, a Subscription, a source's) being written or "
	     "awaited now.");
	for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next) {
		ceb_buf_puts(out, "cebroker_delivery_inflight_requests{");
		delivery_labels(out, trg);
		ceb_buf_printf(out, "} %ld\n", atomic_load(&trg->st.inflight));
	}
	head(out, "cebroker_delivery_queued_events", "gauge",
	     "Events a delivery holds that are not in flight: waiting for a slot or a retry.");
	for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next) {
		long jobs = atomic_load(&trg->st.jobs), inflight = atomic_load(&trg->st.inflight);

		ceb_buf_puts(out, "cebroker_delivery_queued_events{");
		delivery_labels(out, trg);
		ceb_buf_printf(out, "} %ld\n", jobs > inflight ? jobs - inflight : 0);
	}
	head(out, "cebroker_channel_inflight_requests", "gauge",
	     "Requests of the deliveries from a channel being written or awaited now.");
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		long n = 0;

		for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next)
			if (trg->brk == brk)
				n += atomic_load(&trg->st.inflight);
		ceb_buf_printf(
		        out, "cebroker_channel_inflight_requests{namespace=\"%s\",%s=\"%s\"} %ld\n",
		        brk->ns, brk->kind, brk->name, n);
	}
	build_info(out);
	process_metrics(out);
}
