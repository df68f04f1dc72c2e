# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# The HTTP API of a sharing node: DHT status in /metrics and /health-check,
# and a lookup that misses locally asks the DHT within the caller's timeout.
# Two nodes on a private loopback DHT in a network namespace of our own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

ip route add local 198.51.100.0/24 dev lo
NET=${SENTRYPEER_DHT_NETWORK:-714253}
BOOT=14300

"$SENTRYPEER" run --data-dir "$TMP/a" --user "" --sip-address 127.0.0.1 --sip-port 15160 \
	--no-sip-tcp --no-sip-tls --dht-port $BOOT --dht-network "$NET" --bootstrap none >"$TMP/a.log" 2>&1 &
A=$!
wait_file_has "$TMP/a.log" "sharing" 15 || fail "node a did not start"
"$SENTRYPEER" run --data-dir "$TMP/b" --user "" --sip-address 127.0.0.1 --sip-port 15161 \
	--no-sip-tcp --no-sip-tls --dht-port $((BOOT + 1)) --dht-network "$NET" \
	--bootstrap "127.0.0.1:$BOOT" -a >"$TMP/b.log" 2>&1 &
B=$!
wait_file_has "$TMP/b.log" "HTTP API listening" 15 && pass "node b serves the API while sharing" ||
	fail "node b: $(tail -c 1500 "$TMP/b.log")"
wait_file_has "$TMP/b.log" "dht: connected" 20 && pass "node b joined" || fail "node b did not connect"

pyrun "API with a DHT" <<'PY'
import socket, time
import api_client as A
from sip_client import check
m = A.wait_for(lambda: (lambda b: b if "sentrypeer_dht_connected 1" in b else None)(A.get("/metrics").body.decode()), 20)
check(m and "sentrypeer_dht_enabled 1" in m, "metrics: DHT enabled and connected", (m or "")[-400:])
check(A.get("/health-check").json()["dht"] == "connected", "health-check: DHT connected")
t0 = time.monotonic()
r = A.get("/api/v1/lookup/198.51.100.99?timeout=700ms")
took = time.monotonic() - t0
check(r.status == 404 and r.json()["dht"] in ("not found", "timeout"), "an unknown key: asked the DHT", r.body)
check(took < 1.2, "answered within the caller's timeout (%.2f s)" % took)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.7", 0))
s.sendto(b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n"
         b"From: <sip:1@198.51.100.7>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: api-dht-1\r\n"
         b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", ("127.0.0.1", 15160))
r = A.wait_for(lambda: (lambda r: r if r.status == 200 else None)(A.get("/api/v1/lookup/198.51.100.7?timeout=2s")), 30, 0.5)
check(r and r.json()["peers"] == 1 and r.json()["local"] is False, "node a's attack is listed on b, from the peer", r and r.body)
PY
for p in $B $A; do kill -TERM $p; wait $p || true; done
grep -q "stopped cleanly" "$TMP/b.log" && pass "node b stopped cleanly" || fail "node b: $(tail -c 800 "$TMP/b.log")"
finish
