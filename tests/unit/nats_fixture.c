/* A real nats-server -js for the NATS unit suites. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nats_fixture.h"

char nats_url[64];
static pid_t server_pid;
static int server_port;
static char store[] = "/tmp/ceb-nats-test-XXXXXX";

/* A port the kernel gives (bind to port 0). */
static int any_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("free port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* A port below the kernel's ephemeral range, which outgoing connections never take: the server
 * restarted on it after a kill finds it free (tests/tools/freeport.py says the same). A machine
 * whose range starts too low for that gets any port. */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int low = 32768, first;

	if (f) {
		if (fscanf(f, "%d", &low) != 1)
			low = 32768;
		fclose(f);
	}
	first = low > 12000 ? 10000 : 1024;
	srand((unsigned)(getpid() ^ time(NULL)));
	for (int i = 0; i < 1000 && low - first >= 1000; i++) {
		int port = first + rand() % (low - first), fd = socket(AF_INET, SOCK_STREAM, 0);
		bool ok;

		if (fd < 0)
			break;
		a.sin_port = htons((uint16_t)port);
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return any_port();
}

static int reachable(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)server_port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void spawn(void)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", server_port);
	server_pid = fork();
	if (server_pid == 0) {
		int null = open("/dev/null", 1);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd",
		       store, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !reachable(); i++)
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	if (!reachable()) {
		fprintf(stderr, "nats-server did not start on port %d\n", server_port);
		exit(1);
	}
	/* JetStream is ready a moment after the port */
	nanosleep(&(struct timespec){0, 300 * 1000000L}, NULL);
}

void nats_server_start(void)
{
	if (!mkdtemp(store)) {
		perror("mkdtemp");
		exit(1);
	}
	server_port = free_port();
	snprintf(nats_url, sizeof(nats_url), "nats://127.0.0.1:%d", server_port);
	spawn();
}

static void reap(int sig)
{
	if (server_pid > 0) {
		kill(server_pid, sig);
		waitpid(server_pid, NULL, 0);
	}
	server_pid = 0;
}

void nats_server_stop(void)
{
	char cmd[128];

	reap(SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", store);
}

void nats_server_restart(void)
{
	reap(SIGKILL);
	spawn();
}

const struct ceb_broker_cfg *nats_broker_make(struct nats_broker *b)
{
	memset(b, 0, sizeof(*b));
	ceb_nats_conn_defaults(&b->nb.conn);
	ceb_nats_js_defaults(&b->nb.js);
	b->nb.conn.url = nats_url;
	b->nb.js.nak_delay_ms = 200;
	b->cm.ns = "contract";
	b->cm.name = "nats-broker-config";
	b->cm.backend = &b->nb;
	b->broker.config = &b->cm;
	b->broker.broker_class = "NatsJetStreamBroker";
	return &b->broker;
}
