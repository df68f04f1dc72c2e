/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Inside the store module only: the handle's layout, shared by store.c
 * (open, read, meta, sweep) and ingest.c (events into aggregates).
 * Internal functions are marked store__.
 */
#ifndef SP_STORE_INTERNAL_H
#define SP_STORE_INTERNAL_H

#include "store.h"

#include <lmdb.h>
#include <sys/types.h>
#include <pthread.h>
#include <stdatomic.h>

#define EVENT_KEY_LEN 24 /* ts (8, big-endian) + event id (16) */
#define UAS_PER_DELTA 4
#define RAWS_PER_DELTA 2

/* Staging: one transaction's aggregate changes, one delta per key, strings
 * pointing into the events (valid until the commit). */
struct delta {
	uint8_t kind, n_uas, n_raws, transports;
	uint8_t raw_std; /* RAW_* bits: the number dialled as key, +key or 00key */
	uint32_t methods;
	uint64_t first, last, count;
	const char *uas[UAS_PER_DELTA];
	const char *raws[RAWS_PER_DELTA];
	char key[48]; /* a normalised key: an IPv6 text is at most 45 bytes */
};

/* Open-addressing table of deltas keyed by kind and key; each slot keeps
 * the key's hash, so a probe only reads the delta when the hash matches. */
struct delta_slot {
	uint32_t idx; /* UINT32_MAX: empty */
	uint32_t hash;
};

struct delta_table {
	struct delta *d;
	struct delta_slot *slots;
	uint32_t *used; /* the slot of each delta, to clear only those */
	size_t n, cap, slot_mask;
	size_t str_bytes; /* strings the deltas point to, NUL included (a bound) */
	size_t str_count; /* and how many */
	struct delta *last_ip; /* the last IP staged */
};

/* Pending: committed changes not yet folded, one cache line per key.
 * Strings (user agents, other dialled forms) are interned per table and
 * referred to by id; keys up to PKEY_INLINE - 1 bytes live in the delta,
 * longer ones in the table's key arena. */
#define PKEY_INLINE 18
struct pdelta {
	uint64_t first, last, count;
	uint32_t methods;
	uint16_t uas[UAS_PER_DELTA];   /* string ids, 1-based */
	uint16_t raws[RAWS_PER_DELTA];
	uint8_t kind, key_len, transports, raw_std, n_uas, n_raws;
	char key[PKEY_INLINE]; /* or, when key_len >= PKEY_INLINE, a uint32_t arena offset */
};

struct pslot {
	uint32_t idx1; /* index + 1; 0: empty (zeroed memory is an empty table) */
	uint32_t hash;
};

/* Memory comes from mmap: untouched parts cost nothing, and clearing a
 * table gives its pages back (madvise), so RSS follows what is in use. */
struct ptab {
	struct pdelta *d;
	struct pslot *slots;
	char *keys;         /* long keys, NUL-terminated */
	char *str;          /* interned strings, NUL-terminated */
	uint32_t *str_off;  /* string id -> offset in str */
	uint32_t *str_slots; /* string id, 0: empty */
	size_t n, keys_used, str_used, str_n;
};

/* A fold round: the pending table frozen at a transaction boundary (every
 * event up to round_end is in it or folded), written in key order a chunk
 * per transaction. meta "fold_round" holds round_end and the last key
 * written, so a crash mid-round replays nothing twice. */
struct fold_round {
	bool active;        /* being written */
	bool sorting;       /* frozen; the sort thread puts it in key order */
	_Atomic bool sorted; /* the sort thread is done (it may not be joined) */
	pthread_t sorter;
	void *recs, *order; /* the sort's scratch, allocated when frozen */
	size_t recs_bytes, order_bytes;
	void (*done)(void *); /* called on the sort thread when it is done */
	void *done_ud;
	uint8_t end[EVENT_KEY_LEN];
	size_t n, pos;      /* the frozen table's d[pos..n) are still to fold, in
			     * (kind, key) order: they were sorted when frozen */
	size_t n_ip;        /* d[0..n_ip) are IPs, the rest numbers */
	size_t released;    /* bytes of d given back (written already) */
	uint64_t started_ns, fold_ns;
};

struct sp_wtxn {
	sp_store *st;
	MDB_txn *txn;
	msgpack_sbuffer sb;
	sp_agg agg; /* scratch */
	bool have_last_event;
	uint8_t last_event[EVENT_KEY_LEN]; /* largest event key in the table */
	bool folded;     /* sp_wtxn_fold ran: everything pending is in this transaction */
	size_t round_pos; /* the round's position as this transaction leaves it */
	bool round_done;  /* this transaction finished the round */
	uint8_t new_watermark[EVENT_KEY_LEN];
	/* change feed, valid in transaction feed_txnid: the last number given
	 * (meta.feed_seq is written at commit when dirty) and its cursors */
	uint64_t feed_seq;
	size_t feed_txnid;
	bool feed_dirty;
	MDB_cursor *feed_pos_cur, *feed_app_cur[2];
};

enum sweep_phase { SWEEP_EVENTS, SWEEP_IP, SWEEP_NUMBER, SWEEP_DONE };

struct sp_store {
	MDB_env *env; /* NULL only if sp_store_reopen() failed */
	pthread_rwlock_t env_lock; /* shared: a transaction; exclusive: the env changes */
	atomic_uint env_wanted;    /* someone waits for env_lock exclusive: readers hold back */
	unsigned reopen_flags;     /* what sp_store_reopen() opens with */
	dev_t file_dev;            /* the data file opened first: never another */
	ino_t file_ino;
	uint64_t reopen_map_size;
	MDB_dbi meta, events, ip, number;
	MDB_dbi feed_ip, feed_number, feed_pos; /* the change feed (store.c) */
	bool has_feed; /* false: a read-only open of a store from before the feed */
	bool readonly, set_retention;
	char *path;
	int map_fd; /* the data file (LMDB's): its map is found by it */
	uint64_t retention_ns;
	uint8_t node_id[16]; /* zero if a read-only open found none */
	size_t batch_max;
	struct sp_wtxn tx;
	bool tx_busy;
	/* ingest: this transaction (staging), committed but not folded
	 * (pending), and the table a fold round is writing (frozen) */
	struct delta_table staging;
	struct ptab tabs[2];
	struct ptab *pending, *frozen;
	struct fold_round round;
	uint8_t watermark[EVENT_KEY_LEN]; /* every event at or below it is folded */
	uint64_t whole_folds; /* commits that folded everything (sp_store_whole_folds) */
	bool have_committed;
	uint8_t committed[EVENT_KEY_LEN]; /* largest event key committed */
	/* sweep position */
	enum sweep_phase sweep_phase;
	char sweep_key[SP_KEY_MAX];
	bool sweep_has_key;
};

uint64_t store__get_be64(const void *p);
void store__put_be64(void *p, uint64_t v);
int store__meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, void *buf, size_t len);
int store__meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out);
int store__meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value);
int store__map_errno(int rc);
MDB_dbi store__agg_dbi(const sp_store *st, enum sp_kind kind);

/* The change feed: call after an aggregate of kind/key was written in tx. */
int store__feed_touch(sp_wtxn *tx, uint8_t kind, const char *key);
int store__feed_flush(sp_wtxn *tx, MDB_txn *txn); /* before commit */

/* ingest.c */
int store__ingest_open(sp_store *st, MDB_txn *txn); /* allocate, replay unfolded events */
void store__ingest_close(sp_store *st);
void store__ingest_begin(sp_wtxn *tx); /* a write transaction began */
int store__ingest_before_commit(sp_wtxn *tx);
void store__ingest_after_commit(sp_wtxn *tx, int rc);

#endif
