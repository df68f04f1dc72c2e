/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * What storing SIP messages compressed (common/sp_raw.h) gains and costs,
 * one thread: bytes kept, and microseconds per message to compress and to
 * decompress, for the node's codec (LZ4, dictionary "sip-1") and, to
 * compare, LZ4 without a dictionary and, when built with libzstd, zstd
 * level 1 with the same dictionary and without.
 *
 *   build-bench/tools/bench/bench_raw FILE... | DIR
 *
 * Each file is one message (tests/data/sip/ holds hand-written and real
 * attack messages; tools/bench/sip_flood dump --count N --dir DIR writes
 * the flood's). Each figure is the best of 5 rounds over all the messages,
 * repeated to at least 0.2 s a round.
 */
#include "sp_raw.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <lz4.h>
#include <time.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

struct msg {
	char *data;
	size_t len;
};

static struct msg *msgs;
static size_t n_msgs, cap_msgs;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	char *buf = malloc(SP_RAW_MAX);
	size_t len = buf ? fread(buf, 1, SP_RAW_MAX, f) : 0;
	fclose(f);
	if (!buf || len == 0) {
		free(buf);
		return;
	}
	if (n_msgs == cap_msgs) {
		cap_msgs = cap_msgs ? 2 * cap_msgs : 64;
		msgs = realloc(msgs, cap_msgs * sizeof(*msgs));
		if (!msgs)
			exit(1);
	}
	msgs[n_msgs].data = buf;
	msgs[n_msgs++].len = len;
}

static void add_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		char p[4096];
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			add_file(p);
		}
		if (d)
			closedir(d);
	} else {
		add_file(path);
	}
}

enum codec { NODE, LZ4_NODICT, ZSTD_DICT, ZSTD_NODICT, N_CODECS };
static const char *const names[] = {
	"lz4, dictionary sip-1 (the node's)",
	"lz4, no dictionary",
	"zstd -1, dictionary sip-1",
	"zstd -1, no dictionary",
};

#ifdef HAVE_ZSTD
static ZSTD_CCtx *cc;
static ZSTD_DCtx *dc;
static ZSTD_CDict *cdict;
static ZSTD_DDict *ddict;
#endif

/* Compressed size, or m->len when kept as it is; -1: not built. */
static long compress_one(enum codec c, const struct msg *m, void *out, size_t cap)
{
	switch (c) {
	case NODE: {
		size_t n = sp_raw_compress(m->data, m->len, out, cap);
		return n ? (long)n : (long)m->len;
	}
	case LZ4_NODICT: {
		int n = LZ4_compress_default(m->data, out, (int)m->len, (int)cap);
		return n <= 0 || (size_t)n >= m->len ? (long)m->len : n;
	}
#ifdef HAVE_ZSTD
	case ZSTD_DICT:
	case ZSTD_NODICT: {
		size_t n = c == ZSTD_DICT ?
				   ZSTD_compress_usingCDict(cc, out, cap, m->data, m->len, cdict) :
				   ZSTD_compressCCtx(cc, out, cap, m->data, m->len, 1);
		return ZSTD_isError(n) || n >= m->len ? (long)m->len : (long)n;
	}
#endif
	default: return -1;
	}
}

/* 0 when z decompresses to m */
static int check_one(enum codec c, const struct msg *m, const void *z, size_t zlen, char *back)
{
	size_t n = 0;
	switch (c) {
	case NODE:
		if (sp_raw_decompress(z, zlen, back, SP_RAW_MAX, &n))
			return -1;
		break;
	case LZ4_NODICT: {
		int k = LZ4_decompress_safe(z, back, (int)zlen, SP_RAW_MAX);
		if (k < 0)
			return -1;
		n = (size_t)k;
		break;
	}
#ifdef HAVE_ZSTD
	case ZSTD_DICT:
	case ZSTD_NODICT:
		n = c == ZSTD_DICT ? ZSTD_decompress_usingDDict(dc, back, SP_RAW_MAX, z, zlen, ddict) :
				     ZSTD_decompressDCtx(dc, back, SP_RAW_MAX, z, zlen);
		if (ZSTD_isError(n))
			return -1;
		break;
#endif
	default: return -1;
	}
	return n == m->len && memcmp(back, m->data, n) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_raw FILE... | DIR\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		add_path(argv[i]);
	if (!n_msgs) {
		fprintf(stderr, "bench_raw: no messages\n");
		return 1;
	}
	size_t raw = 0;
	for (size_t i = 0; i < n_msgs; i++)
		raw += msgs[i].len;
	size_t cap = sp_raw_bound(SP_RAW_MAX);
	char *z = malloc(cap), *back = malloc(SP_RAW_MAX + 1);
	char **zs = calloc(n_msgs, sizeof(*zs));
	size_t *zl = calloc(n_msgs, sizeof(*zl));
	if (!z || !back || !zs || !zl)
		return 1;
#ifdef HAVE_ZSTD
	cc = ZSTD_createCCtx();
	dc = ZSTD_createDCtx();
	cdict = ZSTD_createCDict(sp_raw_dict_sip1, sp_raw_dict_sip1_len, 1);
	ddict = ZSTD_createDDict(sp_raw_dict_sip1, sp_raw_dict_sip1_len);
	if (!cc || !dc || !cdict || !ddict)
		return 1;
#endif
	printf("messages: %zu, %zu bytes (mean %.0f)\n", n_msgs, raw, (double)raw / (double)n_msgs);
	for (int c = 0; c < N_CODECS; c++) {
		size_t kept = 0;
		if (compress_one(c, &msgs[0], z, cap) < 0) {
			printf("%-36s (not built: no libzstd)\n", names[c]);
			continue;
		}
		for (size_t i = 0; i < n_msgs; i++) {
			zl[i] = (size_t)compress_one(c, &msgs[i], z, cap);
			kept += zl[i];
			if (!(zs[i] = malloc(zl[i])))
				return 1;
			memcpy(zs[i], zl[i] == msgs[i].len ? msgs[i].data : z, zl[i]);
		}
		double best_c = 1e9, best_d = 1e9;
		for (int round = 0; round < 5; round++) {
			size_t reps = 0;
			double t0 = now_s(), t;
			do {
				for (size_t i = 0; i < n_msgs; i++)
					compress_one(c, &msgs[i], z, cap);
				reps++;
			} while ((t = now_s() - t0) < 0.2);
			double per = t / (double)(reps * n_msgs);
			best_c = per < best_c ? per : best_c;
			reps = 0;
			t0 = now_s();
			do {
				for (size_t i = 0; i < n_msgs; i++) {
					if (zl[i] == msgs[i].len)
						continue; /* kept as it is: nothing to do */
					if (check_one(c, &msgs[i], zs[i], zl[i], back)) {
						fprintf(stderr, "bench_raw: message %zu does not come back\n", i);
						return 1;
					}
				}
				reps++;
			} while ((t = now_s() - t0) < 0.2);
			per = t / (double)(reps * n_msgs);
			best_d = per < best_d ? per : best_d;
		}
		printf("%-36s kept %5.1f%% (%.2fx, mean %4.0f bytes)  compress %5.2f us  "
		       "decompress %5.2f us\n",
		       names[c], 100.0 * (double)kept / (double)raw, (double)raw / (double)kept,
		       (double)kept / (double)n_msgs, best_c * 1e6, best_d * 1e6);
		for (size_t i = 0; i < n_msgs; i++)
			free(zs[i]);
	}
	return 0;
}
