# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Version, help, docs that must match the settings table, and bad usage.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "--version" -- sp --version
expect_contains "$OUT" "sentrypeer 0." "--version prints the version"
expect_exit 0 "version" -- sp version
expect_exit 0 "-V (upstream)" -- sp -V
expect_exit 0 "help" -- sp help
for c in run lookup export import stats version help; do
	expect_contains "$OUT" "  $c " "help lists $c"
done
expect_exit 0 "help run" -- sp help run
for f in --retention --db-file --json-log --sip-responsive --api --bootstrap --no-share --peer-to-peer -f -j -l -p -b -a -r -R -s -v -d -w; do
	expect_contains "$OUT" "$f" "help run shows $f"
done
expect_exit 0 "help export" -- sp help export
expect_contains "$OUT" "--format" "help export shows --format"
expect_exit 0 "lookup --help" -- sp lookup --help
expect_contains "$OUT" "--json" "lookup --help shows --json"

# the committed example config and man page follow the settings table
expect_exit 0 "help config" -- sp help config
if [ -n "${SOURCE_ROOT:-}" ]; then
	if sp help config | cmp -s - "$SOURCE_ROOT/docs/sentrypeer.conf.example"; then
		pass "docs/sentrypeer.conf.example is what 'sentrypeer help config' prints"
	else
		fail "docs/sentrypeer.conf.example is stale: regenerate with 'sentrypeer help config'"
	fi
	sed 's/\\-/-/g' "$SOURCE_ROOT/docs/sentrypeer.1" >"$TMP/man.txt" # roff escapes its dashes
	while read -r name env; do
		grep -qF -- "--$name" "$TMP/man.txt" && grep -qF -- "$env" "$TMP/man.txt" \
			&& pass "man page documents --$name and $env" || fail "man page lacks --$name or $env"
	done < <(sp help settings)
fi

expect_exit 2 "unknown command" -- sp frobnicate
expect_contains "$ERR" "unknown command 'frobnicate'" "unknown command is named"
expect_exit 2 "help for an unknown command" -- sp help frobnicate
expect_exit 2 "bad duration" -- sp run --retention 7x
expect_contains "$ERR" "'7x' is not valid for retention" "bad duration is explained"
expect_exit 2 "duration below its minimum" -- sp run --retention 5s
expect_exit 2 "unknown flag" -- sp run --frobnicate
expect_contains "$ERR" "unknown option '--frobnicate'" "unknown flag is named"
expect_exit 2 "unknown short flag" -- sp run -Z
expect_exit 2 "node setting on lookup" -- sp lookup --api 1.2.3.4
expect_contains "$ERR" "only applies to 'sentrypeer run'" "scope is explained"
expect_exit 2 "bad boolean in the environment" -- env SENTRYPEER_API=maybe "$SENTRYPEER" run
expect_contains "$ERR" "environment SENTRYPEER_API" "the variable is named"
expect_exit 2 "missing value" -- sp run --map-size
expect_exit 2 "bad sync mode" -- sp run --sync sometimes
expect_contains "$ERR" "full|nometa|none" "the choices are listed"
printf 'retention = 7d\nfrobs = 3\n' >"$TMP/bad.conf"
expect_exit 2 "unknown key in config file" -- sp run --config "$TMP/bad.conf"
expect_contains "$ERR" "bad.conf:2: unknown setting 'frobs'" "config error has file and line"
expect_exit 2 "missing config file" -- sp run --config "$TMP/nope.conf"
expect_exit 2 "export: bad format" -- sp export --format xml
expect_contains "$ERR" "json, jsonl, csv, txt, nft, ipset or crowdsec" "formats are listed"
expect_exit 2 "export: bad --since" -- sp export --since soon
expect_exit 2 "export: nft of numbers" -- sp export --format nft --kind number
expect_exit 2 "export: bad --source" -- sp export --source friends
expect_exit 2 "lookup without an argument" -- sp lookup
expect_exit 2 "lookup with two arguments" -- sp lookup 1.2.3.4 5.6.7.8
expect_exit 2 "import without a file" -- sp import
finish
