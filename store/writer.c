/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "writer.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_mem.h"
#include "sp_thread.h"
#include "sp_time.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sp_writer {
	sp_store *st;
	struct sp_writer_options opt;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* producers -> writer */
	pthread_cond_t settled; /* writer -> flushers */
	sp_prepared **ring;     /* queue_max slots */
	size_t head, len;
	size_t bytes;           /* memory held by the queued events */
	sp_prepared **batch;
	sp_event *out;          /* on_events: the batch decoded again */
	char *raws;             /* and their messages (RAWS_BYTES) */
	sp_event **out_ptrs;
	bool stopping;
	bool fold_requested;    /* a flusher waits for the aggregates */
	bool kicked;            /* sp_writer_kick(): run collect() soon */
	uint64_t fold_gen;      /* folds done (or found unneeded) on request */
	uint64_t last_fold_ns;  /* monotonic: when the last round began */
	uint64_t fold_gap_ns;   /* least time between rounds: grows with their cost */
	uint64_t round_ns;      /* time in transactions of the running round */
	uint64_t fold_retry_ns; /* after a failed fold step: no folding before */
	uint64_t last_commit_ns;  /* when the last commit ended */
	uint64_t last_start_ns;   /* when the last transaction with events began */
	uint64_t done_seq;      /* submissions fully handled */
	uint64_t last_error_log_ns;
	uint64_t last_local_ts;  /* newest local event queued */
	uint64_t last_release_ns; /* store map pages last dropped from RSS */
	bool trimmed;            /* heap and map given back since the last commit */
	uint64_t dirtied;        /* bytes written (about) since the store was reopened */
	bool reopen_failed;      /* the store is closed: reopen before the next commit */
	bool reopen_warned;      /* said once why the store could not be reopened */
	struct sp_writer_stats stats;
	/* counter deltas not yet written to the store */
	uint64_t unsaved_dropped_queue, unsaved_dropped_store;
};

/* The counters into tx. A failed put (the map full) fails the
 * transaction; the drop counts written (saved[]) stay unsaved until
 * counters_saved() after the commit. */
static int save_counters(sp_writer *w, sp_wtxn *tx, uint64_t recorded, uint64_t saved[2])
{
	int rc = 0;
	pthread_mutex_lock(&w->lock);
	saved[0] = w->unsaved_dropped_queue;
	saved[1] = w->unsaved_dropped_store;
	pthread_mutex_unlock(&w->lock);
	if (recorded)
		rc = sp_wtxn_counter_add(tx, "events_recorded", recorded);
	if (rc == 0 && saved[0])
		rc = sp_wtxn_counter_add(tx, "events_dropped_queue_full", saved[0]);
	if (rc == 0 && saved[1])
		rc = sp_wtxn_counter_add(tx, "events_dropped_store_error", saved[1]);
	return rc;
}

static void counters_saved(sp_writer *w, const uint64_t saved[2])
{
	pthread_mutex_lock(&w->lock);
	w->unsaved_dropped_queue -= saved[0];
	w->unsaved_dropped_store -= saved[1];
	pthread_mutex_unlock(&w->lock);
}

static void report_error(sp_writer *w, int rc, size_t lost)
{
	uint64_t now = sp_mono_ns();
	pthread_mutex_lock(&w->lock);
	w->stats.last_error = rc;
	pthread_mutex_unlock(&w->lock);
	/* at most one line a minute: a full disk must not also fill the log */
	if (now - w->last_error_log_ns > 60 * SP_NS_PER_SEC || !w->last_error_log_ns) {
		log_error("store write failed, %zu events dropped (%llu so far): %s", lost,
			  (unsigned long long)(w->stats.dropped_store + lost), sp_strerror_write(rc));
		w->last_error_log_ns = now;
	}
}

/* LMDB keeps a transaction's dirty pages in memory, and keeps every page
 * it ever allocated for the next transactions (its me_dpages list, freed
 * only at close): the largest transaction sets the writer's memory for
 * good. So a fold step beside a batch dirties about FOLD_PAGES leaf pages
 * (more when pending memory runs short; twice that when idle), and a
 * batch holds at most BATCH_BYTES of events. */
/* events_out(): room for the messages of one chunk of outputs; one of the
 * largest always fits */
#define RAWS_BYTES ((1u << 20) + SP_RAW_MAX_LIMIT + 1)
#define FOLD_PAGES 256
#define BATCH_BYTES (3u << 20)
#define RELEASE_FOLD_NS (10 * SP_NS_PER_SEC / 1000)
#define IDLE_CLEANUP_NS (SP_NS_PER_SEC / 2)
/* idle after writing this many pages (8 MiB), the store is reopened: LMDB
 * keeps the largest transaction's dirty pages until then */
#define REOPEN_PAGES 2048

static bool flush_asked(sp_writer *w)
{
	bool requested;
	pthread_mutex_lock(&w->lock);
	/* asked for (flush, stop): once the queue is empty */
	requested = (w->fold_requested || w->stopping) && w->len == 0;
	pthread_mutex_unlock(&w->lock);
	return requested;
}

/* Start a fold round (between transactions) when one is due: memory, a
 * flush, or the interval since the last: under load the gap grows with
 * the rounds' cost; idle, what is pending is folded within fold_interval. */
/* A fold step that failed (the store full, an I/O error) is tried again
 * after fold_interval, not at once: it would fail again, and the events
 * sharing its transaction with it. */
static bool fold_blocked(sp_writer *w)
{
	return w->fold_retry_ns && sp_mono_ns() < w->fold_retry_ns;
}

/* On the store's sort thread: the round can be written; the writer may be
 * waiting for that (taking the lock first: it cannot miss the signal). */
static void round_sorted(void *ud)
{
	sp_writer *w = ud;
	pthread_mutex_lock(&w->lock);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

static void maybe_start_round(sp_writer *w, bool asked, bool idle)
{
	if (sp_store_folding(w->st) || !sp_store_pending(w->st) || fold_blocked(w))
		return;
	uint64_t now = sp_mono_ns(), gap = idle ? w->opt.fold_interval_ns : w->fold_gap_ns;
	if (!asked && !sp_store_fold_due(w->st) && now - w->last_fold_ns < gap)
		return;
	if (sp_store_fold_begin_async(w->st, round_sorted, w) == 1) {
		w->last_fold_ns = now;
		w->round_ns = 0;
	}
}

static size_t fold_budget(sp_writer *w, bool idle)
{
	unsigned load = sp_store_pending_load(w->st);
	/* idle: a step is all the transaction does, so it takes what a batch
	 * would (each commit costs its syncs) */
	if (idle && load < 192)
		return 2 * FOLD_PAGES;
	/* the next round's table fills: finish this one sooner, but at
	 * most twice as fast (LMDB keeps the largest step's pages until the
	 * store is reopened, and the map holds the pages it read: 4 times
	 * took a 150,000-200,000/s flood's RSS over 64 MiB, RssFile 18 MiB,
	 * for no more recorded; when the table is nearly full, catch_up()
	 * takes over) */
	return load >= 160 ? 2 * FOLD_PAGES : FOLD_PAGES;
}

/* Give back what LMDB keeps of the largest transaction (sp_store_reopen). */
static void reopen(sp_writer *w)
{
	int rc = sp_store_reopen(w->st);
	if (rc == -EBUSY)
		return; /* a reader in another thread: when next idle */
	w->dirtied = 0;
	if (rc && sp_store_is_open(w->st)) {
		/* the store is open as before: only its memory is not given back */
		if (!w->reopen_warned)
			log_warn("store: cannot open %s again: %s; the node keeps the store it "
				 "has open, and LMDB the pages of its largest transaction until a "
				 "restart%s",
				 sp_store_path(w->st),
				 rc == -ESTALE ? "no longer the file the node opened" : sp_strerror(rc),
				 rc == -ESTALE ? "" : " (a node started as root switches to --user: "
						      "give that user the data directory)");
		w->reopen_warned = true;
		return;
	}
	if (rc) {
		if (!w->reopen_failed)
			log_error("store: could not reopen %s: %s; events are dropped until it can be",
				  sp_store_path(w->st), sp_strerror(rc));
		w->reopen_failed = true;
		return;
	}
	if (w->reopen_failed)
		log_info("store: reopened %s", sp_store_path(w->st));
	w->reopen_failed = false;
	pthread_mutex_lock(&w->lock);
	w->stats.reopens++;
	pthread_mutex_unlock(&w->lock);
}

/* One transaction: the batch (n may be 0), and a step of the fold round. */
static int commit_batch(sp_writer *w, size_t n)
{
	sp_wtxn *tx;
	if (w->reopen_failed)
		reopen(w);
	maybe_start_round(w, flush_asked(w), n == 0);
	bool folding = sp_store_fold_ready(w->st) && !fold_blocked(w);
	uint64_t start = sp_mono_ns();
	int rc = sp_wtxn_begin(w->st, &tx);
	if (rc)
		return rc;
	if (n)
		w->last_start_ns = start;
	if (n)
		rc = sp_wtxn_add_prepared(tx, w->batch, n);
	size_t budget = fold_budget(w, n == 0);
	if (rc == 0 && folding)
		rc = sp_wtxn_fold_step(tx, budget);
	for (size_t i = 0; i < n; i++)
		w->dirtied += sp_prepared_size(w->batch[i]);
	w->dirtied += folding ? budget * 4096 : 0;
	uint64_t saved[2];
	if (rc == 0 && (rc = save_counters(w, tx, n, saved)) == 0 && w->opt.collect)
		w->opt.collect(tx, w->opt.ud);
	if (rc) {
		sp_wtxn_abort(tx);
		if (folding)
			w->fold_retry_ns = sp_mono_ns() + w->opt.fold_interval_ns;
		return rc;
	}
	rc = sp_wtxn_commit(tx);
	uint64_t end = sp_mono_ns();
	if (rc && folding)
		w->fold_retry_ns = end + w->opt.fold_interval_ns;
	if (rc == 0) {
		w->last_commit_ns = end;
		counters_saved(w, saved);
	}
	/* a fold reads aggregate pages through the store's map, and appends
	 * read the events' last page: keep them out of RSS */
	if (end - w->last_release_ns >= (folding ? RELEASE_FOLD_NS : SP_NS_PER_SEC)) {
		sp_store_release_map(w->st);
		w->last_release_ns = sp_mono_ns();
	}
	if (rc == 0)
		w->trimmed = false;
	if (rc == 0 && folding) {
		w->round_ns += end - start;
		if (!sp_store_folding(w->st)) { /* the round is done */
			/* under a flood, keep rounds to about a tenth of the
			 * writer's time: the lag grows instead */
			uint64_t cost = 9 * w->round_ns;
			w->fold_gap_ns = cost > w->opt.fold_interval_ns ? cost : w->opt.fold_interval_ns;
			pthread_mutex_lock(&w->lock);
			w->stats.folds++;
			w->stats.fold_ns += w->round_ns;
			pthread_mutex_unlock(&w->lock);
		}
	}
	return rc;
}

/* Everything pending in one transaction: at stop, when no round could
 * start (no memory for one). */
static int fold_all(sp_writer *w)
{
	sp_wtxn *tx;
	int rc = sp_wtxn_begin(w->st, &tx);
	if (rc)
		return rc;
	uint64_t saved[2];
	if ((rc = sp_wtxn_fold(tx)) == 0 && (rc = save_counters(w, tx, 0, saved)) == 0 &&
	    w->opt.collect)
		w->opt.collect(tx, w->opt.ud);
	if (rc) {
		sp_wtxn_abort(tx);
		return rc;
	}
	if ((rc = sp_wtxn_commit(tx)) == 0)
		counters_saved(w, saved);
	return rc;
}

/* Fold while the queue is idle: a due or asked-for round, a chunk per
 * transaction; a flush waits for everything pending. */
static void idle_fold(sp_writer *w)
{
	bool requested;
	pthread_mutex_lock(&w->lock);
	requested = w->fold_requested;
	pthread_mutex_unlock(&w->lock);
	for (;;) {
		maybe_start_round(w, requested, true);
		if (requested)
			sp_store_fold_wait(w->st); /* a flush waits for the sort */
		if (!sp_store_fold_ready(w->st) || fold_blocked(w))
			break; /* a round being sorted wakes the writer when it can go on */
		int rc = commit_batch(w, 0);
		if (rc) {
			report_error(w, rc, 0);
			break;
		}
		pthread_mutex_lock(&w->lock);
		bool busy = w->len > 0 || (w->stopping && !requested);
		pthread_mutex_unlock(&w->lock);
		if (busy && !requested)
			break; /* events first; the round goes on with them */
	}
	if (requested) {
		pthread_mutex_lock(&w->lock);
		if (w->len == 0) {
			w->fold_requested = false;
			w->fold_gen++;
			pthread_cond_broadcast(&w->settled);
		}
		pthread_mutex_unlock(&w->lock);
	}
}

/* The pending table is nearly full: fold-only transactions until a round
 * has begun on it (that empties it), at most 2 MiB of leaf pages each. */
static void catch_up(sp_writer *w)
{
	while (sp_store_pending_tight(w->st, w->opt.batch_max) && !fold_blocked(w)) {
		maybe_start_round(w, true, true);
		if (!sp_store_folding(w->st))
			break; /* nothing to fold: the tightness is the strings' */
		sp_store_fold_wait(w->st);
		int rc = commit_batch(w, 0);
		if (rc) {
			report_error(w, rc, 0);
			break;
		}
		pthread_mutex_lock(&w->lock);
		w->stats.catch_ups++;
		pthread_mutex_unlock(&w->lock);
	}
}

/* The committed batch as events again, for the caller's outputs. A raw
 * message stored compressed decodes into this thread's buffer, valid only
 * until the next decode: each is copied into w->raws, and the events go
 * out in chunks whose messages fit there. */
static void events_out(sp_writer *w, size_t n)
{
	size_t m = 0, used = 0;
	if (!w->raws && !(w->raws = malloc(RAWS_BYTES))) {
		log_error("no memory for the event outputs: %zu events not written out", n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		/* the chunk goes out before the next decode, which may reuse
		 * this thread's buffer, whenever a message might not fit */
		if (used + SP_RAW_MAX_LIMIT + 1 > RAWS_BYTES) {
			w->opt.on_events(w->out_ptrs, m, w->opt.ud);
			m = used = 0;
		}
		sp_event *e = &w->out[m];
		if (sp_prepared_event(w->batch[i], e) != 0)
			continue;
		char *r = w->raws + used;
		memcpy(r, e->raw, e->raw_len);
		r[e->raw_len] = '\0';
		used += e->raw_len + 1;
		e->raw = r;
		w->out_ptrs[m] = e;
		m++;
	}
	if (m)
		w->opt.on_events(w->out_ptrs, m, w->opt.ud);
}

static void sweep(sp_writer *w)
{
	struct sp_sweep_stats acc = { 0 };
	int rc;
	uint64_t now = sp_now_ns();
	do {
		rc = sp_store_sweep_step(w->st, now, w->opt.sweep_budget, &acc);
		/* let a waiting batch in between sweep steps */
		pthread_mutex_lock(&w->lock);
		bool busy = w->len > 0 || w->stopping;
		pthread_mutex_unlock(&w->lock);
		if (busy && rc == 1)
			break; /* resumes where it stopped at the next interval */
	} while (rc == 1);
	if (rc < 0)
		log_warn("retention sweep failed: %s", sp_strerror(rc));
	else if (acc.events_deleted || acc.aggs_deleted)
		log_info("retention: removed %llu events, %llu aggregates, trimmed %llu",
			 (unsigned long long)acc.events_deleted, (unsigned long long)acc.aggs_deleted,
			 (unsigned long long)acc.aggs_updated);
}

static void *writer_main(void *arg)
{
	sp_writer *w = arg;
	sp_thread_background("sp-writer");
	uint64_t next_sweep = w->opt.sweep_interval_ns ? sp_mono_ns() : UINT64_MAX;

	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&w->lock);
		while (w->len == 0 && !w->stopping && !w->fold_requested && !w->kicked) {
			uint64_t now = sp_mono_ns();
			bool can_fold = !w->fold_retry_ns || now >= w->fold_retry_ns;
			/* a round still being sorted wakes the writer when it can
			 * be written (round_sorted): no reason to go on until then */
			bool sorting = sp_store_folding(w->st) && !sp_store_fold_ready(w->st);
			if (next_sweep <= now || (can_fold && sp_store_fold_ready(w->st)) ||
			    (can_fold && !sp_store_folding(w->st) && sp_store_pending(w->st) &&
			     now - w->last_fold_ns >= w->opt.fold_interval_ns) ||
			    (!w->trimmed && !sorting && now - w->last_commit_ns >= IDLE_CLEANUP_NS))
				break;
			/* wake for the next fold or, idle, once a second */
			uint64_t wait = sp_store_pending(w->st) ? w->opt.fold_interval_ns / 4 : SP_NS_PER_SEC;
			if (!w->trimmed && wait > IDLE_CLEANUP_NS)
				wait = IDLE_CLEANUP_NS;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t at = (uint64_t)ts.tv_nsec + wait;
			ts.tv_sec += (time_t)(at / SP_NS_PER_SEC);
			ts.tv_nsec = (long)(at % SP_NS_PER_SEC);
			pthread_cond_timedwait(&w->wake, &w->lock, &ts);
		}
		/* a short batch soon after the last one began: let it grow a
		 * little. From its start, not its end: a commit slower than
		 * the interval (its syncs) is followed at once, not after a
		 * wait that would leave the queue to fill */
		while (w->len > 0 && w->len < w->opt.batch_max && w->bytes < BATCH_BYTES &&
		       !w->stopping && !w->fold_requested) {
			uint64_t now = sp_mono_ns(), due = w->last_start_ns + w->opt.commit_interval_ns;
			if (now >= due)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t at = (uint64_t)ts.tv_nsec + (due - now);
			ts.tv_sec += (time_t)(at / SP_NS_PER_SEC);
			ts.tv_nsec = (long)(at % SP_NS_PER_SEC);
			pthread_cond_timedwait(&w->wake, &w->lock, &ts);
		}
		if (w->len == 0 && w->stopping) {
			pthread_mutex_unlock(&w->lock);
			/* the last folds, and the caller's counters, before the store
			 * closes: one more try after a failure, not more */
			int rc;
			w->fold_retry_ns = 0;
			for (;;) {
				sp_store_fold_wait(w->st);
				rc = commit_batch(w, 0); /* starts rounds: stopping asks */
				if (rc || (!sp_store_folding(w->st) && !sp_store_pending(w->st)))
					break;
				if (!sp_store_folding(w->st)) { /* no round could start */
					rc = fold_all(w);
					break;
				}
			}
			if (rc)
				report_error(w, rc, 0);
			break;
		}
		/* under a flood of new keys the pending table can fill before the
		 * round frees it: then a batch would fold everything at once.
		 * Fold the round in steps first (the queue fills meanwhile, and
		 * drops and counts what does not fit); its end makes room */
		if (w->len > 0 && sp_store_pending_tight(w->st, w->opt.batch_max)) {
			pthread_mutex_unlock(&w->lock);
			catch_up(w);
			pthread_mutex_lock(&w->lock);
		}
		size_t batch_bytes = 0;
		while (n < w->opt.batch_max && w->len > 0 && batch_bytes < BATCH_BYTES) {
			size_t size = sp_prepared_size(w->ring[w->head]);
			batch_bytes += size;
			w->bytes -= size;
			w->batch[n++] = w->ring[w->head];
			w->head = (w->head + 1) % w->opt.queue_max;
			w->len--;
		}
		pthread_mutex_unlock(&w->lock);

		if (n) {
			int rc = commit_batch(w, n);
			if (rc)
				report_error(w, rc, n);
			else if (w->opt.on_events)
				events_out(w, n);
			for (size_t i = 0; i < n; i++)
				free(w->batch[i]);
			pthread_mutex_lock(&w->lock);
			if (rc) {
				w->stats.dropped_store += n;
				w->unsaved_dropped_store += n;
				w->stats.last_error = rc;
			} else {
				w->stats.committed += n;
				w->stats.commits++;
			}
			uint64_t total = w->stats.committed;
			pthread_mutex_unlock(&w->lock);
			/* before flushers wake, so they see every callback done */
			if (!rc && w->opt.on_commit)
				w->opt.on_commit(total, w->opt.ud);
			pthread_mutex_lock(&w->lock);
			w->done_seq += n;
			pthread_cond_broadcast(&w->settled);
			pthread_mutex_unlock(&w->lock);
		}
		pthread_mutex_lock(&w->lock);
		bool kicked = w->kicked;
		w->kicked = false;
		pthread_mutex_unlock(&w->lock);
		if (n == 0 && kicked && w->opt.collect) {
			int rc = commit_batch(w, 0);
			if (rc)
				report_error(w, rc, 0);
		}
		if (n == 0) {
			idle_fold(w);
			/* half a second idle after commits: what the queue held goes
			 * back to the system, and the map's pages (the last fold
			 * step's too) out of RSS */
			if (!w->trimmed && !sp_store_folding(w->st) &&
			    sp_mono_ns() - w->last_commit_ns >= IDLE_CLEANUP_NS) {
				/* after the round that folds what is pending, whose
				 * steps would take pages again */
				if (w->dirtied >= (uint64_t)REOPEN_PAGES * 4096 &&
				    (!sp_store_pending(w->st) || fold_blocked(w)))
					reopen(w);
				sp_store_release_map(w->st);
				sp_store_trim(w->st);
				free(w->raws); /* events_out() makes it again */
				w->raws = NULL;
				pthread_mutex_lock(&w->lock);
				if (w->len == 0) /* the queue's slots: written before read */
					sp_mem_discard(w->ring, w->opt.queue_max * sizeof(*w->ring));
				pthread_mutex_unlock(&w->lock);
				malloc_trim(0);
				w->trimmed = true;
			}
			/* idle: the caller's counters still reach the store */
			if (w->opt.collect && sp_mono_ns() - w->last_commit_ns >= 10 * SP_NS_PER_SEC) {
				int rc = commit_batch(w, 0);
				if (rc)
					report_error(w, rc, 0);
			}
		}
		if (sp_mono_ns() >= next_sweep) {
			sweep(w);
			sp_store_release_map(w->st);
			next_sweep = sp_mono_ns() + w->opt.sweep_interval_ns;
		}
	}
	return NULL;
}

int sp_writer_start(sp_writer **out, sp_store *st, const struct sp_writer_options *opt)
{
	sp_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->st = st;
	w->opt = *opt;
	if (!w->opt.queue_max)
		w->opt.queue_max = 65536;
	if (!w->opt.batch_max)
		w->opt.batch_max = 4096;
	if (!w->opt.queue_bytes_max)
		w->opt.queue_bytes_max = 32u << 20;
	if (!w->opt.sweep_budget)
		w->opt.sweep_budget = 10000;
	if (!w->opt.fold_interval_ns)
		w->opt.fold_interval_ns = SP_NS_PER_SEC;
	if (!w->opt.commit_interval_ns)
		w->opt.commit_interval_ns = 20 * SP_NS_PER_SEC / 1000;
	else if (w->opt.commit_interval_ns == UINT64_MAX)
		w->opt.commit_interval_ns = 0;
	w->last_fold_ns = sp_mono_ns();
	w->fold_gap_ns = w->opt.fold_interval_ns;
	w->ring = calloc(w->opt.queue_max, sizeof(*w->ring));
	w->batch = calloc(w->opt.batch_max, sizeof(*w->batch));
	if (w->opt.on_events) {
		w->out = calloc(w->opt.batch_max, sizeof(*w->out));
		w->out_ptrs = calloc(w->opt.batch_max, sizeof(*w->out_ptrs));
	}
	if (!w->ring || !w->batch || (w->opt.on_events && (!w->out || !w->out_ptrs))) {
		free(w->ring);
		free(w->batch);
		free(w->out);
		free(w->out_ptrs);
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->settled, NULL);
	int rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc) {
		free(w->ring);
		free(w->batch);
		free(w->out);
		free(w->out_ptrs);
		free(w);
		return -rc;
	}
	*out = w;
	return 0;
}

/* Under the lock: queue p or say why not. */
static int enqueue(sp_writer *w, sp_prepared *p)
{
	w->stats.submitted++;
	if (!p) { /* no memory to prepare it */
		w->stats.dropped_queue_full++;
		w->unsaved_dropped_queue++;
		w->done_seq++;
		return SP_EQUEUEFULL;
	}
	if (w->stopping) {
		w->done_seq++;
		return SP_ESTOPPED;
	}
	size_t size = sp_prepared_size(p);
	if (w->len >= w->opt.queue_max || w->bytes + size > w->opt.queue_bytes_max) {
		w->stats.dropped_queue_full++;
		w->unsaved_dropped_queue++;
		w->done_seq++;
		return SP_EQUEUEFULL;
	}
	/* this node's events in time order, though producers stamp them a
	 * little before they queue them (a listener's batch, another thread):
	 * one older than the last by less than a second becomes 1 ns younger
	 * than it. Event keys then grow in commit order and a fold round is
	 * never cut short by an event below its end (see ingest.c). */
	if (sp_prepared_local(p)) {
		uint64_t ts = sp_prepared_time(p);
		if (ts <= w->last_local_ts && w->last_local_ts - ts < SP_NS_PER_SEC)
			sp_prepared_set_time(p, ts = w->last_local_ts + 1);
		if (ts > w->last_local_ts)
			w->last_local_ts = ts;
	}
	w->ring[(w->head + w->len) % w->opt.queue_max] = p;
	w->bytes += size;
	/* the writer sleeps on an empty queue, or waits for a full batch */
	if (w->len++ == 0 || w->len == w->opt.batch_max ||
	    (w->bytes < BATCH_BYTES + size && w->bytes >= BATCH_BYTES))
		pthread_cond_signal(&w->wake);
	if (w->len > w->stats.queue_peak)
		w->stats.queue_peak = w->len;
	return 0;
}

int sp_writer_submit(sp_writer *w, sp_event *ev)
{
	/* the record is made here, on the producer's thread */
	sp_prepared *p = sp_event_prepare(ev);
	free(ev);
	if (p && w->opt.on_submit)
		w->opt.on_submit(&p, 1, w->opt.ud);
	pthread_mutex_lock(&w->lock);
	int rc = enqueue(w, p);
	pthread_mutex_unlock(&w->lock);
	if (rc)
		free(p);
	return rc;
}

size_t sp_writer_submit_many(sp_writer *w, sp_event *const *evs, size_t n)
{
	size_t queued = 0;
	sp_prepared *p[64];
	for (size_t base = 0; base < n; base += 64) {
		size_t m = n - base < 64 ? n - base : 64;
		for (size_t i = 0; i < m; i++) {
			p[i] = sp_event_prepare(evs[base + i]);
			free(evs[base + i]);
		}
		if (w->opt.on_submit)
			w->opt.on_submit(p, m, w->opt.ud);
		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < m; i++)
			if (enqueue(w, p[i]) == 0)
				p[i] = NULL, queued++;
		pthread_mutex_unlock(&w->lock);
		for (size_t i = 0; i < m; i++)
			free(p[i]);
	}
	return queued;
}

size_t sp_writer_submit_prepared(sp_writer *w, sp_prepared *const *p, size_t n)
{
	size_t queued = 0;
	bool refused[64];
	for (size_t base = 0; base < n; base += 64) {
		size_t m = n - base < 64 ? n - base : 64;
		if (w->opt.on_submit)
			w->opt.on_submit(p + base, m, w->opt.ud);
		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < m; i++) {
			refused[i] = enqueue(w, p[base + i]) != 0;
			queued += !refused[i];
		}
		pthread_mutex_unlock(&w->lock);
		for (size_t i = 0; i < m; i++)
			if (refused[i])
				free(p[base + i]);
	}
	return queued;
}

void sp_writer_flush(sp_writer *w)
{
	pthread_mutex_lock(&w->lock);
	uint64_t target = w->stats.submitted, gen = w->fold_gen;
	w->fold_requested = true;
	pthread_cond_signal(&w->wake);
	while (w->done_seq < target || w->fold_gen == gen)
		pthread_cond_wait(&w->settled, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void sp_writer_kick(sp_writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicked = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void sp_writer_get_stats(sp_writer *w, struct sp_writer_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	out->queue_len = w->len;
	out->queue_bytes = w->bytes;
	pthread_mutex_unlock(&w->lock);
}

void sp_writer_stop(sp_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	/* a round's sort thread calls back into w: it must be done before w
	 * goes (the writer waits for it at stop, but not after an error) */
	sp_store_fold_wait(w->st);

	/* drop counts that arrived after the last commit still reach the store */
	if (w->unsaved_dropped_queue || w->unsaved_dropped_store) {
		sp_wtxn *tx;
		uint64_t saved[2];
		if (sp_wtxn_begin(w->st, &tx) == 0) {
			if (save_counters(w, tx, 0, saved) == 0)
				sp_wtxn_commit(tx);
			else
				sp_wtxn_abort(tx);
		}
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->settled);
	free(w->ring);
	free(w->batch);
	free(w->out);
	free(w->out_ptrs);
	free(w->raws);
	free(w);
}
