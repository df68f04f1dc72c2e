# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# import: bad lines reported and skipped; export -> import round-trips exactly.
. "$(dirname "$0")/lib.sh"

make_fixture "$TMP/f.jsonl"
{ head -2 "$TMP/f.jsonl"; echo 'this is not json'; echo '{"kind":"ip","key":"999.1.1.1","reports":[]}';
  echo '[1,2]'; echo; tail -n +3 "$TMP/f.jsonl"; } >"$TMP/mixed.jsonl"
expect_exit 1 "import with bad lines" -- sp import "$TMP/mixed.jsonl"
expect_contains "$ERR" "mixed.jsonl:3: invalid JSON" "line 3 reported"
expect_contains "$ERR" "mixed.jsonl:4: '999.1.1.1' is not an IP address" "line 4 reported"
expect_contains "$ERR" "mixed.jsonl:5: not a JSON object" "line 5 reported"
expect_contains "$ERR" "imported 7 records, skipped 3 bad lines" "summary"
expect_exit 0 "good lines imported" -- sp lookup 2001:db8::5

expect_exit 2 "import of a missing file" -- sp import "$TMP/nope.jsonl"
expect_contains "$ERR" "No such file" "missing file explained"

# round trip: A -> jsonl -> B -> jsonl is byte-identical
sp export --format jsonl --kind all --include-private >"$TMP/a.jsonl"
export SENTRYPEER_DATA_DIR="$TMP/b"
expect_exit 0 "import the export into a new store" -- sp import "$TMP/a.jsonl"
sp export --format jsonl --kind all --include-private >"$TMP/b.jsonl"
cmp -s "$TMP/a.jsonl" "$TMP/b.jsonl" && pass "round trip is exact ($(wc -l <"$TMP/a.jsonl") records)" \
	|| fail "round trip differs: $(diff "$TMP/a.jsonl" "$TMP/b.jsonl" | head -5)"
expect_exit 0 "importing again (from stdin)" -- sh -c "'$SENTRYPEER' import - <'$TMP/a.jsonl'"
sp export --format jsonl --kind all --include-private >"$TMP/c.jsonl"
cmp -s "$TMP/a.jsonl" "$TMP/c.jsonl" && pass "import is idempotent" || fail "second import changed the data"

# more data than one import transaction (10,000 lines)
python3 - "$TMP/many.jsonl" <<'PY'
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(25000):
        f.write('{"kind":"ip","key":"11.%d.%d.%d","reports":[{"reporter":"local","first_seen":"2026-11-26T00:00:00Z","last_seen":"2099-01-01T00:00:00Z","count":%d}]}\n' % (i >> 16, (i >> 8) & 255, i & 255, i + 1))
PY
expect_exit 0 "import 25,000 records" -- sp import "$TMP/many.jsonl"
expect_eq "$(sp export | grep -c '^11\.')" "25000" "all 25,000 exported"
finish
