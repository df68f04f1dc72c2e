/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Test helper: a hostile DHT peer. Joins a (loopback, private) network and
 * puts values a node must refuse, or floods it, so the tests can check the
 * node's counters and answers.
 *
 *   dht_inject BOOTSTRAP_PORT NETWORK DIR hostile KEY
 *       under the record key of IP KEY and under this hour's feed key:
 *       unsigned, bad signature, a valid value copied under another key,
 *       expired, oversized, malformed msgpack, another version
 *   dht_inject BOOTSTRAP_PORT NETWORK DIR flood N
 *       N validly signed feed batches from one identity, as fast as it can
 *   dht_inject BOOTSTRAP_PORT NETWORK DIR good KEY
 *       one valid record for IP KEY and a feed batch with it (a control)
 *
 * DIR holds the injector's identity. Exits 0 when every put was handed to
 * the network.
 */
#include "identity.h"
#include "sp_error.h"
#include "sp_time.h"
#include "value.h"

#include <opendht/opendht_c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static dht_runner *runner;
static _Atomic int pending, ok_puts;

static void done_cb(bool ok, void *ud)
{
	if (ok)
		atomic_fetch_add(&ok_puts, 1);
	atomic_fetch_sub(&pending, 1);
}

static _Atomic int stopped;
static void shutdown_cb(void *ud) { atomic_store(&stopped, 1); }

static void put(const char *name, const void *data, size_t len)
{
	dht_infohash h;
	dht_infohash_get_from_string(&h, name);
	dht_value *v = dht_value_new(data, len);
	atomic_fetch_add(&pending, 1);
	dht_runner_put(runner, &h, v, done_cb, NULL, false);
	dht_value_unref(v);
}

static void wait_puts(int seconds)
{
	for (int i = 0; i < seconds * 100 && atomic_load(&pending) > 0; i++)
		usleep(10000);
}

static struct sp_dht_record record(const char *key, uint64_t now)
{
	struct sp_dht_record r = { .kind = SP_KIND_IP, .count = 5, .methods = 1, .transports = 1 };
	snprintf(r.key, sizeof(r.key), "%s", key);
	r.first_s = now - 60;
	r.last_s = now - 30;
	r.expires_s = now + 86400;
	return r;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: dht_inject BOOTSTRAP_PORT NETWORK DIR hostile|flood|good ARG\n");
		return 2;
	}
	sp_identity *id;
	if (sp_identity_open(&id, argv[3], true, NULL)) {
		fprintf(stderr, "dht_inject: no identity in %s\n", argv[3]);
		return 2;
	}
	dht_runner_config cfg;
	dht_runner_config_default(&cfg);
	cfg.dht_config.node_config.network = (uint32_t)strtoul(argv[2], NULL, 10);
	cfg.peer_discovery = false;
	cfg.log = false;
	runner = dht_runner_new();
	if (dht_runner_run_config(runner, 0, &cfg) != 0) {
		fprintf(stderr, "dht_inject: cannot start a runner\n");
		return 2;
	}
	dht_runner_bootstrap(runner, "127.0.0.1", argv[1]);
	sleep(2); /* settle: puts wait for a connected node anyway */

	uint64_t now = sp_now_ns() / SP_NS_PER_SEC, hour = now / SP_DHT_FEED_PERIOD;
	char rname[SP_DHT_NAME_MAX], fname[SP_DHT_NAME_MAX], other[SP_DHT_NAME_MAX];
	sp_dht_feed_name(hour, fname);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	if (strcmp(argv[4], "hostile") == 0 || strcmp(argv[4], "good") == 0) {
		const char *key = argv[5];
		struct sp_dht_record r = record(key, now);
		sp_dht_record_name(SP_KIND_IP, key, rname);
		if (strcmp(argv[4], "good") == 0) {
			sp_dht_encode_record(id, &r, NULL, now, &sb);
			put(rname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			sp_dht_encode_batch(id, hour, &r, 1, now, &sb);
			put(fname, sb.data, sb.size);
		} else {
			/* unsigned: the body alone, no signature */
			static const char unsigned_v[] = "\x92\x01\xc4\x01\x80";
			put(rname, unsigned_v, sizeof(unsigned_v) - 1);
			put(fname, unsigned_v, sizeof(unsigned_v) - 1);
			/* bad signature: a good value with its last byte flipped */
			sp_dht_encode_record(id, &r, NULL, now, &sb);
			sb.data[sb.size - 1] ^= 1;
			put(rname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			sp_dht_encode_batch(id, hour, &r, 1, now, &sb);
			sb.data[sb.size - 1] ^= 1;
			put(fname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			/* a valid value for another key, copied under this one, and
			 * a batch for another hour copied under this hour's key */
			struct sp_dht_record r2 = record("198.51.100.99", now);
			sp_dht_encode_record(id, &r2, NULL, now, &sb);
			put(rname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			sp_dht_encode_batch(id, hour - 5, &r2, 1, now, &sb);
			put(fname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			/* expired */
			struct sp_dht_record old = r;
			old.first_s = now - 900;
			old.last_s = now - 800;
			old.expires_s = now - 10;
			sp_dht_encode_record(id, &old, NULL, now, &sb);
			put(rname, sb.data, sb.size);
			msgpack_sbuffer_clear(&sb);
			/* oversized */
			char *big = calloc(1, SP_DHT_VALUE_MAX + 100);
			put(rname, big, SP_DHT_VALUE_MAX + 100);
			put(fname, big, SP_DHT_VALUE_MAX + 100);
			free(big);
			/* malformed msgpack: an array claiming 4 billion items */
			static const char bomb[] = "\xdd\xff\xff\xff\xff\x01";
			put(rname, bomb, sizeof(bomb) - 1);
			put(fname, bomb, sizeof(bomb) - 1);
			/* another version */
			sp_dht_encode_record(id, &r, NULL, now, &sb);
			sb.data[1] = 9;
			put(rname, sb.data, sb.size);
			put(fname, sb.data, sb.size);
		}
		(void)other;
	} else if (strcmp(argv[4], "flood") == 0) {
		long n = strtol(argv[5], NULL, 10);
		for (long i = 0; i < n; i++) {
			char key[64];
			snprintf(key, sizeof(key), "2001:db8::f:%lx", i + 1);
			struct sp_dht_record r = record(key, now);
			msgpack_sbuffer_clear(&sb);
			sp_dht_encode_batch(id, hour, &r, 1, now, &sb);
			put(fname, sb.data, sb.size);
		}
	} else {
		fprintf(stderr, "dht_inject: unknown mode %s\n", argv[4]);
		return 2;
	}
	wait_puts(20);
	int left = atomic_load(&pending);
	printf("puts ok %d, unfinished %d\n", atomic_load(&ok_puts), left);
	msgpack_sbuffer_destroy(&sb);
	dht_runner_shutdown(runner, shutdown_cb, NULL);
	for (int i = 0; i < 500 && !atomic_load(&stopped); i++)
		usleep(10000);
	dht_runner_delete(runner);
	sp_identity_free(id);
	return 0;
}
