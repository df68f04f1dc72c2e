/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Helpers shared by the benchmark tools (bench_store, sip_flood): one
 * seeded PRNG so runs repeat, and nearest-rank percentiles.
 */
#ifndef SP_BENCH_UTIL_H
#define SP_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: state advanced by the golden gamma */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* p-th percentile (nearest rank) of a sorted array; 0 when empty */
static inline uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	double r = p / 100.0 * (double)n;
	size_t k = (size_t)r;
	if ((double)k < r)
		k++;
	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

#endif
