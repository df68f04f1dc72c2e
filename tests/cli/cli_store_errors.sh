# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Foreign and corrupt files, read-only media, a full disk, no permission:
# each is one clear message and exit 2, and the store is never damaged.
. "$(dirname "$0")/lib.sh"
mkdir -p "$SENTRYPEER_DATA_DIR"
DB="$SENTRYPEER_DATA_DIR/sentrypeer.mdb"

head -c 100000 /dev/urandom >"$DB"
expect_exit 2 "garbage file: lookup" -- sp lookup 203.0.113.5
expect_contains "$ERR" "not an LMDB store" "garbage file explained"
expect_exit 2 "garbage file: import refuses to touch it" -- sp import /dev/null
cmp -s "$DB" <(cat "$DB") && pass "garbage file left as it was" || true
rm -f "$DB" "$DB-lock"

if command -v mdb_load >/dev/null; then
	printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n bob\n 42\nDATA=END\n' | mdb_load -n -s accounts "$DB"
	expect_exit 2 "another program's LMDB file" -- sp lookup 203.0.113.5
	expect_contains "$ERR" "not a SentryPeer store" "foreign LMDB file explained"
	expect_exit 2 "import refuses a foreign LMDB file" -- sp import /dev/null
	rm -f "$DB" "$DB-lock"
else
	skip "mdb_load (lmdb-utils) missing: foreign LMDB file not tested"
fi

make_fixture "$TMP/f.jsonl"
sp import "$TMP/f.jsonl" 2>/dev/null

if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
	skip "read-only media, full disk and permissions need root and unshare -m"
	finish
	exit $?
fi

# read-only media: reads work without a lock file, writes are refused clearly
M="$TMP/mnt"
mkdir -p "$M"
expect_exit 0 "lookup on read-only media" -- unshare -m sh -ec "
	mount -t tmpfs -o size=8m tmpfs '$M'
	cp '$DB' '$M/'
	mount -o remount,ro '$M'
	'$SENTRYPEER' lookup -f '$M/sentrypeer.mdb' 203.0.113.5"
expect_exit 2 "import on read-only media" -- unshare -m sh -ec "
	mount -t tmpfs -o size=8m tmpfs '$M'
	cp '$DB' '$M/'
	mount -o remount,ro '$M'
	'$SENTRYPEER' import -f '$M/sentrypeer.mdb' '$TMP/f.jsonl'"
expect_contains "$ERR" "read-only file system" "read-only media explained"

# a full disk: the import stops with a clear error; what was committed stays
python3 - "$TMP/many.jsonl" <<'PY'
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(60000):
        f.write('{"kind":"ip","key":"11.%d.%d.%d","user_agents":["%s"],"reports":[{"reporter":"local","first_seen":"2026-11-26T00:00:00Z","last_seen":"2099-01-01T00:00:00Z","count":1}]}\n' % (i >> 16, (i >> 8) & 255, i & 255, 'x' * 100))
PY
expect_exit 0 "full disk: import fails, store still readable" -- unshare -m sh -c "
	mount -t tmpfs -o size=2m tmpfs '$M' || exit 9
	cp '$DB' '$M/'
	'$SENTRYPEER' import -f '$M/sentrypeer.mdb' '$TMP/many.jsonl' 2>'$TMP/full.err'; echo \"import exit \$?\"
	'$SENTRYPEER' lookup -f '$M/sentrypeer.mdb' 203.0.113.5 >/dev/null; echo \"lookup exit \$?\"
	'$SENTRYPEER' stats -f '$M/sentrypeer.mdb' >/dev/null; echo \"stats exit \$?\""
expect_contains "$OUT" "import exit 2" "import exits 2 on a full disk"
expect_contains "$(cat "$TMP/full.err")" "disk full" "full disk explained"
expect_contains "$OUT" "lookup exit 0" "earlier data still there after the full disk"
expect_contains "$OUT" "stats exit 0" "store still opens after the full disk"

# no permission: another user gets a clear message, not a crash
if command -v setpriv >/dev/null; then
	chmod 700 "$SENTRYPEER_DATA_DIR"
	chmod 711 "$TMP"
	expect_exit 2 "lookup as another user" -- setpriv --reuid=65534 --regid=65534 --clear-groups "$SENTRYPEER" lookup -f "$DB" 203.0.113.5
	expect_contains "$ERR" "permission denied" "permission problem explained"
else
	skip "setpriv missing: permission test skipped"
fi
finish
