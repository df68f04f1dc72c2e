# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Shared by the SIP tests, sourced after lib.sh:
#
# - the whole test re-runs itself in a private network namespace (only a
#   loopback interface: nothing can reach or be reached from outside, and
#   fixed ports cannot collide with anything); set SIP_UNSHARE_MOUNT=1
#   before sourcing to get a private mount namespace too;
# - starting and stopping nodes, each with its own data directory;
# - the node's counters (sentrypeer stats --json), polled with a deadline;
# - pyrun: a python3 check whose "ok - " / "FAIL - " lines count as ours.
#
# Every wait here has a deadline.

SIP_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SOURCE_ROOT:=$(cd "$SIP_TEST_DIR/../.." && pwd)}"

if [ -z "${SP_SIP_NETNS:-}" ]; then
	ns=(-n)
	[ "${SIP_UNSHARE_MOUNT:-0}" = 1 ] && ns+=(-m --propagation private)
	if [ "$(id -u)" != 0 ] || ! unshare "${ns[@]}" true 2>/dev/null; then
		skip "$(basename "$0"): needs root and 'unshare ${ns[*]}' (util-linux) for a private network namespace"
		finish
		exit 77 # meson: skipped
	fi
	for tool in ip python3; do
		if ! command -v "$tool" >/dev/null; then
			skip "$(basename "$0"): $tool is not installed"
			finish
			exit 77
		fi
	done
	rc=0
	SP_SIP_NETNS=1 SOURCE_ROOT="$SOURCE_ROOT" unshare "${ns[@]}" -- bash "$0" "$@" || rc=$?
	exit "$rc" # the EXIT trap removes this (unused) copy's $TMP
fi
ip link set lo up

# ---- nodes -----------------------------------------------------------------

NODE_PID=
NODE_DIR=
NODE_LOG=

# start_node NAME ARGS...: sentrypeer run with data directory $TMP/NAME,
# output in $TMP/NAME.log; waits until the SIP listeners run.
start_node() {
	local name=$1
	shift
	NODE_DIR="$TMP/$name"
	NODE_LOG="$TMP/$name.log"
	"$SENTRYPEER" run --data-dir "$NODE_DIR" --no-share "$@" >"$NODE_LOG" 2>&1 &
	NODE_PID=$!
	if wait_file_has "$NODE_LOG" "SIP honeypot running" 15; then
		pass "node $name started ($*)"
	else
		fail "node $name did not start ($*): $(tail -c 2000 "$NODE_LOG")"
		return 1
	fi
}

# stop_node: SIGTERM, then wait (bounded) for a clean exit.
stop_node() {
	local rc=0 i
	[ -n "$NODE_PID" ] || return 0
	kill -TERM "$NODE_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$NODE_PID" 2>/dev/null; then
		fail "node did not stop within 20 s of SIGTERM"
		kill -KILL "$NODE_PID" 2>/dev/null || true
	fi
	wait "$NODE_PID" || rc=$?
	NODE_PID=
	if [ "$rc" = 0 ] && grep -qF "stopped cleanly" "$NODE_LOG"; then
		pass "node stopped cleanly"
	else
		fail "node exit $rc on SIGTERM: $(tail -c 2000 "$NODE_LOG")"
	fi
}

node_alive() { [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; }

# ---- counters ------------------------------------------------------------------

# counter NAME [DATA_DIR]: the node's counter (0 when never counted).
counter() {
	"$SENTRYPEER" stats --json --data-dir "${2:-$NODE_DIR}" 2>/dev/null |
		python3 -c 'import json,sys
try:
    print(json.load(sys.stdin)["counters"].get(sys.argv[1], 0))
except Exception:
    print(-1)' "$1"
}

# wait_counter NAME MIN SECONDS [DATA_DIR]: poll until NAME >= MIN; the last
# value read is in $COUNTER.
wait_counter() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		COUNTER=$(counter "$1" "${4:-$NODE_DIR}")
		[ "$COUNTER" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# expect_counter NAME MIN SECONDS DESCRIPTION
expect_counter() {
	if wait_counter "$1" "$2" "$3"; then
		pass "$4 ($1 = $COUNTER)"
	else
		fail "$4: $1 = $COUNTER after $3 s, wanted >= $2"
	fi
}

# ---- python checks ---------------------------------------------------------------

# pyrun DESCRIPTION [ARGS...] <<'EOF' ... EOF: runs python3 with the script
# on stdin and tests/cli on its path (sip_client.py). Its output lines
# "ok - X" and "FAIL - X" count as passes and failures; a python error, or
# a script that reports nothing, is a failure.
pyrun() {
	local what=$1 rc=0 line n=0
	shift
	PYTHONPATH="$SIP_TEST_DIR" PYTHONDONTWRITEBYTECODE=1 python3 - "$@" >"$TMP/py.out" 2>"$TMP/py.err" || rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "${line#ok - }"; n=$((n + 1)) ;;
		"FAIL - "*) fail "${line#FAIL - }"; n=$((n + 1)) ;;
		*) echo "  $line" ;;
		esac
	done <"$TMP/py.out"
	if [ "$rc" != 0 ]; then
		fail "$what: python exit $rc: $(tail -c 1500 "$TMP/py.err")"
	elif [ "$n" = 0 ]; then
		fail "$what: no result reported"
	fi
}

# sip_options TRANSPORT HOST PORT [UA]: one OPTIONS, prints the reply's
# status line; exit 0 on 200 OK.
sip_options() {
	PYTHONPATH="$SIP_TEST_DIR" PYTHONDONTWRITEBYTECODE=1 python3 "$SIP_TEST_DIR/sip_client.py" options "$@"
}
