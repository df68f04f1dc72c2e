/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Helper for tools/bench/bench_dht.sh: the timing parts of the DHT
 * benchmark. Not installed, not a test; run on loopback inside the
 * benchmark's private network namespace only.
 *
 *   dht_probe lookup NETWORK BOOTSTRAP TIMEOUT_MS WARMUP LISTED UNLISTED
 *       join the DHT as a node of its own (no publishing, no feed), then
 *       time sp_dht_lookup() for WARMUP unlisted keys (the "cold" ones,
 *       right after joining), and for the keys of the files LISTED and
 *       UNLISTED (one IP a line), alternating between the two lists
 *   dht_probe ctl SOCKET TIMEOUT_MS LISTED UNLISTED
 *       the same through a running node's control socket
 *       ("lookup ip KEY TIMEOUT_MS"): the node's warm DHT connection
 *   dht_probe watch A_PORT TRIALS SEED DIR_A DIR_B...
 *       TRIALS times: one INVITE from 198.51.100.(20+i) to 127.0.0.1:A_PORT,
 *       then poll the stores of DIR_A and every DIR_B (read-only LMDB
 *       snapshots, every 2 ms) until the IP is in all of them or 15 s
 *       passed; a random pause of 0-1 s between trials
 *   dht_probe feed PORT SOURCES FIRST COUNT PER_SECOND
 *       INVITEs from the addresses on lines FIRST..FIRST+COUNT-1 of the
 *       file SOURCES (IPv4 to 127.0.0.1, IPv6 to ::1), evenly spaced at
 *       PER_SECOND, called numbers from a pool of 16
 *
 * Times are printed in milliseconds; summaries use nearest-rank
 * percentiles (bench_util.h).
 */
#include "bench_util.h"
#include "dht.h"
#include "sp_error.h"
#include "sp_key.h"
#include "sp_log.h"
#include "sp_time.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define KEYS_MAX 100000
#define NUMBER_POOL 16

static void die(const char *msg)
{
	fprintf(stderr, "dht_probe: %s\n", msg);
	exit(2);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / SP_NS_PER_SEC), (long)(ns % SP_NS_PER_SEC) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Lines of a file (trimmed), at most KEYS_MAX; with ips, each line must be
 * an IP address and is normalised as the node does (the DHT key is the
 * hash of the normalised text: "2001:db8::0:1" would name another key). */
static char **read_lines(const char *path, size_t *n, bool ips)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "dht_probe: cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char **v = calloc(KEYS_MAX, sizeof(*v));
	char line[256];
	*n = 0;
	while (v && *n < KEYS_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \t\r\n")] = '\0';
		char norm[SP_KEY_MAX];
		if (ips && line[0]) {
			if (sp_ip_normalize(line, norm, NULL) != 0) {
				fprintf(stderr, "dht_probe: %s: not an IP address: %s\n", path, line);
				exit(2);
			}
			snprintf(line, sizeof(line), "%s", norm);
		}
		if (line[0] && !(v[*n] = strdup(line)))
			die("out of memory");
		if (line[0])
			(*n)++;
	}
	fclose(f);
	if (!v)
		die("out of memory");
	return v;
}

/* ---- summaries -------------------------------------------------------- */

struct series {
	const char *name;
	uint64_t *us; /* each lookup, microseconds */
	size_t n;
	size_t found, notfound, timeout, error;
};

static void series_add(struct series *s, uint64_t us, int rc)
{
	s->us[s->n++] = us;
	if (rc == 0)
		s->found++;
	else if (rc == SP_ENOTFOUND)
		s->notfound++;
	else if (rc == SP_ETIMEDOUT)
		s->timeout++;
	else
		s->error++;
}

static void series_print(const char *prefix, struct series *s, uint64_t over_us)
{
	qsort(s->us, s->n, sizeof(*s->us), cmp_u64);
	size_t over = 0;
	for (size_t i = 0; i < s->n; i++)
		over += s->us[i] > over_us;
	printf("%s %s: n %zu found %zu notfound %zu timeout %zu error %zu | ms min %.1f p50 %.1f "
	       "p90 %.1f p99 %.1f max %.1f | over %.0f ms: %zu\n",
	       prefix, s->name, s->n, s->found, s->notfound, s->timeout, s->error,
	       s->n ? (double)s->us[0] / 1e3 : 0.0, (double)pct(s->us, s->n, 50) / 1e3,
	       (double)pct(s->us, s->n, 90) / 1e3, (double)pct(s->us, s->n, 99) / 1e3,
	       s->n ? (double)s->us[s->n - 1] / 1e3 : 0.0, (double)over_us / 1e3, over);
}

static const char *rc_word(int rc)
{
	return rc == 0 ? "found" : rc == SP_ENOTFOUND ? "notfound" : rc == SP_ETIMEDOUT ? "timeout" : "error";
}

/* ---- lookup: a DHT node of our own ------------------------------------- */

static int cmd_lookup(int argc, char **argv)
{
	if (argc != 8)
		die("usage: dht_probe lookup NETWORK BOOTSTRAP TIMEOUT_MS WARMUP LISTED UNLISTED");
	uint32_t network = (uint32_t)strtoul(argv[2], NULL, 10);
	const char *boot[1] = { argv[3] };
	uint64_t timeout_ns = strtoull(argv[4], NULL, 10) * 1000000ull;
	size_t warmup = strtoul(argv[5], NULL, 10), nl, nu;
	char **listed = read_lines(argv[6], &nl, true), **unlisted = read_lines(argv[7], &nu, true);
	if (nu < warmup)
		die("fewer unlisted keys than warm-up lookups");

	struct sp_dht_options o = {
		.network = network, .bootstrap = boot, .n_bootstrap = 1,
		.publish = false, .listen = false, .quick_stop = true,
	};
	sp_dht *d;
	uint64_t t0 = sp_mono_ns();
	int rc = sp_dht_start(&d, &o);
	if (rc) {
		fprintf(stderr, "dht_probe: sp_dht_start: %s\n", sp_strerror(rc));
		return 2;
	}
	if (!sp_dht_wait_connected(d, 30 * SP_NS_PER_SEC)) {
		fprintf(stderr, "dht_probe: not connected within 30 s\n");
		sp_dht_stop(d);
		return 2;
	}
	printf("probe: connected after %.1f ms\n", (double)(sp_mono_ns() - t0) / 1e6);

	size_t cap = nl + nu + 1;
	struct series cold = { "cold (first lookups after joining, unlisted)", calloc(cap, 8), 0, 0, 0, 0, 0 };
	struct series sl = { "listed", calloc(cap, 8), 0, 0, 0, 0, 0 };
	struct series su = { "unlisted", calloc(cap, 8), 0, 0, 0, 0, 0 };
	if (!cold.us || !sl.us || !su.us)
		die("out of memory");
	sp_agg *a = malloc(sizeof(*a));
	if (!a)
		die("out of memory");
	for (size_t i = 0; i < warmup; i++) {
		uint64_t s = sp_mono_ns();
		rc = sp_dht_lookup(d, SP_KIND_IP, unlisted[i], timeout_ns, a);
		uint64_t us = (sp_mono_ns() - s) / 1000;
		series_add(&cold, us, rc);
		printf("probe cold %s %.1f %s\n", unlisted[i], (double)us / 1e3, rc_word(rc));
	}
	size_t il = 0, iu = warmup;
	while (il < nl || iu < nu) {
		for (int pass = 0; pass < 2; pass++) {
			bool l = pass == 0;
			if ((l && il >= nl) || (!l && iu >= nu))
				continue;
			const char *key = l ? listed[il++] : unlisted[iu++];
			uint64_t s = sp_mono_ns();
			rc = sp_dht_lookup(d, SP_KIND_IP, key, timeout_ns, a);
			uint64_t us = (sp_mono_ns() - s) / 1000;
			series_add(l ? &sl : &su, us, rc);
			printf("probe %s %s %.1f %s\n", l ? "listed" : "unlisted", key, (double)us / 1e3,
			       rc_word(rc));
		}
	}
	struct sp_dht_stats st;
	sp_dht_get_stats(d, &st);
	series_print("probe", &cold, 1500000);
	series_print("probe", &sl, 1500000);
	series_print("probe", &su, 1500000);
	printf("probe stats: gets %llu gets_ok %llu values_received %llu accepted %llu rejected",
	       (unsigned long long)st.gets, (unsigned long long)st.gets_ok,
	       (unsigned long long)st.values_received, (unsigned long long)st.values_accepted);
	for (int i = 0; i < SP_REJ_N; i++)
		printf(" %s %llu", sp_dht_reject_name(i), (unsigned long long)st.rejected[i]);
	printf("\n");
	fflush(stdout);
	sp_dht_stop(d);
	free(a);
	return 0;
}

/* ---- ctl: through a running node --------------------------------------- */

static int ask(const char *path, const char *line, char *ans, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		int e = -errno;
		close(fd);
		return e;
	}
	size_t n = 0;
	ssize_t r;
	while (n + 1 < len && (r = read(fd, ans + n, len - 1 - n)) > 0)
		n += (size_t)r;
	ans[n] = '\0';
	close(fd);
	return 0;
}

static int cmd_ctl(int argc, char **argv)
{
	if (argc != 6)
		die("usage: dht_probe ctl SOCKET TIMEOUT_MS LISTED UNLISTED");
	const char *path = argv[2];
	unsigned long ms = strtoul(argv[3], NULL, 10);
	size_t nl, nu;
	char **listed = read_lines(argv[4], &nl, true), **unlisted = read_lines(argv[5], &nu, true);
	struct series sl = { "listed", calloc(nl + 1, 8), 0, 0, 0, 0, 0 };
	struct series su = { "unlisted", calloc(nu + 1, 8), 0, 0, 0, 0, 0 };
	static char ans[1 << 20];
	if (!sl.us || !su.us)
		die("out of memory");
	size_t il = 0, iu = 0;
	while (il < nl || iu < nu) {
		for (int pass = 0; pass < 2; pass++) {
			bool l = pass == 0;
			if ((l && il >= nl) || (!l && iu >= nu))
				continue;
			const char *key = l ? listed[il++] : unlisted[iu++];
			char line[256];
			snprintf(line, sizeof(line), "lookup ip %s %lu\n", key, ms);
			uint64_t s = sp_mono_ns();
			int rc = ask(path, line, ans, sizeof(ans));
			uint64_t us = (sp_mono_ns() - s) / 1000;
			if (rc == 0)
				rc = strncmp(ans, "found", 5) == 0      ? 0
				     : strncmp(ans, "notfound", 8) == 0 ? SP_ENOTFOUND
				     : strncmp(ans, "timeout", 7) == 0  ? SP_ETIMEDOUT
									: SP_EPARSE;
			if (rc != 0 && rc != SP_ENOTFOUND && rc != SP_ETIMEDOUT)
				fprintf(stderr, "dht_probe: ctl %s: %.80s\n", key, ans);
			series_add(l ? &sl : &su, us, rc);
			printf("ctl %s %s %.1f %s\n", l ? "listed" : "unlisted", key, (double)us / 1e3,
			       rc_word(rc));
		}
	}
	series_print("ctl", &sl, 1500000);
	series_print("ctl", &su, 1500000);
	return 0;
}

/* ---- sending INVITEs --------------------------------------------------- */

/* One INVITE from src to the honeypot on loopback (127.0.0.1 or ::1). */
static int invite(const char *src, int port, const char *number, unsigned long seq)
{
	struct sockaddr_storage from = { 0 }, to = { 0 };
	socklen_t len;
	int fam;
	struct sockaddr_in *f4 = (struct sockaddr_in *)&from, *t4 = (struct sockaddr_in *)&to;
	struct sockaddr_in6 *f6 = (struct sockaddr_in6 *)&from, *t6 = (struct sockaddr_in6 *)&to;
	if (inet_pton(AF_INET, src, &f4->sin_addr) == 1) {
		fam = AF_INET;
		f4->sin_family = t4->sin_family = AF_INET;
		t4->sin_port = htons((uint16_t)port);
		t4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*f4);
	} else if (inet_pton(AF_INET6, src, &f6->sin6_addr) == 1) {
		fam = AF_INET6;
		f6->sin6_family = t6->sin6_family = AF_INET6;
		t6->sin6_port = htons((uint16_t)port);
		t6->sin6_addr = in6addr_loopback;
		len = sizeof(*f6);
	} else {
		return -EINVAL;
	}
	int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* IPv6 sources are "local" by a route only: bind them freely */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&from, len) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	char host[64], msg[1024];
	snprintf(host, sizeof(host), fam == AF_INET6 ? "[%s]" : "%s", src);
	int n = snprintf(msg, sizeof(msg),
			 "INVITE sip:%s@127.0.0.1 SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-bench-%lu\r\n"
			 "From: <sip:100@%s>;tag=%lu\r\n"
			 "To: <sip:%s@127.0.0.1>\r\n"
			 "Call-ID: bench-dht-%lu@%s\r\n"
			 "CSeq: 1 INVITE\r\n"
			 "User-Agent: friendly-scanner\r\n"
			 "Content-Length: 0\r\n\r\n",
			 number, host, seq, host, seq, number, seq, host);
	ssize_t r = sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&to, len);
	int e = r == n ? 0 : -errno;
	close(fd);
	return e;
}

static int cmd_feed(int argc, char **argv)
{
	if (argc != 7)
		die("usage: dht_probe feed PORT SOURCES FIRST COUNT PER_SECOND");
	int port = atoi(argv[2]);
	size_t n, first = strtoul(argv[4], NULL, 10), count = strtoul(argv[5], NULL, 10);
	double rate = strtod(argv[6], NULL);
	char **src = read_lines(argv[3], &n, true);
	if (first + count > n || rate <= 0)
		die("not enough source addresses, or no rate");
	uint64_t gap = (uint64_t)(1e9 / rate), start = sp_mono_ns();
	size_t failed = 0;
	for (size_t i = 0; i < count; i++) {
		uint64_t due = start + i * gap, now = sp_mono_ns();
		if (due > now)
			sleep_ns(due - now);
		char number[32];
		snprintf(number, sizeof(number), "+4420790%05zu", (first + i) % NUMBER_POOL);
		if (invite(src[first + i], port, number, first + i) != 0)
			failed++;
	}
	printf("feed: sent %zu INVITEs (%zu failed) in %.1f ms\n", count - failed, failed,
	       (double)(sp_mono_ns() - start) / 1e6);
	return failed ? 1 : 0;
}

/* ---- watch: event on A to the record in the other stores ----------------- */

static int cmd_watch(int argc, char **argv)
{
	if (argc < 7)
		die("usage: dht_probe watch A_PORT TRIALS SEED DIR_A DIR_B...");
	int port = atoi(argv[2]);
	size_t trials = strtoul(argv[3], NULL, 10), nst = (size_t)argc - 5;
	uint64_t seed = strtoull(argv[4], NULL, 10);
	if (trials > 200)
		die("at most 200 trials (198.51.100.20-219)");
	sp_store **st = calloc(nst, sizeof(*st));
	sp_agg *a = malloc(sizeof(*a));
	uint64_t *pairs = calloc(trials * nst + 1, 8), *own = calloc(trials + 1, 8),
		 *firsts = calloc(trials + 1, 8), *alls = calloc(trials + 1, 8),
		 *at = calloc(nst, 8);
	if (!st || !a || !pairs || !own || !firsts || !alls || !at)
		die("out of memory");
	for (size_t s = 0; s < nst; s++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[5 + s], SP_STORE_FILE);
		struct sp_store_options so = { .path = path, .readonly = true };
		int rc = sp_store_open(&st[s], &so);
		if (rc) {
			fprintf(stderr, "dht_probe: cannot open %s: %s\n", path, sp_strerror(rc));
			return 2;
		}
	}
	size_t np = 0, nown = 0, nall = 0, nfirst = 0, missing = 0;
	for (size_t t = 0; t < trials; t++) {
		char ip[32], number[32];
		snprintf(ip, sizeof(ip), "198.51.100.%zu", 20 + t);
		snprintf(number, sizeof(number), "+4420555%04zu", t);
		for (size_t s = 0; s < nst; s++) {
			at[s] = 0;
			if (sp_store_get(st[s], SP_KIND_IP, ip, a) == 0)
				die("a trial IP is already in a store: use a fresh network");
		}
		uint64_t t0 = sp_mono_ns();
		if (invite(ip, port, number, t) != 0)
			die("cannot send the INVITE");
		size_t left = nst;
		while (left && sp_mono_ns() - t0 < 15 * SP_NS_PER_SEC) {
			for (size_t s = 0; s < nst; s++) {
				if (at[s])
					continue;
				int rc = sp_store_get(st[s], SP_KIND_IP, ip, a);
				if (rc == 0) {
					at[s] = sp_mono_ns() - t0;
					left--;
				} else if (rc != SP_ENOTFOUND) {
					fprintf(stderr, "dht_probe: store %zu: %s\n", s, sp_strerror(rc));
				}
			}
			sleep_ns(2000000);
		}
		uint64_t first = 0, last = 0;
		size_t miss = 0;
		for (size_t s = 1; s < nst; s++) {
			if (!at[s]) {
				miss++;
				continue;
			}
			pairs[np++] = at[s] / 1000;
			if (!first || at[s] < first)
				first = at[s];
			if (at[s] > last)
				last = at[s];
		}
		missing += miss;
		if (at[0])
			own[nown++] = at[0] / 1000;
		if (first)
			firsts[nfirst++] = first / 1000;
		if (!miss)
			alls[nall++] = last / 1000;
		printf("watch trial %zu %s: own store %.0f ms, first other %.0f ms, last other %.0f ms, "
		       "missing %zu of %zu\n",
		       t, ip, (double)at[0] / 1e6, (double)first / 1e6, (double)last / 1e6, miss,
		       nst - 1);
		fflush(stdout);
		sleep_ns(rng_below(&seed, 1000) * 1000000ull);
	}
	qsort(pairs, np, 8, cmp_u64);
	qsort(own, nown, 8, cmp_u64);
	qsort(firsts, nfirst, 8, cmp_u64);
	qsort(alls, nall, 8, cmp_u64);
	printf("watch event->B store (every trial x every other node): n %zu missing %zu (after 15 s) | "
	       "ms p50 %.0f p90 %.0f p99 %.0f max %.0f\n",
	       np, missing, (double)pct(pairs, np, 50) / 1e3, (double)pct(pairs, np, 90) / 1e3,
	       (double)pct(pairs, np, 99) / 1e3, np ? (double)pairs[np - 1] / 1e3 : 0.0);
	printf("watch event->first other store: n %zu | ms p50 %.0f p99 %.0f\n", nfirst,
	       (double)pct(firsts, nfirst, 50) / 1e3, (double)pct(firsts, nfirst, 99) / 1e3);
	printf("watch event->all other stores: n %zu of %zu trials | ms p50 %.0f p99 %.0f\n", nall,
	       trials, (double)pct(alls, nall, 50) / 1e3, (double)pct(alls, nall, 99) / 1e3);
	printf("watch event->A's own store (its fold): n %zu | ms p50 %.0f p99 %.0f\n", nown,
	       (double)pct(own, nown, 50) / 1e3, (double)pct(own, nown, 99) / 1e3);
	for (size_t s = 0; s < nst; s++)
		sp_store_close(st[s]);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	sp_log_set_level(SP_LOG_WARN);
	if (argc >= 2 && strcmp(argv[1], "lookup") == 0)
		return cmd_lookup(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return cmd_ctl(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "watch") == 0)
		return cmd_watch(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "feed") == 0)
		return cmd_feed(argc, argv);
	fprintf(stderr, "usage: dht_probe lookup|ctl|watch|feed ... (see the top of dht_probe.c)\n");
	return 2;
}
