/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* sentrypeer: a SIP honeypot and distributed VoIP fraud blocklist node. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, "run the node in the foreground (the default with upstream's flags)" },
	{ "lookup", cmd_lookup, "is this IP address or number listed? exit 0 yes, 1 no, 2 error" },
	{ "export", cmd_export, "write the whole list: json, jsonl, csv, txt, nft, ipset, crowdsec" },
	{ "import", cmd_import, "read a jsonl export into the store" },
	{ "stats", cmd_stats, "what the store holds and what the node counted" },
	{ "id", cmd_id, "print this node's key id (made once, kept in the data directory)" },
	{ "version", NULL, "print the version" },
	{ "help", NULL, "this text; 'help COMMAND' for a command, 'help config' for the config file" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: sentrypeer <command> [options]\n\n"
		     "A SIP honeypot that records who tries to commit VoIP fraud, and a\n"
		     "distributed blocklist of their IP addresses and called numbers.\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nsettings for every command:\n");
	sp_settings_print_help(out, SP_SCOPE_ANY);
	fprintf(out, "\n'sentrypeer help run' lists the node's settings. See sentrypeer(1).\n");
}

static int help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return SP_EXIT_OK;
	}
	if (strcmp(argv[1], "config") == 0) {
		sp_settings_print_example(stdout);
		return SP_EXIT_OK;
	}
	if (strcmp(argv[1], "settings") == 0) { /* machine-readable, for doc checks */
		sp_settings_print_names(stdout);
		return SP_EXIT_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) == 0 && commands[i].fn) {
			char *args[] = { argv[1], "--help", NULL };
			return commands[i].fn(2, args);
		}
	}
	fprintf(stderr, "sentrypeer help: no command '%s'\n", argv[1]);
	return SP_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	if (argc < 2 || (argv[1][0] == '-' && strcmp(argv[1], "-h") != 0 &&
			 strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "--version") != 0 &&
			 strcmp(argv[1], "-V") != 0)) {
		/* upstream: `sentrypeer -d -r ...` runs the node */
		argv[0] = "run";
		return cmd_run(argc, argv);
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("sentrypeer %s\n", SP_VERSION);
		return SP_EXIT_OK;
	}
	if (strcmp(cmd, "help") == 0)
		return help(argc - 1, argv + 1);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return SP_EXIT_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].fn && strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sentrypeer: unknown command '%s' (see 'sentrypeer help')\n", cmd);
	return SP_EXIT_ERROR;
}
