/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The dashboard: its files (compiled in from src/dashboard/ by embed.py)
 * and GET /api/v1/summary, what the page shows besides recent events.
 *
 * The summary walks every aggregate (top addresses, numbers and user
 * agents; local and peer counts), which is too slow for a request thread
 * on a large store. One background thread recomputes it, only while
 * someone asked for it in the last 30 s, at most every 2 s and never
 * spending more than a fifth of its time on it; requests get the last one.
 * Events over time come from the event keys (sp_store_event_times), read
 * incrementally into one bucket a minute over the last 24 hours.
 */
#include "api_internal.h"
#include "render.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "sp_thread.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TL_BUCKETS 1440                    /* minutes in a day */
#define TL_BUCKET_NS (60 * SP_NS_PER_SEC)
#define TL_MAX_PER_RUN 2000000             /* event keys read per recompute */
#define WATCH_NS (30 * SP_NS_PER_SEC)      /* recompute while asked for within this */
#define MIN_INTERVAL_NS (2 * SP_NS_PER_SEC)
#define TOP_N 10
#define UA_SLOTS 4096                      /* distinct user agents counted; the rest are "other" */

struct api_summary {
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *json;
	size_t len;
	uint64_t wanted_ns, computed_ns, cost_ns;
	/* the thread's own */
	struct sp_event_pos pos;
	bool pos_set;
	uint64_t stamp[TL_BUCKETS];
	uint64_t counts[TL_BUCKETS];
};

/* ---- one walk over the aggregates -------------------------------------- */

struct top {
	char key[SP_KEY_MAX];
	uint64_t count, last;
	bool local;
	unsigned peers;
};

struct ua_slot {
	char ua[SP_UA_MAX];
	uint64_t n;
};

struct walk {
	uint64_t now, retention;
	uint64_t local_only, peers_only, both, expired;
	struct top top[TOP_N];
	unsigned n_top;
	struct ua_slot *uas; /* NULL: not counted (numbers) */
	size_t n_uas;
	uint64_t uas_other;
};

static void top_add(struct walk *w, const sp_agg *a, const struct sp_agg_summary *s)
{
	unsigned i = w->n_top;
	if (i == TOP_N) {
		if (s->count <= w->top[TOP_N - 1].count)
			return;
		i = TOP_N - 1;
	} else {
		w->n_top++;
	}
	while (i > 0 && w->top[i - 1].count < s->count) {
		w->top[i] = w->top[i - 1];
		i--;
	}
	struct top *t = &w->top[i];
	snprintf(t->key, sizeof(t->key), "%s", a->key);
	t->count = s->count;
	t->last = s->last_ns;
	t->local = s->local;
	t->peers = s->peers;
}

static uint32_t str_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h ^ (h >> 15);
}

static void ua_add(struct walk *w, const char *ua)
{
	uint32_t i = str_hash(ua) & (UA_SLOTS - 1);
	for (unsigned probes = 0; probes < UA_SLOTS; probes++, i = (i + 1) & (UA_SLOTS - 1)) {
		struct ua_slot *s = &w->uas[i];
		if (!s->ua[0]) {
			if (w->n_uas >= UA_SLOTS / 4 * 3)
				break; /* full enough: counted as other */
			snprintf(s->ua, sizeof(s->ua), "%s", ua);
			s->n = 1;
			w->n_uas++;
			return;
		}
		if (strcmp(s->ua, ua) == 0) {
			s->n++;
			return;
		}
	}
	w->uas_other++;
}

static int walk_one(const sp_agg *a, void *ud)
{
	struct walk *w = ud;
	struct sp_agg_summary s;
	if (!sp_agg_summarize(a, SP_SOURCE_ALL, w->now, w->retention, &s)) {
		w->expired++;
		return 0;
	}
	if (s.local && s.peers)
		w->both++;
	else if (s.local)
		w->local_only++;
	else
		w->peers_only++;
	top_add(w, a, &s);
	if (w->uas)
		for (unsigned i = 0; i < a->n_uas; i++)
			if (a->uas[i][0])
				ua_add(w, a->uas[i]);
	return 0;
}

static json_t *time_or_null(uint64_t ns)
{
	char t[SP_TIMESTAMP_LEN];
	return ns ? json_string(sp_timestamp_format(ns, t)) : json_null();
}

static json_t *top_json(const struct walk *w)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < w->n_top; i++)
		json_array_append_new(arr, json_pack("{s:o, s:I, s:o, s:b, s:i}", "key",
						     sp_json_string_lossy(w->top[i].key, strlen(w->top[i].key)),
						     "count", (json_int_t)w->top[i].count,
						     "last_seen", time_or_null(w->top[i].last),
						     "local", w->top[i].local, "peers", (int)w->top[i].peers));
	return arr;
}

static json_t *split_json(const struct walk *w)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "local_only", (json_int_t)w->local_only,
			 "peers_only", (json_int_t)w->peers_only, "both", (json_int_t)w->both,
			 "expired", (json_int_t)w->expired);
}

static int cmp_ua(const void *a, const void *b)
{
	const struct ua_slot *x = a, *y = b;
	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->ua, y->ua);
}

static json_t *uas_json(struct walk *w)
{
	json_t *arr = json_array();
	qsort(w->uas, UA_SLOTS, sizeof(*w->uas), cmp_ua); /* empty slots (n 0) sort last */
	for (unsigned i = 0; i < TOP_N && i < UA_SLOTS && w->uas[i].n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:I}", "user_agent",
						     sp_json_string_lossy(w->uas[i].ua, strlen(w->uas[i].ua)),
						     "addresses", (json_int_t)w->uas[i].n));
	return arr;
}

/* ---- events over time ------------------------------------------------------ */

static void tl_add(uint64_t ts, void *ud)
{
	struct api_summary *s = ud;
	uint64_t m = ts / TL_BUCKET_NS, i = m % TL_BUCKETS;
	if (s->stamp[i] != m) {
		if (s->stamp[i] > m)
			return; /* older than the bucket's minute: outside the window */
		s->stamp[i] = m;
		s->counts[i] = 0;
	}
	s->counts[i]++;
}

static json_t *timeline(sp_api *api, struct api_summary *s, uint64_t now)
{
	bool more = true;
	if (!s->pos_set) {
		sp_event_pos_init(&s->pos, now - (uint64_t)TL_BUCKETS * TL_BUCKET_NS);
		s->pos_set = true;
	}
	for (int runs = 0; more && runs < 4; runs++)
		if (sp_store_event_times(api->st, &s->pos, TL_MAX_PER_RUN / 4, tl_add, s, &more))
			break;
	uint64_t last = now / TL_BUCKET_NS, first = last - TL_BUCKETS + 1;
	json_t *counts = json_array();
	for (uint64_t m = first; m <= last; m++) {
		uint64_t i = m % TL_BUCKETS;
		json_array_append_new(counts, json_integer(s->stamp[i] == m ? (json_int_t)s->counts[i] : 0));
	}
	return json_pack("{s:o, s:i, s:o, s:b}", "start", time_or_null(first * TL_BUCKET_NS),
			 "bucket_seconds", (int)(TL_BUCKET_NS / SP_NS_PER_SEC), "counts", counts,
			 "partial", more);
}

/* ---- the summary ------------------------------------------------------------ */

static void add_live(const char *name, uint64_t v, void *ud)
{
	json_object_set_new(ud, name, json_integer((json_int_t)v));
}

static json_t *compute(sp_api *api, struct api_summary *sum)
{
	struct sp_store_stats st;
	struct sp_api_dht_status d;
	struct walk ips = { 0 }, nums = { 0 };
	uint64_t corrupt = 0, now = sp_now_ns();
	char dur[32];
	int rc;

	if ((rc = sp_store_stats(api->st, &st)))
		return json_pack("{s:b, s:s}", "ready", 0, "error", sp_strerror(rc));
	ips.now = nums.now = now;
	ips.retention = nums.retention = sp_store_retention(api->st);
	ips.uas = calloc(UA_SLOTS, sizeof(*ips.uas));
	if (!ips.uas)
		return NULL;
	if ((rc = sp_store_foreach(api->st, SP_KIND_IP, walk_one, &ips, &corrupt)) == 0)
		rc = sp_store_foreach(api->st, SP_KIND_NUMBER, walk_one, &nums, &corrupt);
	if (rc) {
		free(ips.uas);
		return json_pack("{s:b, s:s}", "ready", 0, "error", sp_strerror(rc));
	}
	bool dht = api_dht_status(api, &d);
	json_t *dj = json_pack("{s:s, s:b}", "state",
			       dht ? (d.connected ? "connected" : "not connected") : "off", "sharing",
			       d.sharing);
	if (dht) {
		json_t *more = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "peers_reporting",
					 (json_int_t)d.peers,
					 "puts", (json_int_t)d.puts, "puts_failed",
					 (json_int_t)d.puts_failed, "gets", (json_int_t)d.gets,
					 "values_accepted", (json_int_t)d.values_accepted,
					 "values_rejected", (json_int_t)d.values_rejected, "node_key_id",
					 d.node_id);
		json_object_update(dj, more);
		json_decref(more);
	}
	json_t *live = json_object();
	api_live_counters(api, add_live, live);

	json_t *j = json_pack(
		"{s:b, s:o, s:{s:s, s:s, s:o, s:I},"
		" s:{s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:I},"
		" s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:o}",
		"ready", 1, "generated", time_or_null(now),
		"node", "version", SP_VERSION, "node_id", api->node_id, "started",
		time_or_null(api->started_ns), "uptime_seconds",
		(json_int_t)((now - api->started_ns) / SP_NS_PER_SEC),
		"store", "events", (json_int_t)st.events, "ip_addresses", (json_int_t)st.ips,
		"numbers", (json_int_t)st.numbers, "bytes_used", (json_int_t)st.used_bytes,
		"bytes_map", (json_int_t)st.map_size, "retention",
		sp_duration_format(st.retention_ns, dur, sizeof(dur)), "oldest_event",
		time_or_null(st.events ? st.oldest_event_ns : 0), "newest_event",
		time_or_null(st.events ? st.newest_event_ns : 0), "corrupt_records",
		(json_int_t)corrupt,
		"sources", "ip_addresses", split_json(&ips), "numbers", split_json(&nums),
		"top_ip_addresses", top_json(&ips), "top_numbers", top_json(&nums),
		"user_agents", uas_json(&ips), "events_over_time", timeline(api, sum, now),
		"dht", dj, "counters", live);
	if (j && ips.uas_other)
		json_object_set_new(j, "user_agents_other", json_integer((json_int_t)ips.uas_other));
	free(ips.uas);
	return j;
}

static void *summary_main(void *arg)
{
	sp_api *api = arg;
	sp_thread_background("sp-api-summary");
	struct api_summary *s = api->summary;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		uint64_t now = sp_mono_ns();
		uint64_t interval = s->cost_ns * 5 > MIN_INTERVAL_NS ? s->cost_ns * 5 : MIN_INTERVAL_NS;
		bool watched = s->wanted_ns && now - s->wanted_ns < WATCH_NS;
		if (watched && (!s->json || now - s->computed_ns >= interval)) {
			pthread_mutex_unlock(&s->mu);
			json_t *j = compute(api, s);
			char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
			json_decref(j);
			uint64_t end = sp_mono_ns();
			pthread_mutex_lock(&s->mu);
			if (text) {
				free(s->json);
				s->json = text;
				s->len = strlen(text);
			}
			s->computed_ns = end;
			s->cost_ns = end - now;
			continue;
		}
		api_cond_wait_until(&s->cv, &s->mu, now + SP_NS_PER_SEC / 4);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int api_summary_start(sp_api *api)
{
	struct api_summary *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	api_cond_init_mono(&s->cv);
	api->summary = s;
	if (pthread_create(&s->thread, NULL, summary_main, api) != 0)
		return -EAGAIN;
	s->started = true;
	return 0;
}

void api_summary_stop(sp_api *api)
{
	struct api_summary *s = api->summary;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->json);
	free(s);
	api->summary = NULL;
}

enum MHD_Result api_route_summary(sp_api *api, struct MHD_Connection *c)
{
	static const char not_yet[] = "{\"ready\":false}\n";
	struct api_summary *s = api->summary;
	bool ok;
	enum MHD_Result ret = api_check_params(api, c, NULL, &ok);
	if (!ok)
		return ret;
	pthread_mutex_lock(&s->mu);
	s->wanted_ns = sp_mono_ns();
	pthread_cond_signal(&s->cv);
	char *copy = NULL;
	size_t len = s->len;
	if (s->json && (copy = malloc(len + 1))) {
		memcpy(copy, s->json, len);
		copy[len] = '\n';
	}
	pthread_mutex_unlock(&s->mu);
	if (!copy)
		return api_reply_static(api, c, 200, API_CT_JSON, not_yet, sizeof(not_yet) - 1, NULL);
	return api_reply(api, c, 200, API_CT_JSON, copy, len + 1);
}

/* ---- the files ---------------------------------------------------------------- */

const struct api_asset *api_asset_find(const char *path)
{
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (size_t i = 0; i < api_n_assets; i++)
		if (strcmp(api_assets[i].path, path) == 0)
			return &api_assets[i];
	return NULL;
}

enum MHD_Result api_route_asset(sp_api *api, struct MHD_Connection *c, const struct api_asset *a)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	/* the browser itself refuses anything not from this server */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; style-src 'self'; "
				"connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
				"form-action 'none'; frame-ancestors 'none'");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	api_count_status(api, 200);
	return ret;
}
