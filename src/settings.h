/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Settings: one table (settings.c) drives the command-line flags, the
 * SENTRYPEER_* environment variables, the config file, the --help text and
 * the example config. Precedence, lowest first: built-in default, config
 * file, environment, command line.
 *
 * Config file: "name = value" lines, '#' comments; names as the long flags.
 * It is --config FILE or $SENTRYPEER_CONFIG (which must exist), else
 * /etc/sentrypeer/sentrypeer.conf if that exists. SENTRYPEER_CONFIG set
 * to the empty string means no config file.
 */
#ifndef SP_SETTINGS_H
#define SP_SETTINGS_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sp_scope {
	SP_SCOPE_ANY = 1, /* every subcommand: where the store is, logging */
	SP_SCOPE_RUN = 2, /* the node only */
};

/* A list setting (repeatable flag, comma-separated elsewhere). */
struct sp_strlist {
	char **v;
	size_t n;
};

struct sp_config {
	char *config_file;
	char *data_dir;
	char *db_file;
	uint64_t map_size;
	bool verbose, debug;
	/* node */
	uint64_t retention_ns, sweep_interval_ns;
	int sync; /* enum sp_sync */
	uint64_t queue_size, queue_memory, batch_size, raw_max;
	bool json_log, syslog, sip_responsive, sip_disable, api, peer_to_peer, store_compress;
	char *json_log_file;
	char *webhook_url;
	struct sp_strlist bootstrap;
	/* the DHT */
	uint64_t dht_network, dht_timeout_ns, dht_ttl_ns, dht_publish_interval_ns, dht_bandwidth;
	uint64_t dht_min_reporters;
	char *dht_proxy;
	struct sp_strlist dht_allow, dht_deny;
	/* where to listen (used by the listeners as they land) */
	struct sp_strlist sip_addresses, api_addresses;
	uint64_t sip_port, sip_tls_port, api_port, dht_port;
	/* the SIP honeypot */
	bool sip_udp, sip_tcp, sip_tls;
	char *tls_cert, *tls_key, *sip_redirect, *run_user;
	uint64_t sip_reply_rate, sip_max_conns, sip_max_conns_per_source;
	uint64_t sip_idle_timeout_ns, sip_max_header, sip_max_body;
	/* the HTTP API */
	char *api_token, *api_token_file;
	uint64_t api_threads, api_max_conns, api_max_conns_per_source, api_idle_timeout_ns;
	uint64_t api_max_header, api_max_exports, api_dht_timeout_ns, api_dht_lookups;
};

/* A subcommand's own options (not settings: they belong to one call). */
struct sp_opt {
	const char *name;
	char short_flag;
	const char *arg; /* NULL: a switch; else the argument's name for help */
	int id;
	const char *help;
};

/* The subcommand's handler for its options; returns 0 or prints its own
 * error and returns non-zero. */
typedef int (*sp_opt_fn)(int id, const char *arg, void *ud);

/* Fill cfg from defaults, config file, environment and argv (argv[0] is
 * the subcommand). Settings outside scope are refused on the command line.
 * Positional arguments are returned in pos (an array into argv, freed by
 * the caller). Prints one clear message and returns 2 on any error, 1 when
 * help was printed, 0 otherwise. */
int sp_settings_load(struct sp_config *cfg, int argc, char **argv, unsigned scope,
		     const struct sp_opt *opts, sp_opt_fn fn, void *ud, char ***pos, int *npos,
		     const char *usage);
void sp_config_free(struct sp_config *cfg);

/* The store path the settings select: db-file, else DATA_DIR/sentrypeer.mdb. */
const char *sp_config_db_path(const struct sp_config *cfg, char *buf, size_t len);

/* Help for the settings of a scope, and the commented example config. */
void sp_settings_print_help(FILE *out, unsigned scope);
void sp_settings_print_example(FILE *out);
/* Names of every setting, one per line (man page and doc checks). */
void sp_settings_print_names(FILE *out);

#endif
