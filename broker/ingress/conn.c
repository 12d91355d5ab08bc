/* What outlives one request in the ingress's libmicrohttpd glue: the request record kept for the
 * connection's next keep-alive request, and the resumes of suspended requests queued per MHD
 * thread. */
#include <stdlib.h>

#include "broker/ingress/conn.h"

void ceb_mhd_req_free(struct mhd_req *mr)
{
	if (mr->hl.h != mr->hl.inl)
		free(mr->hl.h);
	if (mr->ql.h != mr->ql.inl)
		free(mr->ql.h);
	ceb_request_fini(&mr->req);
	free(mr);
}

/* The body buffer a spare record keeps for the next request: one of an ordinary event's size, not
 * the megabyte a large one grew to. */
#define SPARE_BODY_MAX 16384

/* A request ended: its record is kept as the connection's spare (ended, its body buffer emptied),
 * so that the next request on it allocates neither; else freed. MHD's thread for cn. */
void ceb_mhd_req_end(struct mhd_req *mr, struct conn *cn)
{
	struct ceb_buf body = mr->req.body;

	if (!cn || cn->spare || mr->hl.h != mr->hl.inl || mr->ql.h != mr->ql.inl || body.failed ||
	    body.cap > SPARE_BODY_MAX) {
		ceb_mhd_req_free(mr);
		return;
	}
	mr->req.body = (struct ceb_buf)CEB_BUF_INIT;
	ceb_request_fini(&mr->req);
	ceb_buf_reset(&body);
	mr->req.body = body;
	cn->spare = mr;
}

/* A spare record (ended already): its body buffer and itself. */
void ceb_mhd_req_free_spare(struct mhd_req *mr)
{
	if (!mr)
		return;
	ceb_buf_free(&mr->req.body);
	free(mr);
}

/* The calling MHD thread's resume queue, made on its first suspend; NULL without memory. */
static struct resumeq *thread_queue(struct ceb_ingress *ing)
{
	static __thread struct resumeq *mine;
	struct resumeq *q = mine;

	if (q && q->ing == ing)
		return q;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->ing = ing;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_lock(&ing->lock);
	q->next = ing->queues;
	ing->queues = q;
	pthread_mutex_unlock(&ing->lock);
	mine = q;
	return q;
}

void ceb_mhd_suspend(void *arg)
{
	struct mhd_req *mr = arg;

	mr->suspended = true;
	mr->q = thread_queue(mr->ing);
	atomic_fetch_add(&mr->ing->suspended, 1);
	MHD_suspend_connection(mr->conn);
}

/* From the thread of the last publish completion: a leader resumes its request, the others queue
 * behind it (see struct resumeq). */
void ceb_mhd_resume(void *arg)
{
	struct mhd_req *mr = arg;
	struct resumeq *q = mr->q;
	bool lead = true;

	if (q) {
		pthread_mutex_lock(&q->lock);
		lead = !q->leader;
		if (lead) {
			q->leader = true;
		} else {
			mr->qnext = NULL;
			if (q->tail)
				q->tail->qnext = mr;
			else
				q->head = mr;
			q->tail = mr;
		}
		pthread_mutex_unlock(&q->lock);
	}
	if (lead)
		MHD_resume_connection(mr->conn);
}

/* A resumed request runs on its MHD thread (or ends there): the requests queued behind the leader
 * are resumed from here. Whoever drains ends the leader's turn, so a completion after this leads
 * again; no queued request is left without a leader to come. */
void ceb_mhd_drain(struct resumeq *q)
{
	struct mhd_req *mr, *next;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	mr = q->head;
	q->head = q->tail = NULL;
	q->leader = false;
	pthread_mutex_unlock(&q->lock);
	for (; mr; mr = next) {
		next = mr->qnext; /* mr may run on another thread once resumed */
		MHD_resume_connection(mr->conn);
	}
}

void ceb_mhd_queues_free(struct ceb_ingress *ing)
{
	for (struct resumeq *q = ing->queues, *next; q; q = next) {
		next = q->next;
		pthread_mutex_destroy(&q->lock);
		free(q);
	}
	ing->queues = NULL;
}
