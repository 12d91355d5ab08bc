/* A channel subscription's on_msg that collects what it is handed, for the channel tests of every
 * backend: the events in the order handed out, each with its handle and the collector's reference. */
#ifndef CEB_TEST_COLLECTOR_H
#define CEB_TEST_COLLECTOR_H

#include <pthread.h>
#include <stddef.h>

#include "broker/ce/event.h"

#define MAXMSG 1024

struct coll {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ceb_event *evs[MAXMSG];
	void *handles[MAXMSG];
	int settled[MAXMSG];
	size_t n;
	void *sub;
};

/* Empty, ready to collect. */
void coll_init(struct coll *c);
/* A ceb_sub_cfg.on_msg that collects into the struct coll it is given as arg. */
void coll_on_msg(void *arg, struct ceb_event *ev, void *handle);
/* Wait until c holds at least n messages; returns how many it holds. */
size_t coll_wait(struct coll *c, size_t n, int ms);
/* The id of message i. */
const char *coll_id(struct coll *c, size_t i);
/* How many times id arrived. */
int coll_count(struct coll *c, const char *id);
/* Drop the collector's references (close the channel first: it may still hand out). */
void coll_free(struct coll *c);

#endif
