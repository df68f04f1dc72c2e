/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The node's single writer: a thread that owns the store's write side.
 *
 * Producers (the SIP listeners) hand events to sp_writer_submit(), which
 * never blocks on the disk: it takes a lock for a pointer push and returns.
 * When the bounded queue is full the event is dropped and counted. The
 * thread commits whatever is queued in one transaction (group commit, up to
 * batch_max events), so the batch grows with the load and the fsync cost is
 * shared. Aggregates are folded from the events at least every
 * fold_interval (see sp_wtxn_fold), and the retention sweeper runs between
 * commits.
 */
#ifndef SP_WRITER_H
#define SP_WRITER_H

#include "store.h"

typedef struct sp_writer sp_writer;

struct sp_writer_options {
	size_t queue_max;           /* events waiting; default 65536 */
	size_t queue_bytes_max;     /* and the memory they hold (their prepared
				     * records); default 32 MiB */
	size_t batch_max;           /* events per transaction; the store's batch_max */
	uint64_t sweep_interval_ns; /* 0: never sweep */
	uint64_t fold_interval_ns;  /* aggregates lag events by at most this; default 1 s */
	/* Least time from one commit's start to the next's while fewer than
	 * batch_max events wait (a slower commit is followed at once):
	 * under load batches grow and each fsync serves more events; an event
	 * waits at most this long for its commit (after an idle spell it
	 * commits at once). Default 20 ms; (uint64_t)-1: 0. */
	uint64_t commit_interval_ns;
	size_t sweep_budget;        /* records per sweep transaction; default 10000 */
	/* Called on the writer thread after each successful commit with the
	 * running total of committed events. Optional. */
	void (*on_commit)(uint64_t committed_total, void *ud);
	/* Called on the writer thread after each successful commit with the
	 * committed events (decoded again from their records, valid during the
	 * call): event outputs. Optional. */
	void (*on_events)(sp_event *const *events, size_t n, void *ud);
	/* Called on the producer's thread in sp_writer_submit*() with the
	 * prepared records about to be queued (before they may be dropped;
	 * entries may be NULL): cheap observers only, such as noting which
	 * keys changed (sp_prepared_keys). Optional. */
	void (*on_submit)(sp_prepared *const *p, size_t n, void *ud);
	/* Called inside each transaction: add the caller's counters with
	 * sp_wtxn_counter_add(). Optional. */
	void (*collect)(sp_wtxn *tx, void *ud);
	void *ud;
};

struct sp_writer_stats {
	uint64_t submitted, committed;
	uint64_t dropped_queue_full; /* the queue was full */
	uint64_t dropped_store;      /* the store refused the batch (full, I/O error) */
	uint64_t commits, queue_len, queue_peak, queue_bytes;
	uint64_t folds, fold_ns; /* folds done, and the time they took */
	uint64_t catch_ups;      /* fold-only commits made because pending was
				  * nearly full (a flood of new keys) */
	uint64_t reopens;        /* the store reopened when idle (sp_store_reopen) */
	int last_error;              /* 0 or the last store error */
};

int sp_writer_start(sp_writer **out, sp_store *st, const struct sp_writer_options *opt);
/* Takes ownership of ev (from sp_event_new) and frees it: the queue holds
 * the record the caller's thread prepares from it (sp_event_prepare), about
 * the size of the raw message. Returns 0, SP_EQUEUEFULL (also when there
 * is no memory to prepare it) or SP_ESTOPPED. Safe from any thread.
 * This node's events (origin "") are queued in time order: one stamped
 * less than a second before the last one queued gets that one's time plus
 * 1 ns (producers stamp events a little before they queue them). */
int sp_writer_submit(sp_writer *w, sp_event *ev);
/* The same for n events under one lock; returns how many were queued (the
 * others were dropped, counted and freed, in order: the first ones fit). */
size_t sp_writer_submit_many(sp_writer *w, sp_event *const *evs, size_t n);
/* The same for records the caller prepared (sp_event_prepare), which the
 * writer takes and frees: a producer can keep its event on its stack. */
size_t sp_writer_submit_prepared(sp_writer *w, sp_prepared *const *p, size_t n);
/* Waits until every event submitted before the call is committed (or
 * dropped) and folded into its aggregates. */
void sp_writer_flush(sp_writer *w);
/* Run a transaction soon even when no event waits, so collect() can write
 * what another part of the node queued (peer data). Never blocks. */
void sp_writer_kick(sp_writer *w);
void sp_writer_get_stats(sp_writer *w, struct sp_writer_stats *out);
/* Commits what is queued, stops the thread, frees w. The store stays open. */
void sp_writer_stop(sp_writer *w);

#endif
