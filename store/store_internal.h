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

#define EVENT_KEY_LEN 24 /* ts (8, big-endian) + event id (16) */
#define UAS_PER_DELTA 4
#define RAWS_PER_DELTA 2

/* Changes to one aggregate from events this node saw, not yet folded in. */
struct delta {
	uint8_t kind, n_uas, n_raws, transports;
	uint8_t raw_std; /* RAW_* bits: the number dialled as key, +key or 00key */
	uint32_t methods;
	uint64_t first, last, count;
	const char *uas[UAS_PER_DELTA];   /* staging: into events; pending: interned */
	const char *raws[RAWS_PER_DELTA]; /* other forms, likewise */
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
	size_t n, cap, slot_mask;
};

struct sp_wtxn {
	sp_store *st;
	MDB_txn *txn;
	msgpack_sbuffer sb;
	sp_agg agg; /* scratch */
	bool have_last_event;
	uint8_t last_event[EVENT_KEY_LEN]; /* largest event key in the table */
	bool must_fold;  /* an event went in below the watermark */
	bool folded;     /* sp_wtxn_fold ran: pending is in this transaction */
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
	MDB_env *env;
	MDB_dbi meta, events, ip, number;
	MDB_dbi feed_ip, feed_number, feed_pos; /* the change feed (store.c) */
	bool has_feed; /* false: a read-only open of a store from before the feed */
	bool readonly, set_retention;
	char *path;
	uint64_t retention_ns;
	uint8_t node_id[16]; /* zero if a read-only open found none */
	size_t batch_max;
	struct sp_wtxn tx;
	bool tx_busy;
	/* ingest: this batch (staging), committed but not folded (pending) */
	struct delta_table staging, pending;
	char *arena; /* strings the pending deltas point to, each once */
	size_t arena_used, arena_cap;
	const char **intern; /* open-addressing set of the arena's strings */
	size_t intern_n, intern_mask;
	uint8_t watermark[EVENT_KEY_LEN]; /* every event at or below it is folded */
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
int store__ingest_before_commit(sp_wtxn *tx);
void store__ingest_after_commit(sp_wtxn *tx, int rc);

#endif
