/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer import FILE|-: read records in the jsonl export format and
 * fold them into the store (idempotent: importing twice changes nothing).
 * Bad lines are reported with their number and skipped. Exit 0 when every
 * line was imported, 1 when some were skipped, 2 on error.
 */
#include "cli.h"
#include "render.h"
#include "sp_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_LINE_MAX (1 << 20)
#define IMPORT_BATCH 10000
#define IMPORT_REPORT_MAX 20 /* bad lines printed one by one, then a count */

static const struct sp_opt import_opts[] = { { NULL, 0, NULL, 0, NULL } };

static int no_opt(int id, const char *arg, void *ud) { return 2; }

int cmd_import(int argc, char **argv)
{
	struct sp_config cfg;
	char **pos = NULL, *line = NULL, err[256];
	size_t cap = 0, in_batch = 0;
	unsigned long long lineno = 0, imported = 0, skipped = 0;
	int npos, rc, status = SP_EXIT_ERROR;
	sp_store *st = NULL;
	sp_wtxn *tx = NULL;
	sp_agg *a = NULL;
	FILE *in = NULL;
	ssize_t n;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, import_opts, no_opt, NULL, &pos, &npos,
			      "sentrypeer import <FILE|->");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos != 1) {
		fprintf(stderr, "sentrypeer import: give one file (jsonl, as written by "
				"'sentrypeer export --format jsonl'), or - for standard input\n");
		goto out;
	}
	in = strcmp(pos[0], "-") == 0 ? stdin : fopen(pos[0], "r");
	if (!in) {
		fprintf(stderr, "sentrypeer import: %s: %s\n", pos[0], strerror(errno));
		goto out;
	}
	a = malloc(sizeof(*a));
	if (!a || cli_open_store(&cfg, false, false, &st))
		goto out;

	while ((n = getline(&line, &cap, in)) >= 0) {
		json_error_t jerr;
		lineno++;
		if (n > IMPORT_LINE_MAX) {
			snprintf(err, sizeof(err), "line longer than %d bytes", IMPORT_LINE_MAX);
			goto bad;
		}
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		json_t *j = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
		if (!j) {
			snprintf(err, sizeof(err), "invalid JSON: %s", jerr.text);
			goto bad;
		}
		rc = sp_agg_from_json(j, a, err, sizeof(err));
		json_decref(j);
		if (rc)
			goto bad;
		if (!tx && (rc = sp_wtxn_begin(st, &tx)))
			goto store_error;
		if ((rc = sp_wtxn_merge(tx, a)))
			goto store_error;
		imported++;
		if (++in_batch == IMPORT_BATCH) {
			rc = sp_wtxn_commit(tx);
			tx = NULL;
			in_batch = 0;
			if (rc)
				goto store_error;
		}
		continue;
bad:
		if (++skipped <= IMPORT_REPORT_MAX)
			fprintf(stderr, "sentrypeer import: %s:%llu: %s (line skipped)\n", pos[0], lineno,
				err);
	}
	if (ferror(in)) {
		fprintf(stderr, "sentrypeer import: %s: read error\n", pos[0]);
		goto out;
	}
	if (tx) {
		rc = sp_wtxn_commit(tx);
		tx = NULL;
		if (rc)
			goto store_error;
	}
	if (skipped > IMPORT_REPORT_MAX)
		fprintf(stderr, "sentrypeer import: ... %llu more bad lines\n",
			skipped - IMPORT_REPORT_MAX);
	fprintf(stderr, "sentrypeer import: imported %llu records, skipped %llu bad lines\n",
		imported, skipped);
	status = skipped ? SP_EXIT_PARTIAL : SP_EXIT_OK;
	goto out;

store_error:
	fprintf(stderr, "sentrypeer import: store error at %s:%llu: %s (nothing after the last "
			"commit was imported)\n", pos[0], lineno, sp_strerror_write(rc));
out:
	if (tx)
		sp_wtxn_abort(tx);
	if (in && in != stdin)
		fclose(in);
	free(line);
	free(a);
	sp_store_close(st);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
