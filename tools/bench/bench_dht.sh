#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
#
# DHT benchmark (issue 4): a private DHT of sentrypeer nodes on loopback,
# inside a network namespace of its own (unshare -n: no route leaves the
# machine; the script checks there is none) with a private --dht-network id.
#
#   tools/bench/bench_dht.sh            # 20 nodes, 4 min traffic windows, about 22 min
#   tools/bench/bench_dht.sh --quick    # smoke: 8 nodes, 1 min windows, about 7 min
#   tools/bench/bench_dht.sh --long     # 20 nodes, 10 min windows (each holds one
#                                       # keepalive round of the attacked node), about 50 min
#   options: --nodes N  --window SECONDS  --keep (leave the temp dir)
#
# Steps, on one network of N nodes (n0 is the bootstrap node, n1 is "A",
# the attacked node; all nodes use the default settings unless said):
#   1. event to store: an INVITE from 198.51.100.x to A's SIP port, then the
#      time until the IP is in each other node's store (read-only LMDB reads
#      every 2 ms by tools/bench/dht_probe); 20 trials, p50/p99 over every
#      trial and node;
#   2. publish throughput: a node T (one more, --dht-bandwidth 100M so the
#      budget does not limit it) gets INVITEs from many distinct IPv6
#      sources (2001:db8:b0::/64) at once; its published_records over time
#      and its CPU (utime+stime, /proc) give values/s and CPU ms per value;
#      the receivers' intake (rate limits, drops, records stored) is counted;
#   3. lookup latency, listed keys (2001:db8:c0::/64, published at 40/s by
#      one more node L, a pace loopback's storing nodes accept) and unlisted ones
#      (never reported):
#      a. dht_probe ctl: through a running node's control socket (its warm
#         DHT connection), as `sentrypeer lookup` does;
#      b. `sentrypeer lookup --refresh` processes, against `--local` ones
#         (the difference is the DHT part of what a user waits for);
#      c. dht_probe lookup: a DHT node of its own (sp_dht, no publishing, no
#         feed), timing sp_dht_lookup() right after it joined;
#      d. a. again, now that the probe node has left the network (churn);
#   4. traffic: T and the probe stopped, nftables counters per DHT port (UDP
#      sport = sent, dport = received; bytes include IP and UDP headers)
#      over windows of W seconds: idle, then 1, 10 and 100 new attacker IPs
#      a minute on A (numbers from a pool of 16), default budget (4K/s).
#      Per hour = window bytes x 3600 / W, also minus the idle window.
#      A publishes its live records again every 9.5 min (keepalive; first
#      2 min after start): a W < 570 s window holds one or none (the output
#      says which);
#      --long (W = 600 s) holds one in every window.
#
# Needs root (or unprivileged user namespaces), unshare(1), ip(8), nft(8),
# gcc, pkg-config and the -dev packages of tools/deps.sh, python3.
# BUILD_DIR overrides the build directory (default build-bench/, release).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}
quick=0
long=0
keep=0
nodes=
window=
args=("$@")
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--long) long=1 ;;
	--keep) keep=1 ;;
	--nodes) nodes=${2:?--nodes needs a number}; shift ;;
	--window) window=${2:?--window needs seconds}; shift ;;
	-h | --help) sed -n '4,45p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_dht: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# ---- outside the namespace: build, then run again inside one ---------------
if [ "${BENCH_DHT_NETNS:-}" != 1 ]; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" --buildtype=release -Dtests=false >&2
	fi
	ninja -C "$build" >&2
	if [ "$(id -u)" = 0 ]; then
		exec unshare -n env BENCH_DHT_NETNS=1 BUILD_DIR="$build" bash "$0" "${args[@]}"
	fi
	exec unshare -rn env BENCH_DHT_NETNS=1 BUILD_DIR="$build" bash "$0" "${args[@]}"
fi

# ---- inside the namespace ----------------------------------------------------
die() {
	echo "bench_dht: $*" >&2
	exit 2
}

ip link set lo up
# nothing may leave: no route but loopback's
if [ -n "$(ip -4 route show default)$(ip -6 route show default)" ] ||
	[ "$(ip -o link show | grep -vc ': lo:')" != 0 ]; then
	die "the namespace has a way out; refusing to run"
fi
# attackers: documentation addresses, local by route only (no interface has
# them, so they are not the node's own addresses and are shared)
ip route add local 198.51.100.0/24 dev lo
ip route add local 203.0.113.0/24 dev lo
ip -6 route add local 2001:db8:a0::/64 dev lo
ip -6 route add local 2001:db8:b0::/64 dev lo
ip -6 route add local 2001:db8:c0::/64 dev lo

sp="$build/src/sentrypeer"
[ -x "$sp" ] || die "no $sp"
NET=${BENCH_DHT_NETWORK:-714253}
BOOT=14200
SIP0=15060
# a config file or SENTRYPEER_* variables must not change the nodes; the
# CLI must never fall back to the public bootstrap node
for v in $(env | sed -n 's/^\(SENTRYPEER_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export SENTRYPEER_CONFIG= SENTRYPEER_DHT_NETWORK=$NET SENTRYPEER_BOOTSTRAP_NODE=127.0.0.1:$BOOT

if [ "$quick" = 1 ]; then
	N=${nodes:-8}; W=${window:-60}; SETTLE=10; TRIALS=8; NFEED=1000; FEED_RATE=2000
	NLOOK=30; NCLI=10
elif [ "$long" = 1 ]; then
	N=${nodes:-20}; W=${window:-600}; SETTLE=30; TRIALS=20; NFEED=5000; FEED_RATE=5000
	NLOOK=100; NCLI=20
else
	N=${nodes:-20}; W=${window:-240}; SETTLE=30; TRIALS=20; NFEED=5000; FEED_RATE=5000
	NLOOK=100; NCLI=20
fi
[ "$N" -ge 3 ] || die "--nodes: at least 3"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_dht.XXXXXX")
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
declare -A PID
T_IDX=$N

cleanup() {
	local n
	for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}" 2>/dev/null || true; done
	for n in "${!PID[@]}"; do wait "${PID[$n]}" 2>/dev/null || true; done
	if [ "$keep" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# ---- the helper ----------------------------------------------------------------
probe="$work/dht_probe"
gcc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -Wvla -Wformat=2 -Wno-unused-parameter \
	-I"$build" -I"$root/common" -I"$root/store" -I"$root/dht" -I"$root/tools/bench" \
	-o "$probe" "$root/tools/bench/dht_probe.c" \
	"$build/dht/libspdht.a" "$build/store/libspstore.a" "$build/common/libspcommon.a" \
	$(pkg-config --cflags --libs opendht-c gnutls msgpack lmdb) -lpthread ||
	die "cannot build dht_probe (needs the -dev packages of tools/deps.sh)"

# ---- small helpers ---------------------------------------------------------------
now_ms() { date +%s%3N; }
calc() { awk "BEGIN { $1 }"; }
ticks() { # utime+stime of a process, clock ticks
	local f
	if read -r -a f <"/proc/$1/stat" 2>/dev/null; then echo $((f[13] + f[14])); else echo 0; fi
}
machine_busy() { # busy and total jiffies of the whole machine
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
stamp() { echo "[$(date -u +%H:%M:%S)] load $(loadavg)"; }

# node NAME IDX ARGS...: a sharing node with its own ports and data dir
node() {
	local name=$1 i=$2
	shift 2
	"$sp" run --data-dir "$work/$name" --user "" --sip-address 127.0.0.1 \
		--sip-port $((SIP0 + i)) --no-sip-tcp --no-sip-tls --dht-port $((BOOT + i)) \
		--dht-network "$NET" "$@" >>"$work/$name.log" 2>&1 &
	PID[$name]=$!
}
wait_log() { # NAME TEXT SECONDS
	local k
	for ((k = 0; k < $3 * 10; k++)); do
		grep -qF "$2" "$work/$1.log" 2>/dev/null && return 0
		kill -0 "${PID[$1]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
stop_node() { # NAME: SIGTERM, wait (30 s at most)
	local name=$1 pid=${PID[$1]} k
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((k = 0; k < 300; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "WARNING: node $name did not stop within 30 s of SIGTERM: killed"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "PID[$name]"
}
# "NAME VALUE..." lines from `sentrypeer stats --json`, fields as dotted
# paths (node.dht.published_records, events.count, counters.X, ...)
dht_fields() { # FIELDS NAME...
	local fields=$1 n
	shift
	for n in "$@"; do
		printf '%s ' "$n"
		"$sp" stats --json --data-dir "$work/$n" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("unavailable"); sys.exit(0)
out = []
for f in sys.argv[1].split(","):
    v = d
    for p in f.split("."):
        v = v.get(p) if isinstance(v, dict) else None
    out.append(str(v).lower() if v is not None else "-")
print(" ".join(out))' "$fields"
	done
}
num() { case $1 in '' | *[!0-9]*) echo 0 ;; *) echo "$1" ;; esac; }
alive() { # NAME...: die when a node is gone (something outside this script may kill it)
	local n
	for n in "$@"; do
		kill -0 "${PID[$n]}" 2>/dev/null ||
			die "node $n is gone at $(date -u +%H:%M:%S): $(tail -n 3 "$work/$n.log" | tr '\n' ' ')"
	done
}
sum_field() { # FIELD NAME...: the sum over nodes
	dht_fields "$1" "${@:2}" | awk '{ s += $2 } END { print s + 0 }'
}
ring() { local i; for ((i = 0; i < N; i++)); do printf 'n%d ' "$i"; done; }

# nftables: a counter per DHT port and direction (every packet on loopback
# passes the output hook once)
nft_setup() {
	local i p
	nft add table inet spbench
	nft add chain inet spbench out '{ type filter hook output priority 0; policy accept; }'
	for ((i = 0; i <= N + 1; i++)); do
		p=$((BOOT + i))
		nft add rule inet spbench out udp sport $p counter
		nft add rule inet spbench out udp dport $p counter
	done
}
nft_snap() { # FILE: "PORT SENT RECEIVED" bytes per port
	nft list chain inet spbench out | awk '
		/udp (sport|dport) [0-9]+ counter/ {
			for (i = 1; i <= NF; i++) { if ($i == "sport" || $i == "dport") { d = $i; p = $(i + 1) }
						     if ($i == "bytes") b = $(i + 1) }
			if (d == "sport") s[p] = b; else r[p] = b; ps[p] = 1 }
		END { for (p in ps) print p, s[p] + 0, r[p] + 0 }' | sort -n >"$1"
}

# ---- the machine -------------------------------------------------------------------
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "machine: $ncpu CPUs (nproc), ${model:-unknown CPU}, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, temp dir on $(stat -f -c %T "$work")"
echo "load average at start: $(loadavg) (every process of the machine, not only this benchmark's)"
set -- $(machine_busy); sleep 1; set -- "$@" $(machine_busy)
echo "background: $(calc "printf \"%.0f\", ($3 - $1) / ($4 - $2) * 100 * $ncpu")% of $((ncpu * 100))% busy in the second before the nodes start"
echo "node: $sp ($("$sp" version 2>/dev/null | head -n 1))"
echo "network: $N nodes in a private network namespace on 127.0.0.1, DHT network id $NET, UDP ports $BOOT..$((BOOT + N - 1)), n0 bootstrap (--bootstrap none), others --bootstrap 127.0.0.1:$BOOT; defaults otherwise (--dht-bandwidth 4K, --dht-publish-interval 5m, --sync full, --retention 7d)"
echo "settings: ${N} nodes, traffic windows ${W} s, $TRIALS event trials, $NFEED IPs at $FEED_RATE/s for the throughput node, $NLOOK+$NLOOK lookups per method"
echo

# ---- start the network ----------------------------------------------------------------
nft_setup
t_start=$(now_ms)
node n0 0 --bootstrap none
wait_log n0 "sharing over the DHT" 15 || die "n0 did not start: $(tail -c 1500 "$work/n0.log")"
# A logs at debug level: its keepalive rounds are logged there
node n1 1 --bootstrap 127.0.0.1:$BOOT --sip-address ::1 --debug
for ((i = 2; i < N; i++)); do node "n$i" "$i" --bootstrap 127.0.0.1:$BOOT; sleep 0.1; done
for n in $(ring); do
	wait_log "$n" "sharing over the DHT" 20 || die "$n did not start: $(tail -c 1500 "$work/$n.log")"
done
t_up=$(now_ms)
for n in $(ring); do
	wait_log "$n" "dht: connected" 60 || die "$n did not connect within 60 s: $(tail -c 1500 "$work/$n.log")"
done
echo "$(stamp) $N nodes started in $((t_up - t_start)) ms, all connected $(($(now_ms) - t_start)) ms after the first start"
# settle: routing tables fill, back-fill of the feed hours ends
sleep "$SETTLE"
for ((k = 0; k < 60; k++)); do
	left=$(dht_fields node.dht.backfill_hours_done,node.dht.backfill_hours_total $(ring) | awk '$2 != $3' | wc -l)
	[ "$left" = 0 ] && break
	sleep 1
done
echo "$(stamp) settled $SETTLE s; nodes with back-fill unfinished: $left"
idle_rss=$(ps -o rss= -p "${PID[n5]:-${PID[n2]}}" | tr -d ' ')
echo "idle node RSS: $((idle_rss / 1024)) MiB (one node)"
echo

alive $(ring)
# ---- 1. event on A to the record in the other stores -------------------------------------
echo "== 1. event on A (n1) to the record in the other nodes' stores, $TRIALS trials =="
dirs=("$work/n1")
for n in $(ring); do [ "$n" != n1 ] && dirs+=("$work/$n"); done
"$probe" watch $((SIP0 + 1)) "$TRIALS" 42 "${dirs[@]}" >"$work/watch.out" ||
	die "dht_probe watch failed: $(tail -n 5 "$work/watch.out")"
grep -v '^watch trial' "$work/watch.out" | sed 's/^watch /  /'
echo "  target: p50 < 2000 ms | $(stamp)"
echo "  the 3 slowest trials (by the last other store):"
grep '^watch trial' "$work/watch.out" | awk -F'last other ' '{ split($2, a, " "); print a[1], $0 }' |
	sort -rn | head -n 3 | cut -d' ' -f2- | sed 's/^watch /    /'
echo

# ---- 2. publish throughput on T -------------------------------------------------------------
echo "== 2. publish throughput: node T (one more node, --dht-bandwidth 100M), $NFEED new IPv6 attackers at $FEED_RATE/s =="
python3 - "$NFEED" >"$work/src_b0.txt" <<'EOF'
import ipaddress, sys
base = ipaddress.IPv6Address("2001:db8:b0::")
for i in range(1, int(sys.argv[1]) + 1):
    print(base + i)
EOF
node T "$T_IDX" --bootstrap 127.0.0.1:$BOOT --sip-address ::1 --dht-bandwidth 100M
t_T=$(now_ms)
wait_log T "dht: connected" 60 || die "T did not connect: $(tail -c 1500 "$work/T.log")"
sleep 5
tpid=${PID[T]}
c0=$(ticks "$tpid"); sleep 5; c1=$(ticks "$tpid")
idle_tps=$(calc "print ($c1 - $c0) / 5")
recv0=$(sum_field node.dht.records_accepted $(ring))
rl0=$(sum_field node.dht.rejected.rate_limited $(ring))
set -- $(dht_fields node.dht.published_records,node.dht.puts,node.dht.puts_failed,node.dht.publish_deferred T)
p0=$2 puts0=$3 pf0=$4 def0=$5
m0=$(machine_busy)
cpu0=$(ticks "$tpid")
t0=$(now_ms)
"$probe" feed $((SIP0 + T_IDX)) "$work/src_b0.txt" 0 "$NFEED" "$FEED_RATE" >"$work/feed_t.out" &
feed_pid=$!
last=$p0 t_last=$t0 cpu_last=$cpu0 stable=0 pub1= dur1= t_ka=
: >"$work/tput.txt"
# until every IP is published, or T's first keepalive round (2 min after its
# start) is over, 4 min at most
while :; do
	sleep 0.2
	set -- $(dht_fields node.dht.published_records T)
	p=$(num "$2") tn=$(now_ms)
	echo "$((tn - t0)) $((p - p0))" >>"$work/tput.txt"
	if [ "$p" != "$last" ]; then
		[ -n "$pub1" ] && [ -z "$t_ka" ] && t_ka=$((tn - 200))
		last=$p t_last=$tn cpu_last=$(ticks "$tpid") stable=0
	else
		stable=$((stable + 1))
	fi
	kill -0 "$feed_pid" 2>/dev/null && continue
	# the first pass is over after 3 s without a publish
	[ -z "$pub1" ] && [ "$stable" -ge 15 ] && pub1=$((last - p0)) dur1=$((t_last - t0))
	[ $((p - p0)) -ge $((NFEED + 16)) ] && [ "$stable" -ge 5 ] && break
	[ "$stable" -ge 50 ] && [ "$tn" -gt $((t_T + 150000)) ] && break
	[ $((tn - t0)) -gt 240000 ] && break
done
wait "$feed_pid" || true
m1=$(machine_busy)
set -- $(dht_fields node.dht.published_records,node.dht.puts,node.dht.puts_failed,node.dht.publish_deferred,node.dht.published_batches,node.dht.puts_ok T)
pub=$(($2 - p0)) puts=$(($3 - puts0)) pfail=$(($4 - pf0)) deferred=$(($5 - def0)) batches=$6 putsok=$7
dur=$((t_last - t0))
cpu_ticks=$((cpu_last - cpu0))
echo "  $(cat "$work/feed_t.out" | sed 's/^feed: //') (to T's SIP port)"
: "${pub1:=$pub}" "${dur1:=$dur}"
echo "  first pass (new keys, published within a second of their event): $pub1 record values in $dur1 ms from the first INVITE: $(calc "printf \"%.0f\", $pub1 / ($dur1 > 0 ? $dur1 : 1) * 1000") values/s"
if [ -n "$t_ka" ]; then
	echo "  then T's first keepalive round (2 min after its start): $((pub - pub1)) more in $((t_last - t_ka)) ms (sampled every 0.2 s): $(calc "printf \"%.0f\", ($pub - $pub1) / (($t_last - $t_ka) > 0 ? ($t_last - $t_ka) : 1) * 1000") values/s"
fi
echo "  in all: $pub record values (and $batches feed batches) by $dur ms after the first INVITE"
echo "  T's puts: $puts started, $pfail failed so far (puts_ok $putsok), publish_deferred +$deferred"
echo "  T's CPU from the first INVITE to the last publish: $(calc "printf \"%.0f\", $cpu_ticks * 1000 / $hz") ms (idle rate $(calc "printf \"%.1f\", $idle_tps * 1000 / $hz") ms/s), $(calc "printf \"%.2f\", ($cpu_ticks - $idle_tps * $dur / 1000) * 1000 / $hz / ($pub > 0 ? $pub : 1)") CPU ms per value above idle (SIP intake, store, signing, OpenDHT puts: all of T)"
set -- $m0 $m1
echo "  machine busy $(calc "printf \"%.0f\", ($3 - $1) / ($4 - $2) * 100 * $ncpu")% of $((ncpu * 100))% meanwhile (all $((N + 1)) nodes and everything else on the machine) | $(stamp)"
echo "  published over time (ms since the first INVITE: values, where it changed): $(awk '$2 != prev { printf "%s:%s ", $1, $2; prev = $2 }' "$work/tput.txt" | head -c 700)"
if [ "$pub" -lt "$NFEED" ]; then
	set -- $(dht_fields events.count,ip_addresses.local T)
	echo "  NOTE: T published fewer record values ($pub) than it got new IPs ($NFEED); its store has $2 events, $3 local IPs"
fi
if [ "$pub1" -lt "$NFEED" ]; then
	echo "  NOTE: the first pass missed $((NFEED - pub1)) of the $NFEED new IPs (their aggregates were not in the store yet when the publisher"
	echo "        looked; they wait for the next keepalive round)"
fi
sleep 10
recv1=$(sum_field node.dht.records_accepted $(ring))
rl1=$(sum_field node.dht.rejected.rate_limited $(ring))
drop=$(sum_field counters.dht_records_dropped $(ring) 2>/dev/null)
got=$("$sp" export --source peers --format txt --data-dir "$work/n2" 2>/dev/null | grep -c '^2001:db8:b0:' || true)
echo "  receivers (the $N ring nodes), 10 s after: records accepted +$((recv1 - recv0)) (of $((N * NFEED)) if every node took every IP), rate_limited +$((rl1 - rl0)), dropped (intake full, all so far) $drop; n2's store holds $got of the $NFEED IPs"
echo

# ---- 3. lookup latency ------------------------------------------------------------------------
echo "== 3. lookup latency: listed keys (published by a node L at 40/s) and unlisted ones (2001:db8:dead::/64, never reported) =="
# Listed keys come from a node L of their own, at a pace storing nodes
# accept: T's burst leaves thousands of puts queued in T's runner (its
# budget is lifted), which new keys would wait behind, and on loopback
# every node is 127.0.0.1 to the others, so a burst runs into OpenDHT's
# 1,024 requests/s per source address on the storing nodes. L
# (--dht-bandwidth 2M) publishes NL keys at 40/s, then the lookups start.
NL=$((2 * NLOOK + NCLI))
python3 - "$NL" >"$work/src_c0.txt" <<'EOF'
import ipaddress, sys
base = ipaddress.IPv6Address("2001:db8:c0::")
for i in range(1, int(sys.argv[1]) + 1):
    print(base + i)
EOF
node L $((T_IDX + 2)) --bootstrap 127.0.0.1:$BOOT --sip-address ::1 --dht-bandwidth 2M
wait_log L "dht: connected" 60 || die "L did not connect: $(tail -c 1500 "$work/L.log")"
sleep 3
"$probe" feed $((SIP0 + T_IDX + 2)) "$work/src_c0.txt" 0 "$NL" 40 >"$work/feed_c0.out"
sleep 5
set -- $(dht_fields node.dht.published_records L)
echo "    L published $2 record values for $NL keys"
cp "$work/src_c0.txt" "$work/listed_all.txt"
python3 - "$NFEED" "$NLOOK" "$NCLI" "$work" <<'EOF'
import random, sys
nfeed, nlook, ncli, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = random.Random(4)
keys = open(work + "/listed_all.txt").read().split()
if len(keys) < 2 * nlook + ncli:
    sys.exit("bench_dht: only %d listed keys" % len(keys))
r.shuffle(keys)
un = ["2001:db8:dead::%x" % i for i in range(1, 4 * nlook + 2 * ncli + 20)]
sets = {"probe": nlook, "ctl": nlook, "cli": ncli}
o = 0
for name, n in sets.items():
    open("%s/%s_listed.txt" % (work, name), "w").write("\n".join(keys[o:o + n]) + "\n")
    o += n
o = 0
for name, n in [("probe", nlook + 10), ("ctl", nlook), ("cli", ncli), ("ctl2", nlook)]:
    open("%s/%s_unlisted.txt" % (work, name), "w").write("\n".join(un[o:o + n]) + "\n")
    o += n
EOF
B=n$((N / 2))
echo " a. through $B's control socket ('lookup ip KEY 5000'), its warm DHT connection"
"$probe" ctl "$work/$B/sentrypeer.sock" 5000 "$work/ctl_listed.txt" "$work/ctl_unlisted.txt" \
	>"$work/ctl.out" 2>&1 || die "dht_probe ctl failed: $(tail -n 5 "$work/ctl.out")"
grep -v '^ctl \(listed\|unlisted\) ' "$work/ctl.out" | sed 's/^/    /'
echo "    $(stamp)"
echo " b. sentrypeer lookup processes on $B (--dht-timeout 5s), $NCLI each: --refresh listed, --refresh unlisted, --local"
cli_time() { # OUT-FILE FILE ARGS...: ms per process, one a line, and exit codes
	local out=$1 f=$2 k s e rc
	shift 2
	: >"$out"
	while read -r k; do
		s=$(date +%s%N)
		rc=0
		"$sp" lookup --data-dir "$work/$B" --dht-timeout 5s "$@" "$k" >/dev/null 2>&1 || rc=$?
		e=$(date +%s%N)
		echo "$(( (e - s) / 1000 )) $rc" >>"$out"
	done <"$f"
}
cli_time "$work/cli_rl.txt" "$work/cli_listed.txt" --refresh
cli_time "$work/cli_ru.txt" "$work/cli_unlisted.txt" --refresh
cli_time "$work/cli_ll.txt" "$work/cli_listed.txt" --local
cli_sum() { # FILE LABEL
	sort -n "$1" | awk -v l="$2" '{ v[NR] = $1 / 1000; c[$2]++ }
		function p(q,  k) { k = int(q / 100 * NR + 0.9999); if (k < 1) k = 1; return v[k] }
		END { printf "    %-32s n %d exit0 %d exit1 %d other %d | ms p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
		      l, NR, c[0], c[1], NR - c[0] - c[1], p(50), p(90), p(99), v[NR] }'
}
cli_sum "$work/cli_rl.txt" "lookup --refresh, listed"
cli_sum "$work/cli_ru.txt" "lookup --refresh, unlisted"
cli_sum "$work/cli_ll.txt" "lookup --local (after --refresh)"
pl=$(sort -n "$work/cli_rl.txt" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] / 1000 }')
pr=$(sort -n "$work/cli_ll.txt" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] / 1000 }')
echo "    p50 --refresh minus p50 --local (listed): $(calc "printf \"%.1f\", $pl - $pr") ms: the DHT's share of a user's lookup"
echo " c. dht_probe: a DHT node of its own (any free port), timeout 5 s, 10 cold lookups first"
"$probe" lookup "$NET" 127.0.0.1:$BOOT 5000 10 "$work/probe_listed.txt" "$work/probe_unlisted.txt" \
	>"$work/probe.out" 2>&1 || die "dht_probe lookup failed: $(tail -n 5 "$work/probe.out")"
grep -v '^probe \(cold\|listed\|unlisted\) ' "$work/probe.out" | sed 's/^/    /'
echo "    target: p50 < 50 ms | $(stamp)"
echo " d. through $B's control socket again, now that the probe node has left (its entries in routing tables time out)"
"$probe" ctl "$work/$B/sentrypeer.sock" 5000 "$work/ctl_listed.txt" "$work/ctl2_unlisted.txt" \
	>"$work/ctl2.out" 2>&1 || die "dht_probe ctl failed: $(tail -n 5 "$work/ctl2.out")"
grep -v '^ctl \(listed\|unlisted\) ' "$work/ctl2.out" | sed 's/^/    /'
echo "    (listed: the same keys as in a.) $(stamp)"
echo

# ---- 4. traffic per node -----------------------------------------------------------------------
stop_node T
stop_node L
echo "== 4. DHT traffic per node, $N nodes (T and the probe gone), default budget: windows of $W s =="
python3 - >"$work/src_a.txt" <<'EOF'
for i in range(60, 255):
    print("198.51.100.%d" % i)
for i in range(1, 255):
    print("203.0.113.%d" % i)
for i in range(1, 20001):
    print("2001:db8:a0::%x" % i)
EOF
ka() { grep -c "keepalive published" "$work/n1.log" || true; }
a_port=$((BOOT + 1))
offset=0
declare -A BASE_S BASE_R
printf '  %-14s %-9s | %-33s | %-33s | %-27s | %s\n' "window" "events" "all nodes: sent MB/h mean (min-max)" "received MB/h mean (min-max)" "A (n1): sent / recv MB/h" "A published, deferred, keepalive"
for rate in 0 1 10 100; do
	count=$((rate * W / 60))
	set -- $(dht_fields node.dht.published_records,node.dht.publish_deferred n1)
	ap0=$(num "$2") ad0=$(num "$3")
	k0=$(ka)
	nft_snap "$work/nft0.txt"
	ws=$(now_ms)
	fp=
	if [ "$count" -gt 0 ]; then
		"$probe" feed $((SIP0 + 1)) "$work/src_a.txt" "$offset" "$count" "$(calc "print $rate / 60")" >"$work/feed_a$rate.out" &
		fp=$!
		offset=$((offset + count))
	fi
	sleep "$W"
	nft_snap "$work/nft1.txt"
	we=$(now_ms)
	[ -n "$fp" ] && { wait "$fp" || echo "  WARNING: feed at $rate/min: $(cat "$work/feed_a$rate.out")"; }
	alive $(ring)
	set -- $(dht_fields node.dht.published_records,node.dht.publish_deferred n1)
	ap=$(($(num "$2") - ap0)) ad=$(($(num "$3") - ad0))
	kr=$(($(ka) - k0))
	secs=$(calc "print ($we - $ws) / 1000")
	# per node MB/h (1 MB = 10^6 bytes), the ring's ports only
	join "$work/nft0.txt" "$work/nft1.txt" | awk -v lo=$BOOT -v hi=$((BOOT + N - 1)) -v s="$secs" \
		'$1 >= lo && $1 <= hi { print $1, ($4 - $2) * 3600 / s / 1e6, ($5 - $3) * 3600 / s / 1e6 }' >"$work/rate$rate.txt"
	line=$(awk -v a=$a_port '
		{ n++; ss += $2; sr += $3; if (n == 1 || $2 < smin) smin = $2; if ($2 > smax) smax = $2
		  if (n == 1 || $3 < rmin) rmin = $3; if ($3 > rmax) rmax = $3; if ($1 == a) { as = $2; ar = $3 } }
		END { printf "%8.2f (%.2f-%.2f)          | %8.2f (%.2f-%.2f)          | %8.2f / %-8.2f", ss / n, smin, smax, sr / n, rmin, rmax, as, ar }' "$work/rate$rate.txt")
	label="idle"; [ "$rate" -gt 0 ] && label="$rate new IPs/min"
	printf '  %-14s %-9s | %s | %s, %s, %s\n' "$label" "$count" "$line" "$ap" "$ad" "$kr"
	if [ "$rate" -gt 0 ]; then
		line=$(join "$work/rate0.txt" "$work/rate$rate.txt" | awk -v a=$a_port '
			{ n++; s += $4 - $2; r += $5 - $3; if ($1 == a) { as = $4 - $2; ar = $5 - $3 } }
			END { printf "above idle: all nodes mean sent %.2f, received %.2f MB/h; A sent %.2f, received %.2f MB/h", s / n, r / n, as, ar }')
		echo "  $(printf '%-24s' '') $line"
	fi
	echo "  $(printf '%-24s' '') $(stamp)"
done
echo "  MB = 10^6 bytes, UDP datagrams on the DHT ports incl. IP/UDP headers, window bytes x 3600 / $W s (measured, then extrapolated to an hour)."
echo "  'keepalive' = A's keepalive rounds that published something in the window (every 570 s); a window of < 570 s has one or none,"
echo "  so per hour the keepalive part is over- or under-counted: --long (600 s windows) holds one each."
echo "  'deferred' counts publishes the 4K/s budget put off; A starts a window with up to 570 s of budget saved, so a short window"
echo "  may not show the budget binding that an hour at the same rate would."
echo

# ---- what the nodes said ------------------------------------------------------------------------
echo "== node health =="
alive $(ring)
dht_fields node.dht.connected,node.dht.puts,node.dht.puts_failed,node.dht.values_received,node.dht.records_accepted,counters.dht_records_dropped,node.dht.rejected.rate_limited,node.dht.rejected.malformed,node.dht.rejected.signature,node.dht.rejected.expired,node.dht.rejected.wrong_key $(ring) >"$work/health.txt"
awk 'BEGIN { print "  node connected puts puts_failed values_received records_accepted records_dropped rate_limited malformed signature expired wrong_key" }
	{ if ($7 == "-") $7 = 0; printf "  %s\n", $0 }' "$work/health.txt" | column -t | sed 's/^/  /'
rss=$(for n in $(ring); do ps -o rss= -p "${PID[$n]}"; done | awk '{ s += $1; if ($1 > m) m = $1 } END { printf "mean %.0f MiB, max %.0f MiB", s / NR / 1024, m / 1024 }')
echo "  node RSS: $rss (records_dropped: the node's counter dht_records_dropped, intake queue full)"
t_stop=$(now_ms)
for n in $(ring); do kill -TERM "${PID[$n]}" 2>/dev/null || true; done
for n in $(ring); do stop_node "$n"; done
echo "  all nodes stopped in $(($(now_ms) - t_stop)) ms; stopped cleanly: $(grep -lF "stopped cleanly" "$work"/n*.log "$work/T.log" | wc -l) of $((N + 1))"
echo "  warnings and errors in the node logs (count, message without time):"
cat "$work"/n*.log "$work/T.log" | grep -iE '(warn|error|fail|refus|cannot)' |
	sed -E 's/^[0-9TZ:.+-]+ +//; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -n 15 | sed 's/^/    /' || true
echo "  total time $(( ($(now_ms) - t_start) / 1000 )) s | $(stamp)"
