/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* What the fuzz targets share: the entry point libFuzzer (or standalone.c,
 * which replays a corpus without it) calls, and a check that aborts with
 * its place and condition, so a failed property is a crash the fuzzer
 * keeps. */
#ifndef SP_FUZZ_H
#define SP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                       \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                       \
		}                                                                      \
	} while (0)

#endif
