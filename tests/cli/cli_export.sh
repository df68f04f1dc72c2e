# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# export: every format valid for the tool that reads it; atomic --output.
. "$(dirname "$0")/lib.sh"

make_fixture "$TMP/f.jsonl"
sp import "$TMP/f.jsonl" 2>/dev/null

expect_exit 0 "txt" -- sp export
expect_eq "$OUT" "$(printf '198.51.100.23\n2001:db8::5\n203.0.113.5')" "txt: IPs, private and expired left out"
expect_exit 0 "txt --include-private" -- sp export --include-private
expect_contains "$OUT" "10.0.0.8" "private address included on request"
expect_exit 0 "txt numbers" -- sp export --kind number
expect_eq "$OUT" "$(printf '046500729221\n441234')" "txt numbers"
expect_exit 0 "txt --source local" -- sp export --source local --kind all
expect_eq "$OUT" "$(printf '198.51.100.23\n203.0.113.5\n441234')" "local source"
expect_exit 0 "txt --source peers" -- sp export --source peers
expect_eq "$OUT" "$(printf '198.51.100.23\n2001:db8::5')" "peers source"
expect_exit 0 "txt --since 1h" -- sp export --since 1h
expect_eq "$OUT" "" "--since 1h: nothing that recent"
expect_exit 0 "txt --since 3h" -- sp export --since 3h
expect_contains "$OUT" "203.0.113.5" "--since 3h keeps recent records"

if command -v jq >/dev/null; then
	expect_exit 0 "json" -- sp export --format json
	expect_eq "$(printf '%s' "$OUT" | jq length)" "5" "json: one array of 5 records"
	expect_exit 0 "jsonl" -- sp export --format jsonl
	expect_eq "$(printf '%s\n' "$OUT" | jq -c . | wc -l)" "5" "jsonl: 5 valid lines"
else
	skip "jq not installed: json not validated"
fi

expect_exit 0 "csv" -- sp export --format csv
python3 - "$TMP/out" <<'PY' && pass "csv parses with 11 columns on every row" || fail "csv does not parse"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
assert rows[0][:3] == ['kind', 'value', 'first_seen'], rows[0]
assert len(rows) == 6 and all(len(r) == 11 for r in rows), rows
assert any(r[10] == 'PolycomSoundPointIP, "quoted"' for r in rows), rows
PY

expect_exit 0 "crowdsec" -- sp export --format crowdsec
expect_contains "$OUT" "duration,scope,value" "crowdsec header"
ROWS=$(tail -n +2 <<<"$OUT")
grep -Eqv '^[0-9]+s,Ip,[0-9a-f:.]+$' <<<"$ROWS" && fail "crowdsec rows malformed" || pass "crowdsec rows: duration,Ip,address"

expect_exit 0 "nft" -- sp export --format nft --output "$TMP/bl.nft"
if [ "$(id -u)" = 0 ] && command -v nft >/dev/null && unshare -n true 2>/dev/null; then
	expect_exit 0 "nft -c accepts the file" -- unshare -n nft -c -f "$TMP/bl.nft"
	# load it twice for real in a private namespace: atomic, repeatable, timeouts set
	expect_exit 0 "nft -f loads it (twice)" -- unshare -n sh -c "nft -f '$TMP/bl.nft' && nft -f '$TMP/bl.nft' && nft list set inet sentrypeer sentrypeer_v4 && nft list set inet sentrypeer sentrypeer_v6"
	expect_contains "$OUT" "203.0.113.5 timeout" "v4 set holds the address with a timeout"
	expect_contains "$OUT" "2001:db8::5 timeout" "v6 set holds the address"
	grep -q '10.0.0.8' <<<"$OUT" && fail "private address in nft set" || pass "no private address in nft set"
else
	skip "nft -c needs root, nft and unshare"
fi

expect_exit 0 "ipset" -- sp export --format ipset --output "$TMP/bl.ipset"
if [ "$(id -u)" = 0 ] && command -v ipset >/dev/null && unshare -n ipset list >/dev/null 2>&1; then
	expect_exit 0 "ipset restore loads it (twice)" -- unshare -n sh -c "ipset restore -f '$TMP/bl.ipset' && ipset restore -f '$TMP/bl.ipset' && ipset list sentrypeer-v4 && ipset list sentrypeer-v6"
	expect_contains "$OUT" "203.0.113.5 timeout" "ipset v4 holds the address"
	expect_contains "$OUT" "2001:db8::5 timeout" "ipset v6 holds the address"
else
	skip "ipset restore needs root, ipset and the ip_set kernel module"
	grep -Eq '^add sentrypeer-v4-new 203\.0\.113\.5 timeout [0-9]+ -exist$' "$TMP/bl.ipset" && pass "ipset lines well formed" || fail "ipset lines malformed"
fi

# --output is atomic: an old file stays whole until the new one is complete
echo "old" >"$TMP/list.txt"
expect_exit 0 "export --output" -- sp export --output "$TMP/list.txt"
expect_eq "$(cat "$TMP/list.txt")" "$(printf '198.51.100.23\n2001:db8::5\n203.0.113.5')" "file holds the export"
expect_eq "$(ls "$TMP" | grep -c 'list.txt.tmp' || true)" "0" "no temporary file left"
expect_exit 2 "export into a missing directory" -- sp export --output "$TMP/nodir/list.txt"
expect_contains "$ERR" "cannot write" "unwritable output explained"
finish
