/* The bare nats.c JetStream baseline that tests/bench/bench_nats measures cebroker's NATS Broker
 * against: one process publishes N messages of SIZE bytes asynchronously (each confirmed by its
 * PubAck) into a stream of its own while a durable pull consumer fetches and acknowledges them; the
 * rate is N divided by the time from the first publish to the last acknowledgement. No HTTP, no
 * CloudEvents: what the server and the client library cost alone.
 *
 * Options that make it carry what cebroker's NATS Broker carries, to tell the server's costs apart
 * (tests/bench/bench_nats runs it both ways):
 * --ce       each message with the headers cebroker's binding writes (ce-specversion, ce-id,
 *            ce-source, ce-type, ce-knativebrokerttl, Content-Type), a Nats-Msg-Id unique to the
 *            message (source + id: JetStream's de-duplication checks and remembers each one) and
 *            Nats-Expected-Stream;
 * --window N at most N publishes waiting for their PubAck (default 4096); cebroker's ingress has
 *            one per HTTP connection that waits for its 202.
 *
 * Usage: bare_nats --url nats://127.0.0.1:PORT [--count N] [--size BYTES] [--ce] [--window N]
 * Prints "bare_nats_events_per_s X" and "bare_nats_cpu_us_per_event X" (this process). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

static atomic_long acked, puback;
static long count = 200000;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)pae;
	(void)closure;
	if (pa)
		atomic_fetch_add(&puback, 1);
	natsMsg_Destroy(msg);
}

static void *consume(void *arg)
{
	natsSubscription *sub = arg;

	while (atomic_load(&acked) < count) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		if (natsSubscription_Fetch(&list, sub, 256, 500, &jerr) != NATS_OK && !list.Count)
			continue;
		for (int i = 0; i < list.Count; i++)
			natsMsg_Ack(list.Msgs[i], NULL);
		atomic_fetch_add(&acked, list.Count);
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

/* The headers cebroker's NATS binding writes for wrk's binary-mode event (channels/nats/binding.c). */
static void ce_headers(natsMsg *m, const char *stream, long i)
{
	char id[96];

	snprintf(id, sizeof(id), "bench-4f9d6c1e-8a57-4a8e-b2a4-3c1d2f5e6a7b-1765100000-%ld", i);
	natsMsgHeader_Add(m, "ce-specversion", "1.0");
	natsMsgHeader_Add(m, "ce-id", id);
	natsMsgHeader_Add(m, "ce-source", "/cebroker/bench");
	natsMsgHeader_Add(m, "ce-type", "dev.cebroker.bench");
	natsMsgHeader_Add(m, "ce-knativebrokerttl", "255");
	natsMsgHeader_Set(m, "Content-Type", "application/json");
	{
		char mid[160];
		snprintf(mid, sizeof(mid), "/cebroker/bench %s", id);
		natsMsgHeader_Set(m, "Nats-Msg-Id", mid);
	}
	natsMsgHeader_Set(m, "Nats-Expected-Stream", stream);
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	const char *url = "nats://127.0.0.1:4222";
	int size = 300, ce = 0;
	long window = 4096;
	char stream[64], subject[64], *payload;
	const char *subjects[1] = {subject};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsStreamConfig sc;
	jsConsumerConfig cc;
	jsSubOptions so;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	pthread_t th;
	double t0, t1, c0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ce")) {
			ce = 1;
			continue;
		}
		if (i + 1 >= argc)
			break;
		if (!strcmp(argv[i], "--window"))
			window = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--url"))
			url = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			count = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--size"))
			size = (int)strtol(argv[i + 1], NULL, 10);
		i++;
	}
	snprintf(stream, sizeof(stream), "BARE_%d", (int)getpid());
	snprintf(subject, sizeof(subject), "bare.%d", (int)getpid());
	payload = malloc((size_t)size);
	memset(payload, 'x', (size_t)size);
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
		fprintf(stderr, "bare_nats: cannot connect to %s\n", url);
		return 1;
	}
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.MaxPending = window;
	natsConnection_JetStream(&js, nc, &jo);
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	if (js_AddStream(NULL, js, &sc, NULL, &jerr) != NATS_OK) {
		fprintf(stderr, "bare_nats: cannot create stream: %s\n", nats_GetLastError(NULL));
		return 1;
	}
	jsConsumerConfig_Init(&cc);
	cc.Durable = "BARE";
	cc.AckPolicy = js_AckExplicit;
	js_AddConsumer(NULL, js, stream, &cc, NULL, &jerr);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = "BARE";
	if (js_PullSubscribe(&sub, js, NULL, "BARE", NULL, &so, &jerr) != NATS_OK) {
		fprintf(stderr, "bare_nats: cannot subscribe: %s\n", nats_GetLastError(NULL));
		return 1;
	}
	t0 = now();
	c0 = cpu_s();
	pthread_create(&th, NULL, consume, sub);
	for (long i = 0; i < count; i++) {
		natsMsg *m = NULL;
		natsMsg_Create(&m, subject, NULL, payload, size);
		if (ce)
			ce_headers(m, stream, i);
		if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK) {
			natsMsg_Destroy(m);
			i--;
		}
	}
	pthread_join(th, NULL);
	t1 = now();
	printf("bare_nats_events_per_s %.0f\n", (double)count / (t1 - t0));
	printf("bare_nats_cpu_us_per_event %.1f\n", (cpu_s() - c0) / (double)count * 1e6);
	natsSubscription_Destroy(sub);
	js_DeleteStream(js, stream, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(payload);
	return 0;
}
