/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The HTTP server: listeners, the checks every request goes through (size,
 * token, route, method, body), dispatch, replies, start and stop.
 */
#include "api_internal.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_thread.h"
#include "sp_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 4096
#define LISTEN_BACKLOG 1024

/* ---- small helpers ------------------------------------------------- */

const char *api_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (; s && *s && o + 4 < len && o < 64; s++)
		buf[o++] = (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '?';
	if (s && *s && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

int api_bool(const char *v)
{
	if (!v)
		return -1;
	if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !*v)
		return 1;
	if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false"))
		return 0;
	return -1;
}

static enum api_code code_index(unsigned status)
{
	switch (status) {
	case 200: return API_200;
	case 304: return API_304;
	case 400: return API_400;
	case 401: return API_401;
	case 404: return API_404;
	case 405: return API_405;
	case 413: return API_413;
	case 414: return API_414;
	case 431: return API_431;
	case 500: return API_500;
	case 503: return API_503;
	default: return API_CODE_OTHER;
	}
}

void api_count_status(sp_api *api, unsigned status)
{
	atomic_fetch_add_explicit(&api->c.codes[code_index(status)], 1, memory_order_relaxed);
}

/* ---- waiting ------------------------------------------------------- */

void api_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

void api_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t mono_ns)
{
	struct timespec ts = { (time_t)(mono_ns / SP_NS_PER_SEC), (long)(mono_ns % SP_NS_PER_SEC) };
	pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- replies ------------------------------------------------------- */

static enum MHD_Result queue(sp_api *api, struct MHD_Connection *c, unsigned status,
			     struct MHD_Response *resp, const char *ctype, const char *cache)
{
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (status == 401) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"sentrypeer\"");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Basic realm=\"sentrypeer\", charset=\"UTF-8\"");
	} else if (status == 405) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	} else if (status == 503) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	}
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	api_count_status(api, status);
	return ret;
}

enum MHD_Result api_reply(sp_api *api, struct MHD_Connection *c, unsigned status,
			  const char *ctype, char *body, size_t len)
{
	if (!body)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	return queue(api, c, status, r, ctype, NULL);
}

enum MHD_Result api_reply_copy(sp_api *api, struct MHD_Connection *c, unsigned status,
			       const char *ctype, const void *body, size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	return queue(api, c, status, r, ctype, NULL);
}

enum MHD_Result api_reply_static(sp_api *api, struct MHD_Connection *c, unsigned status,
				 const char *ctype, const void *body, size_t len,
				 const char *cache_control)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
	return queue(api, c, status, r, ctype, cache_control);
}

enum MHD_Result api_reply_json(sp_api *api, struct MHD_Connection *c, unsigned status,
			       void *json_value)
{
	json_t *j = json_value;
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return MHD_NO;
	size_t n = strlen(s);
	/* a newline ends the body, as the CLI's JSON does */
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return MHD_NO;
	}
	t[n] = '\n';
	return api_reply(api, c, status, API_CT_JSON, t, n + 1);
}

enum MHD_Result api_error(sp_api *api, struct MHD_Connection *c, unsigned status,
			  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_reply_json(api, c, status,
			      json_pack("{s:i, s:s}", "status", (int)status, "error", msg));
}

/* ---- query parameters ---------------------------------------------- */

const char *api_param(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

struct param_check {
	const char *const *allowed;
	char bad[80];
};

static enum MHD_Result check_one(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct param_check *pc = cls;
	for (const char *const *a = pc->allowed; a && *a; a++)
		if (strcmp(*a, key) == 0)
			return MHD_YES;
	api_quote(key, pc->bad, sizeof(pc->bad));
	return MHD_NO;
}

enum MHD_Result api_check_params(sp_api *api, struct MHD_Connection *c,
				 const char *const *allowed, bool *ok)
{
	struct param_check pc = { allowed, "" };
	*ok = true;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_one, &pc);
	if (!pc.bad[0])
		return MHD_YES;
	*ok = false;
	char list[256] = "";
	for (const char *const *a = allowed; a && *a; a++) {
		if (list[0])
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		strncat(list, *a, sizeof(list) - strlen(list) - 1);
	}
	return api_error(api, c, 400, "unknown query parameter '%s' (this route takes: %s)", pc.bad,
			 list[0] ? list : "none");
}

/* ---- the checks every request goes through ------------------------- */

/* Percent-decoding of the path and query: %00 stays as it is, so a NUL
 * can never cut a value short and slip past a check. */
static int hexval(char h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	if (h >= 'A' && h <= 'F')
		return h - 'A' + 10;
	return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *r = s, *w = s;
	while (*r) {
		if (r[0] == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			int v = hexval(r[1]) * 16 + hexval(r[2]);
			if (v) {
				*w++ = (char)v;
				r += 3;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	size_t *n = cls;
	*n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static size_t request_size(struct MHD_Connection *c, const char *url)
{
	size_t n = strlen(url) + 16;
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_size, &n);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_size, &n);
	return n;
}

static bool has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return true;
	return cl && strspn(cl, "0") != strlen(cl);
}

/* Compare a candidate with the token without an early exit. */
static bool token_equal(const sp_api *api, const char *p, size_t len)
{
	unsigned char diff = (unsigned char)(len != api->token_len);
	for (size_t i = 0; i < api->token_len; i++)
		diff |= (unsigned char)((i < len ? (unsigned char)p[i] : 0) ^
					(unsigned char)api->token[i]);
	return diff == 0;
}

static bool authorized(sp_api *api, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h)
		return false;
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		const char *p = h + 7 + strspn(h + 7, " ");
		size_t len = strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		return token_equal(api, p, len);
	}
	if (strncasecmp(h, "Basic ", 6) == 0) {
		/* a browser on the dashboard: any user name, the token as password */
		char *pw = NULL, *user = MHD_basic_auth_get_username_password(c, &pw);
		bool ok = pw && token_equal(api, pw, strlen(pw));
		if (user)
			MHD_free(user);
		if (pw)
			MHD_free(pw);
		return ok;
	}
	return false;
}

/* ---- routes -------------------------------------------------------- */

enum route_id {
	R_NONE, R_HEALTH, R_COMPAT_IPS, R_COMPAT_NUMS, R_V1_IPS, R_V1_NUMS, R_V1_EXPORT,
	R_V1_EVENTS, R_V1_SUMMARY, R_METRICS, R_LOOKUP,
};

/* Lookup shapes (what follows a prefix is the key). */
static const struct {
	const char *prefix;
	int shape;
} lookup_routes[] = {
	{ "/ip-addresses/", 0 },
	{ "/numbers/", 1 },
	{ "/api/v1/ip-addresses/", 2 },
	{ "/api/v1/numbers/", 3 },
	{ "/api/v1/lookup/", 4 },
};

static const struct {
	const char *path;
	enum route_id id;
} exact_routes[] = {
	{ "/health-check", R_HEALTH },
	{ "/ip-addresses", R_COMPAT_IPS },
	{ "/numbers", R_COMPAT_NUMS },
	{ "/api/v1/ip-addresses", R_V1_IPS },
	{ "/api/v1/numbers", R_V1_NUMS },
	{ "/api/v1/export", R_V1_EXPORT },
	{ "/api/v1/events", R_V1_EVENTS },
	{ "/api/v1/summary", R_V1_SUMMARY },
	{ "/metrics", R_METRICS },
};

static enum route_id match(const char *url, int *shape, const char **rest)
{
	for (size_t i = 0; i < sizeof(exact_routes) / sizeof(exact_routes[0]); i++)
		if (strcmp(url, exact_routes[i].path) == 0)
			return exact_routes[i].id;
	for (size_t i = 0; i < sizeof(lookup_routes) / sizeof(lookup_routes[0]); i++) {
		size_t n = strlen(lookup_routes[i].prefix);
		if (strncmp(url, lookup_routes[i].prefix, n) == 0 && url[n]) {
			*shape = lookup_routes[i].shape;
			*rest = url + n;
			return R_LOOKUP;
		}
	}
	return R_NONE;
}

/* In con_cls between the two calls MHD makes for a request. */
static char checked_marker;
#define CHECKED ((void *)&checked_marker)

/*
 * libmicrohttpd calls this at least twice per request: once when the
 * headers are in, then (after any body) once more. A reply queued on the
 * first call closes the connection after it, so that call only runs the
 * checks and answers what fails them (the connection may as well close);
 * good requests are answered on the second call and the connection stays
 * open for the next. A third call comes for a lookup parked on the DHT.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	sp_api *api = cls;
	char q[96];
	bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	if (*con_cls && *con_cls != CHECKED) {
		*upload_size = 0;
		return api_lookup_resume(api, c, *con_cls);
	}
	if (*con_cls == NULL) {
		atomic_fetch_add_explicit(&api->c.requests, 1, memory_order_relaxed);
		if (request_size(c, url) > api->opt.max_header)
			return api_error(api, c, 431,
					 "request line and headers are larger than %zu bytes",
					 api->opt.max_header);
		if (api->token && !authorized(api, c))
			return api_error(api, c, 401, "this API needs its token: "
						      "'Authorization: Bearer TOKEN'");
		int shape;
		const char *rest;
		if (match(url, &shape, &rest) == R_NONE && !api_asset_find(url))
			return api_error(api, c, 404, "no such route: %s (see docs/api.md)",
					 api_quote(url, q, sizeof(q)));
		if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
			return api_error(api, c, 405,
					 "method %s not allowed: this API is read-only (GET, HEAD)",
					 api_quote(method, q, sizeof(q)));
		if (has_body(c))
			return api_error(api, c, 413,
					 "request bodies are not accepted (this API is read-only)");
		*con_cls = CHECKED;
		return MHD_YES;
	}
	if (*upload_size) { /* cannot happen: a body was refused above */
		*upload_size = 0;
		return MHD_YES;
	}

	uint64_t start = sp_mono_ns();
	int shape = 0;
	const char *rest = NULL;
	enum route_id id = match(url, &shape, &rest);
	if (id == R_NONE) {
		const struct api_asset *asset = api_asset_find(url);
		return asset ? api_route_asset(api, c, asset) : MHD_NO;
	}
	switch (id) {
	case R_HEALTH: return api_route_health(api, c);
	case R_LOOKUP: return api_route_lookup(api, c, con_cls, shape, rest, start);
	case R_COMPAT_IPS: return api_route_compat_list(api, c, SP_KIND_IP, head);
	case R_COMPAT_NUMS: return api_route_compat_list(api, c, SP_KIND_NUMBER, head);
	case R_V1_IPS: return api_route_feed(api, c, SP_KIND_IP);
	case R_V1_NUMS: return api_route_feed(api, c, SP_KIND_NUMBER);
	case R_V1_EXPORT: return api_route_export(api, c, head);
	case R_V1_EVENTS: return api_route_events(api, c);
	case R_V1_SUMMARY: return api_route_summary(api, c);
	case R_METRICS: return api_route_metrics(api, c);
	case R_NONE: break;
	}
	return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_req *r = *con_cls;
	if (!r || r == CHECKED)
		return;
	if (r->job)
		api_dht_release(cls, r->job);
	free(r);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	sp_api *api = cls;
	/* on the thread serving the connection (libmicrohttpd's own) */
	sp_thread_latency();
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add_explicit(&api->c.connections, 1, memory_order_relaxed);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: %s", buf);
}

/* ---- options -------------------------------------------------------- */

static int read_token_file(const char *path, char **out)
{
	struct stat sb;
	char buf[TOKEN_FILE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("api-token-file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
		log_warn("api-token-file %s can be read by other users (chmod 600 it)", path);
	ssize_t n = read(fd, buf, TOKEN_FILE_MAX + 1);
	int err = errno;
	close(fd);
	if (n < 0) {
		log_error("api-token-file %s: %s", path, strerror(err));
		return -err;
	}
	if (n > TOKEN_FILE_MAX) {
		log_error("api-token-file %s: larger than %d bytes", path, TOKEN_FILE_MAX);
		return SP_ETOOBIG;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0'; /* the first line */
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

static bool token_ok(const char *t)
{
	if (!*t || strlen(t) > 1024)
		return false;
	for (; *t; t++)
		if (*t < 0x21 || *t > 0x7e)
			return false;
	return true;
}

int sp_api_options_from_config(struct sp_api_options *o, const struct sp_config *cfg,
			       char **token)
{
	int rc;
	memset(o, 0, sizeof(*o));
	*token = NULL;
	if (cfg->api_token && cfg->api_token_file) {
		log_error("give api-token or api-token-file, not both");
		return SP_EPARSE;
	}
	if (cfg->api_token_file && (rc = read_token_file(cfg->api_token_file, token)))
		return rc;
	if (cfg->api_token && !(*token = strdup(cfg->api_token)))
		return -ENOMEM;
	if (*token && !token_ok(*token)) {
		log_error("the API token must be 1 to 1024 printable characters without spaces");
		free(*token);
		*token = NULL;
		return SP_EPARSE;
	}
	o->addresses = &cfg->api_addresses;
	o->port = (uint16_t)cfg->api_port;
	o->token = *token;
	o->threads = (unsigned)cfg->api_threads;
	o->max_conns = (unsigned)cfg->api_max_conns;
	o->max_conns_per_source = (unsigned)cfg->api_max_conns_per_source;
	o->max_exports = (unsigned)cfg->api_max_exports;
	o->dht_lookups = (unsigned)cfg->api_dht_lookups;
	o->idle_timeout_ns = cfg->api_idle_timeout_ns;
	o->dht_timeout_ns = cfg->api_dht_timeout_ns;
	o->max_header = cfg->api_max_header;
	o->sharing = cfg->peer_to_peer;
	o->min_reporters = (unsigned)cfg->dht_min_reporters;
	return 0;
}

/* ---- start and stop ------------------------------------------------ */

static int listen_on(const char *addr, uint16_t port, int *fd_out, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return SP_EBADIP;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return SP_EBADIP;
		sl = sizeof(*s4);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						: ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

static bool is_loopback(const char *addr)
{
	return strcmp(addr, "::1") == 0 || strncmp(addr, "127.", 4) == 0;
}

static int start_daemon(sp_api *api, size_t i)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	/* libmicrohttpd zeroes a connection's whole buffer after each request:
	 * keep it to what a request may use (the headers, our reply's headers) */
	size_t pool = api->opt.max_header + 4096;
	unsigned timeout = (unsigned)((api->opt.idle_timeout_ns + SP_NS_PER_SEC - 1) / SP_NS_PER_SEC);
	api->daemons[i] = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, api,
		MHD_OPTION_LISTEN_SOCKET, api->socks[i],
		/* one thread: no pool (libmicrohttpd warns about a pool of 1) */
		api->opt.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_LIMIT,
		api->opt.threads > 1 ? api->opt.threads : api->opt.max_conns,
		MHD_OPTION_CONNECTION_LIMIT, api->opt.max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, api->opt.max_conns_per_source,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, api,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, api,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
		MHD_OPTION_END);
	return api->daemons[i] ? 0 : -EIO;
}

int sp_api_open(sp_api **out, sp_store *st, const struct sp_api_options *opt)
{
	int rc = 0;
	uint8_t id[16];
	*out = NULL;
	if (!opt->addresses || !opt->addresses->n)
		return SP_EPARSE;
	sp_api *api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->st = st;
	api->opt = *opt;
	api->opt.addresses = NULL;
	api->opt.token = NULL;
	if (!api->opt.threads) {
		/* one per two CPUs: the VoIP server asking usually runs on the
		 * same machine, and needs a CPU too (tools/bench/bench_api.sh:
		 * on 2 CPUs, 1 thread gave 30,000-35,000 listed lookups/s at
		 * p99 1.2-1.8 ms, 2 threads 27,000-34,000 at p99 3.4-3.9 ms) */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		api->opt.threads = cpus >= 4 ? (unsigned)(cpus / 2 < 16 ? cpus / 2 : 16) : 1;
	}
	if (!api->opt.max_conns)
		api->opt.max_conns = 512;
	if (!api->opt.max_conns_per_source)
		api->opt.max_conns_per_source = api->opt.max_conns;
	if (!api->opt.max_exports)
		api->opt.max_exports = 4;
	if (!api->opt.dht_lookups)
		api->opt.dht_lookups = 16;
	if (!api->opt.idle_timeout_ns)
		api->opt.idle_timeout_ns = 10 * SP_NS_PER_SEC;
	if (!api->opt.max_header)
		api->opt.max_header = 8192;
	if (!api->opt.stream_timeout_ns)
		api->opt.stream_timeout_ns = 600 * SP_NS_PER_SEC;
	if (api->opt.dht_timeout_ns > API_DHT_TIMEOUT_MAX)
		api->opt.dht_timeout_ns = API_DHT_TIMEOUT_MAX;
	pthread_mutex_init(&api->mu, NULL);
	pthread_cond_init(&api->cv, NULL);
	api->started_ns = sp_now_ns();
	sp_store_node_id(st, id);
	snprintf(api->epoch, sizeof(api->epoch), "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
	sp_uuid_format(id, api->node_id);
	if (opt->token && *opt->token) {
		if (!(api->token = strdup(opt->token))) {
			rc = -ENOMEM;
			goto fail;
		}
		api->token_len = strlen(api->token);
	}

	size_t n = opt->addresses->n;
	api->daemons = calloc(n, sizeof(*api->daemons));
	api->socks = malloc(n * sizeof(*api->socks));
	api->addrs = calloc(n, sizeof(*api->addrs));
	if (!api->daemons || !api->socks || !api->addrs) {
		rc = -ENOMEM;
		goto fail;
	}
	uint16_t port = opt->port;
	for (size_t i = 0; i < n; i++) {
		const char *addr = opt->addresses->v[i];
		bool v6 = strchr(addr, ':') != NULL;
		uint16_t bound = 0;
		if ((rc = listen_on(addr, port, &api->socks[i], &bound))) {
			log_error("HTTP API: cannot listen on %s%s%s:%u: %s%s", v6 ? "[" : "", addr,
				  v6 ? "]" : "", port, sp_strerror(rc),
				  rc == -EADDRINUSE ? " (another program has it: set --api-port)" : "");
			goto fail;
		}
		api->n_daemons = i + 1;
		if (i == 0) {
			api->port = bound;
			port = bound; /* port 0: every address on the port the kernel gave */
		}
		snprintf(api->addrs[i], sizeof(api->addrs[i]), "%s%s%s:%u", v6 ? "[" : "", addr,
			 v6 ? "]" : "", bound);
		if (!api->token && !is_loopback(addr))
			log_warn("the HTTP API listens on %s without a token: anyone who can reach it "
				 "can read the list (set api-token-file)", addr);
	}
	*out = api;
	return 0;
fail:
	sp_api_stop(api);
	return rc;
}

int sp_api_run(sp_api *api, const struct sp_api_live *live)
{
	int rc;
	if (live)
		api->live = *live;
	if (live && live->dht && live->dht->lookup) {
		api->dht = *live->dht;
		api->has_dht = true;
		if ((rc = api_dht_pool_start(api)))
			return rc;
	}
	if ((rc = api_summary_start(api)))
		return rc;
	for (size_t i = 0; i < api->n_daemons; i++) {
		if ((rc = start_daemon(api, i))) {
			log_error("HTTP API: cannot start the server on %s", api->addrs[i]);
			return rc;
		}
		log_info("HTTP API listening on http://%s/ (%s)", api->addrs[i],
			 api->token ? "token required" : "no token");
	}
	return 0;
}

int sp_api_start(sp_api **out, sp_store *st, const struct sp_api_options *opt,
		 const struct sp_api_live *live)
{
	int rc = sp_api_open(out, st, opt);
	if (rc == 0 && (rc = sp_api_run(*out, live))) {
		sp_api_stop(*out);
		*out = NULL;
	}
	return rc;
}

uint16_t sp_api_port(const sp_api *api) { return api ? api->port : 0; }

void sp_api_stop(sp_api *api)
{
	if (!api)
		return;
	atomic_store(&api->stopping, true);
	/* no new connections, then nothing parked, then no connections */
	for (size_t i = 0; i < api->n_daemons; i++)
		if (api->daemons[i])
			MHD_quiesce_daemon(api->daemons[i]);
	if (api->pool)
		api_dht_pool_close(api);
	api_streams_close(api);
	for (size_t i = 0; i < api->n_daemons; i++)
		if (api->daemons[i])
			MHD_stop_daemon(api->daemons[i]);
	api_streams_wait(api);
	if (api->pool)
		api_dht_pool_free(api);
	api_summary_stop(api);
	for (size_t i = 0; i < api->n_daemons; i++)
		close(api->socks[i]);
	pthread_mutex_destroy(&api->mu);
	pthread_cond_destroy(&api->cv);
	free(api->daemons);
	free(api->socks);
	free(api->addrs);
	free(api->token);
	free(api);
}
