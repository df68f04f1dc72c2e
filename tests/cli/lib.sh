# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Shared by the CLI tests: a private data directory, and assertions that
# say what failed. Every test runs the real binary ($SENTRYPEER).
set -euo pipefail

: "${SENTRYPEER:?set SENTRYPEER to the sentrypeer binary}"
TMP=$(mktemp -d /tmp/sp-cli-test.XXXXXX)
export SENTRYPEER_DATA_DIR="$TMP/data"
export SENTRYPEER_CONFIG=""   # never read the host's /etc/sentrypeer
# Never the public DHT: no bootstrap node, a private network id, any port.
# DHT tests name their own loopback bootstrap nodes.
export SENTRYPEER_BOOTSTRAP_NODE=none
export SENTRYPEER_DHT_NETWORK=$((RANDOM * 32768 + RANDOM + 1))
export SENTRYPEER_DHT_PORT=0
FAILS=0
PASSES=0
cleanup() {
	local pids
	pids=$(jobs -p) || true
	[ -n "$pids" ] && kill $pids 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

sp() { "$SENTRYPEER" "$@"; }

pass() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }

# expect_exit CODE DESCRIPTION -- command...   (stdout in $OUT, stderr in $ERR)
expect_exit() {
	local want=$1 what=$2
	shift 3
	local rc=0
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
	if [ "$rc" = "$want" ]; then
		pass "$what (exit $rc)"
	else
		fail "$what: exit $rc, wanted $want; stdout: ${OUT:0:400}; stderr: ${ERR:0:400}"
	fi
}

expect_contains() { # HAYSTACK NEEDLE DESCRIPTION
	# a here-string, not a pipe: grep -q exits at the first match, and under
	# pipefail the writer's SIGPIPE would turn a match into a failure
	if grep -qF -- "$2" <<<"$1"; then pass "$3"; else fail "$3: '${1:0:400}' lacks '$2'"; fi
}

expect_eq() { # GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then pass "$3"; else fail "$3: got '${1:0:400}', wanted '${2:0:400}'"; fi
}

skip() { echo "SKIP - $*"; }

wait_file_has() { # FILE TEXT SECONDS: poll until FILE contains TEXT
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

finish() {
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

# A jsonl fixture with timestamps relative to now (GNU date).
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.000000000Z; }
make_fixture() {
	local f=$1 d1 d2 fut
	d1=$(iso '-1 day'); d2=$(iso '-2 hours'); fut=$(iso '+3 days')
	cat >"$f" <<JSON
{"kind":"ip","key":"203.0.113.5","methods":["INVITE","OPTIONS"],"transports":["UDP"],"user_agents":["friendly-scanner"],"reports":[{"reporter":"local","first_seen":"$d1","last_seen":"$d2","count":42}]}
{"kind":"ip","key":"2001:db8::5","methods":["REGISTER"],"transports":["TCP"],"user_agents":["sipvicious"],"reports":[{"reporter":"a1b2c3","first_seen":"$d1","last_seen":"$d2","count":3,"expires":"$fut"}]}
{"kind":"ip","key":"198.51.100.23","methods":["INVITE"],"transports":["UDP","TLS"],"user_agents":["PolycomSoundPointIP, \"quoted\""],"reports":[{"reporter":"local","first_seen":"$d1","last_seen":"$d2","count":1},{"reporter":"ffee01","first_seen":"$d1","last_seen":"$d2","count":5,"expires":"$fut"}]}
{"kind":"ip","key":"10.0.0.8","reports":[{"reporter":"local","first_seen":"$d1","last_seen":"$d2","count":2}]}
{"kind":"ip","key":"203.0.113.99","reports":[{"reporter":"local","first_seen":"$(iso '-10 days')","last_seen":"$(iso '-9 days')","count":2}]}
{"kind":"number","key":"441234","methods":["INVITE"],"raw_forms":["+441234","00441234"],"reports":[{"reporter":"local","first_seen":"$d1","last_seen":"$d2","count":7}]}
{"kind":"number","key":"046500729221","methods":["INVITE"],"reports":[{"reporter":"a1b2c3","first_seen":"$d1","last_seen":"$d2","count":4,"expires":"$fut"}]}
JSON
}
