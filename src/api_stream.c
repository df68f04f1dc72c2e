/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Streamed answers: /api/v1/export and upstream's full lists. A producer
 * thread walks one store snapshot (sp_export, the same code as `sentrypeer
 * export`) and writes through a FILE into a bounded ring; MHD's content
 * reader takes from the ring. When the ring is empty the connection is
 * parked (suspended) until the producer writes; when it is full the
 * producer waits for the client. Memory per stream is the ring, whatever
 * the size of the store; a producer stuck behind a client that does not
 * read gives up at stream_timeout_ns, so no snapshot is held for ever.
 */
#include "api_internal.h"
#include "export.h"
#include "json_stream.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "sp_thread.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_SIZE (256 * 1024)
#define READ_BLOCK (32 * 1024)

struct api_stream;
typedef int (*produce_fn)(struct api_stream *s, FILE *out);

struct api_stream {
	sp_api *api;
	struct api_stream *prev, *next; /* api->streams */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the producer waits for room */
	char *ring;
	size_t rd, len;
	bool finished, failed, aborted, suspended;
	struct MHD_Connection *conn;
	int refs; /* the response, the producer */
	uint64_t deadline;
	produce_fn produce;
	/* what to produce */
	struct sp_export_options opt;
	char nft_table[32], set_prefix[32];
	enum sp_kind kind;
	bool include_private;
};

static void stream_unref(struct api_stream *s)
{
	pthread_mutex_lock(&s->mu);
	int left = --s->refs;
	pthread_mutex_unlock(&s->mu);
	if (left)
		return;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->ring);
	free(s);
}

/* Wake a parked connection (stream lock held). */
static void wake(struct api_stream *s)
{
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

/* The producer's FILE writes here. */
static ssize_t ring_write(void *cookie, const char *buf, size_t n)
{
	struct api_stream *s = cookie;
	size_t done = 0;
	pthread_mutex_lock(&s->mu);
	while (done < n) {
		if (s->aborted)
			break;
		size_t room = RING_SIZE - s->len;
		if (room == 0) {
			uint64_t now = sp_mono_ns();
			if (now >= s->deadline) {
				s->aborted = true; /* the client does not read: let go of the snapshot */
				break;
			}
			api_cond_wait_until(&s->cv, &s->mu, now + SP_NS_PER_SEC);
			continue;
		}
		size_t wr = (s->rd + s->len) % RING_SIZE;
		size_t chunk = n - done;
		if (chunk > room)
			chunk = room;
		if (chunk > RING_SIZE - wr)
			chunk = RING_SIZE - wr;
		memcpy(s->ring + wr, buf + done, chunk);
		s->len += chunk;
		done += chunk;
		wake(s);
	}
	pthread_mutex_unlock(&s->mu);
	if (done < n) {
		errno = EPIPE;
		return done ? (ssize_t)done : -1;
	}
	return (ssize_t)n;
}

/* MHD's content reader. */
static ssize_t ring_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_stream *s = cls;
	ssize_t ret;
	pthread_mutex_lock(&s->mu);
	if (s->len) {
		size_t n = s->len < max ? s->len : max;
		if (n > RING_SIZE - s->rd)
			n = RING_SIZE - s->rd;
		memcpy(buf, s->ring + s->rd, n);
		s->rd = (s->rd + n) % RING_SIZE;
		s->len -= n;
		atomic_fetch_add_explicit(&s->api->c.stream_bytes, n, memory_order_relaxed);
		pthread_cond_signal(&s->cv);
		ret = (ssize_t)n;
	} else if (s->finished && !s->failed) {
		ret = MHD_CONTENT_READER_END_OF_STREAM;
	} else if (s->finished || s->aborted) {
		/* chunked: the client sees the body end without its last chunk */
		ret = MHD_CONTENT_READER_END_WITH_ERROR;
	} else {
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		ret = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* MHD is done with the response (sent, or the client went away). */
static void ring_free(void *cls)
{
	struct api_stream *s = cls;
	pthread_mutex_lock(&s->mu);
	s->aborted = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	stream_unref(s);
}

static void *producer_main(void *arg)
{
	struct api_stream *s = arg;
	sp_thread_background("sp-api-export");
	sp_api *api = s->api;
	sigset_t pipe_set;
	/* writes go to memory, but keep SIGPIPE off this thread in any case */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	cookie_io_functions_t io = { .write = ring_write };
	FILE *out = fopencookie(s, "w", io);
	int rc = -ENOMEM;
	if (out) {
		setvbuf(out, NULL, _IOFBF, 64 * 1024);
		rc = s->produce(s, out);
		if (fclose(out) != 0 && rc == 0)
			rc = -EIO;
	}
	if (rc && rc != -EIO)
		log_warn("HTTP API: a streamed answer stopped: %s", sp_strerror(rc));
	/* the slot is free before the client can see the end */
	pthread_mutex_lock(&api->mu);
	api->streams_active--;
	pthread_mutex_unlock(&api->mu);
	pthread_mutex_lock(&s->mu);
	s->finished = true;
	s->failed = rc != 0;
	wake(s);
	pthread_mutex_unlock(&s->mu);

	pthread_mutex_lock(&api->mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		api->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	api->streams_live--;
	pthread_cond_broadcast(&api->cv);
	pthread_mutex_unlock(&api->mu);
	stream_unref(s);
	return NULL;
}

/* Start a producer and queue its answer; 503 when too many run. */
static enum MHD_Result stream_start(sp_api *api, struct MHD_Connection *c, struct api_stream *s,
				    const char *ctype, const char *filename)
{
	pthread_attr_t attr;
	pthread_t t;

	s->api = api;
	s->conn = c;
	s->refs = 2;
	s->deadline = sp_mono_ns() + api->opt.stream_timeout_ns;
	pthread_mutex_init(&s->mu, NULL);
	api_cond_init_mono(&s->cv);
	if (!(s->ring = malloc(RING_SIZE))) {
		s->refs = 1;
		stream_unref(s);
		return MHD_NO;
	}

	pthread_mutex_lock(&api->mu);
	if (api->streams_closed || api->streams_active >= api->opt.max_exports) {
		bool closed = api->streams_closed;
		pthread_mutex_unlock(&api->mu);
		s->refs = 1;
		stream_unref(s);
		atomic_fetch_add_explicit(&api->c.streams_refused, 1, memory_order_relaxed);
		return api_error(api, c, 503, closed ? "the node is stopping"
						     : "%u exports are running already: try again",
				 api->opt.max_exports);
	}
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK,
								   ring_read, s, ring_free);
	if (!r) {
		pthread_mutex_unlock(&api->mu);
		s->refs = 1;
		stream_unref(s);
		return MHD_NO;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, producer_main, s) != 0) {
		pthread_attr_destroy(&attr);
		pthread_mutex_unlock(&api->mu);
		MHD_destroy_response(r); /* ring_free drops one reference */
		stream_unref(s);
		return api_error(api, c, 503, "cannot start a thread for the export: try again");
	}
	pthread_attr_destroy(&attr);
	s->next = api->streams;
	if (api->streams)
		api->streams->prev = s;
	api->streams = s;
	api->streams_live++;
	api->streams_active++;
	pthread_mutex_unlock(&api->mu);
	atomic_fetch_add_explicit(&api->c.streams, 1, memory_order_relaxed);

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (filename) {
		char cd[96];
		snprintf(cd, sizeof(cd), "inline; filename=\"%s\"", filename);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, cd);
	}
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	api_count_status(api, 200);
	return ret;
}

void api_streams_close(sp_api *api)
{
	pthread_mutex_lock(&api->mu);
	api->streams_closed = true;
	for (struct api_stream *s = api->streams; s; s = s->next) {
		pthread_mutex_lock(&s->mu);
		s->aborted = true;
		wake(s);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&api->mu);
}

void api_streams_wait(sp_api *api)
{
	pthread_mutex_lock(&api->mu);
	while (api->streams_live)
		pthread_cond_wait(&api->cv, &api->mu);
	pthread_mutex_unlock(&api->mu);
}

/* ---- /api/v1/export ------------------------------------------------- */

static int produce_export(struct api_stream *s, FILE *out)
{
	return sp_export(s->api->st, &s->opt, out, NULL);
}

static const char *format_ctype(enum sp_export_format f)
{
	switch (f) {
	case SP_FMT_JSON: return API_CT_JSON;
	case SP_FMT_JSONL: return "application/x-ndjson";
	case SP_FMT_CSV: return "text/csv; charset=utf-8";
	default: return API_CT_TEXT;
	}
}

struct export_params {
	struct api_stream *s;
	bool kind_given;
	char err[200];
	char name[40];
};

static enum MHD_Result export_param(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct export_params *p = cls;
	char q[64];
	char name[40];
	/* query names take _ or -, as the flags take - */
	snprintf(name, sizeof(name), "%s", key);
	for (char *c = name; *c; c++)
		if (*c == '_')
			*c = '-';
	int rc = sp_export_option_set(&p->s->opt, &p->kind_given, name, value, p->err,
				      sizeof(p->err));
	if (rc == SP_ENOTFOUND)
		snprintf(p->err, sizeof(p->err), "unknown query parameter '%s' (this route takes: "
			 "format, kind, since, source, include_private, nft_table, set_name)",
			 api_quote(key, q, sizeof(q)));
	if (rc) {
		snprintf(p->name, sizeof(p->name), "%s", api_quote(key, q, sizeof(q)));
		return MHD_NO;
	}
	/* the names live in the request, the producer outlives it */
	if (strcmp(name, "nft-table") == 0) {
		snprintf(p->s->nft_table, sizeof(p->s->nft_table), "%s", value);
		p->s->opt.nft_table = p->s->nft_table;
	} else if (strcmp(name, "set-name") == 0) {
		snprintf(p->s->set_prefix, sizeof(p->s->set_prefix), "%s", value);
		p->s->opt.set_prefix = p->s->set_prefix;
	}
	return MHD_YES;
}

enum MHD_Result api_route_export(sp_api *api, struct MHD_Connection *c, bool head)
{
	struct api_stream *s = calloc(1, sizeof(*s));
	struct export_params p = { .s = s };
	char fname[32];
	if (!s)
		return MHD_NO;
	s->opt.format = SP_FMT_TXT;
	s->opt.min_reporters = api->opt.min_reporters; /* as sentrypeer export */
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, export_param, &p);
	if (!p.err[0])
		sp_export_options_finish(&s->opt, p.kind_given, p.err, sizeof(p.err));
	if (p.err[0]) {
		free(s);
		if (p.name[0] && !strstr(p.err, "unknown query"))
			return api_error(api, c, 400, "%s %s", p.name, p.err);
		return api_error(api, c, 400, "%s", p.err);
	}
	const char *ctype = format_ctype(s->opt.format);
	if (head) {
		free(s);
		return api_reply_static(api, c, 200, ctype, "", 0, NULL);
	}
	snprintf(fname, sizeof(fname), "sentrypeer.%s",
		 s->opt.format == SP_FMT_CROWDSEC ? "csv" : sp_export_format_name(s->opt.format));
	s->produce = produce_export;
	return stream_start(api, c, s, ctype, fname);
}

/* ---- upstream's /ip-addresses and /numbers ------------------------------- */

struct compat_ctx {
	sp_api *api;
	FILE *out;
	sp_addr_filter *filter;
	uint64_t now, n;
	enum sp_kind kind;
};

/* Upstream's seen_last: "YYYY-MM-DD HH:MM:SS.ffffff" (here in UTC). */
static void upstream_time(FILE *out, uint64_t ns)
{
	char t[SP_TIMESTAMP_LEN];
	sp_timestamp_format(ns, t); /* 2026-11-27T12:00:00.123456789Z */
	t[10] = ' ';
	t[26] = '\0';
	fputs(t, out);
}

static int compat_item(const sp_agg *a, void *ud)
{
	struct compat_ctx *x = ud;
	struct sp_agg_summary sum;
	if (!api_agg_listed(x->api, a, SP_SOURCE_ALL, x->now, &sum))
		return 0;
	if (a->kind == SP_KIND_IP && !sp_addr_filter_allows(x->filter, a->key))
		return 0;
	bool ip = x->kind == SP_KIND_IP;
	fprintf(x->out, "%s\n{\"%s\":", x->n ? "," : "", ip ? "ip_address" : "called_number");
	sp_json_write_string(x->out, a->key, strlen(a->key));
	fputs(",\"seen_last\":\"", x->out);
	upstream_time(x->out, sum.last_ns);
	fprintf(x->out, "\",\"seen_count\":\"%llu\"}", (unsigned long long)sum.count);
	x->n++;
	return ferror(x->out) ? -EIO : 0;
}

static int produce_compat(struct api_stream *s, FILE *out)
{
	struct compat_ctx x = { .api = s->api, .out = out, .kind = s->kind };
	bool ip = s->kind == SP_KIND_IP;
	uint64_t corrupt = 0;
	if (!(x.filter = sp_addr_filter_new(s->include_private)))
		return -ENOMEM;
	x.now = sp_now_ns();
	fprintf(out, "{\"%s\":[", ip ? "ip_addresses" : "called_numbers");
	int rc = sp_store_foreach(s->api->st, s->kind, compat_item, &x, &corrupt);
	/* the total comes last: it is only known once the walk is done */
	fprintf(out, "%s],\"%s\":%llu}\n", x.n ? "\n" : "",
		ip ? "ip_addresses_total" : "called_numbers_total", (unsigned long long)x.n);
	sp_addr_filter_free(x.filter);
	return rc;
}

static const char *const compat_params[] = { "include_private", NULL };

enum MHD_Result api_route_compat_list(sp_api *api, struct MHD_Connection *c, enum sp_kind kind,
				      bool head)
{
	struct sp_store_stats st;
	bool ok;
	enum MHD_Result ret = api_check_params(api, c, compat_params, &ok);
	if (!ok)
		return ret;
	int priv = api_param(c, "include_private") ? api_bool(api_param(c, "include_private")) : 0;
	if (priv < 0)
		return api_error(api, c, 400, "include_private: expected yes or no");
	int rc = sp_store_stats(api->st, &st);
	if (rc)
		return api_error(api, c, 500, "the store cannot be read: %s", sp_strerror(rc));
	if ((kind == SP_KIND_IP ? st.ips : st.numbers) == 0) {
		/* upstream's answer for an empty list */
		static const char ips[] = "{\"message\":\"No bad actors found\"}\n";
		static const char nums[] = "{\"message\":\"No phone numbers found\"}\n";
		return api_reply_static(api, c, 404, API_CT_JSON, kind == SP_KIND_IP ? ips : nums,
					(kind == SP_KIND_IP ? sizeof(ips) : sizeof(nums)) - 1, NULL);
	}
	if (head)
		return api_reply_static(api, c, 200, API_CT_JSON, "", 0, NULL);
	struct api_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return MHD_NO;
	s->kind = kind;
	s->include_private = priv == 1;
	s->produce = produce_compat;
	return stream_start(api, c, s, API_CT_JSON, NULL);
}
