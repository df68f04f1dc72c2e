# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Sharing over a private DHT of five nodes on loopback, in a network
# namespace of our own (never the public network):
#   - an attack seen by node A is listed on B..E, through replication into
#     their stores and through a DHT lookup;
#   - the identity survives a restart;
#   - hostile values (unsigned, bad signature, copied key, expired,
#     oversized, malformed, another version) are refused and counted, and a
#     flood from one peer is rate limited;
#   - --no-share gets nothing; a dead bootstrap node and no network at all
#     leave the node collecting locally and saying so.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

: "${DHT_INJECT:?set DHT_INJECT to the dht_inject helper}"
# Attackers come from 198.51.100.0/24 (documentation addresses, shareable):
# routed to this host as local, so a client can send from them, but on no
# interface, so they are not the node's own addresses.
ip route add local 198.51.100.0/24 dev lo

NET=$SENTRYPEER_DHT_NETWORK
BOOT=14200
declare -A PIDS

# dnode NAME INDEX ARGS...: a sharing node on loopback with its own ports
dnode() {
	local name=$1 i=$2
	shift 2
	"$SENTRYPEER" run --data-dir "$TMP/$name" --user "" --sip-address 127.0.0.1 \
		--sip-port $((15060 + i)) --no-sip-tcp --no-sip-tls --dht-port $((BOOT + i)) \
		--dht-network "$NET" "$@" >>"$TMP/$name.log" 2>&1 &
	PIDS[$name]=$!
	wait_file_has "$TMP/$name.log" "sharing" 15 || fail "node $name did not start: $(tail -c 1500 "$TMP/$name.log")"
}

dstop() {
	local name=$1 pid=${PIDS[$1]} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		fail "node $name did not stop within 15 s"
		kill -KILL "$pid"
	fi
	wait "$pid" 2>/dev/null || true
	grep -qF "stopped cleanly" "$TMP/$name.log" && pass "node $name stopped cleanly" ||
		fail "node $name did not stop cleanly: $(tail -c 1500 "$TMP/$name.log")"
}

status() { # NAME: the node's status JSON (stats --json .node)
	"$SENTRYPEER" stats --json --data-dir "$TMP/$1" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["node"]))'
}

status_field() { # NAME PYTHON-EXPR over d (the node object)
	status "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

wait_until() { # SECONDS COMMAND...: poll until COMMAND succeeds
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

invite_from() { # SRC-IP DST-PORT NUMBER
	python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys
src, port, num = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
msg = ("INVITE sip:%s@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK%d\r\n"
       "From: <sip:100@%s>;tag=1\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: dht-test-%d\r\n"
       "CSeq: 1 INVITE\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
       % (num, src, port, src, num, port))
s.sendto(msg.encode(), ("127.0.0.1", port))
EOF
}

# ---- a network of five -----------------------------------------------------

dnode a 0 --bootstrap none
for n in b c d e; do
	i=$(( $(printf '%d' "'$n") - 96 ))
	dnode "$n" "$i" --bootstrap "127.0.0.1:$BOOT"
done
for n in b c d e; do
	wait_until 20 grep -qF "dht: connected" "$TMP/$n.log" && pass "node $n joined the network" ||
		fail "node $n did not connect: $(tail -c 800 "$TMP/$n.log")"
done
wait_until 20 grep -qF "dht: connected" "$TMP/a.log" && pass "node a (no bootstrap) learns that peers joined" ||
	fail "node a never saw a peer"
KEY_A=$("$SENTRYPEER" id --data-dir "$TMP/a")
expect_eq "${#KEY_A}" "64" "sentrypeer id prints a 64-digit key id"
expect_eq "$(stat -c %a "$TMP/a/sentrypeer.sock")" "600" "the control socket is owner-only"
expect_eq "$(stat -c %a "$TMP/a/identity.pem")" "600" "the identity file is owner-only"

# ---- an attack on A reaches everyone ----------------------------------------

invite_from 198.51.100.7 15060 +441234567
t0=$(date +%s%N)
for n in b c d e; do
	if wait_until 20 "$SENTRYPEER" lookup --local --data-dir "$TMP/$n" 198.51.100.7; then
		pass "node $n has A's observation in its store (replication)"
	else
		fail "node $n never got 198.51.100.7: $(status "$n")"
	fi
done
echo "# event on A to the record in four stores: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_exit 0 "the number is listed on d" -- "$SENTRYPEER" lookup --data-dir "$TMP/d" --local 00441234567
expect_contains "$OUT" "1 peer" "d says one peer reported it"
"$SENTRYPEER" lookup --json --local --data-dir "$TMP/e" 198.51.100.7 >"$TMP/e.json"
pyrun "the record names A as its reporter" "$TMP/e.json" "$KEY_A" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["listed"] and not j["local"] and j["peers"] == 1, j
assert [r["reporter"] for r in j["reports"]] == [sys.argv[2]], j["reports"]
print("ok - e's record of 198.51.100.7 is from A alone, as a peer report")
EOF
# a DHT lookup proper, through the running node
expect_exit 0 "lookup --refresh on c asks the DHT through its node" -- \
	"$SENTRYPEER" lookup --refresh --data-dir "$TMP/c" 198.51.100.7
expect_contains "$OUT" "DHT asked via the running node: found" "c's answer says where it came from"
"$SENTRYPEER" export --source peers --format txt --data-dir "$TMP/b" >"$TMP/b.txt"
expect_contains "$(cat "$TMP/b.txt")" "198.51.100.7" "b's export of peer data carries it"
expect_exit 1 "loopback is never published: 127.0.0.1 unknown on b" -- \
	"$SENTRYPEER" lookup --local --data-dir "$TMP/b" 127.0.0.1

# ---- coalescing and the bandwidth budget -----------------------------------------

pub() { status_field "$1" "d['dht']['published_records']"; }
before=$(pub a)
for k in 1 2 3 4 5 6 7 8 9 10; do invite_from 198.51.100.20 15060 +4420000; sleep 0.3; done
sleep 2
after=$(pub a)
expect_eq "$((after - before))" "2" "ten attacks from one IP on one number: one publish each for the IP and the number"
dnode j 10 --bootstrap "127.0.0.1:$BOOT" --dht-bandwidth 256
wait_until 20 grep -qF "dht: connected" "$TMP/j.log" || fail "j did not connect"
for k in $(seq 21 60); do invite_from "198.51.100.$k" 15070 +4430000; done
sleep 3
deferred=$(status_field j "d['dht']['publish_deferred']")
published=$(pub j)
[ "$deferred" -gt 0 ] && [ "$published" -lt 41 ] &&
	pass "a 256 B/s budget defers publishing ($published published, $deferred deferred)" ||
	fail "the budget did not hold: published $published, deferred $deferred"
dstop j

# ---- a small device through a DHT proxy ----------------------------------------

if command -v dhtnode >/dev/null; then
	dhtnode -n "$NET" -p $((BOOT + 40)) -b "127.0.0.1:$BOOT" --proxyserver 18080 -s >"$TMP/proxy.log" 2>&1 &
	PROXY=$!
	sleep 2
	dnode k 11 --bootstrap none --dht-proxy http://127.0.0.1:18080
	expect_contains "$(cat "$TMP/k.log")" "through the proxy http://127.0.0.1:18080" "k says it uses the proxy"
	if wait_until 20 "$SENTRYPEER" lookup --local --data-dir "$TMP/k" 198.51.100.7; then
		pass "k, with no DHT node of its own, gets the feed through the proxy"
	else
		fail "k got nothing through the proxy: $(status k)"
	fi
	dstop k
	kill "$PROXY" 2>/dev/null
	wait "$PROXY" 2>/dev/null || true
else
	skip "dhtnode is not installed: no DHT proxy test"
fi

# ---- a DHT lookup with no node running: a short-lived node -------------------

"$SENTRYPEER" import --data-dir "$TMP/cli" /dev/null >/dev/null 2>&1 # an empty store
expect_exit 0 "no node running: lookup asks the DHT with a node of its own" -- \
	"$SENTRYPEER" lookup --data-dir "$TMP/cli" --bootstrap "127.0.0.1:$BOOT" --dht-timeout 5s 198.51.100.7
expect_contains "$ERR" "no running node" "and says so"
expect_exit 0 "what it found was cached: the next lookup is local" -- \
	"$SENTRYPEER" lookup --local --data-dir "$TMP/cli" 198.51.100.7

# ---- the identity survives a restart -----------------------------------------

dstop b
dnode b 2 --bootstrap "127.0.0.1:$BOOT"
expect_eq "$(grep -c 'made a new node identity' "$TMP/b.log")" "1" "b made its identity once, not at restart"
KEY_B2=$(grep -o 'sharing over the DHT as [0-9a-f]*' "$TMP/b.log" | awk '{print $6}' | sort -u | wc -l)
expect_eq "$KEY_B2" "1" "b shares under the same key id after the restart"

# ---- hostile values -----------------------------------------------------------

mkdir -p "$TMP/evil" "$TMP/good"
"$DHT_INJECT" "$BOOT" "$NET" "$TMP/good" good 198.51.100.60 >/dev/null
expect_exit 0 "control: a valid value from a stranger is accepted" -- \
	"$SENTRYPEER" lookup --refresh --data-dir "$TMP/c" 198.51.100.60
"$DHT_INJECT" "$BOOT" "$NET" "$TMP/evil" hostile 198.51.100.50 >/dev/null
expect_exit 1 "hostile values for 198.51.100.50 list nothing" -- \
	"$SENTRYPEER" lookup --refresh --data-dir "$TMP/c" 198.51.100.50
for why in signature wrong_key oversized malformed version; do
	if wait_until 10 test "$(status_field c "d['dht']['rejected']['$why']")" -gt 0; then
		pass "c refused and counted: $why"
	else
		fail "c counted no '$why' rejection: $(status c)"
	fi
done
got=$(status_field c "d['dht']['rejected']['expired']")
[ "$got" -gt 0 ] && pass "c refused and counted: expired" || fail "no expired rejection: $(status c)"
expect_exit 1 "the copied value did not list its original key either" -- \
	"$SENTRYPEER" lookup --local --data-dir "$TMP/c" 198.51.100.99

# a flood of validly signed values from one peer
"$DHT_INJECT" "$BOOT" "$NET" "$TMP/evil" flood 3000 >/dev/null
if wait_until 15 test "$(status_field d "d['dht']['rejected']['rate_limited']")" -gt 0; then
	pass "d rate-limits a flood from one peer"
else
	fail "d took the whole flood: $(status d)"
fi
n=$("$SENTRYPEER" export --source peers --format txt --data-dir "$TMP/d" | grep -c '^2001:db8::f:' || true)
[ "$n" -lt 1500 ] && pass "d kept $n of 3000 flooded records (bounded by the per-peer rate)" ||
	fail "d kept $n of 3000 flooded records"
kill -0 "${PIDS[d]}" && pass "d is still up after the flood" || fail "d died in the flood"

# trust: a node that denies the injector's key takes nothing from it
EVIL=$("$SENTRYPEER" id --data-dir "$TMP/evil")
GOOD=$("$SENTRYPEER" id --data-dir "$TMP/good")
dnode f 6 --bootstrap "127.0.0.1:$BOOT" --dht-deny "$GOOD"
expect_exit 1 "f denies the good injector's key: 198.51.100.60 not listed" -- \
	"$SENTRYPEER" lookup --refresh --data-dir "$TMP/f" 198.51.100.60
[ "$(status_field f "d['dht']['rejected']['denied']")" -gt 0 ] && pass "f counted the denied values" ||
	fail "f counted no denied value: $(status f)"
expect_exit 1 "dht-min-reporters 2: one peer alone does not list" -- \
	"$SENTRYPEER" lookup --local --dht-min-reporters 2 --data-dir "$TMP/e" 198.51.100.7
expect_contains "$OUT" "dht-min-reporters asks for 2" "and the answer says why"
dstop f

# ---- tit for tat ------------------------------------------------------------------

dnode g 7 --no-share
expect_exit 1 "--no-share: A's attacker is not listed" -- \
	"$SENTRYPEER" lookup --data-dir "$TMP/g" 198.51.100.7
expect_contains "$OUT" "sharing is off" "and the answer says why"
expect_exit 2 "--no-share: no peer data to export" -- \
	"$SENTRYPEER" export --source peers --data-dir "$TMP/g" --no-share
expect_contains "$ERR" "sharing is off" "export says why"
invite_from 198.51.100.8 15067 +44999
sleep 3
expect_exit 1 "--no-share publishes nothing: g's attacker is unknown to b" -- \
	"$SENTRYPEER" lookup --refresh --data-dir "$TMP/b" 198.51.100.8
dstop g

# ---- a dead bootstrap node, and no network at all --------------------------------

dnode h 8 --bootstrap 127.0.0.1:9
invite_from 198.51.100.9 15068 +44111
wait_until 10 "$SENTRYPEER" lookup --local --data-dir "$TMP/h" 198.51.100.9 &&
	pass "with a dead bootstrap node the node still records" || fail "h recorded nothing"
expect_eq "$(status_field h "d['dht']['connected']")" "False" "stats say h is not connected"
wait_until 15 grep -qF "no peer has answered" "$TMP/h.log" && pass "h's log says it keeps retrying" ||
	fail "h's log does not say it is alone: $(cat "$TMP/h.log")"
dstop h
start=$(date +%s%N)
expect_exit 1 "no node, dead bootstrap: lookup gives up within its timeout" -- \
	"$SENTRYPEER" lookup --data-dir "$TMP/h" --bootstrap 127.0.0.1:9 --dht-timeout 1s 198.51.100.77
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 4000 ] && pass "it answered in $ms ms" || fail "it took $ms ms"
dnode i 9 --bootstrap nonexistent.invalid:4222
invite_from 198.51.100.10 15069 +44222
wait_until 10 "$SENTRYPEER" lookup --local --data-dir "$TMP/i" 198.51.100.10 &&
	pass "with no DNS and no network the node still records" || fail "i recorded nothing"
dstop i

for n in a b c d e; do dstop "$n"; done
finish
