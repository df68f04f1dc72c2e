/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * bench_store: how fast the store takes events, answers lookups and
 * exports, and how big it gets.
 *
 *   bench_store [--events N] [--ips N] [--numbers N] [--sync full|nometa|none]
 *               [--cli PATH] [--keep] [--lookups N] [--spawns N] [--seed N]
 *               [--tmpdir DIR] [--batch N] [--queue N] [--ingest-only]
 *
 * Steps, each printed as plain "name: value unit" lines:
 *   1. the machine and the settings;
 *   2. ingest of synthetic events through the batched writer into a fresh
 *      store (mkdtemp under --tmpdir, removed at the end unless --keep);
 *   3. in-process sp_store_get latency on a read-only handle;
 *   4. whole-process `sentrypeer lookup` latency (needs --cli);
 *   5. sp_export throughput to /dev/null, per format;
 *   6. store size on disk (per table through mdb_stat when installed);
 * with the process's RSS after each step.
 *
 * The workload is a pure function of --seed: event i is built from its own
 * PRNG stream, so a run is reproducible and an event the writer refused can
 * be rebuilt and submitted again. Only ts_ns and the event id (set by
 * sp_event_new) differ between runs.
 */
#include "bench_util.h"
#include "export.h"
#include "sp_error.h"
#include "sp_raw.h"
#include "sp_key.h"
#include "sp_record.h"
#include "sp_time.h"
#include "store.h"
#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_EVENTS 1000000
#define DEFAULT_IPS 100000
#define DEFAULT_NUMBERS 100000
#define DEFAULT_LOOKUPS 200000
#define DEFAULT_SPAWNS 200
#define DEFAULT_SEED UINT64_C(0x5e47121ee7)
#define MAP_SIZE (UINT64_C(8) << 30)
#define RAW_CAP 8192
#define RETENTION_NS (UINT64_C(7) * 86400 * SP_NS_PER_SEC)
#define EXPORT_BUF (64 * 1024)
#define BACKOFF_CHECK_EVERY 32 /* events between queue checks */
#define BACKOFF_MARGIN 256     /* > producers x BACKOFF_CHECK_EVERY: they never overflow */
#define MAX_PRODUCERS 4
#define GEN_SAMPLE 100000      /* events built alone to price the generator */

/* targets printed beside the figures */
#define TARGET_INGEST_EPS 200000.0
#define TARGET_GET_P99_US 10.0
#define TARGET_CLI_MEDIAN_MS 5.0
#define TARGET_TXT_RPS 1000000.0
#define TARGET_JSON_RPS 300000.0

struct bench_opts {
	uint64_t events;
	uint32_t ips, numbers;
	enum sp_sync sync;
	bool keep;
	bool ingest_only; /* stop after step 2 (repeated ingest runs, profiling) */
	const char *cli;
	const char *tmpdir;
	uint64_t lookups;
	unsigned spawns;
	uint64_t seed;
	size_t batch, queue;
	unsigned producers; /* threads preparing and submitting events */
	bool no_compress;   /* --compress no: messages stored as they are */
};

/* ---- small helpers ------------------------------------------------- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("bench_store: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t cpu_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * SP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

/* A bijection on [0, 2^bits): distinct inputs stay distinct. */
static uint32_t scramble(uint32_t x, unsigned bits)
{
	uint32_t mask = bits >= 32 ? UINT32_MAX : (UINT32_C(1) << bits) - 1;
	unsigned half = bits / 2;
	x &= mask;
	x = (x * UINT32_C(0x9E3779B1)) & mask;
	x ^= x >> half;
	x = (x * UINT32_C(0x85EBCA77)) & mask;
	x ^= x >> half;
	x = (x * UINT32_C(0xC2B2AE3D)) & mask;
	x ^= x >> half;
	return x;
}

static const char *verdict(bool ok) { return ok ? "ok" : "MISSED"; }

/* kB figures from /proc/self/status; 0 when absent */
struct mem { unsigned long long rss, hwm, anon, file; };

static struct mem read_mem(void)
{
	struct mem m = { 0, 0, 0, 0 };
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (!f)
		return m;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			m.rss = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			m.hwm = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			m.anon = strtoull(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			m.file = strtoull(line + 8, NULL, 10);
	}
	fclose(f);
	return m;
}

static void print_rss(const char *step)
{
	struct mem m = read_mem();
	printf("rss after %s: VmRSS %.1f MiB (anon %.1f MiB, file-backed %.1f MiB)\n", step,
	       (double)m.rss / 1024.0, (double)m.anon / 1024.0, (double)m.file / 1024.0);
	printf("rss after %s: VmHWM %.1f MiB\n", step, (double)m.hwm / 1024.0);
}

/* bytes this process handed to write(2) */
struct io { unsigned long long wchar; };

static struct io read_io(void)
{
	struct io r = { 0 };
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	if (!f)
		return r;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "wchar:", 6) == 0)
			r.wchar = strtoull(line + 6, NULL, 10);
	}
	fclose(f);
	return r;
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		char *p = strchr(line, ':');
		if (!p)
			continue;
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		p[strcspn(p, "\n")] = '\0';
		snprintf(buf, len, "%s", p);
		break;
	}
	fclose(f);
}

static const char *fs_name(const char *path)
{
	struct statfs s;
	if (statfs(path, &s) != 0)
		return "unknown";
	switch ((unsigned long)s.f_type) {
	case 0xEF53UL: return "ext2/3/4";
	case 0x01021994UL: return "tmpfs (fsync is free: sync figures flatter a disk)";
	case 0x58465342UL: return "xfs";
	case 0x9123683EUL: return "btrfs";
	case 0x794C7630UL: return "overlayfs";
	case 0x2FC12FC1UL: return "zfs";
	case 0x6969UL: return "nfs";
	default: return "other";
	}
}

static const char *sync_name(enum sp_sync s)
{
	return s == SP_SYNC_FULL ? "full" : s == SP_SYNC_NOMETA ? "nometa" : "none";
}

/* rm -r of our temp dir: LMDB leaves only plain files there */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p))
			continue;
		if (unlink(p) != 0)
			fprintf(stderr, "bench_store: cannot remove %s: %s\n", p, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) != 0)
		fprintf(stderr, "bench_store: cannot remove %s: %s\n", dir, strerror(errno));
}

/* Sectors written to the block device holding path (whole device, every
 * process: the machine should be otherwise idle). false if unknown. */
static bool dev_sectors_written(const char *path, unsigned long long *out)
{
	struct stat sb;
	char p[128];
	unsigned long long f[7];
	if (stat(path, &sb) != 0)
		return false;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/stat", major(sb.st_dev), minor(sb.st_dev));
	FILE *fp = fopen(p, "r");
	if (!fp)
		return false;
	int n = fscanf(fp, "%llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4],
		       &f[5], &f[6]);
	fclose(fp);
	if (n != 7)
		return false;
	*out = f[6];
	return true;
}

/* ---- the synthetic workload ------------------------------------------ */

/* Public-scope IPv4 /8s that no real attacker will ever be confused with
 * here (US DoD blocks, unrouted on the Internet). Listed and unlisted sets
 * use different /8s, so an unlisted key can never have been inserted. */
static const uint8_t listed_v4_nets[] = { 11, 21, 22, 26, 28, 29, 30, 33, 55, 214, 215 };
static const uint8_t unlisted_v4_nets[] = { 6, 7 };
#define N_LISTED_NETS (sizeof(listed_v4_nets) / sizeof(listed_v4_nets[0]))
#define N_UNLISTED_NETS (sizeof(unlisted_v4_nets) / sizeof(unlisted_v4_nets[0]))

struct workload {
	uint32_t n_ips, n_numbers;
	char (*ip_text)[SP_KEY_MAX];   /* as it appears in the event */
	char (*ip_key)[SP_KEY_MAX];    /* normalised */
	char (*num_key)[SP_KEY_MAX];   /* normalised digits */
	uint64_t seed;
	uint64_t event_bytes; /* mean encoded event, from price_generator() */
};

/* IP index j: one in ten IPv6 (2001:db8:<0..7fff>:...), the rest IPv4.
 * unlisted: from ranges the listed set never uses. */
static void make_ip(uint32_t j, bool unlisted, char *out, size_t len)
{
	if (j % 10 == 9) {
		uint32_t q = j / 10;
		uint32_t host = scramble(q, 16) | 1;
		snprintf(out, len, "2001:db8:%x:%x::%x",
			 (unsigned)(((q >> 16) & 0x7fff) | (unlisted ? 0x8000u : 0)),
			 (unsigned)(q & 0xffff), (unsigned)host);
		return;
	}
	const uint8_t *nets = unlisted ? unlisted_v4_nets : listed_v4_nets;
	uint32_t n = unlisted ? (uint32_t)N_UNLISTED_NETS : (uint32_t)N_LISTED_NETS;
	uint32_t rest = scramble(j / n, 24);
	snprintf(out, len, "%u.%u.%u.%u", (unsigned)nets[j % n], (unsigned)(rest >> 16),
		 (unsigned)((rest >> 8) & 0xff), (unsigned)(rest & 0xff));
}

static void workload_init(struct workload *w, const struct bench_opts *o)
{
	w->n_ips = o->ips;
	w->n_numbers = o->numbers;
	w->seed = o->seed;
	w->ip_text = xcalloc(o->ips, sizeof(*w->ip_text));
	w->ip_key = xcalloc(o->ips, sizeof(*w->ip_key));
	w->num_key = xcalloc(o->numbers, sizeof(*w->num_key));
	for (uint32_t j = 0; j < o->ips; j++) {
		make_ip(j, false, w->ip_text[j], sizeof(w->ip_text[j]));
		if (sp_ip_normalize(w->ip_text[j], w->ip_key[j], NULL) != 0)
			die("generated a bad IP: %s", w->ip_text[j]);
	}
	for (uint32_t k = 0; k < o->numbers; k++) /* UK-looking: 44 + 10 digits */
		snprintf(w->num_key[k], sizeof(w->num_key[k]), "44%010" PRIu32, scramble(k, 32));
}

static void workload_free(struct workload *w)
{
	free(w->ip_text);
	free(w->ip_key);
	free(w->num_key);
}

static const char *const user_agents[] = {
	"friendly-scanner",
	"sipvicious",
	"PolycomSoundPointIP-SPIP_550-UA/3.3.2.0413",
	"sipcli/v1.8",
	"VaxSIPUserAgent/3.1",
	"pplsip",
	"Asterisk PBX 1.6.0.10",
	"Cisco-SIPGateway/IOS-12.x",
};
#define N_UAS (sizeof(user_agents) / sizeof(user_agents[0]))

/* The called number in one of its raw forms. */
/* Building text without snprintf: the generator competes with the writer
 * for the same two cores, and formatting was 70% of its time. The bytes
 * are the same as snprintf made them (the workload checksum says so). */
struct sbuild {
	char *p;
	size_t len, cap; /* cap leaves room for a NUL */
};

static void sb_put(struct sbuild *b, const char *s, size_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define SB_LIT(b, lit) sb_put(b, lit, sizeof(lit) - 1)

static void sb_str(struct sbuild *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_dec(struct sbuild *b, unsigned long long v)
{
	char t[24];
	size_t i = sizeof(t);
	do
		t[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	sb_put(b, t + i, sizeof(t) - i);
}

static void sb_end(struct sbuild *b)
{
	b->p[b->len] = '\0';
}

/* The called number in one of its raw forms. */
static void number_raw(const char *key, unsigned form, char *out, size_t len)
{
	struct sbuild b = { out, 0, len - 1 };
	switch (form % 4) {
	case 0:
	case 1: SB_LIT(&b, "+"); break;
	case 2: SB_LIT(&b, "00"); break;
	default: break;
	}
	sb_str(&b, key);
	sb_end(&b);
}

static void hex(uint64_t *rng, char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	uint64_t r = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 16 == 0)
			r = rng_next(rng);
		out[i] = digits[r & 15];
		r >>= 4;
	}
	out[n] = '\0';
}

/* Build event i (same content for the same seed and i). */
static sp_event *make_event(const struct workload *w, uint64_t i, char *raw, size_t rawlen)
{
	uint64_t rng = w->seed ^ (i * UINT64_C(0xd1b54a32d192ed03));
	rng_next(&rng);

	/* every IP and number at least once (first n events), then uniform */
	uint32_t ip = i < w->n_ips ? (uint32_t)i : (uint32_t)rng_below(&rng, w->n_ips);
	uint32_t num = i < w->n_numbers ? (uint32_t)i : (uint32_t)rng_below(&rng, w->n_numbers);
	unsigned m = (unsigned)rng_below(&rng, 100);
	const char *method = m < 60 ? "INVITE" : m < 85 ? "REGISTER" : "OPTIONS";
	unsigned t = (unsigned)rng_below(&rng, 100);
	uint8_t tp = t < 90 ? SP_TP_UDP : t < 98 ? SP_TP_TCP : SP_TP_TLS;
	/* a scanner mostly keeps its user agent */
	size_t ua = rng_below(&rng, 5) == 0 ? rng_below(&rng, N_UAS) : (ip * 7u) % N_UAS;
	uint16_t sport = rng_below(&rng, 3) == 0 ? 5060 : (uint16_t)(1024 + rng_below(&rng, 64000));
	const char *dst = "203.0.113.10";
	const char *src = w->ip_text[ip];
	bool v6 = strchr(src, ':') != NULL;
	char host[SP_KEY_MAX + 2], to[SP_USER_MAX], ruri[SP_USER_MAX], from[16];
	char branch[17], tag[9], callid[33], nonce[33], resp[33];
	struct sbuild hb = { host, 0, sizeof(host) - 1 }, fb = { from, 0, sizeof(from) - 1 };

	if (v6)
		SB_LIT(&hb, "[");
	sb_str(&hb, src);
	if (v6)
		SB_LIT(&hb, "]");
	sb_end(&hb);
	unsigned form = (unsigned)rng_next(&rng);
	number_raw(w->num_key[num], form, to, sizeof(to));
	number_raw(w->num_key[num], form >> 8, ruri, sizeof(ruri)); /* same number */
	sb_dec(&fb, 100 + rng_below(&rng, 9900));
	sb_end(&fb);
	hex(&rng, branch, 16);
	hex(&rng, tag, 8);
	hex(&rng, callid, 32);

	/* 500..900 bytes in all */
	size_t target = 500 + (size_t)rng_below(&rng, 401);
	const char *tpname = sp_transport_name(tp);
	char body[1024];
	struct sbuild bb = { body, 0, sizeof(body) - 1 };
	if (method[0] == 'I') {
		/* the order the snprintf version drew them in (GCC: last first) */
		unsigned port = (unsigned)(10000 + 2 * rng_below(&rng, 10000));
		unsigned o2 = (unsigned)rng_below(&rng, 1000000);
		unsigned o1 = (unsigned)rng_below(&rng, 1000000);
		char ipv = v6 ? '6' : '4';
		SB_LIT(&bb, "v=0\r\no=- ");
		sb_dec(&bb, o1);
		SB_LIT(&bb, " ");
		sb_dec(&bb, o2);
		SB_LIT(&bb, " IN IP");
		sb_put(&bb, &ipv, 1);
		SB_LIT(&bb, " ");
		sb_str(&bb, src);
		SB_LIT(&bb, "\r\ns=-\r\nc=IN IP");
		sb_put(&bb, &ipv, 1);
		SB_LIT(&bb, " ");
		sb_str(&bb, src);
		SB_LIT(&bb, "\r\nt=0 0\r\nm=audio ");
		sb_dec(&bb, port);
		SB_LIT(&bb, " RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\n"
			    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\n"
			    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
			    "a=ptime:20\r\na=sendrecv\r\n");
	}
	struct sbuild rb = { raw, 0, rawlen - 1 };
	sb_str(&rb, method);
	SB_LIT(&rb, " sip:");
	sb_str(&rb, ruri);
	SB_LIT(&rb, "@");
	sb_str(&rb, dst);
	SB_LIT(&rb, " SIP/2.0\r\nVia: SIP/2.0/");
	sb_str(&rb, tpname);
	SB_LIT(&rb, " ");
	sb_str(&rb, host);
	SB_LIT(&rb, ":");
	sb_dec(&rb, sport);
	SB_LIT(&rb, ";branch=z9hG4bK");
	sb_str(&rb, branch);
	SB_LIT(&rb, ";rport\r\nMax-Forwards: 70\r\nFrom: \"");
	sb_str(&rb, from);
	SB_LIT(&rb, "\" <sip:");
	sb_str(&rb, from);
	SB_LIT(&rb, "@");
	sb_str(&rb, host);
	SB_LIT(&rb, ">;tag=");
	sb_str(&rb, tag);
	SB_LIT(&rb, "\r\nTo: <sip:");
	sb_str(&rb, to);
	SB_LIT(&rb, "@");
	sb_str(&rb, dst);
	SB_LIT(&rb, ">\r\nCall-ID: ");
	sb_str(&rb, callid);
	SB_LIT(&rb, "@");
	sb_str(&rb, host);
	SB_LIT(&rb, "\r\nCSeq: 1 ");
	sb_str(&rb, method);
	SB_LIT(&rb, "\r\nContact: <sip:");
	sb_str(&rb, from);
	SB_LIT(&rb, "@");
	sb_str(&rb, host);
	SB_LIT(&rb, ":");
	sb_dec(&rb, sport);
	SB_LIT(&rb, ">\r\nUser-Agent: ");
	sb_str(&rb, user_agents[ua]);
	SB_LIT(&rb, "\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n");
	if (method[0] == 'R') { /* password guessing */
		hex(&rng, nonce, 32);
		hex(&rng, resp, 32);
		SB_LIT(&rb, "Authorization: Digest username=\"");
		sb_str(&rb, from);
		SB_LIT(&rb, "\", realm=\"");
		sb_str(&rb, dst);
		SB_LIT(&rb, "\", nonce=\"");
		sb_str(&rb, nonce);
		SB_LIT(&rb, "\", uri=\"sip:");
		sb_str(&rb, dst);
		SB_LIT(&rb, "\", response=\"");
		sb_str(&rb, resp);
		SB_LIT(&rb, "\", algorithm=MD5\r\n");
	}
	/* pad towards the target: an SDP attribute or a header */
	size_t tail = (bb.len ? sizeof("Content-Type: application/sdp\r\n") - 1 : 0) +
		      sizeof("Content-Length: 000\r\n\r\n") - 1 + bb.len;
	if (rb.len + tail + 16 < target) {
		size_t pad = target - rb.len - tail - 12;
		char fill[1024];
		hex(&rng, fill, pad < sizeof(fill) ? pad : sizeof(fill) - 1);
		struct sbuild *into = bb.len ? &bb : &rb;
		sb_str(into, bb.len ? "a=x-n:" : "X-Id: ");
		sb_str(into, fill);
		SB_LIT(into, "\r\n");
	}
	if (bb.len)
		SB_LIT(&rb, "Content-Type: application/sdp\r\n");
	SB_LIT(&rb, "Content-Length: ");
	sb_dec(&rb, bb.len);
	SB_LIT(&rb, "\r\n\r\n");
	sb_put(&rb, body, bb.len);
	sb_end(&rb);

	sp_event *e = sp_event_new(raw, rb.len, RAW_CAP);
	if (!e)
		return NULL;
	sp_field_set(e->src_ip, sizeof(e->src_ip), src);
	sp_field_set(e->dst_ip, sizeof(e->dst_ip), dst);
	e->src_port = sport;
	e->dst_port = 5060;
	e->transport = tp;
	e->mode = SP_MODE_PASSIVE;
	sp_field_set(e->method, sizeof(e->method), method);
	sp_field_set(e->ruri_user, sizeof(e->ruri_user), ruri);
	sp_field_set(e->to_user, sizeof(e->to_user), to);
	sp_field_set(e->user_agent, sizeof(e->user_agent), user_agents[ua]);
	return e;
}

/* ---- 2. ingest ------------------------------------------------------- */

struct ingest_result {
	uint64_t submitted_ok, queue_full, backoffs;
	double eps;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	return h;
}

static void price_generator(struct workload *w)
{
	char *raw = xcalloc(1, RAW_CAP);
	uint64_t n = GEN_SAMPLE, bytes = 0, enc = 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	uint64_t t0 = sp_mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		sp_event *e = make_event(w, i, raw, RAW_CAP);
		if (!e)
			die("out of memory");
		bytes += e->raw_len;
		free(e);
	}
	uint64_t dt = sp_mono_ns() - t0;
	/* what the sample holds, but its times and ids: equal for equal seeds */
	uint64_t sum = UINT64_C(0xcbf29ce484222325);
	for (uint64_t i = 0; i < n; i++) {
		sp_event *e = make_event(w, i, raw, RAW_CAP);
		if (!e)
			die("out of memory");
		sum = fnv(sum, e->raw, e->raw_len);
		sum = fnv(sum, e->src_ip, strlen(e->src_ip) + 1);
		sum = fnv(sum, e->method, strlen(e->method) + 1);
		sum = fnv(sum, e->ruri_user, strlen(e->ruri_user) + 1);
		sum = fnv(sum, e->to_user, strlen(e->to_user) + 1);
		sum = fnv(sum, e->user_agent, strlen(e->user_agent) + 1);
		sum = fnv(sum, &e->transport, 1);
		sum = fnv(sum, &e->src_port, sizeof(e->src_port));
		free(e);
	}
	for (uint64_t i = 0; i < 10000; i++) {
		sp_event *e = make_event(w, i, raw, RAW_CAP);
		if (!e)
			die("out of memory");
		sb.size = 0;
		sp_event_encode(e, &sb);
		enc += sb.size;
		free(e);
	}
	msgpack_sbuffer_destroy(&sb);
	free(raw);
	w->event_bytes = enc / 10000;
	printf("workload: raw SIP message, mean %.0f bytes\n", (double)bytes / (double)n);
	printf("workload: encoded event record, mean %.0f bytes\n", (double)enc / 10000.0);
	printf("workload: generator alone %.0f events/s (building events, no store)\n",
	       (double)n * 1e9 / (double)dt);
	printf("workload: checksum of the first %" PRIu64 " events %#018" PRIx64 " (times and ids aside)\n",
	       n, sum);
}

/* One producer: events k, k + P, k + 2P, ... built and submitted, backing
 * off while the queue is nearly full (the node's listeners drop instead). */
struct producer {
	const struct bench_opts *o;
	const struct workload *w;
	sp_writer *wr;
	unsigned k;
	pthread_t thread;
	uint64_t backoffs, queue_full, submitted_ok, cpu_ns;
	unsigned long long anon_peak;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	const struct bench_opts *o = p->o;
	struct sp_writer_stats ws;
	char *raw = xcalloc(1, RAW_CAP);
	uint64_t cpu0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), n = 0;
	for (uint64_t i = p->k; i < o->events; i += o->producers, n++) {
		if (p->k == 0 && n % 65536 == 0) { /* VmHWM mixes in the mapped file */
			struct mem m = read_mem();
			if (m.anon > p->anon_peak)
				p->anon_peak = m.anon;
		}
		for (;;) {
			if (n % BACKOFF_CHECK_EVERY == 0) {
				for (;;) {
					sp_writer_get_stats(p->wr, &ws);
					if (ws.queue_len + BACKOFF_MARGIN < o->queue)
						break;
					p->backoffs++;
					sleep_ns(50000);
				}
			}
			sp_event *e = make_event(p->w, i, raw, RAW_CAP);
			if (!e)
				die("out of memory at event %" PRIu64, i);
			int rc = sp_writer_submit(p->wr, e);
			if (rc == 0)
				break;
			if (rc != SP_EQUEUEFULL)
				die("sp_writer_submit: %s", sp_strerror(rc));
			p->queue_full++; /* the writer freed it: build it again */
			sleep_ns(50000);
		}
		p->submitted_ok++;
	}
	p->cpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	free(raw);
	return NULL;
}

static struct ingest_result ingest(const struct bench_opts *o, const struct workload *w,
				   const char *path)
{
	struct sp_store_options so = {
		.path = path,
		.map_size = MAP_SIZE,
		.sync = o->sync,
		.retention_ns = RETENTION_NS,
		.set_retention = true,
		.batch_max = o->batch,
	};
	struct sp_writer_options wo = { .queue_max = o->queue, .batch_max = o->batch };
	struct ingest_result r = { 0 };
	struct sp_writer_stats ws;
	sp_store *st;
	sp_writer *wr;
	int rc;

	if ((rc = sp_store_open(&st, &so)))
		die("cannot create store %s: %s", path, sp_strerror(rc));
	if ((rc = sp_writer_start(&wr, st, &wo)))
		die("cannot start writer: %s", sp_strerror(rc));

	unsigned long long anon_peak = 0, sec0 = 0, sec1 = 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	bool have_dev = dev_sectors_written(dir, &sec0);
	struct io io0 = read_io();
	uint64_t cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t t0 = sp_mono_ns();
	struct producer pr[MAX_PRODUCERS];
	for (unsigned k = 0; k < o->producers; k++) {
		pr[k] = (struct producer){ .o = o, .w = w, .wr = wr, .k = k };
		if (k && pthread_create(&pr[k].thread, NULL, produce, &pr[k]))
			die("pthread_create failed");
	}
	produce(&pr[0]); /* this thread is producer 0 */
	uint64_t pcpu = 0;
	for (unsigned k = 0; k < o->producers; k++) {
		if (k)
			pthread_join(pr[k].thread, NULL);
		r.backoffs += pr[k].backoffs;
		r.queue_full += pr[k].queue_full;
		r.submitted_ok += pr[k].submitted_ok;
		pcpu += pr[k].cpu_ns;
		if (pr[k].anon_peak > anon_peak)
			anon_peak = pr[k].anon_peak;
	}
	uint64_t t_sub = sp_mono_ns();
	struct mem m_end = read_mem(); /* the queue is at its fullest about now */
	if (m_end.anon > anon_peak)
		anon_peak = m_end.anon;
	sp_writer_flush(wr);
	uint64_t t1 = sp_mono_ns();
	uint64_t cpu = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	struct io io1 = read_io();
	have_dev = have_dev && dev_sectors_written(dir, &sec1);
	sp_writer_get_stats(wr, &ws);
	sp_writer_stop(wr);
	sp_store_close(st);

	double wall = (double)(t1 - t0) / 1e9;
	r.eps = (double)ws.committed / wall;
	printf("ingest: events committed %" PRIu64 " of %" PRIu64 " submitted\n", ws.committed,
	       ws.submitted);
	printf("ingest: wall time %.2f s (incl. final flush %.3f s)\n", wall,
	       (double)(t1 - t_sub) / 1e9);
	printf("ingest: throughput %.0f events/s (target >= %.0f events/s: %s)\n", r.eps,
	       TARGET_INGEST_EPS, verdict(r.eps >= TARGET_INGEST_EPS));
	printf("ingest: commits %" PRIu64 "\n", ws.commits);
	printf("ingest: average batch %.1f events/commit\n",
	       ws.commits ? (double)ws.committed / (double)ws.commits : 0.0);
	printf("ingest: commit rate %.1f commits/s\n", (double)ws.commits / wall);
	printf("ingest: aggregate folds %" PRIu64 ", %.2f s in transactions that folded\n", ws.folds,
	       (double)ws.fold_ns / 1e9);
	printf("ingest: queue peak %" PRIu64 " of %zu events\n", ws.queue_peak, o->queue);
	printf("ingest: producer back-offs (queue within %d of full) %" PRIu64 "\n",
	       BACKOFF_MARGIN, r.backoffs);
	printf("ingest: SP_EQUEUEFULL returned %" PRIu64 " (writer's count %" PRIu64
	       ", all resubmitted)\n", r.queue_full, ws.dropped_queue_full);
	printf("ingest: dropped by store %" PRIu64 "%s%s\n", ws.dropped_store,
	       ws.last_error ? ", last error " : "", ws.last_error ? sp_strerror(ws.last_error) : "");
	double wbytes = (double)(io1.wchar - io0.wchar);
	printf("ingest: written through write(2) %.0f MiB, %.0f bytes/event (%.1fx the encoded "
	       "event), %.1f MiB/commit\n", wbytes / 1048576.0, wbytes / (double)o->events,
	       w->event_bytes ? wbytes / (double)o->events / (double)w->event_bytes : 0.0,
	       ws.commits ? wbytes / 1048576.0 / (double)ws.commits : 0.0);
	if (have_dev)
		printf("ingest: block device writes during ingest %.0f MiB (whole device)\n",
		       (double)(sec1 - sec0) * 512.0 / 1048576.0);
	printf("ingest: peak anonymous memory (sampled) %.1f MiB\n", (double)anon_peak / 1024.0);
	printf("ingest: producer threads (%u) CPU %.2f s (%.0f%% of wall)\n", o->producers,
	       (double)pcpu / 1e9, 100.0 * (double)pcpu / 1e9 / wall);
	printf("ingest: writer thread CPU %.2f s (%.0f%% of wall; process minus producers)\n",
	       (double)(cpu - pcpu) / 1e9, 100.0 * (double)(cpu - pcpu) / 1e9 / wall);
	if (ws.dropped_store || ws.committed != o->events)
		die("the store lost events: %" PRIu64 " committed of %" PRIu64, ws.committed,
		    o->events);
	return r;
}

/* ---- 3. in-process lookups -------------------------------------------- */

struct probe {
	uint8_t kind;
	bool listed;
	char key[SP_KEY_MAX];
};

static void latency_line(const char *what, uint64_t *ns, size_t n, bool target)
{
	double sum = 0;
	qsort(ns, n, sizeof(*ns), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)ns[i];
	printf("lookup %s: %zu calls\n", what, n);
	printf("lookup %s: mean %.2f us\n", what, n ? sum / (double)n / 1e3 : 0.0);
	printf("lookup %s: p50 %.2f us\n", what, (double)pct(ns, n, 50) / 1e3);
	double p99 = (double)pct(ns, n, 99) / 1e3;
	if (target)
		printf("lookup %s: p99 %.2f us (target < %.0f us: %s)\n", what, p99, TARGET_GET_P99_US,
		       verdict(p99 < TARGET_GET_P99_US));
	else
		printf("lookup %s: p99 %.2f us\n", what, p99);
	printf("lookup %s: p99.9 %.2f us\n", what, (double)pct(ns, n, 99.9) / 1e3);
	printf("lookup %s: max %.2f us\n", what, n ? (double)ns[n - 1] / 1e3 : 0.0);
}

/* Listed keys: inserted IPs and numbers; unlisted: IPs never inserted. */
static struct probe *make_probes(const struct bench_opts *o, const struct workload *w, size_t n,
				 uint64_t salt)
{
	struct probe *p = xcalloc(n, sizeof(*p));
	uint64_t rng = o->seed ^ salt;
	uint64_t have_ips = o->events < w->n_ips ? o->events : w->n_ips;
	uint64_t have_nums = o->events < w->n_numbers ? o->events : w->n_numbers;
	for (size_t i = 0; i < n; i++) {
		p[i].listed = i % 2 == 0;
		if (p[i].listed) {
			if ((rng_next(&rng) & 1) || !have_nums) {
				p[i].kind = SP_KIND_IP;
				snprintf(p[i].key, sizeof(p[i].key), "%s",
					 w->ip_key[rng_below(&rng, have_ips)]);
			} else {
				p[i].kind = SP_KIND_NUMBER;
				snprintf(p[i].key, sizeof(p[i].key), "%s",
					 w->num_key[rng_below(&rng, have_nums)]);
			}
		} else {
			char text[SP_KEY_MAX];
			make_ip((uint32_t)rng_below(&rng, 1u << 24), true, text, sizeof(text));
			if (sp_ip_normalize(text, p[i].key, NULL) != 0)
				die("generated a bad IP: %s", text);
			p[i].kind = SP_KIND_IP;
		}
	}
	for (size_t i = n; i > 1; i--) { /* shuffle: no long runs of one sort */
		size_t j = rng_below(&rng, i);
		struct probe t = p[i - 1];
		p[i - 1] = p[j];
		p[j] = t;
	}
	return p;
}

/* One timed sp_store_get per probe; returns the wall time in seconds. */
static double lookup_pass(sp_store *ro, const struct probe *p, size_t n, sp_agg *a,
			  uint64_t *lat_l, size_t *nl, uint64_t *lat_u, size_t *nu)
{
	uint64_t t0 = sp_mono_ns();
	*nl = *nu = 0;
	for (size_t i = 0; i < n; i++) {
		struct timespec s, e;
		clock_gettime(CLOCK_MONOTONIC, &s);
		int rc = sp_store_get(ro, (enum sp_kind)p[i].kind, p[i].key, a);
		clock_gettime(CLOCK_MONOTONIC, &e);
		uint64_t d = (uint64_t)((e.tv_sec - s.tv_sec) * (long long)SP_NS_PER_SEC +
					(e.tv_nsec - s.tv_nsec));
		if (p[i].listed) {
			if (rc != 0)
				die("lookup of listed %s %s: %s", sp_kind_name(p[i].kind), p[i].key,
				    sp_strerror(rc));
			lat_l[(*nl)++] = d;
		} else {
			if (rc != SP_ENOTFOUND)
				die("lookup of unlisted %s: %s", p[i].key,
				    rc ? sp_strerror(rc) : "found, expected not found");
			lat_u[(*nu)++] = d;
		}
	}
	return (double)(sp_mono_ns() - t0) / 1e9;
}

static void lookups(const struct bench_opts *o, const struct workload *w, sp_store *ro)
{
	size_t n = o->lookups, nl, nu;
	struct probe *p = make_probes(o, w, n, UINT64_C(0x100c0b5));
	uint64_t *lat_l = xcalloc(n, sizeof(uint64_t)), *lat_u = xcalloc(n, sizeof(uint64_t));
	sp_agg *a = xcalloc(1, sizeof(*a));

	/* first pass: a fresh handle, pages not yet mapped (the headline figures) */
	double wall = lookup_pass(ro, p, n, a, lat_l, &nl, lat_u, &nu);
	printf("lookup all: %.0f lookups/s single-threaded (incl. timing overhead)\n",
	       (double)n / wall);
	latency_line("listed", lat_l, nl, true);
	latency_line("unlisted", lat_u, nu, true);

	/* second pass over the same keys: everything mapped and cached */
	wall = lookup_pass(ro, p, n, a, lat_l, &nl, lat_u, &nu);
	qsort(lat_l, nl, sizeof(*lat_l), cmp_u64);
	qsort(lat_u, nu, sizeof(*lat_u), cmp_u64);
	printf("lookup warm (2nd pass): %.0f lookups/s\n", (double)n / wall);
	printf("lookup warm listed: p50 %.2f us, p99 %.2f us, p99.9 %.2f us\n",
	       (double)pct(lat_l, nl, 50) / 1e3, (double)pct(lat_l, nl, 99) / 1e3,
	       (double)pct(lat_l, nl, 99.9) / 1e3);
	printf("lookup warm unlisted: p50 %.2f us, p99 %.2f us, p99.9 %.2f us\n",
	       (double)pct(lat_u, nu, 50) / 1e3, (double)pct(lat_u, nu, 99) / 1e3,
	       (double)pct(lat_u, nu, 99.9) / 1e3);
	free(a);
	free(lat_l);
	free(lat_u);
	free(p);
}

/* ---- 4. whole-process lookups ----------------------------------------- */

static int run_cli(const char *cli, char *const argv[], uint64_t *ns)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	uint64_t t0 = sp_mono_ns();
	rc = posix_spawn(&pid, cli, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		die("cannot run %s: %s", cli, strerror(rc));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	*ns = sp_mono_ns() - t0;
	if (!WIFEXITED(status)) {
		size_t last = 0;
		while (argv[last + 1])
			last++;
		die("%s %s ... %s died with signal %d", cli, argv[1], argv[last], WTERMSIG(status));
	}
	return WEXITSTATUS(status);
}

static void ms_lines(const char *what, uint64_t *ns, size_t n, bool target)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	double med = (double)pct(ns, n, 50) / 1e6;
	if (target)
		printf("cli %s: median %.2f ms (target < %.0f ms: %s)\n", what, med,
		       TARGET_CLI_MEDIAN_MS, verdict(med < TARGET_CLI_MEDIAN_MS));
	else
		printf("cli %s: median %.2f ms\n", what, med);
	printf("cli %s: p95 %.2f ms\n", what, (double)pct(ns, n, 95) / 1e6);
	printf("cli %s: max %.2f ms\n", what, n ? (double)ns[n - 1] / 1e6 : 0.0);
}

static void cli_lookups(const struct bench_opts *o, const struct workload *w, const char *path)
{
	size_t n = o->spawns;
	struct probe *p = make_probes(o, w, 2 * n, UINT64_C(0xc11));
	uint64_t *lat_l = xcalloc(n, sizeof(uint64_t)), *lat_u = xcalloc(n, sizeof(uint64_t));
	uint64_t *lat_v = xcalloc(n, sizeof(uint64_t));
	size_t nl = 0, nu = 0;
	char arg[SP_KEY_MAX + 1];

	/* the floor: starting the binary at all */
	for (size_t i = 0; i < n; i++) {
		char *argv[] = { (char *)o->cli, "version", NULL };
		int st = run_cli(o->cli, argv, &lat_v[i]);
		if (st != 0)
			die("%s version exited %d", o->cli, st);
	}
	for (size_t i = 0; i < 2 * n; i++) {
		/* numbers as dialled, to take the normaliser's path */
		snprintf(arg, sizeof(arg), "%s%s", p[i].kind == SP_KIND_NUMBER ? "+" : "", p[i].key);
		char *argv[] = { (char *)o->cli, "lookup", "--db-file", (char *)path, arg, NULL };
		uint64_t ns;
		int st = run_cli(o->cli, argv, &ns);
		int want = p[i].listed ? 0 : 1;
		if (st != want)
			die("'%s lookup --db-file %s %s' exited %d, expected %d (%s)", o->cli, path, arg,
			    st, want, p[i].listed ? "listed" : "not listed");
		if (p[i].listed)
			lat_l[nl++] = ns;
		else
			lat_u[nu++] = ns;
	}
	printf("cli: %s, %zu runs per kind, exit codes checked (0 listed, 1 unlisted)\n", o->cli,
	       n);
	ms_lines("version (process start floor)", lat_v, n, false);
	ms_lines("lookup listed", lat_l, nl, true);
	ms_lines("lookup unlisted", lat_u, nu, true);
	free(lat_l);
	free(lat_u);
	free(lat_v);
	free(p);
}

/* ---- 5. export --------------------------------------------------------- */

static void exports(sp_store *ro)
{
	static const struct {
		enum sp_export_format fmt;
		enum sp_export_kind kind;
		const char *name;
		double target;
	} runs[] = {
		{ SP_FMT_TXT, SP_EXPORT_ALL, "txt", TARGET_TXT_RPS },
		{ SP_FMT_JSON, SP_EXPORT_ALL, "json", TARGET_JSON_RPS },
		{ SP_FMT_JSONL, SP_EXPORT_ALL, "jsonl", 0 },
		{ SP_FMT_CSV, SP_EXPORT_ALL, "csv", 0 },
		{ SP_FMT_NFT, SP_EXPORT_IP, "nft", 0 },
		{ SP_FMT_IPSET, SP_EXPORT_IP, "ipset", 0 },
	};
	static char buf[EXPORT_BUF];

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct sp_export_options eo = {
			.format = runs[i].fmt,
			.kind = runs[i].kind,
			.source = SP_SOURCE_ALL,
			.include_private = true,
		};
		struct sp_export_stats es;
		FILE *f = fopen("/dev/null", "w");
		if (!f)
			die("/dev/null: %s", strerror(errno));
		setvbuf(f, buf, _IOFBF, sizeof(buf));
		uint64_t t0 = sp_mono_ns();
		int rc = sp_export(ro, &eo, f, &es);
		uint64_t dt = sp_mono_ns() - t0;
		fclose(f);
		if (rc)
			die("export %s: %s", runs[i].name, sp_strerror(rc));
		double rps = (double)es.written * 1e9 / (double)dt;
		const char *kind = runs[i].kind == SP_EXPORT_ALL ? "all" : "ip";
		if (runs[i].target > 0)
			printf("export %s (%s): %.0f records/s, %" PRIu64 " records in %.3f s"
			       " (target >= %.0f records/s: %s)\n",
			       runs[i].name, kind, rps, es.written, (double)dt / 1e9, runs[i].target,
			       verdict(rps >= runs[i].target));
		else
			printf("export %s (%s): %.0f records/s, %" PRIu64 " records in %.3f s\n",
			       runs[i].name, kind, rps, es.written, (double)dt / 1e9);
		if (es.corrupt || es.skipped_private)
			printf("export %s: %" PRIu64 " corrupt, %" PRIu64 " skipped\n", runs[i].name,
			       es.corrupt, es.skipped_private);
	}
}

/* ---- 6. size ----------------------------------------------------------- */

struct tbl_stat {
	bool ok;
	uint64_t psize, branch, leaf, overflow, entries, depth;
};

static bool mdb_stat_table(const char *path, const char *table, struct tbl_stat *t)
{
	char cmd[PATH_MAX + 64], line[256];
	memset(t, 0, sizeof(*t));
	if (strchr(path, '\''))
		return false;
	snprintf(cmd, sizeof(cmd), "mdb_stat -n -e -s %s '%s' 2>/dev/null", table, path);
	FILE *f = popen(cmd, "r");
	if (!f)
		return false;
	bool in_table = false;
	while (fgets(line, sizeof(line), f)) {
		uint64_t v;
		if (strncmp(line, "Status of", 9) == 0)
			in_table = true;
		if (sscanf(line, " Page size: %" SCNu64, &v) == 1)
			t->psize = v;
		if (!in_table)
			continue;
		if (sscanf(line, " Tree depth: %" SCNu64, &v) == 1)
			t->depth = v;
		else if (sscanf(line, " Branch pages: %" SCNu64, &v) == 1)
			t->branch = v;
		else if (sscanf(line, " Leaf pages: %" SCNu64, &v) == 1)
			t->leaf = v;
		else if (sscanf(line, " Overflow pages: %" SCNu64, &v) == 1)
			t->overflow = v;
		else if (sscanf(line, " Entries: %" SCNu64, &v) == 1)
			t->entries = v;
	}
	int status = pclose(f);
	t->ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && t->psize &&
		in_table;
	return t->ok;
}

struct agg_size {
	uint64_t n, bytes, uas, raws;
};

static int measure_agg(const sp_agg *a, void *ud)
{
	struct agg_size *s = ud;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	sp_agg_encode(a, &sb);
	s->n++;
	s->bytes += sb.size;
	s->uas += a->n_uas;
	s->raws += a->n_raws;
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

static void sizes(sp_store *ro, const char *path, const struct bench_opts *o)
{
	struct sp_store_stats ss;
	int rc = sp_store_stats(ro, &ss);
	if (rc)
		die("sp_store_stats: %s", sp_strerror(rc));
	uint64_t aggs = ss.ips + ss.numbers;
	printf("store: %" PRIu64 " events, %" PRIu64 " IP aggregates, %" PRIu64
	       " number aggregates\n", ss.events, ss.ips, ss.numbers);
	if (ss.events != o->events)
		printf("store: WARNING expected %" PRIu64 " events\n", o->events);
	printf("store: file size on disk %.1f MiB\n", (double)ss.file_bytes / 1048576.0);
	printf("store: used (last page) %.1f MiB\n", (double)ss.used_bytes / 1048576.0);
	if (ss.events)
		printf("store: total used bytes per event %.0f bytes\n",
		       (double)ss.used_bytes / (double)ss.events);

	struct agg_size as = { 0 };
	sp_store_foreach(ro, SP_KIND_IP, measure_agg, &as, NULL);
	sp_store_foreach(ro, SP_KIND_NUMBER, measure_agg, &as, NULL);
	if (as.n)
		printf("store: encoded aggregate record, mean %.0f bytes (%.1f user agents, %.1f "
		       "raw forms)\n", (double)as.bytes / (double)as.n, (double)as.uas / (double)as.n,
		       (double)as.raws / (double)as.n);

	static const char *const tables[] = { "events", "ip", "number" };
	struct tbl_stat t[3];
	bool ok = true;
	for (int i = 0; i < 3 && ok; i++)
		ok = mdb_stat_table(path, tables[i], &t[i]);
	if (!ok) {
		printf("store: mdb_stat not available (or failed): no per-table figures; "
		       "bytes per aggregate not measured\n");
		return;
	}
	uint64_t agg_pages = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t pages = t[i].branch + t[i].leaf + t[i].overflow;
		printf("store: table %s: %" PRIu64 " entries, depth %" PRIu64 ", %" PRIu64
		       " branch + %" PRIu64 " leaf + %" PRIu64 " overflow pages of %" PRIu64
		       " bytes = %.1f MiB\n", tables[i], t[i].entries, t[i].depth, t[i].branch,
		       t[i].leaf, t[i].overflow, t[i].psize,
		       (double)(pages * t[i].psize) / 1048576.0);
		if (i)
			agg_pages += pages;
		if (t[i].entries && t[i].leaf)
			printf("store: table %s: %.2f entries per leaf page\n", tables[i],
			       (double)t[i].entries / (double)t[i].leaf);
	}
	uint64_t ev_pages = t[0].branch + t[0].leaf + t[0].overflow;
	if (t[0].entries)
		printf("store: bytes per event (events table) %.0f bytes\n",
		       (double)(ev_pages * t[0].psize) / (double)t[0].entries);
	if (aggs)
		printf("store: bytes per aggregate (ip + number tables) %.0f bytes\n",
		       (double)(agg_pages * t[1].psize) / (double)aggs);
	uint64_t tables_bytes = (ev_pages + agg_pages) * t[0].psize;
	if (ss.used_bytes > tables_bytes)
		printf("store: other pages (meta, main, free list, 2 meta pages) %.1f MiB\n",
		       (double)(ss.used_bytes - tables_bytes) / 1048576.0);
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench_store [--events N] [--ips N] [--numbers N] [--sync full|nometa|none]\n"
		"                   [--cli PATH] [--keep] [--lookups N] [--spawns N] [--seed N]\n"
		"                   [--tmpdir DIR] [--batch N] [--queue N] [--producers N]\n"
		"                   [--compress yes|no]\n"
		"                   [--ingest-only]\n"
		"defaults: %d events, %d IPs, %d numbers, sync full, %d lookups, %d CLI runs\n"
		"per kind, tmpdir /tmp, batch 4096, queue 65536, 1 producer thread (the node\n"
		"has two UDP listener threads; each producer prepares and compresses its events),\n"
		"messages compressed (the node's store-compress default).\n"
		"Without --cli the whole-process lookup step is skipped.\n",
		DEFAULT_EVENTS, DEFAULT_IPS, DEFAULT_NUMBERS, DEFAULT_LOOKUPS, DEFAULT_SPAWNS);
}

static uint64_t parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		die("%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, flag, s, min, max);
	return v;
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){
		.events = DEFAULT_EVENTS, .ips = DEFAULT_IPS, .numbers = DEFAULT_NUMBERS,
		.sync = SP_SYNC_FULL, .tmpdir = "/tmp", .lookups = DEFAULT_LOOKUPS,
		.spawns = DEFAULT_SPAWNS, .seed = DEFAULT_SEED, .batch = 4096, .queue = 65536,
		.producers = 1,
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--keep") == 0) {
			o->keep = true;
			continue;
		}
		if (strcmp(a, "--compress") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "yes") == 0 || strcmp(argv[i + 1], "no") == 0)) {
			o->no_compress = strcmp(argv[++i], "no") == 0;
			continue;
		}
		if (strcmp(a, "--ingest-only") == 0) {
			o->ingest_only = true;
			continue;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			die("%s: needs an argument, or is unknown", a);
		}
		const char *v = argv[++i];
		if (strcmp(a, "--producers") == 0)
			o->producers = (unsigned)parse_u64(a, v, 1, MAX_PRODUCERS);
		else if (strcmp(a, "--events") == 0)
			o->events = parse_u64(a, v, 1, UINT64_C(1) << 32);
		else if (strcmp(a, "--ips") == 0)
			o->ips = (uint32_t)parse_u64(a, v, 1, UINT32_C(1) << 24);
		else if (strcmp(a, "--numbers") == 0)
			o->numbers = (uint32_t)parse_u64(a, v, 1, UINT32_MAX);
		else if (strcmp(a, "--lookups") == 0)
			o->lookups = parse_u64(a, v, 2, UINT64_C(1) << 28);
		else if (strcmp(a, "--spawns") == 0)
			o->spawns = (unsigned)parse_u64(a, v, 1, 1000000);
		else if (strcmp(a, "--seed") == 0)
			o->seed = parse_u64(a, v, 0, UINT64_MAX);
		else if (strcmp(a, "--batch") == 0)
			o->batch = (size_t)parse_u64(a, v, 1, 65536);
		else if (strcmp(a, "--queue") == 0)
			o->queue = (size_t)parse_u64(a, v, 2 * BACKOFF_MARGIN, UINT64_C(1) << 24);
		else if (strcmp(a, "--cli") == 0)
			o->cli = v;
		else if (strcmp(a, "--tmpdir") == 0)
			o->tmpdir = v;
		else if (strcmp(a, "--sync") == 0) {
			if (strcmp(v, "full") == 0)
				o->sync = SP_SYNC_FULL;
			else if (strcmp(v, "nometa") == 0)
				o->sync = SP_SYNC_NOMETA;
			else if (strcmp(v, "none") == 0)
				o->sync = SP_SYNC_NONE;
			else
				die("--sync: '%s' is not full, nometa or none", v);
		} else {
			usage(stderr);
			die("unknown option %s", a);
		}
	}
	if (o->cli && access(o->cli, X_OK) != 0)
		die("--cli %s: %s", o->cli, strerror(errno));
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct workload w;
	char dir[PATH_MAX], path[PATH_MAX], cpu[256];
	int rc;

	parse_args(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (snprintf(dir, sizeof(dir), "%s/bench_store.XXXXXX", o.tmpdir) >= (int)sizeof(dir))
		die("--tmpdir too long");
	if (!mkdtemp(dir))
		die("mkdtemp %s: %s", dir, strerror(errno));
	if (snprintf(path, sizeof(path), "%s/%s", dir, SP_STORE_FILE) >= (int)sizeof(path))
		die("--tmpdir too long");

	/* 1. the machine */
	cpu_model(cpu, sizeof(cpu));
	printf("machine: %ld CPUs (nproc), %s, sync %s, store on %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), cpu, sync_name(o.sync), fs_name(dir));
	printf("config: %" PRIu64 " events, %" PRIu32 " IPs (1 in 10 IPv6), %" PRIu32
	       " numbers, seed %#" PRIx64 ", batch %zu, queue %zu, %u producer threads, messages %s,"
	       " map 8 GiB\n", o.events, o.ips, o.numbers, o.seed, o.batch, o.queue, o.producers,
	       o.no_compress ? "stored as they are" : "compressed");
	sp_raw_set_enabled(!o.no_compress);
	printf("config: store %s%s\n", path, o.keep ? " (kept)" : " (removed at the end)");

	workload_init(&w, &o);
	price_generator(&w);
	print_rss("setup");

	/* 2. ingest */
	ingest(&o, &w, path);
	print_rss("ingest");
	if (o.ingest_only) {
		workload_free(&w);
		if (o.keep)
			printf("kept: %s\n", path);
		else
			remove_dir(dir);
		return 0;
	}

	/* 3.-6. read side, one read-only handle */
	sp_store *ro;
	struct sp_store_options so = { .path = path, .readonly = true, .retention_ns = RETENTION_NS };
	if ((rc = sp_store_open(&ro, &so)))
		die("cannot open %s read-only: %s", path, sp_strerror(rc));
	lookups(&o, &w, ro);
	print_rss("lookups");

	if (o.cli) {
		cli_lookups(&o, &w, path);
		print_rss("cli lookups");
	} else {
		printf("cli: skipped (no --cli PATH)\n");
	}

	exports(ro);
	print_rss("exports");

	sizes(ro, path, &o);
	print_rss("size");

	sp_store_close(ro);
	workload_free(&w);
	if (o.keep)
		printf("kept: %s\n", path);
	else
		remove_dir(dir);
	return 0;
}
