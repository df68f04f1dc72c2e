# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# The HTTP API of a real node (sentrypeer run -a), in a private network
# namespace (sip_lib.sh): events come in over SIP from documentation
# addresses put on lo, records from an import; every route through curl and
# python; exports byte for byte against `sentrypeer export`; the token from
# a file; IPv4 and IPv6 listeners; the cursor across a restart; concurrent
# and hostile clients; a clean stop with an export in flight.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

for tool in curl cmp; do
	command -v "$tool" >/dev/null || { skip "$tool is not installed"; finish; exit 77; }
done
ip addr add 203.0.113.50/32 dev lo
ip addr add 203.0.113.51/32 dev lo

PORT=5060
API=http://127.0.0.1:8082
printf 'tok-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$TMP/token"
chmod 600 "$TMP/token"
TOKEN=$(head -n 1 "$TMP/token")
AUTH="Authorization: Bearer $TOKEN"

wait_api() {
	wait_file_has "$NODE_LOG" "HTTP API listening on http://[::1]:8082/" 10 &&
		pass "API listening on 127.0.0.1 and ::1" || fail "API did not start: $(tail -c 1500 "$NODE_LOG")"
}
c() { curl -s --max-time 10 -H "$AUTH" "$@"; }
code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }

start_node api --sip-address 127.0.0.1 --sip-port "$PORT" \
	--no-sip-tls -a --api-address 127.0.0.1 --api-address ::1 --api-token-file "$TMP/token" ||
	{ finish; exit 1; }
wait_api
expect_contains "$(cat "$NODE_LOG")" "(token required)" "the log says a token is required"

make_fixture "$TMP/f.jsonl"
expect_exit 0 "import while the node serves the API" -- sp import --data-dir "$NODE_DIR" "$TMP/f.jsonl"

# ---- SIP in, the API out ---------------------------------------------------------
pyrun "SIP events reach the API" "$PORT" "$TOKEN" <<'EOF'
import sys, time
import api_client as A
from sip_client import check
port, A.TOKEN = int(sys.argv[1]), sys.argv[2]
for i in range(5):
    A.invite("203.0.113.50", "127.0.0.1", port, "+46500729221", ua="friendly-scanner")
r = A.wait_for(lambda: (lambda r: r if r.status == 200 and r.json()["count"] >= 5 else None)(
    A.get("/api/v1/ip-addresses/203.0.113.50")), timeout=10)
check(r and r.status == 200, "an address seen over SIP is listed over HTTP")
j = r.json() if r else {}
check(j.get("count") == 5, "its count", j)
check(j.get("methods") == ["INVITE"] and j.get("user_agents") == ["friendly-scanner"],
      "methods and user agent", j)
check(j.get("local") is True and j.get("dht") == "off", "seen here, no DHT", j)
r = A.get("/numbers/0046500729221")
check(r.status == 200 and r.json() == {"phone_number_found": "46500729221"},
      "upstream's number route: 00 and + forms are one number", r.body)
r = A.get("/api/v1/events?limit=5")
ev = r.json()["events"]
check(len(ev) == 5 and ev[0]["source_ip"] == "203.0.113.50" and ev[0]["transport"] == "UDP",
      "recent events, newest first", ev[:1])
r = A.get("/api/v1/events?limit=2&raw=yes")
raws = [e.get("raw", "") for e in r.json()["events"]]
check(len(raws) == 2 and all(x.startswith("INVITE sip:") and "friendly-scanner" in x and
                             x.endswith("\r\n") for x in raws),
      "recent events with their messages, stored compressed, read back whole", raws[:1])
m = A.get("/metrics").body.decode()
check('sentrypeer_events_total{transport="udp"} 5' in m, "metrics count UDP events", m[:300])
check("sentrypeer_sip_messages_received_total 5" in m, "metrics count SIP messages")
check("sentrypeer_events_recorded_total 5" in m, "metrics count recorded events")
check("sentrypeer_writer_catch_ups_total 0" in m, "metrics: no fold catch-up for 5 events")
check("sentrypeer_writer_store_reopens_total 0" in m, "metrics: no store reopen for 5 events")
check("sentrypeer_dht_enabled 0" in m and "sentrypeer_dht_peers" not in m,
      "metrics: no DHT series without a DHT")
EOF

# ---- the API's threads take short time slices (sp_thread_latency) ---------------------
# libmicrohttpd's threads ("MHD-...") ask for a 0.1 ms slice; Linux shows it
# (se.slice in /proc/PID/task/TID/sched) and honours it from 6.12 on. A
# thread asks when it first serves a connection: one on each listener
c -o /dev/null "$API/health-check"
c -o /dev/null -g "http://[::1]:8082/health-check"
kver=$(uname -r | awk -F. '{ printf "%d", $1 * 1000 + $2 }')
slices=
for t in /proc/"$NODE_PID"/task/*; do
	case $(cat "$t/comm" 2>/dev/null) in MHD*) ;; *) continue ;; esac
	slices="$slices $(awk '$1 == "se.slice" { print $3 }' "$t/sched" 2>/dev/null)"
done
if [ -z "$(echo $slices)" ] || [ "$kver" -lt 6012 ]; then
	skip "API time slice: this kernel ($(uname -r)) shows or honours none"
else
	# each listener's thread that served a connection; in a pool of
	# several (4 CPUs or more) the others ask when they first serve
	n_short=$(echo $slices | tr ' ' '\n' | grep -c '^100000$')
	[ "$n_short" -ge 2 ] && pass "the API threads that served run with a 0.1 ms time slice" ||
		fail "API threads' slices: $slices"
fi

# ---- the token, IPv6, upstream's shapes -------------------------------------------------
expect_eq "$(code "$API/health-check")" "401" "no token: 401"
expect_eq "$(code -H 'Authorization: Bearer nope' "$API/health-check")" "401" "wrong token: 401"
expect_eq "$(code -u "anyone:$TOKEN" "$API/")" "200" "dashboard with the token as Basic password"
expect_eq "$(code -H "$AUTH" "$API/health-check")" "200" "right token: 200"
expect_eq "$(code -H "$AUTH" "http://[::1]:8082/ip-addresses/203.0.113.5")" "200" "IPv6 listener answers"
expect_eq "$(c "$API/ip-addresses/203.0.113.5")" '{"bad_actor_found":"203.0.113.5"}' "upstream's found body"
expect_eq "$(c "$API/ip-addresses/192.0.2.1")" '{"message":"No bad actor found"}' "upstream's not-found body"
expect_eq "$(code -H "$AUTH" "$API/ip-addresses/999.1.1.1")" "400" "invalid address: 400"
expect_eq "$(code -H "$AUTH" "$API/numbers/%2B441234")" "200" "a +number, escaped"
expect_eq "$(code -H "$AUTH" "$API/numbers/046500729221")" "200" "a number starting with 0"
expect_eq "$(code -H "$AUTH" -X POST "$API/api/v1/export")" "405" "POST: 405"
expect_eq "$(code -H "$AUTH" "$API/api/v2/things")" "404" "unknown route: 404"
# 203.0.113.50 is on this host (lo): lists, like exports, leave this host's
# own addresses out unless asked
expect_contains "$(c "$API/ip-addresses")" '"ip_addresses_total":3' "full list: live, shareable, not this host's"
expect_contains "$(c "$API/ip-addresses?include_private=yes")" '"ip_address":"203.0.113.50"' \
	"full list with include_private: the SIP source too"

# ---- exports: the same bytes as the CLI ------------------------------------------------------
# timeouts in nft/ipset/crowdsec count whole seconds from now: compare when
# two CLI runs around the HTTP one agree
same_as_cli() { # QUERY CLI-ARGS...
	local q=$1 try
	shift
	for try in 1 2 3 4 5; do
		sp export --data-dir "$NODE_DIR" "$@" >"$TMP/cli1" 2>/dev/null
		c "$API/api/v1/export$q" >"$TMP/http"
		sp export --data-dir "$NODE_DIR" "$@" >"$TMP/cli2" 2>/dev/null
		cmp -s "$TMP/cli1" "$TMP/cli2" || continue
		if cmp -s "$TMP/cli1" "$TMP/http"; then
			pass "export $q: the same bytes as sentrypeer export $* ($(wc -l <"$TMP/http") lines)"
		else
			fail "export $q differs from sentrypeer export $*: $(diff "$TMP/cli1" "$TMP/http" | head -5)"
		fi
		return
	done
	fail "export $q: the clock never held still"
}
same_as_cli "" 
same_as_cli "?format=json" --format json
same_as_cli "?format=jsonl&kind=all" --format jsonl --kind all
same_as_cli "?format=csv&source=local" --format csv --source local
same_as_cli "?format=txt&kind=number" --format txt --kind number
same_as_cli "?format=nft&nft_table=fw&set_name=voip" --format nft --nft-table fw --set-name voip
same_as_cli "?format=ipset&include_private=yes" --format ipset --include-private
same_as_cli "?format=crowdsec&since=3h" --format crowdsec --since 3h
expect_eq "$(code -H "$AUTH" "$API/api/v1/export?format=nft&kind=number")" "400" "nft of numbers: 400, as the CLI"

# ---- the cursor: only what is new, across a restart -------------------------------------------
CURSOR=$(c "$API/api/v1/ip-addresses?limit=1000&include_private=yes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cursor"])')
expect_contains "$CURSOR" "." "a cursor"
expect_contains "$(c "$API/api/v1/ip-addresses?after=$CURSOR&include_private=yes")" '"count":0' "nothing new yet"
pyrun "a new address comes after the cursor" "$PORT" "$TOKEN" "$CURSOR" <<'EOF'
import sys
import api_client as A
from sip_client import check
port, A.TOKEN, cur = int(sys.argv[1]), sys.argv[2], sys.argv[3]
A.invite("203.0.113.51", "127.0.0.1", port, "100", ua="newcomer")
r = A.wait_for(lambda: (lambda r: r if r.json()["count"] else None)(
    A.get("/api/v1/ip-addresses?include_private=yes&after=" + cur)), timeout=10)
items = r.json()["items"] if r else []
check([i["key"] for i in items] == ["203.0.113.51"], "only the new address", items)
EOF
CURSOR=$(c "$API/api/v1/ip-addresses?limit=1000&include_private=yes&after=$CURSOR" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cursor"])')
stop_node
start_node api --sip-address 127.0.0.1 --sip-port "$PORT" --no-sip-tls -a --api-address 127.0.0.1 \
	--api-address ::1 --api-token-file "$TMP/token" || { finish; exit 1; }
wait_api
expect_contains "$(c "$API/api/v1/ip-addresses?after=$CURSOR&include_private=yes")" '"count":0,' "the cursor holds across a restart"

# ---- many clients at once, and hostile ones ------------------------------------------------------
RSS0=$(awk '$1 == "VmRSS:" { print $2 }' /proc/"$NODE_PID"/status)
pyrun "concurrent and hostile clients" "$TOKEN" <<'EOF'
import http.client, socket, sys, threading, time
import api_client as A
from sip_client import check
A.TOKEN = sys.argv[1]
H = {"Authorization": "Bearer " + A.TOKEN}
paths = [("/api/v1/ip-addresses/203.0.113.5", 200), ("/ip-addresses/192.0.2.77", 404),
         ("/numbers/+441234", 200), ("/api/v1/lookup/2001:db8::5", 200), ("/health-check", 200)]
bad = []
def client(n):
    conn = http.client.HTTPConnection("127.0.0.1", 8082, timeout=10)
    for i in range(150):
        p, want = paths[(n + i) % len(paths)]
        conn.request("GET", p, headers=H)
        r = conn.getresponse()
        r.read()
        if r.status != want:
            bad.append((p, r.status))
    conn.close()
ts = [threading.Thread(target=client, args=(n,)) for n in range(24)]
[t.start() for t in ts]
[t.join(30) for t in ts]
check(not bad and not any(t.is_alive() for t in ts), "24 keep-alive clients x 150 requests", bad[:5])

# hostile: garbage, huge headers, bodies, NULs, slow clients, many idle sockets
junk = [b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 5000,
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"POST /api/v1/export HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" + b"z" * 100000,
        b"GET /ip-addresses/203.0.113.5%00x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + A.TOKEN.encode() + b"\r\n\r\n",
        b"GET /api/v1/lookup/%ff%fe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + A.TOKEN.encode() + b"\r\n\r\n",
        b"\r\n" * 1000]
codes = [A.status_of(A.raw(j, timeout=3)) for j in junk]
check(codes[1] in (431, 400) and codes[2] in (414, 431, 400) and codes[3] == 401 and codes[4] == 400
      and codes[5] == 400, "hostile requests get 4xx answers", codes)
idle = []
for i in range(100):
    try:
        idle.append(socket.create_connection(("127.0.0.1", 8082), timeout=2))
    except OSError:
        break
slow = socket.create_connection(("127.0.0.1", 8082), timeout=5)
slow.sendall(b"GET /health-check HTTP/1.1\r\nHost")
r = A.get("/health-check")
check(r.status == 200, "still answering with 100 idle connections open", r.status)
for s in idle:
    s.close()
for i in range(300):
    A.raw(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"x" * (i * 10)), timeout=1)
r = A.get("/api/v1/lookup/203.0.113.5")
check(r.status == 200, "still answering after 300 more bad requests", r.status)
EOF
RSS1=$(awk '$1 == "VmRSS:" { print $2 }' /proc/"$NODE_PID"/status)
# a here-string, not a pipe: under pipefail, grep -q's early exit can kill
# ldd with SIGPIPE and turn a match into a failure
if grep -q libasan <<<"$(ldd "$SENTRYPEER" 2>/dev/null)"; then
	skip "memory growth not measured under AddressSanitizer (its quarantine keeps freed memory)"
elif [ $((RSS1 - RSS0)) -lt 20480 ]; then
	pass "memory after the abuse: +$((RSS1 - RSS0)) KiB"
else
	fail "memory grew by $((RSS1 - RSS0)) KiB"
fi
node_alive && pass "node alive after hostile clients" || fail "node died"

# ---- stop with a slow export in flight ----------------------------------------------------------------
python3 - "$TOKEN" >"$TMP/slow.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", 8082))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /api/v1/export?format=jsonl&kind=all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
          + sys.argv[1].encode() + b"\r\n\r\n")
time.sleep(15)
EOF
SLOW=$!
sleep 0.5
T0=$(date +%s%N)
stop_node
T1=$(date +%s%N)
[ $(((T1 - T0) / 1000000)) -lt 5000 ] && pass "stops in $(((T1 - T0) / 1000000)) ms with an export held open" ||
	fail "stop took $(((T1 - T0) / 1000000)) ms"
kill "$SLOW" 2>/dev/null || true
wait "$SLOW" 2>/dev/null || true

# ---- start-up errors ----------------------------------------------------------------------------------
expect_exit 2 "api-token and api-token-file together" -- timeout 10 "$SENTRYPEER" run --data-dir "$TMP/e1" --no-share -a \
	--sip-disable --api-token x --api-token-file "$TMP/token"
expect_contains "$ERR" "not both" "explained"
python3 -c 'import socket,sys,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8082)); s.listen(); print("bound", flush=True); time.sleep(20)' >"$TMP/hold.out" &
HOLD=$!
wait_file_has "$TMP/hold.out" bound 5 || fail "could not hold port 8082"
expect_exit 2 "API port in use" -- timeout 10 "$SENTRYPEER" run --data-dir "$TMP/e2" --no-share -a --sip-disable
expect_contains "$ERR" "another program has it" "port in use explained"
kill "$HOLD"
wait "$HOLD" 2>/dev/null || true
printf 'a b\n' >"$TMP/badtoken"
expect_exit 2 "a token with a space" -- timeout 10 "$SENTRYPEER" run --data-dir "$TMP/e3" --no-share -a --sip-disable \
	--api-token-file "$TMP/badtoken"
finish
