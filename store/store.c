/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "store_internal.h"
#include "sp_error.h"
#include "sp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define STORE_MAGIC "sentrypeer-store"

MDB_dbi store__agg_dbi(const sp_store *st, enum sp_kind kind)
{
	return kind == SP_KIND_IP ? st->ip : st->number;
}

const char *sp_store_path(const sp_store *st) { return st->path; }

void sp_store_node_id(const sp_store *st, uint8_t id[16])
{
	memcpy(id, st->node_id, 16);
}
uint64_t sp_store_retention(const sp_store *st) { return st->retention_ns; }

uint64_t store__get_be64(const void *p)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

void store__put_be64(void *p, uint64_t v)
{
	uint8_t *b = p;
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

int store__meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, void *buf, size_t len)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SP_ENOTFOUND;
	if (rc)
		return rc;
	if (v.mv_size != len)
		return SP_ECORRUPT;
	memcpy(buf, v.mv_data, len);
	return 0;
}

int store__meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
	uint8_t b[8];
	int rc = store__meta_get(txn, dbi, name, b, sizeof(b));
	if (rc == 0)
		*out = store__get_be64(b);
	return rc;
}

int store__meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value)
{
	uint8_t b[8];
	store__put_be64(b, value);
	MDB_val k = { strlen(name), (void *)name }, v = { 8, b };
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* ---- the change feed ---------------------------------------------- */
/*
 * Every time an aggregate is written (folded from events, merged from a
 * peer or an import) it gets the next sequence number: feed_ip and
 * feed_number map the number (8 bytes big-endian) to the key, feed_pos maps
 * kind byte + key to its current number. A reader that remembers the last
 * number it saw asks only for what changed since. Numbers only grow
 * (meta.feed_seq), so MDB_APPEND keeps the feed tables sequential.
 */
#define FEED_SEQ_KEY "feed_seq"

static MDB_dbi feed_dbi(const sp_store *st, uint8_t kind)
{
	return kind == SP_KIND_IP ? st->feed_ip : st->feed_number;
}

static size_t feed_pos_key(uint8_t kind, const char *key, uint8_t out[1 + SP_KEY_MAX])
{
	size_t n = strnlen(key, SP_KEY_MAX - 1);
	out[0] = kind;
	memcpy(out + 1, key, n);
	return n + 1;
}

/* Give kind/key the number seq; its old entry goes. On cursors (a
 * transaction's, see feed_begin): a new key costs one descent of feed_pos
 * (MDB_NOOVERWRITE finds or inserts), a known one is updated in place, and
 * the append stays at the end of the feed. */
static int feed_put(MDB_txn *txn, sp_store *st, MDB_cursor *pos_cur, MDB_cursor *app_cur,
		    uint8_t kind, const char *key, uint64_t seq)
{
	uint8_t pk[1 + SP_KEY_MAX], sb[8], old[8];
	size_t kl = feed_pos_key(kind, key, pk);
	MDB_val k = { kl, pk }, sv = { 8, sb }, kv = { kl - 1, pk + 1 };
	store__put_be64(sb, seq);
	int rc = mdb_cursor_put(pos_cur, &k, &sv, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		/* sv now points at the number it had: that entry goes */
		bool had = sv.mv_size == 8;
		if (had)
			memcpy(old, sv.mv_data, 8);
		store__put_be64(sb, seq);
		MDB_val nv = { 8, sb };
		if ((rc = mdb_cursor_put(pos_cur, &k, &nv, MDB_CURRENT)))
			return rc;
		if (had) {
			MDB_val ok = { 8, old };
			rc = mdb_del(txn, feed_dbi(st, kind), &ok, NULL);
			if (rc && rc != MDB_NOTFOUND)
				return rc;
		}
		sv.mv_size = 8;
		sv.mv_data = sb;
	} else if (rc) {
		return rc;
	}
	return mdb_cursor_put(app_cur, &sv, &kv, MDB_APPEND);
}

static int feed_drop(MDB_txn *txn, sp_store *st, uint8_t kind, const char *key)
{
	uint8_t pk[1 + SP_KEY_MAX], old[8];
	MDB_val k = { feed_pos_key(kind, key, pk), pk }, v;
	int rc = mdb_get(txn, st->feed_pos, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (v.mv_size == 8) {
		memcpy(old, v.mv_data, 8);
		MDB_val ok = { 8, old };
		rc = mdb_del(txn, feed_dbi(st, kind), &ok, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	rc = mdb_del(txn, st->feed_pos, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* This transaction's feed state: the last number (from meta at its first
 * touch) and its cursors (a write transaction closes them when it ends). */
static int feed_begin(sp_wtxn *tx)
{
	sp_store *st = tx->st;
	size_t id = mdb_txn_id(tx->txn);
	int rc;
	if (tx->feed_txnid == id)
		return 0;
	rc = store__meta_get_u64(tx->txn, st->meta, FEED_SEQ_KEY, &tx->feed_seq);
	if (rc == SP_ENOTFOUND)
		tx->feed_seq = 0;
	else if (rc)
		return rc;
	if ((rc = mdb_cursor_open(tx->txn, st->feed_pos, &tx->feed_pos_cur)) ||
	    (rc = mdb_cursor_open(tx->txn, st->feed_ip, &tx->feed_app_cur[0])) ||
	    (rc = mdb_cursor_open(tx->txn, st->feed_number, &tx->feed_app_cur[1])))
		return rc;
	tx->feed_dirty = false;
	tx->feed_txnid = id;
	return 0;
}

int store__feed_touch(sp_wtxn *tx, uint8_t kind, const char *key)
{
	sp_store *st = tx->st;
	int rc;
	if (!st->has_feed)
		return 0;
	if ((rc = feed_begin(tx)))
		return rc;
	rc = feed_put(tx->txn, st, tx->feed_pos_cur, tx->feed_app_cur[kind == SP_KIND_IP ? 0 : 1],
		      kind, key, tx->feed_seq + 1);
	if (rc == 0) {
		tx->feed_seq++;
		tx->feed_dirty = true;
	}
	return rc;
}

/* Before the transaction commits: the last number given, for the next. */
int store__feed_flush(sp_wtxn *tx, MDB_txn *txn)
{
	if (!tx->feed_dirty || tx->feed_txnid != mdb_txn_id(txn))
		return 0;
	tx->feed_dirty = false;
	return store__meta_put_u64(txn, tx->st->meta, FEED_SEQ_KEY, tx->feed_seq);
}

/* Number every aggregate of a store from before the feed, in key order. */
static int feed_backfill(sp_store *st, MDB_txn *txn)
{
	uint64_t seq = 0;
	MDB_cursor *pos_cur, *app_cur;
	int rc = mdb_cursor_open(txn, st->feed_pos, &pos_cur);
	if (rc)
		return rc;
	for (uint8_t kind = SP_KIND_IP; kind <= SP_KIND_NUMBER && rc == 0; kind++) {
		MDB_cursor *cur;
		MDB_val k, v;
		char key[SP_KEY_MAX];
		if ((rc = mdb_cursor_open(txn, feed_dbi(st, kind), &app_cur)))
			break;
		if ((rc = mdb_cursor_open(txn, store__agg_dbi(st, kind), &cur))) {
			mdb_cursor_close(app_cur);
			break;
		}
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (k.mv_size == 0 || k.mv_size >= SP_KEY_MAX)
				continue;
			memcpy(key, k.mv_data, k.mv_size);
			key[k.mv_size] = '\0';
			if ((rc = feed_put(txn, st, pos_cur, app_cur, kind, key, ++seq)))
				break;
		}
		mdb_cursor_close(cur);
		mdb_cursor_close(app_cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	mdb_cursor_close(pos_cur);
	return rc ? rc : store__meta_put_u64(txn, st->meta, FEED_SEQ_KEY, seq);
}

static int feed_open(sp_store *st, MDB_txn *txn)
{
	unsigned flags = st->readonly ? 0 : MDB_CREATE;
	uint64_t seq;
	int rc;
	if ((rc = mdb_dbi_open(txn, "feed_ip", flags, &st->feed_ip)) ||
	    (rc = mdb_dbi_open(txn, "feed_number", flags, &st->feed_number)) ||
	    (rc = mdb_dbi_open(txn, "feed_pos", flags, &st->feed_pos))) {
		/* read-only, a store no writer of this version opened yet: no feed */
		return rc == MDB_NOTFOUND && st->readonly ? 0 : rc;
	}
	st->has_feed = true;
	rc = store__meta_get_u64(txn, st->meta, FEED_SEQ_KEY, &seq);
	if (rc == SP_ENOTFOUND && !st->readonly)
		return feed_backfill(st, txn);
	if (rc == SP_ENOTFOUND)
		st->has_feed = false;
	return rc == SP_ENOTFOUND ? 0 : rc;
}

/* Writers create and stamp a new store; everyone checks an existing one. */
static int store_check_or_init(sp_store *st, MDB_txn *txn)
{
	unsigned flags = st->readonly ? 0 : MDB_CREATE;
	MDB_dbi main_dbi;
	MDB_stat ms;
	int rc;

	rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "meta", flags, &st->meta);
	if (rc == MDB_NOTFOUND)
		return SP_EFOREIGN;
	if (rc == MDB_INCOMPATIBLE)
		return SP_EFOREIGN;
	if (rc)
		return rc;

	MDB_val k = { strlen("magic"), "magic" }, v;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !st->readonly) {
		/* new file: the main table may only hold our own table names */
		if ((rc = mdb_stat(txn, main_dbi, &ms)))
			return rc;
		if (ms.ms_entries > 1)
			return SP_EFOREIGN;
		v.mv_data = STORE_MAGIC;
		v.mv_size = strlen(STORE_MAGIC);
		if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) ||
		    (rc = store__meta_put_u64(txn, st->meta, "schema", SP_STORE_SCHEMA)) ||
		    (rc = store__meta_put_u64(txn, st->meta, "created", sp_now_ns())))
			return rc;
	} else if (rc == MDB_NOTFOUND) {
		return SP_EFOREIGN;
	} else if (rc) {
		return rc;
	} else if (v.mv_size != strlen(STORE_MAGIC) || memcmp(v.mv_data, STORE_MAGIC, v.mv_size)) {
		return SP_EFOREIGN;
	}

	uint64_t schema;
	rc = store__meta_get_u64(txn, st->meta, "schema", &schema);
	if (rc)
		return rc == SP_ENOTFOUND ? SP_EFOREIGN : rc;
	if (schema > SP_STORE_SCHEMA)
		return SP_ESCHEMA;
	if (schema < SP_STORE_SCHEMA && !st->readonly &&
	    (rc = store__meta_put_u64(txn, st->meta, "schema", SP_STORE_SCHEMA)))
		return rc;

	if ((rc = mdb_dbi_open(txn, "events", flags, &st->events)) ||
	    (rc = mdb_dbi_open(txn, "ip", flags, &st->ip)) ||
	    (rc = mdb_dbi_open(txn, "number", flags, &st->number)))
		return rc == MDB_NOTFOUND ? SP_ECORRUPT : rc;
	if ((rc = feed_open(st, txn)))
		return rc;

	if (store__meta_get(txn, st->meta, "node_id", st->node_id, sizeof(st->node_id)) != 0 &&
	    !st->readonly) {
		/* this node's identity in logs (created_by_node_id): stable across restarts */
		sp_uuid_new(st->node_id);
		MDB_val nk = { 7, "node_id" }, nv = { sizeof(st->node_id), st->node_id };
		if ((rc = mdb_put(txn, st->meta, &nk, &nv, 0)))
			return rc;
	}
	if (st->set_retention)
		return store__meta_put_u64(txn, st->meta, "retention_ns", st->retention_ns);
	uint64_t ret;
	if (store__meta_get_u64(txn, st->meta, "retention_ns", &ret) == 0 && ret)
		st->retention_ns = ret;
	return 0;
}

int store__map_errno(int rc)
{
	if (rc == EACCES || rc == EPERM)
		return SP_EACCESS;
	if (rc > 0)
		return -rc;
	return rc;
}

/* Every transaction of this process holds env_lock shared from begin to
 * end (readers here, the writer's in sp_wtxn_begin/commit); what needs no
 * transaction of this process open (adopting a grown map, reopening the
 * environment) takes it exclusive. It never waits for it: it raises
 * env_wanted, so new readers hold back (read_begin), tries until the
 * readers in the lock have left or max_ns passed, and lowers it again. A
 * thread that holds it shared and reads again (a callback inside a walk)
 * waits only that long. */
static bool env_exclusive(sp_store *st, uint64_t max_ns)
{
	uint64_t until = sp_mono_ns() + max_ns;
	bool got;
	atomic_fetch_add(&st->env_wanted, 1);
	while (!(got = pthread_rwlock_trywrlock(&st->env_lock) == 0) && sp_mono_ns() < until)
		nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	atomic_fetch_sub(&st->env_wanted, 1);
	return got;
}

static void env_gate(sp_store *st)
{
	while (atomic_load_explicit(&st->env_wanted, memory_order_relaxed))
		nanosleep(&(struct timespec){ 0, 20000 }, NULL);
}

static unsigned env_flags(const sp_store *st, const struct sp_store_options *opt)
{
	unsigned flags = MDB_NOSUBDIR | MDB_NOTLS;
	if (st->readonly)
		flags |= MDB_RDONLY;
	else if (opt->sync == SP_SYNC_NOMETA)
		flags |= MDB_NOMETASYNC;
	else if (opt->sync == SP_SYNC_NONE)
		flags |= MDB_NOSYNC;
	return flags;
}

/* map_size 0: the file's own */
static int env_open(sp_store *st, unsigned flags, uint64_t map_size)
{
	int rc;

	if ((rc = mdb_env_create(&st->env)))
		return rc;
	mdb_env_set_maxdbs(st->env, 8);
	mdb_env_set_maxreaders(st->env, 254);
	if (map_size && !st->readonly) {
		if ((rc = mdb_env_set_mapsize(st->env, (size_t)map_size)))
			goto fail;
	}
	rc = mdb_env_open(st->env, st->path, flags, 0600);
	if (rc == 0) {
		if (mdb_env_get_fd(st->env, &st->map_fd) != 0)
			st->map_fd = -1;
		return 0;
	}
fail:
	mdb_env_close(st->env);
	st->env = NULL;
	return rc;
}

int sp_store_open(sp_store **out, const struct sp_store_options *opt)
{
	struct stat sb;
	MDB_txn *txn = NULL;
	int rc;

	*out = NULL;
	if (stat(opt->path, &sb) != 0) {
		if (errno != ENOENT)
			return store__map_errno(errno);
		if (opt->readonly)
			return SP_ENOSTORE;
	} else if (S_ISDIR(sb.st_mode)) {
		return -EISDIR;
	} else if (!S_ISREG(sb.st_mode)) {
		return SP_EFOREIGN;
	}

	sp_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->map_fd = -1;
	pthread_rwlock_init(&st->env_lock, NULL);
	st->readonly = opt->readonly;
	st->set_retention = opt->set_retention && !opt->readonly;
	st->retention_ns = opt->retention_ns;
	st->path = strdup(opt->path);
	st->batch_max = opt->batch_max ? opt->batch_max : 4096;
	if (!st->path) {
		rc = -ENOMEM;
		goto fail;
	}

	rc = env_open(st, env_flags(st, opt), opt->map_size);
	if (rc == EROFS && st->readonly) /* read-only media: nobody can be writing */
		rc = env_open(st, env_flags(st, opt) | MDB_NOLOCK, opt->map_size);
	if (rc)
		goto fail;
	if (fstat(st->map_fd, &sb) == 0) {
		st->file_dev = sb.st_dev;
		st->file_ino = sb.st_ino;
	}
	rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0, &txn);
	if (rc)
		goto fail;
	rc = store_check_or_init(st, txn);
	if (rc == 0 && !st->readonly)
		rc = store__ingest_open(st, txn);
	if (rc == 0 && !st->readonly)
		rc = store__feed_flush(&st->tx, txn); /* numbers the replay gave */
	if (rc) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail;
	*out = st;
	return 0;
fail:
	sp_store_close(st);
	return store__map_errno(rc);
}

void sp_store_close(sp_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	store__ingest_close(st);
	pthread_rwlock_destroy(&st->env_lock);
	free(st->path);
	free(st);
}

bool sp_store_is_open(const sp_store *st) { return st->env != NULL; }

/* LMDB's lock file beside the data file (MDB_NOSUBDIR) */
static int lock_path(const sp_store *st, char *buf, size_t len)
{
	return snprintf(buf, len, "%s-lock", st->path) < (int)len ? 0 : -ENAMETOOLONG;
}

/* The open file itself (never a path a link could divert), and the lock
 * file's path without following a link; never opened and closed here:
 * closing any descriptor of the lock file would drop LMDB's lock on it. */
int sp_store_give(sp_store *st, uid_t uid, gid_t gid)
{
	char lock[PATH_MAX];
	if (!st->env || st->map_fd < 0)
		return SP_ECLOSED;
	if (lock_path(st, lock, sizeof(lock)))
		return -ENAMETOOLONG;
	if (fchown(st->map_fd, uid, gid) != 0 ||
	    fchownat(AT_FDCWD, lock, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	return 0;
}

/* LMDB keeps every page a write transaction dirtied, for the next ones,
 * until the environment is closed: after a flood that is the largest
 * transaction's pages (8 MB and more), for good. Closing and opening the
 * environment again between transactions gives them back. The handles
 * (MDB_dbi) are opened again in a read-only transaction and kept by
 * committing it. */
int sp_store_reopen(sp_store *st)
{
	MDB_envinfo info;
	MDB_txn *txn;
	unsigned flags;
	char lock[PATH_MAX];
	struct stat sb;
	int rc;

	if (st->readonly || st->tx_busy)
		return -EBUSY;
	/* Only what can be opened again is closed: the path must still be
	 * this file (a moved or replaced store is kept open as it is, never
	 * swapped for what is there now, nor made anew), and this process
	 * (perhaps a user the node switched to) must be able to read and
	 * write it and its lock file. */
	if (stat(st->path, &sb) != 0)
		return -errno;
	if (sb.st_dev != st->file_dev || sb.st_ino != st->file_ino)
		return -ESTALE;
	if (lock_path(st, lock, sizeof(lock)))
		return -ENAMETOOLONG;
	if (access(st->path, R_OK | W_OK) != 0 || access(lock, R_OK | W_OK) != 0)
		return -errno;
	if (!env_exclusive(st, SP_NS_PER_SEC / 200))
		return -EBUSY; /* a transaction in this process: another time */
	if (st->env) {
		mdb_env_info(st->env, &info);
		mdb_env_get_flags(st->env, &flags);
		st->reopen_flags = flags;
		st->reopen_map_size = info.me_mapsize;
		mdb_env_close(st->env);
		st->env = NULL;
		st->map_fd = -1;
	}
	/* before the new environment takes its buffers (a few MB it touches
	 * little of) from where the old one's pages were, give those back */
	malloc_trim(0);
	rc = env_open(st, st->reopen_flags, st->reopen_map_size);
	if (rc == 0 && (fstat(st->map_fd, &sb) != 0 || sb.st_dev != st->file_dev ||
			sb.st_ino != st->file_ino))
		rc = ESTALE; /* replaced between the check and the open */
	if (rc == 0 && (rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) == 0) {
		if ((rc = mdb_dbi_open(txn, "meta", 0, &st->meta)) ||
		    (rc = mdb_dbi_open(txn, "events", 0, &st->events)) ||
		    (rc = mdb_dbi_open(txn, "ip", 0, &st->ip)) ||
		    (rc = mdb_dbi_open(txn, "number", 0, &st->number)) ||
		    (st->has_feed && ((rc = mdb_dbi_open(txn, "feed_ip", 0, &st->feed_ip)) ||
				      (rc = mdb_dbi_open(txn, "feed_number", 0, &st->feed_number)) ||
				      (rc = mdb_dbi_open(txn, "feed_pos", 0, &st->feed_pos)))))
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn); /* keeps the handles */
	}
	if (rc && st->env) {
		mdb_env_close(st->env);
		st->env = NULL;
		st->map_fd = -1;
	}
	pthread_rwlock_unlock(&st->env_lock);
	return store__map_errno(rc);
}

/* LMDB does not say where its map is (mdb_env_info's me_mapaddr is the
 * MDB_FIXEDMAP address, NULL): the mappings of the data file are found by
 * device and inode, each time, so a map LMDB moved is never touched. */
void sp_store_release_map(sp_store *st)
{
	struct stat sb;
	char line[512];
	/* shared: no one adopts a grown map (a new mapping) meanwhile */
	pthread_rwlock_rdlock(&st->env_lock);
	FILE *f = NULL;
	if (!st->env || fstat(st->map_fd, &sb) != 0 || !(f = fopen("/proc/self/maps", "re"))) {
		pthread_rwlock_unlock(&st->env_lock);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		unsigned maj, mnr;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %*x %x:%x %lu", &lo, &hi, perms, &maj, &mnr, &ino) != 6)
			continue;
		/* the data file's shared, read-only map (not the lock file's) */
		if (ino == (unsigned long)sb.st_ino && makedev(maj, mnr) == sb.st_dev &&
		    perms[1] == '-' && perms[3] == 's')
			madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	fclose(f);
	pthread_rwlock_unlock(&st->env_lock);
}

/* A reader whose snapshot sees a map another process grew must adopt it;
 * LMDB allows that only with no transaction of this process open. */
static int read_begin(sp_store *st, MDB_txn **txn)
{
	int rc;
	for (int attempt = 0;; attempt++) {
		env_gate(st);
		pthread_rwlock_rdlock(&st->env_lock);
		rc = st->env ? mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn) : SP_ECLOSED;
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&st->env_lock);
		if (rc != MDB_MAP_RESIZED || attempt > 0 || !env_exclusive(st, SP_NS_PER_SEC / 10))
			return rc;
		if (st->env)
			mdb_env_set_mapsize(st->env, 0);
		pthread_rwlock_unlock(&st->env_lock);
	}
}

static void read_end(sp_store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->env_lock);
}

int sp_store_get(sp_store *st, enum sp_kind kind, const char *key, sp_agg *out)
{
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, store__agg_dbi(st, kind), &k, &v);
	if (rc == 0)
		rc = sp_agg_decode(v.mv_data, v.mv_size, out);
	else if (rc == MDB_NOTFOUND)
		rc = SP_ENOTFOUND;
	read_end(st, txn);
	return rc;
}

/* One snapshot, a cursor from start (NULL: the first key), each value
 * decoded into rec and handed to visit until it returns non-zero. */
static int walk(sp_store *st, const MDB_dbi *dbi, MDB_val *start, void *rec,
		int (*decode)(const MDB_val *v, void *rec, void *ctx), void *ctx,
		int (*visit)(void *rec, void *ctx), uint64_t *corrupt)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, stop = 0;

	if ((rc = read_begin(st, &txn)))
		return rc;
	/* the handle read under the lock: a reopen sets it (to the same) */
	if ((rc = mdb_cursor_open(txn, *dbi, &cur)))
		goto out;
	if (start)
		k = *start;
	for (rc = mdb_cursor_get(cur, &k, &v, start ? MDB_SET_RANGE : MDB_FIRST); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (decode(&v, rec, ctx) != 0) {
			if (corrupt)
				(*corrupt)++;
			continue;
		}
		stop = visit(rec, ctx);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (stop)
		rc = stop;
out:
	read_end(st, txn);
	return rc;
}

struct agg_walk {
	enum sp_kind kind;
	sp_agg_fn fn;
	void *ud;
};

static int decode_agg(const MDB_val *v, void *rec, void *ctx)
{
	const struct agg_walk *w = ctx;
	sp_agg *a = rec;
	int rc = sp_agg_decode(v->mv_data, v->mv_size, a);
	return rc ? rc : a->kind != w->kind ? SP_ECORRUPT : 0;
}

static int visit_agg(void *rec, void *ctx)
{
	const struct agg_walk *w = ctx;
	return w->fn(rec, w->ud);
}

int sp_store_foreach(sp_store *st, enum sp_kind kind, sp_agg_fn fn, void *ud, uint64_t *corrupt)
{
	struct agg_walk w = { kind, fn, ud };
	sp_agg *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	int rc = walk(st, kind == SP_KIND_IP ? &st->ip : &st->number, NULL, a, decode_agg, &w,
		      visit_agg, corrupt);
	free(a);
	return rc;
}

struct event_walk {
	sp_event_fn fn;
	void *ud;
};

static int decode_event(const MDB_val *v, void *rec, void *ctx)
{
	return sp_event_decode(v->mv_data, v->mv_size, rec);
}

static int visit_event(void *rec, void *ctx)
{
	const struct event_walk *w = ctx;
	return w->fn(rec, w->ud);
}

int sp_store_foreach_event(sp_store *st, uint64_t since_ns, sp_event_fn fn, void *ud,
			   uint64_t *corrupt)
{
	struct event_walk w = { fn, ud };
	uint8_t from[8];
	MDB_val k = { sizeof(from), from };
	sp_event *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	store__put_be64(from, since_ns);
	int rc = walk(st, &st->events, &k, e, decode_event, &w, visit_event, corrupt);
	free(e);
	return rc;
}

int sp_store_feed(sp_store *st, enum sp_kind kind, uint64_t after, size_t max_scan,
		  sp_feed_fn fn, void *ud, struct sp_feed_result *res)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v, ak, av;
	uint8_t from[8];
	char key[SP_KEY_MAX];
	sp_agg *a;
	int rc, stop = 0;

	memset(res, 0, sizeof(*res));
	res->last = after;
	if (!st->has_feed)
		return SP_ENOTFOUND;
	if (!(a = malloc(sizeof(*a))))
		return -ENOMEM;
	if ((rc = read_begin(st, &txn))) {
		free(a);
		return rc;
	}
	if (store__meta_get_u64(txn, st->meta, FEED_SEQ_KEY, &res->head) != 0)
		res->head = 0;
	if ((rc = mdb_cursor_open(txn, feed_dbi(st, (uint8_t)kind), &cur)))
		goto out;
	store__put_be64(from, after + 1);
	k.mv_size = 8;
	k.mv_data = from;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (stop || res->scanned == max_scan) {
			res->more = true;
			break;
		}
		if (k.mv_size != 8 || v.mv_size == 0 || v.mv_size >= SP_KEY_MAX)
			continue;
		uint64_t seq = store__get_be64(k.mv_data);
		res->scanned++;
		res->last = seq;
		memcpy(key, v.mv_data, v.mv_size);
		key[v.mv_size] = '\0';
		ak.mv_size = v.mv_size;
		ak.mv_data = key;
		if (mdb_get(txn, store__agg_dbi(st, kind), &ak, &av) != 0 ||
		    sp_agg_decode(av.mv_data, av.mv_size, a) != 0 || a->kind != kind) {
			res->corrupt++;
			continue;
		}
		stop = fn(seq, a, ud);
		if (stop < 0) {
			rc = stop;
			break;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	read_end(st, txn);
	free(a);
	return rc;
}

int sp_store_recent_events(sp_store *st, size_t max, sp_event_fn fn, void *ud)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;
	sp_event *e = malloc(sizeof(*e));
	int rc;

	if (!e)
		return -ENOMEM;
	if ((rc = read_begin(st, &txn))) {
		free(e);
		return rc;
	}
	if ((rc = mdb_cursor_open(txn, st->events, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 && n < max;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
			if (sp_event_decode(v.mv_data, v.mv_size, e) != 0)
				continue;
			n++;
			if ((rc = fn(e, ud)))
				break;
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	read_end(st, txn);
	free(e);
	return rc;
}

int sp_store_event_times(sp_store *st, struct sp_event_pos *pos, size_t max,
			 void (*fn)(uint64_t ts_ns, void *ud), void *ud, bool *more)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;
	int rc;

	*more = false;
	if ((rc = read_begin(st, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->events, &cur)) == 0) {
		k.mv_size = sizeof(pos->key);
		k.mv_data = pos->key;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (k.mv_size != sizeof(pos->key))
				continue;
			/* pos is the last key handed out: start after it */
			if (pos->started && memcmp(k.mv_data, pos->key, sizeof(pos->key)) <= 0)
				continue;
			if (n == max) {
				*more = true;
				break;
			}
			memcpy(pos->key, k.mv_data, sizeof(pos->key));
			pos->started = true;
			fn(store__get_be64(k.mv_data), ud);
			n++;
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	read_end(st, txn);
	return rc;
}

void sp_event_pos_init(struct sp_event_pos *pos, uint64_t since_ns)
{
	memset(pos, 0, sizeof(*pos));
	store__put_be64(pos->key, since_ns);
}

int sp_store_stats(sp_store *st, struct sp_store_stats *out)
{
	MDB_txn *txn;
	MDB_stat ms;
	MDB_envinfo info;
	MDB_cursor *cur;
	MDB_val k, v;
	struct stat sb;
	uint64_t schema = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_begin(st, &txn)))
		return rc;
	if ((rc = mdb_stat(txn, st->events, &ms)))
		goto out;
	out->events = ms.ms_entries;
	if ((rc = mdb_stat(txn, st->ip, &ms)))
		goto out;
	out->ips = ms.ms_entries;
	if ((rc = mdb_stat(txn, st->number, &ms)))
		goto out;
	out->numbers = ms.ms_entries;
	if ((rc = mdb_cursor_open(txn, st->events, &cur)))
		goto out;
	if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size >= 8)
		out->oldest_event_ns = store__get_be64(k.mv_data);
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size >= 8)
		out->newest_event_ns = store__get_be64(k.mv_data);
	mdb_cursor_close(cur);
	store__meta_get_u64(txn, st->meta, "schema", &schema);
	out->schema = (uint32_t)schema;
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &ms);
	out->map_size = info.me_mapsize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	out->retention_ns = st->retention_ns;
	if (stat(st->path, &sb) == 0)
		out->file_bytes = (uint64_t)sb.st_blocks * 512;
out:
	read_end(st, txn);
	return rc;
}

#define COUNTER_PREFIX "counter."

int sp_store_counter_get(sp_store *st, const char *name, uint64_t *out)
{
	char k[128];
	MDB_txn *txn;
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	snprintf(k, sizeof(k), COUNTER_PREFIX "%s", name);
	rc = store__meta_get_u64(txn, st->meta, k, out);
	if (rc == SP_ENOTFOUND) {
		*out = 0;
		rc = 0;
	}
	read_end(st, txn);
	return rc;
}

int sp_store_counters(sp_store *st, sp_counter_fn fn, void *ud)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = { strlen(COUNTER_PREFIX), COUNTER_PREFIX }, v;
	char name[128];
	int rc = read_begin(st, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->meta, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			size_t pl = strlen(COUNTER_PREFIX);
			if (k.mv_size <= pl || memcmp(k.mv_data, COUNTER_PREFIX, pl) != 0)
				break;
			if (v.mv_size != 8 || k.mv_size - pl >= sizeof(name))
				continue;
			memcpy(name, (char *)k.mv_data + pl, k.mv_size - pl);
			name[k.mv_size - pl] = '\0';
			fn(name, store__get_be64(v.mv_data), ud);
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	read_end(st, txn);
	return rc;
}

/* ---- writing ------------------------------------------------------- */

int sp_wtxn_begin(sp_store *st, sp_wtxn **out)
{
	if (st->readonly)
		return SP_EACCESS;
	if (st->tx_busy)
		return -EBUSY;
	sp_wtxn *tx = &st->tx;
	pthread_rwlock_rdlock(&st->env_lock);
	int rc = st->env ? mdb_txn_begin(st->env, NULL, 0, &tx->txn) : SP_ECLOSED;
	if (rc) {
		pthread_rwlock_unlock(&st->env_lock);
		return store__map_errno(rc);
	}
	tx->st = st;
	tx->feed_txnid = 0;
	msgpack_sbuffer_init(&tx->sb);
	store__ingest_begin(tx);
	st->tx_busy = true;
	*out = tx;
	return 0;
}

static void wtxn_release(sp_wtxn *tx)
{
	msgpack_sbuffer_destroy(&tx->sb);
	tx->txn = NULL;
	tx->st->tx_busy = false;
	pthread_rwlock_unlock(&tx->st->env_lock);
}

int sp_wtxn_commit(sp_wtxn *tx)
{
	int rc = store__ingest_before_commit(tx);
	if (rc == 0)
		rc = store__feed_flush(tx, tx->txn);
	if (rc)
		mdb_txn_abort(tx->txn);
	else
		rc = store__map_errno(mdb_txn_commit(tx->txn));
	store__ingest_after_commit(tx, rc);
	wtxn_release(tx);
	return rc;
}

void sp_wtxn_abort(sp_wtxn *tx)
{
	mdb_txn_abort(tx->txn);
	store__ingest_after_commit(tx, SP_ESTOPPED);
	wtxn_release(tx);
}

int sp_wtxn_counter_add(sp_wtxn *tx, const char *name, uint64_t delta)
{
	char k[128];
	uint64_t v = 0;
	snprintf(k, sizeof(k), COUNTER_PREFIX "%s", name);
	int rc = store__meta_get_u64(tx->txn, tx->st->meta, k, &v);
	if (rc && rc != SP_ENOTFOUND)
		return rc;
	return store__meta_put_u64(tx->txn, tx->st->meta, k, v + delta);
}

static int put_agg(sp_wtxn *tx, const sp_agg *a)
{
	MDB_val k = { strlen(a->key), (void *)a->key }, v;
	tx->sb.size = 0;
	sp_agg_encode(a, &tx->sb);
	v.mv_size = tx->sb.size;
	v.mv_data = tx->sb.data;
	return mdb_put(tx->txn, store__agg_dbi(tx->st, a->kind), &k, &v, 0);
}

/* Current aggregate for kind/key into tx->agg, or a fresh one. */
static int load_agg(sp_wtxn *tx, uint8_t kind, const char *key)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = mdb_get(tx->txn, store__agg_dbi(tx->st, kind), &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && sp_agg_decode(v.mv_data, v.mv_size, &tx->agg) != 0)) {
		/* a record that no longer decodes is replaced, not kept half-read */
		sp_agg_init(&tx->agg, kind, key);
		return 0;
	}
	return rc;
}

int sp_wtxn_merge(sp_wtxn *tx, const sp_agg *a)
{
	int rc = load_agg(tx, a->kind, a->key);
	if (rc)
		return rc;
	sp_agg_merge(&tx->agg, a);
	if ((rc = put_agg(tx, &tx->agg)))
		return rc;
	return store__feed_touch(tx, a->kind, a->key);
}

/* ---- retention ----------------------------------------------------- */

static int sweep_events(sp_store *st, MDB_txn *txn, uint64_t cutoff, size_t budget,
			struct sp_sweep_stats *acc, bool *done)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->events, &cur);
	if (rc)
		return rc;
	*done = true;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size >= 8 && store__get_be64(k.mv_data) >= cutoff)
			break;
		if (budget-- == 0) {
			*done = false;
			break;
		}
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		acc->events_deleted++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sweep_aggs(sp_store *st, MDB_txn *txn, uint8_t kind, uint64_t now, size_t budget,
		      struct sp_sweep_stats *acc, bool *done)
{
	MDB_dbi dbi = store__agg_dbi(st, kind);
	MDB_cursor *cur;
	MDB_val k, v;
	sp_agg *a = &st->tx.agg; /* no write txn of ours is open: the scratch is free */
	msgpack_sbuffer sb;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	msgpack_sbuffer_init(&sb);
	*done = true;
	if (st->sweep_has_key) {
		k.mv_data = st->sweep_key;
		k.mv_size = strlen(st->sweep_key);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (budget-- == 0) {
			*done = false;
			if (k.mv_size < sizeof(st->sweep_key)) {
				memcpy(st->sweep_key, k.mv_data, k.mv_size);
				st->sweep_key[k.mv_size] = '\0';
				st->sweep_has_key = true;
			}
			break;
		}
		if (sp_agg_decode(v.mv_data, v.mv_size, a) != 0)
			continue; /* left for a human: never delete what we cannot read */
		unsigned before = a->n_reports;
		if (sp_agg_expire(a, now, st->retention_ns) == 0) {
			if (st->has_feed && (rc = feed_drop(txn, st, kind, a->key)))
				break;
			if ((rc = mdb_cursor_del(cur, 0)))
				break;
			acc->aggs_deleted++;
		} else if (a->n_reports != before) {
			sb.size = 0;
			sp_agg_encode(a, &sb);
			MDB_val nv = { sb.size, sb.data };
			if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)))
				break;
			acc->aggs_updated++;
		}
	}
	msgpack_sbuffer_destroy(&sb);
	mdb_cursor_close(cur);
	if (*done)
		st->sweep_has_key = false;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int sp_store_sweep_step(sp_store *st, uint64_t now_ns, size_t budget, struct sp_sweep_stats *acc)
{
	MDB_txn *txn;
	bool done = true;
	int rc;

	if (st->readonly)
		return SP_EACCESS;
	if (st->tx_busy)
		return -EBUSY;
	if (st->sweep_phase == SWEEP_DONE)
		st->sweep_phase = SWEEP_EVENTS;
	pthread_rwlock_rdlock(&st->env_lock);
	rc = st->env ? mdb_txn_begin(st->env, NULL, 0, &txn) : SP_ECLOSED;
	if (rc) {
		pthread_rwlock_unlock(&st->env_lock);
		return store__map_errno(rc);
	}
	uint64_t cutoff = now_ns > st->retention_ns ? now_ns - st->retention_ns : 0;
	switch (st->sweep_phase) {
	case SWEEP_EVENTS: rc = sweep_events(st, txn, cutoff, budget, acc, &done); break;
	case SWEEP_IP: rc = sweep_aggs(st, txn, SP_KIND_IP, now_ns, budget, acc, &done); break;
	case SWEEP_NUMBER: rc = sweep_aggs(st, txn, SP_KIND_NUMBER, now_ns, budget, acc, &done); break;
	case SWEEP_DONE: break;
	}
	if (rc) {
		mdb_txn_abort(txn);
		pthread_rwlock_unlock(&st->env_lock);
		st->sweep_has_key = false;
		return store__map_errno(rc);
	}
	rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&st->env_lock);
	if (rc)
		return store__map_errno(rc);
	if (done)
		st->sweep_phase++;
	return st->sweep_phase == SWEEP_DONE ? 0 : 1;
}
