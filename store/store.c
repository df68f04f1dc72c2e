/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "store.h"
#include "sp_error.h"
#include "sp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC "sentrypeer-store"
#define EVENT_KEY_LEN 24 /* ts (8, big-endian) + event id (16) */
#define UAS_PER_DELTA 4
#define RAWS_PER_DELTA 2

/* A batch's pending change to one aggregate. */
struct delta {
	uint8_t kind;
	char key[SP_KEY_MAX];
	const char *reporter;
	uint64_t first, last, count;
	uint32_t methods;
	uint8_t transports, n_uas, n_raws;
	const char *uas[UAS_PER_DELTA];
	const char *raws[RAWS_PER_DELTA];
};

struct sp_wtxn {
	sp_store *st;
	MDB_txn *txn;
	msgpack_sbuffer sb;
	sp_agg agg; /* scratch */
	bool have_last_event;
	uint8_t last_event[EVENT_KEY_LEN];
};

enum sweep_phase { SWEEP_EVENTS, SWEEP_IP, SWEEP_NUMBER, SWEEP_DONE };

struct sp_store {
	MDB_env *env;
	MDB_dbi meta, events, ip, number;
	bool readonly, set_retention;
	char *path;
	uint64_t retention_ns;
	/* writer scratch, sized for batch_max events */
	size_t batch_max;
	struct delta *deltas;
	uint32_t *slots;
	size_t slot_mask;
	struct sp_wtxn tx;
	bool tx_busy;
	/* sweep position */
	enum sweep_phase sweep_phase;
	char sweep_key[SP_KEY_MAX];
	bool sweep_has_key;
};

static MDB_dbi agg_dbi(const sp_store *st, enum sp_kind kind)
{
	return kind == SP_KIND_IP ? st->ip : st->number;
}

const char *sp_store_path(const sp_store *st) { return st->path; }
uint64_t sp_store_retention(const sp_store *st) { return st->retention_ns; }

static uint64_t get_be64(const void *p)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void put_be64(void *p, uint64_t v)
{
	uint8_t *b = p;
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SP_ENOTFOUND;
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return SP_ECORRUPT;
	*out = get_be64(v.mv_data);
	return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value)
{
	uint8_t b[8];
	put_be64(b, value);
	MDB_val k = { strlen(name), (void *)name }, v = { 8, b };
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* Writers create and stamp a new store; everyone checks an existing one. */
static int store_check_or_init(sp_store *st, MDB_txn *txn)
{
	unsigned flags = st->readonly ? 0 : MDB_CREATE;
	MDB_dbi main_dbi;
	MDB_stat ms;
	int rc;

	rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "meta", flags, &st->meta);
	if (rc == MDB_NOTFOUND)
		return SP_EFOREIGN;
	if (rc == MDB_INCOMPATIBLE)
		return SP_EFOREIGN;
	if (rc)
		return rc;

	MDB_val k = { strlen("magic"), "magic" }, v;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !st->readonly) {
		/* new file: the main table may only hold our own table names */
		if ((rc = mdb_stat(txn, main_dbi, &ms)))
			return rc;
		if (ms.ms_entries > 1)
			return SP_EFOREIGN;
		v.mv_data = STORE_MAGIC;
		v.mv_size = strlen(STORE_MAGIC);
		if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) ||
		    (rc = meta_put_u64(txn, st->meta, "schema", SP_STORE_SCHEMA)) ||
		    (rc = meta_put_u64(txn, st->meta, "created", sp_now_ns())))
			return rc;
	} else if (rc == MDB_NOTFOUND) {
		return SP_EFOREIGN;
	} else if (rc) {
		return rc;
	} else if (v.mv_size != strlen(STORE_MAGIC) || memcmp(v.mv_data, STORE_MAGIC, v.mv_size)) {
		return SP_EFOREIGN;
	}

	uint64_t schema;
	rc = meta_get_u64(txn, st->meta, "schema", &schema);
	if (rc)
		return rc == SP_ENOTFOUND ? SP_EFOREIGN : rc;
	if (schema > SP_STORE_SCHEMA)
		return SP_ESCHEMA;

	if ((rc = mdb_dbi_open(txn, "events", flags, &st->events)) ||
	    (rc = mdb_dbi_open(txn, "ip", flags, &st->ip)) ||
	    (rc = mdb_dbi_open(txn, "number", flags, &st->number)))
		return rc == MDB_NOTFOUND ? SP_ECORRUPT : rc;

	if (st->set_retention)
		return meta_put_u64(txn, st->meta, "retention_ns", st->retention_ns);
	uint64_t ret;
	if (meta_get_u64(txn, st->meta, "retention_ns", &ret) == 0 && ret)
		st->retention_ns = ret;
	return 0;
}

static int map_errno(int rc)
{
	if (rc == EACCES || rc == EPERM)
		return SP_EACCESS;
	if (rc > 0)
		return -rc;
	return rc;
}

static int env_open(sp_store *st, const struct sp_store_options *opt, unsigned extra)
{
	unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | extra;
	int rc;

	if (st->readonly)
		flags |= MDB_RDONLY;
	else if (opt->sync == SP_SYNC_NOMETA)
		flags |= MDB_NOMETASYNC;
	else if (opt->sync == SP_SYNC_NONE)
		flags |= MDB_NOSYNC;

	if ((rc = mdb_env_create(&st->env)))
		return rc;
	mdb_env_set_maxdbs(st->env, 8);
	mdb_env_set_maxreaders(st->env, 254);
	if (opt->map_size && !st->readonly) {
		if ((rc = mdb_env_set_mapsize(st->env, (size_t)opt->map_size)))
			goto fail;
	}
	rc = mdb_env_open(st->env, opt->path, flags, 0600);
	if (rc == 0)
		return 0;
fail:
	mdb_env_close(st->env);
	st->env = NULL;
	return rc;
}

int sp_store_open(sp_store **out, const struct sp_store_options *opt)
{
	struct stat sb;
	MDB_txn *txn = NULL;
	int rc;

	*out = NULL;
	if (stat(opt->path, &sb) != 0) {
		if (errno != ENOENT)
			return map_errno(errno);
		if (opt->readonly)
			return SP_ENOSTORE;
	} else if (S_ISDIR(sb.st_mode)) {
		return -EISDIR;
	} else if (!S_ISREG(sb.st_mode)) {
		return SP_EFOREIGN;
	}

	sp_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->readonly = opt->readonly;
	st->set_retention = opt->set_retention && !opt->readonly;
	st->retention_ns = opt->retention_ns;
	st->path = strdup(opt->path);
	st->batch_max = opt->batch_max ? opt->batch_max : 4096;
	if (!st->path) {
		rc = -ENOMEM;
		goto fail;
	}

	rc = env_open(st, opt, 0);
	if (rc == EROFS && st->readonly)
		rc = env_open(st, opt, MDB_NOLOCK); /* read-only media: nobody can be writing */
	if (rc)
		goto fail;
	rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0, &txn);
	if (rc)
		goto fail;
	rc = store_check_or_init(st, txn);
	if (rc) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail;
	*out = st;
	return 0;
fail:
	sp_store_close(st);
	return map_errno(rc);
}

void sp_store_close(sp_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	free(st->deltas);
	free(st->slots);
	free(st->path);
	free(st);
}

/* A reader whose snapshot sees a map another process grew must adopt it. */
static int read_begin(sp_store *st, MDB_txn **txn)
{
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(st->env, 0);
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
	}
	return rc;
}

int sp_store_get(sp_store *st, enum sp_kind kind, const char *key, sp_agg *out)
{
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, agg_dbi(st, kind), &k, &v);
	if (rc == 0)
		rc = sp_agg_decode(v.mv_data, v.mv_size, out);
	else if (rc == MDB_NOTFOUND)
		rc = SP_ENOTFOUND;
	mdb_txn_abort(txn);
	return rc;
}

int sp_store_foreach(sp_store *st, enum sp_kind kind, sp_agg_fn fn, void *ud, uint64_t *corrupt)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	sp_agg *a = malloc(sizeof(*a));
	int rc, stop = 0;

	if (!a)
		return -ENOMEM;
	if ((rc = read_begin(st, &txn))) {
		free(a);
		return rc;
	}
	if ((rc = mdb_cursor_open(txn, agg_dbi(st, kind), &cur)))
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (sp_agg_decode(v.mv_data, v.mv_size, a) != 0 || a->kind != kind) {
			if (corrupt)
				(*corrupt)++;
			continue;
		}
		stop = fn(a, ud);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (stop)
		rc = stop;
out:
	mdb_txn_abort(txn);
	free(a);
	return rc;
}

int sp_store_foreach_event(sp_store *st, uint64_t since_ns, sp_event_fn fn, void *ud,
			   uint64_t *corrupt)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	uint8_t start[8];
	MDB_val k = { sizeof(start), start }, v;
	sp_event *e = malloc(sizeof(*e));
	int rc, stop = 0;

	if (!e)
		return -ENOMEM;
	put_be64(start, since_ns);
	if ((rc = read_begin(st, &txn))) {
		free(e);
		return rc;
	}
	if ((rc = mdb_cursor_open(txn, st->events, &cur)))
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (sp_event_decode(v.mv_data, v.mv_size, e) != 0) {
			if (corrupt)
				(*corrupt)++;
			continue;
		}
		stop = fn(e, ud);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (stop)
		rc = stop;
out:
	mdb_txn_abort(txn);
	free(e);
	return rc;
}

int sp_store_stats(sp_store *st, struct sp_store_stats *out)
{
	MDB_txn *txn;
	MDB_stat ms;
	MDB_envinfo info;
	MDB_cursor *cur;
	MDB_val k, v;
	struct stat sb;
	uint64_t schema = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_begin(st, &txn)))
		return rc;
	if ((rc = mdb_stat(txn, st->events, &ms)))
		goto out;
	out->events = ms.ms_entries;
	if ((rc = mdb_stat(txn, st->ip, &ms)))
		goto out;
	out->ips = ms.ms_entries;
	if ((rc = mdb_stat(txn, st->number, &ms)))
		goto out;
	out->numbers = ms.ms_entries;
	if ((rc = mdb_cursor_open(txn, st->events, &cur)))
		goto out;
	if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size >= 8)
		out->oldest_event_ns = get_be64(k.mv_data);
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size >= 8)
		out->newest_event_ns = get_be64(k.mv_data);
	mdb_cursor_close(cur);
	meta_get_u64(txn, st->meta, "schema", &schema);
	out->schema = (uint32_t)schema;
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &ms);
	out->map_size = info.me_mapsize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	out->retention_ns = st->retention_ns;
	if (stat(st->path, &sb) == 0)
		out->file_bytes = (uint64_t)sb.st_blocks * 512;
out:
	mdb_txn_abort(txn);
	return rc;
}

#define COUNTER_PREFIX "counter."

int sp_store_counter_get(sp_store *st, const char *name, uint64_t *out)
{
	char k[128];
	MDB_txn *txn;
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	snprintf(k, sizeof(k), COUNTER_PREFIX "%s", name);
	rc = meta_get_u64(txn, st->meta, k, out);
	if (rc == SP_ENOTFOUND) {
		*out = 0;
		rc = 0;
	}
	mdb_txn_abort(txn);
	return rc;
}

int sp_store_counters(sp_store *st, sp_counter_fn fn, void *ud)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = { strlen(COUNTER_PREFIX), COUNTER_PREFIX }, v;
	char name[128];
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->meta, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			size_t pl = strlen(COUNTER_PREFIX);
			if (k.mv_size <= pl || memcmp(k.mv_data, COUNTER_PREFIX, pl) != 0)
				break;
			if (v.mv_size != 8 || k.mv_size - pl >= sizeof(name))
				continue;
			memcpy(name, (char *)k.mv_data + pl, k.mv_size - pl);
			name[k.mv_size - pl] = '\0';
			fn(name, get_be64(v.mv_data), ud);
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* ---- writing ------------------------------------------------------- */

int sp_wtxn_begin(sp_store *st, sp_wtxn **out)
{
	if (st->readonly)
		return SP_EACCESS;
	if (st->tx_busy)
		return -EBUSY;
	sp_wtxn *tx = &st->tx;
	int rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn);
	if (rc)
		return map_errno(rc);
	tx->st = st;
	tx->have_last_event = false;
	msgpack_sbuffer_init(&tx->sb);
	st->tx_busy = true;
	*out = tx;
	return 0;
}

static void wtxn_release(sp_wtxn *tx)
{
	msgpack_sbuffer_destroy(&tx->sb);
	tx->txn = NULL;
	tx->st->tx_busy = false;
}

int sp_wtxn_commit(sp_wtxn *tx)
{
	int rc = mdb_txn_commit(tx->txn);
	wtxn_release(tx);
	return map_errno(rc);
}

void sp_wtxn_abort(sp_wtxn *tx)
{
	mdb_txn_abort(tx->txn);
	wtxn_release(tx);
}

int sp_wtxn_counter_add(sp_wtxn *tx, const char *name, uint64_t delta)
{
	char k[128];
	uint64_t v = 0;
	snprintf(k, sizeof(k), COUNTER_PREFIX "%s", name);
	int rc = meta_get_u64(tx->txn, tx->st->meta, k, &v);
	if (rc && rc != SP_ENOTFOUND)
		return rc;
	return meta_put_u64(tx->txn, tx->st->meta, k, v + delta);
}

static int put_agg(sp_wtxn *tx, const sp_agg *a)
{
	MDB_val k = { strlen(a->key), (void *)a->key }, v;
	tx->sb.size = 0;
	sp_agg_encode(a, &tx->sb);
	v.mv_size = tx->sb.size;
	v.mv_data = tx->sb.data;
	return mdb_put(tx->txn, agg_dbi(tx->st, a->kind), &k, &v, 0);
}

/* Current aggregate for kind/key into tx->agg, or a fresh one. */
static int load_agg(sp_wtxn *tx, uint8_t kind, const char *key)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = mdb_get(tx->txn, agg_dbi(tx->st, kind), &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && sp_agg_decode(v.mv_data, v.mv_size, &tx->agg) != 0)) {
		/* a record that no longer decodes is replaced, not kept half-read */
		sp_agg_init(&tx->agg, kind, key);
		return 0;
	}
	return rc;
}

int sp_wtxn_merge(sp_wtxn *tx, const sp_agg *a)
{
	int rc = load_agg(tx, a->kind, a->key);
	if (rc)
		return rc;
	sp_agg_merge(&tx->agg, a);
	return put_agg(tx, &tx->agg);
}

static int put_event(sp_wtxn *tx, const sp_event *e)
{
	uint8_t key[EVENT_KEY_LEN];
	MDB_val k = { sizeof(key), key }, v;
	unsigned flags = 0;
	int rc;

	put_be64(key, e->ts_ns);
	memcpy(key + 8, e->id, 16);
	if (!tx->have_last_event) {
		MDB_cursor *cur;
		MDB_val lk, lv;
		if ((rc = mdb_cursor_open(tx->txn, tx->st->events, &cur)))
			return rc;
		rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
		mdb_cursor_close(cur);
		memset(tx->last_event, 0, sizeof(tx->last_event));
		if (rc == 0 && lk.mv_size == EVENT_KEY_LEN)
			memcpy(tx->last_event, lk.mv_data, EVENT_KEY_LEN);
		else if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		tx->have_last_event = true;
	}
	if (memcmp(key, tx->last_event, sizeof(key)) > 0) {
		flags = MDB_APPEND; /* the common case: time moves forward */
		memcpy(tx->last_event, key, sizeof(key));
	}
	tx->sb.size = 0;
	sp_event_encode(e, &tx->sb);
	v.mv_size = tx->sb.size;
	v.mv_data = tx->sb.data;
	return mdb_put(tx->txn, tx->st->events, &k, &v, flags);
}

static uint32_t delta_hash(uint8_t kind, const char *key, const char *reporter)
{
	uint32_t h = 2166136261u ^ kind;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (const char *p = reporter; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

static int scratch_alloc(sp_store *st)
{
	if (st->deltas)
		return 0;
	size_t max = st->batch_max * 3, slots = 1;
	while (slots < max * 2)
		slots <<= 1;
	st->deltas = malloc(max * sizeof(*st->deltas));
	st->slots = malloc(slots * sizeof(*st->slots));
	if (!st->deltas || !st->slots)
		return -ENOMEM;
	st->slot_mask = slots - 1;
	return 0;
}

static void add_ptr(const char **set, uint8_t *n, unsigned max, const char *s)
{
	if (!*s)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(set[i], s) == 0)
			return;
	if (*n < max)
		set[(*n)++] = s;
}

static void delta_add(sp_store *st, size_t *nd, uint8_t kind, const char *key, const char *raw,
		      const sp_event *e)
{
	uint32_t i = delta_hash(kind, key, e->origin) & (uint32_t)st->slot_mask;
	struct delta *d;
	for (;; i = (i + 1) & (uint32_t)st->slot_mask) {
		uint32_t s = st->slots[i];
		if (s == UINT32_MAX) {
			d = &st->deltas[*nd];
			st->slots[i] = (uint32_t)(*nd)++;
			memset(d, 0, sizeof(*d));
			d->kind = kind;
			strcpy(d->key, key);
			d->reporter = e->origin;
			d->first = e->ts_ns;
			break;
		}
		d = &st->deltas[s];
		if (d->kind == kind && strcmp(d->key, key) == 0 && strcmp(d->reporter, e->origin) == 0)
			break;
	}
	if (e->ts_ns < d->first)
		d->first = e->ts_ns;
	if (e->ts_ns > d->last)
		d->last = e->ts_ns;
	d->count++;
	d->methods |= e->method[0] ? sp_method_bit(e->method) : 0;
	d->transports |= e->transport;
	add_ptr(d->uas, &d->n_uas, UAS_PER_DELTA, e->user_agent);
	if (raw)
		add_ptr(d->raws, &d->n_raws, RAWS_PER_DELTA, raw);
}

static int delta_apply(sp_wtxn *tx, const struct delta *d)
{
	int rc = load_agg(tx, d->kind, d->key);
	if (rc)
		return rc;
	sp_agg *a = &tx->agg;
	sp_report *r = sp_agg_report(a, d->reporter, true);
	if (!r)
		return 0; /* already as many peers as we keep for one key */
	if (!r->first_ns || d->first < r->first_ns)
		r->first_ns = d->first;
	if (d->last > r->last_ns)
		r->last_ns = d->last;
	r->count += d->count;
	a->methods |= d->methods;
	a->transports |= d->transports;
	for (unsigned i = 0; i < d->n_uas; i++)
		sp_agg_add_ua(a, d->uas[i]);
	for (unsigned i = 0; i < d->n_raws; i++)
		sp_agg_add_raw(a, d->raws[i]);
	return put_agg(tx, a);
}

int sp_wtxn_add_events(sp_wtxn *tx, sp_event *const *events, size_t n)
{
	sp_store *st = tx->st;
	size_t nd = 0;
	char key[SP_KEY_MAX], rkey[SP_KEY_MAX];
	int rc;

	if (n > st->batch_max)
		return SP_ETOOBIG;
	if ((rc = scratch_alloc(st)))
		return rc;
	memset(st->slots, 0xff, (st->slot_mask + 1) * sizeof(*st->slots));

	for (size_t i = 0; i < n; i++) {
		const sp_event *e = events[i];
		if ((rc = put_event(tx, e)))
			return rc;
		if (sp_ip_normalize(e->src_ip, key, NULL) == 0)
			delta_add(st, &nd, SP_KIND_IP, key, NULL, e);
		bool have_to = sp_number_normalize(e->to_user, key) == 0;
		if (have_to)
			delta_add(st, &nd, SP_KIND_NUMBER, key, e->to_user, e);
		if (sp_number_normalize(e->ruri_user, rkey) == 0 && (!have_to || strcmp(rkey, key) != 0))
			delta_add(st, &nd, SP_KIND_NUMBER, rkey, e->ruri_user, e);
	}
	for (size_t i = 0; i < nd; i++)
		if ((rc = delta_apply(tx, &st->deltas[i])))
			return rc;
	return 0;
}

/* ---- retention ----------------------------------------------------- */

static int sweep_events(sp_store *st, MDB_txn *txn, uint64_t cutoff, size_t budget,
			struct sp_sweep_stats *acc, bool *done)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->events, &cur);
	if (rc)
		return rc;
	*done = true;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size >= 8 && get_be64(k.mv_data) >= cutoff)
			break;
		if (budget-- == 0) {
			*done = false;
			break;
		}
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		acc->events_deleted++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sweep_aggs(sp_store *st, MDB_txn *txn, MDB_dbi dbi, uint64_t now, size_t budget,
		      struct sp_sweep_stats *acc, bool *done)
{
	MDB_cursor *cur;
	MDB_val k, v;
	sp_agg *a = &st->tx.agg; /* no write txn of ours is open: the scratch is free */
	msgpack_sbuffer sb;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	msgpack_sbuffer_init(&sb);
	*done = true;
	if (st->sweep_has_key) {
		k.mv_data = st->sweep_key;
		k.mv_size = strlen(st->sweep_key);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (budget-- == 0) {
			*done = false;
			if (k.mv_size < sizeof(st->sweep_key)) {
				memcpy(st->sweep_key, k.mv_data, k.mv_size);
				st->sweep_key[k.mv_size] = '\0';
				st->sweep_has_key = true;
			}
			break;
		}
		if (sp_agg_decode(v.mv_data, v.mv_size, a) != 0)
			continue; /* left for a human: never delete what we cannot read */
		unsigned before = a->n_reports;
		if (sp_agg_expire(a, now, st->retention_ns) == 0) {
			if ((rc = mdb_cursor_del(cur, 0)))
				break;
			acc->aggs_deleted++;
		} else if (a->n_reports != before) {
			sb.size = 0;
			sp_agg_encode(a, &sb);
			MDB_val nv = { sb.size, sb.data };
			if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)))
				break;
			acc->aggs_updated++;
		}
	}
	msgpack_sbuffer_destroy(&sb);
	mdb_cursor_close(cur);
	if (*done)
		st->sweep_has_key = false;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int sp_store_sweep_step(sp_store *st, uint64_t now_ns, size_t budget, struct sp_sweep_stats *acc)
{
	MDB_txn *txn;
	bool done = true;
	int rc;

	if (st->readonly)
		return SP_EACCESS;
	if (st->tx_busy)
		return -EBUSY;
	if (st->sweep_phase == SWEEP_DONE)
		st->sweep_phase = SWEEP_EVENTS;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)))
		return map_errno(rc);
	uint64_t cutoff = now_ns > st->retention_ns ? now_ns - st->retention_ns : 0;
	switch (st->sweep_phase) {
	case SWEEP_EVENTS: rc = sweep_events(st, txn, cutoff, budget, acc, &done); break;
	case SWEEP_IP: rc = sweep_aggs(st, txn, st->ip, now_ns, budget, acc, &done); break;
	case SWEEP_NUMBER: rc = sweep_aggs(st, txn, st->number, now_ns, budget, acc, &done); break;
	case SWEEP_DONE: break;
	}
	if (rc) {
		mdb_txn_abort(txn);
		st->sweep_has_key = false;
		return map_errno(rc);
	}
	if ((rc = mdb_txn_commit(txn)))
		return map_errno(rc);
	if (done)
		st->sweep_phase++;
	return st->sweep_phase == SWEEP_DONE ? 0 : 1;
}
