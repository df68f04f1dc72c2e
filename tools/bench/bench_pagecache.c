/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * What a commit's page-cache writes cost on this machine: 40 "commits" of
 * CHUNK MiB each (pwrite at the end of a new file, fdatasync, a 4 KiB
 * rewrite of the file's first page, fdatasync: the shape of an LMDB
 * commit with --sync full), into a new file twice. The first pass takes
 * page-cache pages the system has not used lately; the second, started
 * right after the first file is removed, mostly reuses the pages just
 * freed. On a VM whose host backs guest memory on first touch the first
 * pass is much slower.
 *
 *   build-bench/tools/bench/bench_pagecache [DIR [CHUNK_MIB]]   (default . and 4)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int pass(const char *path, const char *buf, size_t chunk, const char *name)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		return -1;
	}
	double tw = 0, ts = 0;
	const int n = 40;
	for (int i = 0; i < n; i++) {
		double a = now_s();
		if (pwrite(fd, buf, chunk, (off_t)(chunk * (size_t)i)) != (ssize_t)chunk) {
			perror("pwrite");
			close(fd);
			return -1;
		}
		double b = now_s();
		if (fdatasync(fd) != 0 || pwrite(fd, buf, 4096, 0) != 4096 || fdatasync(fd) != 0) {
			perror("sync");
			close(fd);
			return -1;
		}
		tw += b - a;
		ts += now_s() - b;
	}
	close(fd);
	unlink(path);
	printf("%-36s pwrite %6.2f ms (%.2f us per 4 KiB page), two syncs %5.2f ms\n", name,
	       tw / n * 1e3, tw / n * 1e6 / (double)(chunk / 4096), ts / n * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	long mib = argc > 2 ? strtol(argv[2], NULL, 10) : 4;
	if (mib <= 0 || mib > 1024) {
		fprintf(stderr, "bench_pagecache: CHUNK_MIB must be 1..1024\n");
		return 2;
	}
	size_t chunk = (size_t)mib << 20;
	char *buf = malloc(chunk);
	char path[4096];
	if (!buf)
		return 1;
	memset(buf, 'x', chunk);
	snprintf(path, sizeof(path), "%s/bench_pagecache.%ld", dir, (long)getpid());
	printf("40 commits of %ld MiB each in %s\n", mib, dir);
	if (pass(path, buf, chunk, "new pages (first pass)") ||
	    pass(path, buf, chunk, "pages just freed (second pass)"))
		return 1;
	free(buf);
	return 0;
}
