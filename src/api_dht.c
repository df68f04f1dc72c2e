/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * DHT lookups for the API: a bounded queue, dht_lookups threads that call
 * the blocking sp_api_dht.lookup(), and a watchdog that answers every
 * lookup at its deadline whether or not the DHT has returned. The request
 * thread parks its connection (MHD suspend) and is resumed exactly once:
 * by the worker with the answer, by the watchdog at the deadline, or by
 * api_dht_pool_close() when the node stops. A late answer is dropped.
 *
 * A job is owned by its connection (until MHD says the request is over)
 * and by the pool (while it is queued or a worker holds it); the last of
 * the two frees it.
 */
#include "api_internal.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "sp_thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct api_dht_job {
	struct api_dht_job *next;            /* the queue */
	struct api_dht_job *live_prev, *live_next; /* not done yet: the watchdog's list */
	struct MHD_Connection *conn;
	enum sp_kind kind;
	char key[SP_KEY_MAX];
	uint64_t deadline;                   /* monotonic ns */
	enum job_state state;
	bool enqueued;                       /* the connection is parked */
	enum api_dht_outcome outcome;
	int refs;
	sp_agg agg;
};

struct api_dht_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, watch;
	struct api_dht_job *head, *tail, *live;
	size_t jobs, max_jobs;
	bool closing;
	pthread_t *workers, watchdog;
	size_t n_workers;
	bool watchdog_started;
};

static void job_unref(struct api_dht_job *j) /* pool lock held */
{
	if (--j->refs == 0)
		free(j);
}

/* Done: say how, take it off the watch list, wake its connection. */
static void job_finish(struct api_dht_pool *p, struct api_dht_job *j, enum api_dht_outcome o)
{
	if (j->state == JOB_DONE)
		return;
	j->state = JOB_DONE;
	j->outcome = o;
	if (j->live_prev)
		j->live_prev->live_next = j->live_next;
	else
		p->live = j->live_next;
	if (j->live_next)
		j->live_next->live_prev = j->live_prev;
	j->live_prev = j->live_next = NULL;
	p->jobs--;
	if (j->enqueued)
		MHD_resume_connection(j->conn);
}

static void *worker_main(void *arg)
{
	sp_api *api = arg;
	sp_thread_name("sp-api-dht");
	struct api_dht_pool *p = api->pool;
	sp_agg *out = malloc(sizeof(*out));

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->closing)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->closing && !p->head)
			break;
		struct api_dht_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		if (j->state == JOB_DONE || !out) { /* timed out while queued */
			if (!out)
				job_finish(p, j, DHT_ERROR);
			job_unref(j);
			continue;
		}
		j->state = JOB_RUNNING;
		enum sp_kind kind = j->kind;
		char key[SP_KEY_MAX];
		memcpy(key, j->key, sizeof(key));
		uint64_t now = sp_mono_ns(), deadline = j->deadline;
		pthread_mutex_unlock(&p->mu);

		bool called = now < deadline;
		int rc = called ? api->dht.lookup(api->dht.ud, kind, key, deadline - now, out) : 0;

		pthread_mutex_lock(&p->mu);
		if (j->state == JOB_RUNNING) {
			enum api_dht_outcome o = !called ? DHT_TIMEOUT
					       : rc == 0 ? DHT_FOUND
					       : rc == SP_ENOTFOUND ? DHT_NOT_FOUND
					       : rc == SP_ETIMEDOUT ? DHT_TIMEOUT
					       : DHT_ERROR;
			if (rc == 0 && (out->kind != kind || strcmp(out->key, key) != 0))
				o = DHT_ERROR; /* an answer about something else */
			if (sp_mono_ns() > deadline && o != DHT_FOUND)
				o = DHT_TIMEOUT;
			if (o == DHT_FOUND)
				j->agg = *out;
			job_finish(p, j, o);
		}
		job_unref(j);
	}
	pthread_mutex_unlock(&p->mu);
	free(out);
	return NULL;
}

/* Answers every lookup whose deadline passed, then sleeps until the next. */
static void *watchdog_main(void *arg)
{
	sp_api *api = arg;
	sp_thread_name("sp-api-watch");
	struct api_dht_pool *p = api->pool;
	pthread_mutex_lock(&p->mu);
	while (!p->closing) {
		uint64_t now = sp_mono_ns(), next = now + SP_NS_PER_SEC;
		for (struct api_dht_job *j = p->live, *n; j; j = n) {
			n = j->live_next;
			if (j->deadline <= now)
				job_finish(p, j, DHT_TIMEOUT);
			else if (j->deadline < next)
				next = j->deadline;
		}
		api_cond_wait_until(&p->watch, &p->mu, next);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int api_dht_pool_start(sp_api *api)
{
	struct api_dht_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	api_cond_init_mono(&p->watch);
	p->max_jobs = (size_t)api->opt.dht_lookups * 4;
	api->pool = p;
	p->workers = calloc(api->opt.dht_lookups, sizeof(*p->workers));
	if (!p->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < api->opt.dht_lookups; i++) {
		if (pthread_create(&p->workers[i], NULL, worker_main, api) != 0)
			return -EAGAIN;
		p->n_workers++;
	}
	if (pthread_create(&p->watchdog, NULL, watchdog_main, api) != 0)
		return -EAGAIN;
	p->watchdog_started = true;
	return 0;
}

void api_dht_pool_close(sp_api *api)
{
	struct api_dht_pool *p = api->pool;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	while (p->live)
		job_finish(p, p->live, DHT_STOPPING);
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->watch);
	pthread_mutex_unlock(&p->mu);
}

void api_dht_pool_free(sp_api *api)
{
	struct api_dht_pool *p = api->pool;
	if (!p)
		return;
	api_dht_pool_close(api);
	/* a worker inside lookup() returns within the deadline it was given */
	for (size_t i = 0; i < p->n_workers; i++)
		pthread_join(p->workers[i], NULL);
	if (p->watchdog_started)
		pthread_join(p->watchdog, NULL);
	pthread_mutex_lock(&p->mu);
	while (p->head) { /* left in the queue after the workers went */
		struct api_dht_job *j = p->head;
		p->head = j->next;
		job_unref(j);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->watch);
	free(p->workers);
	free(p);
	api->pool = NULL;
}

struct api_dht_job *api_dht_reserve(sp_api *api, struct MHD_Connection *c, enum sp_kind kind,
				    const char *key, uint64_t deadline_ns)
{
	struct api_dht_pool *p = api->pool;
	struct api_dht_job *j = malloc(sizeof(*j));
	if (!j)
		return NULL;
	memset(j, 0, offsetof(struct api_dht_job, agg));
	j->conn = c;
	j->kind = kind;
	snprintf(j->key, sizeof(j->key), "%s", key);
	j->deadline = deadline_ns;
	j->refs = 2; /* the connection, the pool */
	pthread_mutex_lock(&p->mu);
	if (p->closing || p->jobs >= p->max_jobs) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return NULL;
	}
	p->jobs++;
	j->live_next = p->live;
	if (p->live)
		p->live->live_prev = j;
	p->live = j;
	pthread_mutex_unlock(&p->mu);
	return j;
}

void api_dht_enqueue(sp_api *api, struct api_dht_job *j)
{
	struct api_dht_pool *p = api->pool;
	pthread_mutex_lock(&p->mu);
	j->enqueued = true;
	if (j->state == JOB_DONE) {
		/* closed between reserve and now: the connection must still wake */
		MHD_resume_connection(j->conn);
		job_unref(j);
	} else {
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_signal(&p->work);
		pthread_cond_signal(&p->watch);
	}
	pthread_mutex_unlock(&p->mu);
}

enum api_dht_outcome api_dht_result(sp_api *api, struct api_dht_job *j, sp_agg *out)
{
	struct api_dht_pool *p = api->pool;
	enum api_dht_outcome o;
	if (!p)
		return DHT_STOPPING;
	pthread_mutex_lock(&p->mu);
	o = j->state == JOB_DONE ? j->outcome : DHT_TIMEOUT;
	if (o == DHT_FOUND)
		*out = j->agg;
	pthread_mutex_unlock(&p->mu);
	return o;
}

void api_dht_release(sp_api *api, struct api_dht_job *j)
{
	struct api_dht_pool *p = api->pool;
	if (!p) { /* the pool is gone: it dropped its references */
		free(j);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (j->state != JOB_DONE) {
		/* cannot happen (a parked connection does not end), but never
		 * wake a connection that is gone */
		j->enqueued = false;
		job_finish(p, j, DHT_STOPPING);
	}
	job_unref(j);
	pthread_mutex_unlock(&p->mu);
}

bool api_dht_status(sp_api *api, struct sp_api_dht_status *out)
{
	memset(out, 0, sizeof(*out));
	if (!api->has_dht) {
		out->sharing = api->opt.sharing;
		return false;
	}
	if (api->dht.status)
		api->dht.status(api->dht.ud, out);
	return true;
}
