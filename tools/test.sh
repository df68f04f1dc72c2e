#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Install what is missing, then build and run every test suite twice: a
# normal build (warnings are errors) and one under AddressSanitizer and
# UndefinedBehaviorSanitizer. The last line counts both runs.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test || exit 1

passed=0 failed=0
run_suite() { # NAME BUILDDIR MESON-OPTIONS...
	local name=$1 dir=$2
	shift 2
	echo "== $name"
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; failed=$((failed + 1)); return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		cat "$dir.build.log"
		failed=$((failed + 1))
		return
	fi
	meson test -C "$dir" --print-errorlogs --num-processes 2 2>&1 | tail -n 40
	local log="$dir/meson-logs/testlog.json"
	local ok bad
	ok=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["result"] in ("OK","SKIP","EXPECTEDFAIL")))' "$log")
	bad=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["result"] not in ("OK","SKIP","EXPECTEDFAIL")))' "$log")
	passed=$((passed + ok))
	failed=$((failed + bad))
}

run_suite "tests" build-test --buildtype=debugoptimized
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_suite "tests under ASan+UBSan" build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
