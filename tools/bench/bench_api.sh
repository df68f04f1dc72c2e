#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
#
# HTTP API benchmark, on loopback inside a private network namespace
# (unshare -n: nothing leaves the machine, the ports are free).
#
#   tools/bench/bench_api.sh                  # full run, about 1.5 minutes
#   tools/bench/bench_api.sh --quick          # smoke: 3 s runs, 20,000 records
#   tools/bench/bench_api.sh --seconds 20 --connections "8 64" --sip-rate 5000
#   tools/bench/bench_api.sh --sip-rate 0 --api-threads 1   # no SIP load; one API thread
#   tools/bench/bench_api.sh --repeat 5 --connections 8      # 5 runs of each; how many met
#                                                            # the target (30,000/s, p99 < 2 ms)
#   tools/bench/bench_api.sh --instructions   # instructions per lookup on the request
#                                             # thread, under callgrind (valgrind): a
#                                             # figure steal and neighbours do not move
#
# Steps (release build in build-bench/, a fresh data dir in a temp dir):
#   1. 100,000 IP addresses imported into the store (plus 100,000 numbers);
#   2. the node runs with --api (default settings: one API thread per two CPUs) and its
#      UDP honeypot on 127.0.0.1:5060;
#   3. export over HTTP of the 200,000 records (/api/v1/export?format=jsonl
#      &kind=all; txt and nft of the addresses) with curl: time, bytes, the
#      node's RSS sampled every 20 ms (VmRSS counts the store's mapped
#      pages; RssAnon is the node's own memory), and the same export by
#      `sentrypeer export`, which must give the same bytes;
#   4. while tools/bench/sip_flood sends INVITEs at --sip-rate (default
#      2,000/s), wrk (Debian wrk, one thread, keep-alive) against
#      /api/v1/ip-addresses/{ip} with each of --connections (default "8 32"),
#      over 10,000 listed addresses, then 10,000 that are not listed:
#      requests/s, the latency percentiles wrk measures, and the node's CPU
#      time per request (user+system, from /proc: steadier than req/s on a
#      shared machine);
#   5. the honeypot's side: INVITEs sent, events recorded, lost.
# wrk, the node and the load generator share the machine's CPUs.
#
# Needs root (or unprivileged user namespaces), unshare(1), ip(8), wrk,
# curl, python3. BUILD_DIR overrides the build directory.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}
quick=0
seconds=10
conns="8 32"
sip_rate=2000
api_threads=0
records=100000
repeat=1
instructions=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--seconds) seconds=$2; shift ;;
	--connections) conns=$2; shift ;;
	--sip-rate) sip_rate=$2; shift ;;
	--api-threads) api_threads=$2; shift ;;
	--repeat) repeat=$2; shift ;;
	--instructions) instructions=1 ;;
	-h | --help) sed -n '4,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_api: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $repeat in '' | *[!0-9]* | 0) echo "bench_api: --repeat wants a count of runs (1 or more)" >&2; exit 2 ;; esac
if [ "$quick" = 1 ]; then
	seconds=3
	records=20000
fi

# ---- outside the namespace: build, then run again inside one ------------
if [ "${BENCH_API_NETNS:-}" != 1 ]; then
	tools="wrk curl python3 unshare ip"
	[ "$instructions" = 1 ] && tools="$tools valgrind callgrind_annotate callgrind_control"
	for tool in $tools; do
		command -v "$tool" >/dev/null || { echo "bench_api: $tool is not installed (tools/deps.sh bench)" >&2; exit 2; }
	done
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" --buildtype=release -Dtests=false >&2
	fi
	ninja -C "$build" >&2
	export BENCH_API_NETNS=1 BENCH_QUICK=$quick BENCH_SECONDS=$seconds BENCH_CONNS="$conns" \
		BENCH_SIP_RATE=$sip_rate BENCH_RECORDS=$records BENCH_API_THREADS=$api_threads \
		BENCH_REPEAT=$repeat BENCH_INSTRUCTIONS=$instructions
	if [ "$(id -u)" = 0 ]; then
		exec unshare -n sh "$0"
	fi
	exec unshare -rn env SENTRYPEER_USER= sh "$0"
fi

# ---- inside the namespace ---------------------------------------------------
ip link set lo up
export SENTRYPEER_CONFIG= # a config file must not change the node
quick=$BENCH_QUICK
seconds=$BENCH_SECONDS
conns=$BENCH_CONNS
sip_rate=$BENCH_SIP_RATE
records=$BENCH_RECORDS
api_threads=$BENCH_API_THREADS
repeat=$BENCH_REPEAT
instructions=$BENCH_INSTRUCTIONS

sp="$build/src/sentrypeer"
flood="$build/tools/bench/sip_flood"
api=http://127.0.0.1:8082
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_api.XXXXXX")
node_pid=
flood_pid=

cleanup() {
	for p in $flood_pid $node_pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

die() {
	echo "bench_api: $*" >&2
	exit 2
}

now_ms() { date +%s%3N; }
calc() { awk -v a="${2:-0}" -v b="${3:-0}" -v c="${4:-0}" "BEGIN { $1 }"; }

# "rss anon" in kB from /proc/PID/status
mem() {
	awk '$1 == "VmRSS:" { r = $2 } $1 == "RssAnon:" { a = $2 } END { print r + 0, a + 0 }' \
		"/proc/$1/status"
}

# a metric's value from /metrics (0 when absent)
metric() {
	curl -s "$api/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1; exit } END { if (!found) print 0 }'
}

# ---- the data -----------------------------------------------------------------
echo "bench_api: $records addresses and $records numbers, listed; 10,000 of each kind to look up" >&2
python3 - "$work" "$records" <<'PY'
import json, random, sys, time
work, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20261127)
now = time.time()
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000000000Z"
def public_v4():
    while True:
        a = rnd.randrange(1, 224)
        if a in (10, 127, 100, 169, 172, 192, 198, 203):
            continue
        return "%d.%d.%d.%d" % (a, rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
listed = set()
while len(listed) < n:
    listed.add(public_v4() if rnd.random() < 0.9 else
               "2001:db8:%x:%x::%x" % (rnd.randrange(65536), rnd.randrange(65536), rnd.randrange(1, 65536)))
listed = sorted(listed)
unlisted = set()
while len(unlisted) < 10000:
    a = public_v4()
    if a not in listed:
        unlisted.add(a)
uas = ["friendly-scanner", "sipvicious", "sipcli/v1.8", "VaxSIPUserAgent/3.1", "pplsip"]
with open(work + "/records.jsonl", "w") as f:
    for i, ip in enumerate(listed):
        last = now - rnd.randrange(60, 5 * 86400)
        rep = {"reporter": "local", "first_seen": iso(last - 3600), "last_seen": iso(last),
               "count": rnd.randrange(1, 500)}
        f.write(json.dumps({"kind": "ip", "key": ip, "methods": ["INVITE", "REGISTER"],
                            "transports": ["UDP"], "user_agents": [uas[i % 5]],
                            "reports": [rep]}) + "\n")
    for i in range(n):
        last = now - rnd.randrange(60, 5 * 86400)
        num = "44%010d" % rnd.randrange(10 ** 10) if i % 2 else "%d" % (46500000000 + i)
        rep = {"reporter": "local", "first_seen": iso(last - 3600), "last_seen": iso(last),
               "count": rnd.randrange(1, 50)}
        f.write(json.dumps({"kind": "number", "key": num, "methods": ["INVITE"],
                            "reports": [rep]}) + "\n")
sample = rnd.sample(listed, 10000)
for name, keys in (("listed", sample), ("unlisted", sorted(unlisted))):
    with open("%s/%s.txt" % (work, name), "w") as f:
        f.write("\n".join(keys) + "\n")
PY
"$sp" import --data-dir "$work/data" "$work/records.jsonl" >&2 || die "import failed"

cat >"$work/paths.lua" <<'LUA'
-- one request per key, prepared once; each connection starts somewhere else
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("GET", "/api/v1/ip-addresses/" .. line)
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
LUA

# wait up to $1 seconds for the node's API (node_pid, log)
wait_api() {
	i=0
	until grep -q "HTTP API listening" "$log" 2>/dev/null; do
		i=$((i + 1))
		{ [ $i -gt $(($1 * 20)) ] || ! kill -0 "$node_pid" 2>/dev/null; } &&
			{ cat "$log" >&2; die "the node did not start"; }
		sleep 0.05
	done
}

# ---- --instructions: the request thread's instructions per lookup ------------------
# Valgrind runs the node one thread at a time, about 50 times slower, so
# this counts work, not time: the same on a quiet or a busy machine.
if [ "$instructions" = 1 ]; then
	log="$work/node.log"
	# as the user running this: valgrind talks to callgrind_control through files in $work
	SENTRYPEER_USER= valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.out" \
		"$sp" run --data-dir "$work/data" --no-share -a --api-threads 1 --sweep-interval 1d \
		--sip-address 127.0.0.1 --sip-port 5060 --no-sip-tcp --no-sip-tls >"$log" 2>&1 &
	node_pid=$!
	wait_api 60
	printf '\nInstructions per lookup on the API thread (callgrind), %s addresses in the store,\n' "$records"
	printf '/api/v1/ip-addresses/{ip}, wrk -t1 -c2 for %ss under valgrind\n' "$seconds"
	printf '%-9s %9s %14s %12s\n' keys requests instructions "per lookup"
	for name in listed unlisted; do
		wrk -t1 -c2 -d2s -s "$work/paths.lua" "$api" -- "$work/$name.txt" >/dev/null 2>&1 || true # warm up
		rm -f "$work"/cg.out.*
		callgrind_control -z "$node_pid" >/dev/null 2>&1 || die "callgrind_control -z failed"
		wrk -t1 -c2 -d"${seconds}s" -s "$work/paths.lua" "$api" -- "$work/$name.txt" >"$work/$name.wrk" 2>&1 ||
			{ cat "$work/$name.wrk" >&2; die "wrk failed"; }
		callgrind_control -d "$node_pid" >/dev/null 2>&1 || die "callgrind_control -d failed"
		n=$(awk '/requests in/ { print $1; exit }' "$work/$name.wrk")
		ir=
		for f in "$work"/cg.out.*; do
			# the thread that served: the one whose calls include on_request
			callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -q ':on_request ' || continue
			ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
		done
		[ -n "$ir" ] && [ "${n:-0}" -gt 0 ] || die "no request thread in the callgrind output"
		printf '%-9s %9s %14s %12s\n' "$name" "$n" "$ir" "$((ir / n))"
	done
	exit 0
fi

# ---- the node, the honeypot under load --------------------------------------------
log="$work/node.log"
"$sp" run --data-dir "$work/data" --no-share -a --api-threads "$api_threads" \
	--sip-address 127.0.0.1 --sip-port 5060 --no-sip-tcp --no-sip-tls >"$log" 2>&1 &
node_pid=$!
wait_api 10

# ---- export over HTTP ---------------------------------------------------------------
# RSS sampled while curl downloads; peak VmRSS includes the store's mapped
# pages (shared, file-backed), RssAnon is the node's own memory
export_run() { # NAME QUERY
	before=$(mem "$node_pid")
	peak_rss=0
	peak_anon=0
	t0=$(now_ms)
	curl -s -o "$work/$1.out" -w '%{http_code} %{size_download}\n' "$api/api/v1/export?$2" >"$work/$1.curl" &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null; do
		set -- "$1" "$2" $(mem "$node_pid")
		[ "$3" -gt "$peak_rss" ] && peak_rss=$3
		[ "$4" -gt "$peak_anon" ] && peak_anon=$4
		sleep 0.02
	done
	wait "$cpid" || die "curl failed"
	ms=$(($(now_ms) - t0))
	read -r code bytes <"$work/$1.curl"
	[ "$code" = 200 ] || die "export $1: HTTP $code"
	lines=$(wc -l <"$work/$1.out")
	set -- $before
	printf '%-22s %9s %8s %10s %12s %10s %12s %12s\n' "$name" "$lines" "$ms" \
		"$(calc 'printf "%.0f", a * 1000 / b' "$lines" "$ms")" "$(calc 'printf "%.1f", a / 1048576' "$bytes")" \
		"$(calc 'printf "%.1f", a / 1024' "$1")" "$(calc 'printf "%.1f", a / 1024' "$peak_rss")" \
		"$(calc 'printf "%+.1f", (a - b) / 1024' "$peak_anon" "$2")"
}
printf '\nexport over HTTP (curl), %s records in the store\n' "$((records * 2))"
printf '%-22s %9s %8s %10s %12s %10s %12s %12s\n' export lines ms "lines/s" MiB "RSS MiB" "peak RSS" \
	"anon +MiB"
name="jsonl, kind=all"
export_run jsonl "format=jsonl&kind=all"
name="txt (addresses)"
export_run txt "format=txt"
name="nft (addresses)"
export_run nft "format=nft"
# the same by the CLI, for comparison (and the bytes must be the same)
t0=$(now_ms)
"$sp" export --data-dir "$work/data" --format jsonl --kind all >"$work/cli.out"
cli_ms=$(($(now_ms) - t0))
if cmp -s "$work/cli.out" "$work/jsonl.out"; then same=identical; else same=DIFFERENT; fi
printf 'sentrypeer export --format jsonl --kind all: %s ms, output %s to the HTTP export\n' "$cli_ms" "$same"

# ---- lookups while the honeypot records -------------------------------------------
nconn=$(echo $conns | wc -w)
flood_secs=$(((seconds * 2 * nconn + 2 * nconn) * repeat + 4))
if [ "$sip_rate" -gt 0 ]; then
	"$flood" udp --target 127.0.0.1:5060 --rate "$sip_rate" --seconds "$flood_secs" --sources 200 \
		>"$work/flood.out" 2>&1 &
	flood_pid=$!
	sleep 1
else
	: >"$work/flood.out"
fi

# node CPU time so far, in clock ticks
node_ticks() { awk '{ print $14 + $15 }' "/proc/$node_pid/stat"; }
# time the hypervisor ran something else while this machine's CPUs had
# work (/proc/stat "steal", clock ticks, all CPUs): in a VM this takes from
# what wrk and the node get, and is not theirs to fix
steal_ticks() { awk '$1 == "cpu" { print $9; exit }' /proc/stat; }
hz=$(getconf CLK_TCK)

# wrk: one thread (the machine has two CPUs for everything)
run_wrk() { # NAME KEYFILE CONNECTIONS
	wrk -t1 -c"$3" -d1s -s "$work/paths.lua" "$api" -- "$2" >/dev/null 2>&1 || true # warm up
	t0=$(node_ticks)
	s0=$(steal_ticks)
	wrk -t1 -c"$3" -d"${seconds}s" --latency -s "$work/paths.lua" "$api" -- "$2" >"$work/$1.wrk" 2>&1 ||
		{ cat "$work/$1.wrk" >&2; die "wrk failed"; }
	echo $(($(node_ticks) - t0)) >"$work/$1.ticks"
	echo $(($(steal_ticks) - s0)) >"$work/$1.steal"
}

# wrk's latency: "50%   95.00us" -> microseconds
to_us() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
	if (u == "ms") v *= 1000; else if (u == "s") v *= 1000000; printf "%.0f", v }'; }
wrk_pct() { to_us "$(awk -v p="$1" '$1 == p { print $2; exit }' "$2")"; }
wrk_max() { to_us "$(awk '$1 == "Latency" { print $4; exit }' "$1")"; }
wrk_rps() { awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$1"; }
wrk_reqs() { awk '/requests in/ { print $1; exit }' "$1"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ { print $NF; f = 1 } END { if (!f) print 0 }' "$1"; }
wrk_errors() { awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print; f = 1 } END { if (!f) print "none" }' "$1"; }

printf '\nHTTP API lookups: %s addresses in the store, /api/v1/ip-addresses/{ip}, wrk -t1 -d%ss keep-alive,\n' \
	"$records" "$seconds"
printf '%s API threads (0: one per two CPUs), the honeypot recording %s INVITEs/s meanwhile\n' "$api_threads" "$sip_rate"
printf '(steal: CPU time the hypervisor gave to other machines meanwhile, in %% of one CPU)\n'
printf '%-9s %5s %9s %8s %7s %7s %7s %8s %8s %6s %9s  %s\n' keys conns requests "req/s" "p50 us" "p90 us" \
	"p99 us" "max us" "cpu us" "steal%" "non-2xx" "socket errors"
: >"$work/runs"
for r in $(seq "$repeat"); do
for c in $conns; do
	for name in listed unlisted; do
		run_wrk "$name-$c" "$work/$name.txt" "$c"
		f="$work/$name-$c.wrk"
		steal=$(calc 'printf "%.0f", a * 100 / b / c' "$(cat "$work/$name-$c.steal")" "$hz" "$seconds")
		echo "$name $c $(wrk_rps "$f") $(wrk_pct 99% "$f") $steal" >>"$work/runs"
		reqs=$(wrk_reqs "$f")
		printf '%-9s %5s %9s %8s %7s %7s %7s %8s %8s %6s %9s  %s\n' "$name" "$c" "$reqs" "$(wrk_rps "$f")" \
			"$(wrk_pct 50% "$f")" "$(wrk_pct 90% "$f")" "$(wrk_pct 99% "$f")" "$(wrk_max "$f")" \
			"$(calc 'printf "%.1f", a * 1000000 / b / c' "$(cat "$work/$name-$c.ticks")" "$hz" "$reqs")" \
			"$steal" "$(wrk_non2xx "$f")" "$(wrk_errors "$f")"
	done
done
done
if [ "$repeat" -gt 1 ]; then
	printf '\ntarget: at least 30,000 requests/s with p99 under 2 ms; runs that met it, of %s\n' "$repeat"
	for c in $conns; do
		for name in listed unlisted; do
			awk -v n="$name" -v c="$c" '$1 == n && $2 == c {
				runs++; if ($3 >= 30000 && $4 < 2000) met++
				if ($5 < 5) { calm++; if ($3 >= 30000 && $4 < 2000) calm_met++ }
				steals = steals (steals == "" ? "" : " ") $5
			} END {
				printf "%-9s %5s connections: met in %d of %d; runs with steal under 5%%: met in %d of %d (steal%% per run: %s)\n",
					n, c, met, runs, calm_met, calm, steals
			}' "$work/runs"
		done
	done
fi
[ -n "$flood_pid" ] && { wait "$flood_pid" || true; }
flood_pid=
sent=$(awk '$1 == "sent:" { print $2; exit }' "$work/flood.out")
sleep 2 # the writer commits what is queued
curl -s "$api/metrics" >"$work/metrics"
recorded=$(awk '$1 == "sentrypeer_events_recorded_total" { print $2 }' "$work/metrics")
kernel=$(awk '/reason="udp_buffer_full"/ { print $2 }' "$work/metrics")
qfull=$(awk '/reason="queue_full"/ { print $2 }' "$work/metrics")
if [ "$sip_rate" -gt 0 ]; then
	printf 'honeypot meanwhile: %s INVITEs sent at %s/s over %s s, %s events recorded (lost: UDP buffer %s, queue %s)\n' \
		"${sent:-?}" "$sip_rate" "$flood_secs" "${recorded:-?}" "${kernel:-?}" "${qfull:-?}"
fi
