/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* sentrypeer export: the whole cache, streamed, for firewalls and servers. */
#include "cli.h"
#include "export.h"
#include "sp_error.h"
#include "sp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OPT_FORMAT = 1, OPT_KIND, OPT_SINCE, OPT_SOURCE, OPT_OUTPUT, OPT_PRIVATE, OPT_TABLE,
       OPT_SET };

static const struct sp_opt export_opts[] = {
	{ "format", 0, "FORMAT", OPT_FORMAT, "json, jsonl, csv, txt, nft, ipset or crowdsec [txt]" },
	{ "kind", 0, "KIND", OPT_KIND,
	  "ip, number or all [ip for txt/nft/ipset/crowdsec, else all]" },
	{ "since", 0, "DURATION", OPT_SINCE, "only records last seen within DURATION (e.g. 1h, 7d)" },
	{ "source", 0, "SOURCE", OPT_SOURCE, "local (this node), peers, or all [all]" },
	{ "output", 'o', "FILE", OPT_OUTPUT, "write to FILE atomically instead of stdout" },
	{ "include-private", 0, NULL, OPT_PRIVATE,
	  "keep loopback, private and this host's own addresses (left out by default)" },
	{ "nft-table", 0, "NAME", OPT_TABLE, "nft: inet table name [sentrypeer]" },
	{ "set-name", 0, "NAME", OPT_SET,
	  "nft: sets NAME_v4/NAME_v6; ipset: NAME-v4/NAME-v6 [sentrypeer]" },
	{ NULL, 0, NULL, 0, NULL },
};

struct export_args {
	struct sp_export_options opt;
	bool kind_given;
	const char *output;
};

static const char *const opt_names[] = {
	[OPT_FORMAT] = "format", [OPT_KIND] = "kind", [OPT_SINCE] = "since",
	[OPT_SOURCE] = "source", [OPT_PRIVATE] = "include-private", [OPT_TABLE] = "nft-table",
	[OPT_SET] = "set-name",
};

static int on_opt(int id, const char *arg, void *ud)
{
	struct export_args *a = ud;
	char err[160];
	if (id == OPT_OUTPUT) {
		a->output = arg;
		return 0;
	}
	if (sp_export_option_set(&a->opt, &a->kind_given, opt_names[id], arg, err, sizeof(err))) {
		fprintf(stderr, "sentrypeer export: --%s %s\n", opt_names[id], err);
		return 2;
	}
	return 0;
}

int cmd_export(int argc, char **argv)
{
	struct sp_config cfg;
	struct export_args args = { .opt = { .format = SP_FMT_TXT } };
	struct sp_export_stats stats;
	char **pos = NULL, tmp[PATH_MAX] = "";
	int npos, rc, status = SP_EXIT_ERROR;
	sp_store *st = NULL;
	FILE *out = stdout;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, export_opts, on_opt, &args, &pos,
			      &npos, "sentrypeer export [--format F] [--kind K] [--since D] "
				     "[--source S] [--output FILE]");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos) {
		fprintf(stderr, "sentrypeer export: unexpected argument '%s'\n", pos[0]);
		goto out;
	}
	char err[160];
	if (sp_export_options_finish(&args.opt, args.kind_given, err, sizeof(err))) {
		fprintf(stderr, "sentrypeer export: --%s\n", err);
		goto out;
	}
	args.opt.min_reporters = (unsigned)cfg.dht_min_reporters;
	if (!cfg.peer_to_peer && args.opt.source == SP_SOURCE_PEERS) {
		/* tit for tat: a node that does not share gets no peer data */
		fprintf(stderr, "sentrypeer export: --source peers: %s\n", sp_strerror(SP_ENOSHARE));
		goto out;
	}
	if (!cfg.peer_to_peer && args.opt.source == SP_SOURCE_ALL) {
		fprintf(stderr, "sentrypeer export: sharing is off (--no-share): exporting this "
				"node's own observations only\n");
		args.opt.source = SP_SOURCE_LOCAL;
	}
	if (cli_open_store(&cfg, true, false, &st))
		goto out;

	if (args.output) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", args.output);
		int fd = mkstemp(tmp);
		if (fd < 0) {
			fprintf(stderr, "sentrypeer export: cannot write %s: %s\n", args.output,
				strerror(errno));
			tmp[0] = '\0';
			goto out;
		}
		fchmod(fd, 0644);
		out = fdopen(fd, "w");
		if (!out) {
			close(fd);
			out = stdout;
			goto out;
		}
	}
	static char buf[1 << 16];
	setvbuf(out, buf, _IOFBF, sizeof(buf));
	rc = sp_export(st, &args.opt, out, &stats);
	if (rc == 0 && out != stdout && fsync(fileno(out)) != 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "sentrypeer export: %s\n",
			rc == -EIO ? "write failed (disk full or closed pipe?)" : sp_strerror(rc));
		goto out;
	}
	if (stats.corrupt)
		fprintf(stderr, "sentrypeer export: warning: skipped %llu corrupt records\n",
			(unsigned long long)stats.corrupt);
	if (out != stdout) {
		if (fclose(out) != 0) {
			out = stdout;
			fprintf(stderr, "sentrypeer export: cannot write %s: %s\n", args.output,
				strerror(errno));
			goto out;
		}
		out = stdout;
		if (rename(tmp, args.output) != 0) {
			fprintf(stderr, "sentrypeer export: cannot rename to %s: %s\n", args.output,
				strerror(errno));
			goto out;
		}
		tmp[0] = '\0';
	}
	status = SP_EXIT_OK;
out:
	if (out != stdout)
		fclose(out);
	if (tmp[0])
		unlink(tmp);
	sp_store_close(st);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
