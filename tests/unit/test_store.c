/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sp_error.h"
#include "sp_time.h"
#include "store.h"
#include "writer.h"

#define DAY (86400 * SP_NS_PER_SEC)

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/sp-store-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sentrypeer.mdb", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static sp_store *open_store(const char *path, bool readonly, uint64_t map)
{
	sp_store *st = NULL;
	struct sp_store_options o = { .path = path, .map_size = map, .readonly = readonly,
				      .retention_ns = 7 * DAY, .set_retention = !readonly,
				      .batch_max = 4096, .sync = SP_SYNC_NONE };
	assert_int_equal(sp_store_open(&st, &o), 0);
	return st;
}

static sp_event *ev(const char *ip, const char *to, const char *ruri, const char *ua, uint64_t ts)
{
	static const char raw[] = "INVITE sip:x@y SIP/2.0\r\n\r\n";
	sp_event *e = sp_event_new(raw, sizeof(raw) - 1, 8192);
	strcpy(e->src_ip, ip);
	strcpy(e->dst_ip, "198.51.100.1");
	strcpy(e->to_user, to);
	strcpy(e->ruri_user, ruri);
	strcpy(e->user_agent, ua);
	strcpy(e->method, "INVITE");
	e->transport = SP_TP_UDP;
	if (ts)
		e->ts_ns = ts;
	return e;
}

static void add(sp_store *st, sp_event **evs, size_t n)
{
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_add_events(tx, evs, n), 0);
	assert_int_equal(sp_wtxn_fold(tx), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	assert_int_equal(sp_store_pending(st), 0);
	for (size_t i = 0; i < n; i++)
		free(evs[i]);
}

static void test_missing_store(void **state)
{
	struct fixture *f = *state;
	sp_store *st;
	struct sp_store_options o = { .path = f->path, .readonly = true };
	assert_int_equal(sp_store_open(&st, &o), SP_ENOSTORE);
	assert_null(st);
	o.path = f->dir; /* a directory is not a store */
	assert_int_equal(sp_store_open(&st, &o), -EISDIR);
}

static void test_events_fold_into_aggregates(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	sp_event *evs[1003];
	sp_agg *a = malloc(sizeof(*a));

	/* one scanner, 1000 INVITEs to one number dialled two ways, in one batch */
	for (int i = 0; i < 1000; i++)
		evs[i] = ev("::ffff:203.0.113.5", i % 2 ? "+441234" : "00441234", "441234",
			    i % 3 ? "friendly-scanner" : "sipvicious", 0);
	evs[1000] = ev("2001:db8::7", "100", "00046500729221", "x", 0); /* R-URI differs */
	evs[1001] = ev("not-an-ip", "alice", "", "", 0); /* stored, folded nowhere */
	evs[1002] = ev("203.0.113.6", "", "", "", 0);
	add(st, evs, 1003);

	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.5", a), 0);
	assert_int_equal(a->n_reports, 1);
	assert_true(a->reports[0].count == 1000);
	assert_int_equal(a->n_uas, 2);
	assert_int_equal(a->methods, sp_method_bit("INVITE"));
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441234", a), 0);
	assert_true(a->reports[0].count == 1000); /* To and R-URI are one number: counted once */
	assert_int_equal(a->n_raws, 2);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "100", a), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "046500729221", a), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "alice", a), SP_ENOTFOUND);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.99", a), SP_ENOTFOUND);

	/* a second batch adds to the first */
	evs[0] = ev("203.0.113.5", "+441234", "", "friendly-scanner", 0);
	add(st, evs, 1);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.5", a), 0);
	assert_true(a->reports[0].count == 1001);

	struct sp_store_stats s;
	assert_int_equal(sp_store_stats(st, &s), 0);
	assert_true(s.events == 1004 && s.ips == 3 && s.numbers == 3);
	assert_true(s.oldest_event_ns <= s.newest_event_ns);
	sp_store_close(st);

	/* a reader sees the same, and uses the node's retention */
	st = open_store(f->path, true, 0);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441234", a), 0);
	assert_true(sp_store_retention(st) == 7 * DAY);
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), SP_EACCESS);
	sp_store_close(st);
	free(a);
}

static void test_events_out_of_order(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	uint64_t now = sp_now_ns();
	sp_event *evs[3] = { ev("203.0.113.1", "", "", "", now), ev("203.0.113.1", "", "", "", now - 5),
			     ev("203.0.113.1", "", "", "", now + 5) };
	add(st, evs, 3);
	evs[0] = ev("203.0.113.1", "", "", "", now - 10); /* older than what is stored */
	add(st, evs, 1);
	struct sp_store_stats s;
	sp_store_stats(st, &s);
	assert_true(s.events == 4);
	assert_true(s.oldest_event_ns == now - 10 && s.newest_event_ns == now + 5);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.1", &a), 0);
	assert_true(a.reports[0].first_ns == now - 10 && a.reports[0].last_ns == now + 5);
	sp_store_close(st);
}


/* Commits keep aggregate changes in memory until a fold; a crash loses the
 * memory, not the changes: the next writer replays the unfolded events. */
static void test_fold_and_replay(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	sp_agg a;
	sp_wtxn *tx;
	sp_event *evs[300];
	uint64_t now = sp_now_ns();

	for (int i = 0; i < 300; i++)
		evs[i] = ev(i % 3 ? "203.0.113.10" : "203.0.113.11", "+441234", "", "ua", now + (uint64_t)i);
	for (int b = 0; b < 3; b++) { /* three commits, no fold */
		assert_int_equal(sp_wtxn_begin(st, &tx), 0);
		assert_int_equal(sp_wtxn_add_events(tx, evs + b * 100, 100), 0);
		assert_int_equal(sp_wtxn_commit(tx), 0);
	}
	for (int i = 0; i < 300; i++)
		free(evs[i]);
	assert_int_equal(sp_store_pending(st), 3); /* two IPs, one number */
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.10", &a), SP_ENOTFOUND);
	sp_store_close(st); /* like a crash: pending is gone */

	st = open_store(f->path, true, 0); /* readers do not replay */
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.10", &a), SP_ENOTFOUND);
	sp_store_close(st);
	st = open_store(f->path, false, 64 << 20); /* a writer does */
	assert_int_equal(sp_store_pending(st), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.10", &a), 0);
	assert_true(a.reports[0].count == 200);
	assert_true(a.reports[0].first_ns == now + 1 && a.reports[0].last_ns == now + 299);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441234", &a), 0);
	assert_true(a.reports[0].count == 300);
	sp_store_close(st);
	st = open_store(f->path, false, 64 << 20); /* and never twice */
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441234", &a), 0);
	assert_true(a.reports[0].count == 300);

	/* pending, then a fold in a later transaction writes it */
	evs[0] = ev("203.0.113.10", "", "", "", now + 1000);
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_add_events(tx, evs, 1), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_fold(tx), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.10", &a), 0);
	assert_true(a.reports[0].count == 201);

	/* an aborted batch leaves nothing pending */
	evs[1] = ev("203.0.113.12", "", "", "", now + 2000);
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_add_events(tx, evs + 1, 1), 0);
	sp_wtxn_abort(tx);
	assert_int_equal(sp_store_pending(st), 0);

	/* late events (older than the last fold) and peer events fold at once */
	evs[2] = ev("203.0.113.10", "", "", "", now - 5);
	evs[3] = ev("203.0.113.13", "", "", "", now + 3000);
	strcpy(evs[3]->origin, "peerkey");
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_add_events(tx, evs + 2, 2), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.10", &a), 0);
	assert_true(a.reports[0].count == 202 && a.reports[0].first_ns == now - 5);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.13", &a), 0);
	assert_string_equal(a.reports[0].reporter, "peerkey");
	for (int i = 0; i < 4; i++)
		free(evs[i]);
	sp_store_close(st);
}

/* More distinct keys than pending holds: commits fold by themselves. */
static void test_pending_overflow_folds(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 512 << 20);
	sp_event *evs[4096];
	int total = 0;
	for (int b = 0; b < 70; b++) { /* 286,720 keys: more than pending holds (262,144) */
		for (int i = 0; i < 4096; i++, total++) {
			char ip[40];
			snprintf(ip, sizeof(ip), "2001:db8::%x:%x", total >> 16, total & 0xffff);
			evs[i] = ev(ip, "", "", "", 0);
		}
		sp_wtxn *tx;
		assert_int_equal(sp_wtxn_begin(st, &tx), 0);
		assert_int_equal(sp_wtxn_add_events(tx, evs, 4096), 0);
		assert_int_equal(sp_wtxn_commit(tx), 0);
		for (int i = 0; i < 4096; i++)
			free(evs[i]);
		assert_true(sp_store_pending(st) <= 262144);
	}
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "2001:db8::1", &a), 0); /* folded early */
	sp_store_close(st);
	st = open_store(f->path, false, 512 << 20);
	struct sp_store_stats s;
	sp_store_stats(st, &s);
	assert_true(s.ips == (uint64_t)total && s.events == (uint64_t)total);
	sp_store_close(st);
}

/* ---- fold rounds -------------------------------------------------- */

#define R_IPS 2000
#define R_NUMS 500

struct expect {
	unsigned ip[R_IPS], num[R_NUMS];
	unsigned peer; /* events from "peerkey" to 198.51.100.200 */
	int next;      /* events made so far */
};

static void r_ip(int i, char *buf, size_t len)
{
	snprintf(buf, len, "10.0.%d.%d", i / 250, i % 250);
}

/* n events over the keys, counted in x; ts 0: now */
static void r_make(struct expect *x, sp_event **evs, int n, uint64_t ts)
{
	for (int k = 0; k < n; k++, x->next++) {
		int i = (x->next * 7) % R_IPS, j = x->next % R_NUMS;
		char ip[32], num[32];
		r_ip(i, ip, sizeof(ip));
		snprintf(num, sizeof(num), "+4420%d", j);
		evs[k] = ev(ip, num, "", x->next % 3 ? "ua-a" : "ua-b", ts);
		x->ip[i]++;
		x->num[j]++;
	}
}

static void r_commit(sp_store *st, sp_event **evs, size_t n, size_t step_pages)
{
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	if (n)
		assert_int_equal(sp_wtxn_add_events(tx, evs, n), 0);
	if (step_pages)
		assert_int_equal(sp_wtxn_fold_step(tx, step_pages), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	for (size_t i = 0; i < n; i++)
		free(evs[i]);
}

/* Every aggregate counts exactly its events. */
static void r_check(sp_store *st, const struct expect *x)
{
	sp_agg a;
	char key[32];
	for (int i = 0; i < R_IPS; i++) {
		r_ip(i, key, sizeof(key));
		int rc = sp_store_get(st, SP_KIND_IP, key, &a);
		if (x->ip[i] == 0) {
			assert_int_equal(rc, SP_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(a.reports[0].count, x->ip[i]);
	}
	for (int j = 0; j < R_NUMS; j++) {
		snprintf(key, sizeof(key), "4420%d", j);
		assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, key, &a), 0);
		assert_int_equal(a.reports[0].count, x->num[j]);
		assert_int_equal(a.n_uas, 2);
	}
	if (x->peer) {
		assert_int_equal(sp_store_get(st, SP_KIND_IP, "198.51.100.200", &a), 0);
		sp_report *r = sp_agg_report(&a, "peerkey", false);
		assert_non_null(r);
		assert_int_equal(r->count, x->peer);
		assert_int_equal(a.n_reports, 1); /* the peer's only */
	}
}

static void on_sorted(void *ud)
{
	atomic_fetch_add((atomic_int *)ud, 1);
}

/* A round written a chunk per transaction while events keep coming; the
 * writer stops ("crashes") after `steps` chunks, or after the round when
 * steps is -1, or while the round is still sorted when -2 (async). async:
 * the round is sorted by the store's thread while a batch commits.
 * Reopening folds what is left: every count exact, twice. */
static void round_case(struct fixture *f, int steps, bool late, bool async)
{
	struct expect *x = calloc(1, sizeof(*x));
	sp_event *evs[1000];
	sp_store *st = open_store(f->path, false, 64 << 20);

	for (int b = 0; b < 3; b++) { /* pending: every key */
		r_make(x, evs, 1000, 0);
		r_commit(st, evs, 1000, 0);
	}
	assert_int_equal(sp_store_pending(st), R_IPS + R_NUMS);
	if (async) {
		atomic_int sorted = 0;
		assert_int_equal(sp_store_fold_begin_async(st, on_sorted, &sorted), 1);
		assert_true(sp_store_folding(st));
		assert_int_equal(sp_store_fold_begin_async(st, on_sorted, &sorted), 0);
		assert_int_equal(sp_store_fold_begin(st), 0); /* one round at a time */
		/* a batch while it sorts; a step only once it is sorted */
		r_make(x, evs, 200, 0);
		r_commit(st, evs, 200, 1);
		if (steps == -2) {
			sp_store_close(st); /* waits for the sort, then "crashes" */
			assert_int_equal(atomic_load(&sorted), 1);
			goto reopen;
		}
		sp_store_fold_wait(st);
		assert_true(sp_store_fold_ready(st));
		assert_int_equal(atomic_load(&sorted), 1);
		assert_true(sp_store_folding(st));
	} else {
		assert_int_equal(sp_store_fold_begin(st), 1);
		assert_true(sp_store_folding(st));
		assert_true(sp_store_fold_ready(st));
		assert_int_equal(sp_store_fold_begin(st), 0); /* one round at a time */
	}
	for (int s = 0; steps < 0 ? sp_store_folding(st) : s < steps; s++) {
		/* events to keys written already and to keys still to come */
		r_make(x, evs, 200, 0);
		r_commit(st, evs, 200, 1);
		if (steps >= 0)
			assert_true(sp_store_folding(st)); /* a page at a time: many steps */
	}
	if (late) { /* older than the round's end: it finishes the round */
		r_make(x, evs, 1, sp_now_ns() - 1000 * SP_NS_PER_SEC);
		r_commit(st, evs, 1, 0);
		assert_false(sp_store_folding(st));
	}
	/* a peer's event is folded at once, and must not be replayed */
	evs[0] = ev("198.51.100.200", "", "", "", 0);
	strcpy(evs[0]->origin, "peerkey");
	x->peer++;
	r_commit(st, evs, 1, 0);
	assert_true(sp_store_pending(st) > 0);
	sp_store_close(st); /* a crash: memory is gone */

reopen:
	st = open_store(f->path, false, 64 << 20);
	assert_int_equal(sp_store_pending(st), 0);
	assert_false(sp_store_folding(st));
	r_check(st, x);
	sp_store_close(st);
	st = open_store(f->path, false, 64 << 20); /* never twice */
	r_check(st, x);
	sp_store_close(st);
	free(x);
}

static void test_fold_round_crash_at_start(void **state) { round_case(*state, 0, false, false); }
static void test_fold_round_crash_mid(void **state) { round_case(*state, 7, false, false); }
static void test_fold_round_crash_after(void **state) { round_case(*state, -1, false, false); }
static void test_fold_round_late_event(void **state) { round_case(*state, 3, true, false); }
static void test_fold_async_crash_sorting(void **state) { round_case(*state, -2, false, true); }
static void test_fold_async_crash_mid(void **state) { round_case(*state, 7, false, true); }
static void test_fold_async_crash_after(void **state) { round_case(*state, -1, false, true); }
static void test_fold_async_late_event(void **state) { round_case(*state, 3, true, true); }

/* Finished rounds and flushes leave every count exact without a crash. */
static void test_fold_rounds(void **state)
{
	struct fixture *f = *state;
	struct expect *x = calloc(1, sizeof(*x));
	sp_event *evs[1000];
	sp_store *st = open_store(f->path, false, 64 << 20);
	for (int round = 0; round < 3; round++) {
		r_make(x, evs, 1000, 0);
		r_commit(st, evs, 1000, 0);
		assert_int_equal(sp_store_fold_begin(st), 1);
		int steps = 0;
		while (sp_store_folding(st)) {
			r_make(x, evs, 50, 0);
			r_commit(st, evs, 50, 4);
			steps++;
		}
		assert_true(steps > 1);
		assert_true(sp_store_pending(st) > 0); /* what came during the round */
	}
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_fold(tx), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	assert_int_equal(sp_store_pending(st), 0);
	r_check(st, x);
	sp_store_close(st);
	free(x);
}

static int count_cb(const sp_event *e, void *ud)
{
	(*(int *)ud)++;
	return 0;
}

static int agg_count_cb(const sp_agg *a, void *ud)
{
	(*(int *)ud)++;
	return 0;
}

static void test_retention_sweep(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	uint64_t now = sp_now_ns();
	sp_event *evs[4] = {
		ev("203.0.113.1", "+441111", "", "", now - 8 * DAY), /* past retention */
		ev("203.0.113.2", "+442222", "", "", now - 1 * DAY),
		ev("203.0.113.3", "", "", "", now - 8 * DAY),
		ev("203.0.113.3", "", "", "", now - 2 * DAY), /* keeps .3 alive */
	};
	add(st, evs, 4);

	/* a peer report that has expired, beside a live local one */
	sp_agg *p = calloc(1, sizeof(*p));
	sp_agg_init(p, SP_KIND_IP, "203.0.113.2");
	sp_report *r = sp_agg_report(p, "peerkey", true);
	r->first_ns = r->last_ns = now - 2 * DAY;
	r->count = 4;
	r->expires_ns = now - DAY;
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, p), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);

	struct sp_sweep_stats acc = { 0 };
	int rc, steps = 0;
	while ((rc = sp_store_sweep_step(st, now, 1, &acc)) == 1) /* budget 1: many small steps */
		steps++;
	assert_int_equal(rc, 0);
	assert_true(steps > 3);
	assert_true(acc.events_deleted == 2);
	assert_true(acc.aggs_deleted == 2); /* 203.0.113.1 and +441111 */
	assert_true(acc.aggs_updated == 1); /* 203.0.113.2 lost its peer report */

	int n = 0;
	sp_store_foreach_event(st, 0, count_cb, &n, NULL);
	assert_int_equal(n, 2);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.1", p), SP_ENOTFOUND);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441111", p), SP_ENOTFOUND);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.2", p), 0);
	assert_int_equal(p->n_reports, 1);
	assert_string_equal(p->reports[0].reporter, "");
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.3", p), 0);
	assert_true(p->reports[0].count == 2);
	/* sweeping again finds nothing */
	memset(&acc, 0, sizeof(acc));
	while (sp_store_sweep_step(st, now, 100, &acc) == 1)
		;
	assert_true(acc.events_deleted == 0 && acc.aggs_deleted == 0 && acc.aggs_updated == 0);
	free(p);
	sp_store_close(st);
}

/* ---- the change feed --------------------------------------------------- */

struct feed_seen {
	char keys[64][SP_KEY_MAX];
	uint64_t seqs[64];
	int n, stop_at;
};

static int feed_cb(uint64_t seq, const sp_agg *a, void *ud)
{
	struct feed_seen *s = ud;
	assert_true(s->n < 64);
	if (s->n)
		assert_true(seq > s->seqs[s->n - 1]); /* in sequence order */
	snprintf(s->keys[s->n], SP_KEY_MAX, "%s", a->key);
	s->seqs[s->n++] = seq;
	return s->n == s->stop_at;
}

static struct sp_feed_result feed(sp_store *st, enum sp_kind kind, uint64_t after, size_t max_scan,
				  struct feed_seen *s, int stop_at)
{
	struct sp_feed_result res;
	memset(s, 0, sizeof(*s));
	s->stop_at = stop_at;
	assert_int_equal(sp_store_feed(st, kind, after, max_scan, feed_cb, s, &res), 0);
	return res;
}

static void test_change_feed(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	struct feed_seen s;
	uint64_t now = sp_now_ns();
	sp_event *evs[4] = {
		ev("203.0.113.1", "+441111", "", "", now - 3 * DAY),
		ev("203.0.113.2", "", "", "", now - DAY),
		ev("203.0.113.3", "442222", "", "", now - DAY),
		ev("203.0.113.1", "", "", "", now - 3 * DAY),
	};
	add(st, evs, 4);

	struct sp_feed_result r = feed(st, SP_KIND_IP, 0, 100, &s, 0);
	assert_int_equal(s.n, 3);
	assert_false(r.more);
	assert_true(r.last == s.seqs[2] && r.head >= r.last);
	uint64_t ip_cursor = r.last;
	r = feed(st, SP_KIND_NUMBER, 0, 100, &s, 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "441111"); /* folded in key order */
	uint64_t num_cursor = r.last;

	/* nothing new: nothing returned, the cursor stays */
	r = feed(st, SP_KIND_IP, ip_cursor, 100, &s, 0);
	assert_int_equal(s.n, 0);
	assert_true(r.last == ip_cursor && !r.more);

	/* a new event for .2: only .2 comes back, with a higher number */
	sp_event *more[1] = { ev("203.0.113.2", "", "", "", now) };
	add(st, more, 1);
	r = feed(st, SP_KIND_IP, ip_cursor, 100, &s, 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "203.0.113.2");
	assert_true(s.seqs[0] > ip_cursor);
	/* and its old number is gone: from the start, .2 is last and listed once */
	r = feed(st, SP_KIND_IP, 0, 100, &s, 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[2], "203.0.113.2");
	ip_cursor = r.last;

	/* a peer merge is a change too */
	sp_agg *p = calloc(1, sizeof(*p));
	sp_agg_init(p, SP_KIND_NUMBER, "443333");
	sp_report *rep = sp_agg_report(p, "peerkey", true);
	rep->first_ns = rep->last_ns = now - DAY;
	rep->count = 1;
	rep->expires_ns = now + DAY;
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, p), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	r = feed(st, SP_KIND_NUMBER, num_cursor, 100, &s, 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "443333");
	/* an aborted transaction leaves no trace, and numbers still only grow */
	uint64_t head = r.head;
	sp_agg_init(p, SP_KIND_NUMBER, "449999");
	rep = sp_agg_report(p, "peerkey", true);
	rep->first_ns = rep->last_ns = now - DAY;
	rep->expires_ns = now + DAY;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, p), 0);
	sp_wtxn_abort(tx);
	r = feed(st, SP_KIND_NUMBER, num_cursor, 100, &s, 0);
	assert_int_equal(s.n, 1);
	assert_true(r.head == head);

	/* paging: max_scan and a callback that stops both say "more" */
	r = feed(st, SP_KIND_IP, 0, 2, &s, 0);
	assert_int_equal(s.n, 2);
	assert_true(r.more && r.last == s.seqs[1]);
	r = feed(st, SP_KIND_IP, r.last, 2, &s, 0);
	assert_int_equal(s.n, 1);
	assert_false(r.more);
	r = feed(st, SP_KIND_IP, 0, 100, &s, 1);
	assert_int_equal(s.n, 1);
	assert_true(r.more);

	/* retention: what the sweep removes leaves the feed */
	struct sp_sweep_stats acc = { 0 };
	while (sp_store_sweep_step(st, now + 5 * DAY, 100, &acc) == 1)
		;
	assert_true(acc.aggs_deleted >= 2); /* .1 and 441111, last seen 3 days ago */
	r = feed(st, SP_KIND_IP, 0, 100, &s, 0);
	for (int i = 0; i < s.n; i++)
		assert_string_not_equal(s.keys[i], "203.0.113.1");
	assert_int_equal(s.n, 2);
	sp_store_close(st);

	/* numbers survive a reopen and keep growing */
	st = open_store(f->path, false, 64 << 20);
	sp_event *again[1] = { ev("203.0.113.3", "", "", "", now) };
	add(st, again, 1);
	r = feed(st, SP_KIND_IP, ip_cursor, 100, &s, 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "203.0.113.3");
	assert_true(s.seqs[0] > head);
	sp_store_close(st);
	free(p);
}

/* A store written before the feed existed gets one when a writer opens it. */
static void test_change_feed_backfill(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	sp_event *evs[2] = { ev("203.0.113.1", "+441111", "", "", 0),
			     ev("203.0.113.2", "", "", "", 0) };
	add(st, evs, 2);
	sp_store_close(st);

	/* take the feed away, as an older version would have left the file */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	const char *tables[] = { "feed_ip", "feed_number", "feed_pos" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdb_dbi_open(txn, tables[i], 0, &dbi), 0);
		assert_int_equal(mdb_drop(txn, dbi, 1), 0);
	}
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	MDB_val k = { 8, "feed_seq" };
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	/* a reader cannot build it: it says so */
	st = open_store(f->path, true, 0);
	struct sp_feed_result res;
	struct feed_seen s = { 0 };
	assert_int_equal(sp_store_feed(st, SP_KIND_IP, 0, 10, feed_cb, &s, &res), SP_ENOTFOUND);
	sp_store_close(st);
	/* a writer numbers everything */
	st = open_store(f->path, false, 64 << 20);
	res = feed(st, SP_KIND_IP, 0, 100, &s, 0);
	assert_int_equal(s.n, 2);
	res = feed(st, SP_KIND_NUMBER, 0, 100, &s, 0);
	assert_int_equal(s.n, 1);
	assert_true(res.head == 3);
	sp_store_close(st);
}

static int recent_cb(const sp_event *e, void *ud)
{
	uint64_t *last = ud;
	assert_true(*last == 0 || e->ts_ns < *last); /* newest first */
	*last = e->ts_ns;
	return 0;
}

static void time_cb(uint64_t ts, void *ud)
{
	uint64_t *t = ud;
	assert_true(ts >= t[1]); /* oldest first */
	t[1] = ts;
	t[0]++;
}

static void test_recent_events_and_times(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	uint64_t base = sp_now_ns() - 100 * SP_NS_PER_SEC;
	sp_event *evs[10];
	for (int i = 0; i < 10; i++)
		evs[i] = ev("203.0.113.1", "", "", "", base + (uint64_t)i * SP_NS_PER_SEC);
	add(st, evs, 10);

	uint64_t last = 0;
	assert_int_equal(sp_store_recent_events(st, 3, recent_cb, &last), 0);
	assert_true(last == base + 7 * SP_NS_PER_SEC);

	struct sp_event_pos pos;
	uint64_t t[2] = { 0, 0 };
	bool more;
	sp_event_pos_init(&pos, base + 2 * SP_NS_PER_SEC); /* from the third on */
	assert_int_equal(sp_store_event_times(st, &pos, 5, time_cb, t, &more), 0);
	assert_true(t[0] == 5 && more);
	assert_int_equal(sp_store_event_times(st, &pos, 5, time_cb, t, &more), 0);
	assert_true(t[0] == 8 && !more);
	assert_int_equal(sp_store_event_times(st, &pos, 5, time_cb, t, &more), 0);
	assert_true(t[0] == 8 && !more); /* nothing new */
	sp_event *one[1] = { ev("203.0.113.9", "", "", "", base + 50 * SP_NS_PER_SEC) };
	add(st, one, 1);
	assert_int_equal(sp_store_event_times(st, &pos, 5, time_cb, t, &more), 0);
	assert_true(t[0] == 9 && t[1] == base + 50 * SP_NS_PER_SEC);
	sp_store_close(st);
}

static void on_commit(uint64_t total, void *ud)
{
	*(uint64_t *)ud = total;
}

static void test_writer_thread(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	sp_writer *w;
	uint64_t reported = 0;
	struct sp_writer_options o = { .queue_max = 100000, .batch_max = 4096,
				       .on_commit = on_commit, .ud = &reported };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	for (int i = 0; i < 20000; i++) {
		char ip[32], num[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i % 200);
		snprintf(num, sizeof(num), "+4420%d", i % 500);
		assert_int_equal(sp_writer_submit(w, ev(ip, num, "", "ua", 0)), 0);
	}
	sp_writer_flush(w);
	struct sp_writer_stats s;
	sp_writer_get_stats(w, &s);
	assert_true(s.committed == 20000 && s.dropped_queue_full == 0 && s.dropped_store == 0);
	assert_true(reported == 20000);
	assert_true(s.commits >= 5); /* batches of at most 4096 */
	sp_writer_stop(w);
	uint64_t v;
	assert_int_equal(sp_store_counter_get(st, "events_recorded", &v), 0);
	assert_true(v == 20000);
	int n = 0;
	sp_store_foreach(st, SP_KIND_IP, agg_count_cb, &n, NULL);
	assert_int_equal(n, 200);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44207", &a), 0);
	assert_true(a.reports[0].count == 40);
	sp_store_close(st);
}

/* A flood of new keys fills the pending table faster than a round frees
 * it: the writer folds the round in bounded steps before the next batch
 * (a batch that did not fit would fold everything in one transaction),
 * and every event is still counted once. */
static void test_writer_catch_up(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 1ull << 30);
	/* the measure the writer goes by: tight only when a batch might not fit */
	assert_false(sp_store_pending_tight(st, 4096));
	sp_event *evs[2000];
	int m = 0;
	while (!sp_store_pending_tight(st, 4096)) {
		for (int i = 0; i < 2000; i++, m++) {
			char ip[32], num[32];
			snprintf(ip, sizeof(ip), "10.200.%d.%d", (m >> 8) & 255, m & 255);
			snprintf(num, sizeof(num), "+4430%07d", m);
			evs[i] = ev(ip, num, "", "ua", 0);
		}
		r_commit(st, evs, 2000, 0);
		assert_true(m < 200000);
	}
	assert_true(sp_store_pending(st) > 240000); /* about 2 keys an event */
	assert_false(sp_store_pending_tight(st, 1));

	/* a writer given a batch now folds first, in steps: a round takes
	 * the full table, as catch-up commits before the batch or, if the
	 * writer thread found the table 3/4 full before the event came, as
	 * an idle round; never everything in the batch's transaction */
	sp_writer *w;
	struct sp_writer_options o = { .queue_max = 400000, .queue_bytes_max = 1u << 30,
				       .batch_max = 4096 };
	struct sp_writer_stats s;
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	assert_int_equal(sp_writer_submit(w, ev("10.201.0.1", "+44400000001", "", "ua", 0)), 0);
	sp_writer_flush(w);
	sp_writer_get_stats(w, &s);
	sp_writer_stop(w);
	assert_true(s.catch_ups >= 1 || s.folds >= 1);
	assert_true(s.committed == 1 && s.dropped_queue_full == 0);
	assert_true(sp_store_whole_folds(st) == 0);
	assert_int_equal(sp_store_pending(st), 0);
	m++;

	sp_store_close(st);
	st = open_store(f->path, false, 1ull << 30);
	assert_false(sp_store_pending_tight(st, 4096));
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	enum { N = 300000 };
	for (int i = 0; i < N; i++) {
		char ip[32], num[32];
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(num, sizeof(num), "+4420%07d", i);
		assert_int_equal(sp_writer_submit(w, ev(ip, num, "", "ua", 0)), 0);
	}
	sp_writer_flush(w);
	sp_writer_get_stats(w, &s);
	sp_writer_stop(w);
	assert_true(s.committed == N && s.dropped_queue_full == 0 && s.dropped_store == 0);
	/* whether a flood through the writer falls behind enough to catch up
	 * depends on the machine: said here, asserted above */
	printf("test_writer_catch_up: %llu catch-up commits\n", (unsigned long long)s.catch_ups);
	int n = 0;
	assert_int_equal(sp_store_foreach(st, SP_KIND_NUMBER, agg_count_cb, &n, NULL), 0);
	assert_int_equal(n, N + m);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44200123456", &a), 0);
	assert_true(a.reports[0].count == 1);
	sp_store_close(st);
}

/* An INVITE of about 1.4 KB that names i: compressed when stored. */
static size_t out_msg(char *buf, size_t cap, int i)
{
	int n = snprintf(buf, cap,
			 "INVITE sip:%d@198.51.100.7 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;"
			 "branch=z9hG4bK%08x;rport\r\nMax-Forwards: 70\r\nTo: <sip:%d@198.51.100.7>"
			 "\r\nFrom: <sip:100@198.51.100.7>;tag=%x\r\nCall-ID: %x@203.0.113.5\r\n"
			 "CSeq: 1 INVITE\r\nUser-Agent: friendly-scanner\r\n"
			 "Content-Type: application/sdp\r\n",
			 i, (unsigned)i * 2654435761u, i, (unsigned)i, (unsigned)i * 40503u);
	while ((size_t)n + 40 < 1400)
		n += snprintf(buf + n, cap - (size_t)n, "a=rtpmap:%d PCMU/8000\r\n", n % 128);
	return (size_t)n;
}

struct outs {
	int calls, events;
	bool seen[3000], bad;
};

static void on_events_check(sp_event *const *evs, size_t n, void *ud)
{
	struct outs *o = ud;
	char want[2048];
	o->calls++;
	for (size_t i = 0; i < n; i++) {
		int k = atoi(evs[i]->to_user);
		size_t len = out_msg(want, sizeof(want), k);
		if (k < 0 || k >= 3000 || o->seen[k] || evs[i]->raw_len != len ||
		    memcmp(evs[i]->raw, want, len) != 0 || evs[i]->raw[len] != '\0')
			o->bad = true;
		else
			o->seen[k] = true;
		o->events++;
	}
}

/* The outputs get every committed event once, with its message whole,
 * though messages are stored compressed and a batch's messages go out in
 * chunks. */
static void test_writer_outputs(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	sp_writer *w;
	struct outs *o = calloc(1, sizeof(*o));
	/* batches wait up to 2 s to fill: the events go in one or two
	 * batches, however slow this build (sanitizers) makes the producer */
	struct sp_writer_options opt = { .queue_max = 100000, .queue_bytes_max = 64 << 20,
					 .batch_max = 4096, .commit_interval_ns = 2 * SP_NS_PER_SEC,
					 .on_events = on_events_check, .ud = o };
	assert_int_equal(sp_writer_start(&w, st, &opt), 0);
	char msg[2048];
	for (int i = 0; i < 3000; i++) {
		size_t len = out_msg(msg, sizeof(msg), i);
		sp_event *e = sp_event_new(msg, len, 8192);
		snprintf(e->src_ip, sizeof(e->src_ip), "203.0.113.%d", i % 200);
		snprintf(e->to_user, sizeof(e->to_user), "%d", i);
		strcpy(e->method, "INVITE");
		e->ts_ns = sp_now_ns();
		sp_uuid_new(e->id);
		assert_int_equal(sp_writer_submit(w, e), 0);
	}
	sp_writer_flush(w);
	struct sp_writer_stats s;
	sp_writer_get_stats(w, &s);
	sp_writer_stop(w);
	assert_false(o->bad);
	assert_int_equal(o->events, 3000);
	assert_true(s.committed == 3000);
	/* 3000 messages of 1.4 KB do not fit one chunk */
	assert_true((uint64_t)o->calls > s.commits);
	sp_store_close(st);
	free(o);
}

static int ts_cb(const sp_event *e, void *ud)
{
	uint64_t **p = ud;
	*(*p)++ = e->ts_ns;
	return 0;
}

/* Producers stamp events a little before they queue them: the writer
 * queues this node's events in time order (a skew under a second), so
 * event keys grow in commit order; an older event keeps its time, and so
 * does a peer's. */
static void test_writer_time_order(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	sp_writer *w;
	struct sp_writer_options o = { .batch_max = 16 };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	uint64_t now = sp_now_ns(), ms = SP_NS_PER_SEC / 1000;
	uint64_t ts[] = { now, now - 1 * ms, now - 2 * ms, now + 5 * ms, now - 10 * SP_NS_PER_SEC };
	for (int i = 0; i < 5; i++)
		assert_int_equal(sp_writer_submit(w, ev("203.0.113.50", "", "", "", ts[i])), 0);
	sp_event *peer = ev("203.0.113.51", "", "", "", now - 3 * ms);
	strcpy(peer->origin, "peerkey");
	assert_int_equal(sp_writer_submit(w, peer), 0);
	sp_writer_flush(w);
	sp_writer_stop(w);
	uint64_t got[8], *p = got;
	assert_int_equal(sp_store_foreach_event(st, 0, ts_cb, &p, NULL), 0);
	assert_int_equal(p - got, 6);
	/* key order: the old one, the peer's, then now, now+1, now+2, now+5ms */
	assert_true(got[0] == now - 10 * SP_NS_PER_SEC);
	assert_true(got[1] == now - 3 * ms);
	assert_true(got[2] == now && got[3] == now + 1 && got[4] == now + 2);
	assert_true(got[5] == now + 5 * ms);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.50", &a), 0);
	assert_true(a.reports[0].count == 5 && a.reports[0].first_ns == now - 10 * SP_NS_PER_SEC);
	sp_store_close(st);
}

/* A field of /proc/self/status in kB ("RssFile:"), -1 if absent. */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0)
			v = atol(line + n);
	if (f)
		fclose(f);
	return v;
}

static long rss_file_kb(void) { return status_kb("RssFile:"); }

static int sum_cb(const sp_agg *a, void *ud)
{
	*(uint64_t *)ud += a->reports[0].count;
	return 0;
}

/* The store's mapped pages leave RSS and come back, unchanged, when read. */
static void test_release_map(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	sp_event *evs[4096];
	for (int b = 0; b < 10; b++) {
		for (int i = 0; i < 4096; i++) {
			char num[32];
			snprintf(num, sizeof(num), "+4420%d", b * 4096 + i);
			evs[i] = ev("203.0.113.1", num, "", "ua", 0);
		}
		add(st, evs, 4096);
	}
	uint64_t sum = 0, again = 0;
	assert_int_equal(sp_store_foreach(st, SP_KIND_NUMBER, sum_cb, &sum, NULL), 0);
	assert_true(sum == 40960);
	long before = rss_file_kb();
	sp_store_release_map(st);
	long after = rss_file_kb();
	assert_true(before > 0 && after > 0);
	assert_true(before - after > 2048); /* the number table alone is more */
	assert_int_equal(sp_store_foreach(st, SP_KIND_NUMBER, sum_cb, &again, NULL), 0);
	assert_true(again == sum);
	assert_true(rss_file_kb() > after + 2048);
	sp_store_close(st);
}

static long rss_anon_kb(void) { return status_kb("RssAnon:"); }

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* their allocators keep freed memory: no RSS figures */
#else
#define SANITIZED 0
#endif

static int feed_count_cb(uint64_t seq, const sp_agg *a, void *ud)
{
	(*(int *)ud)++;
	return 0;
}

static void write_file(const char *path, const void *data, size_t len);

struct reopen_in_walk {
	sp_store *st;
	int rc;
};

static int reopen_inside_cb(const sp_agg *a, void *ud)
{
	struct reopen_in_walk *r = ud;
	r->rc = sp_store_reopen(r->st);
	return 1;
}

static void fill_numbers(sp_store *st, int batches, int base)
{
	sp_event *evs[4096];
	for (int b = 0; b < batches; b++) {
		for (int i = 0; i < 4096; i++) {
			char num[32];
			snprintf(num, sizeof(num), "+4420%d", base + b * 4096 + i);
			evs[i] = ev("203.0.113.1", num, "", "ua", 0);
		}
		add(st, evs, 4096);
	}
}

/* Reopening gives back the dirty pages LMDB kept from the largest
 * transaction, and the store goes on as before: same data, new writes,
 * handles valid. Never while this process has a transaction open, never
 * onto another file at the path. */
static void test_store_reopen(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	fill_numbers(st, 10, 0);
	long before = rss_anon_kb();
	uint64_t t0 = sp_mono_ns();
	assert_int_equal(sp_store_reopen(st), 0);
	long after = rss_anon_kb();
	/* readers wait this long: said, not asserted (machines differ) */
	printf("test_store_reopen: a reopen took %.2f ms, gave back %ld kB\n",
	       (double)(sp_mono_ns() - t0) / 1e6, before - after);
	if (!SANITIZED) /* 4,096 new aggregates a transaction: > 1 MB of pages */
		assert_true(before - after > 1024);
	uint64_t sum = 0;
	assert_int_equal(sp_store_foreach(st, SP_KIND_NUMBER, sum_cb, &sum, NULL), 0);
	assert_true(sum == 40960);
	fill_numbers(st, 1, 0); /* the same keys again, and counters */
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44200", &a), 0);
	assert_true(a.reports[0].count == 2);
	struct sp_feed_result res;
	int fed = 0;
	assert_int_equal(sp_store_feed(st, SP_KIND_NUMBER, 0, 100000, feed_count_cb, &fed, &res), 0);
	assert_int_equal(fed, 40960);
	struct sp_store_stats ss;
	assert_int_equal(sp_store_stats(st, &ss), 0);
	assert_true(ss.events == 45056 && ss.numbers == 40960);

	/* a transaction open in this process (here, this thread's walk) */
	struct reopen_in_walk r = { st, 0 };
	assert_int_equal(sp_store_foreach(st, SP_KIND_NUMBER, reopen_inside_cb, &r, NULL), 1);
	assert_int_equal(r.rc, -EBUSY);
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_store_reopen(st), -EBUSY);
	sp_wtxn_abort(tx);

	/* the path is no longer the store's file: it stays open as it is */
	char moved[160];
	snprintf(moved, sizeof(moved), "%s.moved", f->path);
	assert_int_equal(rename(f->path, moved), 0);
	assert_int_equal(sp_store_reopen(st), -ENOENT);
	assert_int_equal(access(f->path, F_OK), -1); /* nothing made there */
	assert_true(sp_store_is_open(st));
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44200", &a), 0);
	fill_numbers(st, 1, 0);
	write_file(f->path, "not this", 8); /* another file there */
	assert_int_equal(sp_store_reopen(st), -ESTALE);
	assert_true(sp_store_is_open(st));
	assert_int_equal(rename(moved, f->path), 0);
	assert_int_equal(sp_store_reopen(st), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44200", &a), 0);
	assert_true(a.reports[0].count == 3);
	sp_store_close(st);

	/* what it wrote is all there for the next open */
	st = open_store(f->path, true, 0);
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "44204095", &a), 0);
	assert_true(a.reports[0].count == 3);
	sp_store_close(st);
}

struct reopen_reader {
	sp_store *st;
	atomic_bool stop;
	atomic_long reads, failures;
};

static void *reopen_reader_main(void *arg)
{
	struct reopen_reader *r = arg;
	sp_agg a;
	while (!atomic_load(&r->stop)) {
		int rc = sp_store_get(r->st, SP_KIND_NUMBER, "44200", &a);
		if (rc != 0 || a.reports[0].count < 1)
			atomic_fetch_add(&r->failures, 1);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

/* Readers in other threads never see the environment change under them:
 * each read succeeds, and reopening waits for a moment with none. */
static void test_store_reopen_concurrent(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	fill_numbers(st, 1, 0);
	struct reopen_reader r = { .st = st };
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reopen_reader_main, &r), 0);
	int reopened = 0;
	for (int i = 0; i < 200 && reopened < 20; i++) {
		sp_event *e = ev("203.0.113.2", "+44200", "", "ua", 0);
		add(st, &e, 1);
		if (sp_store_reopen(st) == 0)
			reopened++;
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_true(reopened > 0);
	assert_true(atomic_load(&r.reads) > 0);
	assert_int_equal(atomic_load(&r.failures), 0);
	sp_store_close(st);
}

/* A prepared event stores and folds as the event itself would, and reads
 * back as it; setting its time changes the record too. */
static void test_prepared_events(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 64 << 20);
	uint64_t now = sp_now_ns();
	sp_event *e = ev("2001:db8::1:0:0:5", "+441234", "00449876", "ua-x", now);
	strcpy(e->method, "REGISTER");
	sp_prepared *p = sp_event_prepare(e);
	assert_non_null(p);
	assert_true(sp_prepared_local(p) && sp_prepared_time(p) == now);
	sp_prepared_set_time(p, now + 7);
	sp_event d;
	assert_int_equal(sp_prepared_event(p, &d), 0);
	assert_true(d.ts_ns == now + 7);
	assert_string_equal(d.src_ip, e->src_ip);
	assert_string_equal(d.user_agent, "ua-x");
	assert_int_equal(d.raw_len, e->raw_len);
	assert_memory_equal(d.raw, e->raw, e->raw_len);
	sp_event *peer = ev("203.0.113.60", "", "", "", now + 8);
	strcpy(peer->origin, "peerkey");
	sp_prepared *pp = sp_event_prepare(peer);
	assert_false(sp_prepared_local(pp));
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	sp_prepared *both[2] = { p, pp };
	assert_int_equal(sp_wtxn_add_prepared(tx, both, 2), 0);
	assert_int_equal(sp_wtxn_fold(tx), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	free(p);
	free(pp);
	free(peer);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "2001:db8::1:0:0:5", &a), 0);
	assert_true(a.reports[0].count == 1 && a.reports[0].first_ns == now + 7);
	assert_int_equal(a.methods, sp_method_bit("REGISTER"));
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "441234", &a), 0);
	assert_int_equal(a.n_raws, 1);
	assert_string_equal(a.raws[0], "+441234");
	assert_int_equal(sp_store_get(st, SP_KIND_NUMBER, "449876", &a), 0);
	assert_string_equal(a.raws[0], "00449876");
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.60", &a), 0);
	assert_string_equal(a.reports[0].reporter, "peerkey");
	uint64_t got[4], *gp = got;
	assert_int_equal(sp_store_foreach_event(st, 0, ts_cb, &gp, NULL), 0);
	assert_true(gp - got == 2 && got[0] == now + 7 && got[1] == now + 8);
	free(e);
	sp_store_close(st);
}

/* A child process that holds the store's write lock until told to let go:
 * the writer in this process can then commit nothing. */
struct lock_holder {
	pid_t pid;
	int to_child, from_child;
};

/* Forks the child; it waits for take_write_lock(). Call before opening any
 * LMDB handle here: a child must not inherit one. */
static void fork_lock_holder(const char *path, struct lock_holder *h)
{
	int to_child[2], to_parent[2];
	char c;
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	h->pid = fork();
	if (h->pid == 0) {
		sp_store *cs;
		sp_wtxn *tx;
		struct sp_store_options o = { .path = path, .batch_max = 16 };
		if (read(to_child[0], &c, 1) != 1)
			_exit(1);
		if (sp_store_open(&cs, &o) || sp_wtxn_begin(cs, &tx))
			_exit(1);
		if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(1);
		sp_wtxn_abort(tx);
		sp_store_close(cs);
		_exit(0);
	}
	h->to_child = to_child[1];
	h->from_child = to_parent[0];
}

static void take_write_lock(struct lock_holder *h)
{
	char c;
	assert_int_equal(write(h->to_child, "x", 1), 1);
	assert_int_equal(read(h->from_child, &c, 1), 1);
}

static void release_write_lock(struct lock_holder *h)
{
	int status;
	assert_int_equal(write(h->to_child, "x", 1), 1);
	assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* With the write lock held elsewhere the writer cannot commit: the queue
 * fills, later events are dropped and counted, and nothing else is lost.
 * The queue is bounded in events and in bytes. */
static void queue_full_case(struct fixture *f, size_t queue_max, size_t bytes_max, int submit,
			    int min_dropped)
{
	struct lock_holder h;
	fork_lock_holder(f->path, &h);
	sp_store *st = open_store(f->path, false, 64 << 20); /* creates the store */
	take_write_lock(&h);
	sp_writer *w;
	struct sp_writer_options o = { .queue_max = queue_max, .queue_bytes_max = bytes_max,
				       .batch_max = 16 };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	int dropped = 0;
	for (int i = 0; i < submit;) {
		if (i % 2) { /* one at a time, and in batches of up to 10 */
			int rc = sp_writer_submit(w, ev("203.0.113.9", "", "", "", 0));
			assert_true(rc == 0 || rc == SP_EQUEUEFULL);
			dropped += rc == SP_EQUEUEFULL;
			i++;
			continue;
		}
		sp_event *evs[10];
		int n = submit - i < 10 ? submit - i : 10;
		for (int k = 0; k < n; k++)
			evs[k] = ev("203.0.113.9", "", "", "", 0);
		size_t q = sp_writer_submit_many(w, evs, (size_t)n);
		assert_true(q <= (size_t)n);
		dropped += n - (int)q;
		i += n;
	}
	assert_true(dropped >= min_dropped);
	release_write_lock(&h);
	sp_writer_flush(w);
	struct sp_writer_stats s;
	sp_writer_get_stats(w, &s);
	assert_true(s.dropped_queue_full == (uint64_t)dropped);
	assert_true(s.committed + s.dropped_queue_full == (uint64_t)submit);
	assert_true(s.queue_len == 0 && s.queue_bytes == 0);
	sp_writer_stop(w);
	uint64_t v;
	sp_store_counter_get(st, "events_dropped_queue_full", &v);
	assert_true(v == (uint64_t)dropped); /* visible to `sentrypeer stats` */
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.9", &a), 0);
	assert_true(a.reports[0].count == s.committed);
	sp_store_close(st);
}

static void test_writer_queue_full(void **state)
{
	queue_full_case(*state, 64, 64 << 20, 64 + 16 + 100, 100);
}

static void test_writer_queue_memory_bound(void **state)
{
	/* room for about 50 events by memory, 100000 by count: the queue
	 * holds prepared records */
	sp_event *e = ev("203.0.113.9", "", "", "", 0);
	sp_prepared *p = sp_event_prepare(e);
	size_t one = sp_prepared_size(p);
	assert_true(one < sizeof(sp_event)); /* smaller than the event */
	free(p);
	free(e);
	queue_full_case(*state, 100000, 50 * one, 50 + 16 + 200, 200);
}

static void test_map_full(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 1 << 20); /* 1 MiB */
	char big[8000];
	uint32_t x = 12345; /* messages that do not compress (sp_raw.h) */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(33 + (x = x * 1103515245u + 12345u) % 94);
	int committed = 0, rc = 0;
	for (int round = 0; round < 1000 && rc == 0; round++) {
		sp_event *evs[4];
		for (int i = 0; i < 4; i++) {
			evs[i] = sp_event_new(big, sizeof(big), sizeof(big));
			snprintf(evs[i]->src_ip, sizeof(evs[i]->src_ip), "203.0.113.%d", round % 250);
		}
		sp_wtxn *tx;
		assert_int_equal(sp_wtxn_begin(st, &tx), 0);
		rc = sp_wtxn_add_events(tx, evs, 4);
		if (rc == 0)
			rc = sp_wtxn_commit(tx);
		else
			sp_wtxn_abort(tx);
		for (int i = 0; i < 4; i++)
			free(evs[i]);
		if (rc == 0)
			committed += 4;
	}
	assert_int_equal(rc, MDB_MAP_FULL);
	assert_non_null(strstr(sp_strerror(rc), "full"));
	assert_true(committed > 0);
	sp_store_close(st);

	/* everything committed before is there, and the store still opens */
	st = open_store(f->path, true, 0);
	struct sp_store_stats s;
	assert_int_equal(sp_store_stats(st, &s), 0);
	assert_true(s.events == (uint64_t)committed);
	sp_store_close(st);

	/* the writer thread survives a full store and counts what it lost */
	st = open_store(f->path, false, 1 << 20);
	sp_writer *w;
	struct sp_writer_options o = { 0 };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	for (int i = 0; i < 20; i++)
		sp_writer_submit(w, sp_event_new(big, sizeof(big), sizeof(big)));
	sp_writer_flush(w);
	struct sp_writer_stats ws;
	sp_writer_get_stats(w, &ws);
	assert_true(ws.dropped_store > 0);
	assert_int_equal(ws.last_error, MDB_MAP_FULL);
	assert_true(ws.committed + ws.dropped_store == 20);
	sp_writer_stop(w);
	sp_store_close(st);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A store too full to fold into: the writer tries again after
 * fold_interval, not in a loop (it spun a core before). */
static void test_map_full_fold_backs_off(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 1 << 20); /* 1 MiB */
	int rc = 0, n = 0;
	while (rc == 0) { /* events with distinct sources, never folded */
		sp_event *evs[16];
		for (int i = 0; i < 16; i++, n++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "10.%d.%d.%d", n >> 16, (n >> 8) & 255, n & 255);
			evs[i] = ev(ip, "", "", "", 0);
		}
		sp_wtxn *tx;
		assert_int_equal(sp_wtxn_begin(st, &tx), 0);
		rc = sp_wtxn_add_events(tx, evs, 16);
		if (rc == 0)
			rc = sp_wtxn_commit(tx);
		else
			sp_wtxn_abort(tx);
		for (int i = 0; i < 16; i++)
			free(evs[i]);
	}
	assert_true(sp_store_pending(st) > 100);
	sp_writer *w;
	struct sp_writer_options o = { .fold_interval_ns = SP_NS_PER_SEC / 5 };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	struct timespec a, b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	struct timespec one = { 1, 0 };
	nanosleep(&one, NULL);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	double cpu = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	struct sp_writer_stats ws;
	sp_writer_get_stats(w, &ws);
	assert_int_equal(ws.last_error, MDB_MAP_FULL); /* it did try */
	assert_true(cpu < 0.3); /* a second, some tries: not a spinning core */
	sp_writer_stop(w);
	sp_store_close(st);
}

/* A flood of big messages from one source (every batch the writer takes
 * is large) shows in its aggregate while it lasts: fold rounds move in
 * every transaction, whatever the size of its batch. */
static void test_fold_moves_under_big_batches(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 2u << 30);
	sp_writer *w;
	struct sp_writer_options o = { .fold_interval_ns = SP_NS_PER_SEC / 10, .queue_max = 1 << 16,
				       .queue_bytes_max = 256u << 20 };
	enum { SIZE = 30000 };
	char *big = malloc(SIZE);
	memset(big, 'x', SIZE);
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	uint64_t t0 = sp_mono_ns(), seen = 0;
	struct sp_writer_stats ws;
	/* bursts far ahead of the writer: every batch it takes is large */
	while (sp_mono_ns() - t0 < 4 * SP_NS_PER_SEC && seen == 0) {
		sp_writer_get_stats(w, &ws);
		if (ws.queue_len < 2000) {
			for (int i = 0; i < 500; i++) {
				sp_event *e = sp_event_new(big, SIZE, SIZE);
				strcpy(e->src_ip, "203.0.113.99");
				sp_writer_submit(w, e);
			}
		}
		sp_agg a;
		if (sp_store_get(st, SP_KIND_IP, "203.0.113.99", &a) == 0)
			seen = a.reports[0].count;
	}
	assert_true(seen > 0); /* folded while the flood went on */
	sp_writer_flush(w);
	sp_writer_get_stats(w, &ws);
	sp_writer_stop(w);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.99", &a), 0);
	assert_true(a.reports[0].count == ws.committed);
	sp_store_close(st);
	free(big);
}

/* A schema 1 store (messages stored as they are) reads as it is; a writer
 * marks it 2 (messages may be compressed), and reads both kinds. */
static void test_schema_upgrade(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 16 << 20);
	sp_event *e = ev("203.0.113.77", "441234", "441234", "friendly-scanner", 0);
	sp_event *evs[1] = { e };
	r_commit(st, evs, 1, 0);
	sp_store_close(st);

	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t one[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	MDB_val sk = { 6, "schema" }, sv = { 8, one };
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &sk, &sv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	struct sp_store_stats s;
	st = open_store(f->path, true, 0);
	assert_int_equal(sp_store_stats(st, &s), 0);
	assert_int_equal(s.schema, 1);
	sp_store_close(st);
	st = open_store(f->path, false, 16 << 20);
	assert_int_equal(sp_store_stats(st, &s), 0);
	assert_int_equal(s.schema, SP_STORE_SCHEMA);
	assert_int_equal(s.schema, 2);
	int n = 0;
	assert_int_equal(sp_store_recent_events(st, 10, count_cb, &n), 0);
	assert_int_equal(n, 1);
	sp_store_close(st);
}

static void test_foreign_and_corrupt_files(void **state)
{
	struct fixture *f = *state;
	sp_store *st;
	struct sp_store_options ro = { .path = f->path, .readonly = true };
	struct sp_store_options rw = { .path = f->path, .map_size = 16 << 20 };

	char junk[65536];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7919 + 13);
	write_file(f->path, junk, sizeof(junk));
	assert_int_not_equal(sp_store_open(&st, &ro), 0);
	assert_int_not_equal(sp_store_open(&st, &rw), 0);
	write_file(f->path, "", 0); /* empty file: refused, not silently initialised... */
	assert_int_not_equal(sp_store_open(&st, &ro), 0);
	unlink(f->path);

	/* some other program's LMDB file */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char lock[160];
	snprintf(lock, sizeof(lock), "%s-lock", f->path);
	unlink(lock);
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "accounts", MDB_CREATE, &dbi), 0);
	MDB_val k = { 3, "bob" }, v = { 2, "42" };
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(sp_store_open(&st, &ro), SP_EFOREIGN);
	assert_int_equal(sp_store_open(&st, &rw), SP_EFOREIGN);
	unlink(f->path);
	unlink(lock);

	/* a store from a newer schema is refused, read-only or not */
	st = open_store(f->path, false, 16 << 20);
	sp_store_close(st);
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint8_t nine[8] = { 0, 0, 0, 0, 0, 0, 0, 99 };
	MDB_val sk = { 6, "schema" }, sv = { 8, nine };
	assert_int_equal(mdb_put(txn, dbi, &sk, &sv, 0), 0);
	/* and a record that no longer decodes */
	MDB_dbi ip;
	assert_int_equal(mdb_dbi_open(txn, "ip", 0, &ip), 0);
	MDB_val bk = { 11, "203.0.113.1" }, bv = { 5, "\xdd\xff\xff\xff\xff" };
	assert_int_equal(mdb_put(txn, ip, &bk, &bv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(sp_store_open(&st, &ro), SP_ESCHEMA);
	assert_int_equal(sp_store_open(&st, &rw), SP_ESCHEMA);
	assert_non_null(strstr(sp_strerror(SP_ESCHEMA), "newer"));

	/* back to our schema: the corrupt record is reported, skipped, replaced */
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	nine[7] = SP_STORE_SCHEMA;
	assert_int_equal(mdb_put(txn, dbi, &sk, &sv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	st = open_store(f->path, false, 16 << 20);
	sp_agg a;
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.1", &a), SP_ECORRUPT);
	uint64_t corrupt = 0;
	int n = 0;
	assert_int_equal(sp_store_foreach(st, SP_KIND_IP, agg_count_cb, &n, &corrupt), 0);
	assert_true(n == 0 && corrupt == 1);
	struct sp_sweep_stats acc = { 0 };
	while (sp_store_sweep_step(st, sp_now_ns(), 100, &acc) == 1)
		;
	assert_true(acc.aggs_deleted == 0); /* never deletes what it cannot read */
	sp_event *evs[1] = { ev("203.0.113.1", "", "", "", 0) };
	add(st, evs, 1);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "203.0.113.1", &a), 0);
	assert_true(a.reports[0].count == 1);
	sp_store_close(st);
}

/* Another process reads while this one writes: every read succeeds and
 * counts only grow (snapshot isolation across processes). */
static void test_concurrent_reader_process(void **state)
{
	struct fixture *f = *state;
	sp_store *st = open_store(f->path, false, 256 << 20);
	sp_event *first[1] = { ev("203.0.113.77", "", "", "", 0) };
	add(st, first, 1);
	sp_store_close(st);

	int go[2];
	char c;
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	if (pid == 0) {
		sp_store *rs;
		if (read(go[0], &c, 1) != 1)
			_exit(9);
		struct sp_store_options o = { .path = f->path, .readonly = true };
		uint64_t last = 0;
		int reads = 0;
		if (sp_store_open(&rs, &o))
			_exit(10);
		uint64_t until = sp_mono_ns() + 3 * SP_NS_PER_SEC;
		while (sp_mono_ns() < until) {
			sp_agg a;
			if (sp_store_get(rs, SP_KIND_IP, "203.0.113.77", &a))
				_exit(11);
			if (a.reports[0].count < last)
				_exit(12);
			last = a.reports[0].count;
			reads++;
			if (last == 50001)
				break;
		}
		sp_store_close(rs);
		_exit(reads > 10 && last == 50001 ? 0 : 13);
	}
	st = open_store(f->path, false, 256 << 20);
	assert_int_equal(write(go[1], "x", 1), 1);
	sp_writer *w;
	struct sp_writer_options o = { .queue_max = 1 << 17, .batch_max = 1000 };
	assert_int_equal(sp_writer_start(&w, st, &o), 0);
	for (int i = 0; i < 50000; i++)
		assert_int_equal(sp_writer_submit(w, ev("203.0.113.77", "", "", "", 0)), 0);
	sp_writer_stop(w);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	sp_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_fold_into_aggregates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_feed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_feed_backfill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_events_and_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_overflow_folds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_round_crash_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_round_crash_mid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_round_crash_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_round_late_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_async_crash_sorting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_async_crash_mid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_async_crash_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_async_late_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_outputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_catch_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepared_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_reopen_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_time_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_queue_memory_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full_fold_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_moves_under_big_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_and_corrupt_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reader_process, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
