/* The bare rabbitmq-c baseline that tests/bench/bench_amqp measures a RabbitMQ Broker against, on the
 * same server with the same message size: one publisher with confirms (at most --window
 * unconfirmed, persistent messages) and one consumer (prefetch --window) on a durable queue of the
 * same type, acking each message (--ack each) or, as cebroker's consumer does, what it has read
 * whenever nothing more is buffered, in one basic.ack with multiple set (--ack multiple). Prints
 * the rate from the first publish to the last ack.
 * --exchange headers publishes through a durable headers exchange bound to the queue with x-match
 * all, as a RabbitMQ Broker does (default: the default exchange, straight to the queue); --ce-headers
 * adds the headers and message_id of a binary-mode CloudEvent as a Broker writes them, so that the
 * cost of each difference on RabbitMQ's side can be measured.
 * Usage: bare_amqp --port P [--seconds S] [--window W] [--size BYTES] [--queue-type quorum|classic]
 *                  [--ack each|multiple] [--exchange default|headers] [--ce-headers] */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

static int port, seconds = 5, window = 32, size = 300, ack_multiple, headers_exchange, ce_headers;
static const char *qtype = "quorum";
static char queue[64];
static atomic_long published, consumed;
static atomic_int publishing_done;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static amqp_connection_state_t open_conn(void)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);

	if (!s || amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK ||
	    amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
	            AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "bare_amqp: cannot connect to 127.0.0.1:%d\n", port);
		exit(1);
	}
	amqp_channel_open(c, 1);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		exit(1);
	return c;
}

static void *consumer(void *arg)
{
	amqp_connection_state_t c = open_conn();
	long unacked = 0;

	(void)arg;
	amqp_basic_qos(c, 1, 0, (uint16_t)window, 0);
	amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
	                   amqp_empty_table);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		exit(1);
	while (!atomic_load(&publishing_done) || atomic_load(&consumed) < atomic_load(&published)) {
		struct timeval tv = {0, 100000};
		amqp_envelope_t env;
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &env, &tv, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			continue;
		unacked++;
		if (!ack_multiple || (!amqp_data_in_buffer(c) && !amqp_frames_enqueued(c))) {
			/* multiple: every message read so far, once nothing more is buffered */
			amqp_basic_ack(c, 1, env.delivery_tag, ack_multiple);
			atomic_fetch_add(&consumed, unacked);
			unacked = 0;
		}
		amqp_destroy_envelope(&env);
	}
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"port", 1, 0, 'p'},     {"seconds", 1, 0, 's'},    {"window", 1, 0, 'w'},
	        {"size", 1, 0, 'z'},     {"queue-type", 1, 0, 'q'}, {"ack", 1, 0, 'a'},
	        {"exchange", 1, 0, 'e'}, {"ce-headers", 0, 0, 'c'}, {0, 0, 0, 0}};
	/* what a RabbitMQ Broker writes for the benchmark's binary-mode event */
	amqp_table_entry_t ce[4] = {
	        {amqp_cstring_bytes("cloudEvents_specversion"), {AMQP_FIELD_KIND_UTF8, {0}}},
	        {amqp_cstring_bytes("cloudEvents_id"), {AMQP_FIELD_KIND_UTF8, {0}}},
	        {amqp_cstring_bytes("cloudEvents_source"), {AMQP_FIELD_KIND_UTF8, {0}}},
	        {amqp_cstring_bytes("cloudEvents_type"), {AMQP_FIELD_KIND_UTF8, {0}}}};
	amqp_table_entry_t bind[2] = {
	        {amqp_cstring_bytes("x-match"), {AMQP_FIELD_KIND_UTF8, {0}}},
	        {amqp_cstring_bytes("x-knative-trigger"), {AMQP_FIELD_KIND_UTF8, {0}}}};
	char exchange[80] = "";
	amqp_table_entry_t qa = {.key = amqp_cstring_bytes("x-queue-type"),
	                         .value = {.kind = AMQP_FIELD_KIND_UTF8}};
	amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
	                                           AMQP_BASIC_CONTENT_TYPE_FLAG,
	                                 .delivery_mode = 2};
	amqp_connection_state_t c;
	pthread_t th;
	long unconfirmed = 0;
	double t0, end;
	char *body;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p': port = (int)strtol(optarg, NULL, 10); break;
		case 's': seconds = (int)strtol(optarg, NULL, 10); break;
		case 'w': window = (int)strtol(optarg, NULL, 10); break;
		case 'z': size = (int)strtol(optarg, NULL, 10); break;
		case 'q': qtype = optarg; break;
		case 'a': ack_multiple = !strcmp(optarg, "multiple"); break;
		case 'e': headers_exchange = !strcmp(optarg, "headers"); break;
		case 'c': ce_headers = 1; break;
		default: return 2;
		}
	}
	if (!port || window < 1 || size < 1)
		return 2;
	snprintf(queue, sizeof(queue), "bare-amqp-%ld", (long)time(NULL));
	body = malloc((size_t)size);
	memset(body, 'x', (size_t)size);
	props.content_type = amqp_cstring_bytes("application/json");
	qa.value.value.bytes = amqp_cstring_bytes(qtype);
	c = open_conn();
	amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, (amqp_table_t){1, &qa});
	if (headers_exchange) {
		snprintf(exchange, sizeof(exchange), "x.%s", queue);
		bind[0].value.value.bytes = amqp_cstring_bytes("all");
		bind[1].value.value.bytes = amqp_cstring_bytes("bench");
		amqp_exchange_declare(c, 1, amqp_cstring_bytes(exchange),
		                      amqp_cstring_bytes("headers"), 0, 1, 0, 0, amqp_empty_table);
		amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
		                amqp_empty_bytes, (amqp_table_t){2, bind});
	}
	if (ce_headers) {
		ce[0].value.value.bytes = amqp_cstring_bytes("1.0");
		ce[1].value.value.bytes = amqp_cstring_bytes("bench-1");
		ce[2].value.value.bytes = amqp_cstring_bytes("/cebroker/bench");
		ce[3].value.value.bytes = amqp_cstring_bytes("dev.cebroker.bench");
		props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
		props.headers = (amqp_table_t){4, ce};
		props.message_id = amqp_cstring_bytes("bench-1");
	}
	amqp_confirm_select(c, 1);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		return 1;
	pthread_create(&th, NULL, consumer, NULL);
	t0 = now();
	end = t0 + seconds;
	while (now() < end || unconfirmed) {
		amqp_frame_t f;
		while (now() < end && unconfirmed < window) {
			if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange),
			                       amqp_cstring_bytes(headers_exchange ? "" : queue), 0,
			                       0, &props, (amqp_bytes_t){(size_t)size, body}) != 0)
				return 1;
			unconfirmed++;
		}
		if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
			return 1;
		if (f.frame_type == AMQP_FRAME_METHOD &&
		    f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *a = f.payload.method.decoded;
			long done =
			        a->multiple ? (long)a->delivery_tag - atomic_load(&published) : 1;
			atomic_fetch_add(&published, done);
			unconfirmed -= done;
		}
	}
	atomic_store(&publishing_done, 1);
	pthread_join(th, NULL);
	printf("bare_amqp: %ld messages of %d bytes, window %d, %s queue: %.0f messages/s end to "
	       "end\n",
	       atomic_load(&published), size, window, qtype,
	       (double)atomic_load(&published) / (now() - t0));
	amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
	if (headers_exchange)
		amqp_exchange_delete(c, 1, amqp_cstring_bytes(exchange), 0);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	free(body);
	return 0;
}
