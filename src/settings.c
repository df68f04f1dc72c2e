/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "settings.h"
#include "identity.h"
#include "sp_error.h"
#include "sp_key.h"
#include "sp_time.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/sentrypeer/sentrypeer.conf"

enum type { T_BOOL, T_UINT, T_SIZE, T_DURATION, T_STRING, T_PATH, T_ENUM, T_LIST, T_ADDRS, T_PORT,
	    T_KEYIDS };

enum origin { FROM_DEFAULT, FROM_FILE, FROM_ENV, FROM_ARGS };

struct setting {
	const char *name;
	const char *alias; /* second long name, or NULL */
	char short_flag;
	enum type type;
	const char *env;
	const char *def; /* NULL: unset (computed later) */
	uint64_t min, max;
	const char *choices; /* T_ENUM: "a|b|c" */
	unsigned scope;
	size_t offset;
	const char *help;
};

#define OFF(f) offsetof(struct sp_config, f)
#define NS(x) ((x) * SP_NS_PER_SEC)

static const struct setting settings[] = {
	/* where the data is: every subcommand */
	{ "config", NULL, 0, T_PATH, "SENTRYPEER_CONFIG", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(config_file), "config file to read (default " DEFAULT_CONFIG " if it exists)" },
	{ "data-dir", NULL, 0, T_PATH, "SENTRYPEER_DATA_DIR", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(data_dir),
	  "data directory (default /var/lib/sentrypeer as root, else ~/.local/state/sentrypeer)" },
	{ "db-file", NULL, 'f', T_PATH, "SENTRYPEER_DB_FILE", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(db_file), "store file (default DATA_DIR/" SP_STORE_FILE ")" },
	{ "map-size", NULL, 0, T_SIZE, "SENTRYPEER_MAP_SIZE", "1G", UINT64_C(1) << 20,
	  UINT64_C(1) << 40, NULL, SP_SCOPE_ANY, OFF(map_size),
	  "largest size the store may grow to (address space, not memory)" },
	{ "verbose", NULL, 'v', T_BOOL, "SENTRYPEER_VERBOSE", "no", 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(verbose), "log more" },
	{ "debug", NULL, 'd', T_BOOL, "SENTRYPEER_DEBUG", "no", 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(debug), "log everything, each event included" },
	/* the node */
	{ "retention", NULL, 0, T_DURATION, "SENTRYPEER_RETENTION", "7d", NS(60), NS(366 * 86400),
	  NULL, SP_SCOPE_RUN, OFF(retention_ns), "how long records are kept after last seen" },
	{ "sweep-interval", NULL, 0, T_DURATION, "SENTRYPEER_SWEEP_INTERVAL", "1m", NS(1),
	  NS(86400), NULL, SP_SCOPE_RUN, OFF(sweep_interval_ns),
	  "how often expired records are removed" },
	{ "sync", NULL, 0, T_ENUM, "SENTRYPEER_SYNC", "full", 0, 0, "full|nometa|none", SP_SCOPE_RUN,
	  OFF(sync),
	  "durability of commits: full survives power loss; nometa may lose the last commit; "
	  "none may lose recent commits on power loss (all survive a crash or kill -9)" },
	{ "queue-size", NULL, 0, T_UINT, "SENTRYPEER_QUEUE_SIZE", "65536", 64, 1 << 24, NULL,
	  SP_SCOPE_RUN, OFF(queue_size), "events waiting for the writer; beyond it they are dropped and counted" },
	{ "queue-memory", NULL, 0, T_SIZE, "SENTRYPEER_QUEUE_MEMORY", "8M", UINT64_C(1) << 20,
	  UINT64_C(1) << 32, NULL, SP_SCOPE_RUN, OFF(queue_memory),
	  "memory the waiting events may hold; beyond it they are dropped and counted" },
	{ "batch-size", NULL, 0, T_UINT, "SENTRYPEER_BATCH_SIZE", "4096", 1, 65536, NULL,
	  SP_SCOPE_RUN, OFF(batch_size), "most events committed in one transaction" },
	{ "raw-max", NULL, 0, T_SIZE, "SENTRYPEER_RAW_MAX", "8K", 0, 65536, NULL, SP_SCOPE_RUN,
	  OFF(raw_max), "bytes of each SIP message kept with its event" },
	{ "store-compress", NULL, 0, T_BOOL, "SENTRYPEER_STORE_COMPRESS", "yes", 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(store_compress),
	  "store SIP messages compressed (LZ4, about a third of their size; costs the listeners about 2 us a message)" },
	{ "json-log", NULL, 'j', T_BOOL, "SENTRYPEER_JSON_LOG", "no", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(json_log), "write each event as a JSON line (upstream keys)" },
	{ "json-log-file", NULL, 'l', T_PATH, "SENTRYPEER_JSON_LOG_FILE", NULL, 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(json_log_file), "JSON log file (default DATA_DIR/sentrypeer_json.log)" },
	{ "syslog", NULL, 's', T_BOOL, "SENTRYPEER_SYSLOG", "no", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(syslog), "log each event to syslog (for Fail2Ban)" },
	{ "sip-responsive", NULL, 'r', T_BOOL, "SENTRYPEER_SIP_RESPONSIVE", "no", 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(sip_responsive), "answer SIP requests like a real server" },
	{ "sip-disable", NULL, 'R', T_BOOL, "SENTRYPEER_SIP_DISABLE", "no", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(sip_disable), "do not listen for SIP" },
	{ "api", NULL, 'a', T_BOOL, "SENTRYPEER_API", "no", 0, 0, NULL, SP_SCOPE_RUN, OFF(api),
	  "serve the local HTTP API" },
	{ "webhook-url", NULL, 'w', T_STRING, "SENTRYPEER_WEBHOOK_URL", NULL, 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(webhook_url), "POST each event to this URL" },
	{ "peer-to-peer", "share", 'p', T_BOOL, "SENTRYPEER_PEER_TO_PEER", "yes", 0, 0, NULL,
	  SP_SCOPE_ANY, OFF(peer_to_peer),
	  "share observations over the DHT and receive peers' (--no-share: neither)" },
	{ "bootstrap", NULL, 'b', T_LIST, "SENTRYPEER_BOOTSTRAP_NODE", "bootstrap.jami.net:4222", 0,
	  0, NULL, SP_SCOPE_ANY, OFF(bootstrap),
	  "DHT bootstrap node host[:port]; repeatable; 'none' for the first node of a network" },
	{ "dht-port", NULL, 0, T_PORT, "SENTRYPEER_DHT_PORT", "4222", 0, 65535, NULL, SP_SCOPE_RUN,
	  OFF(dht_port), "UDP port of the DHT node (0: any free port)" },
	{ "dht-network", NULL, 0, T_UINT, "SENTRYPEER_DHT_NETWORK", "0", 0, UINT32_MAX, NULL,
	  SP_SCOPE_ANY, OFF(dht_network),
	  "DHT network id: 0 is the public network, any other number a private one" },
	{ "dht-proxy", NULL, 0, T_STRING, "SENTRYPEER_DHT_PROXY", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(dht_proxy), "reach the DHT through this OpenDHT proxy URL instead of as a full node" },
	{ "dht-timeout", NULL, 0, T_DURATION, "SENTRYPEER_DHT_TIMEOUT", "1500ms",
	  UINT64_C(10000000), NS(60), NULL, SP_SCOPE_ANY, OFF(dht_timeout_ns),
	  "longest a lookup waits for the DHT" },
	{ "dht-ttl", NULL, 0, T_DURATION, "SENTRYPEER_DHT_TTL", "7d", NS(60), NS(30 * 86400), NULL,
	  SP_SCOPE_RUN, OFF(dht_ttl_ns), "what this node publishes expires this long after last seen" },
	{ "dht-publish-interval", NULL, 0, T_DURATION, "SENTRYPEER_DHT_PUBLISH_INTERVAL", "5m", NS(1),
	  NS(86400), NULL, SP_SCOPE_RUN, OFF(dht_publish_interval_ns),
	  "at most one publish per IP or number in this time (new ones go out at once)" },
	{ "dht-bandwidth", NULL, 0, T_SIZE, "SENTRYPEER_DHT_BANDWIDTH", "4K", 256,
	  UINT64_C(1) << 30, NULL, SP_SCOPE_RUN, OFF(dht_bandwidth),
	  "bytes a second this node may spend publishing (estimated); newest records first" },
	{ "dht-min-reporters", NULL, 0, T_UINT, "SENTRYPEER_DHT_MIN_REPORTERS", "1", 1, 32, NULL,
	  SP_SCOPE_ANY, OFF(dht_min_reporters),
	  "distinct peers that must report a key before peer data alone lists it" },
	{ "dht-allow", NULL, 0, T_KEYIDS, "SENTRYPEER_DHT_ALLOW", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(dht_allow), "accept peer data only from these key ids; repeatable" },
	{ "dht-deny", NULL, 0, T_KEYIDS, "SENTRYPEER_DHT_DENY", NULL, 0, 0, NULL, SP_SCOPE_ANY,
	  OFF(dht_deny), "never accept peer data from these key ids; repeatable" },
	{ "sip-address", NULL, 0, T_ADDRS, "SENTRYPEER_SIP_ADDRESS", "0.0.0.0,::", 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(sip_addresses), "addresses the SIP listeners bind; repeatable" },
	{ "sip-port", NULL, 0, T_PORT, "SENTRYPEER_SIP_PORT", "5060", 0, 65535, NULL, SP_SCOPE_RUN,
	  OFF(sip_port), "SIP port for UDP and TCP (0: any free port)" },
	{ "sip-tls-port", NULL, 0, T_PORT, "SENTRYPEER_SIP_TLS_PORT", "5061", 0, 65535, NULL,
	  SP_SCOPE_RUN, OFF(sip_tls_port), "SIP port for TLS (0: any free port)" },
	{ "sip-udp", NULL, 0, T_BOOL, "SENTRYPEER_SIP_UDP", "yes", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(sip_udp), "listen for SIP over UDP" },
	{ "sip-tcp", NULL, 0, T_BOOL, "SENTRYPEER_SIP_TCP", "yes", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(sip_tcp), "listen for SIP over TCP" },
	{ "sip-tls", NULL, 0, T_BOOL, "SENTRYPEER_SIP_TLS", "yes", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(sip_tls), "listen for SIP over TLS" },
	{ "tls-cert", NULL, 0, T_PATH, "SENTRYPEER_TLS_CERT", NULL, 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(tls_cert), "TLS certificate, PEM (default: self-signed, made once in DATA_DIR)" },
	{ "tls-key", NULL, 0, T_PATH, "SENTRYPEER_TLS_KEY", NULL, 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(tls_key), "TLS private key, PEM" },
	{ "sip-redirect", NULL, 0, T_STRING, "SENTRYPEER_SIP_REDIRECT", NULL, 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(sip_redirect),
	  "responsive mode: answer INVITEs with 302 to this SIP URI instead of 404" },
	{ "sip-reply-rate", NULL, 0, T_UINT, "SENTRYPEER_SIP_REPLY_RATE", "10", 1, 100000, NULL,
	  SP_SCOPE_RUN, OFF(sip_reply_rate),
	  "responsive mode: replies a second to one source address (burst twice that)" },
	{ "sip-max-connections", NULL, 0, T_UINT, "SENTRYPEER_SIP_MAX_CONNECTIONS", "512", 1, 65536,
	  NULL, SP_SCOPE_RUN, OFF(sip_max_conns), "open TCP and TLS connections, in total" },
	{ "sip-max-connections-per-source", NULL, 0, T_UINT,
	  "SENTRYPEER_SIP_MAX_CONNECTIONS_PER_SOURCE", "32", 1, 65536, NULL, SP_SCOPE_RUN,
	  OFF(sip_max_conns_per_source), "open TCP and TLS connections from one address" },
	{ "sip-idle-timeout", NULL, 0, T_DURATION, "SENTRYPEER_SIP_IDLE_TIMEOUT", "30s", NS(1),
	  NS(3600), NULL, SP_SCOPE_RUN, OFF(sip_idle_timeout_ns),
	  "close TCP and TLS connections silent this long (a message must be whole in a third of it)" },
	{ "sip-max-header", NULL, 0, T_SIZE, "SENTRYPEER_SIP_MAX_HEADER", "16K", 1024, 65536, NULL,
	  SP_SCOPE_RUN, OFF(sip_max_header), "largest SIP header block over TCP and TLS" },
	{ "sip-max-body", NULL, 0, T_SIZE, "SENTRYPEER_SIP_MAX_BODY", "48K", 0, 65536, NULL,
	  SP_SCOPE_RUN, OFF(sip_max_body), "largest SIP body over TCP and TLS" },
	{ "user", NULL, 0, T_STRING, "SENTRYPEER_USER", "nobody", 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(run_user), "started as root: the user to switch to once the ports are bound" },
	{ "api-address", NULL, 0, T_ADDRS, "SENTRYPEER_API_ADDRESS", "127.0.0.1", 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(api_addresses), "addresses the HTTP API binds; repeatable" },
	{ "api-port", NULL, 0, T_PORT, "SENTRYPEER_API_PORT", "8082", 0, 65535, NULL, SP_SCOPE_RUN,
	  OFF(api_port), "HTTP API port (0: any free port)" },
	{ "api-token", NULL, 0, T_STRING, "SENTRYPEER_API_TOKEN", NULL, 0, 0, NULL, SP_SCOPE_RUN,
	  OFF(api_token),
	  "HTTP API: require this bearer token (a flag shows in ps: prefer api-token-file)" },
	{ "api-token-file", NULL, 0, T_PATH, "SENTRYPEER_API_TOKEN_FILE", NULL, 0, 0, NULL,
	  SP_SCOPE_RUN, OFF(api_token_file), "HTTP API: read the bearer token from this file" },
	{ "api-threads", NULL, 0, T_UINT, "SENTRYPEER_API_THREADS", "0", 0, 64, NULL, SP_SCOPE_RUN,
	  OFF(api_threads), "HTTP API: threads answering requests (0: one per two CPUs, at least 1)" },
	{ "api-max-connections", NULL, 0, T_UINT, "SENTRYPEER_API_MAX_CONNECTIONS", "512", 1, 65536,
	  NULL, SP_SCOPE_RUN, OFF(api_max_conns), "HTTP API: open connections, in total" },
	{ "api-max-connections-per-source", NULL, 0, T_UINT,
	  "SENTRYPEER_API_MAX_CONNECTIONS_PER_SOURCE", "256", 1, 65536, NULL, SP_SCOPE_RUN,
	  OFF(api_max_conns_per_source), "HTTP API: open connections from one address" },
	{ "api-idle-timeout", NULL, 0, T_DURATION, "SENTRYPEER_API_IDLE_TIMEOUT", "10s", NS(1),
	  NS(3600), NULL, SP_SCOPE_RUN, OFF(api_idle_timeout_ns),
	  "HTTP API: close connections silent this long" },
	{ "api-max-header", NULL, 0, T_SIZE, "SENTRYPEER_API_MAX_HEADER", "8K", 1024, 65536, NULL,
	  SP_SCOPE_RUN, OFF(api_max_header),
	  "HTTP API: largest request line and headers (larger gets 431 or 414)" },
	{ "api-max-exports", NULL, 0, T_UINT, "SENTRYPEER_API_MAX_EXPORTS", "4", 1, 64, NULL,
	  SP_SCOPE_RUN, OFF(api_max_exports),
	  "HTTP API: exports and full lists streamed at once (more get 503)" },
	{ "api-dht-timeout", NULL, 0, T_DURATION, "SENTRYPEER_API_DHT_TIMEOUT", "500ms", 0, NS(10),
	  NULL, SP_SCOPE_RUN, OFF(api_dht_timeout_ns),
	  "HTTP API: on a local miss, how long a lookup may wait for the DHT when the caller "
	  "gives no ?timeout= (0: local store only)" },
	{ "api-dht-lookups", NULL, 0, T_UINT, "SENTRYPEER_API_DHT_LOOKUPS", "16", 1, 256, NULL,
	  SP_SCOPE_RUN, OFF(api_dht_lookups),
	  "HTTP API: DHT lookups at once; more wait, within their own timeout" },
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static const char *type_hint(const struct setting *s)
{
	switch (s->type) {
	case T_BOOL: return NULL;
	case T_UINT: return "N";
	case T_SIZE: return "SIZE";
	case T_DURATION: return "DURATION";
	case T_PATH: return "PATH";
	case T_ENUM: return s->choices;
	case T_LIST: return "HOST[:PORT]";
	case T_ADDRS: return "ADDRESS";
	case T_KEYIDS: return "KEYID";
	case T_PORT: return "PORT";
	case T_STRING: return "TEXT";
	}
	return "VALUE";
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return SP_EPARSE;
}

static void list_clear(struct sp_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int list_add(struct sp_strlist *l, const char *v, size_t len)
{
	char **nl = realloc(l->v, (l->n + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	l->v = nl;
	nl[l->n] = strndup(v, len);
	if (!nl[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Set one value; 'where' names the source for the error message. */
static int setting_apply(struct sp_config *cfg, const struct setting *s, const char *v,
			 const char *where, enum origin from, enum origin *origins)
{
	void *p = (char *)cfg + s->offset;
	uint64_t u;
	int rc = 0;
	const char *what = NULL;
	char range[96];

	switch (s->type) {
	case T_BOOL:
		if (parse_bool(v, (bool *)p))
			what = "yes or no (also 1/0, true/false, on/off)";
		break;
	case T_UINT: {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end || errno || x < s->min || x > s->max) {
			snprintf(range, sizeof(range), "a whole number from %llu to %llu",
				 (unsigned long long)s->min, (unsigned long long)s->max);
			what = range;
		}
		else
			*(uint64_t *)p = x;
		break;
	}
	case T_SIZE:
		if (sp_size_parse(v, &u) || u < s->min || u > s->max)
			what = "a size in range, such as 64K, 512M or 2G";
		else
			*(uint64_t *)p = u;
		break;
	case T_DURATION:
		if (sp_duration_parse(v, &u) || u < s->min || u > s->max)
			what = "a duration in range, such as 90s, 15m, 12h or 7d";
		else
			*(uint64_t *)p = u;
		break;
	case T_ENUM: {
		const char *c = s->choices;
		int idx = 0;
		size_t vl = strlen(v);
		what = s->choices;
		while (c) {
			const char *bar = strchr(c, '|');
			size_t cl = bar ? (size_t)(bar - c) : strlen(c);
			if (cl == vl && strncmp(c, v, cl) == 0) {
				*(int *)p = idx;
				what = NULL;
				break;
			}
			c = bar ? bar + 1 : NULL;
			idx++;
		}
		break;
	}
	case T_STRING:
	case T_PATH: {
		char **sp = p;
		if (s->type == T_PATH && *v == '\0') {
			what = "a path";
			break;
		}
		free(*sp);
		*sp = strdup(v);
		if (!*sp)
			rc = -ENOMEM;
		break;
	}
	case T_LIST:
	case T_ADDRS:
	case T_KEYIDS: {
		struct sp_strlist *list = p;
		size_t idx = (size_t)(s - settings);
		char addr[SP_KEY_MAX];
		if (origins[idx] != from)
			list_clear(list); /* a higher source replaces, the same one adds */
		for (const char *t = v; *t && !what;) {
			size_t l = strcspn(t, ", ");
			char item[256];
			if (l >= sizeof(item)) {
				what = s->type == T_ADDRS ? "IP addresses" : s->type == T_KEYIDS ? "key ids" : "host[:port] entries";
				break;
			}
			memcpy(item, t, l);
			item[l] = '\0';
			uint8_t pub[SP_PUBKEY_LEN];
			if (l && s->type == T_ADDRS && sp_ip_normalize(item, addr, NULL) != 0)
				what = "IP addresses such as 0.0.0.0, :: or 127.0.0.1";
			else if (l && s->type == T_KEYIDS && sp_keyid_parse(item, pub) != 0)
				what = "key ids of 64 hex digits (sentrypeer id prints one)";
			else if (l && (rc = list_add(list, item, l)))
				break;
			t += l;
			t += strspn(t, ", ");
		}
		if (!what && list->n == 0)
			what = "at least one entry";
		break;
	}
	case T_PORT: {
		char *end;
		errno = 0;
		unsigned long x = strtoul(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end || errno || x > s->max)
			what = "a port number from 0 to 65535";
		else
			*(uint64_t *)p = x;
		break;
	}
	}
	if (what) {
		fprintf(stderr, "sentrypeer: %s: '%s' is not valid for %s: expected %s\n", where, v,
			s->name, what);
		return 2;
	}
	origins[s - settings] = from;
	return rc ? 2 : 0;
}

static const struct setting *find_long(const char *name, size_t len, bool *negated)
{
	*negated = false;
	if (len > 3 && strncmp(name, "no-", 3) == 0) {
		const struct setting *s = find_long(name + 3, len - 3, negated);
		if (s && s->type == T_BOOL) {
			*negated = true;
			return s;
		}
		*negated = false;
	}
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		if ((strlen(s->name) == len && strncmp(s->name, name, len) == 0) ||
		    (s->alias && strlen(s->alias) == len && strncmp(s->alias, name, len) == 0))
			return s;
	}
	return NULL;
}

static int load_file(struct sp_config *cfg, const char *path, bool must_exist, enum origin *origins)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned lineno = 0;
	int rc = 0;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "sentrypeer: config file %s: %s\n", path, strerror(errno));
		return 2;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char where[PATH_MAX + 32];
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "sentrypeer: %s: line too long\n", where);
			rc = 2;
			break;
		}
		char *p = line + strspn(line, " \t");
		p[strcspn(p, "\r\n")] = '\0';
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (!eq) {
			fprintf(stderr, "sentrypeer: %s: expected 'name = value'\n", where);
			rc = 2;
			break;
		}
		char *name_end = eq;
		while (name_end > p && isspace((unsigned char)name_end[-1]))
			name_end--;
		char *v = eq + 1 + strspn(eq + 1, " \t");
		char *ve = v + strlen(v);
		while (ve > v && isspace((unsigned char)ve[-1]))
			*--ve = '\0';
		if (ve - v >= 2 && (*v == '"' || *v == '\'') && ve[-1] == *v) {
			ve[-1] = '\0';
			v++;
		}
		for (char *c = p; c < name_end; c++)
			if (*c == '_')
				*c = '-';
		bool neg;
		const struct setting *s = find_long(p, (size_t)(name_end - p), &neg);
		if (!s || neg || s->offset == OFF(config_file)) {
			fprintf(stderr, "sentrypeer: %s: unknown setting '%.*s'\n", where,
				(int)(name_end - p), p);
			rc = 2;
			break;
		}
		rc = setting_apply(cfg, s, v, where, FROM_FILE, origins);
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "sentrypeer: config file %s: read error\n", path);
		rc = 2;
	}
	fclose(f);
	return rc;
}

static void default_data_dir(struct sp_config *cfg)
{
	char buf[PATH_MAX];
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (geteuid() == 0)
		snprintf(buf, sizeof(buf), "/var/lib/sentrypeer");
	else if (state && *state)
		snprintf(buf, sizeof(buf), "%s/sentrypeer", state);
	else if (home && *home)
		snprintf(buf, sizeof(buf), "%s/.local/state/sentrypeer", home);
	else
		snprintf(buf, sizeof(buf), "sentrypeer-data");
	cfg->data_dir = strdup(buf);
}

static void print_usage_line(FILE *out, const char *usage)
{
	fprintf(out, "usage: %s\n", usage);
}

static void print_opts(FILE *out, const struct sp_opt *opts)
{
	for (const struct sp_opt *o = opts; o && o->name; o++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "%s%c%s--%s%s%s", o->short_flag ? "-" : "",
			 o->short_flag ? o->short_flag : ' ', o->short_flag ? ", " : "  ", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-30s %s\n", o->short_flag ? flag : flag + 2, o->help);
	}
}

int sp_settings_load(struct sp_config *cfg, int argc, char **argv, unsigned scope,
		     const struct sp_opt *opts, sp_opt_fn fn, void *ud, char ***pos, int *npos,
		     const char *usage)
{
	enum origin origins[N_SETTINGS] = { 0 };
	const char *config = NULL;
	bool config_explicit = false;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	*pos = calloc((size_t)argc + 1, sizeof(char *));
	*npos = 0;
	if (!*pos)
		return 2;

	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].def &&
		    (rc = setting_apply(cfg, &settings[i], settings[i].def, "default", FROM_DEFAULT,
					origins)))
			return rc;

	/* the config file comes first, so find it before anything else */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
			config_explicit = true;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
			config_explicit = true;
		}
	}
	if (!config && getenv("SENTRYPEER_CONFIG")) {
		/* set but empty: read no config file at all */
		config = getenv("SENTRYPEER_CONFIG");
		config_explicit = true;
	}
	if (!config)
		config = DEFAULT_CONFIG;
	if (*config && (rc = load_file(cfg, config, config_explicit, origins)))
		return rc;
	if (!*config)
		config_explicit = false;
	if (config_explicit)
		cfg->config_file = strdup(config);

	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *v = getenv(settings[i].env);
		char where[64];
		if (!v || settings[i].offset == OFF(config_file))
			continue;
		snprintf(where, sizeof(where), "environment %s", settings[i].env);
		if ((rc = setting_apply(cfg, &settings[i], v, where, FROM_ENV, origins)))
			return rc;
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (++i < argc)
				(*pos)[(*npos)++] = argv[i];
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_usage_line(stdout, usage);
			if (opts && opts->name) {
				printf("\noptions:\n");
				print_opts(stdout, opts);
			}
			printf("\nsettings (also SENTRYPEER_* variables and config file keys):\n");
			sp_settings_print_help(stdout, scope);
			return 1;
		}
		if (a[0] != '-' || a[1] == '\0') {
			(*pos)[(*npos)++] = argv[i];
			continue;
		}
		/* a subcommand option? */
		const struct sp_opt *o = NULL;
		const char *val = NULL;
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			for (const struct sp_opt *c = opts; c && c->name; c++)
				if (strlen(c->name) == len && strncmp(c->name, name, len) == 0)
					o = c;
			if (o) {
				if (o->arg && eq)
					val = eq + 1;
				else if (o->arg && i + 1 < argc)
					val = argv[++i];
				else if (o->arg || eq) {
					fprintf(stderr, "sentrypeer: --%s %s\n", o->name,
						o->arg ? "needs a value" : "takes no value");
					return 2;
				}
				if (fn(o->id, val, ud))
					return 2;
				continue;
			}
			if (len == 6 && strncmp(name, "config", 6) == 0) {
				if (!eq)
					i++;
				continue; /* already read */
			}
			bool neg;
			const struct setting *s = find_long(name, len, &neg);
			if (!s) {
				fprintf(stderr, "sentrypeer: unknown option '%s' (see %s --help)\n", a,
					argv[0]);
				return 2;
			}
			if (!(s->scope & scope)) {
				fprintf(stderr, "sentrypeer: --%s only applies to 'sentrypeer run'\n",
					s->name);
				return 2;
			}
			if (s->type == T_BOOL && !eq)
				val = neg ? "no" : "yes";
			else if (neg) {
				fprintf(stderr, "sentrypeer: --no-%s takes no value\n", s->name);
				return 2;
			} else if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				fprintf(stderr, "sentrypeer: --%s needs a value (%s)\n", s->name,
					type_hint(s));
				return 2;
			}
			char where[96];
			snprintf(where, sizeof(where), "--%s", s->name);
			if ((rc = setting_apply(cfg, s, val, where, FROM_ARGS, origins)))
				return rc;
			continue;
		}
		/* short flags, possibly bundled (-dv) or with a value (-f FILE, -fFILE) */
		for (const char *c = a + 1; *c; c++) {
			const struct sp_opt *so = NULL;
			const struct setting *s = NULL;
			for (const struct sp_opt *x = opts; x && x->name; x++)
				if (x->short_flag == *c)
					so = x;
			for (size_t k = 0; !so && k < N_SETTINGS; k++)
				if (settings[k].short_flag == *c)
					s = &settings[k];
			if (*c == 'V' && !so && !s) {
				printf("sentrypeer %s\n", SP_VERSION);
				return 1;
			}
			if (!so && !s) {
				fprintf(stderr, "sentrypeer: unknown option '-%c' (see %s --help)\n", *c,
					argv[0]);
				return 2;
			}
			if (s && !(s->scope & scope)) {
				fprintf(stderr, "sentrypeer: -%c (--%s) only applies to 'sentrypeer run'\n",
					*c, s->name);
				return 2;
			}
			bool needs = so ? so->arg != NULL : s->type != T_BOOL;
			val = NULL;
			if (needs) {
				if (c[1])
					val = c + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					fprintf(stderr, "sentrypeer: -%c needs a value\n", *c);
					return 2;
				}
			}
			if (so) {
				if (fn(so->id, val, ud))
					return 2;
			} else {
				char where[96];
				snprintf(where, sizeof(where), "-%c", *c);
				if ((rc = setting_apply(cfg, s, val ? val : "yes", where, FROM_ARGS, origins)))
					return rc;
			}
			if (needs)
				break;
		}
	}
	if (!cfg->data_dir)
		default_data_dir(cfg);
	return cfg->data_dir ? 0 : 2;
}

void sp_config_free(struct sp_config *cfg)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		void *p = (char *)cfg + settings[i].offset;
		if (settings[i].type == T_STRING || settings[i].type == T_PATH) {
			free(*(char **)p);
			*(char **)p = NULL;
		} else if (settings[i].type == T_LIST || settings[i].type == T_ADDRS ||
			   settings[i].type == T_KEYIDS) {
			list_clear(p);
		}
	}
}

const char *sp_config_db_path(const struct sp_config *cfg, char *buf, size_t len)
{
	if (cfg->db_file)
		snprintf(buf, len, "%s", cfg->db_file);
	else
		snprintf(buf, len, "%s/%s", cfg->data_dir, SP_STORE_FILE);
	return buf;
}

void sp_settings_print_help(FILE *out, unsigned scope)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		char flag[96];
		const char *hint = type_hint(s);
		if (!(s->scope & scope))
			continue;
		if (s->short_flag)
			snprintf(flag, sizeof(flag), "-%c, --%s%s%s", s->short_flag, s->name,
				 hint ? " " : "", hint ? hint : "");
		else
			snprintf(flag, sizeof(flag), "    --%s%s%s", s->name, hint ? " " : "",
				 hint ? hint : "");
		fprintf(out, "  %-34s %s", flag, s->help);
		if (s->def)
			fprintf(out, " [%s]", s->def);
		fprintf(out, " (%s)\n", s->env);
	}
}

void sp_settings_print_example(FILE *out)
{
	fprintf(out, "# sentrypeer.conf: every setting, with its default.\n"
		     "# Read from /etc/sentrypeer/sentrypeer.conf if it exists, or from\n"
		     "# --config FILE / SENTRYPEER_CONFIG. Precedence, lowest first: default,\n"
		     "# this file, SENTRYPEER_* environment variables, command-line flags.\n"
		     "# Booleans: yes/no, true/false, on/off, 1/0. Durations: 90s, 15m, 12h,\n"
		     "# 7d, 2w. Sizes: 4096, 64K, 512M, 2G.\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (s->offset == OFF(config_file))
			continue;
		fprintf(out, "\n# %s\n# flag: ", s->help);
		if (s->short_flag)
			fprintf(out, "-%c, ", s->short_flag);
		fprintf(out, "--%s; environment: %s", s->name, s->env);
		if (s->type == T_ENUM)
			fprintf(out, "; one of %s", s->choices);
		if (s->type == T_LIST || s->type == T_ADDRS || s->type == T_KEYIDS)
			fprintf(out, "; comma-separated");
		if (s->scope == SP_SCOPE_RUN)
			fprintf(out, "; used by 'sentrypeer run'");
		fprintf(out, "\n# %s = %s\n", s->name, s->def ? s->def : "");
	}
}

void sp_settings_print_names(FILE *out)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		fprintf(out, "%s %s\n", settings[i].name, settings[i].env);
}
