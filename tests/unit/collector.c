/* The collecting subscription of the channel tests (collector.h). */
#include <string.h>

#include "tests/unit/collector.h"
#include "tests/unit/deadline.h"

void coll_init(struct coll *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

void coll_on_msg(void *arg, struct ceb_event *ev, void *handle)
{
	struct coll *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->n < MAXMSG) {
		c->evs[c->n] = ev;
		c->handles[c->n++] = handle;
	} else {
		ceb_event_unref(ev);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

size_t coll_wait(struct coll *c, size_t n, int ms)
{
	struct timespec ts;
	size_t got;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&c->lock);
	while (c->n < n && pthread_cond_timedwait(&c->cond, &c->lock, &ts) == 0)
		;
	got = c->n;
	pthread_mutex_unlock(&c->lock);
	return got;
}

const char *coll_id(struct coll *c, size_t i)
{
	return ceb_event_get(c->evs[i], "id")->value;
}

int coll_count(struct coll *c, const char *id)
{
	int k = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n; i++)
		k += strcmp(coll_id(c, i), id) == 0;
	pthread_mutex_unlock(&c->lock);
	return k;
}

void coll_free(struct coll *c)
{
	for (size_t i = 0; i < c->n; i++)
		ceb_event_unref(c->evs[i]);
	c->n = 0;
}
