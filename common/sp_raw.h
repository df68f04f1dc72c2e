/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Stored SIP messages, compressed: LZ4 (liblz4) against a built-in
 * dictionary of common SIP and SDP text (sp_raw_dict.c). A flood INVITE of
 * about 1 KB keeps under a third of its size, so the store, the writer's
 * queue and its commits move far fewer bytes (tools/bench/bench_raw gives
 * the figures for any set of messages).
 *
 * A compressed message is a codec byte, its size and the compressed
 * bytes. Codec 1 is an LZ4 block with dictionary "sip-1"; a dictionary,
 * once released, never changes: a new one takes a new codec number, and
 * the old ones stay readable.
 *
 * Working state is per thread (made on first use, freed when the thread
 * ends); the dictionary is loaded once per process and shared.
 */
#ifndef SP_RAW_H
#define SP_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_RAW_CODEC_LZ4_SIP1 1
#define SP_RAW_MIN_COMPRESS 64 /* shorter messages are kept as they are */

/* Whether sp_raw_pack() compresses (default yes; the node's store-compress
 * setting). Records already stored compressed read the same either way. */
void sp_raw_set_enabled(bool on);

/* Compress src into dst (cap bytes: sp_raw_bound(len)). Returns the
 * compressed size (codec byte included), or 0 when the message is better
 * kept as it is (short, no gain, or no memory for a context). */
size_t sp_raw_compress(const void *src, size_t len, void *dst, size_t cap);
size_t sp_raw_bound(size_t len);

/* Decompress what sp_raw_compress() made into dst (cap bytes). Returns 0
 * and the size in *out_len; SP_ESCHEMA for a codec this binary does not
 * know; SP_ECORRUPT when the data does not decompress or is larger than
 * cap; -ENOMEM. */
int sp_raw_decompress(const void *src, size_t len, void *dst, size_t cap, size_t *out_len);

/* The same with this thread's buffers (up to SP_RAW_MAX bytes of message):
 * what they return is valid until the thread's next call of the same
 * function. sp_raw_pack() returns NULL when the message is better kept as
 * it is. */
#define SP_RAW_MAX 65536
const void *sp_raw_pack(const void *src, size_t len, size_t *out_len);
int sp_raw_unpack(const void *src, size_t len, const char **out, size_t *out_len);

/* The built-in dictionary (for the benchmark and the tests). */
extern const char sp_raw_dict_sip1[];
extern const size_t sp_raw_dict_sip1_len;

#endif
