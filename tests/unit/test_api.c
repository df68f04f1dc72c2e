/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The HTTP API in-process, on 127.0.0.1 with a kernel-chosen port, over a
 * store with known records, through a raw-socket client (so requests can
 * be as malformed as a hostile client makes them). A fake DHT stands in
 * for the real one: it finds, misses, overruns its timeout, answers about
 * the wrong key, and counts what it was asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "export.h"
#include "sp_error.h"
#include "render.h"
#include "sp_time.h"

#define SEC SP_NS_PER_SEC
#define MS (SEC / 1000)
#define DAY (86400 * SEC)
#define API_SOFT_MAX_TEST (256 * 1024) /* API_BODY_SOFT_MAX in api_internal.h */

static char dir[64];
static sp_store *st;
static struct sp_strlist loopback;
static char *loopback_v[1] = { "127.0.0.1" };

/* ---- fixture --------------------------------------------------------- */

static void put(enum sp_kind kind, const char *key, const char *reporter, uint64_t last_ago,
		uint64_t count, const char *ua)
{
	sp_agg a;
	uint64_t now = sp_now_ns();
	sp_agg_init(&a, kind, key);
	a.methods = sp_method_bit("INVITE");
	a.transports = SP_TP_UDP;
	if (ua)
		sp_agg_add_ua(&a, ua);
	sp_report *r = sp_agg_report(&a, reporter, true);
	r->last_ns = now - last_ago;
	r->first_ns = r->last_ns - 3600 * SEC;
	r->count = count;
	r->expires_ns = *reporter ? now + 3 * DAY : 0;
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, &a), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
}

static void add_event(const char *src, const char *to, const char *ua)
{
	static const char raw[] = "INVITE sip:100@192.0.2.1 SIP/2.0\r\n\r\n";
	sp_event *e = sp_event_new(raw, sizeof(raw) - 1, 8192);
	strcpy(e->src_ip, src);
	strcpy(e->dst_ip, "192.0.2.1");
	strcpy(e->method, "INVITE");
	strcpy(e->to_user, to);
	strcpy(e->user_agent, ua);
	e->transport = SP_TP_UDP;
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_add_events(tx, &e, 1), 0);
	assert_int_equal(sp_wtxn_fold(tx), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	free(e);
}

static int group_setup(void **state)
{
	char path[128];
	signal(SIGPIPE, SIG_IGN);
	strcpy(dir, "/tmp/sp-api-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.mdb", dir);
	struct sp_store_options o = { .path = path, .map_size = 256 << 20, .retention_ns = 7 * DAY,
				      .set_retention = true, .sync = SP_SYNC_NONE, .batch_max = 64 };
	assert_int_equal(sp_store_open(&st, &o), 0);
	put(SP_KIND_IP, "203.0.113.5", "", DAY, 42, "friendly-scanner");
	put(SP_KIND_IP, "2001:db8::5", "a1b2c3", DAY, 3, "sipvicious");
	put(SP_KIND_IP, "10.0.0.8", "", DAY, 2, NULL);             /* private */
	put(SP_KIND_IP, "203.0.113.99", "", 9 * DAY, 2, NULL);     /* expired */
	put(SP_KIND_NUMBER, "441234", "", DAY, 7, NULL);
	put(SP_KIND_NUMBER, "046500729221", "a1b2c3", DAY, 4, NULL);
	add_event("198.51.100.23", "+441234", "evil <script>alert(1)</script>");
	loopback.v = loopback_v;
	loopback.n = 1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];
	sp_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- the fake DHT ------------------------------------------------------ */

struct fake {
	atomic_int calls;
	_Atomic uint64_t max_timeout; /* the longest it was allowed */
};
static struct fake fake;

#define KEY_FOUND "198.51.100.77"   /* a peer reported it */
#define KEY_OVERRUN "198.51.100.88" /* ignores its timeout, takes 1.5 s */
#define KEY_HONEST "198.51.100.99"  /* takes all the time it is given */
#define KEY_WRONG "198.51.100.66"   /* answers about another key */

static int fake_lookup(void *ud, enum sp_kind kind, const char *key, uint64_t timeout_ns,
		       sp_agg *out)
{
	struct fake *f = ud;
	atomic_fetch_add(&f->calls, 1);
	uint64_t prev = atomic_load(&f->max_timeout);
	while (timeout_ns > prev && !atomic_compare_exchange_weak(&f->max_timeout, &prev, timeout_ns))
		;
	if (strcmp(key, KEY_FOUND) == 0 || strcmp(key, KEY_WRONG) == 0) {
		sp_agg_init(out, kind, strcmp(key, KEY_WRONG) == 0 ? "192.0.2.200" : key);
		sp_report *r = sp_agg_report(out, "peerkey01", true);
		r->last_ns = sp_now_ns() - 60 * SEC;
		r->first_ns = r->last_ns - SEC;
		r->count = 9;
		r->expires_ns = sp_now_ns() + DAY;
		return 0;
	}
	if (strcmp(key, KEY_OVERRUN) == 0) {
		usleep(1500 * 1000);
		return SP_ENOTFOUND;
	}
	if (strcmp(key, KEY_HONEST) == 0) {
		struct timespec ts = { (time_t)(timeout_ns / SEC), (long)(timeout_ns % SEC) };
		nanosleep(&ts, NULL);
		return SP_ENOTFOUND;
	}
	return SP_ENOTFOUND;
}

static void fake_status(void *ud, struct sp_api_dht_status *out)
{
	out->connected = true;
	out->sharing = true;
	out->peers = 12;
	out->puts = 100;
	out->gets = atomic_load(&fake.calls);
	out->values_accepted = 7;
	out->values_rejected = 2;
	snprintf(out->node_id, sizeof(out->node_id), "%s", "abcdef0123");
}

static const struct sp_api_dht fake_dht = { &fake, fake_lookup, fake_status };

/* ---- the API under test ------------------------------------------------- */

static sp_api *api;
static uint16_t port;

static void start_dht(struct sp_api_options *o, const struct sp_api_dht *dht)
{
	struct sp_api_live live = { .dht = dht };
	o->addresses = &loopback;
	o->port = 0;
	if (!o->threads)
		o->threads = 2;
	assert_int_equal(sp_api_start(&api, st, o, &live), 0);
	port = sp_api_port(api);
	assert_true(port > 0);
}

static void start(struct sp_api_options *o)
{
	start_dht(o, NULL);
}

static void stop(void)
{
	sp_api_stop(api);
	api = NULL;
}

/* ---- a client ---------------------------------------------------------- */

struct resp {
	int status;
	char head[8192];
	char *body;
	size_t len;
	json_t *json;
};

static int connect_api(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server may close on us: the reply says why */
		p += w;
		n -= (size_t)w;
	}
}

/* Everything until the server closes (or timeout_ms passes). */
static char *read_all(int fd, size_t *len, int timeout_ms)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	uint64_t end = sp_mono_ns() + (uint64_t)timeout_ms * MS;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now = sp_mono_ns();
		if (now >= end || poll(&p, 1, (int)((end - now) / MS) + 1) <= 0)
			break;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
		ssize_t r = recv(fd, buf + n, cap - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void dechunk(struct resp *r)
{
	char *in = r->body, *out = r->body, *end = r->body + r->len;
	for (;;) {
		char *nl = strstr(in, "\r\n");
		if (!nl)
			break;
		size_t n = strtoul(in, NULL, 16);
		in = nl + 2;
		if (n == 0 || in + n > end)
			break;
		memmove(out, in, n);
		out += n;
		in += n + 2;
	}
	r->len = (size_t)(out - r->body);
	r->body[r->len] = '\0';
}

static void parse(struct resp *r, char *raw, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->status = -1;
	char *sep = strstr(raw, "\r\n\r\n");
	if (sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1 || !sep) {
		r->body = raw;
		r->len = n;
		return;
	}
	size_t hl = (size_t)(sep - raw);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)hl, raw);
	r->len = n - hl - 4;
	r->body = malloc(r->len + 1);
	memcpy(r->body, sep + 4, r->len);
	r->body[r->len] = '\0';
	free(raw);
	if (strcasestr(r->head, "Transfer-Encoding: chunked"))
		dechunk(r);
	r->json = json_loadb(r->body, r->len, 0, NULL);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* One raw request on its own connection. */
static void raw(const char *req, size_t len, struct resp *r)
{
	int fd = connect_api();
	size_t n;
	send_all(fd, req, len);
	char *buf = read_all(fd, &n, 10000);
	close(fd);
	parse(r, buf, n);
}

static void request(const char *method, const char *path, const char *headers, struct resp *r)
{
	size_t cap = strlen(method) + strlen(path) + (headers ? strlen(headers) : 0) + 64;
	char *req = malloc(cap);
	int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
			 method, path, headers ? headers : "");
	raw(req, (size_t)n, r);
	free(req);
}

static void get(const char *path, struct resp *r)
{
	request("GET", path, NULL, r);
}

static const char *jstr(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static long long jint(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

static void expect_error(const char *method, const char *path, const char *headers, int status)
{
	struct resp r;
	request(method, path, headers, &r);
	if (r.status != status)
		fail_msg("%s %s: status %d, wanted %d: %s", method, path, r.status, status, r.body);
	assert_non_null(r.json);
	assert_int_equal(jint(r.json, "status"), status);
	assert_non_null(jstr(r.json, "error"));
	assert_non_null(strstr(r.head, "Content-Type: application/json"));
	resp_free(&r);
}

/* ---- tests --------------------------------------------------------------- */

static void test_compat_routes(void **state)
{
	struct sp_api_options o = { 0 };
	struct resp r;
	start(&o);

	get("/health-check", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "status"), "OK");
	assert_string_equal(jstr(r.json, "version"), SP_VERSION);
	assert_string_equal(jstr(r.json, "dht"), "off");
	resp_free(&r);

	get("/ip-addresses/203.0.113.5", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "bad_actor_found"), "203.0.113.5");
	resp_free(&r);
	get("/ip-addresses/::ffff:203.0.113.5", &r); /* mapped: the same address */
	assert_int_equal(r.status, 200);
	resp_free(&r);
	get("/ip-addresses/203.0.113.6", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "message"), "No bad actor found");
	resp_free(&r);
	get("/ip-addresses/203.0.113.99", &r); /* expired */
	assert_int_equal(r.status, 404);
	resp_free(&r);
	expect_error("GET", "/ip-addresses/203.0.113.500", NULL, 400);
	expect_error("GET", "/ip-addresses/evil%3Cscript%3E", NULL, 400);

	/* numbers: +, 00, and a leading 0 (upstream lost those) */
	const char *found[] = { "/numbers/441234", "/numbers/+441234", "/numbers/%2B441234",
				"/numbers/00441234", "/numbers/046500729221" };
	for (size_t i = 0; i < 5; i++) {
		get(found[i], &r);
		assert_int_equal(r.status, 200);
		assert_non_null(jstr(r.json, "phone_number_found"));
		resp_free(&r);
	}
	get("/numbers/449999", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "message"), "No phone number found");
	resp_free(&r);
	expect_error("GET", "/numbers/abc", NULL, 400);

	/* full lists: live and shareable only, upstream's keys */
	get("/ip-addresses", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	assert_int_equal(jint(r.json, "ip_addresses_total"), 3); /* .5, 2001:db8::5, 198.51.100.23 */
	json_t *first = json_array_get(json_object_get(r.json, "ip_addresses"), 0);
	assert_non_null(jstr(first, "ip_address"));
	assert_non_null(jstr(first, "seen_last"));
	assert_non_null(jstr(first, "seen_count"));
	assert_int_equal(strlen(jstr(first, "seen_last")), 26); /* 2026-11-27 12:00:00.123456 */
	assert_null(strstr(r.body, "10.0.0.8"));
	resp_free(&r);
	get("/ip-addresses?include_private=yes", &r);
	assert_int_equal(jint(r.json, "ip_addresses_total"), 4);
	resp_free(&r);
	get("/numbers", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "called_numbers_total"), 2);
	resp_free(&r);
	stop();
}

static void test_v1_lookups(void **state)
{
	struct sp_api_options o = { 0 };
	struct resp r;
	start(&o);

	get("/api/v1/ip-addresses/203.0.113.5", &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.json, "listed")));
	assert_string_equal(jstr(r.json, "answered_by"), "local store");
	assert_string_equal(jstr(r.json, "dht"), "off");
	assert_string_equal(jstr(r.json, "kind"), "ip");
	assert_int_equal(jint(r.json, "count"), 42);
	assert_int_equal(json_array_size(json_object_get(r.json, "reports")), 1);
	resp_free(&r);

	get("/api/v1/numbers/+441234?source=local", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "key"), "441234");
	resp_free(&r);
	get("/api/v1/numbers/046500729221?source=local", &r); /* only a peer saw it */
	assert_int_equal(r.status, 404);
	assert_true(json_is_false(json_object_get(r.json, "listed")));
	resp_free(&r);
	get("/api/v1/lookup/2001:db8::5", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "peers"), 1);
	resp_free(&r);
	get("/api/v1/lookup/[2001:db8::5]", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	get("/api/v1/lookup/00441234", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "kind"), "number");
	resp_free(&r);
	get("/api/v1/lookup/192.0.2.9", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "key"), "192.0.2.9");
	assert_string_equal(jstr(r.json, "dht"), "off");
	resp_free(&r);

	expect_error("GET", "/api/v1/ip-addresses/441234", NULL, 400); /* a number on the IP route */
	expect_error("GET", "/api/v1/lookup/2001:db8::zz", NULL, 400);
	expect_error("GET", "/api/v1/lookup/203.0.113.5?source=everyone", NULL, 400);
	expect_error("GET", "/api/v1/lookup/203.0.113.5?timeout=soon", NULL, 400);
	expect_error("GET", "/api/v1/lookup/203.0.113.5?callback=x", NULL, 400);
	/* a NUL may not cut a value short */
	expect_error("GET", "/api/v1/ip-addresses/203.0.113.5%00.evil", NULL, 400);
	char longkey[600];
	memset(longkey, '1', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	char path[700];
	snprintf(path, sizeof(path), "/api/v1/numbers/%s", longkey);
	expect_error("GET", path, NULL, 400);
	stop();
}

static void test_request_checks(void **state)
{
	struct sp_api_options o = { .max_header = 2048, .idle_timeout_ns = 1 * SEC };
	struct resp r;
	start(&o);

	expect_error("GET", "/no/such/route", NULL, 404);
	expect_error("GET", "/api/v1/ip-addresses/", NULL, 404);
	expect_error("POST", "/health-check", NULL, 405);
	expect_error("DELETE", "/api/v1/ip-addresses/203.0.113.5", NULL, 405);
	expect_error("BREW", "/", NULL, 405);
	request("POST", "/api/v1/export", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.head, "Allow: GET, HEAD"));
	resp_free(&r);
	expect_error("GET", "/health-check", "Content-Length: 5\r\n", 413);
	expect_error("GET", "/health-check", "Transfer-Encoding: chunked\r\n", 413);

	/* headers over the cap: 431 as JSON; far over: libmicrohttpd's own 431 */
	char big[3000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-Big: ", 7);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	expect_error("GET", "/health-check", big, 431);
	char *huge = malloc(64 * 1024);
	memset(huge, 'a', 64 * 1024);
	memcpy(huge, "X-Huge: ", 8);
	memcpy(huge + 64 * 1024 - 3, "\r\n", 3);
	request("GET", "/health-check", huge, &r);
	if (r.status != 431)
		fail_msg("64 KiB of headers: %d %.200s", r.status, r.body);
	resp_free(&r);
	free(huge);
	char *url = malloc(40 * 1024);
	memset(url, 'a', 40 * 1024);
	memcpy(url, "/api/v1/lookup/", 15);
	url[40 * 1024 - 1] = '\0';
	request("GET", url, NULL, &r);
	assert_true(r.status == 414 || r.status == 431);
	resp_free(&r);
	free(url);

	/* garbage: an error, or (incomplete) closed at the idle timeout; then
	 * the server still answers */
	const char *junk[] = { "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "GET\r\n\r\n",
			       "GET / HTTP/9.9\r\n\r\n", "\r\n\r\n\r\n", "GET /%zz%%% HTTP/1.1\r\nHost: t\r\n\r\n",
			       "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		raw(junk[i], strlen(junk[i]), &r);
		assert_true(r.status != 200 || i == 4 || i == 5);
		resp_free(&r);
	}
	get("/health-check", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* HEAD: headers, no body */
	request("HEAD", "/api/v1/ip-addresses/203.0.113.5", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	resp_free(&r);
	stop();
}

static void test_token(void **state)
{
	struct sp_api_options o = { .token = "s3cret-Token" };
	struct resp r;
	start(&o);
	const char *paths[] = { "/health-check", "/ip-addresses/203.0.113.5", "/api/v1/export",
				"/metrics", "/", "/no/such/route" };
	for (size_t i = 0; i < 6; i++) {
		request("GET", paths[i], NULL, &r);
		assert_int_equal(r.status, 401);
		assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer"));
		assert_non_null(r.json);
		resp_free(&r);
	}
	expect_error("GET", "/health-check", "Authorization: Bearer s3cret-Toke\r\n", 401);
	expect_error("GET", "/health-check", "Authorization: Bearer s3cret-Token2\r\n", 401);
	expect_error("GET", "/health-check", "Authorization: Bearer \r\n", 401);
	expect_error("GET", "/health-check", "Authorization: s3cret-Token\r\n", 401);
	request("GET", "/ip-addresses/203.0.113.5", "Authorization: Bearer s3cret-Token\r\n", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	request("GET", "/ip-addresses/203.0.113.5", "authorization: bearer s3cret-Token\r\n", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* Basic, any user, the token as password: "u:s3cret-Token" */
	request("GET", "/", "Authorization: Basic dTpzM2NyZXQtVG9rZW4=\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/html"));
	resp_free(&r);
	expect_error("GET", "/", "Authorization: Basic dTp3cm9uZw==\r\n", 401); /* u:wrong */
	expect_error("GET", "/", "Authorization: Basic !!!!\r\n", 401);
	stop();
}

static void test_feed_cursor(void **state)
{
	struct sp_api_options o = { 0 };
	struct resp r;
	char path[256], cursor[64];
	start(&o);

	get("/api/v1/ip-addresses?limit=1", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "count"), 1);
	assert_true(json_is_true(json_object_get(r.json, "more")));
	snprintf(cursor, sizeof(cursor), "%s", jstr(r.json, "cursor"));
	resp_free(&r);
	/* page through: every shareable live address exactly once */
	int seen = 1;
	for (int guard = 0; guard < 10; guard++) {
		snprintf(path, sizeof(path), "/api/v1/ip-addresses?limit=1&after=%s", cursor);
		get(path, &r);
		assert_int_equal(r.status, 200);
		seen += (int)jint(r.json, "count");
		snprintf(cursor, sizeof(cursor), "%s", jstr(r.json, "cursor"));
		bool more = json_is_true(json_object_get(r.json, "more"));
		assert_null(strstr(r.body, "10.0.0.8"));
		assert_null(strstr(r.body, "203.0.113.99"));
		resp_free(&r);
		if (!more)
			break;
	}
	assert_int_equal(seen, 3);
	/* nothing new: nothing, the same cursor */
	snprintf(path, sizeof(path), "/api/v1/ip-addresses?after=%s", cursor);
	get(path, &r);
	assert_int_equal(jint(r.json, "count"), 0);
	assert_string_equal(jstr(r.json, "cursor"), cursor);
	resp_free(&r);
	/* a new sighting: only that comes back */
	add_event("203.0.113.5", "", "again");
	get(path, &r);
	assert_int_equal(jint(r.json, "count"), 1);
	json_t *item = json_array_get(json_object_get(r.json, "items"), 0);
	assert_string_equal(jstr(item, "key"), "203.0.113.5");
	assert_int_equal(jint(item, "count"), 43);
	resp_free(&r);

	get("/api/v1/ip-addresses?include_private=1&source=local", &r);
	assert_non_null(strstr(r.body, "10.0.0.8"));
	assert_null(strstr(r.body, "2001:db8::5"));
	resp_free(&r);
	get("/api/v1/numbers?source=peers", &r);
	assert_int_equal(jint(r.json, "count"), 1);
	resp_free(&r);
	/* a cursor from another store starts again from the beginning */
	get("/api/v1/ip-addresses?after=00000000.5", &r);
	if (strncmp(cursor, "00000000", 8) != 0) {
		assert_true(json_is_true(json_object_get(r.json, "reset")));
		assert_int_equal(jint(r.json, "count"), 3);
	}
	resp_free(&r);
	expect_error("GET", "/api/v1/ip-addresses?after=banana", NULL, 400);
	expect_error("GET", "/api/v1/ip-addresses?after=abcdefgh.1", NULL, 400);
	expect_error("GET", "/api/v1/ip-addresses?after=00000000.99999999999999999999999", NULL, 400);
	expect_error("GET", "/api/v1/ip-addresses?limit=0", NULL, 400);
	expect_error("GET", "/api/v1/ip-addresses?limit=1001", NULL, 400);
	expect_error("GET", "/api/v1/ip-addresses?limit=-1", NULL, 400);
	expect_error("GET", "/api/v1/numbers?include_private=maybe", NULL, 400);
	stop();
}

/* /api/v1/export against sp_export() itself, for every format. */
static char *export_direct(const struct sp_export_options *opt, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	assert_int_equal(sp_export(st, opt, f, NULL), 0);
	fclose(f);
	return buf;
}

static void test_export_same_bytes(void **state)
{
	struct sp_api_options o = { 0 };
	struct resp r;
	start(&o);
	static const struct {
		const char *query;
		struct sp_export_options opt;
	} cases[] = {
		{ "", { .format = SP_FMT_TXT, .kind = SP_EXPORT_IP } },
		{ "?format=json", { .format = SP_FMT_JSON } },
		{ "?format=jsonl&source=peers", { .format = SP_FMT_JSONL, .source = SP_SOURCE_PEERS } },
		{ "?format=csv&include_private=yes", { .format = SP_FMT_CSV, .include_private = true } },
		{ "?format=txt&kind=number", { .format = SP_FMT_TXT, .kind = SP_EXPORT_NUMBER } },
		{ "?format=nft&nft_table=fw&set_name=bad", { .format = SP_FMT_NFT, .kind = SP_EXPORT_IP,
							     .nft_table = "fw", .set_prefix = "bad" } },
		{ "?format=ipset", { .format = SP_FMT_IPSET, .kind = SP_EXPORT_IP } },
		{ "?format=crowdsec&source=local", { .format = SP_FMT_CROWDSEC, .kind = SP_EXPORT_IP,
						     .source = SP_SOURCE_LOCAL } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/export%s", cases[i].query);
		/* timeouts count seconds from now: compare within one second */
		for (int tries = 0;; tries++) {
			size_t n1, n2;
			char *before = export_direct(&cases[i].opt, &n1);
			get(path, &r);
			char *after = export_direct(&cases[i].opt, &n2);
			assert_int_equal(r.status, 200);
			bool stable = n1 == n2 && memcmp(before, after, n1) == 0;
			if (stable) {
				if (r.len != n1 || memcmp(r.body, before, n1) != 0)
					fail_msg("export %s differs from sp_export:\n%s\n---\n%s", path,
						 r.body, before);
			}
			free(before);
			free(after);
			resp_free(&r);
			if (stable)
				break;
			assert_true(tries < 5);
		}
	}
	expect_error("GET", "/api/v1/export?format=xml", NULL, 400);
	expect_error("GET", "/api/v1/export?format=nft&kind=number", NULL, 400);
	expect_error("GET", "/api/v1/export?since=yesterday", NULL, 400);
	expect_error("GET", "/api/v1/export?nft_table=a%20b", NULL, 400);
	expect_error("GET", "/api/v1/export?frmat=nft", NULL, 400);
	request("HEAD", "/api/v1/export?format=csv", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/csv"));
	resp_free(&r);
	stop();
}

static void test_events_metrics_summary(void **state)
{
	struct sp_api_options o = { 0 };
	struct resp r;
	start(&o);
	get("/api/v1/events?limit=5", &r);
	assert_int_equal(r.status, 200);
	assert_true(jint(r.json, "count") >= 1);
	json_t *e = json_array_get(json_object_get(r.json, "events"), 0);
	assert_non_null(jstr(e, "source_ip"));
	assert_null(json_object_get(e, "raw"));
	resp_free(&r);
	get("/api/v1/events?limit=1&raw=yes", &r);
	e = json_array_get(json_object_get(r.json, "events"), 0);
	assert_non_null(strstr(jstr(e, "raw"), "INVITE sip:100@192.0.2.1"));
	resp_free(&r);
	expect_error("GET", "/api/v1/events?limit=101", NULL, 400);

	get("/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "sentrypeer_dht_enabled 0\n"));
	assert_null(strstr(r.body, "sentrypeer_dht_peers"));
	assert_non_null(strstr(r.body, "sentrypeer_store_records{kind=\"ip\"} "));
	assert_non_null(strstr(r.body, "sentrypeer_api_responses_total{code=\"400\"} "));
	/* every line is a comment or "name{labels} value" */
	for (char *line = r.body; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		if (*line != '#') {
			char name[128];
			unsigned long long v;
			assert_int_equal(sscanf(line, "%127[a-z_{}=\",0-9.] %llu", name, &v), 2);
		}
		line = nl + 1;
	}
	resp_free(&r);

	/* the summary: first not ready, then computed in the background */
	json_t *s = NULL;
	for (int i = 0; i < 100; i++) {
		get("/api/v1/summary", &r);
		assert_int_equal(r.status, 200);
		if (json_is_true(json_object_get(r.json, "ready"))) {
			s = json_incref(r.json);
			resp_free(&r);
			break;
		}
		resp_free(&r);
		usleep(50 * 1000);
	}
	assert_non_null(s);
	json_t *top = json_array_get(json_object_get(s, "top_ip_addresses"), 0);
	assert_string_equal(jstr(top, "key"), "203.0.113.5");
	json_t *src = json_object_get(json_object_get(s, "sources"), "ip_addresses");
	assert_int_equal(jint(src, "peers_only"), 1);
	assert_int_equal(jint(src, "expired"), 1);
	assert_string_equal(jstr(json_object_get(s, "dht"), "state"), "off");
	json_t *tl = json_object_get(s, "events_over_time");
	assert_int_equal(json_array_size(json_object_get(tl, "counts")), 1440);
	long long total = 0;
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(tl, "counts"), i, v)
		total += json_integer_value(v);
	assert_true(total >= 1);
	json_decref(s);

	/* the dashboard's files, with a policy that keeps the page at home */
	get("/", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Content-Security-Policy: default-src 'none'"));
	assert_non_null(strstr(r.body, "/app.js"));
	assert_null(strstr(r.body, "http://"));
	assert_null(strstr(r.body, "https://"));
	resp_free(&r);
	get("/app.js", &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "innerHTML"));
	resp_free(&r);
	expect_error("POST", "/", NULL, 405);
	stop();
}

/* ---- the DHT fallback --------------------------------------------------- */

static uint64_t timed_get(const char *path, struct resp *r)
{
	uint64_t t0 = sp_mono_ns();
	get(path, r);
	return sp_mono_ns() - t0;
}

static void test_dht_fallback(void **state)
{
	struct sp_api_options o = { .dht_timeout_ns = 200 * MS, .dht_lookups = 2 };
	struct resp r;
	atomic_store(&fake.calls, 0);
	atomic_store(&fake.max_timeout, 0);
	start_dht(&o, &fake_dht);

	/* listed locally: the DHT is not asked */
	get("/api/v1/ip-addresses/203.0.113.5", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "dht"), "not asked");
	resp_free(&r);
	assert_int_equal(atomic_load(&fake.calls), 0);

	/* a peer has it */
	get("/api/v1/ip-addresses/" KEY_FOUND, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "answered_by"), "dht");
	assert_string_equal(jstr(r.json, "dht"), "found");
	assert_int_equal(jint(r.json, "peers"), 1);
	resp_free(&r);
	get("/ip-addresses/" KEY_FOUND, &r); /* upstream's route falls back too */
	assert_int_equal(r.status, 200);
	resp_free(&r);
	get("/api/v1/lookup/192.0.2.1", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "dht"), "not found");
	resp_free(&r);
	get("/api/v1/lookup/" KEY_WRONG, &r); /* an answer about another key is not one */
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "dht"), "error");
	resp_free(&r);
	/* the default timeout is what the DHT was given, at most */
	assert_true(atomic_load(&fake.max_timeout) <= 200 * MS);

	/* the caller's timeout bounds the wait, even when the DHT overruns */
	uint64_t took = timed_get("/api/v1/lookup/" KEY_OVERRUN "?timeout=300ms", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(r.json, "dht"), "timeout");
	resp_free(&r);
	if (took < 295 * MS || took > 700 * MS)
		fail_msg("asked for 300 ms, answered after %llu ms", (unsigned long long)(took / MS));
	took = timed_get("/numbers/" "00441239?timeout=150ms", &r); /* instant not-found */
	assert_int_equal(r.status, 404);
	resp_free(&r);
	took = timed_get("/api/v1/lookup/" KEY_HONEST "?timeout=250ms", &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	if (took > 650 * MS)
		fail_msg("asked for 250 ms, answered after %llu ms", (unsigned long long)(took / MS));
	assert_true(atomic_load(&fake.max_timeout) <= 300 * MS);

	/* timeout 0 and source=local: no DHT at all; huge ones are capped */
	int before = atomic_load(&fake.calls);
	get("/api/v1/lookup/192.0.2.2?timeout=0", &r);
	assert_string_equal(jstr(r.json, "dht"), "not asked");
	resp_free(&r);
	get("/api/v1/lookup/192.0.2.2?source=local", &r);
	assert_string_equal(jstr(r.json, "dht"), "not asked");
	resp_free(&r);
	assert_int_equal(atomic_load(&fake.calls), before);
	get("/api/v1/lookup/192.0.2.3?timeout=1h", &r);
	resp_free(&r);
	assert_true(atomic_load(&fake.max_timeout) <= 10 * SEC);

	get("/metrics", &r);
	assert_non_null(strstr(r.body, "sentrypeer_dht_enabled 1\n"));
	assert_non_null(strstr(r.body, "sentrypeer_dht_peers 12\n"));
	assert_non_null(strstr(r.body, "sentrypeer_api_dht_fallbacks_total{result=\"timeout\"} "));
	resp_free(&r);
	get("/health-check", &r);
	assert_string_equal(jstr(r.json, "dht"), "connected");
	resp_free(&r);
	stop();
}

struct par {
	const char *path;
	int status;
	char dht[32];
	uint64_t took;
};

static void *par_get(void *arg)
{
	struct par *p = arg;
	struct resp r;
	p->took = timed_get(p->path, &r);
	p->status = r.status;
	snprintf(p->dht, sizeof(p->dht), "%s", r.json ? jstr(r.json, "dht") : "?");
	resp_free(&r);
	return NULL;
}

/* More lookups than the DHT may run: the rest wait within their own time
 * or are answered at once ("busy"); nobody waits longer than asked; and a
 * stop answers what is parked. */
static void test_dht_saturation_and_stop(void **state)
{
	struct sp_api_options o = { .dht_lookups = 1 }; /* 1 running, 4 queued */
	enum { N = 8 };
	struct par p[N];
	pthread_t t[N];
	start_dht(&o, &fake_dht);
	for (int i = 0; i < N; i++) {
		p[i].path = "/api/v1/lookup/" KEY_OVERRUN "?timeout=400ms";
		pthread_create(&t[i], NULL, par_get, &p[i]);
	}
	int busy = 0, timeouts = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].status, 404);
		busy += strcmp(p[i].dht, "busy") == 0;
		timeouts += strcmp(p[i].dht, "timeout") == 0;
		if (p[i].took > 900 * MS)
			fail_msg("lookup %d took %llu ms for a 400 ms timeout", i,
				 (unsigned long long)(p[i].took / MS));
	}
	assert_true(busy >= 1);
	assert_true(timeouts >= 1);
	assert_int_equal(busy + timeouts, N);

	/* parked lookups at stop: answered, and stop does not hang */
	for (int i = 0; i < 3; i++) {
		p[i].path = "/api/v1/lookup/" KEY_OVERRUN "?timeout=5s";
		pthread_create(&t[i], NULL, par_get, &p[i]);
	}
	usleep(300 * 1000);
	uint64_t t0 = sp_mono_ns();
	stop();
	uint64_t took = sp_mono_ns() - t0;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_true(p[i].took < 4 * SEC);
	}
	if (took > 3 * SEC)
		fail_msg("stop took %llu ms", (unsigned long long)(took / MS));
}

/* ---- load and abuse ------------------------------------------------------- */

struct keepalive {
	int ok, bad;
};

/* 200 requests on one connection, each answered before the next. */
static void *keepalive_client(void *arg)
{
	struct keepalive *k = arg;
	int fd = connect_api();
	char buf[65536];
	static const char *const paths[] = { "/api/v1/ip-addresses/203.0.113.5",
					     "/ip-addresses/192.0.2.44", "/numbers/+441234",
					     "/api/v1/lookup/2001:db8::5" };
	static const char *const want[] = { "HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 200",
					    "HTTP/1.1 200" };
	for (int i = 0; i < 200; i++) {
		char req[256];
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i % 4]);
		send_all(fd, req, (size_t)n);
		size_t got = 0;
		/* read one response: headers, then Content-Length bytes */
		for (;;) {
			ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = '\0';
			char *sep = strstr(buf, "\r\n\r\n");
			char *cl = strcasestr(buf, "Content-Length: ");
			if (sep && cl && got >= (size_t)(sep + 4 - buf) + strtoul(cl + 16, NULL, 10))
				break;
		}
		if (strncmp(buf, want[i % 4], strlen(want[i % 4])) == 0)
			k->ok++;
		else if (k->bad++ == 0)
			fprintf(stderr, "request %d: %.300s\n", i, buf);
	}
	close(fd);
	return NULL;
}

static void test_concurrent_clients(void **state)
{
	struct sp_api_options o = { 0 };
	enum { N = 16 };
	struct keepalive k[N];
	pthread_t t[N];
	start(&o);
	memset(k, 0, sizeof(k));
	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, keepalive_client, &k[i]);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].bad, 0);
		assert_int_equal(k[i].ok, 200);
	}
	stop();
}

static void test_connection_limits(void **state)
{
	struct sp_api_options o = { .max_conns = 4, .max_conns_per_source = 4, .threads = 1,
				    .idle_timeout_ns = 1 * SEC };
	struct resp r;
	int fds[6];
	start(&o);
	/* four idle connections fill it: a fifth is closed at once */
	for (int i = 0; i < 4; i++)
		fds[i] = connect_api();
	usleep(200 * 1000);
	fds[4] = connect_api();
	size_t n;
	char *buf = read_all(fds[4], &n, 2000);
	assert_int_equal(n, 0); /* closed without a word */
	free(buf);
	close(fds[4]);
	/* a client that starts a request and stalls is closed at the idle timeout */
	send_all(fds[0], "GET /health-check HTTP/1.1\r\nHo", 30);
	uint64_t t0 = sp_mono_ns();
	buf = read_all(fds[0], &n, 5000);
	uint64_t took = sp_mono_ns() - t0;
	free(buf);
	assert_true(took < 3 * SEC);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	usleep(300 * 1000);
	get("/health-check", &r); /* room again */
	assert_int_equal(r.status, 200);
	resp_free(&r);
	stop();
}

/* Exports: at most max_exports at once; a client that stops reading does
 * not hold anything for ever; stop ends what runs. */
static void test_stream_limits(void **state)
{
	struct sp_api_options o = { .max_exports = 1, .stream_timeout_ns = 1 * SEC };
	struct resp r;
	/* enough records that an export does not fit in the socket buffers */
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	sp_agg *a = malloc(sizeof(*a));
	for (int i = 0; i < 40000; i++) {
		char key[64];
		snprintf(key, sizeof(key), "2001:db8:%x:%x::1", i / 65536, i % 65536);
		sp_agg_init(a, SP_KIND_IP, key);
		sp_report *rep = sp_agg_report(a, "", true);
		rep->first_ns = rep->last_ns = sp_now_ns() - SEC;
		rep->count = 1;
		assert_int_equal(sp_wtxn_merge(tx, a), 0);
	}
	free(a);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	start(&o);

	/* a reader that reads nothing */
	int slow = connect_api();
	int rcv = 4096;
	setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	const char *req = "GET /api/v1/export?format=jsonl HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(slow, req, strlen(req));
	usleep(300 * 1000);
	get("/api/v1/export", &r); /* the one slot is taken */
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.head, "Retry-After"));
	assert_non_null(r.json);
	resp_free(&r);
	get("/ip-addresses", &r); /* upstream's full list is a stream too */
	assert_int_equal(r.status, 503);
	resp_free(&r);
	get("/api/v1/ip-addresses/203.0.113.5", &r); /* lookups are not held up */
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* the producer gives up after stream_timeout: the slot frees */
	int status = 0;
	for (int i = 0; i < 40 && status != 200; i++) {
		usleep(100 * 1000);
		get("/api/v1/export?format=txt&kind=number", &r);
		status = r.status;
		resp_free(&r);
	}
	assert_int_equal(status, 200);
	close(slow);

	/* a full export streams whole */
	get("/api/v1/export?format=txt", &r);
	assert_int_equal(r.status, 200);
	int lines = 0;
	for (size_t i = 0; i < r.len; i++)
		lines += r.body[i] == '\n';
	assert_true(lines >= 40000);
	resp_free(&r);

	/* stop while a client holds an export open */
	slow = connect_api();
	setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	send_all(slow, req, strlen(req));
	usleep(200 * 1000);
	uint64_t t0 = sp_mono_ns();
	stop();
	assert_true(sp_mono_ns() - t0 < 3 * SEC);
	close(slow);
}

static void test_bad_start(void **state)
{
	struct sp_api_options o = { 0 };
	struct sp_strlist one = { loopback_v, 1 };
	start(&o);
	/* the same port again: a clear error, nothing left running */
	sp_api *second = NULL;
	o.addresses = &one;
	o.port = port;
	assert_int_equal(sp_api_start(&second, st, &o, NULL), -EADDRINUSE);
	assert_null(second);
	stop();
}

static int count_nothing(uint64_t seq, const sp_agg *a, void *ud)
{
	return 0;
}

/* A page built in memory stops near 1 MiB, with the cursor where it did. */
static void test_body_cap(void **state)
{
	struct sp_api_options o = { 0 };
	struct sp_feed_result res;
	struct resp r;
	char ua[SP_UA_MAX], path[128], epoch[16];
	assert_int_equal(sp_store_feed(st, SP_KIND_IP, UINT64_MAX - 1, 1, count_nothing, NULL, &res), 0);
	sp_wtxn *tx;
	sp_agg *a = malloc(sizeof(*a));
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	for (int i = 0; i < 1000; i++) {
		char key[64];
		snprintf(key, sizeof(key), "198.18.%d.%d", i / 250, i % 250 + 1);
		sp_agg_init(a, SP_KIND_IP, key);
		for (int u = 0; u < SP_AGG_MAX_UAS; u++) {
			memset(ua, 'a' + u, sizeof(ua) - 1);
			ua[sizeof(ua) - 1] = '\0';
			sp_agg_add_ua(a, ua);
		}
		sp_report *rep = sp_agg_report(a, "", true);
		rep->first_ns = rep->last_ns = sp_now_ns() - SEC;
		rep->count = 1;
		assert_int_equal(sp_wtxn_merge(tx, a), 0);
	}
	free(a);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	start(&o);
	get("/api/v1/ip-addresses?limit=1", &r);
	snprintf(epoch, sizeof(epoch), "%.8s", jstr(r.json, "cursor"));
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/ip-addresses?include_private=1&limit=1000&after=%s.%llu",
		 epoch, (unsigned long long)res.head);
	get(path, &r);
	assert_int_equal(r.status, 200);
	long long n = jint(r.json, "count");
	assert_true(n > 100 && n < 1000);
	assert_true(json_is_true(json_object_get(r.json, "more")));
	assert_true(r.len < API_SOFT_MAX_TEST + 8192);
	/* the rest comes with the next pages, each within the cap */
	long long total = n;
	for (int pages = 0; json_is_true(json_object_get(r.json, "more")); pages++) {
		assert_true(pages < 20);
		snprintf(path, sizeof(path),
			 "/api/v1/ip-addresses?include_private=1&limit=1000&after=%s",
			 jstr(r.json, "cursor"));
		resp_free(&r);
		get(path, &r);
		assert_int_equal(r.status, 200);
		assert_true(r.len < API_SOFT_MAX_TEST + 8192);
		total += jint(r.json, "count");
	}
	resp_free(&r);
	assert_int_equal(total, 1000);
	stop();
}

/* Lookup answers are written into one buffer per request thread, kept
 * between requests: a record that outgrows it, a small one, then the large
 * one again each come whole, and as the export writes them. */
static void check_answer(const char *ip, const sp_agg *a)
{
	struct resp r;
	char path[96];
	snprintf(path, sizeof(path), "/api/v1/ip-addresses/%s", ip);
	get(path, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	json_t *want = sp_agg_to_json(a, SP_SOURCE_ALL, sp_now_ns(), 7 * DAY);
	assert_non_null(want);
	json_object_set_new(want, "query", json_string(ip));
	json_object_set_new(want, "listed", json_true());
	json_object_set_new(want, "answered_by", json_string("local store"));
	json_object_set_new(want, "dht", json_string("off"));
	assert_true(json_equal(r.json, want));
	json_decref(want);
	resp_free(&r);
}

static void test_answer_sizes(void **state)
{
	struct sp_api_options o = { .threads = 1 };
	sp_agg *big = malloc(sizeof(*big)), *small = malloc(sizeof(*small));
	char ua[SP_UA_MAX], who[SP_REPORTER_MAX];
	uint64_t now = sp_now_ns();
	sp_wtxn *tx;

	sp_agg_init(big, SP_KIND_IP, "198.51.100.77");
	for (int u = 0; u < SP_AGG_MAX_UAS; u++) {
		memset(ua, u + 1, sizeof(ua) - 1); /* control bytes: six each in JSON */
		ua[sizeof(ua) - 1] = '\0';
		sp_agg_add_ua(big, ua);
	}
	for (int i = 0; i < SP_AGG_MAX_REPORTS; i++) {
		if (i)
			snprintf(who, sizeof(who), "%064d", i);
		else
			who[0] = '\0';
		sp_report *rep = sp_agg_report(big, who, true);
		assert_non_null(rep);
		rep->first_ns = rep->last_ns = now - SEC;
		rep->count = (uint64_t)i + 1;
	}
	sp_agg_init(small, SP_KIND_IP, "198.51.100.78");
	sp_report *rep = sp_agg_report(small, "", true);
	rep->first_ns = rep->last_ns = now - SEC;
	rep->count = 1;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, big), 0);
	assert_int_equal(sp_wtxn_merge(tx, small), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
	/* read back what the store kept, as the API will */
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "198.51.100.77", big), 0);
	assert_int_equal(sp_store_get(st, SP_KIND_IP, "198.51.100.78", small), 0);
	assert_int_equal(big->n_reports, SP_AGG_MAX_REPORTS);

	start(&o);
	for (int round = 0; round < 2; round++) {
		check_answer("198.51.100.78", small);
		check_answer("198.51.100.77", big);
	}
	check_answer("198.51.100.78", small);
	stop();
	free(big);
	free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compat_routes),
		cmocka_unit_test(test_v1_lookups),
		cmocka_unit_test(test_request_checks),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_feed_cursor),
		cmocka_unit_test(test_export_same_bytes),
		cmocka_unit_test(test_events_metrics_summary),
		cmocka_unit_test(test_dht_fallback),
		cmocka_unit_test(test_dht_saturation_and_stop),
		cmocka_unit_test(test_concurrent_clients),
		cmocka_unit_test(test_connection_limits),
		cmocka_unit_test(test_bad_start),
		cmocka_unit_test(test_stream_limits),
		cmocka_unit_test(test_answer_sizes),
		cmocka_unit_test(test_body_cap),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
