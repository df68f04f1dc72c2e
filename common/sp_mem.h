/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#ifndef SP_MEM_H
#define SP_MEM_H

#include <stddef.h>

/* The contents of [p, p + len) are no longer needed: the whole pages in
 * it go back to the system (MADV_DONTNEED) and read as zeros when next
 * touched. For a scratch buffer that stays allocated (malloc'd or mapped)
 * between bursts of use; bytes outside the range are never touched. */
void sp_mem_discard(void *p, size_t len);

#endif
