/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The routes answered on the request threads: health, lookups (upstream's
 * shapes and the full record), the change-cursor lists, recent events.
 * Each costs one LMDB read transaction and a bounded amount of work.
 */
#include "api_internal.h"
#include "export.h"
#include "json_stream.h"
#include "render.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum api_shape { SHAPE_COMPAT_IP, SHAPE_COMPAT_NUMBER, SHAPE_V1_IP, SHAPE_V1_NUMBER, SHAPE_V1_ANY };

static const char *const outcome_names[DHT_N_OUTCOMES] = {
	[DHT_OFF] = "off", [DHT_NOT_ASKED] = "not asked", [DHT_FOUND] = "found",
	[DHT_NOT_FOUND] = "not found", [DHT_TIMEOUT] = "timeout", [DHT_BUSY] = "busy",
	[DHT_ERROR] = "error", [DHT_STOPPING] = "stopping",
};

const char *api_dht_outcome_name(enum api_dht_outcome o) { return outcome_names[o]; }

/* A growing buffer the JSON writers (which take a FILE) write into. */
struct membuf {
	FILE *f;
	char *buf;
	size_t len;
};

static bool mb_open(struct membuf *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	return m->f != NULL;
}

/* Close and hand the bytes to a reply. */
static enum MHD_Result mb_reply(sp_api *api, struct MHD_Connection *c, unsigned status,
				struct membuf *m)
{
	if (fclose(m->f) != 0) {
		free(m->buf);
		return MHD_NO;
	}
	return api_reply(api, c, status, API_CT_JSON, m->buf, m->len);
}

/* The lookup answers' bytes: one FILE per request thread over a buffer kept
 * between requests. An open_memstream per lookup cost a calloc of 8 KiB, two
 * more allocations and a fclose, about a tenth of the lookup's own work. */
struct answer_out {
	FILE *f;
	char *buf;
	size_t len, cap;
};

/* A larger buffer (a record with many reports) is given back after use. */
#define ANSWER_KEEP_MAX 8192

static pthread_key_t answer_key;
static pthread_once_t answer_once = PTHREAD_ONCE_INIT;
static bool answer_key_ok;

static ssize_t answer_write(void *cookie, const char *p, size_t n)
{
	struct answer_out *o = cookie;
	if (n > o->cap - o->len) {
		size_t cap = o->cap ? o->cap : 2048;
		while (cap - o->len < n && cap <= SIZE_MAX / 4)
			cap *= 2;
		if (cap - o->len < n)
			return -1;
		char *b = realloc(o->buf, cap);
		if (!b)
			return -1;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return (ssize_t)n;
}

static void answer_out_free(void *v)
{
	struct answer_out *o = v;
	fclose(o->f);
	free(o->buf);
	free(o);
}

static void answer_key_init(void)
{
	answer_key_ok = pthread_key_create(&answer_key, answer_out_free) == 0;
}

/* This thread's answer stream, emptied; NULL when out of memory. */
static struct answer_out *answer_begin(void)
{
	pthread_once(&answer_once, answer_key_init);
	if (!answer_key_ok)
		return NULL;
	struct answer_out *o = pthread_getspecific(answer_key);
	if (!o) {
		if (!(o = calloc(1, sizeof(*o))))
			return NULL;
		o->f = fopencookie(o, "w", (cookie_io_functions_t){ .write = answer_write });
		if (!o->f || pthread_setspecific(answer_key, o)) {
			if (o->f)
				fclose(o->f);
			free(o);
			return NULL;
		}
	}
	o->len = 0;
	clearerr(o->f);
	return o;
}

/* Hand the bytes to a reply (MHD copies them). */
static enum MHD_Result answer_reply(sp_api *api, struct MHD_Connection *c, unsigned status,
				   struct answer_out *o)
{
	if (fflush(o->f) != 0 || ferror(o->f)) {
		/* out of memory: the stream may still hold this answer's bytes;
		 * the next request starts a new one */
		pthread_setspecific(answer_key, NULL);
		answer_out_free(o);
		return MHD_NO;
	}
	enum MHD_Result r = api_reply_copy(api, c, status, API_CT_JSON, o->buf, o->len);
	if (o->cap > ANSWER_KEEP_MAX) {
		free(o->buf);
		o->buf = NULL;
		o->cap = 0;
	}
	o->len = 0;
	return r;
}

/* The one rule for "listed" on every route that answers yes or no or
 * lists records: a live report from the source asked for. */
bool api_agg_listed(sp_api *api, const sp_agg *a, enum sp_source src, uint64_t now_ns,
		    struct sp_agg_summary *sum)
{
	return sp_agg_summarize(a, src, now_ns, sp_store_retention(api->st), sum) &&
	       (sum->local || sum->peers >= api->opt.min_reporters);
}

/* ---- health ---------------------------------------------------------- */

enum MHD_Result api_route_health(sp_api *api, struct MHD_Connection *c)
{
	struct sp_store_stats s;
	struct sp_api_dht_status ds;
	int rc = sp_store_stats(api->st, &s);
	const char *dht = api_dht_status(api, &ds) ? (ds.connected ? "connected" : "not connected")
						  : "off";
	/* upstream's three keys first; the store must answer for "OK" */
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "status", rc ? "ERROR" : "OK",
			      "message", rc ? sp_strerror(rc) : "Hello from SentryPeer!", "version",
			      SP_VERSION, "node_id", api->node_id, "uptime_seconds",
			      (json_int_t)((sp_now_ns() - api->started_ns) / SP_NS_PER_SEC), "dht", dht);
	return api_reply_json(api, c, rc ? 503 : 200, j);
}

/* ---- lookups --------------------------------------------------------- */

static void write_prefix(FILE *f, const char *query, bool listed, const char *by,
			 enum api_dht_outcome o)
{
	fputs_unlocked("{\"query\":", f);
	sp_json_write_string(f, query, strlen(query));
	fputs_unlocked(listed ? ",\"listed\":true,\"answered_by\":\"" : ",\"listed\":false,\"answered_by\":\"", f);
	fputs_unlocked(by, f);
	fputs_unlocked("\",\"dht\":\"", f);
	fputs_unlocked(outcome_names[o], f);
	fputc_unlocked('"', f);
}

static enum MHD_Result answer(sp_api *api, struct MHD_Connection *c, int shape,
			      const char *query, enum sp_kind kind, const char *key,
			      const sp_agg *a, enum sp_source src, enum api_dht_outcome o)
{
	bool listed = a != NULL;
	atomic_fetch_add_explicit(&api->c.lookups[kind], 1, memory_order_relaxed);
	if (listed)
		atomic_fetch_add_explicit(&api->c.lookups_listed[kind], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&api->c.dht[o], 1, memory_order_relaxed);

	struct answer_out *m = answer_begin();
	if (!m)
		return MHD_NO;
	switch (shape) {
	case SHAPE_COMPAT_IP:
	case SHAPE_COMPAT_NUMBER: {
		/* upstream's bodies: 200 with the key, 404 with a message */
		bool ip = shape == SHAPE_COMPAT_IP;
		if (listed) {
			fprintf(m->f, "{\"%s\":", ip ? "bad_actor_found" : "phone_number_found");
			sp_json_write_string(m->f, key, strlen(key));
			fputs("}\n", m->f);
		} else {
			fprintf(m->f, "{\"message\":\"%s\"}\n",
				ip ? "No bad actor found" : "No phone number found");
		}
		break;
	}
	default:
		write_prefix(m->f, query, listed, o == DHT_FOUND ? "dht" : "local store", o);
		if (listed) {
			/* the record's members follow ours in the same object */
			fputc(',', m->f);
			sp_agg_write_json_members(m->f, a, src, sp_now_ns(), sp_store_retention(api->st));
			fputs("}\n", m->f);
		} else {
			fputs(",\"kind\":", m->f);
			sp_json_write_string(m->f, sp_kind_name(kind), strlen(sp_kind_name(kind)));
			fputs(",\"key\":", m->f);
			sp_json_write_string(m->f, key, strlen(key));
			fputs("}\n", m->f);
		}
		break;
	}
	return answer_reply(api, c, listed ? 200 : 404, m);
}

static int parse_source(const char *v, enum sp_source *out)
{
	if (!v || !strcmp(v, "all"))
		*out = SP_SOURCE_ALL;
	else if (!strcmp(v, "local"))
		*out = SP_SOURCE_LOCAL;
	else if (!strcmp(v, "peers"))
		*out = SP_SOURCE_PEERS;
	else
		return SP_EPARSE;
	return 0;
}

static const char *const lookup_params[] = { "timeout", "source", NULL };

enum MHD_Result api_route_lookup(sp_api *api, struct MHD_Connection *c, void **con_cls,
				 int shape, const char *path, uint64_t start_ns)
{
	char key[SP_KEY_MAX], q[96];
	enum sp_kind kind = shape == SHAPE_COMPAT_NUMBER || shape == SHAPE_V1_NUMBER
				    ? SP_KIND_NUMBER : SP_KIND_IP;
	enum sp_source src = SP_SOURCE_ALL;
	uint64_t timeout = api->opt.dht_timeout_ns;
	bool v1 = shape >= SHAPE_V1_IP, ok;
	int rc;

	if (v1) {
		enum MHD_Result r = api_check_params(api, c, lookup_params, &ok);
		if (!ok)
			return r;
		if (parse_source(api_param(c, "source"), &src))
			return api_error(api, c, 400, "source '%s': expected all, local or peers",
					 api_quote(api_param(c, "source"), q, sizeof(q)));
	}
	const char *t = api_param(c, "timeout");
	if (t && sp_duration_parse(t, &timeout))
		return api_error(api, c, 400, "timeout '%s': expected a duration such as 300ms or 2s",
				 api_quote(t, q, sizeof(q)));
	if (timeout > API_DHT_TIMEOUT_MAX)
		timeout = API_DHT_TIMEOUT_MAX;

	if (strlen(path) > API_KEY_TEXT_MAX)
		return api_error(api, c, 400, "'%s' is too long for an IP address or a number",
				 api_quote(path, q, sizeof(q)));
	if (shape == SHAPE_V1_ANY)
		rc = sp_key_classify(path, &kind, key);
	else if (kind == SP_KIND_IP)
		rc = sp_ip_normalize(path, key, NULL);
	else
		rc = sp_number_normalize(path, key);
	if (rc)
		return api_error(api, c, 400, "'%s': %s", api_quote(path, q, sizeof(q)),
				 sp_strerror(rc));

	sp_agg a;
	struct sp_agg_summary sum;
	rc = sp_store_get(api->st, kind, key, &a);
	if (rc == 0 && api_agg_listed(api, &a, src, sp_now_ns(), &sum))
		return answer(api, c, shape, path, kind, key, &a, src,
			      api->has_dht ? DHT_NOT_ASKED : DHT_OFF);
	if (rc && rc != SP_ENOTFOUND) {
		log_warn("HTTP API: lookup %s: %s", key, sp_strerror(rc));
		return api_error(api, c, 500, "the store cannot be read: %s", sp_strerror(rc));
	}
	if (!api->has_dht)
		return answer(api, c, shape, path, kind, key, NULL, src, DHT_OFF);
	if (timeout == 0 || src == SP_SOURCE_LOCAL)
		return answer(api, c, shape, path, kind, key, NULL, src, DHT_NOT_ASKED);

	/* park the connection while the DHT looks; the deadline counts from
	 * when the request arrived, so the caller never waits longer */
	struct api_req *r = calloc(1, sizeof(*r));
	if (!r)
		return MHD_NO;
	struct api_dht_job *j = api_dht_reserve(api, c, kind, key, start_ns + timeout);
	if (!j) {
		free(r);
		return answer(api, c, shape, path, kind, key, NULL, src,
			      atomic_load(&api->stopping) ? DHT_STOPPING : DHT_BUSY);
	}
	r->start_ns = start_ns;
	r->job = j;
	r->kind = kind;
	r->shape = shape;
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->query, sizeof(r->query), "%s", path);
	*con_cls = r;
	MHD_suspend_connection(c);
	api_dht_enqueue(api, j);
	return MHD_YES;
}

enum MHD_Result api_lookup_resume(sp_api *api, struct MHD_Connection *c, struct api_req *r)
{
	if (!r->job)
		return MHD_NO;
	sp_agg a;
	struct sp_agg_summary sum;
	enum api_dht_outcome o = api_dht_result(api, r->job, &a);
	bool listed = o == DHT_FOUND &&
		      api_agg_listed(api, &a, SP_SOURCE_ALL, sp_now_ns(), &sum);
	if (o == DHT_FOUND && !listed)
		o = DHT_NOT_FOUND; /* nothing live in what came back */
	return answer(api, c, r->shape, r->query, r->kind, r->key, listed ? &a : NULL,
		      SP_SOURCE_ALL, o);
}

/* ---- lists with a change cursor ----------------------------------------- */

struct feed_ctx {
	sp_api *api;
	FILE *f;
	enum sp_source src;
	sp_addr_filter *filter;
	uint64_t now, retention;
	unsigned limit, n;
};

static int feed_item(uint64_t seq, const sp_agg *a, void *ud)
{
	struct feed_ctx *x = ud;
	struct sp_agg_summary sum;
	if (!api_agg_listed(x->api, a, x->src, x->now, &sum))
		return 0;
	if (a->kind == SP_KIND_IP && !sp_addr_filter_allows(x->filter, a->key))
		return 0;
	if (x->n)
		fputc(',', x->f);
	sp_agg_write_json(x->f, a, x->src, x->now, x->retention);
	return ++x->n == x->limit || ftell(x->f) >= API_BODY_SOFT_MAX;
}

/* "<epoch>.<number>": *reset when it is another store's. */
static int parse_cursor(sp_api *api, const char *v, uint64_t *after, bool *reset)
{
	*after = 0;
	*reset = false;
	if (!v || !*v)
		return 0;
	const char *dot = strchr(v, '.');
	if (!dot || dot - v != 8 || !dot[1] || strlen(dot + 1) > 20 ||
	    strspn(dot + 1, "0123456789") != strlen(dot + 1) ||
	    strspn(v, "0123456789abcdef") != 8)
		return SP_EPARSE;
	errno = 0;
	unsigned long long n = strtoull(dot + 1, NULL, 10);
	if (errno)
		return SP_EPARSE;
	if (strncmp(v, api->epoch, 8) != 0) {
		*reset = true; /* the store was replaced: from the start */
		return 0;
	}
	*after = n;
	return 0;
}

static int parse_limit(const char *v, unsigned def, unsigned max, unsigned *out)
{
	*out = def;
	if (!v)
		return 0;
	if (!*v || strlen(v) > 6 || strspn(v, "0123456789") != strlen(v))
		return SP_EPARSE;
	unsigned long n = strtoul(v, NULL, 10);
	if (n < 1 || n > max)
		return SP_EPARSE;
	*out = (unsigned)n;
	return 0;
}

static const char *const feed_params[] = { "after", "limit", "source", "include_private", NULL };

enum MHD_Result api_route_feed(sp_api *api, struct MHD_Connection *c, enum sp_kind kind)
{
	struct feed_ctx x = { 0 };
	struct sp_feed_result res;
	struct membuf items, m;
	uint64_t after;
	bool reset, ok;
	char q[96];
	int priv, rc;

	enum MHD_Result ret = api_check_params(api, c, feed_params, &ok);
	if (!ok)
		return ret;
	if (parse_cursor(api, api_param(c, "after"), &after, &reset))
		return api_error(api, c, 400, "after '%s': not a cursor from this API (use the "
					      "\"cursor\" of the last answer, or leave it out)",
				 api_quote(api_param(c, "after"), q, sizeof(q)));
	if (parse_limit(api_param(c, "limit"), API_LIST_LIMIT_DEFAULT, API_LIST_LIMIT_MAX, &x.limit))
		return api_error(api, c, 400, "limit '%s': expected 1 to %d",
				 api_quote(api_param(c, "limit"), q, sizeof(q)), API_LIST_LIMIT_MAX);
	if (parse_source(api_param(c, "source"), &x.src))
		return api_error(api, c, 400, "source '%s': expected all, local or peers",
				 api_quote(api_param(c, "source"), q, sizeof(q)));
	priv = api_param(c, "include_private") ? api_bool(api_param(c, "include_private")) : 0;
	if (priv < 0)
		return api_error(api, c, 400, "include_private: expected yes or no");

	if (!(x.filter = sp_addr_filter_new(priv == 1)))
		return MHD_NO;
	if (!mb_open(&items)) {
		sp_addr_filter_free(x.filter);
		return MHD_NO;
	}
	x.api = api;
	x.f = items.f;
	x.now = sp_now_ns();
	x.retention = sp_store_retention(api->st);
	rc = sp_store_feed(api->st, kind, after, (size_t)x.limit * 10 + 1000, feed_item, &x, &res);
	sp_addr_filter_free(x.filter);
	fclose(items.f);
	if (rc) {
		free(items.buf);
		return api_error(api, c, 500, "the store cannot be read: %s", sp_strerror(rc));
	}
	if (!mb_open(&m)) {
		free(items.buf);
		return MHD_NO;
	}
	fprintf(m.f, "{\"kind\":\"%s\",\"count\":%u,\"cursor\":\"%s.%" PRIu64 "\",\"more\":%s,",
		sp_kind_name(kind), x.n, api->epoch, res.last, res.more ? "true" : "false");
	if (reset)
		fputs("\"reset\":true,", m.f);
	fputs("\"items\":[", m.f);
	fwrite(items.buf, 1, items.len, m.f);
	fputs("]}\n", m.f);
	free(items.buf);
	return mb_reply(api, c, 200, &m);
}

/* ---- recent events ------------------------------------------------------- */

struct events_ctx {
	json_t *arr;
	bool raw;
	size_t bytes;
};

static json_t *lossy(const char *s)
{
	return sp_json_string_lossy(s, strlen(s));
}

static int event_item(const sp_event *e, void *ud)
{
	struct events_ctx *x = ud;
	char t[SP_TIMESTAMP_LEN], id[SP_UUID_LEN];
	json_t *o = json_pack("{s:s, s:s, s:o, s:i, s:o, s:i, s:s, s:o, s:o, s:o, s:o, s:s, s:o}",
			      "time", sp_timestamp_format(e->ts_ns, t), "id", sp_uuid_format(e->id, id),
			      "source_ip", lossy(e->src_ip), "source_port", (int)e->src_port,
			      "destination_ip", lossy(e->dst_ip), "destination_port", (int)e->dst_port,
			      "transport", sp_transport_name(e->transport) ? sp_transport_name(e->transport) : "",
			      "method", lossy(e->method), "request_uri_user", lossy(e->ruri_user),
			      "called_number", lossy(e->to_user), "user_agent", lossy(e->user_agent),
			      "mode", sp_mode_name(e->mode) ? sp_mode_name(e->mode) : "",
			      "origin", lossy(e->origin[0] ? e->origin : SP_REPORTER_LOCAL));
	if (!o)
		return -ENOMEM;
	if (x->raw)
		json_object_set_new(o, "raw", sp_json_string_lossy(e->raw ? e->raw : "", e->raw_len));
	json_array_append_new(x->arr, o);
	/* raw messages: at most about API_BODY_SOFT_MAX (each byte may take 6 as JSON) */
	x->bytes += 512 + (x->raw ? (size_t)e->raw_len * 6 : 0);
	return x->bytes >= API_BODY_SOFT_MAX;
}

static const char *const events_params[] = { "limit", "raw", NULL };

enum MHD_Result api_route_events(sp_api *api, struct MHD_Connection *c)
{
	struct events_ctx x = { 0 };
	unsigned limit;
	bool ok;
	char q[96];
	enum MHD_Result ret = api_check_params(api, c, events_params, &ok);
	if (!ok)
		return ret;
	if (parse_limit(api_param(c, "limit"), 20, API_EVENTS_LIMIT_MAX, &limit))
		return api_error(api, c, 400, "limit '%s': expected 1 to %d",
				 api_quote(api_param(c, "limit"), q, sizeof(q)), API_EVENTS_LIMIT_MAX);
	int raw = api_param(c, "raw") ? api_bool(api_param(c, "raw")) : 0;
	if (raw < 0)
		return api_error(api, c, 400, "raw: expected yes or no");
	x.raw = raw == 1;
	x.arr = json_array();
	int rc = sp_store_recent_events(api->st, limit, event_item, &x);
	if (rc < 0) { /* 1: stopped at the size cap */
		json_decref(x.arr);
		return api_error(api, c, 500, "the store cannot be read: %s", sp_strerror(rc));
	}
	return api_reply_json(api, c, 200,
			      json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(x.arr),
					"events", x.arr));
}
