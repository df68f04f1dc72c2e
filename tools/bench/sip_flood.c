/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sip_flood: a SIP load generator for the honeypot benchmark
 * (tools/bench/bench_sip.sh). It only talks to loopback (127.0.0.0/8):
 * any other target is refused.
 *
 *   sip_flood udp   --target 127.0.0.1:PORT --rate N --seconds S
 *                   [--sockets K] [--batch B] [--sources M]
 *   sip_flood burst --target 127.0.0.1:PORT --count N [--sockets K] [--batch B]
 *   sip_flood tcp   --target 127.0.0.1:PORT --rate N --seconds S
 *                   [--concurrency C] [--sources M] [--reply-wait MS] [--stall-ms MS]
 *   sip_flood tls   --target 127.0.0.1:PORT --rate N --seconds S   (same options)
 *                   [--tls-priority STRING]  (default NORMAL:-GROUP-ALL:+GROUP-X25519)
 *   sip_flood dump  --count N --dir DIR   (the first N UDP flood messages,
 *                   one file each: tools/bench/bench_raw reads them)
 *   common: [--seed N] [--connect-timeout MS] [--numbers N]
 *     --numbers N: the called numbers' varying digits take N values (default
 *     10^7: nearly every INVITE calls a new number; a small N is a scanner
 *     that tries a few numbers again and again)
 *
 * udp: INVITEs with SDP (800..1200 bytes; varied called numbers, Call-IDs,
 *   branches, tags, user agents) paced at N a second with sendmmsg batches
 *   and clock_nanosleep, from K sockets (K source ports), bound to
 *   127.0.0.1, or to 127.0.0.2.. when M > 1.
 * burst: N datagrams as fast as the sockets take them.
 * tcp: N connections a second, each from a random 127.0.0.2-127.0.0.254
 *   (the node limits open connections per source address): non-blocking
 *   connect, one INVITE, the reply read if one comes within --reply-wait,
 *   close. Connect latency is connect() to writable.
 * tls: the same over TLS (GnuTLS client, no certificate verification);
 *   handshake latency is connected to handshake done.
 *
 * Every loop is bounded in time and count. Output is plain "name: value
 * unit" lines, the settings first, for bench_sip.sh to read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "bench_util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)
#define POOL 1024           /* message templates; each send patches its own ids */
#define MSG_MAX 1536        /* largest template */
#define MSG_MIN_LEN 800     /* template sizes are drawn from [MSG_MIN_LEN, MSG_MAX_LEN] */
#define MSG_MAX_LEN 1200
#define MAX_SOCKETS 256
#define MAX_BATCH 64        /* datagrams per sendmmsg */
#define MAX_RATE 10000000UL
#define MAX_SECONDS 600UL
#define MAX_COUNT 100000000UL
#define MAX_CONCURRENCY 4096
#define BURST_TIME_LIMIT_NS (60 * NS_PER_SEC)
#define DRAIN_EXTRA_NS (1 * NS_PER_SEC) /* after the last timeout could fire */
#define NUM_DIGITS 7        /* digits of each called number changed per message */
#define MAX_ERRNO 160

enum mode { MODE_UDP, MODE_BURST, MODE_TCP, MODE_TLS, MODE_DUMP };

struct opts {
	enum mode mode;
	struct sockaddr_in target;
	unsigned long rate, seconds, count, numbers;
	unsigned sockets, batch, sources, concurrency;
	unsigned reply_wait_ms, connect_timeout_ms, stall_ms;
	const char *tls_priority;
	const char *dir; /* dump */
	uint64_t seed;
};

/* ---- small helpers ------------------------------------------------- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("sip_flood: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Sleep until the monotonic time t (ns). */
static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / NS_PER_SEC), (long)(t % NS_PER_SEC) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

static uint64_t mix64(uint64_t z)
{
	uint64_t s = z;
	return rng_next(&s);
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static unsigned long parse_ulong(const char *name, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	/* allow 10k, 2M */
	if (end != s && (*end == 'k' || *end == 'K')) {
		v *= 1000;
		end++;
	} else if (end != s && (*end == 'm' || *end == 'M')) {
		v *= 1000000;
		end++;
	}
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		die("--%s: '%s' is not a number from %lu to %lu", name, s, lo, hi);
	return v;
}

/* 127.0.0.1:5060; loopback only */
static void parse_target(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		die("--target: '%s' is not HOST:PORT", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		die("--target: '%s' is not an IPv4 address", host);
	if ((ntohl(out->sin_addr.s_addr) >> 24) != 127)
		die("--target: %s is not a loopback address (127.0.0.0/8): refused", host);
	out->sin_port = htons((uint16_t)parse_ulong("target port", colon + 1, 1, 65535));
}

/* Source address i of m: 127.0.0.1 alone, or 127.0.0.2 .. 127.0.0.254. */
static struct sockaddr_in source_addr(unsigned i, unsigned m)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(m <= 1 ? 0x7f000001u : 0x7f000002u + (i % m));
	return a;
}

/* ---- the messages ----------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		die("message template too large");
	b->len += (size_t)n;
}

/* A placeholder of width '0's patched per message; returns its offset. */
static size_t sb_field(struct sbuf *b, size_t width)
{
	size_t off = b->len;
	if (b->cap - b->len <= width)
		die("message template too large");
	memset(b->p + b->len, '0', width);
	b->len += width;
	b->p[b->len] = '\0';
	return off;
}

struct msg {
	char buf[MSG_MAX];
	size_t len;
	size_t branch_off, tag_off, callid_off, num_off[2];
};

static const char *const user_agents[] = {
	"friendly-scanner",
	"sipvicious",
	"sipcli/v1.8",
	"VaxSIPUserAgent/3.1",
	"PolycomSoundPointIP-SPIP_550-UA/3.3.2.0413",
	"pplsip",
	"Asterisk PBX 1.6.0.10",
	"Cisco-SIPGateway/IOS-12.x",
	"Zoiper rv2.10.20.1",
	"eyeBeam release 1011d stamp 40820",
	"Linksys/SPA942-6.1.5(a)",
	"SIPPing",
};
#define N_UAS (sizeof(user_agents) / sizeof(user_agents[0]))

/* Called-number forms seen from toll-fraud scanners: the prefix, one fixed
 * digit, then NUM_DIGITS digits drawn per message. */
static const char *const number_prefixes[] = {
	"+4420", "004420", "+44", "0044", "4420", "00972", "9011972", "011441", "+1", "00", "900",
	"+4420", "0046", "+3725",
};
#define N_PREFIXES (sizeof(number_prefixes) / sizeof(number_prefixes[0]))

static const char *const from_users[] = { "100", "1000", "101", "anonymous", "2001", "admin",
					  "4001", "+441134960000", "9999", "500" };
#define N_FROMS (sizeof(from_users) / sizeof(from_users[0]))

/* Optional parts, added in this order until the template reaches its size. */
enum {
	OPT_ALLOW, OPT_SUPPORTED, OPT_PAI, OPT_RPID, OPT_SESSION, OPT_ACCEPT, OPT_PRIVACY,
	OPT_CODECS, OPT_RTCP, OPT_VIDEO, OPT_XHDR, N_OPTS
};

static void build_once(struct msg *m, uint64_t *rng_in, const char *tp, unsigned nopts,
		       const struct sockaddr_in *target)
{
	uint64_t rng = *rng_in; /* same draws on every rebuild */
	struct sbuf b = { m->buf, 0, sizeof(m->buf) };
	char dst[INET_ADDRSTRLEN], src[16], body[1024];
	struct sbuf sdp = { body, 0, sizeof(body) };
	inet_ntop(AF_INET, &target->sin_addr, dst, sizeof(dst));
	snprintf(src, sizeof(src), "127.0.0.1");
	unsigned sport = rng_below(&rng, 3) == 0 ? 5060 : (unsigned)(1024 + rng_below(&rng, 64000));
	const char *prefix = number_prefixes[rng_below(&rng, N_PREFIXES)];
	unsigned fixed = (unsigned)rng_below(&rng, 10);
	const char *ua = user_agents[rng_below(&rng, N_UAS)];
	const char *from = from_users[rng_below(&rng, N_FROMS)];
	unsigned sess = (unsigned)rng_below(&rng, 100000000);
	unsigned rtp = (unsigned)(10000 + 2 * rng_below(&rng, 10000));
	bool callid_host = rng_below(&rng, 2) == 0;
	unsigned cseq = 1 + (unsigned)rng_below(&rng, 3);

	/* the body first: Content-Length must be right */
	sb_printf(&sdp, "v=0\r\no=- %u %u IN IP4 %s\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\n", sess,
		  sess, src, rng_below(&rng, 2) ? "-" : "SIP Call", src);
	if (nopts > OPT_CODECS)
		sb_printf(&sdp, "m=audio %u RTP/AVP 0 8 3 18 9 97 101\r\n", rtp);
	else
		sb_printf(&sdp, "m=audio %u RTP/AVP 0 8 18 101\r\n", rtp);
	sb_printf(&sdp, "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
	if (nopts > OPT_CODECS)
		sb_printf(&sdp, "a=rtpmap:3 GSM/8000\r\n");
	sb_printf(&sdp, "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n");
	if (nopts > OPT_CODECS)
		sb_printf(&sdp, "a=rtpmap:9 G722/8000\r\na=rtpmap:97 iLBC/8000\r\na=fmtp:97 mode=30\r\n");
	sb_printf(&sdp, "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
	if (nopts > OPT_RTCP)
		sb_printf(&sdp, "a=rtcp:%u IN IP4 %s\r\n", rtp + 1, src);
	sb_printf(&sdp, "a=ptime:20\r\na=sendrecv\r\n");
	if (nopts > OPT_VIDEO)
		sb_printf(&sdp, "m=video %u RTP/AVP 34 99\r\na=rtpmap:34 H263/90000\r\n"
				"a=rtpmap:99 H264/90000\r\na=fmtp:99 profile-level-id=42801F\r\n",
			  rtp + 2);

	sb_printf(&b, "INVITE sip:%s%u", prefix, fixed);
	m->num_off[0] = sb_field(&b, NUM_DIGITS);
	sb_printf(&b, "@%s SIP/2.0\r\nVia: SIP/2.0/%s %s:%u;branch=z9hG4bK", dst, tp, src, sport);
	m->branch_off = sb_field(&b, 16);
	sb_printf(&b, ";rport\r\nMax-Forwards: 70\r\nFrom: \"%s\" <sip:%s@%s>;tag=", from, from, dst);
	m->tag_off = sb_field(&b, 8);
	sb_printf(&b, "\r\nTo: <sip:%s%u", prefix, fixed);
	m->num_off[1] = sb_field(&b, NUM_DIGITS);
	sb_printf(&b, "@%s>\r\nCall-ID: ", dst);
	m->callid_off = sb_field(&b, 16);
	if (callid_host)
		sb_printf(&b, "@%s", src);
	sb_printf(&b, "\r\nCSeq: %u INVITE\r\nContact: <sip:%s@%s:%u;transport=%s>\r\n", cseq, from,
		  src, sport, tp);
	sb_printf(&b, "User-Agent: %s\r\n", ua);
	if (nopts > OPT_ALLOW)
		sb_printf(&b, "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, "
			      "SUBSCRIBE, INFO, UPDATE\r\n");
	if (nopts > OPT_SUPPORTED)
		sb_printf(&b, "Supported: replaces, timer, 100rel\r\n");
	if (nopts > OPT_PAI)
		sb_printf(&b, "P-Asserted-Identity: <sip:%s@%s>\r\n", from, src);
	if (nopts > OPT_RPID)
		sb_printf(&b, "Remote-Party-ID: \"%s\" <sip:%s@%s>;party=calling;screen=no;"
			      "privacy=off\r\n", from, from, src);
	if (nopts > OPT_SESSION)
		sb_printf(&b, "Session-Expires: 1800\r\nMin-SE: 90\r\n");
	if (nopts > OPT_ACCEPT)
		sb_printf(&b, "Accept: application/sdp, application/dtmf-relay\r\n");
	if (nopts > OPT_PRIVACY)
		sb_printf(&b, "Privacy: none\r\n");
	if (nopts > OPT_XHDR)
		sb_printf(&b, "X-Serialnumber: %016" PRIx64 "\r\n", rng_next(&rng));
	sb_printf(&b, "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s", sdp.len, body);
	m->len = b.len;
}

/* One template: optional parts are added until it reaches its drawn size. */
static void build_template(struct msg *m, uint64_t *rng, const char *tp,
			   const struct sockaddr_in *target)
{
	size_t want = MSG_MIN_LEN + (size_t)rng_below(rng, MSG_MAX_LEN - MSG_MIN_LEN + 1);
	uint64_t draws = rng_next(rng);
	unsigned k = 0;
	for (;;) {
		uint64_t r = draws;
		build_once(m, &r, tp, k, target);
		if (m->len >= want || k > N_OPTS)
			break;
		k++;
	}
	if (m->len > MSG_MAX_LEN) { /* one step too far: back off a step */
		uint64_t r = draws;
		if (k > 0)
			build_once(m, &r, tp, k - 1, target);
	}
}

static void put_hex(char *p, size_t width, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = width; i-- > 0; v >>= 4)
		p[i] = digits[v & 15];
}

static void put_dec(char *p, size_t width, uint64_t v)
{
	for (size_t i = width; i-- > 0; v /= 10)
		p[i] = (char)('0' + v % 10);
}

/* Message seq: fresh Call-ID, branch, tag and called number (one of
 * `numbers` digit strings per template prefix; 0: any of 10^NUM_DIGITS). */
static const struct msg *next_message(struct msg *pool, uint64_t seed, uint64_t numbers,
				      uint64_t seq)
{
	struct msg *m = &pool[seq % POOL];
	uint64_t h = mix64(seed ^ (seq * UINT64_C(0xd1b54a32d192ed03)));
	put_hex(m->buf + m->callid_off, 16, h);
	put_hex(m->buf + m->branch_off, 16, mix64(h));
	put_hex(m->buf + m->tag_off, 8, h >> 32);
	uint64_t num = mix64(h ^ 0x5bd1e995u) % (numbers ? numbers : 10000000u);
	put_dec(m->buf + m->num_off[0], NUM_DIGITS, num);
	put_dec(m->buf + m->num_off[1], NUM_DIGITS, num);
	return m;
}

static struct msg *make_pool(uint64_t seed, const char *tp, const struct sockaddr_in *target)
{
	struct msg *pool = xcalloc(POOL, sizeof(*pool));
	uint64_t rng = seed;
	size_t lo = SIZE_MAX, hi = 0, sum = 0;
	for (size_t i = 0; i < POOL; i++) {
		build_template(&pool[i], &rng, tp, target);
		lo = pool[i].len < lo ? pool[i].len : lo;
		hi = pool[i].len > hi ? pool[i].len : hi;
		sum += pool[i].len;
	}
	printf("message_bytes: min %zu mean %zu max %zu (%d templates, INVITE with SDP)\n", lo,
	       sum / POOL, hi, POOL);
	return pool;
}

/* ---- dump: the messages a UDP flood sends, one file each ---------------- */

static int run_dump(const struct opts *o)
{
	struct msg *pool = make_pool(o->seed, "UDP", &o->target);
	char path[4096];
	for (uint64_t seq = 0; seq < o->count; seq++) {
		const struct msg *m = next_message(pool, o->seed, o->numbers, seq);
		snprintf(path, sizeof(path), "%s/%06" PRIu64 ".sip", o->dir, seq);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(m->buf, 1, m->len, f) != m->len || fclose(f) != 0)
			die("%s: %s", path, strerror(errno));
	}
	printf("dumped: %" PRIu64 " messages into %s\n", o->count, o->dir);
	return 0;
}

/* ---- UDP: paced and burst ---------------------------------------------- */

static int udp_socket(const struct opts *o, unsigned i)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int sb = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	struct sockaddr_in src = source_addr(i, o->sources);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
		die("bind %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
	if (connect(fd, (const struct sockaddr *)&o->target, sizeof(o->target)) != 0)
		die("connect: %s", strerror(errno));
	return fd;
}

static int run_udp(const struct opts *o)
{
	bool burst = o->mode == MODE_BURST;
	uint64_t total = burst ? o->count : (uint64_t)o->rate * o->seconds;
	unsigned batch = o->batch;
	if (!batch) /* a burst at most every ~0.5 ms, at most MAX_BATCH */
		batch = burst ? MAX_BATCH : (unsigned)(o->rate / 2000 ? o->rate / 2000 : 1);
	if (batch > MAX_BATCH)
		batch = MAX_BATCH;

	printf("mode: %s\n", burst ? "burst" : "udp");
	printf("target: %s:%u\n", inet_ntoa(o->target.sin_addr), (unsigned)ntohs(o->target.sin_port));
	printf("sockets: %u (source %s%s)\n", o->sockets,
	       o->sources <= 1 ? "127.0.0.1" : "127.0.0.2 ..",
	       o->sources <= 1 ? "" : " spread");
	printf("batch: %u datagrams per sendmmsg\n", batch);
	printf("numbers: %lu distinct digit strings per number prefix\n", o->numbers ? o->numbers : 10000000UL);
	if (burst)
		printf("count_target: %" PRIu64 " datagrams\n", total);
	else
		printf("rate_target: %lu datagrams/s for %lu s\n", o->rate, o->seconds);

	struct msg *pool = make_pool(o->seed, "UDP", &o->target);
	int *fds = xcalloc(o->sockets, sizeof(*fds));
	for (unsigned i = 0; i < o->sockets; i++)
		fds[i] = udp_socket(o, i);
	struct mmsghdr mm[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	uint64_t sent = 0, errors = 0, seq = 0, calls = 0, bytes = 0, late_max = 0;
	unsigned long err_kind[MAX_ERRNO] = { 0 };
	double cpu0 = cpu_seconds();
	uint64_t start = mono_ns();
	uint64_t end = start + (burst ? BURST_TIME_LIMIT_NS : (uint64_t)o->seconds * NS_PER_SEC);
	/* a sender that fell behind may finish the schedule a little late */
	uint64_t hard_end = end + (burst ? 0 : NS_PER_SEC);
	uint64_t now = start;

	while (seq < total && now < hard_end) {
		uint64_t due = total;
		if (!burst) {
			/* sent so far should be rate * elapsed */
			double d = (double)o->rate * (double)(now - start) / 1e9;
			due = (uint64_t)d + 1;
			if (due > total)
				due = total;
		}
		while (seq < due) {
			unsigned n = (unsigned)(due - seq < batch ? due - seq : batch);
			for (unsigned i = 0; i < n; i++) {
				const struct msg *m = next_message(pool, o->seed, o->numbers, seq + i);
				iov[i] = (struct iovec){ (void *)m->buf, m->len };
				mm[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
				mm[i].msg_len = 0;
			}
			int fd = fds[calls++ % o->sockets];
			unsigned done = 0;
			while (done < n) {
				int r = sendmmsg(fd, mm + done, n - done, 0);
				if (r > 0) {
					for (int i = 0; i < r; i++)
						bytes += iov[done + (unsigned)i].iov_len;
					done += (unsigned)r;
					sent += (uint64_t)r;
				} else if (r < 0 && errno == EINTR) {
					continue;
				} else {
					/* the first of the rest failed: count it, go on */
					errors++;
					if (errno > 0 && errno < MAX_ERRNO)
						err_kind[errno]++;
					done++;
				}
			}
			seq += n;
		}
		if (burst) {
			now = mono_ns();
			continue;
		}
		/* sleep until the next batch is due */
		uint64_t next = start + (uint64_t)((double)(seq + batch - 1) * 1e9 / (double)o->rate);
		now = mono_ns();
		if (seq < total && now > next && now - next > late_max)
			late_max = now - next;
		if (next > hard_end)
			next = hard_end;
		if (next > now && seq < total)
			sleep_until(next);
		now = mono_ns();
	}
	uint64_t elapsed = mono_ns() - start;
	double cpu = cpu_seconds() - cpu0;
	printf("sent: %" PRIu64 " datagrams\n", sent);
	printf("send_errors: %" PRIu64, errors);
	for (int e = 1; e < MAX_ERRNO; e++)
		if (err_kind[e])
			printf(" (%s: %lu)", strerrorname_np(e), err_kind[e]);
	printf("\n");
	printf("bytes_sent: %" PRIu64 " (mean %.0f a datagram)\n", bytes,
	       sent ? (double)bytes / (double)sent : 0.0);
	printf("elapsed: %.3f s\n", (double)elapsed / 1e9);
	printf("rate_achieved: %.0f datagrams/s\n", elapsed ? (double)sent * 1e9 / (double)elapsed : 0.0);
	if (!burst)
		printf("behind_schedule_max: %.3f ms\n", ms(late_max));
	printf("generator_cpu: %.1f %% of one core\n", elapsed ? cpu * 1e11 / (double)elapsed : 0.0);
	if (seq < total)
		printf("note: stopped at the time limit with %" PRIu64 " of %" PRIu64 " sent\n", seq,
		       total);
	for (unsigned i = 0; i < o->sockets; i++)
		close(fds[i]);
	free(fds);
	free(pool);
	return 0;
}

/* ---- TCP and TLS ------------------------------------------------------ */

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_SENDING, C_REPLY };

struct tconn {
	int fd;
	enum cstate st;
	gnutls_session_t tls;
	uint64_t t_start, t_conn, t_sent, deadline;
	const struct msg *m;
	size_t off; /* bytes of m sent (TCP) */
	uint32_t events;
};

struct tstats {
	uint64_t launched, connected, failed, tls_done, tls_failed, sent, replies, no_reply;
	uint64_t delayed, abandoned;
	unsigned long err_kind[MAX_ERRNO];
	unsigned long tls_err; /* handshake errors */
	int last_tls_err;
	uint64_t *conn_lat, *hs_lat, *reply_lat;
	size_t n_conn_lat, n_hs_lat, n_reply_lat, cap;
};

struct tctx {
	const struct opts *o;
	bool tls;
	int ep;
	struct tconn *c;
	unsigned *free_list, nfree;
	struct msg *pool;
	uint64_t seq, rng;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	struct tstats s;
};

static void record(uint64_t *arr, size_t *n, size_t cap, uint64_t v)
{
	if (*n < cap)
		arr[(*n)++] = v;
}

static void set_events(struct tctx *t, struct tconn *c, uint32_t ev)
{
	if (c->events == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void conn_finish(struct tctx *t, struct tconn *c)
{
	if (c->tls) {
		if (c->st == C_REPLY || c->st == C_SENDING)
			gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* non-blocking: best effort */
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = C_FREE;
	c->events = 0;
	t->free_list[t->nfree++] = (unsigned)(c - t->c);
}

static void conn_fail(struct tctx *t, struct tconn *c, int err)
{
	t->s.failed++;
	if (err > 0 && err < MAX_ERRNO)
		t->s.err_kind[err]++;
	conn_finish(t, c);
}

static void start_send(struct tctx *t, struct tconn *c, uint64_t now);

static void tls_step(struct tctx *t, struct tconn *c, uint64_t now)
{
	int rc = gnutls_handshake(c->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		set_events(t, c, gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (rc < 0) {
		t->s.tls_failed++;
		t->s.last_tls_err = rc;
		conn_finish(t, c);
		return;
	}
	/* the handshake may finish inside this call (it costs the client a
	 * fraction of a millisecond): the time is taken after it */
	now = mono_ns();
	t->s.tls_done++;
	record(t->s.hs_lat, &t->s.n_hs_lat, t->s.cap, now - c->t_conn);
	start_send(t, c, now);
}

static void connected(struct tctx *t, struct tconn *c, uint64_t now)
{
	t->s.connected++;
	c->t_conn = now;
	record(t->s.conn_lat, &t->s.n_conn_lat, t->s.cap, now - c->t_start);
	if (!t->tls) {
		start_send(t, c, now);
		return;
	}
	if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) != 0 ||
	    gnutls_priority_set(c->tls, t->prio) != 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, t->cred) != 0) {
		t->s.tls_failed++;
		conn_finish(t, c);
		return;
	}
	/* no verification: a scanner does not check the honeypot's certificate */
	gnutls_transport_set_int(c->tls, c->fd);
	c->st = C_HANDSHAKE;
	c->deadline = now + (uint64_t)t->o->connect_timeout_ms * NS_PER_MS;
	tls_step(t, c, now);
}

/* Send (the rest of) the INVITE; then wait briefly for a reply. */
static void start_send(struct tctx *t, struct tconn *c, uint64_t now)
{
	if (c->st != C_SENDING) {
		c->st = C_SENDING;
		c->m = next_message(t->pool, t->o->seed, t->o->numbers, t->seq++);
		c->off = 0;
		c->deadline = now + (uint64_t)t->o->connect_timeout_ms * NS_PER_MS;
	}
	while (c->off < c->m->len) {
		ssize_t n;
		if (c->tls) {
			/* after GNUTLS_E_AGAIN gnutls wants the same call again */
			n = gnutls_record_send(c->tls, c->m->buf + c->off, c->m->len - c->off);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				set_events(t, c, gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN);
				return;
			}
			if (n < 0) {
				conn_fail(t, c, EPIPE);
				return;
			}
		} else {
			n = send(c->fd, c->m->buf + c->off, c->m->len - c->off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				set_events(t, c, EPOLLOUT);
				return;
			}
			if (n <= 0) {
				conn_fail(t, c, n < 0 ? errno : EPIPE);
				return;
			}
		}
		c->off += (size_t)n;
	}
	t->s.sent++;
	c->t_sent = now;
	c->st = C_REPLY;
	c->deadline = now + (uint64_t)t->o->reply_wait_ms * NS_PER_MS;
	set_events(t, c, EPOLLIN | EPOLLRDHUP);
}

static void read_reply(struct tctx *t, struct tconn *c, uint64_t now)
{
	char buf[4096];
	bool got = false;
	for (int i = 0; i < 16; i++) { /* bounded: a reply is a few kB at most */
		ssize_t n = c->tls ? gnutls_record_recv(c->tls, buf, sizeof(buf))
				   : recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			got = true;
			continue;
		}
		if (c->tls ? (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			   : (n < 0 && (errno == EAGAIN || errno == EINTR))) {
			if (!got)
				return; /* e.g. a TLS 1.3 session ticket only: keep waiting */
		}
		break; /* EOF, error, or a reply read */
	}
	if (got) {
		t->s.replies++;
		record(t->s.reply_lat, &t->s.n_reply_lat, t->s.cap, now - c->t_sent);
	} else {
		t->s.no_reply++;
	}
	conn_finish(t, c);
}

static void launch(struct tctx *t, uint64_t now)
{
	struct tconn *c = &t->c[t->free_list[--t->nfree]];
	t->s.launched++;
	c->tls = NULL;
	c->events = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(t, c, errno);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in src = source_addr((unsigned)rng_below(&t->rng, 253), t->o->sources);
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		conn_fail(t, c, errno);
		return;
	}
	c->t_start = now;
	c->deadline = now + (uint64_t)t->o->connect_timeout_ms * NS_PER_MS;
	int rc = connect(c->fd, (const struct sockaddr *)&t->o->target, sizeof(t->o->target));
	if (rc != 0 && errno != EINPROGRESS) {
		conn_fail(t, c, errno);
		return;
	}
	c->st = C_CONNECTING;
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
		conn_fail(t, c, errno);
		return;
	}
	c->events = EPOLLOUT;
	if (rc == 0)
		connected(t, c, mono_ns());
}

static void on_event(struct tctx *t, struct tconn *c, uint32_t ev, uint64_t now)
{
	switch (c->st) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
			err = errno;
		if (err) {
			conn_fail(t, c, err);
			return;
		}
		if (!(ev & EPOLLOUT))
			return;
		connected(t, c, now);
		return;
	}
	case C_HANDSHAKE:
		tls_step(t, c, now);
		return;
	case C_SENDING:
		start_send(t, c, now);
		return;
	case C_REPLY:
		read_reply(t, c, now);
		return;
	case C_FREE:
		return;
	}
}

static void expire(struct tctx *t, uint64_t now, bool all)
{
	for (unsigned i = 0; i < t->o->concurrency; i++) {
		struct tconn *c = &t->c[i];
		if (c->st == C_FREE || (!all && now < c->deadline))
			continue;
		switch (c->st) {
		case C_CONNECTING:
			if (all)
				t->s.abandoned++;
			conn_fail(t, c, ETIMEDOUT);
			break;
		case C_HANDSHAKE:
			t->s.tls_failed++;
			t->s.last_tls_err = GNUTLS_E_TIMEDOUT;
			conn_finish(t, c);
			break;
		case C_SENDING:
			conn_fail(t, c, ETIMEDOUT);
			break;
		case C_REPLY:
			t->s.no_reply++;
			conn_finish(t, c);
			break;
		case C_FREE:
			break;
		}
	}
}

static void print_lat(const char *name, uint64_t *v, size_t n)
{
	if (!n) {
		printf("%s: none\n", name);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%s: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (n %zu)\n", name,
	       ms(pct(v, n, 50)), ms(pct(v, n, 99)), ms(pct(v, n, 99.9)), ms(v[n - 1]), n);
}

static int run_stream(const struct opts *o)
{
	struct tctx t;
	memset(&t, 0, sizeof(t));
	t.o = o;
	t.tls = o->mode == MODE_TLS;
	t.rng = o->seed ^ UINT64_C(0x7c3a);
	uint64_t total = (uint64_t)o->rate * o->seconds;

	printf("mode: %s\n", t.tls ? "tls" : "tcp");
	printf("target: %s:%u\n", inet_ntoa(o->target.sin_addr), (unsigned)ntohs(o->target.sin_port));
	printf("rate_target: %lu connections/s for %lu s\n", o->rate, o->seconds);
	printf("sources: %s\n", o->sources <= 1 ? "127.0.0.1" : "random 127.0.0.2-127.0.0.254");
	printf("concurrency_max: %u, reply_wait %u ms, connect/handshake timeout %u ms\n",
	       o->concurrency, o->reply_wait_ms, o->connect_timeout_ms);
	t.pool = make_pool(o->seed, t.tls ? "TLS" : "TCP", &o->target);
	if (t.tls) {
		const char *err = NULL;
		if (gnutls_certificate_allocate_credentials(&t.cred) != 0)
			die("gnutls_certificate_allocate_credentials failed");
		if (gnutls_priority_init(&t.prio, o->tls_priority, &err) != 0)
			die("--tls-priority: bad string at '%s'", err ? err : "?");
		printf("tls_priority: %s (no certificate verification)\n", o->tls_priority);
	}
	t.ep = epoll_create1(EPOLL_CLOEXEC);
	if (t.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	t.c = xcalloc(o->concurrency, sizeof(*t.c));
	t.free_list = xcalloc(o->concurrency, sizeof(*t.free_list));
	for (unsigned i = 0; i < o->concurrency; i++) {
		t.c[i].fd = -1;
		t.free_list[t.nfree++] = o->concurrency - 1 - i;
	}
	t.s.cap = total + 16;
	t.s.conn_lat = xcalloc(t.s.cap, sizeof(uint64_t));
	t.s.hs_lat = xcalloc(t.tls ? t.s.cap : 1, sizeof(uint64_t));
	t.s.reply_lat = xcalloc(t.s.cap, sizeof(uint64_t));

	struct epoll_event evs[256];
	double cpu0 = cpu_seconds();
	uint64_t start = mono_ns();
	/* the schedule ends at `seconds`; a generator that fell behind may
	 * launch the rest up to a second late, no later */
	uint64_t launch_end = start + ((uint64_t)o->seconds + 1) * NS_PER_SEC;
	uint64_t hard_end = launch_end + (uint64_t)o->connect_timeout_ms * NS_PER_MS * 2 +
			    (uint64_t)o->reply_wait_ms * NS_PER_MS + DRAIN_EXTRA_NS;
	uint64_t next_expire = start, scheduled = 0, late_max = 0, last_launch_ns = start;
	uint64_t delayed_idx = UINT64_MAX;
	uint64_t now = start;

	while (now < hard_end) {
		/* launch what is due: rate * elapsed */
		if (now < launch_end && scheduled < total) {
			double d = (double)o->rate * (double)(now - start) / 1e9;
			uint64_t due = (uint64_t)d + 1;
			if (due > total)
				due = total;
			for (unsigned k = 0; scheduled < due && k < 64; k++) {
				uint64_t at = start + (uint64_t)((double)scheduled * 1e9 / (double)o->rate);
				if (t.nfree == 0) { /* no free slot: this one waits */
					if (delayed_idx != scheduled) {
						t.s.delayed++;
						delayed_idx = scheduled;
					}
					break;
				}
				if (now > at && now - at > late_max)
					late_max = now - at;
				launch(&t, now);
				scheduled++;
				last_launch_ns = now;
			}
		}
		bool active = t.nfree < o->concurrency;
		if (now >= launch_end || scheduled >= total) {
			if (!active)
				break; /* all done */
		}
		/* wait for events, at most until the next launch is due */
		uint64_t wake = now + NS_PER_MS;
		if (now < launch_end && scheduled < total) {
			uint64_t next = start + (uint64_t)((double)scheduled * 1e9 / (double)o->rate);
			if (next < wake)
				wake = next;
		}
		if (wake < now)
			wake = now;
		int n;
		if (active) {
			struct timespec ts = { 0, (long)(wake - now) };
			n = epoll_pwait2(t.ep, evs, 256, &ts, NULL);
		} else {
			sleep_until(wake);
			n = 0;
		}
		now = mono_ns();
		for (int i = 0; i < n; i++)
			on_event(&t, evs[i].data.ptr, evs[i].events, now);
		if (now >= next_expire) {
			expire(&t, now, false);
			next_expire = now + NS_PER_MS;
		}
	}
	expire(&t, now, true); /* whatever is left at the hard limit */
	uint64_t elapsed = last_launch_ns - start;
	double wall = (double)(mono_ns() - start) / 1e9;
	double cpu = cpu_seconds() - cpu0;

	printf("launched: %" PRIu64 " connections\n", t.s.launched);
	printf("connections: %" PRIu64 " made\n", t.s.connected);
	printf("failed: %" PRIu64, t.s.failed);
	for (int e = 1; e < MAX_ERRNO; e++)
		if (t.s.err_kind[e])
			printf(" (%s: %lu)", strerrorname_np(e), t.s.err_kind[e]);
	printf("\n");
	if (t.s.abandoned)
		printf("abandoned_at_time_limit: %" PRIu64 "\n", t.s.abandoned);
	printf("launches_delayed_no_free_slot: %" PRIu64 "\n", t.s.delayed);
	printf("behind_schedule_max: %.3f ms\n", ms(late_max));
	printf("rate_achieved: %.0f connections/s\n",
	       elapsed ? (double)t.s.connected * 1e9 / (double)elapsed : 0.0);
	if (t.tls) {
		printf("handshakes: %" PRIu64 " done, %" PRIu64 " failed", t.s.tls_done, t.s.tls_failed);
		if (t.s.last_tls_err)
			printf(" (last: %s)", gnutls_strerror(t.s.last_tls_err));
		printf("\n");
		printf("handshake_rate_achieved: %.0f handshakes/s\n",
		       elapsed ? (double)t.s.tls_done * 1e9 / (double)elapsed : 0.0);
	}
	printf("invites_sent: %" PRIu64 "\n", t.s.sent);
	printf("replies: %" PRIu64 " (no reply within %u ms: %" PRIu64 ")\n", t.s.replies,
	       o->reply_wait_ms, t.s.no_reply);
	size_t stalls = 0;
	for (size_t i = 0; i < t.s.n_conn_lat; i++)
		stalls += t.s.conn_lat[i] >= (uint64_t)o->stall_ms * NS_PER_MS;
	printf("stalls: %zu connections took %u ms or more to connect\n", stalls, o->stall_ms);
	print_lat("connect_latency", t.s.conn_lat, t.s.n_conn_lat);
	if (t.tls)
		print_lat("handshake_latency", t.s.hs_lat, t.s.n_hs_lat);
	print_lat("reply_latency", t.s.reply_lat, t.s.n_reply_lat);
	printf("elapsed: %.3f s (launching %.3f s)\n", wall, (double)elapsed / 1e9);
	printf("generator_cpu: %.1f %% of one core\n", wall > 0 ? cpu * 100.0 / wall : 0.0);

	close(t.ep);
	if (t.cred)
		gnutls_certificate_free_credentials(t.cred);
	if (t.prio)
		gnutls_priority_deinit(t.prio);
	free(t.c);
	free(t.free_list);
	free(t.s.conn_lat);
	free(t.s.hs_lat);
	free(t.s.reply_lat);
	free(t.pool);
	return 0;
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: sip_flood udp   --target 127.0.0.1:PORT --rate N --seconds S [--sockets K]"
	      " [--batch B] [--sources M]\n"
	      "       sip_flood burst --target 127.0.0.1:PORT --count N [--sockets K] [--batch B]\n"
	      "       sip_flood tcp   --target 127.0.0.1:PORT --rate N --seconds S"
	      " [--concurrency C] [--sources M] [--reply-wait MS] [--stall-ms MS]\n"
	      "       sip_flood tls   (as tcp) [--tls-priority STRING]\n"
	      "       sip_flood dump  --count N --dir DIR   (the first N UDP flood messages,"
	      " one file each, for bench_raw)\n"
	      "       common: [--seed N] [--connect-timeout MS] [--numbers N]\n"
	      "Targets must be loopback (127.0.0.0/8).\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "sockets", required_argument, NULL, 'k' },
		{ "batch", required_argument, NULL, 'b' },
		{ "sources", required_argument, NULL, 'm' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "reply-wait", required_argument, NULL, 'w' },
		{ "connect-timeout", required_argument, NULL, 'T' },
		{ "seed", required_argument, NULL, 'S' },
		{ "numbers", required_argument, NULL, 'N' },
		{ "stall-ms", required_argument, NULL, 'L' },
		{ "tls-priority", required_argument, NULL, 'P' },
		{ "dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	bool have_target = false;
	memset(&o, 0, sizeof(o));
	o.sockets = 16;
	o.concurrency = 1024;
	o.reply_wait_ms = 20;
	o.connect_timeout_ms = 3000;
	o.stall_ms = 100;
	/* one key share, the group most clients offer first: the client's
	 * side of a handshake costs the shared CPUs less */
	o.tls_priority = "NORMAL:-GROUP-ALL:+GROUP-X25519";
	o.seed = UINT64_C(0x51bf100d);
	o.seconds = 10;
	o.rate = 1000;
	o.count = 10000;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "udp") == 0)
		o.mode = MODE_UDP;
	else if (strcmp(argv[1], "burst") == 0)
		o.mode = MODE_BURST;
	else if (strcmp(argv[1], "tcp") == 0)
		o.mode = MODE_TCP;
	else if (strcmp(argv[1], "tls") == 0)
		o.mode = MODE_TLS;
	else if (strcmp(argv[1], "dump") == 0)
		o.mode = MODE_DUMP;
	else if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	} else {
		usage(stderr);
		return 2;
	}
	o.sources = (o.mode == MODE_TCP || o.mode == MODE_TLS) ? 253 : 1;
	optind = 2;
	for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
		switch (ch) {
		case 't': parse_target(optarg, &o.target); have_target = true; break;
		case 'r': o.rate = parse_ulong("rate", optarg, 1, MAX_RATE); break;
		case 's': o.seconds = parse_ulong("seconds", optarg, 1, MAX_SECONDS); break;
		case 'n': o.count = parse_ulong("count", optarg, 1, MAX_COUNT); break;
		case 'k': o.sockets = (unsigned)parse_ulong("sockets", optarg, 1, MAX_SOCKETS); break;
		case 'b': o.batch = (unsigned)parse_ulong("batch", optarg, 1, MAX_BATCH); break;
		case 'm': o.sources = (unsigned)parse_ulong("sources", optarg, 1, 253); break;
		case 'c':
			o.concurrency = (unsigned)parse_ulong("concurrency", optarg, 1, MAX_CONCURRENCY);
			break;
		case 'w': o.reply_wait_ms = (unsigned)parse_ulong("reply-wait", optarg, 0, 10000); break;
		case 'T':
			o.connect_timeout_ms = (unsigned)parse_ulong("connect-timeout", optarg, 1, 30000);
			break;
		case 'S': o.seed = parse_ulong("seed", optarg, 0, ULONG_MAX); break;
		case 'P': o.tls_priority = optarg; break;
		case 'D': o.dir = optarg; break;
		case 'N': o.numbers = parse_ulong("numbers", optarg, 1, 10000000); break;
		case 'L': o.stall_ms = (unsigned)parse_ulong("stall-ms", optarg, 1, 60000); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (o.mode == MODE_DUMP) {
		if (!o.dir)
			die("dump: --dir DIR is required");
		if (!have_target) /* the address written into the messages */
			parse_target("127.0.0.1:5060", &o.target);
		return run_dump(&o);
	}
	if (!have_target)
		die("--target 127.0.0.1:PORT is required");
	setvbuf(stdout, NULL, _IOLBF, 0);
	return o.mode == MODE_UDP || o.mode == MODE_BURST ? run_udp(&o) : run_stream(&o);
}
