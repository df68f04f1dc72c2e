#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
#
# SIP honeypot load benchmark: floods a node with tools/bench/sip_flood on
# loopback, inside a private network namespace (unshare -n: nothing leaves
# the machine, port 5060 is free), and reads what the node recorded.
#
#   tools/bench/bench_sip.sh                # full run, about 2.5 minutes
#   tools/bench/bench_sip.sh --quick        # smoke: 2 s steps, fewer rates
#   tools/bench/bench_sip.sh --perf DIR     # also: perf record the UDP listener
#                                           # and writer threads in a 100k/s flood
#   tools/bench/bench_sip.sh --udp-only --rates "100000" --seconds 10
#                                           # only UDP floods, at these rates
#
# Steps (each on a fresh node with a fresh data dir in a temp dir, removed
# once read (a UDP rate starts after a sync, so the kernel is not writing
# back an earlier store meanwhile), owned by nobody, the user a node started as root switches
# to; SIP on 127.0.0.1:5060, --no-share, the default --sync and queue
# limits):
#   1. UDP INVITE floods at 10k..200k/s for 10 s each, passive mode;
#   2. a burst of 10,000 datagrams sent as fast as possible, passive mode;
#   3. TCP: 2,000 connections/s for 10 s, one INVITE each, responsive (-r);
#   4. TLS: 200, 500, 1000 handshakes/s for 5 s each, responsive (-r).
# "recorded" is events_recorded in the store after a clean stop (SIGTERM
# commits everything queued). Loss is split into the kernel's receive-buffer
# drops (Udp RcvbufErrors + MemErrors of the namespace), the node's queue-full drops and
# parse errors. Node CPU is utime+stime from /proc over the flood; RSS is
# VmRSS sampled every 0.2 s. The load generator shares the CPUs with the node.
#
# Needs root (or unprivileged user namespaces), unshare(1), ip(8), gcc and
# GnuTLS headers (libgnutls28-dev) unless meson builds sip_flood; perf for
# --perf. BUILD_DIR overrides the build directory.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}
quick=0
perfdir=
udp_only=0
rates_opt=
secs_opt=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--udp-only) udp_only=1 ;;
	--rates)
		[ $# -ge 2 ] || { echo "bench_sip: --rates needs a list" >&2; exit 2; }
		rates_opt=$2
		shift
		;;
	--seconds)
		[ $# -ge 2 ] || { echo "bench_sip: --seconds needs a number" >&2; exit 2; }
		secs_opt=$2
		shift
		;;
	--perf)
		[ $# -ge 2 ] || { echo "bench_sip: --perf needs a directory" >&2; exit 2; }
		mkdir -p "$2"
		perfdir=$(cd "$2" && pwd)
		shift
		;;
	-h | --help) sed -n '4,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_sip: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# ---- outside the namespace: build, then re-run inside one ----------------
if [ "${BENCH_SIP_NETNS:-}" != 1 ]; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" --buildtype=release -Dtests=false >&2
	fi
	ninja -C "$build" >&2
	set -- # the parsed options again, the --perf directory absolute
	if [ "$quick" = 1 ]; then set -- --quick; fi
	if [ "$udp_only" = 1 ]; then set -- "$@" --udp-only; fi
	if [ -n "$rates_opt" ]; then set -- "$@" --rates "$rates_opt"; fi
	if [ -n "$secs_opt" ]; then set -- "$@" --seconds "$secs_opt"; fi
	if [ -n "$perfdir" ]; then set -- "$@" --perf "$perfdir"; fi
	if [ "$(id -u)" = 0 ]; then
		exec unshare -n env BENCH_SIP_NETNS=1 sh "$0" "$@"
	fi
	# unprivileged: a user namespace too; the node then stays "root" in it
	exec unshare -rn env BENCH_SIP_NETNS=1 SENTRYPEER_USER= sh "$0" "$@"
fi

# ---- inside the namespace -------------------------------------------------
ip link set lo up
export SENTRYPEER_CONFIG= # a config file must not change the node

sp="$build/src/sentrypeer"
port=5060
tls_port=5061
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_sip.XXXXXX")
# as root the node switches to its user (nobody) after binding; each
# node's data directory belongs to that user, as a service's does, and
# this one lets it through (the writer opens the store again by path)
chmod 0755 "$work"
node_pid=
flood_pid=

cleanup() {
	if [ -n "$flood_pid" ] && kill -0 "$flood_pid" 2>/dev/null; then
		kill -TERM "$flood_pid" 2>/dev/null || true
		wait "$flood_pid" 2>/dev/null || true
	fi
	if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
		kill -TERM "$node_pid" 2>/dev/null || true
		wait "$node_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

die() {
	echo "bench_sip: $*" >&2
	exit 2
}

# the load generator: meson's if the build has it, else by hand
flood="$build/tools/bench/sip_flood"
if [ ! -x "$flood" ]; then
	flood="$work/sip_flood"
	gcc -std=c17 -O2 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wmissing-prototypes \
		-Wstrict-prototypes -Wvla -Wformat=2 -o "$flood" "$root/tools/bench/sip_flood.c" \
		$(pkg-config --cflags --libs gnutls) >&2 || die "cannot build sip_flood"
fi

# ---- helpers --------------------------------------------------------------

now_ms() { date +%s%3N; }

# awk arithmetic: calc EXPR (variables a, b, c, d from $2..$5)
calc() { awk -v a="${2:-0}" -v b="${3:-0}" -v c="${4:-0}" -v d="${5:-0}" -v e="$ncpu" "BEGIN { $1 }"; }

# utime+stime of a process or thread, in clock ticks
ticks() { # /proc/PID or /proc/PID/task/TID
	if [ -r "$1/stat" ]; then
		# comm has no spaces here: "sentrypeer"
		read -r _ _ _ _ _ _ _ _ _ _ _ _ _ ut st _ <"$1/stat"
		echo $((ut + st))
	else
		echo 0
	fi
}

# nanoseconds a thread waited on a run queue (runnable, no CPU): schedstat
runq_ns() {
	if [ -r "$1/schedstat" ]; then
		read -r _ w _ <"$1/schedstat"
		echo "$w"
	else
		echo 0
	fi
}

# the same summed over the UDP listener threads (tids in $udp_tids)
udp_ticks() {
	t=0
	for u in ${udp_tids:-x}; do t=$((t + $(ticks /proc/"$node_pid"/task/"$u"))); done
	echo $t
}
udp_runq_ns() {
	t=0
	for u in ${udp_tids:-x}; do t=$((t + $(runq_ns /proc/"$node_pid"/task/"$u"))); done
	echo $t
}

# "busy total steal" jiffies of the whole machine from /proc/stat (busy:
# all but idle, iowait and steal; softirq time is in there and also in the
# tasks' stime; steal: time the hypervisor gave to other machines while
# this one's CPUs had work, which no process here gets or can fix)
machine_cpu() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 - $9, t, $9; exit }' /proc/stat
}

# clock ticks used by kernel threads (children of kthreadd: writeback,
# journal, block I/O workers), so far
kthread_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null |
		awk '{ s = $0; sub(/^[0-9]+ \(.*\) /, "", s); n = split(s, f, " ")
		       if (n > 13 && (f[2] == 2 || $1 == 2)) t += f[12] + f[13] } END { print t + 0 }'
}

# "rss anon file" in kB from /proc/PID/status (VmRSS, RssAnon, RssFile)
mem() {
	r=0
	a=0
	f=0
	while read -r k v _; do
		case $k in
		VmRSS:) r=$v ;;
		RssAnon:) a=$v ;;
		RssFile:) f=$v ;;
		esac
	done <"/proc/$1/status"
	echo "$r $a $f"
}

# packets dropped before any socket saw them: the per-CPU input backlog
# (netdev_max_backlog) was full; machine-wide (column 2 of softnet_stat)
backlog_drops() {
	t=0
	while read -r _ d _; do t=$((t + 0x$d)); done </proc/net/softnet_stat
	echo $t
}

# datagrams the kernel dropped for want of buffer: the socket's receive
# buffer (RcvbufErrors) or UDP memory as a whole (MemErrors, udp_mem)
kernel_drops() {
	echo $(($(snmp_udp RcvbufErrors) + $(snmp_udp MemErrors)))
}

# a field of the Udp: line of this namespace's /proc/net/snmp
snmp_udp() {
	awk -v f="$1" '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1 }
				       else { print $c; exit } }' /proc/net/snmp
}

# a field of the TcpExt: line of /proc/net/netstat
netstat_tcpext() {
	awk -v f="$1" '$1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1 }
					  else { print (c ? $c : 0); exit } }' /proc/net/netstat
}

# value of "name: value ..." in a sip_flood output
fval() { awk -v k="$1:" '$1 == k { print $2; exit }' "$2"; }
# the rest of such a line
fline() { sed -n "s/^$1: //p" "$2" | head -n 1; }

# a counter from `sentrypeer stats --json` (0 when absent)
counter() {
	v=$(sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2")
	echo "${v:-0}"
}

mib() { calc 'printf "%.1f", a / 1024' "$1"; }

# start_node NAME [flags]: a fresh node with data dir $work/NAME
start_node() {
	name=$1
	shift
	ddir="$work/$name"
	log="$work/$name.log"
	mkdir -p "$ddir"
	if [ "$(id -u)" = 0 ]; then chown nobody "$ddir"; fi
	"$sp" run --data-dir "$ddir" --sip-address 127.0.0.1 --sip-port "$port" \
		--sip-tls-port "$tls_port" --no-share --map-size "$map_size" "$@" >"$log" 2>&1 &
	node_pid=$!
	i=0
	while ! grep -q "SIP honeypot running" "$log" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$node_pid" 2>/dev/null; then
			cat "$log" >&2
			die "the node did not start"
		fi
		sleep 0.05
	done
	# its threads, by what they wait in when idle: the writer on a futex
	# (202), the UDP listeners in poll (7/271), TCP/TLS in epoll_wait (232/281)
	udp_tids=
	writer_tid=
	stream_tid=
	sleep 0.2
	for t in /proc/"$node_pid"/task/*; do
		tid=${t##*/}
		[ "$tid" = "$node_pid" ] && continue
		read -r nr _ <"$t/syscall" || nr=
		case $nr in
		7 | 271 | 299) udp_tids="$udp_tids $tid" ;;
		232 | 281 | 441) stream_tid=$tid ;;
		202) writer_tid=$tid ;;
		esac
	done
	[ -n "$writer_tid" ] || writer_tid=$(ls /proc/"$node_pid"/task | sort -n | sed -n 2p)
}

# stop_node: SIGTERM (commits what is queued), then the stats; sets
# stop_ms and stats (the JSON file)
stop_node() {
	t0=$(now_ms)
	kill -TERM "$node_pid"
	i=0
	while kill -0 "$node_pid" 2>/dev/null && [ $i -lt 3000 ]; do # 60 s at most
		sleep 0.02
		i=$((i + 1))
	done
	if kill -0 "$node_pid" 2>/dev/null; then
		echo "bench_sip: the node did not stop within 60 s of SIGTERM: killed" >&2
		kill -KILL "$node_pid" 2>/dev/null || true
	fi
	rc=0
	wait "$node_pid" || rc=$?
	stop_ms=$(($(now_ms) - t0))
	node_pid=
	[ $rc = 0 ] || { cat "$log" >&2; die "the node exited with status $rc"; }
	stats="$work/$name.stats.json"
	"$sp" stats --json --data-dir "$ddir" >"$stats" || die "sentrypeer stats failed"
}

# sample_mem: update peak_rss / peak_anon / peak_file (at the VmRSS peak)
# and the largest RssAnon and RssFile seen, from the node
sample_mem() {
	set -- $(mem "$node_pid")
	if [ "$1" -gt "$peak_rss" ]; then
		peak_rss=$1
		peak_anon=$2
		peak_file=$3
	fi
	[ "$2" -gt "$max_anon" ] && max_anon=$2
	[ "$3" -gt "$max_file" ] && max_file=$3
	return 0
}

# flood OUT ARGS...: run sip_flood against the node, sampling its memory;
# sets flood_ms, cpu_pct (node), lcpu_pct (UDP listener), wcpu_pct (writer),
# scpu_pct (TCP/TLS thread), peak_rss, peak_anon (kB)
flood() {
	out=$1
	shift
	peak_rss=0
	peak_anon=0
	peak_file=0
	max_anon=0
	max_file=0
	p0=$(ticks /proc/"$node_pid")
	l0=$(udp_ticks)
	w0=$(ticks /proc/"$node_pid"/task/"${writer_tid:-x}")
	s0=$(ticks /proc/"$node_pid"/task/"${stream_tid:-x}")
	lq0=$(udp_runq_ns)
	wq0=$(runq_ns /proc/"$node_pid"/task/"${writer_tid:-x}")
	sq0=$(runq_ns /proc/"$node_pid"/task/"${stream_tid:-x}")
	m0=$(machine_cpu)
	kk0=$(kthread_ticks)
	t0=$(now_ms)
	"$flood" "$@" >"$out" 2>&1 &
	flood_pid=$!
	while kill -0 "$flood_pid" 2>/dev/null; do
		sample_mem
		sleep 0.2
	done
	rc=0
	wait "$flood_pid" || rc=$?
	flood_pid=
	[ $rc = 0 ] || { cat "$out" >&2; die "sip_flood failed"; }
	flood_ms=$(($(now_ms) - t0))
	sample_mem
	p1=$(ticks /proc/"$node_pid")
	l1=$(udp_ticks)
	w1=$(ticks /proc/"$node_pid"/task/"${writer_tid:-x}")
	s1=$(ticks /proc/"$node_pid"/task/"${stream_tid:-x}")
	m1=$(machine_cpu)
	kt1=$(kthread_ticks)
	lq1=$(udp_runq_ns)
	wq1=$(runq_ns /proc/"$node_pid"/task/"${writer_tid:-x}")
	sq1=$(runq_ns /proc/"$node_pid"/task/"${stream_tid:-x}")
	pct='printf "%.0f", (b - a) / c * 100000 / d'
	qpct='printf "%.0f", (b - a) / 10000 / c'
	lwait_pct=$(calc "$qpct" "$lq0" "$lq1" "$flood_ms")
	wwait_pct=$(calc "$qpct" "$wq0" "$wq1" "$flood_ms")
	swait_pct=$(calc "$qpct" "$sq0" "$sq1" "$flood_ms")
	cpu_pct=$(calc "$pct" "$p0" "$p1" "$hz" "$flood_ms")
	lcpu_pct=$(calc "$pct" "$l0" "$l1" "$hz" "$flood_ms")
	wcpu_pct=$(calc "$pct" "$w0" "$w1" "$hz" "$flood_ms")
	scpu_pct=$(calc "$pct" "$s0" "$s1" "$hz" "$flood_ms")
	# the whole machine, in % of one CPU: busy, and busy outside the node
	# and the generator (other processes: the figures are low if it is not ~0)
	set -- $m0 $m1
	busy_pct=$(calc 'printf "%.0f", (c - a) / (d - b) * 100 * e' "$1" "$2" "$4" "$5")
	steal_pct=$(calc 'printf "%.0f", (c - a) / (d - b) * 100 * e' "$3" "$2" "$6" "$5")
	gen_pct=$(fval generator_cpu "$out")
	kthr_pct=$(calc "$pct" "$kk0" "$kt1" "$hz" "$flood_ms")
	[ "$kthr_pct" -ge 0 ] || kthr_pct=0 # a worker that exited takes its ticks along
	other_pct=$(calc 'x = a - b - c - d; if (x < 0) x = 0; printf "%.0f", x' "$busy_pct" "$cpu_pct" "$gen_pct" "$kthr_pct")
	machine_line="machine busy $busy_pct% of $((ncpu * 100))% (node $cpu_pct, generator $gen_pct, kernel threads $kthr_pct, other processes $other_pct), hypervisor steal $steal_pct%"
}

# drain: wait until the node is idle (at most 1 tick in 0.5 s, then no
# commit for a second; 30 s at most each), still sampling memory; sets
# busy_ms, then 2 s after that idle_rss, idle_anon, idle_file (kB)
drain() {
	t0=$(now_ms)
	prev=$(ticks /proc/"$node_pid")
	i=0
	while [ $i -lt 60 ]; do
		sleep 0.5
		sample_mem
		cur=$(ticks /proc/"$node_pid")
		[ $((cur - prev)) -le 1 ] && break
		prev=$cur
		i=$((i + 1))
	done
	# and no commit either (fold rounds after a flood are mostly syncs, so
	# little CPU): the store file unchanged for a second, 30 s at most
	db="$ddir/sentrypeer.mdb"
	j=0
	last=$(stat -c %y "$db" 2>/dev/null)
	same=0
	while [ $j -lt 60 ] && [ $same -lt 2 ]; do
		sleep 0.5
		sample_mem
		cur_m=$(stat -c %y "$db" 2>/dev/null)
		if [ "$cur_m" = "$last" ]; then same=$((same + 1)); else same=0; fi
		last=$cur_m
		j=$((j + 1))
	done
	busy_ms=$(($(now_ms) - t0 - 1500))
	[ $busy_ms -ge 0 ] || busy_ms=0
	# idle memory once settled: 2 s after the node went idle
	sleep 1.5
	set -- $(mem "$node_pid")
	idle_rss=$1
	idle_anon=$2
	idle_file=$3
	if [ "$idle_rss" -gt "$worst_after" ]; then
		worst_after=$idle_rss
		worst_after_anon=$idle_anon
		worst_after_file=$idle_file
	fi
}

# idle_mem: 1 s after start, the idle RSS (kB)
idle_mem() {
	sleep 1
	set -- $(mem "$node_pid")
	start_rss=$1
	start_anon=$2
	start_file=$3
}

worst_rss=0
worst_rss_run=
worst_rss_anon=0
worst_idle=0
worst_anon=0
worst_anon_run=
worst_after=0
worst_after_anon=0
worst_after_file=0
worst_file=0
worst_file_run=
track_rss() { # run name: keep the worst flood peak and idle figures
	if [ "$peak_rss" -gt "$worst_rss" ]; then
		worst_rss=$peak_rss
		worst_rss_anon=$peak_anon
		worst_rss_file=$peak_file
		worst_rss_run=$1
	fi
	if [ "$max_anon" -gt "$worst_anon" ]; then
		worst_anon=$max_anon
		worst_anon_run=$1
	fi
	if [ "$max_file" -gt "$worst_file" ]; then
		worst_file=$max_file
		worst_file_run=$1
	fi
	if [ "$start_rss" -gt "$worst_idle" ]; then
		worst_idle=$start_rss
	fi
}

# ---- 0. the machine ---------------------------------------------------------
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) CPUs (nproc), ${model:-unknown CPU}, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, temp dir on $(stat -f -c %T "$work")"
echo "note: the load generator and the node share these $(nproc) CPUs"
echo "node: $sp ($($sp version 2>/dev/null | head -n 1))"
defaults=$("$sp" help run 2>/dev/null |
	sed -n 's/^ *\(--\(sync\|queue-size\|queue-memory\|batch-size\|sip-max-connections\)\) .*\[\([^]]*\)\].*/\1 \3/p' |
	tr '\n' ' ' | sed 's/ $//')
echo "settings: SIP on 127.0.0.1:$port (TLS $tls_port) in a private network namespace, --no-share, --map-size 4G (a 10-s flood at 100,000/s stores about 1.3 GB; the default 1G fills up); defaults: ${defaults:-?}; UDP and burst passive, TCP and TLS responsive (-r)"
echo "memory: MiB = 1024 KiB; RSS is VmRSS = RssAnon (anon: heap, queue, pending tables, LMDB's dirty pages) + RssFile (file: libraries and the store's mapped pages); RssShmem is 0 here"

# other load makes every figure low: say so
set -- $(machine_cpu)
sleep 1
set -- "$@" $(machine_cpu)
bg=$(calc 'printf "%.0f", (c - a) / (d - b) * 100 * e' "$1" "$2" "$4" "$5")
echo "background load: $bg% of $((ncpu * 100))% busy in the second before the run"
if [ "$bg" -gt 10 ]; then
	echo "warning: the machine is busy before the run; the figures below will be low. Busiest processes:"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu | sed -n '2,4p' | sed 's/^/    /'
fi

if [ "$quick" = 1 ]; then
	udp_rates="10000 100000"
	udp_secs=2
	tcp_secs=2
	tls_rates="200 1000"
	tls_secs=2
else
	udp_rates="10000 25000 50000 100000 150000 200000"
	udp_secs=10
	tcp_secs=10
	tls_rates="200 500 1000"
	tls_secs=5
fi
[ -z "$rates_opt" ] || udp_rates=$rates_opt
[ -z "$secs_opt" ] || udp_secs=$secs_opt
tcp_rate=2000
burst_count=10000
# a 10 s flood at 100,000/s stores about 1.3 GB (events and a new number
# aggregate each): the default map (1G) would fill and drop the rest
map_size=4G
stall_ms=100
seed=1

table="$work/table.txt"
: >"$table"
best_zero=0
best_recps=0
best_recps_rate=0
r100_line="not run"
r100_ok=MISSED

# ---- 1. UDP floods ------------------------------------------------------------
echo
echo "== UDP: INVITE floods, ${udp_secs} s per rate, passive mode"
for rate in $udp_rates; do
	start_node "udp-$rate"
	idle_mem
	if [ -z "${rcvbuf_said:-}" ]; then # what SO_RCVBUFFORCE got (rmem_max caps it without root)
		rb=$(ss -uamn 2>/dev/null | sed -n 's/.*skmem:(r[0-9]*,rb\([0-9]*\),.*/\1/p' | head -n 1)
		echo "node UDP receive buffer: $(calc 'printf "%.0f", a / 1048576' "${rb:-0}") MiB (kernel accounting: about $(calc 'printf "%.0f", a / 1700' "${rb:-0}") datagrams of 1 kB)"
		rcvbuf_said=1
	fi
	# the disk as a lone node finds it: nothing of an earlier rate's store
	# still being written back while this flood's commits sync
	dirty_kb=$(awk '/^(Dirty|Writeback):/ { s += $2 } END { print s + 0 }' /proc/meminfo)
	sync
	echo "udp $rate/s: $(mib "$dirty_kb") MiB of the page cache dirty or being written back before a sync"
	k0=$(kernel_drops)
	b0=$(backlog_drops)
	seed=$((seed + 1))
	f="$work/udp-$rate.out"
	flood "$f" udp --target "127.0.0.1:$port" --rate "$rate" --seconds "$udp_secs" --seed "$seed"
	drain
	k1=$(kernel_drops)
	b1=$(backlog_drops)
	stop_node
	sent=$(fval sent "$f")
	rec=$(counter events_recorded "$stats")
	udp=$(counter events_udp "$stats")
	rcv=$(counter sip_received "$stats")
	qf=$(counter events_dropped_queue_full "$stats")
	pe=$(counter sip_parse_errors "$stats")
	sf=$(counter events_dropped_store_error "$stats")
	rm -rf "$ddir" # read: its dirty pages are dropped, not written back
	kd=$((k1 - k0))
	bd=$((b1 - b0))
	lost=$((sent - rec))
	other=$((lost - kd - bd - qf - sf - pe))
	lpct=$(calc 'printf "%.2f", c ? (c - a) * 100 / c : 0' "$rec" 0 "$sent")
	recps=$(calc 'printf "%.0f", a / b' "$rec" "$udp_secs")
	echo "udp $rate/s: sent $sent in $(fval elapsed "$f") s ($(fval rate_achieved "$f")/s achieved, generator $(fval generator_cpu "$f")% CPU, up to $(fval behind_schedule_max "$f") ms behind schedule)"
	echo "udp $rate/s: recorded $rec ($recps/s over the flood; events_udp $udp, sip_received $rcv)"
	echo "udp $rate/s: lost $lost ($lpct%): kernel input backlog full (softnet, machine-wide) $bd, kernel buffers full (Udp RcvbufErrors + MemErrors) $kd, node queue full $qf, store full or failing $sf, not SIP $pe, unaccounted $other"
	echo "udp $rate/s: node CPU $cpu_pct% of one core over the flood (UDP listener threads $lcpu_pct%, writer thread $wcpu_pct%); busy $(calc 'printf "%.1f", a / 1000' "$busy_ms") s after the flood ended"
	echo "udp $rate/s: $machine_line; waiting for a CPU: UDP listeners $lwait_pct% of the time, writer $wwait_pct%"
	echo "udp $rate/s: node RSS idle before $(mib "$start_rss") MiB (anon $(mib "$start_anon"), file $(mib "$start_file")); peak $(mib "$peak_rss") MiB (anon $(mib "$peak_anon"), file $(mib "$peak_file")) in the flood and drain, largest anon $(mib "$max_anon"), largest file $(mib "$max_file"); idle 2 s after $(mib "$idle_rss") MiB (anon $(mib "$idle_anon"), file $(mib "$idle_file"))"
	echo "udp $rate/s: stop (commit and fold what is queued) $(calc 'printf "%.2f", a / 1000' "$stop_ms") s"
	printf "%8s %9s %9s %8s %7s %9s %7s %6s %6s %6s %6s %5s %8s %8s %6s\n" "$rate" "$sent" "$rec" "$recps" \
		"$lpct" "$((kd + bd))" "$qf" "$cpu_pct" "$lcpu_pct" "$wcpu_pct" "$other_pct" "$steal_pct" "$(mib "$peak_rss")" \
		"$(mib "$peak_anon")" "$(calc 'printf "%.1f", a / 1000' "$busy_ms")" >>"$table"
	if [ "$recps" -gt "$best_recps" ]; then
		best_recps=$recps
		best_recps_rate=$rate
	fi
	if [ "$lost" -eq 0 ] && [ "$rate" -gt "$best_zero" ]; then
		best_zero=$rate
	fi
	if [ "$rate" = 100000 ]; then
		r100_line="recorded $rec of $sent ($lpct% lost)"
		[ "$lost" -eq 0 ] && r100_ok=ok
	fi
	track_rss "udp $rate/s"
done
echo
echo "UDP per rate (rec/s: recorded over the flood time; kernel: input backlog (softnet) + Udp RcvbufErrors + MemErrors; cpu% node, udp% its UDP listener threads, wrt% its writer, oth% other processes, stl% hypervisor steal, all in % of one CPU over the flood; rss and anon: peaks in MiB; busy: s after the flood)"
printf "%8s %9s %9s %8s %7s %9s %7s %6s %6s %6s %6s %5s %8s %8s %6s\n" "rate/s" "sent" "recorded" "rec/s" \
	"lost%" "kernel" "qfull" "cpu%" "udp%" "wrt%" "oth%" "stl%" "rss" "anon" "busy"
cat "$table"

b_rec=0
b_sent=0
t_rate=0
t_failed=0
t_stalls=0
t_rec=0
t_max=0
tls_best=0
tls_best_line="not run"
if [ "$udp_only" = 0 ]; then
# ---- 2. burst -------------------------------------------------------------------
echo
echo "== UDP burst: $burst_count datagrams as fast as possible, passive mode"
start_node burst
idle_mem
k0=$(kernel_drops)
f="$work/burst.out"
flood "$f" burst --target "127.0.0.1:$port" --count "$burst_count" --seed 99
drain
k1=$(kernel_drops)
stop_node
b_sent=$(fval sent "$f")
b_rec=$(counter events_recorded "$stats")
echo "burst: sent $b_sent in $(fval elapsed "$f") s ($(fval rate_achieved "$f")/s)"
echo "burst: recorded $b_rec; lost $((b_sent - b_rec)): kernel receive buffer $((k1 - k0)), queue full $(counter events_dropped_queue_full "$stats"), not SIP $(counter sip_parse_errors "$stats")"
echo "burst: node busy $(calc 'printf "%.2f", a / 1000' "$busy_ms") s after the burst; RSS peak $(mib "$peak_rss") MiB (anon $(mib "$peak_anon"), file $(mib "$peak_file"))"
track_rss burst

# ---- 3. TCP -----------------------------------------------------------------------
echo
echo "== TCP: $tcp_rate connections/s for $tcp_secs s, one INVITE each, from random 127.0.0.2-254, responsive mode"
start_node tcp -r --no-sip-tls
idle_mem
o0=$(netstat_tcpext ListenOverflows)
d0=$(netstat_tcpext ListenDrops)
f="$work/tcp.out"
flood "$f" tcp --target "127.0.0.1:$port" --rate "$tcp_rate" --seconds "$tcp_secs" --stall-ms "$stall_ms" --seed 7
drain
o1=$(netstat_tcpext ListenOverflows)
d1=$(netstat_tcpext ListenDrops)
stop_node
t_made=$(fval connections "$f")
t_failed=$(fval failed "$f")
t_stalls=$(fval stalls "$f")
t_rate=$(fval rate_achieved "$f")
t_rec=$(counter events_recorded "$stats")
t_max=$(fline connect_latency "$f" | sed -n 's/.*max \([0-9.]*\) ms.*/\1/p')
echo "tcp: launched $(fval launched "$f"), made $t_made ($t_rate/s), failed $(fline failed "$f"), delayed for want of a free slot $(fval launches_delayed_no_free_slot "$f")"
echo "tcp: connect latency $(fline connect_latency "$f")"
echo "tcp: stalls (connect >= $stall_ms ms) $t_stalls; reply latency $(fline reply_latency "$f")"
echo "tcp: replies $(fline replies "$f")"
echo "tcp: node accepted $(counter tcp_connections "$stats"), refused $(counter tcp_connections_refused "$stats"), timed out $(counter tcp_connections_timed_out "$stats"); kernel ListenOverflows $((o1 - o0)), ListenDrops $((d1 - d0))"
echo "tcp: recorded $t_rec (events_tcp $(counter events_tcp "$stats"), not SIP $(counter sip_parse_errors "$stats"), queue full $(counter events_dropped_queue_full "$stats"))"
echo "tcp: node CPU $cpu_pct% (TCP/TLS thread $scpu_pct%, writer $wcpu_pct%); $machine_line; TCP/TLS thread waited for a CPU $swait_pct% of the time"
echo "tcp: node RSS idle $(mib "$start_rss") MiB, peak $(mib "$peak_rss") MiB (anon $(mib "$peak_anon"), file $(mib "$peak_file"))"
track_rss tcp

# ---- 4. TLS -----------------------------------------------------------------------
echo
echo "== TLS: handshakes at rising rates, $tls_secs s each, one INVITE each, responsive mode"
tls_best=0
tls_best_line="none"
for rate in $tls_rates; do
	start_node "tls-$rate" -r
	idle_mem
	f="$work/tls-$rate.out"
	flood "$f" tls --target "127.0.0.1:$tls_port" --rate "$rate" --seconds "$tls_secs" --stall-ms "$stall_ms" --seed $((rate + 3))
	drain
	stop_node
	hs=$(fline handshakes "$f")
	hsr=$(fval handshake_rate_achieved "$f")
	rec=$(counter events_recorded "$stats")
	done_n=$(echo "$hs" | awk '{ print $1 }')
	failed_n=$(echo "$hs" | awk '{ print $3 }')
	echo "tls $rate/s: handshakes $hs; $hsr handshakes/s achieved; connect failures $(fline failed "$f")"
	echo "tls $rate/s: handshake latency $(fline handshake_latency "$f")"
	echo "tls $rate/s: recorded $rec (events_tls $(counter events_tls "$stats")); node handshakes failed $(counter tls_handshakes_failed "$stats"), refused $(counter tcp_connections_refused "$stats")"
	echo "tls $rate/s: node CPU $cpu_pct% (TCP/TLS thread $scpu_pct%, writer $wcpu_pct%); $machine_line; TCP/TLS thread waited for a CPU $swait_pct% of the time"
	echo "tls $rate/s: node RSS peak $(mib "$peak_rss") MiB (anon $(mib "$peak_anon"), file $(mib "$peak_file"))"
	# clean: no failure, all recorded, the rate kept, p99 under the stall mark
	p99=$(fline handshake_latency "$f" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
	if [ "$failed_n" = 0 ] && [ "$rec" = "$done_n" ] && [ "$hsr" -ge $((rate * 95 / 100)) ] &&
		[ "$(calc 'print (a < b) ? 1 : 0' "${p99:-1e9}" "$stall_ms")" = 1 ] && [ "$rate" -gt "$tls_best" ]; then
		tls_best=$rate
		tls_best_line="$hsr/s done, all recorded, p99 $p99 ms"
	fi
	track_rss "tls $rate/s"
done

fi # udp_only

# ---- 5. perf (optional) -------------------------------------------------------------
if [ -n "$perfdir" ] && ! command -v perf >/dev/null 2>&1; then
	echo
	echo "perf: not installed (apt-get install linux-perf): no profile"
elif [ -n "$perfdir" ]; then
	echo
	echo "== perf: UDP listener and writer threads in a 100000/s flood (cpu-clock, 999 Hz), reports in $perfdir"
	start_node perf
	sleep 0.5
	f="$work/perf.out"
	"$flood" udp --target "127.0.0.1:$port" --rate 100000 --seconds 8 --seed 5 >"$f" 2>&1 &
	flood_pid=$!
	sleep 1
	# one perf per thread: each report is that thread's own 100%
	perf record -q -e cpu-clock -F 999 -t "$(echo $udp_tids | tr ' ' ',')" -o "$perfdir/udp.data" -- sleep 5 \
		>"$perfdir/perf-record-udp.log" 2>&1 &
	perf_udp=$!
	perf record -q -e cpu-clock -F 999 -t "$writer_tid" -o "$perfdir/writer.data" -- sleep 5 \
		>"$perfdir/perf-record-writer.log" 2>&1 || echo "perf record failed: see $perfdir"
	wait "$perf_udp" || echo "perf record failed: see $perfdir"
	wait "$flood_pid" || true
	flood_pid=
	stop_node
	echo "perf: flood sent $(fval sent "$f"), node recorded $(counter events_recorded "$stats")"
	for who in udp writer; do
		if [ "$who" = udp ]; then tid=$(echo $udp_tids | tr ' ' ','); else tid=$writer_tid; fi
		perf report -i "$perfdir/$who.data" --stdio --sort sym --percent-limit 0.5 \
			>"$perfdir/$who.txt" 2>/dev/null || true
		perf report -i "$perfdir/$who.data" --stdio --sort dso \
			>"$perfdir/$who-dso.txt" 2>/dev/null || true
		echo "perf: $who thread (tid $tid), by shared object:"
		grep -v '^#' "$perfdir/$who-dso.txt" | grep -v '^$' | head -n 6 | sed 's/^/    /'
		echo "perf: $who thread, top symbols:"
		grep -v '^#' "$perfdir/$who.txt" | grep -v '^$' | head -n 20 | sed 's/^/    /'
	done
fi

# ---- summary -------------------------------------------------------------------------
v() { if [ "$1" = 1 ]; then echo ok; else echo MISSED; fi; }
echo
echo "== summary (targets beside)"
printf "%-34s %-52s %-30s %s\n" "what" "figure" "target" "verdict"
printf "%-34s %-52s %-30s %s\n" "UDP events/s recorded, zero loss" \
	"best zero-loss rate: $best_zero/s" ">= 100000/s with zero loss" \
	"$(v "$([ "$best_zero" -ge 100000 ] && echo 1)")"
printf "%-34s %-52s %-30s %s\n" "UDP at 100000/s" "$r100_line" "zero loss" "$r100_ok"
printf "%-34s %-52s %-30s %s\n" "UDP capacity (most recorded)" \
	"$best_recps events/s recorded (offered $best_recps_rate/s)" "(no target)" "-"
if [ "$udp_only" = 1 ]; then
	echo "(--udp-only: burst, TCP and TLS not run)"
else
	printf "%-34s %-52s %-30s %s\n" "burst of $burst_count datagrams" "$b_rec recorded" "all recorded" \
		"$(v "$([ "$b_rec" = "$burst_count" ] && echo 1)")"
	printf "%-34s %-52s %-30s %s\n" "TCP connections/s" \
		"$t_rate/s made, $t_failed failed, $t_rec recorded, max connect $t_max ms" \
		">= 2000/s, no stalls (>= $stall_ms ms)" \
		"$(v "$([ "$t_rate" -ge $((tcp_rate * 99 / 100)) ] && [ "$t_failed" = 0 ] && [ "$t_stalls" = 0 ] && [ "$t_rec" = "$t_made" ] && echo 1)")"
	printf "%-34s %-52s %-30s %s\n" "TLS handshakes/s (clean: no failure," "best clean rate $tls_best/s: $tls_best_line" \
		"(no target)" "-"
	printf "%-34s\n" "  all recorded, p99 < $stall_ms ms)"
fi
printf "%-34s %-52s %-30s %s\n" "RSS during a flood (worst VmRSS)" \
	"$(mib "$worst_rss") MiB (anon $(mib "${worst_rss_anon:-0}"), file $(mib "${worst_rss_file:-0}")) in $worst_rss_run" "< 64 MiB" \
	"$(v "$([ "$worst_rss" -lt 65536 ] && echo 1)")"
printf "%-34s %-52s %-30s %s\n" "  largest RssAnon" \
	"$(mib "$worst_anon") MiB in $worst_anon_run" "(part of VmRSS)" "-"
printf "%-34s %-52s %-30s %s\n" "  largest RssFile" \
	"$(mib "$worst_file") MiB in $worst_file_run" "(part of VmRSS)" "-"
printf "%-34s %-52s %-30s %s\n" "RSS idle (worst, before a flood)" "$(mib "$worst_idle") MiB" \
	"< 16 MiB" "$(v "$([ "$worst_idle" -lt 16384 ] && echo 1)")"
printf "%-34s %-52s %-30s %s\n" "RSS idle 2 s after a flood (worst)" \
	"$(mib "$worst_after") MiB (anon $(mib "$worst_after_anon"), file $(mib "${worst_after_file:-0}"))" "< 16 MiB" \
	"$(v "$([ "$worst_after" -lt 16384 ] && echo 1)")"
