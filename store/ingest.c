/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Events into aggregates.
 *
 * The events table is the log; the ip and number tables are folded from it.
 * Rewriting thousands of random aggregates at every commit would rewrite
 * most of their pages each time, so a commit stores its events and keeps
 * their aggregate changes in memory: staged per transaction, then merged
 * into "pending" (one delta per key, strings interned) once the commit
 * succeeded, so a failed transaction leaves memory as it was.
 *
 * Folding writes the pending deltas in key order through one cursor per
 * table, so each page is visited once per fold. A fold is a round: at a
 * transaction boundary the pending table is frozen (every event up to
 * round.end is in it or folded before) and a new one takes the events that
 * follow; the frozen table is then written a chunk of keys per
 * transaction, so no transaction dirties more than a chunk's pages and the
 * writer keeps committing events in between. meta "fold_round" records
 * round.end and the last key written; when the round ends,
 * "folded_through" (the watermark) becomes round.end: every event at or
 * below it is folded.
 *
 * After a crash, opening the store for writing replays the events above
 * the watermark, skipping, for events up to round.end, the keys the round
 * had already written; so nothing is lost and nothing counted twice.
 *
 * Events from peers are folded at once, in their own transaction, and
 * never replayed. So are events at or below the watermark (the clock
 * stepped back); one at or below a running round's end first finishes the
 * round in its transaction.
 */
#include "store_internal.h"
#include "sp_error.h"
#include "sp_mem.h"
#include "sp_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PENDING_MAX 262144    /* distinct aggregates a pending table holds */
#define PSLOTS (2 * PENDING_MAX)
#define PKEYS_BYTES ((size_t)PENDING_MAX * 40) /* long keys: IPv6, long numbers */
#define PSTR_BYTES (2u << 20) /* user agents and other dialled forms */
#define PSTR_SLOTS 32768      /* distinct strings: at most 3/4 of this (ids fit 16 bits) */
#define RAW_KEY 1             /* dialled as the key itself */
#define RAW_PLUS 2            /* as +key */
#define RAW_00 4              /* as 00key */
#define WATERMARK_KEY "folded_through"
#define ROUND_KEY "fold_round"

/* ---- hashing ------------------------------------------------------- */

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

static uint32_t key_hash(uint8_t kind, const char *key, size_t *len)
{
	uint32_t h = 2166136261u ^ kind;
	const char *p = key;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	if (len)
		*len = (size_t)(p - key);
	return mix(h);
}

/* ---- staging: one transaction, strings point into its events ------- */

static void dt_clear(struct delta_table *t)
{
	/* a transaction stages far fewer keys than the table has slots */
	for (size_t i = 0; i < t->n; i++)
		t->slots[t->used[i]].idx = UINT32_MAX;
	t->n = 0;
	t->str_bytes = t->str_count = 0;
	t->last_ip = NULL;
}

static int dt_init(struct delta_table *t, size_t cap)
{
	size_t slots = 1;
	while (slots < cap * 2)
		slots <<= 1;
	t->d = malloc(cap * sizeof(*t->d));
	t->slots = malloc(slots * sizeof(*t->slots));
	t->used = malloc(cap * sizeof(*t->used));
	if (!t->d || !t->slots || !t->used)
		return -ENOMEM;
	t->cap = cap;
	t->slot_mask = slots - 1;
	for (size_t i = 0; i < slots; i++)
		t->slots[i].idx = UINT32_MAX;
	t->n = 0;
	t->str_bytes = t->str_count = 0;
	t->last_ip = NULL;
	return 0;
}

void sp_store_trim(sp_store *st)
{
	struct delta_table *t = &st->staging;
	if (st->tx_busy || t->n || !t->d)
		return;
	sp_mem_discard(t->d, t->cap * sizeof(*t->d));
	sp_mem_discard(t->used, t->cap * sizeof(*t->used));
}

static void dt_free(struct delta_table *t)
{
	free(t->d);
	free(t->slots);
	free(t->used);
	memset(t, 0, sizeof(*t));
}

/* The delta for kind/key, created empty if absent; NULL when full. */
static struct delta *dt_get(struct delta_table *t, uint8_t kind, const char *key)
{
	size_t len;
	uint32_t h = key_hash(kind, key, &len), i = h & (uint32_t)t->slot_mask;
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
	if (t->n >= t->cap || len >= sizeof(t->d[0].key))
		return NULL;
	struct delta *d = &t->d[t->n];
	t->used[t->n] = i;
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

/* Adds s to the set if there is room and it is new; returns its size
 * (NUL included) when added, else 0. */
static size_t ptr_add(const char **set, uint8_t *n, unsigned max, const char *s)
{
	if (!*s || *n >= max || ptr_in(set, *n, s))
		return 0;
	set[(*n)++] = s;
	return strlen(s) + 1;
}

/* What an event brings to each of its aggregates. */
struct evinfo {
	uint64_t ts;
	uint32_t methods; /* the method's bit, 0 for a response */
	uint8_t transport;
	const char *ua;
	const char *origin; /* "" = this node */
};

static void evinfo_of(const sp_event *e, struct evinfo *i)
{
	i->ts = e->ts_ns;
	i->methods = e->method[0] ? sp_method_bit(e->method) : 0;
	i->transport = e->transport;
	i->ua = e->user_agent;
	i->origin = e->origin;
}

static size_t delta_add_event(struct delta *d, const struct evinfo *e, const char *raw)
{
	size_t bytes;
	if (e->ts < d->first)
		d->first = e->ts;
	if (e->ts > d->last)
		d->last = e->ts;
	d->count++;
	d->methods |= e->methods;
	d->transports |= e->transport;
	bytes = ptr_add(d->uas, &d->n_uas, UAS_PER_DELTA, e->ua);
	if (!raw)
		return bytes;
	/* the usual forms are bits, so pending holds no string for them */
	if (strcmp(raw, d->key) == 0)
		d->raw_std |= RAW_KEY;
	else if (raw[0] == '+' && strcmp(raw + 1, d->key) == 0)
		d->raw_std |= RAW_PLUS;
	else if (raw[0] == '0' && raw[1] == '0' && strcmp(raw + 2, d->key) == 0)
		d->raw_std |= RAW_00;
	else
		bytes += ptr_add(d->raws, &d->n_raws, RAWS_PER_DELTA, raw);
	return bytes;
}

/* An IPv4 address in the store's key form already (a.b.c.d, each 0..255
 * without leading zeros): the listeners write them so, and the parse and
 * reformat of sp_ip_normalize is the costliest step of staging an event. */
static bool canonical_ipv4(const char *s)
{
	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			v = v * 10 + (unsigned)(*s - '0');
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[-(int)digits] == '0'))
			return false;
		if (part < 3 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* An aggregate an event feeds: kind, normalised key, and (numbers) the
 * form it was dialled in. */
struct target {
	uint8_t kind;
	const char *key;
	const char *raw;
};

/* The aggregates an event feeds: source IP, To user, and the Request-URI
 * user when it is another number; keys normalised into keys[]. */
static unsigned event_targets(const sp_event *e, char keys[3][SP_KEY_MAX], struct target t[3])
{
	unsigned n = 0;
	if (canonical_ipv4(e->src_ip))
		t[n++] = (struct target){ SP_KIND_IP, e->src_ip, NULL };
	else if (sp_ip_normalize(e->src_ip, keys[0], NULL) == 0)
		t[n++] = (struct target){ SP_KIND_IP, keys[0], NULL };
	bool have_to = sp_number_normalize(e->to_user, keys[1]) == 0;
	if (have_to)
		t[n++] = (struct target){ SP_KIND_NUMBER, keys[1], e->to_user };
	if (sp_number_normalize(e->ruri_user, keys[2]) == 0 && (!have_to || strcmp(keys[2], keys[1]) != 0))
		t[n++] = (struct target){ SP_KIND_NUMBER, keys[2], e->ruri_user };
	return n;
}

static int stage_one(struct delta_table *t, const struct target *tg, const struct evinfo *e)
{
	/* a scanner sends bursts: the source is often the last event's */
	struct delta *d = t->last_ip;
	if (tg->kind != SP_KIND_IP || !d || strcmp(d->key, tg->key) != 0)
		d = dt_get(t, tg->kind, tg->key);
	if (d && tg->kind == SP_KIND_IP)
		t->last_ip = d;
	if (!d)
		return SP_ETOOBIG; /* cannot happen: staging holds 3 per event of a batch */
	size_t bytes = delta_add_event(d, e, tg->raw);
	t->str_bytes += bytes;
	t->str_count += bytes ? 2 : 0; /* at most a user agent and a form per event */
	return 0;
}

/* ---- pending tables ------------------------------------------------ */

static void *map_zeroed(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

/* Zero the first bytes of a mapping and give its pages back. */
static void map_release(void *p, size_t bytes)
{
	size_t page = 4096;
	if (p && bytes)
		madvise(p, (bytes + page - 1) / page * page, MADV_DONTNEED);
}

static int ptab_init(struct ptab *t)
{
	t->d = map_zeroed((size_t)PENDING_MAX * sizeof(*t->d));
	t->slots = map_zeroed((size_t)PSLOTS * sizeof(*t->slots));
	t->keys = map_zeroed(PKEYS_BYTES);
	t->str = map_zeroed(PSTR_BYTES);
	t->str_off = map_zeroed((size_t)PSTR_SLOTS * sizeof(*t->str_off));
	t->str_slots = map_zeroed((size_t)PSTR_SLOTS * sizeof(*t->str_slots));
	t->n = t->keys_used = t->str_used = t->str_n = 0;
	return t->d && t->slots && t->keys && t->str && t->str_off && t->str_slots ? 0 : -ENOMEM;
}

static void ptab_free(struct ptab *t)
{
	unmap(t->d, (size_t)PENDING_MAX * sizeof(*t->d));
	unmap(t->slots, (size_t)PSLOTS * sizeof(*t->slots));
	unmap(t->keys, PKEYS_BYTES);
	unmap(t->str, PSTR_BYTES);
	unmap(t->str_off, (size_t)PSTR_SLOTS * sizeof(*t->str_off));
	unmap(t->str_slots, (size_t)PSTR_SLOTS * sizeof(*t->str_slots));
	memset(t, 0, sizeof(*t));
}

static void ptab_clear(struct ptab *t)
{
	if (t->n == 0 && t->str_n == 0)
		return;
	map_release(t->d, t->n * sizeof(*t->d));
	map_release(t->slots, (size_t)PSLOTS * sizeof(*t->slots));
	map_release(t->keys, t->keys_used);
	map_release(t->str, t->str_used);
	map_release(t->str_off, (t->str_n + 1) * sizeof(*t->str_off));
	map_release(t->str_slots, (size_t)PSTR_SLOTS * sizeof(*t->str_slots));
	t->n = t->keys_used = t->str_used = t->str_n = 0;
}

static const char *pkey(const struct ptab *t, const struct pdelta *d)
{
	uint32_t off;
	if (d->key_len < PKEY_INLINE)
		return d->key;
	memcpy(&off, d->key, sizeof(off));
	return t->keys + off;
}

static const char *pstr(const struct ptab *t, uint16_t id)
{
	return t->str + t->str_off[id];
}

/* The delta for kind/key (len bytes, hash h), created if absent and there
 * is room (create); NULL otherwise. */
static struct pdelta *ptab_get(struct ptab *t, uint8_t kind, const char *key, size_t len,
			       uint32_t h, bool create)
{
	uint32_t mask = PSLOTS - 1, i = h & mask;
	for (;; i = (i + 1) & mask) {
		struct pslot *sl = &t->slots[i];
		if (sl->idx1 == 0)
			break;
		if (sl->hash != h)
			continue;
		struct pdelta *d = &t->d[sl->idx1 - 1];
		if (d->kind == kind && d->key_len == len && memcmp(pkey(t, d), key, len) == 0)
			return d;
	}
	if (!create || t->n >= PENDING_MAX || len >= SP_KEY_MAX ||
	    (len >= PKEY_INLINE && t->keys_used + len + 1 > PKEYS_BYTES))
		return NULL;
	struct pdelta *d = &t->d[t->n];
	t->slots[i].idx1 = (uint32_t)++t->n;
	t->slots[i].hash = h;
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->key_len = (uint8_t)len;
	d->first = UINT64_MAX;
	if (len < PKEY_INLINE) {
		memcpy(d->key, key, len + 1);
	} else {
		uint32_t off = (uint32_t)t->keys_used;
		memcpy(t->keys + off, key, len + 1);
		t->keys_used += len + 1;
		memcpy(d->key, &off, sizeof(off));
	}
	return d;
}

/* The id of s in the table's strings, added if absent (create); 0 when
 * absent and not added, or when there is no room. */
static uint16_t ptab_intern(struct ptab *t, const char *s, bool create)
{
	size_t n;
	uint32_t mask = PSTR_SLOTS - 1, i = key_hash(0, s, &n) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t id = t->str_slots[i];
		if (id == 0)
			break;
		if (strcmp(pstr(t, (uint16_t)id), s) == 0)
			return (uint16_t)id;
	}
	if (!create || t->str_used + n + 1 > PSTR_BYTES || t->str_n + 1 >= PSTR_SLOTS / 4 * 3)
		return 0;
	uint16_t id = (uint16_t)++t->str_n;
	memcpy(t->str + t->str_used, s, n + 1);
	t->str_off[id] = (uint32_t)t->str_used;
	t->str_used += n + 1;
	t->str_slots[i] = id;
	return id;
}

static void id_add(uint16_t *set, uint8_t *n, unsigned max, uint16_t id)
{
	if (!id || *n >= max)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (set[i] == id)
			return;
	set[(*n)++] = id;
}

/* The strings of a merge repeat (a flood's few user agents): the last
 * ones interned are tried before the table. */
struct intern_cache {
	const char *s[4];
	uint16_t id[4];
	unsigned next;
};

static uint16_t intern_cached(struct ptab *t, struct intern_cache *c, const char *s)
{
	for (unsigned i = 0; i < 4; i++)
		if (c->s[i] && strcmp(c->s[i], s) == 0)
			return c->id[i];
	uint16_t id = ptab_intern(t, s, true);
	if (id) {
		c->s[c->next] = pstr(t, id);
		c->id[c->next] = id;
		c->next = (c->next + 1) % 4;
	}
	return id;
}

static void pdelta_merge(struct ptab *t, struct pdelta *d, const struct delta *s,
			 struct intern_cache *c)
{
	if (s->first < d->first)
		d->first = s->first;
	if (s->last > d->last)
		d->last = s->last;
	d->count += s->count;
	d->methods |= s->methods;
	d->transports |= s->transports;
	d->raw_std |= s->raw_std;
	for (unsigned i = 0; i < s->n_uas && d->n_uas < UAS_PER_DELTA; i++)
		id_add(d->uas, &d->n_uas, UAS_PER_DELTA, intern_cached(t, c, s->uas[i]));
	for (unsigned i = 0; i < s->n_raws && d->n_raws < RAWS_PER_DELTA; i++)
		id_add(d->raws, &d->n_raws, RAWS_PER_DELTA, intern_cached(t, c, s->raws[i]));
}

/* Would every staged delta fit in pending? Cheap bounds first; the exact
 * answer only when they say no. */
static bool staging_fits(const struct ptab *t, const struct delta_table *s)
{
	if (t->n + s->n <= PENDING_MAX && t->str_used + s->str_bytes <= PSTR_BYTES &&
	    t->keys_used + s->n * SP_KEY_MAX <= PKEYS_BYTES &&
	    t->str_n + s->str_count < PSTR_SLOTS / 4 * 3)
		return true;
	size_t keys = 0, key_bytes = 0, bytes = 0, strings = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct delta *d = &s->d[i];
		size_t len;
		uint32_t h = key_hash(d->kind, d->key, &len);
		if (!ptab_get((struct ptab *)t, d->kind, d->key, len, h, false)) {
			keys++;
			key_bytes += len >= PKEY_INLINE ? len + 1 : 0;
		}
		for (unsigned k = 0; k < d->n_uas + d->n_raws; k++) {
			const char *str = k < d->n_uas ? d->uas[k] : d->raws[k - d->n_uas];
			if (!ptab_intern((struct ptab *)t, str, false)) {
				bytes += strlen(str) + 1;
				strings++;
			}
		}
	}
	return t->n + keys <= PENDING_MAX && t->keys_used + key_bytes <= PKEYS_BYTES &&
	       t->str_used + bytes <= PSTR_BYTES && t->str_n + strings < PSTR_SLOTS / 4 * 3;
}

/* Staged deltas into pending (after a commit; staging_fits() said yes).
 * The pending table is far larger than the caches: each lookup is a miss,
 * so the slots of the deltas a few steps ahead are fetched early. */
static void merge_staging(struct ptab *t, const struct delta_table *s)
{
	/* three stages, AHEAD deltas apart: hash and fetch the slot; fetch
	 * the delta the slot names; merge */
	enum { AHEAD = 8, RING = 2 * AHEAD };
	uint32_t hs[RING];
	size_t lens[RING];
	struct intern_cache cache = { { NULL }, { 0 }, 0 };
	for (size_t i = 0; i < s->n + 2 * AHEAD; i++) {
		if (i >= 2 * AHEAD) {
			size_t j = i - 2 * AHEAD;
			const struct delta *sd = &s->d[j];
			struct pdelta *d = ptab_get(t, sd->kind, sd->key, lens[j % RING],
						    hs[j % RING], true);
			if (d)
				pdelta_merge(t, d, sd, &cache);
		}
		if (i >= AHEAD && i - AHEAD < s->n) {
			const struct pslot *sl = &t->slots[hs[(i - AHEAD) % RING] & (PSLOTS - 1)];
			if (sl->idx1)
				__builtin_prefetch(&t->d[sl->idx1 - 1]);
		}
		if (i < s->n) {
			const struct delta *n = &s->d[i];
			hs[i % RING] = key_hash(n->kind, n->key, &lens[i % RING]);
			__builtin_prefetch(&t->slots[hs[i % RING] & (PSLOTS - 1)]);
		}
	}
}

/* ---- folding ------------------------------------------------------- */

/* One delta as the fold reads it, from staging or pending. */
struct dview {
	uint8_t kind, transports, raw_std, n_uas, n_raws;
	uint32_t methods;
	uint64_t first, last, count;
	const char *key;
	const char *uas[UAS_PER_DELTA];
	const char *raws[RAWS_PER_DELTA];
};

static void view_staged(const struct delta *d, struct dview *v)
{
	v->kind = d->kind;
	v->transports = d->transports;
	v->raw_std = d->raw_std;
	v->methods = d->methods;
	v->first = d->first;
	v->last = d->last;
	v->count = d->count;
	v->key = d->key;
	v->n_uas = d->n_uas;
	v->n_raws = d->n_raws;
	memcpy(v->uas, d->uas, sizeof(v->uas));
	memcpy(v->raws, d->raws, sizeof(v->raws));
}

static void view_pending(const struct ptab *t, const struct pdelta *d, struct dview *v)
{
	v->kind = d->kind;
	v->transports = d->transports;
	v->raw_std = d->raw_std;
	v->methods = d->methods;
	v->first = d->first;
	v->last = d->last;
	v->count = d->count;
	v->key = pkey(t, d);
	v->n_uas = d->n_uas;
	v->n_raws = d->n_raws;
	for (unsigned i = 0; i < d->n_uas; i++)
		v->uas[i] = pstr(t, d->uas[i]);
	for (unsigned i = 0; i < d->n_raws; i++)
		v->raws[i] = pstr(t, d->raws[i]);
}

static void apply_delta(sp_agg *a, const struct dview *d, const char *reporter)
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
		char form[SP_KEY_MAX + 2];
		size_t n = strlen(d->key);
		memcpy(form + 2, d->key, n + 1);
		if (d->raw_std & RAW_PLUS) {
			form[1] = '+';
			sp_agg_add_raw(a, form + 1);
		}
		if (d->raw_std & RAW_00) {
			form[0] = form[1] = '0';
			sp_agg_add_raw(a, form);
		}
		if (d->raw_std & RAW_KEY)
			sp_agg_add_raw(a, d->key);
	}
	for (unsigned i = 0; i < d->n_raws; i++)
		sp_agg_add_raw(a, d->raws[i]);
}

/* Read-modify-write of one aggregate through a cursor on its table. */
static int fold_one(sp_wtxn *tx, MDB_cursor *cur, const struct dview *d, const char *reporter)
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
	MDB_val nk = { k.mv_size, (void *)d->key }, nv = { tx->sb.size, tx->sb.data };
	rc = mdb_cursor_put(cur, &nk, &nv, exists ? MDB_CURRENT : 0);
	return rc ? rc : store__feed_touch(tx, d->kind, d->key); /* the change feed */
}

struct cursors {
	MDB_cursor *c[2]; /* ip, number */
};

static int cursors_open(sp_wtxn *tx, struct cursors *cs)
{
	int rc;
	cs->c[0] = cs->c[1] = NULL;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->ip, &cs->c[0])) == 0)
		rc = mdb_cursor_open(tx->txn, tx->st->number, &cs->c[1]);
	return rc;
}

static void cursors_close(struct cursors *cs)
{
	for (int i = 0; i < 2; i++)
		if (cs->c[i])
			mdb_cursor_close(cs->c[i]);
}

static MDB_cursor *cursor_for(struct cursors *cs, uint8_t kind)
{
	return cs->c[kind == SP_KIND_IP ? 0 : 1];
}

/* Key order: kind, then the key's bytes. Sorting compares two 64-bit
 * prefixes (kind and the first 15 bytes) and falls back to the key. */
struct sortrec {
	uint64_t a, b;
	uint32_t idx;
};

static uint64_t be_bytes(const char *s, size_t len, size_t from, size_t n, size_t *got)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		size_t at = from + i;
		v = v << 8 | (at < len ? (uint8_t)s[at] : 0);
	}
	*got = len > from ? (len - from < n ? len - from : n) : 0;
	return v;
}

static void sortrec_make(struct sortrec *r, uint8_t kind, const char *key, size_t len, uint32_t idx)
{
	size_t g;
	r->a = (uint64_t)kind << 56 | be_bytes(key, len, 0, 7, &g);
	r->b = be_bytes(key, len, 7, 8, &g);
	r->idx = idx;
}

struct sort_ctx {
	const struct ptab *pt;       /* pending deltas, or */
	const struct delta_table *dt; /* staged ones */
};

static const char *sort_key(const struct sort_ctx *c, uint32_t idx)
{
	return c->pt ? pkey(c->pt, &c->pt->d[idx]) : c->dt->d[idx].key;
}

static int rec_cmp(const struct sort_ctx *c, const struct sortrec *x, const struct sortrec *y)
{
	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	/* same kind and first 15 bytes: the rest decides */
	const char *kx = sort_key(c, x->idx), *ky = sort_key(c, y->idx);
	size_t lx = strlen(kx), ly = strlen(ky);
	if (lx <= 15 || ly <= 15)
		return lx < ly ? -1 : lx > ly;
	return strcmp(kx + 15, ky + 15);
}

static void rec_swap(struct sortrec *x, struct sortrec *y)
{
	struct sortrec t = *x;
	*x = *y;
	*y = t;
}

/* Quicksort (median of three, smaller side first) with insertion sort
 * for short runs. */
static void rec_sort(const struct sort_ctx *c, struct sortrec *r, size_t n)
{
	while (n > 16) {
		size_t m = n / 2;
		if (rec_cmp(c, &r[m], &r[0]) < 0)
			rec_swap(&r[m], &r[0]);
		if (rec_cmp(c, &r[n - 1], &r[0]) < 0)
			rec_swap(&r[n - 1], &r[0]);
		if (rec_cmp(c, &r[n - 1], &r[m]) < 0)
			rec_swap(&r[n - 1], &r[m]);
		struct sortrec pivot = r[m];
		size_t i = 0, j = n - 1;
		for (;;) {
			while (rec_cmp(c, &r[i], &pivot) < 0)
				i++;
			while (rec_cmp(c, &pivot, &r[j]) < 0)
				j--;
			if (i >= j)
				break;
			rec_swap(&r[i], &r[j]);
			i++;
			j--;
		}
		size_t left = j + 1; /* r[0..j] <= pivot <= r[j+1..n) */
		if (left < n - left) {
			rec_sort(c, r, left);
			r += left;
			n -= left;
		} else {
			rec_sort(c, r + left, n - left);
			n = left;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && rec_cmp(c, &r[j], &r[j - 1]) < 0; j--)
			rec_swap(&r[j], &r[j - 1]);
}

/* order[0..n) = the deltas' indexes in key order; order must hold n and
 * r (scratch) n records. */
static void sort_deltas_in(const struct sort_ctx *c, size_t n, struct sortrec *r, uint32_t *order)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = sort_key(c, (uint32_t)i);
		uint8_t kind = c->pt ? c->pt->d[i].kind : c->dt->d[i].kind;
		sortrec_make(&r[i], kind, k, strlen(k), (uint32_t)i);
	}
	rec_sort(c, r, n);
	for (size_t i = 0; i < n; i++)
		order[i] = r[i].idx;
}

static int sort_deltas(const struct sort_ctx *c, size_t n, uint32_t *order)
{
	size_t bytes = (n ? n : 1) * sizeof(struct sortrec);
	struct sortrec *r = map_zeroed(bytes);
	if (!r)
		return -ENOMEM;
	sort_deltas_in(c, n, r, order);
	unmap(r, bytes);
	return 0;
}

/* Write every staged delta, in key order. */
static int fold_staging(sp_wtxn *tx, const struct delta_table *t)
{
	struct sort_ctx c = { NULL, t };
	struct cursors cs;
	struct dview v;
	uint32_t *order;
	int rc;

	if (t->n == 0)
		return 0;
	if (!(order = malloc(t->n * sizeof(*order))))
		return -ENOMEM;
	if ((rc = sort_deltas(&c, t->n, order)) == 0 && (rc = cursors_open(tx, &cs)) == 0) {
		for (size_t i = 0; i < t->n && rc == 0; i++) {
			view_staged(&t->d[order[i]], &v);
			rc = fold_one(tx, cursor_for(&cs, v.kind), &v, "");
		}
	}
	cursors_close(&cs);
	free(order);
	return rc;
}

/* Write order[from..to) of a pending table (order NULL: d[from..to)). */
static int fold_pending(sp_wtxn *tx, const struct ptab *t, const uint32_t *order, size_t from,
			size_t to)
{
	struct cursors cs;
	struct dview v;
	int rc = cursors_open(tx, &cs);
	for (size_t i = from; i < to && rc == 0; i++) {
		view_pending(t, &t->d[order ? order[i] : i], &v);
		rc = fold_one(tx, cursor_for(&cs, v.kind), &v, "");
	}
	cursors_close(&cs);
	return rc;
}

/* Write a whole pending table in key order. */
static int fold_table(sp_wtxn *tx, const struct ptab *t)
{
	struct sort_ctx c = { t, NULL };
	size_t bytes = (t->n ? t->n : 1) * sizeof(uint32_t);
	uint32_t *order;
	int rc;
	if (t->n == 0)
		return 0;
	if (!(order = map_zeroed(bytes)))
		return -ENOMEM;
	if ((rc = sort_deltas(&c, t->n, order)) == 0)
		rc = fold_pending(tx, t, order, 0, t->n);
	unmap(order, bytes);
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

static int meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, const void *val, size_t len)
{
	MDB_val k = { strlen(name), (void *)name }, v = { len, (void *)val };
	return mdb_put(txn, meta, &k, &v, 0);
}

static int meta_del(MDB_txn *txn, MDB_dbi meta, const char *name)
{
	MDB_val k = { strlen(name), (void *)name };
	int rc = mdb_del(txn, meta, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool round_ready(sp_store *st, bool wait);

/* The rest of the running round, in this transaction. */
static int round_finish(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	struct fold_round *r = &st->round;
	int rc;
	if (!round_ready(st, true) || tx->round_done)
		return 0;
	if ((rc = fold_pending(tx, st->frozen, NULL, tx->round_pos, r->n)))
		return rc;
	tx->round_pos = r->n;
	tx->round_done = true;
	if ((rc = meta_del(tx->txn, st->meta, ROUND_KEY)))
		return rc;
	/* every event up to the round's end is folded; later ones may be too */
	if (memcmp(r->end, tx->new_watermark, EVENT_KEY_LEN) > 0)
		memcpy(tx->new_watermark, r->end, EVENT_KEY_LEN);
	return meta_put(tx->txn, st->meta, WATERMARK_KEY, tx->new_watermark, EVENT_KEY_LEN);
}

int sp_wtxn_fold(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	int rc;
	if ((rc = round_finish(tx)) || (rc = fold_table(tx, st->pending)) ||
	    (rc = fold_staging(tx, &st->staging)) || (rc = last_event_key(tx)))
		return store__map_errno(rc);
	/* events added after this in the transaction stay pending */
	dt_clear(&st->staging);
	/* everything in the events table is now folded */
	if (memcmp(tx->last_event, tx->new_watermark, EVENT_KEY_LEN) > 0)
		memcpy(tx->new_watermark, tx->last_event, EVENT_KEY_LEN);
	if ((rc = meta_put(tx->txn, st->meta, WATERMARK_KEY, tx->new_watermark, EVENT_KEY_LEN)) ||
	    (rc = meta_del(tx->txn, st->meta, ROUND_KEY)))
		return store__map_errno(rc);
	tx->folded = true;
	return 0;
}

/* d[i] = the old d[order[i]], in place (order ends as the identity). */
static void permute(struct pdelta *d, uint32_t *order, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (order[i] == i)
			continue;
		struct pdelta tmp = d[i];
		size_t j = i;
		for (;;) {
			size_t k = order[j];
			order[j] = (uint32_t)j;
			if (k == i) {
				d[j] = tmp;
				break;
			}
			d[j] = d[k];
			j = k;
		}
	}
}

/* Freeze the pending table: every committed event is folded or in it. Its
 * sort's scratch is allocated now, so sorting cannot fail. */
static int round_freeze(sp_store *st)
{
	struct fold_round *r = &st->round;
	struct ptab *t = st->pending;
	if (r->active || r->sorting || t->n == 0 || st->tx_busy)
		return 0;
	r->recs_bytes = t->n * sizeof(struct sortrec);
	r->order_bytes = t->n * sizeof(uint32_t);
	r->recs = map_zeroed(r->recs_bytes);
	r->order = map_zeroed(r->order_bytes);
	if (!r->recs || !r->order) {
		unmap(r->recs, r->recs_bytes);
		unmap(r->order, r->order_bytes);
		r->recs = r->order = NULL;
		return -ENOMEM;
	}
	memcpy(r->end, st->committed, EVENT_KEY_LEN);
	r->n = t->n;
	r->pos = 0;
	r->released = 0;
	r->fold_ns = 0;
	r->sorting = true;
	atomic_store(&r->sorted, false);
	st->frozen = t;
	st->pending = t == &st->tabs[0] ? &st->tabs[1] : &st->tabs[0];
	return 1;
}

/* Put the frozen table in key order. It reads and writes only the frozen
 * table and the round's scratch, so it may run on a thread of its own
 * while transactions add to the new pending table. */
static void round_sort(sp_store *st)
{
	struct fold_round *r = &st->round;
	struct ptab *t = st->frozen;
	struct sort_ctx c = { t, NULL };
	sort_deltas_in(&c, r->n, r->recs, r->order);
	/* the frozen table is only walked, in key order: its deltas move into
	 * that order, so the pages of the part written can go after each
	 * step's commit, and its hash slots go now */
	permute(t->d, r->order, r->n);
	unmap(r->recs, r->recs_bytes);
	unmap(r->order, r->order_bytes);
	r->recs = r->order = NULL;
	map_release(t->slots, (size_t)PSLOTS * sizeof(*t->slots));
	map_release(t->str_slots, (size_t)PSTR_SLOTS * sizeof(*t->str_slots));
	size_t n_ip = 0;
	while (n_ip < r->n && t->d[n_ip].kind == SP_KIND_IP)
		n_ip++;
	r->n_ip = n_ip;
}

static void *sorter_main(void *arg)
{
	sp_store *st = arg;
	sp_thread_background("sp-fold-sort");
	round_sort(st);
	atomic_store(&st->round.sorted, true);
	if (st->round.done)
		st->round.done(st->round.done_ud);
	return NULL;
}

/* The sorted round becomes the one written: at once (wait) or only when
 * the sort thread is done. Returns whether a round is active. */
static bool round_ready(sp_store *st, bool wait)
{
	struct fold_round *r = &st->round;
	if (r->sorting) {
		if (!wait && !atomic_load(&r->sorted))
			return false;
		pthread_join(r->sorter, NULL);
		r->sorting = false;
		r->active = true;
	}
	return r->active;
}

int sp_store_fold_begin(sp_store *st)
{
	int rc = round_freeze(st);
	if (rc == 1) {
		round_sort(st);
		st->round.sorting = false;
		st->round.active = true;
	}
	return rc;
}

int sp_store_fold_begin_async(sp_store *st, void (*done)(void *), void *ud)
{
	int rc = round_freeze(st);
	if (rc != 1)
		return rc;
	struct fold_round *r = &st->round;
	r->done = done;
	r->done_ud = ud;
	if (pthread_create(&r->sorter, NULL, sorter_main, st) != 0) {
		/* no thread: sort here */
		round_sort(st);
		r->sorting = false;
		r->active = true;
		if (done)
			done(ud);
	}
	return 1;
}

bool sp_store_fold_ready(const sp_store *st)
{
	return st->round.active || (st->round.sorting && atomic_load(&st->round.sorted));
}

void sp_store_fold_wait(sp_store *st)
{
	round_ready(st, true);
}

bool sp_store_folding(const sp_store *st)
{
	return st->round.active || st->round.sorting;
}

/* About how many keys of the round, from pos on, dirty at most pages leaf
 * pages: keys that share a page cost one. A sorted run of k keys over a
 * table of L leaves with the round's n keys of that kind touches about
 * k * L / n pages, and new keys fill pages at no more than about 16 a page. */
static size_t keys_for_pages(sp_wtxn *tx, size_t pos, size_t pages)
{
	sp_store *st = tx->st;
	const struct fold_round *r = &st->round;
	bool ip = pos < r->n_ip;
	size_t n = ip ? r->n_ip : r->n - r->n_ip;
	MDB_stat ms;
	if (mdb_stat(tx->txn, ip ? st->ip : st->number, &ms) != 0)
		return pages;
	size_t leaves = ms.ms_leaf_pages ? ms.ms_leaf_pages : 1;
	size_t per_page = n / leaves;
	per_page = per_page < 1 ? 1 : per_page > 16 ? 16 : per_page;
	return pages * per_page;
}

int sp_wtxn_fold_step(sp_wtxn *tx, size_t max_pages)
{
	sp_store *st = tx->st;
	struct fold_round *r = &st->round;
	int rc;
	/* a round still being sorted: nothing this time */
	if (!round_ready(st, false) || tx->round_done || tx->folded)
		return 0;
	size_t max_keys = keys_for_pages(tx, tx->round_pos, max_pages);
	size_t to = r->n - tx->round_pos > max_keys ? tx->round_pos + max_keys : r->n;
	if (to == r->n)
		return store__map_errno(round_finish(tx));
	if ((rc = fold_pending(tx, st->frozen, NULL, tx->round_pos, to)))
		return store__map_errno(rc);
	tx->round_pos = to;
	/* where a crash would leave it: the round's end and the last key written */
	const struct pdelta *d = &st->frozen->d[to - 1];
	uint8_t buf[EVENT_KEY_LEN + 1 + SP_KEY_MAX];
	memcpy(buf, r->end, EVENT_KEY_LEN);
	buf[EVENT_KEY_LEN] = d->kind;
	memcpy(buf + EVENT_KEY_LEN + 1, pkey(st->frozen, d), d->key_len);
	rc = meta_put(tx->txn, st->meta, ROUND_KEY, buf, EVENT_KEY_LEN + 1 + d->key_len);
	return store__map_errno(rc);
}

size_t sp_store_pending(const sp_store *st)
{
	return st->pending->n + (sp_store_folding(st) ? st->round.n - st->round.pos : 0);
}

bool sp_store_pending_tight(const sp_store *st, size_t events)
{
	/* an event adds at most 3 keys; and a little room for strings */
	size_t need = 3 * events * 256 / PENDING_MAX + 2;
	return sp_store_pending_load(st) + need > 256;
}

/* How full the pending table is, in 1/256ths of its tightest limit. */
unsigned sp_store_pending_load(const sp_store *st)
{
	const struct ptab *t = st->pending;
	size_t l[] = {
		t->n * 256 / PENDING_MAX,
		t->str_used * 256 / PSTR_BYTES,
		t->str_n * 256 / (PSTR_SLOTS / 4 * 3),
		t->keys_used * 256 / PKEYS_BYTES,
	};
	size_t m = 0;
	for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++)
		m = l[i] > m ? l[i] : m;
	return m > 256 ? 256 : (unsigned)m;
}

bool sp_store_fold_due(const sp_store *st)
{
	return sp_store_pending_load(st) >= 192;
}

/* ---- adding events ------------------------------------------------- */

/* Store one encoded event under key. */
static int put_record(sp_wtxn *tx, const uint8_t key[EVENT_KEY_LEN], const void *rec, size_t len)
{
	MDB_val k = { EVENT_KEY_LEN, (void *)key }, v = { len, (void *)rec };
	unsigned flags = 0;
	int rc;
	if ((rc = last_event_key(tx)))
		return rc;
	if (memcmp(key, tx->last_event, EVENT_KEY_LEN) > 0) {
		flags = MDB_APPEND; /* the common case: time moves forward */
		memcpy(tx->last_event, key, EVENT_KEY_LEN);
	}
	return mdb_put(tx->txn, tx->st->events, &k, &v, flags);
}

static void event_key(uint64_t ts, const uint8_t id[16], uint8_t key[EVENT_KEY_LEN])
{
	store__put_be64(key, ts);
	memcpy(key + 8, id, 16);
}

/* Fold one event's change to one aggregate at once (peer events, late
 * events). */
static int fold_now(sp_wtxn *tx, const struct target *tg, const struct evinfo *e,
		    const char *reporter)
{
	struct delta d;
	struct dview v;
	MDB_cursor *cur;
	memset(&d, 0, sizeof(d));
	d.kind = tg->kind;
	snprintf(d.key, sizeof(d.key), "%s", tg->key);
	d.first = UINT64_MAX;
	delta_add_event(&d, e, tg->raw);
	view_staged(&d, &v);
	int rc = mdb_cursor_open(tx->txn, store__agg_dbi(tx->st, tg->kind), &cur);
	if (rc)
		return rc;
	rc = fold_one(tx, cur, &v, reporter);
	mdb_cursor_close(cur);
	return rc;
}

/* The aggregate side of a stored event: staged, or folded at once. */
static int add_targets(sp_wtxn *tx, const uint8_t key[EVENT_KEY_LEN], const struct evinfo *e,
		       const struct target *t, unsigned n)
{
	sp_store *st = tx->st;
	int rc = 0;
	if (e->origin[0]) {
		for (unsigned i = 0; i < n && rc == 0; i++)
			rc = fold_now(tx, &t[i], e, e->origin);
	} else if (memcmp(key, tx->new_watermark, EVENT_KEY_LEN) <= 0 ||
		   (sp_store_folding(st) && memcmp(key, st->round.end, EVENT_KEY_LEN) <= 0)) {
		/* replay would skip it: finish the round if it covers the
		 * event's time, then fold it now */
		rc = round_finish(tx);
		for (unsigned i = 0; i < n && rc == 0; i++)
			rc = fold_now(tx, &t[i], e, "");
	} else {
		for (unsigned i = 0; i < n && rc == 0; i++)
			rc = stage_one(&st->staging, &t[i], e);
	}
	return rc;
}

int sp_wtxn_add_events(sp_wtxn *tx, sp_event *const *events, size_t n)
{
	sp_store *st = tx->st;
	uint8_t key[EVENT_KEY_LEN];
	char keys[3][SP_KEY_MAX];
	struct target t[3];
	struct evinfo info;
	int rc;

	if (n > st->batch_max)
		return SP_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		const sp_event *e = events[i];
		event_key(e->ts_ns, e->id, key);
		tx->sb.size = 0;
		sp_event_encode(e, &tx->sb);
		if ((rc = put_record(tx, key, tx->sb.data, tx->sb.size)))
			return store__map_errno(rc);
		evinfo_of(e, &info);
		if ((rc = add_targets(tx, key, &info, t, event_targets(e, keys, t))))
			return store__map_errno(rc);
	}
	return 0;
}

/* ---- events prepared by their producer ----------------------------- */

/* One allocation: this header, then the strings (targets' keys and
 * forms, user agent, origin; NUL-terminated), then the record. */
struct ptarget {
	uint8_t kind;
	uint16_t key, raw; /* offsets in data; raw 0: none */
};

struct sp_prepared {
	uint32_t size, rec_len, rec_off;
	uint32_t methods;
	uint64_t ts;
	uint8_t id[16];
	uint8_t transport, n_targets;
	uint16_t ua, origin; /* offsets in data */
	struct ptarget t[3];
	char data[];
};

static uint16_t put_str(char *data, size_t *off, const char *s)
{
	size_t n = strlen(s) + 1, at = *off;
	memcpy(data + at, s, n);
	*off += n;
	return (uint16_t)at;
}

/* Each producer thread encodes into its own buffer, grown to its largest
 * record and kept; the key frees it when the thread ends. */
static pthread_key_t prep_key;
static pthread_once_t prep_once = PTHREAD_ONCE_INIT;
static _Thread_local msgpack_sbuffer *t_prep_sb;

static void prep_sb_free(void *p)
{
	msgpack_sbuffer_free(p);
}

static void prep_key_init(void)
{
	pthread_key_create(&prep_key, prep_sb_free);
}

static msgpack_sbuffer *prep_sb(void)
{
	if (!t_prep_sb) {
		pthread_once(&prep_once, prep_key_init);
		if (!(t_prep_sb = msgpack_sbuffer_new()))
			return NULL;
		pthread_setspecific(prep_key, t_prep_sb);
	}
	return t_prep_sb;
}

sp_prepared *sp_event_prepare(const sp_event *e)
{
	msgpack_sbuffer *sbp = prep_sb();
	char keys[3][SP_KEY_MAX];
	struct target t[3];
	unsigned n = event_targets(e, keys, t);
	size_t strings = 1 + strlen(e->user_agent) + 1 + strlen(e->origin) + 1;
	for (unsigned i = 0; i < n; i++)
		strings += strlen(t[i].key) + 1 + (t[i].raw ? strlen(t[i].raw) + 1 : 0);
	if (!sbp)
		return NULL;
	sbp->size = 0;
	sp_event_encode(e, sbp);
	if (!sbp->data)
		return NULL;
	size_t rec_off = (strings + 7) & ~(size_t)7, size = sizeof(sp_prepared) + rec_off + sbp->size;
	sp_prepared *p = malloc(size);
	if (!p)
		return NULL;
	size_t off = 1;
	p->data[0] = '\0'; /* offset 0: the empty string */
	p->size = (uint32_t)size;
	p->ts = e->ts_ns;
	memcpy(p->id, e->id, 16);
	p->methods = e->method[0] ? sp_method_bit(e->method) : 0;
	p->transport = e->transport;
	p->n_targets = (uint8_t)n;
	p->ua = put_str(p->data, &off, e->user_agent);
	p->origin = put_str(p->data, &off, e->origin);
	for (unsigned i = 0; i < n; i++) {
		p->t[i].kind = t[i].kind;
		p->t[i].key = put_str(p->data, &off, t[i].key);
		p->t[i].raw = t[i].raw ? put_str(p->data, &off, t[i].raw) : 0;
	}
	p->rec_off = (uint32_t)rec_off;
	p->rec_len = (uint32_t)sbp->size;
	memcpy(p->data + rec_off, sbp->data, sbp->size);
	return p;
}

size_t sp_prepared_size(const sp_prepared *p)
{
	return p->size;
}

unsigned sp_prepared_keys(const sp_prepared *p, uint8_t kind[3], const char *key[3])
{
	for (unsigned i = 0; i < p->n_targets; i++) {
		kind[i] = p->t[i].kind;
		key[i] = p->data + p->t[i].key;
	}
	return p->n_targets;
}

bool sp_prepared_local(const sp_prepared *p)
{
	return p->data[p->origin] == '\0';
}

uint64_t sp_prepared_time(const sp_prepared *p)
{
	return p->ts;
}

void sp_prepared_set_time(sp_prepared *p, uint64_t ts)
{
	/* the record says the time too, as a fixed-size uint64 */
	p->ts = ts;
	store__put_be64(p->data + p->rec_off + SP_EVENT_TS_OFFSET, ts);
}

int sp_prepared_event(const sp_prepared *p, sp_event *e)
{
	return sp_event_decode(p->data + p->rec_off, p->rec_len, e);
}

int sp_wtxn_add_prepared(sp_wtxn *tx, sp_prepared *const *ps, size_t n)
{
	uint8_t key[EVENT_KEY_LEN];
	struct target t[3];
	struct evinfo info;
	int rc;

	if (n > tx->st->batch_max)
		return SP_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		const sp_prepared *p = ps[i];
		event_key(p->ts, p->id, key);
		if ((rc = put_record(tx, key, p->data + p->rec_off, p->rec_len)))
			return store__map_errno(rc);
		info = (struct evinfo){ p->ts, p->methods, p->transport, p->data + p->ua,
					p->data + p->origin };
		for (unsigned k = 0; k < p->n_targets; k++)
			t[k] = (struct target){ p->t[k].kind, p->data + p->t[k].key,
						p->t[k].raw ? p->data + p->t[k].raw : NULL };
		if ((rc = add_targets(tx, key, &info, t, p->n_targets)))
			return store__map_errno(rc);
	}
	return 0;
}

/* ---- commit hooks, open and close ---------------------------------- */

void store__ingest_begin(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	tx->have_last_event = tx->folded = tx->round_done = false;
	tx->round_pos = st->round.pos;
	memcpy(tx->new_watermark, st->watermark, EVENT_KEY_LEN);
	dt_clear(&st->staging);
}

int store__ingest_before_commit(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	if (!tx->folded && st->staging.n && !staging_fits(st->pending, &st->staging)) {
		st->whole_folds++;
		return sp_wtxn_fold(tx); /* no room to keep it in memory */
	}
	return 0;
}

uint64_t sp_store_whole_folds(const sp_store *st) { return st->whole_folds; }

static void round_end(sp_store *st)
{
	struct fold_round *r = &st->round;
	r->active = false;
	r->n = r->pos = 0;
	if (st->frozen) {
		ptab_clear(st->frozen);
		st->frozen = NULL;
	}
}

void store__ingest_after_commit(sp_wtxn *tx, int rc)
{
	sp_store *st = tx->st;
	if (rc == 0) {
		if (tx->have_last_event &&
		    (!st->have_committed || memcmp(tx->last_event, st->committed, EVENT_KEY_LEN) > 0)) {
			memcpy(st->committed, tx->last_event, EVENT_KEY_LEN);
			st->have_committed = true;
		}
		memcpy(st->watermark, tx->new_watermark, EVENT_KEY_LEN);
		if (tx->folded) {
			ptab_clear(st->pending);
			round_end(st);
		} else {
			st->round.pos = tx->round_pos;
			if (tx->round_done) {
				round_end(st);
			} else if (st->round.active) {
				/* the frozen deltas written so far: their pages go */
				struct fold_round *r = &st->round;
				size_t done = r->pos * sizeof(struct pdelta) / 4096 * 4096;
				if (done > r->released) {
					map_release((char *)st->frozen->d + r->released, done - r->released);
					r->released = done;
				}
			}
		}
		merge_staging(st->pending, &st->staging);
	}
	/* on failure the batch is gone, pending and the round are as they were */
	if (st->staging.n)
		dt_clear(&st->staging);
}

/* Replay: the events a crash left unfolded. */
struct replay_ctx {
	sp_store *st;
	bool have_round;
	uint8_t end[EVENT_KEY_LEN]; /* the crashed round's end, */
	uint8_t kind;               /* and the last key it wrote */
	char key[SP_KEY_MAX];
	const uint8_t *event_key;
};

static int cmp_kind_key(uint8_t k1, const char *s1, uint8_t k2, const char *s2)
{
	if (k1 != k2)
		return k1 < k2 ? -1 : 1;
	return strcmp(s1, s2);
}

static int replay_one(struct replay_ctx *c, const struct target *tg, const struct evinfo *e)
{
	/* written by the round before the crash */
	if (c->have_round && memcmp(c->event_key, c->end, EVENT_KEY_LEN) <= 0 &&
	    cmp_kind_key(tg->kind, tg->key, c->kind, c->key) <= 0)
		return 0;
	struct delta *d = dt_get(&c->st->staging, tg->kind, tg->key);
	if (!d)
		return SP_ETOOBIG;
	size_t bytes = delta_add_event(d, e, tg->raw);
	c->st->staging.str_bytes += bytes;
	c->st->staging.str_count += bytes ? 2 : 0;
	return 0;
}

/* Fold the events a crash left unfolded (above the watermark). */
static int replay(sp_store *st, sp_wtxn *tx)
{
	struct replay_ctx c = { .st = st };
	MDB_cursor *cur;
	MDB_val k = { EVENT_KEY_LEN, st->watermark }, v;
	uint8_t rbuf[EVENT_KEY_LEN + 1 + SP_KEY_MAX];
	sp_event *e = malloc(sizeof(*e));
	uint64_t replayed = 0;
	int rc;

	if (!e)
		return -ENOMEM;
	MDB_val rk = { strlen(ROUND_KEY), ROUND_KEY }, rv;
	if ((rc = mdb_get(tx->txn, st->meta, &rk, &rv)) == 0 && rv.mv_size > EVENT_KEY_LEN + 1 &&
	    rv.mv_size < sizeof(rbuf)) {
		memcpy(rbuf, rv.mv_data, rv.mv_size);
		memcpy(c.end, rbuf, EVENT_KEY_LEN);
		c.kind = rbuf[EVENT_KEY_LEN];
		memcpy(c.key, rbuf + EVENT_KEY_LEN + 1, rv.mv_size - EVENT_KEY_LEN - 1);
		c.key[rv.mv_size - EVENT_KEY_LEN - 1] = '\0';
		c.have_round = true;
	} else if (rc && rc != MDB_NOTFOUND) {
		free(e);
		return rc;
	}
	if ((rc = mdb_cursor_open(tx->txn, st->events, &cur))) {
		free(e);
		return rc;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != EVENT_KEY_LEN || memcmp(k.mv_data, st->watermark, EVENT_KEY_LEN) <= 0)
			continue;
		int drc = sp_event_decode(v.mv_data, v.mv_size, e);
		if (drc == -ENOMEM) { /* not the record's fault: its counts must not be lost */
			rc = drc;
			break;
		}
		if (drc != 0)
			continue; /* a corrupt record: it counts for nothing */
		replayed++;
		/* peer events were folded in the transaction that stored them */
		if (e->origin[0])
			continue;
		c.event_key = k.mv_data;
		dt_clear(&st->staging);
		char keys[3][SP_KEY_MAX];
		struct target t[3];
		struct evinfo info;
		unsigned nt = event_targets(e, keys, t);
		evinfo_of(e, &info);
		for (unsigned i = 0; i < nt && rc == 0; i++)
			rc = replay_one(&c, &t[i], &info);
		/* staging -> pending one event at a time: e is reused */
		if (rc == 0 && !staging_fits(st->pending, &st->staging)) {
			rc = fold_table(tx, st->pending);
			ptab_clear(st->pending);
		}
		if (rc == 0)
			merge_staging(st->pending, &st->staging);
		dt_clear(&st->staging);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	free(e);
	if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	if (replayed == 0 && !c.have_round)
		return 0;
	tx->have_last_event = false;
	return sp_wtxn_fold(tx);
}

int store__ingest_open(sp_store *st, MDB_txn *txn)
{
	int rc;
	if ((rc = dt_init(&st->staging, st->batch_max * 3)) || (rc = ptab_init(&st->tabs[0])) ||
	    (rc = ptab_init(&st->tabs[1])))
		return rc;
	st->pending = &st->tabs[0];
	st->frozen = NULL;
	memset(&st->round, 0, sizeof(st->round));

	sp_wtxn *tx = &st->tx;
	tx->st = st;
	tx->txn = txn;
	msgpack_sbuffer_init(&tx->sb);
	rc = store__meta_get(txn, st->meta, WATERMARK_KEY, st->watermark, EVENT_KEY_LEN);
	store__ingest_begin(tx);
	if (rc == SP_ENOTFOUND) {
		/* a store from before folding: everything in it was folded */
		if ((rc = last_event_key(tx)) == 0) {
			memcpy(st->watermark, tx->last_event, EVENT_KEY_LEN);
			rc = meta_put(txn, st->meta, WATERMARK_KEY, st->watermark, EVENT_KEY_LEN);
		}
	} else if (rc == 0) {
		rc = replay(st, tx);
		if (rc == 0 && tx->folded)
			memcpy(st->watermark, tx->new_watermark, EVENT_KEY_LEN);
	}
	if (rc == 0 && (rc = last_event_key(tx)) == 0) {
		memcpy(st->committed, tx->last_event, EVENT_KEY_LEN);
		st->have_committed = true;
	}
	ptab_clear(st->pending);
	dt_clear(&st->staging);
	msgpack_sbuffer_destroy(&tx->sb);
	tx->txn = NULL;
	return rc;
}

void store__ingest_close(sp_store *st)
{
	round_ready(st, true); /* a sort thread must be done with the tables */
	memset(&st->round, 0, sizeof(st->round));
	dt_free(&st->staging);
	ptab_free(&st->tabs[0]);
	ptab_free(&st->tabs[1]);
	st->pending = st->frozen = NULL;
}
