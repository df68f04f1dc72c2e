/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Inside the HTTP API only: the handle, the request state, and what the
 * api_*.c files share. Internal functions are marked api_.
 */
#ifndef SP_API_INTERNAL_H
#define SP_API_INTERNAL_H

#include "api.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define API_CT_JSON "application/json"
#define API_CT_TEXT "text/plain; charset=utf-8"
#define API_KEY_TEXT_MAX 256   /* longest IP or number accepted in a path */
#define API_LIST_LIMIT_DEFAULT 100
#define API_LIST_LIMIT_MAX 1000
#define API_EVENTS_LIMIT_MAX 100
#define API_DHT_TIMEOUT_MAX (10 * SP_NS_PER_SEC)
/* Answers built in memory stop growing past this (a page ends early, with
 * the cursor where it stopped): a client that does not read holds at most
 * about this much per connection. */
#define API_BODY_SOFT_MAX (256 * 1024)

/* Status codes counted for /metrics. */
enum api_code {
	API_200, API_304, API_400, API_401, API_404, API_405, API_413, API_414, API_431,
	API_500, API_503, API_CODE_OTHER, API_N_CODES
};

/* How a DHT fallback ended, as the answer says it ("dht": ...). */
enum api_dht_outcome {
	DHT_OFF,        /* no DHT in this node */
	DHT_NOT_ASKED,  /* listed locally, or the caller asked for no wait */
	DHT_FOUND,
	DHT_NOT_FOUND,
	DHT_TIMEOUT,    /* the caller's time ran out first */
	DHT_BUSY,       /* too many lookups waiting: answered locally */
	DHT_ERROR,
	DHT_STOPPING,   /* the node is stopping */
	DHT_N_OUTCOMES
};
const char *api_dht_outcome_name(enum api_dht_outcome o);

struct api_counters {
	_Atomic uint64_t requests;
	_Atomic uint64_t codes[API_N_CODES];
	_Atomic uint64_t lookups[3];      /* by kind: [SP_KIND_IP], [SP_KIND_NUMBER] */
	_Atomic uint64_t lookups_listed[3];
	_Atomic uint64_t dht[DHT_N_OUTCOMES];
	_Atomic uint64_t streams, streams_refused, stream_bytes;
	_Atomic uint64_t connections;
};

struct api_dht_pool;
struct api_summary;
struct api_stream;

struct sp_api {
	sp_store *st;
	struct sp_api_options opt;
	struct sp_api_live live;
	char *token;
	size_t token_len;
	bool has_dht;
	struct sp_api_dht dht;
	struct MHD_Daemon **daemons;
	int *socks;
	char (*addrs)[64];    /* "[::1]:8082", for the log */
	size_t n_daemons;
	uint16_t port;
	uint64_t started_ns;
	char epoch[9];        /* cursor prefix: which store the numbers belong to */
	char node_id[SP_UUID_LEN];
	atomic_bool stopping;
	struct api_counters c;
	/* streams (api_stream.c) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned streams_live;   /* producer threads */
	unsigned streams_active; /* of which still producing (the limit) */
	bool streams_closed;
	struct api_stream *streams;
	struct api_dht_pool *pool;   /* api_dht.c; NULL without a DHT */
	struct api_summary *summary; /* api_dash.c */
};

/* Per request, in MHD's con_cls: created only when a request outlives its
 * first call (a parked DHT lookup). */
struct api_req {
	uint64_t start_ns; /* monotonic, when its headers were in */
	struct api_dht_job *job;
	char query[API_KEY_TEXT_MAX + 1];
	enum sp_kind kind;
	char key[SP_KEY_MAX];
	int shape; /* enum api_shape, api_routes.c */
};

/* ---- api.c: waiting ---- */
/* A condition variable whose waits run on CLOCK_MONOTONIC (sp_mono_ns). */
void api_cond_init_mono(pthread_cond_t *cv);
/* Wait for a signal or until mono_ns (an sp_mono_ns() time). */
void api_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t mono_ns);

/* ---- api.c: replies ---- */
/* Queue a reply whose body is malloc'd (taken over, also on failure). */
enum MHD_Result api_reply(sp_api *api, struct MHD_Connection *c, unsigned status,
			  const char *ctype, char *body, size_t len);
/* Queue a reply from bytes MHD copies (the caller keeps its buffer). */
enum MHD_Result api_reply_copy(sp_api *api, struct MHD_Connection *c, unsigned status,
			       const char *ctype, const void *body, size_t len);
/* Queue a reply from static bytes. */
enum MHD_Result api_reply_static(sp_api *api, struct MHD_Connection *c, unsigned status,
				 const char *ctype, const void *body, size_t len,
				 const char *cache_control);
/* {"status":N,"error":"..."}; printf-style message. */
enum MHD_Result api_error(sp_api *api, struct MHD_Connection *c, unsigned status,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A jansson value as the body (decref'd). */
enum MHD_Result api_reply_json(sp_api *api, struct MHD_Connection *c, unsigned status,
			       void *json_value);
void api_count_status(sp_api *api, unsigned status);
/* A query parameter's value (NULL if absent); the name list is what the
 * route accepts: anything else is answered 400 by api_check_params. */
const char *api_param(struct MHD_Connection *c, const char *name);
enum MHD_Result api_check_params(sp_api *api, struct MHD_Connection *c,
				 const char *const *allowed, bool *ok);
/* Text safe to put in an error message: printable ASCII, at most 64 bytes. */
const char *api_quote(const char *s, char *buf, size_t len);
/* Yes/no query values; -1 when neither. */
int api_bool(const char *v);

/* ---- api_routes.c ---- */
/* Listed: a live report from src (the summary in *sum). Lookups, lists and
 * upstream's lists all decide with this. */
bool api_agg_listed(sp_api *api, const sp_agg *a, enum sp_source src, uint64_t now_ns,
		    struct sp_agg_summary *sum);
enum MHD_Result api_route_health(sp_api *api, struct MHD_Connection *c);
/* path: what follows the route prefix, e.g. "203.0.113.5"; v1: full record. */
enum MHD_Result api_route_lookup(sp_api *api, struct MHD_Connection *c, void **con_cls,
				 int shape, const char *path, uint64_t start_ns);
enum MHD_Result api_route_feed(sp_api *api, struct MHD_Connection *c, enum sp_kind kind);
enum MHD_Result api_route_events(sp_api *api, struct MHD_Connection *c);
/* A parked lookup's connection came back: answer it. */
enum MHD_Result api_lookup_resume(sp_api *api, struct MHD_Connection *c, struct api_req *r);

/* ---- api_dht.c ---- */
int api_dht_pool_start(sp_api *api);
/* Answer every parked lookup (DHT_STOPPING) and refuse new ones. */
void api_dht_pool_close(sp_api *api);
/* Join the threads and free; after the daemons stopped. */
void api_dht_pool_free(sp_api *api);
/* A slot for a lookup, or NULL when the queue is full or closing. The
 * caller suspends the connection, then calls api_dht_enqueue(). */
struct api_dht_job *api_dht_reserve(sp_api *api, struct MHD_Connection *c, enum sp_kind kind,
				    const char *key, uint64_t deadline_ns);
void api_dht_enqueue(sp_api *api, struct api_dht_job *j);
/* Once the connection is resumed: the outcome, and the record if found. */
enum api_dht_outcome api_dht_result(sp_api *api, struct api_dht_job *j, sp_agg *out);
void api_dht_release(sp_api *api, struct api_dht_job *j);
/* Status for /metrics and the dashboard; false without a DHT. */
bool api_dht_status(sp_api *api, struct sp_api_dht_status *out);

/* ---- api_stream.c ---- */
enum MHD_Result api_route_export(sp_api *api, struct MHD_Connection *c, bool head);
/* Upstream's /ip-addresses and /numbers: every record, streamed. */
enum MHD_Result api_route_compat_list(sp_api *api, struct MHD_Connection *c, enum sp_kind kind,
				      bool head);
void api_streams_close(sp_api *api);  /* abort every stream, refuse new ones */
void api_streams_wait(sp_api *api);   /* until every producer thread ended */

/* ---- api_metrics.c ---- */
enum MHD_Result api_route_metrics(sp_api *api, struct MHD_Connection *c);
/* The node's live counters by name (honeypot, listeners, writer), for the
 * dashboard too. */
void api_live_counters(sp_api *api, void (*fn)(const char *name, uint64_t v, void *ud), void *ud);

/* ---- api_dash.c ---- */
int api_summary_start(sp_api *api);
void api_summary_stop(sp_api *api);
enum MHD_Result api_route_summary(sp_api *api, struct MHD_Connection *c);
/* The dashboard's files, compiled in (dashboard/, embed.py). */
struct api_asset {
	const char *path, *ctype;
	const unsigned char *data;
	size_t len;
};
extern const struct api_asset api_assets[];
extern const size_t api_n_assets;
const struct api_asset *api_asset_find(const char *path);
enum MHD_Result api_route_asset(sp_api *api, struct MHD_Connection *c, const struct api_asset *a);

#endif
