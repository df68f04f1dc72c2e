# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# lookup: exit 0 listed, 1 not listed, 2 error; number forms; --json.
. "$(dirname "$0")/lib.sh"

expect_exit 2 "lookup with no store yet" -- sp lookup 203.0.113.5
expect_contains "$ERR" "no store at $SENTRYPEER_DATA_DIR/sentrypeer.mdb" "missing store is explained"
[ ! -e "$SENTRYPEER_DATA_DIR" ] && pass "lookup created nothing" || fail "lookup created the data dir"

make_fixture "$TMP/f.jsonl"
expect_exit 0 "import fixture" -- sp import "$TMP/f.jsonl"

expect_exit 0 "listed IP" -- sp lookup 203.0.113.5
expect_contains "$OUT" "203.0.113.5 is listed" "says listed"
expect_contains "$OUT" "42 times" "says how often"
expect_contains "$OUT" "this node (42)" "says by whom"
expect_contains "$OUT" "friendly-scanner" "shows the user agent"
expect_exit 0 "IPv4-mapped IPv6 finds the IPv4 record" -- sp lookup ::ffff:203.0.113.5
expect_exit 0 "IPv6, other spelling" -- sp lookup 2001:DB8:0::5
expect_contains "$OUT" "1 peer (3)" "peer reports counted"
expect_exit 1 "unlisted IP" -- sp lookup 203.0.113.6
expect_contains "$OUT" "203.0.113.6 is not listed" "says not listed"
expect_exit 1 "expired record is not listed" -- sp lookup 203.0.113.99
for n in +441234 00441234 441234 "+44 1234"; do
	expect_exit 0 "number as '$n'" -- sp lookup "$n"
done
expect_exit 0 "number with leading 0 kept" -- sp lookup 00046500729221
expect_exit 1 "unlisted number" -- sp lookup +15551234
expect_exit 2 "invalid IP" -- sp lookup 999.1.1.1
expect_contains "$ERR" "not a valid IPv4 or IPv6 address" "invalid IP explained"
expect_exit 2 "invalid number" -- sp lookup 'bob'
expect_contains "$ERR" "not a valid telephone number" "invalid number explained"

expect_exit 0 "--json listed" -- sp lookup --json 198.51.100.23
if command -v jq >/dev/null; then
	expect_eq "$(printf '%s' "$OUT" | jq -r '[.listed, .kind, .key, .count, .peers, .local] | @tsv')" \
		"$(printf 'true\tip\t198.51.100.23\t6\t1\ttrue')" "--json fields"
	expect_exit 1 "--json unlisted" -- sp lookup --json 203.0.113.6
	expect_eq "$(printf '%s' "$OUT" | jq -r .listed)" "false" "--json says listed false"
else
	skip "jq not installed: --json fields not checked"
fi

# the data directory comes from --data-dir as well as the environment
mv "$SENTRYPEER_DATA_DIR" "$TMP/other"
expect_exit 0 "--data-dir" -- sp lookup --data-dir "$TMP/other" 203.0.113.5
expect_exit 0 "-f names the store file" -- sp lookup -f "$TMP/other/sentrypeer.mdb" 203.0.113.5
finish
