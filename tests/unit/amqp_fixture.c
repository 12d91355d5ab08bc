/* What the RabbitMQ unit suites share: a private rabbitmq-server and a plain rabbitmq-c client. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "tests/unit/amqp_fixture.h"

int rmq_port;
static char rmq_dir[256];
static pid_t owner;

static int helper(const char *cmd, char *out, size_t outlen)
{
	const char *top = getenv("top_srcdir");
	char line[1024];
	FILE *p;
	int st;

	snprintf(line, sizeof(line), "python3 %s/tests/tools/rabbitmq_server.py %s %s",
	         top ? top : ".", cmd, rmq_dir);
	p = popen(line, "r");
	if (!p)
		return -1;
	if (out && !fgets(out, (int)outlen, p))
		out[0] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void rmq_stop(void)
{
	char cmd[512];

	if (getpid() != owner || !rmq_dir[0])
		return;
	helper("stop", NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rmq_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", rmq_dir);
	rmq_dir[0] = '\0';
}

void rmq_start(void)
{
	char out[256];

	if (access("/usr/lib/rabbitmq/bin/rabbitmq-server", X_OK) != 0 &&
	    system("command -v rabbitmq-server >/dev/null 2>&1") != 0) {
		fprintf(stderr,
		        "rabbitmq-server is not installed: skipped (scripts/install-deps)\n");
		exit(77);
	}
	snprintf(rmq_dir, sizeof(rmq_dir), "/tmp/cebtest-rmq-XXXXXX");
	if (!mkdtemp(rmq_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	owner = getpid();
	atexit(rmq_stop);
	if (helper("start", out, sizeof(out)) != 0 || sscanf(out, "%d", &rmq_port) != 1) {
		fprintf(stderr, "rabbitmq-server did not start (see %s/server.out)\n", rmq_dir);
		exit(1);
	}
}

void rmq_kill(void)
{
	helper("kill", NULL, 0);
}

void rmq_restart(void)
{
	char out[256];

	ck_assert_int_eq(helper("start", out, sizeof(out)), 0);
}

const struct ceb_broker_cfg *rmq_broker_cfg(struct rmq_broker *b, bool classic)
{
	memset(b, 0, sizeof(*b));
	b->rb.classic = classic;
	b->rb.direct.host = (char *)"127.0.0.1";
	b->rb.direct.port = rmq_port;
	b->bc.config_res_kind = CEB_RABBITMQ_BROKER_CONFIG_KIND;
	b->bc.config_res = &b->rb;
	b->bc.broker_class = (char *)"RabbitMQBroker";
	b->bc.channel = "amqp";
	return &b->bc;
}

void rmq_source_cfg(struct ceb_rabbitmq_source_cfg *src, const char *name, int parallelism)
{
	static char q[64][128], x[64][128];
	static int n;
	int i = n++ % 64;

	memset(src, 0, sizeof(*src));
	snprintf(q[i], sizeof(q[i]), "src.%s", name);
	snprintf(x[i], sizeof(x[i]), "srcx.%s", name);
	src->ns = (char *)"amqp";
	src->name = (char *)name;
	src->queue = q[i];
	src->exchange = x[i];
	src->parallelism = parallelism;
	src->direct.host = (char *)"127.0.0.1";
	src->direct.port = rmq_port;
}

amqp_connection_state_t rmq_client(void)
{
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	amqp_rpc_reply_t r;

	ck_assert_ptr_nonnull(sock);
	ck_assert_int_eq(amqp_socket_open(sock, "127.0.0.1", rmq_port), AMQP_STATUS_OK);
	r = amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
	ck_assert_int_eq(r.reply_type, AMQP_RESPONSE_NORMAL);
	amqp_channel_open(conn, 1);
	ck_assert_int_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
	amqp_confirm_select(conn, 1);
	ck_assert_int_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
	return conn;
}

void rmq_client_close(amqp_connection_state_t conn)
{
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

void rmq_publish(amqp_connection_state_t conn, const char *exchange, const char *routing_key,
                 const char *content_type, const char *message_id, const char *const *headers,
                 int n, const char *body)
{
	amqp_basic_properties_t props = {0};
	amqp_table_entry_t e[32];
	amqp_frame_t f;

	ck_assert_int_le(n, 32);
	for (int i = 0; i < n; i++) {
		e[i].key = amqp_cstring_bytes(headers[2 * i]);
		e[i].value.kind = AMQP_FIELD_KIND_UTF8;
		e[i].value.value.bytes = amqp_cstring_bytes(headers[2 * i + 1]);
	}
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.delivery_mode = 2;
	props.headers.num_entries = n;
	props.headers.entries = e;
	if (content_type) {
		props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		props.content_type = amqp_cstring_bytes(content_type);
	}
	if (message_id) {
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(message_id);
	}
	ck_assert_int_eq(amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange),
	                                    amqp_cstring_bytes(routing_key), 0, 0, &props,
	                                    amqp_cstring_bytes(body)),
	                 AMQP_STATUS_OK);
	ck_assert_int_eq(amqp_simple_wait_frame(conn, &f), AMQP_STATUS_OK);
	ck_assert_uint_eq(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
}

void rmq_tap(amqp_connection_state_t conn, const char *queue, const char *exchange)
{
	amqp_table_entry_t e = {
	        .key = amqp_cstring_bytes("x-match"),
	        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("all")}};
	amqp_table_t args = {1, &e};

	amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
	ck_assert_int_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
	amqp_queue_bind(conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
	                amqp_empty_bytes, args);
	ck_assert_int_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
}

bool rmq_get(amqp_connection_state_t conn, const char *queue, amqp_message_t *msg, int ms)
{
	for (int waited = 0; waited <= ms; waited += 50) {
		amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue), 1);
		ck_assert_int_eq(r.reply_type, AMQP_RESPONSE_NORMAL);
		if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
			r = amqp_read_message(conn, 1, msg, 0);
			ck_assert_int_eq(r.reply_type, AMQP_RESPONSE_NORMAL);
			return true;
		}
		usleep(50000);
	}
	return false;
}

const char *rmq_header(const amqp_message_t *msg, const char *name, char *buf, size_t sz)
{
	const amqp_basic_properties_t *p = &msg->properties;

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		if (e->key.len == strlen(name) && !memcmp(e->key.bytes, name, e->key.len) &&
		    e->value.kind == AMQP_FIELD_KIND_UTF8) {
			snprintf(buf, sz, "%.*s", (int)e->value.value.bytes.len,
			         (const char *)e->value.value.bytes.bytes);
			return buf;
		}
	}
	return NULL;
}
