/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Events into aggregates.
 *
 * The events table is the log; the ip and number tables are folded from it.
 * Rewriting thousands of random aggregates at every commit would rewrite
 * most of their pages each time, so a commit stores its events and keeps
 * their aggregate changes in memory ("pending", one delta per key, strings
 * in an arena). sp_wtxn_fold() writes all pending deltas in key order
 * through one cursor per table and advances the watermark in meta: every
 * event at or below it is folded. After a crash, opening the store for
 * writing replays the events above the watermark, so nothing is lost.
 *
 * Events from peers, and events that go in below the watermark (the clock
 * stepped back), are folded in their own transaction.
 */
#include "store_internal.h"
#include "sp_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_MAX 262144    /* distinct aggregates waiting to be folded */
#define ARENA_MAX (2u << 20)  /* bytes of user agents and raw forms they hold */
#define INTERN_SLOTS 32768    /* distinct strings: at most 3/4 of this */
#define RAW_KEY 1             /* dialled as the key itself */
#define RAW_PLUS 2            /* as +key */
#define RAW_00 4              /* as 00key */
#define WATERMARK_KEY "folded_through"

/* ---- delta tables -------------------------------------------------- */

/* FNV-1a, then a murmur3 finaliser: FNV's low bits, which pick the slot,
 * cluster badly on keys that differ only in a few digits. */
static uint32_t mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static uint32_t key_hash(uint8_t kind, const char *key)
{
	uint32_t h = 2166136261u ^ kind;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return mix(h);
}

static void dt_clear(struct delta_table *t)
{
	for (size_t i = 0; i <= t->slot_mask; i++)
		t->slots[i].idx = UINT32_MAX;
	t->n = 0;
}

static int dt_init(struct delta_table *t, size_t cap)
{
	size_t slots = 1;
	while (slots < cap * 2)
		slots <<= 1;
	t->d = malloc(cap * sizeof(*t->d));
	t->slots = malloc(slots * sizeof(*t->slots));
	if (!t->d || !t->slots)
		return -ENOMEM;
	t->cap = cap;
	t->slot_mask = slots - 1;
	dt_clear(t);
	return 0;
}

static void dt_free(struct delta_table *t)
{
	free(t->d);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* The delta for kind/key, created empty if absent; NULL when full. */
static struct delta *dt_get(struct delta_table *t, uint8_t kind, const char *key)
{
	uint32_t h = key_hash(kind, key), i = h & (uint32_t)t->slot_mask;
	for (;; i = (i + 1) & (uint32_t)t->slot_mask) {
		struct delta_slot *sl = &t->slots[i];
		if (sl->idx == UINT32_MAX)
			break;
		if (sl->hash != h)
			continue;
		struct delta *d = &t->d[sl->idx];
		if (d->kind == kind && strcmp(d->key, key) == 0)
			return d;
	}
	size_t len = strlen(key);
	if (t->n >= t->cap || len >= sizeof(t->d[0].key))
		return NULL;
	struct delta *d = &t->d[t->n];
	t->slots[i].idx = (uint32_t)t->n++;
	t->slots[i].hash = h;
	memset(d, 0, offsetof(struct delta, key));
	d->kind = kind;
	memcpy(d->key, key, len + 1);
	d->first = UINT64_MAX;
	return d;
}

static bool ptr_in(const char *const *set, unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(set[i], s) == 0)
			return true;
	return false;
}

static void ptr_add(const char **set, uint8_t *n, unsigned max, const char *s)
{
	if (*s && *n < max && !ptr_in(set, *n, s))
		set[(*n)++] = s;
}

static void delta_add_event(struct delta *d, const sp_event *e, const char *raw)
{
	if (e->ts_ns < d->first)
		d->first = e->ts_ns;
	if (e->ts_ns > d->last)
		d->last = e->ts_ns;
	d->count++;
	d->methods |= e->method[0] ? sp_method_bit(e->method) : 0;
	d->transports |= e->transport;
	ptr_add(d->uas, &d->n_uas, UAS_PER_DELTA, e->user_agent);
	if (!raw)
		return;
	/* the usual forms are bits, so pending holds no string for them */
	if (strcmp(raw, d->key) == 0)
		d->raw_std |= RAW_KEY;
	else if (raw[0] == '+' && strcmp(raw + 1, d->key) == 0)
		d->raw_std |= RAW_PLUS;
	else if (raw[0] == '0' && raw[1] == '0' && strcmp(raw + 2, d->key) == 0)
		d->raw_std |= RAW_00;
	else
		ptr_add(d->raws, &d->n_raws, RAWS_PER_DELTA, raw);
}

/* The aggregates an event feeds: source IP, To user, and the Request-URI
 * user when it is another number. Calls fn for each. */
static int for_each_target(const sp_event *e, int (*fn)(void *, uint8_t, const char *, const char *,
							 const sp_event *), void *ud)
{
	char key[SP_KEY_MAX], rkey[SP_KEY_MAX];
	int rc;
	if (sp_ip_normalize(e->src_ip, key, NULL) == 0 && (rc = fn(ud, SP_KIND_IP, key, NULL, e)))
		return rc;
	bool have_to = sp_number_normalize(e->to_user, key) == 0;
	if (have_to && (rc = fn(ud, SP_KIND_NUMBER, key, e->to_user, e)))
		return rc;
	if (sp_number_normalize(e->ruri_user, rkey) == 0 && (!have_to || strcmp(rkey, key) != 0))
		return fn(ud, SP_KIND_NUMBER, rkey, e->ruri_user, e);
	return 0;
}

static int stage_one(void *ud, uint8_t kind, const char *key, const char *raw, const sp_event *e)
{
	struct delta *d = dt_get(ud, kind, key);
	if (!d)
		return SP_ETOOBIG; /* cannot happen: staging holds 3 per event of a batch */
	delta_add_event(d, e, raw);
	return 0;
}

/* ---- pending: committed, not yet folded ---------------------------- */

static uint32_t str_hash(const char *s)
{
	return key_hash(0, s);
}

/* The arena's copy of s, made if absent (create); NULL when absent and not
 * created, or when the arena or the set is full. */
static const char *intern(sp_store *st, const char *s, bool create)
{
	uint32_t i = str_hash(s) & (uint32_t)st->intern_mask;
	for (;; i = (i + 1) & (uint32_t)st->intern_mask) {
		const char *c = st->intern[i];
		if (!c)
			break;
		if (strcmp(c, s) == 0)
			return c;
	}
	size_t n = strlen(s) + 1;
	if (!create || st->arena_used + n > st->arena_cap ||
	    st->intern_n >= (st->intern_mask + 1) / 4 * 3)
		return NULL;
	char *p = st->arena + st->arena_used;
	memcpy(p, s, n);
	st->arena_used += n;
	st->intern[i] = p;
	st->intern_n++;
	return p;
}

static void pending_clear(sp_store *st)
{
	dt_clear(&st->pending);
	st->arena_used = 0;
	memset(st->intern, 0, (st->intern_mask + 1) * sizeof(*st->intern));
	st->intern_n = 0;
}

/* Would the staged batch fit in pending? Strings already held cost nothing. */
static bool staging_fits(sp_store *st)
{
	size_t bytes = 0, strings = 0;
	if (st->pending.n + st->staging.n > st->pending.cap)
		return false;
	for (size_t i = 0; i < st->staging.n; i++) {
		const struct delta *d = &st->staging.d[i];
		for (unsigned k = 0; k < d->n_uas + d->n_raws; k++) {
			const char *str = k < d->n_uas ? d->uas[k] : d->raws[k - d->n_uas];
			if (!intern(st, str, false)) {
				bytes += strlen(str) + 1;
				strings++;
			}
		}
	}
	return st->arena_used + bytes <= st->arena_cap &&
	       st->intern_n + strings < (st->intern_mask + 1) / 4 * 3;
}

static void add_interned(sp_store *st, const char **set, uint8_t *n, unsigned max, const char *s)
{
	if (*n >= max)
		return;
	const char *c = intern(st, s, true);
	if (!c)
		return; /* staging_fits() was checked first */
	for (unsigned i = 0; i < *n; i++)
		if (set[i] == c)
			return;
	set[(*n)++] = c;
}

/* Strings are interned: staging points into events that are about to go. */
static void merge_into_pending(sp_store *st, const struct delta *s)
{
	struct delta *d = dt_get(&st->pending, s->kind, s->key);
	if (!d)
		return; /* staging_fits() was checked first */
	if (s->first < d->first)
		d->first = s->first;
	if (s->last > d->last)
		d->last = s->last;
	d->count += s->count;
	d->methods |= s->methods;
	d->transports |= s->transports;
	d->raw_std |= s->raw_std;
	for (unsigned i = 0; i < s->n_uas; i++)
		add_interned(st, d->uas, &d->n_uas, UAS_PER_DELTA, s->uas[i]);
	for (unsigned i = 0; i < s->n_raws; i++)
		add_interned(st, d->raws, &d->n_raws, RAWS_PER_DELTA, s->raws[i]);
}

/* ---- folding ------------------------------------------------------- */

static void apply_delta(sp_agg *a, const struct delta *d, const char *reporter)
{
	sp_report *r = sp_agg_report(a, reporter, true);
	if (r) { /* NULL: as many peers as we keep for one key already */
		if (!r->first_ns || d->first < r->first_ns)
			r->first_ns = d->first;
		if (d->last > r->last_ns)
			r->last_ns = d->last;
		r->count += d->count;
	}
	a->methods |= d->methods;
	a->transports |= d->transports;
	for (unsigned i = 0; i < d->n_uas; i++)
		sp_agg_add_ua(a, d->uas[i]);
	if (d->raw_std) {
		char form[SP_USER_MAX];
		if (d->raw_std & RAW_PLUS) {
			snprintf(form, sizeof(form), "+%s", d->key);
			sp_agg_add_raw(a, form);
		}
		if (d->raw_std & RAW_00) {
			snprintf(form, sizeof(form), "00%s", d->key);
			sp_agg_add_raw(a, form);
		}
		if (d->raw_std & RAW_KEY)
			sp_agg_add_raw(a, d->key);
	}
	for (unsigned i = 0; i < d->n_raws; i++)
		sp_agg_add_raw(a, d->raws[i]);
}

/* Read-modify-write of one aggregate through a cursor on its table. */
static int fold_one(sp_wtxn *tx, MDB_cursor *cur, const struct delta *d, const char *reporter)
{
	MDB_val k = { strlen(d->key), (void *)d->key }, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	bool exists = rc == 0;
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	/* a record that no longer decodes is replaced, not kept half-read */
	if (!exists || sp_agg_decode(v.mv_data, v.mv_size, &tx->agg) != 0)
		sp_agg_init(&tx->agg, d->kind, d->key);
	apply_delta(&tx->agg, d, reporter);
	tx->sb.size = 0;
	sp_agg_encode(&tx->agg, &tx->sb);
	MDB_val nk = { strlen(d->key), (void *)d->key }, nv = { tx->sb.size, tx->sb.data };
	rc = mdb_cursor_put(cur, &nk, &nv, exists ? MDB_CURRENT : 0);
	return rc ? rc : store__feed_touch(tx, d->kind, d->key); /* the change feed */
}

static const struct delta *sort_base;

static int cmp_order(const void *a, const void *b)
{
	const struct delta *x = &sort_base[*(const uint32_t *)a], *y = &sort_base[*(const uint32_t *)b];
	if (x->kind != y->kind)
		return x->kind - y->kind;
	return strcmp(x->key, y->key);
}

/* Write a table's deltas in key order: each page is visited once. */
static int fold_table(sp_wtxn *tx, const struct delta_table *t)
{
	MDB_cursor *cur[2] = { NULL, NULL };
	uint32_t *order;
	int rc;

	if (t->n == 0)
		return 0;
	order = malloc(t->n * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		order[i] = (uint32_t)i;
	sort_base = t->d; /* only the writer folds: one thread */
	qsort(order, t->n, sizeof(*order), cmp_order);
	if ((rc = mdb_cursor_open(tx->txn, tx->st->ip, &cur[0])) == 0 &&
	    (rc = mdb_cursor_open(tx->txn, tx->st->number, &cur[1])) == 0) {
		for (size_t i = 0; i < t->n && rc == 0; i++) {
			const struct delta *d = &t->d[order[i]];
			rc = fold_one(tx, cur[d->kind == SP_KIND_IP ? 0 : 1], d, "");
		}
	}
	if (cur[0])
		mdb_cursor_close(cur[0]);
	if (cur[1])
		mdb_cursor_close(cur[1]);
	free(order);
	return rc;
}

static int last_event_key(sp_wtxn *tx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	if (tx->have_last_event)
		return 0;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->events, &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	memset(tx->last_event, 0, EVENT_KEY_LEN);
	if (rc == 0 && k.mv_size == EVENT_KEY_LEN)
		memcpy(tx->last_event, k.mv_data, EVENT_KEY_LEN);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	tx->have_last_event = true;
	return 0;
}

int sp_wtxn_fold(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	int rc;
	if ((rc = fold_table(tx, &st->pending)) || (rc = fold_table(tx, &st->staging)) ||
	    (rc = last_event_key(tx)))
		return store__map_errno(rc);
	/* everything in the events table is now folded */
	if (memcmp(tx->last_event, st->watermark, EVENT_KEY_LEN) > 0)
		memcpy(tx->new_watermark, tx->last_event, EVENT_KEY_LEN);
	else
		memcpy(tx->new_watermark, st->watermark, EVENT_KEY_LEN);
	MDB_val k = { strlen(WATERMARK_KEY), WATERMARK_KEY }, v = { EVENT_KEY_LEN, tx->new_watermark };
	if ((rc = mdb_put(tx->txn, st->meta, &k, &v, 0)))
		return store__map_errno(rc);
	tx->folded = true;
	return 0;
}

size_t sp_store_pending(const sp_store *st)
{
	return st->pending.n;
}

bool sp_store_fold_due(const sp_store *st)
{
	return st->pending.n >= st->pending.cap / 4 * 3 || st->arena_used >= st->arena_cap / 4 * 3 ||
	       st->intern_n >= (st->intern_mask + 1) / 2;
}

/* ---- adding events ------------------------------------------------- */

static int put_event(sp_wtxn *tx, const sp_event *e, bool *below_watermark)
{
	uint8_t key[EVENT_KEY_LEN];
	MDB_val k = { sizeof(key), key }, v;
	unsigned flags = 0;
	int rc;

	store__put_be64(key, e->ts_ns);
	memcpy(key + 8, e->id, 16);
	if ((rc = last_event_key(tx)))
		return rc;
	if (memcmp(key, tx->last_event, sizeof(key)) > 0) {
		flags = MDB_APPEND; /* the common case: time moves forward */
		memcpy(tx->last_event, key, sizeof(key));
	}
	*below_watermark = memcmp(key, tx->st->watermark, sizeof(key)) <= 0;
	tx->sb.size = 0;
	sp_event_encode(e, &tx->sb);
	v.mv_size = tx->sb.size;
	v.mv_data = tx->sb.data;
	return mdb_put(tx->txn, tx->st->events, &k, &v, flags);
}

struct now_ctx {
	sp_wtxn *tx;
	const char *reporter;
};

/* Fold one event's changes at once (peer events, late events). */
static int fold_now(void *ud, uint8_t kind, const char *key, const char *raw, const sp_event *e)
{
	struct now_ctx *c = ud;
	struct delta d;
	MDB_cursor *cur;
	memset(&d, 0, sizeof(d));
	d.kind = kind;
	snprintf(d.key, sizeof(d.key), "%s", key);
	d.first = UINT64_MAX;
	delta_add_event(&d, e, raw);
	int rc = mdb_cursor_open(c->tx->txn, store__agg_dbi(c->tx->st, kind), &cur);
	if (rc)
		return rc;
	rc = fold_one(c->tx, cur, &d, c->reporter);
	mdb_cursor_close(cur);
	return rc;
}

int sp_wtxn_add_events(sp_wtxn *tx, sp_event *const *events, size_t n)
{
	sp_store *st = tx->st;
	int rc;

	if (n > st->batch_max)
		return SP_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		const sp_event *e = events[i];
		bool below;
		if ((rc = put_event(tx, e, &below)))
			return store__map_errno(rc);
		if (e->origin[0] || below) {
			/* the watermark would skip it on replay: fold it now */
			struct now_ctx c = { tx, e->origin };
			rc = for_each_target(e, fold_now, &c);
		} else {
			rc = for_each_target(e, stage_one, &st->staging);
		}
		if (rc)
			return store__map_errno(rc);
	}
	return 0;
}

/* ---- commit hooks, open and close ---------------------------------- */

int store__ingest_before_commit(sp_wtxn *tx)
{
	if (!tx->folded && tx->st->staging.n && !staging_fits(tx->st))
		return sp_wtxn_fold(tx); /* no room to keep it in memory */
	return 0;
}

void store__ingest_after_commit(sp_wtxn *tx, int rc)
{
	sp_store *st = tx->st;
	if (rc == 0 && tx->folded) {
		pending_clear(st);
		memcpy(st->watermark, tx->new_watermark, EVENT_KEY_LEN);
	} else if (rc == 0) {
		for (size_t i = 0; i < st->staging.n; i++)
			merge_into_pending(st, &st->staging.d[i]);
	}
	/* on failure the batch is gone and pending is as it was */
	if (st->staging.n)
		dt_clear(&st->staging);
}

static int replay_one(void *ud, uint8_t kind, const char *key, const char *raw, const sp_event *e)
{
	sp_store *st = ud;
	struct delta *d = dt_get(&st->staging, kind, key);
	if (!d)
		return SP_ETOOBIG;
	delta_add_event(d, e, raw);
	return 0;
}

/* Fold the events a crash left unfolded (above the watermark). */
static int replay(sp_store *st, sp_wtxn *tx)
{
	MDB_cursor *cur;
	MDB_val k = { EVENT_KEY_LEN, st->watermark }, v;
	sp_event *e = malloc(sizeof(*e));
	uint64_t replayed = 0;
	int rc;

	if (!e)
		return -ENOMEM;
	if ((rc = mdb_cursor_open(tx->txn, st->events, &cur))) {
		free(e);
		return rc;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == EVENT_KEY_LEN && memcmp(k.mv_data, st->watermark, EVENT_KEY_LEN) <= 0)
			continue;
		if (sp_event_decode(v.mv_data, v.mv_size, e) != 0)
			continue;
		replayed++;
		if (e->origin[0]) {
			struct now_ctx c = { tx, e->origin };
			rc = for_each_target(e, fold_now, &c);
		} else {
			rc = for_each_target(e, replay_one, st);
			/* staging -> pending one event at a time: e is reused */
			if (rc == 0 && !staging_fits(st)) {
				rc = fold_table(tx, &st->pending);
				pending_clear(st);
			}
			for (size_t i = 0; rc == 0 && i < st->staging.n; i++)
				merge_into_pending(st, &st->staging.d[i]);
			dt_clear(&st->staging);
		}
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	free(e);
	if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	if (replayed == 0)
		return 0;
	tx->have_last_event = false;
	return sp_wtxn_fold(tx);
}

int store__ingest_open(sp_store *st, MDB_txn *txn)
{
	int rc;
	if ((rc = dt_init(&st->staging, st->batch_max * 3)) || (rc = dt_init(&st->pending, PENDING_MAX)))
		return rc;
	st->arena = malloc(ARENA_MAX);
	st->intern = calloc(INTERN_SLOTS, sizeof(*st->intern));
	if (!st->arena || !st->intern)
		return -ENOMEM;
	st->arena_cap = ARENA_MAX;
	st->intern_mask = INTERN_SLOTS - 1;

	sp_wtxn *tx = &st->tx;
	tx->st = st;
	tx->txn = txn;
	tx->have_last_event = tx->must_fold = tx->folded = false;
	msgpack_sbuffer_init(&tx->sb);
	rc = store__meta_get(txn, st->meta, WATERMARK_KEY, st->watermark, EVENT_KEY_LEN);
	if (rc == SP_ENOTFOUND) {
		/* a store from before folding: everything in it was folded */
		if ((rc = last_event_key(tx)) == 0) {
			memcpy(st->watermark, tx->last_event, EVENT_KEY_LEN);
			MDB_val k = { strlen(WATERMARK_KEY), WATERMARK_KEY }, v = { EVENT_KEY_LEN, st->watermark };
			rc = mdb_put(txn, st->meta, &k, &v, 0);
		}
	} else if (rc == 0) {
		rc = replay(st, tx);
		if (rc == 0 && tx->folded)
			memcpy(st->watermark, tx->new_watermark, EVENT_KEY_LEN);
	}
	pending_clear(st);
	msgpack_sbuffer_destroy(&tx->sb);
	tx->txn = NULL;
	return rc;
}

void store__ingest_close(sp_store *st)
{
	dt_free(&st->staging);
	dt_free(&st->pending);
	free(st->arena);
	free(st->intern);
	st->arena = NULL;
	st->intern = NULL;
}
