/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_msgpack.h"
#include "sp_error.h"

#include <stdint.h>

struct walker {
	const uint8_t *p;
	const uint8_t *end;
};

static int need(struct walker *w, uint64_t n)
{
	return (uint64_t)(w->end - w->p) >= n ? 0 : SP_EPARSE;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads n big-endian length bytes, then checks that many bytes remain. */
static int skip_sized(struct walker *w, int lenbytes, uint64_t extra)
{
	if (need(w, (uint64_t)lenbytes))
		return SP_EPARSE;
	uint64_t len = be(w->p, lenbytes) + extra;
	w->p += lenbytes;
	if (need(w, len))
		return SP_EPARSE;
	w->p += len;
	return 0;
}

static int walk(struct walker *w, unsigned depth);

static int walk_items(struct walker *w, uint64_t items, unsigned depth)
{
	/* each item is at least one byte: a count larger than what remains is a lie */
	if (need(w, items))
		return SP_EPARSE;
	for (uint64_t i = 0; i < items; i++) {
		int rc = walk(w, depth);
		if (rc)
			return rc;
	}
	return 0;
}

static int walk(struct walker *w, unsigned depth)
{
	if (need(w, 1))
		return SP_EPARSE;
	uint8_t t = *w->p++;

	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
		return 0; /* fixint, nil, bool */
	if ((t & 0xe0) == 0xa0)
		return skip_sized(w, 0, t & 0x1f) == 0 ? 0 : SP_EPARSE; /* fixstr */
	if ((t & 0xf0) == 0x90 || (t & 0xf0) == 0x80) { /* fixarray, fixmap */
		if (depth == 0)
			return SP_EPARSE;
		uint64_t n = t & 0x0f;
		return walk_items(w, (t & 0xf0) == 0x80 ? 2 * n : n, depth - 1);
	}
	switch (t) {
	case 0xcc: case 0xd0: return need(w, 1) ? SP_EPARSE : (w->p += 1, 0);
	case 0xcd: case 0xd1: return need(w, 2) ? SP_EPARSE : (w->p += 2, 0);
	case 0xca: case 0xce: case 0xd2: return need(w, 4) ? SP_EPARSE : (w->p += 4, 0);
	case 0xcb: case 0xcf: case 0xd3: return need(w, 8) ? SP_EPARSE : (w->p += 8, 0);
	case 0xd9: case 0xc4: return skip_sized(w, 1, 0); /* str8, bin8 */
	case 0xda: case 0xc5: return skip_sized(w, 2, 0);
	case 0xdb: case 0xc6: return skip_sized(w, 4, 0);
	case 0xd4: return need(w, 2) ? SP_EPARSE : (w->p += 2, 0); /* fixext */
	case 0xd5: return need(w, 3) ? SP_EPARSE : (w->p += 3, 0);
	case 0xd6: return need(w, 5) ? SP_EPARSE : (w->p += 5, 0);
	case 0xd7: return need(w, 9) ? SP_EPARSE : (w->p += 9, 0);
	case 0xd8: return need(w, 17) ? SP_EPARSE : (w->p += 17, 0);
	case 0xc7: return skip_sized(w, 1, 1); /* ext8: len, type, data */
	case 0xc8: return skip_sized(w, 2, 1);
	case 0xc9: return skip_sized(w, 4, 1);
	case 0xdc: case 0xdd: case 0xde: case 0xdf: {
		int lb = (t == 0xdc || t == 0xde) ? 2 : 4;
		if (depth == 0 || need(w, (uint64_t)lb))
			return SP_EPARSE;
		uint64_t n = be(w->p, lb);
		w->p += lb;
		return walk_items(w, t >= 0xde ? 2 * n : n, depth - 1);
	}
	default:
		return SP_EPARSE; /* 0xc1 is never used */
	}
}

int sp_msgpack_check(const void *buf, size_t len, unsigned max_depth)
{
	struct walker w = { buf, (const uint8_t *)buf + len };
	if (walk(&w, max_depth))
		return SP_EPARSE;
	return w.p == w.end ? 0 : SP_EPARSE;
}
