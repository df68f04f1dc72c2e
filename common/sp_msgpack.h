/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Guard for msgpack input we did not just write ourselves (store pages that
 * may be corrupt, DHT values from strangers). msgpack-c allocates a
 * container's elements from the count in its header before reading them, so
 * five hostile bytes can ask for gigabytes. sp_msgpack_check() walks the
 * encoding without allocating and accepts it only if it is exactly one
 * object, no deeper than max_depth, whose every count and length fits in
 * the bytes that remain.
 */
#ifndef SP_MSGPACK_H
#define SP_MSGPACK_H

#include <stddef.h>

/* Returns 0 or SP_EPARSE. */
int sp_msgpack_check(const void *buf, size_t len, unsigned max_depth);

#endif
