/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The local store: one LMDB file (DATA_DIR/sentrypeer.mdb by default) with
 * four tables: meta (schema, settings the readers need, counters), events
 * (key: timestamp ns big-endian + event id), ip and number (key: the
 * normalised key, value: an sp_agg).
 *
 * One process writes at a time (LMDB's lock; inside the node, the writer
 * thread in writer.h); any number of readers in any process read a
 * consistent snapshot without blocking the writer. Committed data survives
 * kill -9 in every sync mode, and power loss in SP_SYNC_FULL.
 *
 * Handles are opaque. A read-only handle never creates or changes files.
 */
#ifndef SP_STORE_H
#define SP_STORE_H

#include "sp_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 2: an event's message may be stored compressed (sp_raw.h); a binary that
 * knows only 1 would read such events without their message. A writer
 * opening a schema 1 store marks it 2. */
#define SP_STORE_SCHEMA 2
#define SP_STORE_FILE "sentrypeer.mdb"

typedef struct sp_store sp_store;
typedef struct sp_wtxn sp_wtxn;

enum sp_sync {
	SP_SYNC_FULL,   /* fsync data and meta at every commit */
	SP_SYNC_NOMETA, /* fsync data, not the meta page: power loss may lose the last commit */
	SP_SYNC_NONE,   /* no fsync: kill -9 safe, power loss may lose recent commits */
};

struct sp_store_options {
	const char *path;        /* the LMDB file */
	uint64_t map_size;       /* bytes; 0 = keep the file's own size (readers) */
	enum sp_sync sync;
	bool readonly;
	uint64_t retention_ns;   /* used when the store has none recorded */
	bool set_retention;      /* writers: record retention_ns for everyone (the node) */
	size_t batch_max;        /* largest sp_wtxn_add_events() batch (sizes scratch) */
};

/* Open or (writers) create. Errors: SP_ENOSTORE (read-only, nothing
 * there), SP_EFOREIGN, SP_ESCHEMA, SP_EACCESS, MDB_INVALID, -errno. */
int sp_store_open(sp_store **out, const struct sp_store_options *opt);
void sp_store_close(sp_store *st);
const char *sp_store_path(const sp_store *st);

/* Drop the store's mapped pages from this process's RSS. LMDB's map is
 * read-only (it writes with pwrite; no MDB_WRITEMAP), so the pages stay in
 * the page cache and come back on the next access: nothing changes but
 * VmRSS (RssFile), which otherwise grows with every page a fold or a
 * lookup read. Safe while other threads read. */
void sp_store_release_map(sp_store *st);

/* Close and open the LMDB environment again, to give back the memory
 * LMDB keeps (until close) for as many dirty pages as the largest write
 * transaction had. Writers only, between write transactions; -EBUSY when
 * a thread of this process has a transaction open (try later). The store
 * stays open as it is, and it returns -ESTALE, when its path is another
 * file now (replaced), or -errno when the path cannot be reached (moved:
 * -ENOENT; a user the node switched to may not pass its directory). If
 * it cannot open the file again, every
 * call on the store fails with SP_ECLOSED until a later sp_store_reopen()
 * succeeds. */
int sp_store_reopen(sp_store *st);
/* Writers, between transactions: give back the pages of the scratch a
 * transaction stages its changes in (they come back with the next one). */
void sp_store_trim(sp_store *st);
/* Give the store and its lock file to another user (a node started as
 * root, before it switches to that user). */
int sp_store_give(sp_store *st, uid_t uid, gid_t gid);
/* False only after a failed sp_store_reopen() (call it from the writer). */
bool sp_store_is_open(const sp_store *st);

/* This node's id, made when the store was created (a UUID). */
void sp_store_node_id(const sp_store *st, uint8_t id[16]);

/* Retention the writing node uses (from meta), else the opener's. */
uint64_t sp_store_retention(const sp_store *st);

/* One aggregate. SP_ENOTFOUND if absent; expired reports are still
 * returned (callers summarise with a clock). */
int sp_store_get(sp_store *st, enum sp_kind kind, const char *key, sp_agg *out);

/* Calls fn for every aggregate of a kind in key order, in one snapshot,
 * until fn returns non-zero (which is returned). Records that do not decode
 * are skipped and counted in *corrupt (may be NULL). */
typedef int (*sp_agg_fn)(const sp_agg *a, void *ud);
int sp_store_foreach(sp_store *st, enum sp_kind kind, sp_agg_fn fn, void *ud, uint64_t *corrupt);

/* Events from since_ns on, oldest first; e->raw valid during the call. */
typedef int (*sp_event_fn)(const sp_event *e, void *ud);
int sp_store_foreach_event(sp_store *st, uint64_t since_ns, sp_event_fn fn, void *ud,
			   uint64_t *corrupt);

/* The newest events, newest first, at most max; e->raw valid during the
 * call. fn returns non-zero to stop (returned). */
int sp_store_recent_events(sp_store *st, size_t max, sp_event_fn fn, void *ud);

/* A position in the events table, for reading event times as they come. */
struct sp_event_pos {
	uint8_t key[24];
	bool started; /* key is the last event handed out, not a start time */
};
void sp_event_pos_init(struct sp_event_pos *pos, uint64_t since_ns);
/* The times of the events after pos (at most max, oldest first), read from
 * their keys without decoding them; pos advances; *more when max stopped it. */
int sp_store_event_times(sp_store *st, struct sp_event_pos *pos, size_t max,
			 void (*fn)(uint64_t ts_ns, void *ud), void *ud, bool *more);

/* The change feed. Every write of an aggregate (folded from events, merged
 * from a peer or an import) gives it the next sequence number of the store;
 * older numbers of the same key are forgotten, and an aggregate the sweep
 * removes leaves the feed. sp_store_feed() calls fn, in sequence order, for
 * the aggregates of a kind whose number is above after, in one snapshot,
 * looking at most at max_scan entries; fn returns 0 to go on, 1 to stop
 * after this one, or a negative error. A client that keeps res->last and
 * passes it back gets only what was written since (what APIBAN's cursor
 * does). SP_ENOTFOUND: a read-only open of a store no writer of this
 * version has opened (the feed is built when a writer opens it). */
typedef int (*sp_feed_fn)(uint64_t seq, const sp_agg *a, void *ud);
struct sp_feed_result {
	uint64_t last;    /* the last number looked at (after, when none) */
	uint64_t head;    /* the store's newest number, either kind */
	uint64_t scanned, corrupt;
	bool more;        /* entries remain after last */
};
int sp_store_feed(sp_store *st, enum sp_kind kind, uint64_t after, size_t max_scan,
		  sp_feed_fn fn, void *ud, struct sp_feed_result *res);

struct sp_store_stats {
	uint64_t events, ips, numbers;
	uint64_t oldest_event_ns, newest_event_ns;
	uint64_t map_size, used_bytes, file_bytes;
	uint64_t retention_ns;
	uint32_t schema;
};
int sp_store_stats(sp_store *st, struct sp_store_stats *out);

/* Named counters kept in meta (events_recorded, events_dropped, ...). */
int sp_store_counter_get(sp_store *st, const char *name, uint64_t *out);
typedef void (*sp_counter_fn)(const char *name, uint64_t value, void *ud);
int sp_store_counters(sp_store *st, sp_counter_fn fn, void *ud);

/* ---- writing: one transaction at a time per handle ---------------- */

int sp_wtxn_begin(sp_store *st, sp_wtxn **out);
/* Store events (n <= batch_max; they must stay valid until the commit).
 * Their aggregates (source IP, To user, and Request-URI user when it is
 * another number) are updated when folded: after commit the changes wait in
 * memory, coalesced per key, until a fold writes them. Nothing is lost in a
 * crash: opening the store for writing folds the events committed after the
 * last fold. Events from peers, and events older than the last fold, are
 * folded at once. */
int sp_wtxn_add_events(sp_wtxn *tx, sp_event *const *events, size_t n);
/* Write every pending aggregate change in this transaction, in key order. */
int sp_wtxn_fold(sp_wtxn *tx);

/* Events prepared by the thread that made them: the writer is one thread,
 * so what can be done before it sees an event (encoding the record,
 * normalising the aggregates' keys) is done by the producer.
 * sp_event_prepare() returns one allocation (free with free()), about the
 * size of the record: the event itself can be freed. NULL: no memory. */
typedef struct sp_prepared sp_prepared;
sp_prepared *sp_event_prepare(const sp_event *e);
size_t sp_prepared_size(const sp_prepared *p);
bool sp_prepared_local(const sp_prepared *p); /* from this node (origin "") */
/* The aggregates the event updates: kinds and normalised keys (valid as
 * long as p), at most 3; returns how many. */
unsigned sp_prepared_keys(const sp_prepared *p, uint8_t kind[3], const char *key[3]);
uint64_t sp_prepared_time(const sp_prepared *p);
void sp_prepared_set_time(sp_prepared *p, uint64_t ts_ns);
/* The event again, decoded from the record (e->raw as sp_event_decode()
 * says: into p, or into this thread's buffer until its next decode). */
int sp_prepared_event(const sp_prepared *p, sp_event *e);
/* As sp_wtxn_add_events(). */
int sp_wtxn_add_prepared(sp_wtxn *tx, sp_prepared *const *p, size_t n);
/* Folding in rounds, for a writer that must keep committing meanwhile:
 * sp_store_fold_begin() (between transactions) freezes what is pending
 * (returns 1, or 0 when nothing is pending or a round runs already); each
 * later transaction writes the next part of it with sp_wtxn_fold_step(), in
 * key order, about as much as dirties max_pages leaf pages (LMDB holds a
 * transaction's dirty pages in memory).
 * Changes committed meanwhile wait for the next round. A crash mid-round
 * loses nothing and counts nothing twice. */
int sp_store_fold_begin(sp_store *st);
/* The same, but the frozen table is put in key order by a thread of its own
 * (sorting 200,000 keys takes tens of milliseconds, a stall the writer's
 * queue would feel); done(ud) is called on that thread when it is over.
 * Until then sp_wtxn_fold_step() writes nothing, and what must finish the
 * round at once (sp_wtxn_fold(), an event older than the round's end)
 * waits for the sort. sp_store_fold_ready(): a round can be stepped;
 * sp_store_fold_wait(): wait for the sort. Returns as sp_store_fold_begin(). */
int sp_store_fold_begin_async(sp_store *st, void (*done)(void *), void *ud);
bool sp_store_fold_ready(const sp_store *st);
void sp_store_fold_wait(sp_store *st);
int sp_wtxn_fold_step(sp_wtxn *tx, size_t max_pages);
/* A round has begun (it may still be sorting) and is not written yet. */
bool sp_store_folding(const sp_store *st);
/* Aggregates waiting to be folded (pending and the round's rest); how full
 * the pending memory is, in 256ths; and whether it is 3/4 full. */
size_t sp_store_pending(const sp_store *st);
unsigned sp_store_pending_load(const sp_store *st);
bool sp_store_fold_due(const sp_store *st);
/* A batch of this many events might not fit in pending: a commit whose
 * changes do not fit folds everything pending in one transaction (its
 * memory grows with the store), so a writer folds the running round first. */
bool sp_store_pending_tight(const sp_store *st, size_t events);
/* Commits that folded everything pending at once because their changes
 * did not fit (since open): what sp_store_pending_tight() is for avoiding. */
uint64_t sp_store_whole_folds(const sp_store *st);
/* Fold an aggregate into the stored one (sp_agg_merge). */
int sp_wtxn_merge(sp_wtxn *tx, const sp_agg *a);
int sp_wtxn_counter_add(sp_wtxn *tx, const char *name, uint64_t delta);
int sp_wtxn_commit(sp_wtxn *tx); /* frees tx in every case */
void sp_wtxn_abort(sp_wtxn *tx);

/* Retention: delete events older than now - retention and expired
 * reports (whole aggregates when none is left), at most budget records per
 * call, each call its own transaction. Returns 1 while there is more to do,
 * 0 when done, or an error. */
struct sp_sweep_stats { uint64_t events_deleted, aggs_deleted, aggs_updated; };
int sp_store_sweep_step(sp_store *st, uint64_t now_ns, size_t budget, struct sp_sweep_stats *acc);

#endif
