/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Replays files through LLVMFuzzerTestOneInput without a fuzzing engine, so
 * the fuzz target builds and runs its corpus as an ordinary test:
 *
 *     fuzz_sip_replay FILE|DIR...
 *
 * A directory means every regular file in it (not recursive, dot files
 * skipped). Each input is passed in a buffer of exactly its size, so a
 * sanitizer sees any read past the end. Options in libFuzzer's style
 * (-runs=...) are ignored. Exits 1 if an argument cannot be read.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (1024 * 1024)


static int run_file(const char *path)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	long size;
	int rc = 1;

	f = fopen(path, "rb");
	if (!f)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if (size > REPLAY_MAX_INPUT)
		size = REPLAY_MAX_INPUT;
	buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno ? errno : EIO));
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

static int run_path(const char *path, unsigned *count)
{
	struct stat st;
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = run_file(path);
		*count += rc == 0;
		return rc;
	}
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char child[4096];
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >= (int)sizeof(child)) {
			rc = 1;
			continue;
		}
		if (stat(child, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(child) != 0)
			rc = 1;
		else
			(*count)++;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (run_path(argv[i], &count) != 0)
			rc = 1;
	}
	printf("%u inputs replayed\n", count);
	return rc;
}
