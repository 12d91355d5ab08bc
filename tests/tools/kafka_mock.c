/* A test helper: librdkafka's mock cluster (rdkafka_mock.h) in a process of its own, so that killing
 * cebroker does not take "Kafka" with it. Prints its bootstrap servers, then takes fault commands.
 *
 * Usage: kafka_mock [-b BROKERS]   (default 3 brokers, ids 1..BROKERS)
 * First line on stdout: "bootstrap.servers=<host:port,...>". Then one command per line on stdin, each
 * answered with one line, "ok" or "error: <reason>":
 *   down <id>|all             a broker stops serving (connections stall; no leader change)
 *   up <id>|all               it serves again
 *   err <api> <count> <error> the next <count> requests of <api> fail with <error>, cluster-wide
 *   berr <id> <api> <count> <error> <rtt ms>  the same on one broker, answered after rtt ms
 *   clear <api>               drop the injected errors of <api>
 *   rtt <id>|all <ms>         add round-trip time to a broker's answers
 *   topic <name> <partitions> [<replication factor>]  create a topic
 *   leader <topic> <partition> <id>  move a partition's leader
 *   quit                      exit (so does the end of stdin)
 * <api> is an ApiKey name (Produce, Fetch, Metadata, OffsetCommit...) or number; <error> a librdkafka
 * error name with or without RD_KAFKA_RESP_ERR_ (NOT_ENOUGH_REPLICAS, _TRANSPORT) or a number. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ARGS 8

static const struct {
	const char *name;
	int key;
} api_keys[] = {
        {"Produce", 0},
        {"Fetch", 1},
        {"ListOffsets", 2},
        {"Metadata", 3},
        {"OffsetCommit", 8},
        {"OffsetFetch", 9},
        {"FindCoordinator", 10},
        {"JoinGroup", 11},
        {"Heartbeat", 12},
        {"LeaveGroup", 13},
        {"SyncGroup", 14},
        {"DescribeGroups", 15},
        {"ListGroups", 16},
        {"ApiVersions", 18},
        {"CreateTopics", 19},
        {"InitProducerId", 22},
        {"OffsetForLeaderEpoch", 23},
};

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_api(const char *s, int16_t *key)
{
	long v;

	for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
		if (strcasecmp(api_keys[i].name, s) == 0) {
			*key = (int16_t)api_keys[i].key;
			return 0;
		}
	}
	if (parse_long(s, 0, 1000, &v) < 0)
		return -1;
	*key = (int16_t)v;
	return 0;
}

static int parse_error(const char *s, rd_kafka_resp_err_t *err)
{
	const struct rd_kafka_err_desc *descs;
	size_t n;
	long v;

	if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
		s += 18;
	rd_kafka_get_err_descs(&descs, &n);
	for (size_t i = 0; i < n; i++) {
		if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
			*err = descs[i].code;
			return 0;
		}
	}
	if (parse_long(s, -200, 1000, &v) < 0)
		return -1;
	*err = (rd_kafka_resp_err_t)v;
	return 0;
}

/* A broker id, or -1 for "all". */
static int parse_broker(const char *s, int brokers, int32_t *id)
{
	long v;

	if (strcmp(s, "all") == 0) {
		*id = -1;
		return 0;
	}
	if (parse_long(s, 1, brokers, &v) < 0)
		return -1;
	*id = (int32_t)v;
	return 0;
}

/* Split a line into at most max blank-separated words, in place; returns how many. */
static int split(char *s, char **words, int max)
{
	int n = 0;

	while (*s && n < max) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			*s++ = '\0';
		if (!*s)
			break;
		words[n++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			s++;
	}
	return n;
}

/* Run one command; writes the answer line into ans. */
static int run(rd_kafka_mock_cluster_t *mc, int brokers, char **argv, int argc, char *ans,
               size_t anslen)
{
	rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR, inj;
	const char *cmd = argv[0];
	int32_t id;
	int16_t api;
	long n, ms, parts, rf;

	if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
		if (parse_broker(argv[1], brokers, &id) < 0)
			goto bad_broker;
		rerr = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
		                     : rd_kafka_mock_broker_set_up(mc, id);
	} else if (strcmp(cmd, "err") == 0 && argc == 4) {
		if (parse_api(argv[1], &api) < 0)
			goto bad_api;
		if (parse_long(argv[2], 1, 1000000, &n) < 0)
			goto bad_count;
		if (parse_error(argv[3], &inj) < 0)
			goto bad_error;
		for (long i = 0; i < n; i++)
			rd_kafka_mock_push_request_errors_array(mc, api, 1, &inj);
	} else if (strcmp(cmd, "berr") == 0 && argc == 6) {
		if (parse_broker(argv[1], brokers, &id) < 0 || id < 0)
			goto bad_broker;
		if (parse_api(argv[2], &api) < 0)
			goto bad_api;
		if (parse_long(argv[3], 1, 1000000, &n) < 0)
			goto bad_count;
		if (parse_error(argv[4], &inj) < 0)
			goto bad_error;
		if (parse_long(argv[5], 0, 3600000, &ms) < 0)
			goto bad_ms;
		for (long i = 0; i < n && !rerr; i++)
			rerr = rd_kafka_mock_broker_push_request_error_rtts(mc, id, api, 1, inj,
			                                                    (int)ms);
	} else if (strcmp(cmd, "clear") == 0 && argc == 2) {
		if (parse_api(argv[1], &api) < 0)
			goto bad_api;
		rd_kafka_mock_clear_request_errors(mc, api);
	} else if (strcmp(cmd, "rtt") == 0 && argc == 3) {
		if (parse_broker(argv[1], brokers, &id) < 0)
			goto bad_broker;
		if (parse_long(argv[2], 0, 3600000, &ms) < 0)
			goto bad_ms;
		rerr = rd_kafka_mock_broker_set_rtt(mc, id, (int)ms);
	} else if (strcmp(cmd, "topic") == 0 && (argc == 3 || argc == 4)) {
		if (parse_long(argv[2], 1, 100000, &parts) < 0) {
			snprintf(ans, anslen,
			         "error: partitions: expected a number from 1, got '%s'", argv[2]);
			return 0;
		}
		rf = brokers < 3 ? brokers : 3;
		if (argc == 4 && parse_long(argv[3], 1, brokers, &rf) < 0) {
			snprintf(ans, anslen, "error: replication factor: expected 1 to %d",
			         brokers);
			return 0;
		}
		rerr = rd_kafka_mock_topic_create(mc, argv[1], (int)parts, (int)rf);
	} else if (strcmp(cmd, "leader") == 0 && argc == 4) {
		if (parse_long(argv[2], 0, 100000, &parts) < 0) {
			snprintf(ans, anslen, "error: partition: expected a number, got '%s'",
			         argv[2]);
			return 0;
		}
		if (parse_broker(argv[3], brokers, &id) < 0 || id < 0)
			goto bad_broker;
		rerr = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)parts, id);
	} else if (strcmp(cmd, "quit") == 0 && argc == 1) {
		snprintf(ans, anslen, "ok");
		return 1;
	} else {
		snprintf(ans, anslen,
		         "error: unknown command or wrong arguments: %s (down, up, err, berr, "
		         "clear, rtt, topic, leader, quit)",
		         cmd);
		return 0;
	}
	if (rerr)
		snprintf(ans, anslen, "error: %s", rd_kafka_err2str(rerr));
	else
		snprintf(ans, anslen, "ok");
	return 0;
bad_broker:
	snprintf(ans, anslen, "error: broker: expected an id from 1 to %d%s", brokers,
	         strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0 || strcmp(cmd, "rtt") == 0
	                 ? " or all"
	                 : "");
	return 0;
bad_api:
	snprintf(ans, anslen, "error: unknown ApiKey (a name such as Produce, or a number)");
	return 0;
bad_count:
	snprintf(ans, anslen, "error: count: expected a number from 1");
	return 0;
bad_error:
	snprintf(ans, anslen,
	         "error: unknown error (a name such as NOT_ENOUGH_REPLICAS, or a code)");
	return 0;
bad_ms:
	snprintf(ans, anslen, "error: expected milliseconds");
	return 0;
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	char errstr[512], line[4096], ans[512];
	long brokers = 3;
	int opt;

	while ((opt = getopt(argc, argv, "b:h")) != -1) {
		switch (opt) {
		case 'b':
			if (parse_long(optarg, 1, 32, &brokers) < 0) {
				fprintf(stderr, "kafka_mock: -b: expected 1 to 32 brokers\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: kafka_mock [-b BROKERS]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	conf = rd_kafka_conf_new();
	/* The mock needs a client instance for its bookkeeping; it never connects anywhere. */
	if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka_mock: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "kafka_mock: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
	if (!mc) {
		fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	printf("bootstrap.servers=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		char *args[MAX_ARGS];
		int n = split(line, args, MAX_ARGS), quit;

		if (n == 0)
			continue;
		quit = run(mc, (int)brokers, args, n, ans, sizeof(ans));
		printf("%s\n", ans);
		fflush(stdout);
		if (quit)
			break;
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
