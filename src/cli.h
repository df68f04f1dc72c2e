/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Subcommands. Each takes argv with argv[0] = the subcommand name and
 * returns the process exit status. Exit status, everywhere: 0 success,
 * 2 error (bad usage, store trouble); lookup uses 1 for "not listed" and
 * import 1 for "some lines skipped".
 */
#ifndef SP_CLI_H
#define SP_CLI_H

#include "settings.h"
#include "store.h"

#define SP_EXIT_OK 0
#define SP_EXIT_NOT_LISTED 1
#define SP_EXIT_PARTIAL 1
#define SP_EXIT_ERROR 2

int cmd_run(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_id(int argc, char **argv);

/* mkdir -p, mode 0700 for what it creates. Returns 0 or -errno. */
int cli_make_dirs(const char *path);
/* Apply debug/verbose to the log level. */
void cli_apply_logging(const struct sp_config *cfg);
/* Open the configured store, printing one clear message on failure.
 * Writers create the data directory (mode 0700) if needed; the node
 * (set_retention) records its retention for the readers. */
int cli_open_store(const struct sp_config *cfg, bool readonly, bool set_retention, sp_store **st);

#endif
