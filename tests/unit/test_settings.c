/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"
#include "sp_time.h"
#include "store.h"

static int cb_count;
static char cb_arg[64];

static int on_opt(int id, const char *arg, void *ud)
{
	cb_count++;
	snprintf(cb_arg, sizeof(cb_arg), "%s", arg ? arg : "");
	return id == 99 ? 2 : 0;
}

static const struct sp_opt opts[] = {
	{ "json", 0, NULL, 1, "json" },
	{ "format", 0, "F", 2, "format" },
	{ "output", 'o', "FILE", 3, "out" },
	{ "bad", 0, NULL, 99, "fails" },
	{ NULL, 0, NULL, 0, NULL },
};

static int load(struct sp_config *cfg, unsigned scope, char **argv)
{
	int argc = 0, npos;
	char **pos;
	while (argv[argc])
		argc++;
	int rc = sp_settings_load(cfg, argc, argv, scope, opts, on_opt, NULL, &pos, &npos, "test");
	free(pos);
	return rc;
}

static void clear_env(void)
{
	const char *vars[] = { "SENTRYPEER_API", "SENTRYPEER_DATA_DIR", "SENTRYPEER_RETENTION",
			       "SENTRYPEER_CONFIG", "SENTRYPEER_BOOTSTRAP_NODE", "SENTRYPEER_DB_FILE",
			       "SENTRYPEER_DEBUG", "SENTRYPEER_MAP_SIZE" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	clear_env();
	setenv("SENTRYPEER_CONFIG", "", 1); /* never the host's /etc file */
	return 0;
}

static void test_defaults(void **state)
{
	struct sp_config c;
	char *argv[] = { "run", NULL };
	char path[256];
	setenv("SENTRYPEER_DATA_DIR", "/tmp/x", 1);
	assert_int_equal(load(&c, SP_SCOPE_ANY | SP_SCOPE_RUN, argv), 0);
	assert_true(c.retention_ns == 7 * 86400 * SP_NS_PER_SEC);
	assert_true(c.map_size == UINT64_C(1) << 30);
	assert_true(c.peer_to_peer); /* sharing is on by default */
	assert_false(c.api);
	assert_int_equal(c.sync, SP_SYNC_FULL);
	assert_true(c.sip_port == 5060 && c.sip_tls_port == 5061 && c.api_port == 8082 &&
		    c.dht_port == 4222);
	assert_int_equal(c.sip_addresses.n, 2);
	assert_string_equal(c.sip_addresses.v[1], "::");
	assert_int_equal(c.api_addresses.n, 1);
	assert_string_equal(c.api_addresses.v[0], "127.0.0.1");
	assert_string_equal(sp_config_db_path(&c, path, sizeof(path)), "/tmp/x/sentrypeer.mdb");
	sp_config_free(&c);
}

static void test_env_values_are_parsed(void **state)
{
	struct sp_config c;
	char *argv[] = { "run", NULL };
	/* upstream turned the API on for SENTRYPEER_API=0; we read the value */
	setenv("SENTRYPEER_API", "0", 1);
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 0);
	assert_false(c.api);
	sp_config_free(&c);
	setenv("SENTRYPEER_API", "yes", 1);
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 0);
	assert_true(c.api);
	sp_config_free(&c);
	setenv("SENTRYPEER_API", "maybe", 1);
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 2);
	sp_config_free(&c);
}

static void test_flags(void **state)
{
	struct sp_config c;
	char *argv[] = { "run", "-dv", "-f", "/tmp/db", "--retention=12h", "--no-share", "-a",
			 "-b", "127.0.0.1:4222", "--bootstrap", "127.0.0.2", "--sync", "none", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 0);
	assert_true(c.debug && c.verbose && c.api);
	assert_false(c.peer_to_peer);
	assert_string_equal(c.db_file, "/tmp/db");
	assert_true(c.retention_ns == 12 * 3600 * SP_NS_PER_SEC);
	assert_int_equal(c.bootstrap.n, 2);
	assert_string_equal(c.bootstrap.v[1], "127.0.0.2");
	assert_int_equal(c.sync, SP_SYNC_NONE);
	sp_config_free(&c);

	char *argv3[] = { "run", "--sip-port", "15060", "--sip-address", "127.0.0.1",
			  "--sip-address", "::1", "--api-port=0", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv3), 0);
	assert_true(c.sip_port == 15060 && c.api_port == 0);
	assert_int_equal(c.sip_addresses.n, 2); /* the flags replace the default */
	assert_string_equal(c.sip_addresses.v[0], "127.0.0.1");
	sp_config_free(&c);

	char *argv2[] = { "run", "-p", "--peer-to-peer=off", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv2), 0);
	assert_false(c.peer_to_peer);
	sp_config_free(&c);
}

static void test_bad_flags(void **state)
{
	struct sp_config c;
	char *cases[][4] = {
		{ "run", "--retention", "7x", NULL },   { "run", "--retention", "10s", NULL },
		{ "run", "--nope", NULL, NULL },        { "run", "-Z", NULL, NULL },
		{ "run", "--map-size", "12Q", NULL },   { "run", "--sync", "sometimes", NULL },
		{ "run", "--queue-size", "-5", NULL },  { "run", "--retention", NULL, NULL },
		{ "run", "--no-retention", NULL, NULL }, { "run", "--api=perhaps", NULL, NULL },
		{ "run", "--data-dir=", NULL, NULL },   { "run", "--sip-port", "65536", NULL },
		{ "run", "--api-port", "http", NULL },  { "run", "--sip-address", "eth0", NULL },
		{ "run", "--api-address", "", NULL },   { "run", "--sip-address", "1.2.3.4,x", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, cases[i]), 2);
		sp_config_free(&c);
	}
	/* node settings are refused where they mean nothing */
	char *argv[] = { "lookup", "--api", NULL };
	assert_int_equal(load(&c, SP_SCOPE_ANY, argv), 2);
	sp_config_free(&c);
	char *argv2[] = { "lookup", "-r", NULL };
	assert_int_equal(load(&c, SP_SCOPE_ANY, argv2), 2);
	sp_config_free(&c);
}

static void test_command_options(void **state)
{
	struct sp_config c;
	char *argv[] = { "export", "--format", "nft", "--json", "-o", "/tmp/o", "pos1", NULL };
	int npos;
	char **pos;
	cb_count = 0;
	assert_int_equal(sp_settings_load(&c, 7, argv, SP_SCOPE_ANY, opts, on_opt, NULL, &pos, &npos,
					  "t"), 0);
	assert_int_equal(cb_count, 3);
	assert_string_equal(cb_arg, "/tmp/o");
	assert_int_equal(npos, 1);
	assert_string_equal(pos[0], "pos1");
	free(pos);
	sp_config_free(&c);
	char *argv2[] = { "export", "--bad", NULL };
	assert_int_equal(load(&c, SP_SCOPE_ANY, argv2), 2);
	sp_config_free(&c);
	char *argv3[] = { "export", "--format", NULL };
	assert_int_equal(load(&c, SP_SCOPE_ANY, argv3), 2);
	sp_config_free(&c);
	char *argv4[] = { "export", "--json=1", NULL };
	assert_int_equal(load(&c, SP_SCOPE_ANY, argv4), 2);
	sp_config_free(&c);
}

static char *write_conf(const char *text)
{
	static char path[] = "/tmp/sp-test-conf-XXXXXX";
	strcpy(path, "/tmp/sp-test-conf-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_config_file_and_precedence(void **state)
{
	struct sp_config c;
	char *path = write_conf("# comment\n\n  retention = 2d\nsip_responsive = yes\n"
				"data-dir = \"/tmp/from-file\"\nbootstrap = 127.0.0.1:1, 127.0.0.2:2\n"
				"api = on\n");
	char *argv[] = { "run", "--config", path, "--retention", "3d", NULL };
	setenv("SENTRYPEER_API", "off", 1);
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 0);
	assert_true(c.retention_ns == 3 * 86400 * SP_NS_PER_SEC); /* flag beats file */
	assert_true(c.sip_responsive);
	assert_false(c.api); /* environment beats file */
	assert_string_equal(c.data_dir, "/tmp/from-file");
	assert_int_equal(c.bootstrap.n, 2);
	assert_string_equal(c.bootstrap.v[0], "127.0.0.1:1");
	assert_string_equal(c.config_file, path);
	sp_config_free(&c);
	/* a flag list replaces the file's, it does not add to it */
	char *argv2[] = { "run", "--config", path, "-b", "127.0.0.9", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv2), 0);
	assert_int_equal(c.bootstrap.n, 1);
	sp_config_free(&c);
	unlink(path);

	/* SENTRYPEER_CONFIG names the file too */
	path = write_conf("retention = 5d\n");
	setenv("SENTRYPEER_CONFIG", path, 1);
	char *argv3[] = { "run", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv3), 0);
	assert_true(c.retention_ns == 5 * 86400 * SP_NS_PER_SEC);
	sp_config_free(&c);
	setenv("SENTRYPEER_CONFIG", "", 1);
	unlink(path);
}

static void test_config_file_errors(void **state)
{
	struct sp_config c;
	const char *bad[] = { "nosuch = 1\n", "retention\n", "retention = forever\n",
			      "config = /etc/x\n", "no-api = 1\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = write_conf(bad[i]);
		char *argv[] = { "run", "--config", path, NULL };
		assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 2);
		sp_config_free(&c);
		unlink(path);
	}
	char *argv[] = { "run", "--config", "/nonexistent/sentrypeer.conf", NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 2);
	sp_config_free(&c);
}

static void test_help_and_example_cover_every_setting(void **state)
{
	char *names = NULL, *help = NULL, *example = NULL;
	size_t nl = 0, hl = 0, el = 0;
	FILE *f = open_memstream(&names, &nl);
	sp_settings_print_names(f);
	fclose(f);
	f = open_memstream(&help, &hl);
	sp_settings_print_help(f, SP_SCOPE_ANY | SP_SCOPE_RUN);
	fclose(f);
	f = open_memstream(&example, &el);
	sp_settings_print_example(f);
	fclose(f);

	int n = 0;
	for (char *save = NULL, *line = strtok_r(names, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		char name[64], env[64], flag[80], key[80];
		assert_int_equal(sscanf(line, "%63s %63s", name, env), 2);
		snprintf(flag, sizeof(flag), "--%s", name);
		snprintf(key, sizeof(key), "# %s = ", name);
		assert_non_null(strstr(help, flag));
		assert_non_null(strstr(help, env));
		if (strcmp(name, "config") != 0)
			assert_non_null(strstr(example, key));
	}
	assert_true(n >= 20);
	free(names);
	free(help);
	free(example);
}

/* The example config must load as it is once its settings are uncommented. */
static void test_example_config_loads(void **state)
{
	char *example = NULL, *out = NULL;
	size_t el = 0, ol = 0;
	FILE *f = open_memstream(&example, &el);
	sp_settings_print_example(f);
	fclose(f);
	f = open_memstream(&out, &ol);
	for (char *save = NULL, *line = strtok_r(example, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = ");
		if (line[0] == '#' && eq && eq[3] != '\0')
			fprintf(f, "%s\n", line + 2);
	}
	fclose(f);
	char *path = write_conf(out);
	struct sp_config c;
	char *argv[] = { "run", "--config", path, NULL };
	assert_int_equal(load(&c, SP_SCOPE_RUN | SP_SCOPE_ANY, argv), 0);
	sp_config_free(&c);
	unlink(path);
	free(example);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_env_values_are_parsed, setup),
		cmocka_unit_test_setup(test_flags, setup),
		cmocka_unit_test_setup(test_bad_flags, setup),
		cmocka_unit_test_setup(test_command_options, setup),
		cmocka_unit_test_setup(test_config_file_and_precedence, setup),
		cmocka_unit_test_setup(test_config_file_errors, setup),
		cmocka_unit_test_setup(test_help_and_example_cover_every_setting, setup),
		cmocka_unit_test_setup(test_example_config_loads, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
