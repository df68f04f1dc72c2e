/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_raw.h"
#include "sp_error.h"

#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Codec 1: [1][size: 3 bytes, big-endian][LZ4 block, dictionary sip-1].
 * LZ4 rather than zstd: on a flood INVITE of about 1 KB, zstd -1 with the
 * same dictionary keeps 25% for about 6 us a message, LZ4 29% for about 2 us,
 * and a flood's messages are compressed on the listener threads
 * (tools/bench/bench_raw prints both).
 */
#define HEADER 4

static _Atomic bool enabled = true;
static pthread_once_t dict_once = PTHREAD_ONCE_INIT;
static LZ4_stream_t *dict_stream; /* the dictionary, loaded once */
static pthread_key_t ctx_key;
static bool ctx_key_ok;

struct ctxs {
	LZ4_stream_t stream; /* a copy of dict_stream for each message */
	char *zbuf;          /* sp_raw_pack(): sp_raw_bound(SP_RAW_MAX) */
	char *buf;           /* sp_raw_unpack(): SP_RAW_MAX + 1 */
};

static void ctxs_free(void *p)
{
	struct ctxs *x = p;
	free(x->zbuf);
	free(x->buf);
	free(x);
}

static void dict_init(void)
{
	if ((dict_stream = LZ4_createStream()))
		LZ4_loadDict(dict_stream, sp_raw_dict_sip1, (int)sp_raw_dict_sip1_len);
	ctx_key_ok = pthread_key_create(&ctx_key, ctxs_free) == 0;
}

/* This thread's context and buffers, made on first use. */
static struct ctxs *thread_ctxs(void)
{
	pthread_once(&dict_once, dict_init);
	if (!ctx_key_ok)
		return NULL;
	struct ctxs *x = pthread_getspecific(ctx_key);
	if (!x) {
		if (!(x = calloc(1, sizeof(*x))))
			return NULL;
		if (pthread_setspecific(ctx_key, x)) {
			free(x);
			return NULL;
		}
	}
	return x;
}

size_t sp_raw_bound(size_t len)
{
	return HEADER + (size_t)LZ4_compressBound((int)len);
}

size_t sp_raw_compress(const void *src, size_t len, void *dst, size_t cap)
{
	if (len < SP_RAW_MIN_COMPRESS || len > SP_RAW_MAX || cap <= HEADER)
		return 0;
	struct ctxs *x = thread_ctxs();
	if (!x || !dict_stream)
		return 0;
	/* lz4.h: a stream with a dictionary loaded may be copied into a
	 * working stream for each compression */
	memcpy(&x->stream, dict_stream, sizeof(x->stream));
	uint8_t *out = dst;
	size_t room = cap - HEADER < len - HEADER ? cap - HEADER : len - HEADER;
	int z = LZ4_compress_fast_continue(&x->stream, src, (char *)out + HEADER, (int)len,
					   (int)room, 1);
	if (z <= 0) /* no gain: it did not fit in less than the message */
		return 0;
	out[0] = SP_RAW_CODEC_LZ4_SIP1;
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	return HEADER + (size_t)z;
}

int sp_raw_decompress(const void *src, size_t len, void *dst, size_t cap, size_t *out_len)
{
	const uint8_t *in = src;
	if (len < 1)
		return SP_ECORRUPT;
	if (in[0] != SP_RAW_CODEC_LZ4_SIP1)
		return SP_ESCHEMA;
	if (len <= HEADER)
		return SP_ECORRUPT;
	size_t size = (size_t)in[1] << 16 | (size_t)in[2] << 8 | in[3];
	if (size > cap || size > SP_RAW_MAX || len - HEADER > (size_t)LZ4_compressBound((int)size))
		return SP_ECORRUPT;
	/* the safe decoder never reads or writes outside the buffers given */
	int n = LZ4_decompress_safe_usingDict((const char *)in + HEADER, dst, (int)(len - HEADER),
					      (int)size, sp_raw_dict_sip1, (int)sp_raw_dict_sip1_len);
	if (n < 0 || (size_t)n != size)
		return SP_ECORRUPT;
	*out_len = size;
	return 0;
}

void sp_raw_set_enabled(bool on)
{
	atomic_store_explicit(&enabled, on, memory_order_relaxed);
}

const void *sp_raw_pack(const void *src, size_t len, size_t *out_len)
{
	if (!atomic_load_explicit(&enabled, memory_order_relaxed) || len < SP_RAW_MIN_COMPRESS ||
	    len > SP_RAW_MAX)
		return NULL;
	struct ctxs *x = thread_ctxs();
	size_t cap = sp_raw_bound(SP_RAW_MAX);
	if (!x || (!x->zbuf && !(x->zbuf = malloc(cap))))
		return NULL;
	size_t n = sp_raw_compress(src, len, x->zbuf, cap);
	if (!n)
		return NULL;
	*out_len = n;
	return x->zbuf;
}

int sp_raw_unpack(const void *src, size_t len, const char **out, size_t *out_len)
{
	struct ctxs *x = thread_ctxs();
	if (!x || (!x->buf && !(x->buf = malloc(SP_RAW_MAX + 1))))
		return -ENOMEM;
	int rc = sp_raw_decompress(src, len, x->buf, SP_RAW_MAX, out_len);
	if (rc)
		return rc;
	x->buf[*out_len] = '\0';
	*out = x->buf;
	return 0;
}
