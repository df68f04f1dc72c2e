/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The DHT runner and everything that touches it. See dht.h for the shape;
 * docs/dht.md for the design and its figures.
 *
 * Threads: OpenDHT's runner thread calls our callbacks (values, done,
 * listen); the publisher thread ticks once a second; lookups block their
 * caller's thread. d->lock guards what they share; counters are atomics.
 */
#include "dht.h"

#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "value.h"
#include "sp_thread.h"

#include <errno.h>
#include <netdb.h>
#include <opendht/opendht_c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYSET_MAX 4096          /* keys a set holds before it overflows */
#define INTAKE_MAX 8192          /* peer records waiting for the writer */
#define SEEN_SLOTS 8192          /* recent value ids, to drop repeats */
#define PEER_SLOTS 1024          /* reporters tracked for rate limits */
#define PEER_RATE 20.0           /* values per second per reporter */
#define PEER_BURST 400.0
#define TICK_NS (SP_NS_PER_SEC)
#define KEEPALIVE_NS (570 * SP_NS_PER_SEC) /* inside OpenDHT's 10 minutes */
#define RETRY_NS (30 * SP_NS_PER_SEC)
#define PROBE_NS (5 * SP_NS_PER_SEC)
#define PING_NS (120 * SP_NS_PER_SEC)
#define CONTACT_FRESH_NS (300 * SP_NS_PER_SEC)
#define TICK_RECORDS_MAX 1024    /* records published per tick at most */
#define KEEPALIVE_MAX 65536      /* records per keepalive round at most */
#define BATCH_CAP 2048           /* records gathered before they go out as batches */
#define FOLD_WAIT_TICKS 30       /* a noted key not yet in the store: retried this long */
#define LOOKUP_GRACE_NS (100 * 1000 * 1000) /* after the first value, wait this for more */
#define BACKFILL_INFLIGHT 2
/* Estimated bytes sent for one put of a value of s bytes: the value to the
 * 8 storing nodes, plus the search that finds them (docs/dht.md has the
 * measured figures this was checked against). */
#define PUT_COST(s) (8 * ((uint64_t)(s) + 100) + 2000)

/* ---- small sets ------------------------------------------------------ */

struct kentry {
	uint8_t kind; /* 0: empty */
	uint8_t tries; /* ticks the key waited for the writer to fold it */
	char key[SP_KEY_MAX];
};

struct keyset {
	struct kentry *e;
	size_t cap, n; /* cap: a power of two, at least 2 * KEYSET_MAX */
	bool overflow;
};

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int keyset_init(struct keyset *s)
{
	s->cap = 2 * KEYSET_MAX;
	s->n = 0;
	s->overflow = false;
	s->e = calloc(s->cap, sizeof(*s->e));
	return s->e ? 0 : -ENOMEM;
}

static struct kentry *keyset_slot(const struct keyset *s, uint8_t kind, const char *key)
{
	size_t i = (size_t)hash_str(0xcbf29ce484222325ull ^ kind, key) & (s->cap - 1);
	while (s->e[i].kind && (s->e[i].kind != kind || strcmp(s->e[i].key, key) != 0))
		i = (i + 1) & (s->cap - 1);
	return &s->e[i];
}

static bool keyset_has(const struct keyset *s, uint8_t kind, const char *key)
{
	return s->n && keyset_slot(s, kind, key)->kind != 0;
}

/* false when the set is full (and then marks it overflowed). */
static bool keyset_add_tries(struct keyset *s, uint8_t kind, const char *key, uint8_t tries)
{
	struct kentry *e = keyset_slot(s, kind, key);
	if (e->kind) {
		if (tries < e->tries)
			e->tries = tries; /* noted again: a fresh wait */
		return true;
	}
	if (s->n >= KEYSET_MAX) {
		s->overflow = true;
		return false;
	}
	e->kind = kind;
	e->tries = tries;
	snprintf(e->key, sizeof(e->key), "%s", key);
	s->n++;
	return true;
}

static bool keyset_add(struct keyset *s, uint8_t kind, const char *key)
{
	return keyset_add_tries(s, kind, key, 0);
}

static void keyset_clear(struct keyset *s)
{
	if (s->n)
		memset(s->e, 0, s->cap * sizeof(*s->e));
	s->n = 0;
	s->overflow = false;
}

/* ---- state ----------------------------------------------------------- */

struct intake {
	struct sp_dht_record r;
	char reporter[SP_KEYID_LEN];
	uint8_t n_uas;
	char (*uas)[SP_UA_MAX];
};

struct peer {
	uint8_t id[SP_PUBKEY_LEN];
	bool used;
	double tokens;
	uint64_t at_ns;
};

/* An operation the runner holds our context for (a get): listed so that a
 * context whose done callback never comes (the runner deleted first) is
 * still freed at stop. */
struct op {
	struct op *prev, *next;
	void (*destroy)(struct op *);
};

struct listen_ctx {
	struct op op; /* back-fill gets only */
	sp_dht *d;
	uint64_t hour;
	dht_infohash hash;
	dht_op_token *token;
};

struct sp_dht {
	struct sp_dht_options opt;
	dht_runner *runner;
	uint16_t port;
	uint8_t (*allow)[SP_PUBKEY_LEN], (*deny)[SP_PUBKEY_LEN];
	char (*own)[SP_KEY_MAX];
	size_t n_own;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	pthread_t thread;
	bool thread_started;

	/* publishing (lock) */
	struct keyset dirty;
	char last_src[SP_KEY_MAX], last_to[SP_KEY_MAX]; /* lock: the last keys noted */
	/* publisher thread only */
	struct keyset pub_cur, pub_prev, tick;
	uint64_t interval_start_ns, next_keepalive_ns, budget_at_ns;
	double budget;
	bool keepalive_now;
	struct sp_dht_record *batch;
	size_t n_batch;
	sp_agg *scratch;

	/* receiving */
	struct op ops;                 /* lock: gets in flight (a list head) */
	struct listen_ctx *listens[2]; /* publisher thread */
	uint64_t backfill_next, backfill_last;
	_Atomic int backfill_inflight;
	struct intake *inq; /* lock */
	size_t inq_head, inq_len;
	uint64_t seen[SEEN_SLOTS];      /* runner thread only */
	struct peer peers[PEER_SLOTS];  /* runner thread only */
	struct sp_dht_value *val;       /* runner thread only */

	/* status */
	_Atomic uint64_t last_contact_mono, last_contact_wall;
	bool was_connected, told_alone; /* publisher thread: for the log */
	uint64_t started_ns;
	uint64_t next_retry_ns, next_ping_ns, next_probe_ns;
	struct {
		_Atomic uint64_t puts, puts_ok, puts_failed, put_bytes, gets, gets_ok;
		_Atomic uint64_t received, accepted, duplicate, own, records, dropped;
		_Atomic uint64_t rejected[SP_REJ_N];
		_Atomic uint64_t peers, pub_records, pub_batches, deferred, keepalives;
		_Atomic uint64_t backfill_done, backfill_total;
	} c;
};

static const char *const reject_names[SP_REJ_N] = {
	"malformed", "oversized", "version", "signature", "wrong_key", "expired", "denied",
	"rate_limited",
};

const char *sp_dht_reject_name(enum sp_dht_reject r) { return reject_names[r]; }

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void contact(sp_dht *d)
{
	atomic_store(&d->last_contact_mono, sp_mono_ns());
	atomic_store(&d->last_contact_wall, sp_now_ns());
}

static void op_link(sp_dht *d, struct op *o, void (*destroy)(struct op *))
{
	o->destroy = destroy;
	pthread_mutex_lock(&d->lock);
	o->next = d->ops.next;
	o->prev = &d->ops;
	d->ops.next->prev = o;
	d->ops.next = o;
	pthread_mutex_unlock(&d->lock);
}

static void op_unlink(sp_dht *d, struct op *o)
{
	pthread_mutex_lock(&d->lock);
	o->prev->next = o->next;
	o->next->prev = o->prev;
	pthread_mutex_unlock(&d->lock);
}

static int d_stopping_check(sp_dht *d)
{
	pthread_mutex_lock(&d->lock);
	bool s = d->stopping;
	pthread_mutex_unlock(&d->lock);
	return s;
}

static bool connected(sp_dht *d)
{
	uint64_t t = atomic_load(&d->last_contact_mono);
	return t && sp_mono_ns() - t < CONTACT_FRESH_NS;
}

/* ---- receiving ------------------------------------------------------- */

static bool listed(uint8_t (*set)[SP_PUBKEY_LEN], size_t n, const uint8_t *id)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(set[i], id, SP_PUBKEY_LEN) == 0)
			return true;
	return false;
}

/* Token bucket per reporter; a full table recycles the slot. */
static bool peer_allow(sp_dht *d, const uint8_t *id)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ id[i]) * 0x100000001b3ull;
	struct peer *p = &d->peers[h % PEER_SLOTS];
	uint64_t now = sp_mono_ns();
	if (!p->used || memcmp(p->id, id, SP_PUBKEY_LEN) != 0) {
		if (!p->used)
			INC(d->c.peers);
		p->used = true;
		memcpy(p->id, id, SP_PUBKEY_LEN);
		p->tokens = PEER_BURST;
		p->at_ns = now;
	}
	p->tokens += (double)(now - p->at_ns) / 1e9 * PEER_RATE;
	if (p->tokens > PEER_BURST)
		p->tokens = PEER_BURST;
	p->at_ns = now;
	if (p->tokens < 1.0)
		return false;
	p->tokens -= 1.0;
	return true;
}

static void intake_push(sp_dht *d, const struct sp_dht_value *v, size_t i)
{
	bool wake = false;
	pthread_mutex_lock(&d->lock);
	if (d->inq_len >= INTAKE_MAX || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		INC(d->c.dropped);
		return;
	}
	struct intake *q = &d->inq[(d->inq_head + d->inq_len) % INTAKE_MAX];
	q->r = v->rec[i];
	memcpy(q->reporter, v->reporter_id, SP_KEYID_LEN);
	q->n_uas = 0;
	q->uas = NULL;
	if (v->type == SP_DHT_RECORD && v->n_uas && (q->uas = malloc(v->n_uas * sizeof(*q->uas)))) {
		memcpy(q->uas, v->uas, v->n_uas * sizeof(*q->uas));
		q->n_uas = v->n_uas;
	}
	wake = d->inq_len++ == 0;
	pthread_mutex_unlock(&d->lock);
	INC(d->c.records);
	if (wake && d->opt.wake)
		d->opt.wake(d->opt.ud);
}

static enum sp_dht_reject reject_of(int rc)
{
	switch (rc) {
	case SP_ETOOBIG: return SP_REJ_OVERSIZED;
	case SP_ESCHEMA: return SP_REJ_VERSION;
	case SP_EBADSIG: return SP_REJ_SIGNATURE;
	case SP_EKEYMISMATCH: return SP_REJ_WRONG_KEY;
	case SP_EEXPIRED: return SP_REJ_EXPIRED;
	default: return SP_REJ_MALFORMED;
	}
}

/* Runner thread: check one value. Returns the decoded value (in d->val)
 * when it is accepted, NULL otherwise; every outcome is counted. */
static const struct sp_dht_value *accept_value(sp_dht *d, const dht_value *value,
					       const struct sp_dht_expect *want, bool dedupe)
{
	dht_data_view data = dht_value_get_data(value);
	uint64_t id = dht_value_get_id(value);
	INC(d->c.received);
	contact(d);
	if (dedupe) {
		uint64_t *slot = &d->seen[(id ^ want->hour) % SEEN_SLOTS];
		if (id && *slot == id) {
			INC(d->c.duplicate);
			return NULL;
		}
		*slot = id;
	}
	size_t dropped = 0;
	int rc = sp_dht_decode(data.data, data.size, want, sp_now_ns() / SP_NS_PER_SEC, d->val,
			       &dropped);
	if (rc) {
		INC(d->c.rejected[reject_of(rc)]);
		return NULL;
	}
	if (dropped)
		ADD(d->c.rejected[SP_REJ_EXPIRED], dropped);
	if (d->opt.id && memcmp(d->val->reporter, sp_identity_pubkey(d->opt.id), SP_PUBKEY_LEN) == 0) {
		INC(d->c.own);
		return NULL;
	}
	if (listed(d->deny, d->opt.n_deny, d->val->reporter) ||
	    (d->opt.n_allow && !listed(d->allow, d->opt.n_allow, d->val->reporter))) {
		INC(d->c.rejected[SP_REJ_DENIED]);
		return NULL;
	}
	if (!peer_allow(d, d->val->reporter)) {
		INC(d->c.rejected[SP_REJ_RATE]);
		return NULL;
	}
	INC(d->c.accepted);
	return d->val;
}

/* A peer reporting one of this host's own addresses is ignored. */
static bool own_address(sp_dht *d, const char *ip)
{
	bool own = false;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_own && !own; i++)
		own = strcmp(d->own[i], ip) == 0;
	pthread_mutex_unlock(&d->lock);
	return own;
}

static bool is_own(sp_dht *d, const struct sp_dht_record *r)
{
	return r->kind == SP_KIND_IP && own_address(d, r->key);
}

static bool feed_value_cb(const dht_value *value, bool expired, void *ud)
{
	struct listen_ctx *l = ud;
	if (expired)
		return true;
	struct sp_dht_expect want = { .type = SP_DHT_BATCH, .hour = l->hour };
	const struct sp_dht_value *v = accept_value(l->d, value, &want, true);
	for (size_t i = 0; v && i < v->n; i++)
		if (!is_own(l->d, &v->rec[i]))
			intake_push(l->d, v, i);
	return true;
}

static void listen_done_cb(void *ud) { (void)ud; }

/* Back-fill: one get per feed hour; the context is freed when done. */
static bool backfill_value_cb(const dht_value *value, void *ud)
{
	return feed_value_cb(value, false, ud);
}

static void backfill_done_cb(bool ok, void *ud)
{
	struct listen_ctx *l = ud;
	if (ok)
		contact(l->d);
	atomic_fetch_sub(&l->d->backfill_inflight, 1);
	INC(l->d->c.backfill_done);
	op_unlink(l->d, &l->op);
	free(l);
}

size_t sp_dht_drain(sp_dht *d, int (*fn)(const sp_agg *a, void *ud), void *ud, size_t max)
{
	size_t done = 0;
	sp_agg *a = malloc(sizeof(*a));
	if (!a)
		return 0;
	while (done < max) {
		struct intake q;
		pthread_mutex_lock(&d->lock);
		if (!d->inq_len) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		q = d->inq[d->inq_head];
		d->inq_head = (d->inq_head + 1) % INTAKE_MAX;
		d->inq_len--;
		pthread_mutex_unlock(&d->lock);

		sp_agg_init(a, (enum sp_kind)q.r.kind, q.r.key);
		a->methods = q.r.methods;
		a->transports = q.r.transports;
		for (unsigned u = 0; u < q.n_uas; u++)
			sp_agg_add_ua(a, q.uas[u]);
		free(q.uas);
		sp_report *rep = sp_agg_report(a, q.reporter, true);
		if (rep) {
			rep->first_ns = q.r.first_s * SP_NS_PER_SEC;
			rep->last_ns = q.r.last_s * SP_NS_PER_SEC;
			rep->count = q.r.count;
			rep->expires_ns = q.r.expires_s * SP_NS_PER_SEC;
			fn(a, ud);
		}
		done++;
	}
	free(a);
	return done;
}

/* ---- lookups --------------------------------------------------------- */

struct lookup_ctx {
	struct op op;
	sp_dht *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs; /* the caller and the runner */
	bool done;
	unsigned found;
	char key[SP_KEY_MAX];
	uint8_t kind;
	sp_agg agg;
};

static void lookup_destroy(struct op *o)
{
	struct lookup_ctx *l = (struct lookup_ctx *)o;
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}

static void lookup_unref(struct lookup_ctx *l)
{
	pthread_mutex_lock(&l->lock);
	bool last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (last) {
		op_unlink(l->d, &l->op);
		lookup_destroy(&l->op);
	}
}

static bool lookup_value_cb(const dht_value *value, void *ud)
{
	struct lookup_ctx *l = ud;
	struct sp_dht_expect want = { .type = SP_DHT_RECORD, .kind = l->kind, .key = l->key };
	const struct sp_dht_value *v = accept_value(l->d, value, &want, false);
	if (!v || is_own(l->d, &v->rec[0]))
		return true;
	sp_agg a;
	sp_dht_record_to_agg(v, 0, &a);
	intake_push(l->d, v, 0); /* the store caches it */
	pthread_mutex_lock(&l->lock);
	sp_agg_merge(&l->agg, &a);
	if (l->found++ == 0)
		pthread_cond_broadcast(&l->cond); /* the waiter starts its grace */
	pthread_mutex_unlock(&l->lock);
	return true;
}

static void lookup_done_cb(bool ok, void *ud)
{
	struct lookup_ctx *l = ud;
	if (ok) {
		contact(l->d);
		INC(l->d->c.gets_ok);
	}
	pthread_mutex_lock(&l->lock);
	l->done = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	lookup_unref(l);
}

int sp_dht_lookup(sp_dht *d, enum sp_kind kind, const char *key, uint64_t timeout_ns, sp_agg *out)
{
	char name[SP_DHT_NAME_MAX];
	dht_infohash h;
	struct lookup_ctx *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->d = d;
	l->refs = 2;
	l->kind = (uint8_t)kind;
	snprintf(l->key, sizeof(l->key), "%s", key);
	sp_agg_init(&l->agg, kind, key);
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);

	dht_infohash_get_from_string(&h, sp_dht_record_name(kind, key, name));
	op_link(d, &l->op, lookup_destroy);
	INC(d->c.gets);
	dht_runner_get(d->runner, &h, lookup_value_cb, lookup_done_cb, l);

	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t at = (uint64_t)ts.tv_nsec + timeout_ns;
	ts.tv_sec += (time_t)(at / SP_NS_PER_SEC);
	ts.tv_nsec = (long)(at % SP_NS_PER_SEC);
	/* done when the search is, or a short grace after the first value
	 * (a slow storing node must not hold a VoIP server's answer) */
	pthread_mutex_lock(&l->lock);
	int wrc = 0;
	bool graced = false;
	while (!l->done && wrc != ETIMEDOUT) {
		if (l->found && !graced) {
			struct timespec g;
			clock_gettime(CLOCK_MONOTONIC, &g);
			uint64_t gat = (uint64_t)g.tv_nsec + LOOKUP_GRACE_NS;
			g.tv_sec += (time_t)(gat / SP_NS_PER_SEC);
			g.tv_nsec = (long)(gat % SP_NS_PER_SEC);
			if (g.tv_sec < ts.tv_sec || (g.tv_sec == ts.tv_sec && g.tv_nsec < ts.tv_nsec))
				ts = g;
			graced = true;
		}
		wrc = pthread_cond_timedwait(&l->cond, &l->lock, &ts);
	}
	unsigned found = l->found;
	bool done = l->done;
	if (found)
		*out = l->agg;
	pthread_mutex_unlock(&l->lock);
	lookup_unref(l);
	if (found)
		return 0;
	return done ? SP_ENOTFOUND : SP_ETIMEDOUT;
}

/* ---- publishing ------------------------------------------------------ */

void sp_dht_note_prepared(sp_dht *d, sp_prepared *const *p, size_t n)
{
	if (!d || !d->opt.publish)
		return;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		uint8_t kind[3];
		const char *key[3];
		if (!p[i] || !sp_prepared_local(p[i]))
			continue; /* a peer's event is not ours to sign */
		unsigned k = sp_prepared_keys(p[i], kind, key);
		for (unsigned j = 0; j < k; j++) {
			/* floods come from few sources: skip the repeat cheaply */
			char *last = kind[j] == SP_KIND_IP ? d->last_src : d->last_to;
			if (strcmp(key[j], last) == 0)
				continue;
			snprintf(last, SP_KEY_MAX, "%s", key[j]);
			keyset_add(&d->dirty, kind[j], key[j]);
		}
	}
	pthread_mutex_unlock(&d->lock);
}

static bool shareable(sp_dht *d, const sp_agg *a)
{
	if (a->kind != SP_KIND_IP)
		return true;
	return sp_ip_scope_is_shareable(sp_ip_scope(a->key)) && !own_address(d, a->key);
}

/* The budget refills at opt.bandwidth bytes/s up to one keepalive period.
 * budget_take() refuses a put it cannot pay for; a forced take (feed
 * batches, whose records were already admitted) may run it negative. */
static bool budget_take_forced(sp_dht *d, uint64_t cost, bool force)
{
	uint64_t now = sp_mono_ns();
	double cap = (double)d->opt.bandwidth * (double)KEEPALIVE_NS / 1e9;
	d->budget += (double)(now - d->budget_at_ns) / 1e9 * (double)d->opt.bandwidth;
	if (d->budget > cap)
		d->budget = cap;
	d->budget_at_ns = now;
	if (d->budget < (double)cost && !force) {
		INC(d->c.deferred);
		return false;
	}
	d->budget -= (double)cost;
	return true;
}

static bool budget_take(sp_dht *d, uint64_t cost) { return budget_take_forced(d, cost, false); }

static void put_done_cb(bool ok, void *ud)
{
	sp_dht *d = ud;
	if (ok) {
		INC(d->c.puts_ok);
		contact(d);
	} else {
		INC(d->c.puts_failed);
	}
}

static void put_bytes(sp_dht *d, const char *name, const void *data, size_t len)
{
	dht_infohash h;
	dht_infohash_get_from_string(&h, name);
	dht_value *v = dht_value_new(data, len);
	if (!v)
		return;
	INC(d->c.puts);
	ADD(d->c.put_bytes, len);
	dht_runner_put(d->runner, &h, v, put_done_cb, d, false);
	dht_value_unref(v);
}

/* Sign and put one record value; the record joins the pending batch. */
static int publish_key(sp_dht *d, uint8_t kind, const char *key, uint64_t now_s)
{
	struct sp_dht_record r;
	char name[SP_DHT_NAME_MAX];
	int rc = sp_store_get(d->opt.store, (enum sp_kind)kind, key, d->scratch);
	if (rc == SP_ENOTFOUND)
		return -EAGAIN; /* committed, not folded yet: the writer folds within a second or so */
	if (rc)
		return rc;
	if (!shareable(d, d->scratch) ||
	    sp_dht_record_from_agg(d->scratch, d->opt.ttl_ns / SP_NS_PER_SEC, &r) ||
	    r.expires_s <= now_s)
		return SP_ENOTFOUND;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	rc = sp_dht_encode_record(d->opt.id, &r, d->scratch, now_s, &sb);
	if (rc == 0 && !budget_take(d, PUT_COST(sb.size)))
		rc = SP_ERATELIMIT;
	if (rc == 0) {
		put_bytes(d, sp_dht_record_name(r.kind, r.key, name), sb.data, sb.size);
		INC(d->c.pub_records);
		if (d->n_batch < BATCH_CAP)
			d->batch[d->n_batch++] = r;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int by_hour(const void *a, const void *b)
{
	const struct sp_dht_record *x = a, *y = b;
	uint64_t hx = x->last_s / SP_DHT_FEED_PERIOD, hy = y->last_s / SP_DHT_FEED_PERIOD;
	return hx < hy ? -1 : hx > hy;
}

/* Put the pending records as feed batches: under the current hour, or
 * (keepalive) under the hour each was last seen in. */
static void flush_batches(sp_dht *d, uint64_t now_s, bool by_last_seen)
{
	if (by_last_seen)
		qsort(d->batch, d->n_batch, sizeof(*d->batch), by_hour);
	size_t i = 0;
	while (i < d->n_batch) {
		uint64_t hour = by_last_seen ? d->batch[i].last_s / SP_DHT_FEED_PERIOD
					     : now_s / SP_DHT_FEED_PERIOD;
		size_t same = 1;
		while (by_last_seen && i + same < d->n_batch &&
		       d->batch[i + same].last_s / SP_DHT_FEED_PERIOD == hour)
			same++;
		if (!by_last_seen)
			same = d->n_batch - i;
		size_t n = sp_dht_batch_fit(&d->batch[i], same);
		if (n == 0)
			n = 1;
		msgpack_sbuffer sb;
		char name[SP_DHT_NAME_MAX];
		msgpack_sbuffer_init(&sb);
		if (sp_dht_encode_batch(d->opt.id, hour, &d->batch[i], n, now_s, &sb) == 0) {
			budget_take_forced(d, PUT_COST(sb.size), true);
			put_bytes(d, sp_dht_feed_name(hour, name), sb.data, sb.size);
			INC(d->c.pub_batches);
		}
		msgpack_sbuffer_destroy(&sb);
		i += n;
	}
	d->n_batch = 0;
}

/* One tick's publishing: dirty keys not published this interval. */
static void publish_dirty(sp_dht *d, uint64_t now_s)
{
	bool overflow;
	pthread_mutex_lock(&d->lock);
	struct keyset t = d->tick;
	d->tick = d->dirty;
	d->dirty = t;
	overflow = d->tick.overflow;
	d->last_src[0] = d->last_to[0] = '\0'; /* a repeat is noted once a tick */
	pthread_mutex_unlock(&d->lock);
	if (overflow)
		d->keepalive_now = true; /* too many to track: the keepalive scan finds them */

	size_t sent = 0;
	for (size_t i = 0; i < d->tick.cap && d->tick.n; i++) {
		struct kentry *e = &d->tick.e[i];
		if (!e->kind)
			continue;
		bool later = keyset_has(&d->pub_cur, e->kind, e->key) ||
			     keyset_has(&d->pub_prev, e->kind, e->key) || sent >= TICK_RECORDS_MAX;
		int rc = later ? SP_ERATELIMIT : publish_key(d, e->kind, e->key, now_s);
		if (rc == 0) {
			keyset_add(&d->pub_cur, e->kind, e->key);
			sent++;
		} else if (rc == SP_ERATELIMIT ||
			   (rc == -EAGAIN && e->tries < FOLD_WAIT_TICKS)) {
			/* coalesced, over budget, or not folded yet: a later tick */
			pthread_mutex_lock(&d->lock);
			keyset_add_tries(&d->dirty, e->kind, e->key,
					 (uint8_t)(e->tries + (rc == -EAGAIN)));
			pthread_mutex_unlock(&d->lock);
		}
	}
	keyset_clear(&d->tick);
	flush_batches(d, now_s, false);
}

/* Keepalive: the newest live local records, as many as the budget has room
 * for, chosen by a bounded min-heap on last seen. */
struct ka_item {
	uint64_t last_ns;
	uint8_t kind;
	char key[SP_KEY_MAX];
};

struct ka_scan {
	sp_dht *d;
	struct ka_item *heap;
	size_t n, max;
	uint64_t now_ns;
};

static void heap_down(struct ka_item *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].last_ns < h[m].last_ns)
			m = l;
		if (r < n && h[r].last_ns < h[m].last_ns)
			m = r;
		if (m == i)
			return;
		struct ka_item t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static int ka_visit(const sp_agg *a, void *ud)
{
	struct ka_scan *s = ud;
	uint64_t last = 0;
	for (unsigned i = 0; i < a->n_reports; i++)
		if (a->reports[i].reporter[0] == '\0')
			last = a->reports[i].last_ns;
	if (!last || last + s->d->opt.ttl_ns <= s->now_ns || !shareable(s->d, a))
		return 0;
	struct ka_item it = { .last_ns = last, .kind = a->kind };
	memcpy(it.key, a->key, sizeof(it.key));
	if (s->n < s->max) {
		size_t i = s->n++;
		s->heap[i] = it;
		while (i && s->heap[(i - 1) / 2].last_ns > s->heap[i].last_ns) {
			struct ka_item t = s->heap[i];
			s->heap[i] = s->heap[(i - 1) / 2];
			s->heap[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (s->max && last > s->heap[0].last_ns) {
		s->heap[0] = it;
		heap_down(s->heap, s->n, 0);
	}
	return d_stopping_check(s->d);
}

static int by_newest(const void *a, const void *b)
{
	const struct ka_item *x = a, *y = b;
	return x->last_ns > y->last_ns ? -1 : x->last_ns < y->last_ns;
}

static void own_load(sp_dht *d);

static void keepalive(sp_dht *d, uint64_t now_s)
{
	own_load(d);
	struct ka_scan s = { .d = d, .now_ns = now_s * SP_NS_PER_SEC };
	/* room for what the budget can pay now (a record value and its
	 * share of a batch each), keeping a fifth for new keys */
	budget_take(d, 0);
	double room = d->budget * 0.8 / (double)PUT_COST(160);
	s.max = room > KEEPALIVE_MAX ? KEEPALIVE_MAX : (size_t)room;
	INC(d->c.keepalives);
	if (!s.max) {
		INC(d->c.deferred);
		return;
	}
	if (!(s.heap = malloc(s.max * sizeof(*s.heap))))
		return;
	sp_store_foreach(d->opt.store, SP_KIND_IP, ka_visit, &s, NULL);
	sp_store_foreach(d->opt.store, SP_KIND_NUMBER, ka_visit, &s, NULL);
	qsort(s.heap, s.n, sizeof(*s.heap), by_newest);
	size_t done = 0;
	for (size_t i = 0; i < s.n && !d_stopping_check(d); i++) {
		int rc = publish_key(d, s.heap[i].kind, s.heap[i].key, now_s);
		if (rc == SP_ERATELIMIT)
			break;
		if (rc == 0) {
			keyset_add(&d->pub_cur, s.heap[i].kind, s.heap[i].key);
			done++;
		}
		if (d->n_batch >= BATCH_CAP)
			flush_batches(d, now_s, true);
	}
	flush_batches(d, now_s, true);
	if (done)
		log_debug("dht: keepalive published %zu of %zu live records", done, s.n);
	free(s.heap);
}

/* ---- feed listens and back-fill -------------------------------------- */

static struct listen_ctx *listen_start(sp_dht *d, uint64_t hour)
{
	char name[SP_DHT_NAME_MAX];
	struct listen_ctx *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->d = d;
	l->hour = hour;
	dht_infohash_get_from_string(&l->hash, sp_dht_feed_name(hour, name));
	l->token = dht_runner_listen(d->runner, &l->hash, feed_value_cb, listen_done_cb, l);
	return l;
}

static void listen_stop(sp_dht *d, struct listen_ctx *l)
{
	if (!l)
		return;
	if (l->token) {
		dht_runner_cancel_listen(d->runner, &l->hash, l->token);
		dht_op_token_delete(l->token);
	}
	/* the runner may still hold l in a queued callback: freed at stop */
}

/* Listen to this hour and the last; keep the old contexts until stop. */
struct retired {
	struct listen_ctx *l;
	struct retired *next;
};
static void follow_hours(sp_dht *d, uint64_t hour, struct retired **old)
{
	for (int i = 0; i < 2; i++) {
		uint64_t want = hour - (uint64_t)i;
		struct listen_ctx **slot = NULL;
		for (int j = 0; j < 2; j++)
			if (d->listens[j] && d->listens[j]->hour == want)
				slot = &d->listens[j];
		if (slot)
			continue;
		/* replace the slot holding an hour we no longer follow */
		for (int j = 0; j < 2 && !slot; j++)
			if (!d->listens[j] || (d->listens[j]->hour != hour && d->listens[j]->hour != hour - 1))
				slot = &d->listens[j];
		if (!slot)
			continue;
		if (*slot) {
			listen_stop(d, *slot);
			struct retired *r = malloc(sizeof(*r));
			if (r) {
				r->l = *slot;
				r->next = *old;
				*old = r;
			}
		}
		*slot = listen_start(d, want);
	}
}

static void op_free_plain(struct op *o) { free(o); }

static void backfill_step(sp_dht *d)
{
	while (d->backfill_next >= d->backfill_last && d->backfill_next &&
	       atomic_load(&d->backfill_inflight) < BACKFILL_INFLIGHT) {
		pthread_mutex_lock(&d->lock);
		bool busy = d->inq_len > INTAKE_MAX / 2;
		pthread_mutex_unlock(&d->lock);
		if (busy)
			return;
		char name[SP_DHT_NAME_MAX];
		struct listen_ctx *l = calloc(1, sizeof(*l));
		if (!l)
			return;
		l->d = d;
		l->hour = d->backfill_next--;
		dht_infohash_get_from_string(&l->hash, sp_dht_feed_name(l->hour, name));
		atomic_fetch_add(&d->backfill_inflight, 1);
		op_link(d, &l->op, op_free_plain);
		INC(d->c.gets);
		dht_runner_get(d->runner, &l->hash, backfill_value_cb, backfill_done_cb, l);
	}
}

/* ---- bootstrap ------------------------------------------------------- */

static void split_host(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(spec, ':');
	/* "[v6]:port", "v4:port", "host:port", "host", "v6" */
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		size_t n = end ? (size_t)(end - spec - 1) : strlen(spec + 1);
		snprintf(host, hlen, "%.*s", (int)n, spec + 1);
		snprintf(port, plen, "%s", end && end[1] == ':' ? end + 2 : "4222");
	} else if (colon && strchr(spec, ':') == colon) {
		snprintf(host, hlen, "%.*s", (int)(colon - spec), spec);
		snprintf(port, plen, "%s", colon + 1);
	} else {
		snprintf(host, hlen, "%s", spec);
		snprintf(port, plen, "4222");
	}
}

static void ping_done_cb(bool ok, void *ud)
{
	if (ok)
		contact(ud);
}

/* Not connected: ask for this hour's feed key. Any node answering makes
 * the get succeed, which is how a node without bootstrap nodes (the first
 * of a network) learns that peers have joined it. */
static bool probe_value_cb(const dht_value *value, void *ud) { return true; }
static void probe_done_cb(bool ok, void *ud)
{
	if (ok)
		contact(ud);
}

static void probe(sp_dht *d, uint64_t now_s)
{
	char name[SP_DHT_NAME_MAX];
	dht_infohash h;
	dht_infohash_get_from_string(&h, sp_dht_feed_name(now_s / SP_DHT_FEED_PERIOD, name));
	dht_runner_get(d->runner, &h, probe_value_cb, probe_done_cb, d);
}

static void bootstrap(sp_dht *d, bool ping_only)
{
	for (size_t i = 0; i < d->opt.n_bootstrap; i++) {
		char host[256], port[16];
		split_host(d->opt.bootstrap[i], host, sizeof(host), port, sizeof(port));
		if (!ping_only)
			dht_runner_bootstrap(d->runner, host, port);
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL, *a;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			continue;
		for (a = res; a; a = a->ai_next)
			dht_runner_ping(d->runner, a->ai_addr, a->ai_addrlen, ping_done_cb, d);
		freeaddrinfo(res);
	}
}

/* ---- the publisher thread -------------------------------------------- */

static void *dht_main(void *arg)
{
	sp_dht *d = arg;
	sp_thread_background("sp-dht");
	struct retired *old = NULL;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		if (!d->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		bool stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		uint64_t mono = sp_mono_ns(), now_s = sp_now_ns() / SP_NS_PER_SEC;
		bool up = connected(d);
		if (!d->told_alone && !up && mono - d->started_ns > 10 * SP_NS_PER_SEC) {
			/* nobody answered since start: say so once */
			d->told_alone = true;
			d->was_connected = true;
		}
		if (up != d->was_connected) {
			if (up)
				log_info("dht: connected to the network (port %u)", d->port);
			else
				log_warn("dht: no peer has answered for a while; collecting locally and "
					 "retrying every %d s",
					 (int)(RETRY_NS / SP_NS_PER_SEC));
			d->was_connected = up;
		}
		if (mono >= (up ? d->next_ping_ns : d->next_retry_ns)) {
			bootstrap(d, up);
			d->next_retry_ns = mono + RETRY_NS;
			d->next_ping_ns = mono + PING_NS;
		}
		if (!up && mono >= d->next_probe_ns) {
			probe(d, now_s);
			d->next_probe_ns = mono + PROBE_NS;
		}
		if (d->opt.listen) {
			follow_hours(d, now_s / SP_DHT_FEED_PERIOD, &old);
			if (up)
				backfill_step(d);
		}
		if (!d->opt.publish || !up)
			continue;
		if (mono - d->interval_start_ns >= d->opt.publish_interval_ns) {
			struct keyset t = d->pub_prev;
			d->pub_prev = d->pub_cur;
			d->pub_cur = t;
			keyset_clear(&d->pub_cur);
			d->interval_start_ns = mono;
		}
		publish_dirty(d, now_s);
		if (d->keepalive_now || mono >= d->next_keepalive_ns) {
			d->keepalive_now = false;
			d->next_keepalive_ns = mono + KEEPALIVE_NS;
			keepalive(d, now_s);
		}
	}
	for (int j = 0; j < 2; j++) {
		listen_stop(d, d->listens[j]);
		struct retired *r = malloc(sizeof(*r));
		if (r && d->listens[j]) {
			r->l = d->listens[j];
			r->next = old;
			old = r;
		} else {
			free(r);
		}
		d->listens[j] = NULL;
	}
	return old; /* freed after the runner stopped */
}

/* ---- start and stop -------------------------------------------------- */

static int parse_ids(const char *const *ids, size_t n, uint8_t (**out)[SP_PUBKEY_LEN],
		     const char *what)
{
	*out = NULL;
	if (!n)
		return 0;
	if (!(*out = calloc(n, sizeof(**out))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (sp_keyid_parse(ids[i], (*out)[i])) {
			log_error("%s: '%s' is not a key id (64 hex digits, see sentrypeer id)", what,
				  ids[i]);
			return SP_EPARSE;
		}
	}
	return 0;
}

/* This host's addresses; reloaded every keepalive round (DHCP, SLAAC). */
static void own_load(sp_dht *d)
{
	size_t n = 0;
	char(*own)[SP_KEY_MAX] = NULL;
	if (sp_own_addresses(&own, &n) != 0)
		return;
	pthread_mutex_lock(&d->lock);
	char(*old)[SP_KEY_MAX] = d->own;
	d->own = own;
	d->n_own = n;
	pthread_mutex_unlock(&d->lock);
	free(old);
}

static void free_state(sp_dht *d)
{
	if (d->inq) {
		for (size_t i = 0; i < d->inq_len; i++)
			free(d->inq[(d->inq_head + i) % INTAKE_MAX].uas);
	}
	free(d->inq);
	free(d->dirty.e);
	free(d->tick.e);
	free(d->pub_cur.e);
	free(d->pub_prev.e);
	free(d->batch);
	free(d->scratch);
	free(d->val);
	free(d->allow);
	free(d->deny);
	free(d->own);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

int sp_dht_start(sp_dht **out, const struct sp_dht_options *opt)
{
	int rc;
	sp_dht *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->opt = *opt;
	d->ops.next = d->ops.prev = &d->ops;
	if (opt->publish && (!opt->id || !opt->store)) {
		free(d);
		return -EINVAL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = parse_ids(opt->allow, opt->n_allow, &d->allow, "dht-allow")) ||
	    (rc = parse_ids(opt->deny, opt->n_deny, &d->deny, "dht-deny"))) {
		free_state(d);
		return rc;
	}
	d->inq = calloc(INTAKE_MAX, sizeof(*d->inq));
	d->val = malloc(sizeof(*d->val));
	if (!d->inq || !d->val || keyset_init(&d->dirty) || keyset_init(&d->tick) ||
	    keyset_init(&d->pub_cur) || keyset_init(&d->pub_prev) ||
	    !(d->batch = calloc(BATCH_CAP, sizeof(*d->batch))) ||
	    !(d->scratch = malloc(sizeof(*d->scratch)))) {
		free_state(d);
		return -ENOMEM;
	}
	own_load(d);

	dht_runner_config cfg;
	dht_runner_config_default(&cfg);
	cfg.dht_config.node_config.network = opt->network;
	cfg.threaded = true;
	cfg.peer_discovery = false; /* no multicast on the LAN */
	cfg.peer_publish = false;
	cfg.log = false;
	cfg.proxy_server = opt->proxy && *opt->proxy ? opt->proxy : NULL;
	d->runner = dht_runner_new();
	if (!d->runner) {
		free_state(d);
		return -ENOMEM;
	}
	rc = dht_runner_run_config(d->runner, opt->port, &cfg);
	if (rc) {
		log_error("dht: cannot start on port %u: %s", opt->port,
			  rc < 0 ? strerror(-rc) : strerror(rc));
		dht_runner_delete(d->runner);
		free_state(d);
		return rc < 0 ? rc : -rc;
	}
	d->port = dht_runner_get_bound_port(d->runner, AF_INET);
	if (!d->port)
		d->port = dht_runner_get_bound_port(d->runner, AF_INET6);

	uint64_t mono = sp_mono_ns(), hour = sp_now_ns() / SP_NS_PER_SEC / SP_DHT_FEED_PERIOD;
	d->started_ns = mono;
	d->budget_at_ns = mono;
	d->budget = (double)opt->bandwidth * 60; /* a minute's worth to start with */
	d->interval_start_ns = mono;
	d->next_keepalive_ns = mono + 120 * SP_NS_PER_SEC; /* once settled */
	if (opt->listen && opt->backfill_ns) {
		uint64_t hours = opt->backfill_ns / SP_NS_PER_SEC / SP_DHT_FEED_PERIOD + 1;
		d->backfill_next = hour;
		d->backfill_last = hour >= hours ? hour - hours + 1 : 1;
		atomic_store(&d->c.backfill_total, d->backfill_next - d->backfill_last + 1);
	}
	bootstrap(d, false);
	d->next_retry_ns = mono + RETRY_NS;
	d->next_ping_ns = mono + PING_NS;
	if ((rc = pthread_create(&d->thread, NULL, dht_main, d))) {
		sp_dht_stop(d);
		return -rc;
	}
	d->thread_started = true;
	*out = d;
	return 0;
}

static void shutdown_cb(void *ud)
{
	sp_dht *d = ud;
	pthread_mutex_lock(&d->lock);
	d->runner = NULL; /* marks done; the pointer is kept by the caller */
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void sp_dht_stop(sp_dht *d)
{
	if (!d)
		return;
	struct retired *old = NULL;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (d->thread_started)
		pthread_join(d->thread, (void **)&old);
	dht_runner *r = d->runner;
	if (!d->opt.quick_stop) {
		/* a graceful stop lets pending operations finish or time out */
		dht_runner_shutdown(r, shutdown_cb, d);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 3; /* then stop anyway: the node's exit must not hang */
		pthread_mutex_lock(&d->lock);
		int wrc = 0;
		while (d->runner && wrc != ETIMEDOUT)
			wrc = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		pthread_mutex_unlock(&d->lock);
	}
	dht_runner_delete(r);
	/* gets whose done callback never came: no callback can come now */
	while (d->ops.next != &d->ops) {
		struct op *o = d->ops.next;
		o->prev->next = o->next;
		o->next->prev = o->prev;
		o->destroy(o);
	}
	while (old) {
		struct retired *next = old->next;
		free(old->l);
		free(old);
		old = next;
	}
	free_state(d);
}

void sp_dht_get_stats(sp_dht *d, struct sp_dht_stats *o)
{
	memset(o, 0, sizeof(*o));
	o->connected = connected(d);
	o->port = d->port;
	o->last_contact_ns = atomic_load(&d->last_contact_wall);
	o->puts = GET(d->c.puts);
	o->puts_ok = GET(d->c.puts_ok);
	o->puts_failed = GET(d->c.puts_failed);
	o->put_bytes = GET(d->c.put_bytes);
	o->gets = GET(d->c.gets);
	o->gets_ok = GET(d->c.gets_ok);
	o->values_received = GET(d->c.received);
	o->values_accepted = GET(d->c.accepted);
	o->values_duplicate = GET(d->c.duplicate);
	o->values_own = GET(d->c.own);
	o->records_accepted = GET(d->c.records);
	o->records_dropped = GET(d->c.dropped);
	for (int i = 0; i < SP_REJ_N; i++)
		o->rejected[i] = GET(d->c.rejected[i]);
	o->peers = GET(d->c.peers);
	o->published_records = GET(d->c.pub_records);
	o->published_batches = GET(d->c.pub_batches);
	o->deferred_budget = GET(d->c.deferred);
	o->keepalive_rounds = GET(d->c.keepalives);
	o->backfill_hours_done = GET(d->c.backfill_done);
	o->backfill_hours_total = GET(d->c.backfill_total);
}

bool sp_dht_wait_connected(sp_dht *d, uint64_t timeout_ns)
{
	uint64_t end = sp_mono_ns() + timeout_ns;
	while (!connected(d) && sp_mono_ns() < end) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return connected(d);
}
