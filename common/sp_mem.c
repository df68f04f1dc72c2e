/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_mem.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void sp_mem_discard(void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (!p)
		return;
	uintptr_t start = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}
