# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# SIP over TCP, TLS and IPv6, with a python3 client (sip_client.py):
# pipelined, partial and split messages; oversized, silent and too many
# connections; the self-signed TLS certificate; IPv6; the destination
# address of each event. Runs in a private network namespace (sip_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

PORT=5070
TLS_PORT=5071
JLOG="$TMP/events.jsonl"

# a UDP OPTIONS makes the node commit, and a commit carries its counters
nudge() { sip_options udp 127.0.0.1 "$PORT" >/dev/null || true; }

# ---- TCP framing, oversized messages, TLS --------------------------------------
start_node tcp --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -r \
	-l "$JLOG" --sip-reply-rate 1000 --sip-max-header 2K || { finish; exit 1; }
CERT="$NODE_DIR/tls-cert.pem"

# the honeypot's and the writer's threads are named and run as SCHED_BATCH
# (policy 3, field 41 of stat): their wake-ups never preempt an API lookup
threads_ok() {
	local want=$1 t comm policy found=0
	for t in /proc/"$NODE_PID"/task/*; do
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		[ "$comm" = "$want" ] || continue
		policy=$(sed 's/.*) //' "$t/stat" | awk '{ print $39 }')
		[ "$policy" = 3 ] || return 1
		found=$((found + 1))
	done
	[ "$found" -gt 0 ]
}
for name in sp-sip-udp sp-sip-stream sp-writer; do
	if threads_ok "$name"; then pass "thread $name: named, SCHED_BATCH"; else
		fail "thread $name: not found or not SCHED_BATCH: $(grep -H . /proc/"$NODE_PID"/task/*/comm | tr '\n' ' ')"; fi
done

pyrun "TCP and TLS" "$JLOG" "$PORT" "$TLS_PORT" <<'EOF'
import socket, sys, threading, time
from sip_client import *
jlog, port, tls_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
H = "127.0.0.1"

# (g, part) a client that connects to the TLS port and never says hello;
# a thread notes when the node drops it, while the other checks run
silent = tcp_connect(H, tls_port)
silent_closed = []
watcher = threading.Thread(target=lambda: silent_closed.append(wait_closed(silent, 9)))
watcher.start()

# (a) three OPTIONS pipelined in one write
cids = [token(12) + "@pipelined" for _ in range(3)]
s = tcp_connect(H, port)
replies = stream_request(s, b"".join(request("OPTIONS", H, port, transport="TCP", call_id=c) for c in cids), 3)
check([status_code(r) for r in replies] == [200, 200, 200], "pipelined: three 200 OK on one connection",
      [status_line(r) for r in replies])
check([header(r, "call-id") for r in replies] == cids, "pipelined: replies in order, each to its request",
      [header(r, "call-id") for r in replies])
check(all("received=127.0.0.1" in (header(r, "via") or "") for r in replies), "replies carry Via received=")
s.close()
got = wait_events(jlog, lambda e: any(with_call_id(c)(e) for c in cids), 3)
check(len(got) == 3 and all(e["transport_type"] == "TCP" for e in got),
      "pipelined: three TCP events", [(e["transport_type"], e["sip_method"]) for e in got])

# RFC 5626 keep-alive: CRLFCRLF is answered with CRLF, and the connection
# still carries messages after it
s = tcp_connect(H, port)
s.sendall(b"\r\n\r\n")
s.settimeout(3)
try:
    pong = s.recv(16)
except OSError as e:
    pong = repr(e)
check(pong == b"\r\n", "TCP keep-alive CRLFCRLF answered with CRLF", pong)
r = stream_request(s, request("OPTIONS", H, port, transport="TCP"))
check(r and status_code(r[0]) == 200, "the connection still works after a keep-alive")
s.close()

# (b) one byte a write
cid = token(12) + "@bytewise"
msg = request("OPTIONS", H, port, transport="TCP", call_id=cid)
s = tcp_connect(H, port)
for i in range(len(msg)):
    s.send(msg[i:i + 1])
    time.sleep(0.004)
r = Stream(s).read_message(5)
check(status_code(r) == 200, "bytewise: %d one-byte writes answered 200 OK" % len(msg), status_line(r))
s.close()
got = wait_events(jlog, with_call_id(cid))
check(len(got) == 1 and got[0]["sip_message"] == msg.decode(), "bytewise: recorded once, whole",
      len(got))

# (c) an INVITE split inside Content-Length and inside the body
cid = token(12) + "@split"
msg = request("INVITE", H, port, number="4412345678", transport="TCP", call_id=cid, body=SDP_300)
cut1 = msg.index(b"Content-Length") + 9
cut2 = msg.index(b"\r\n\r\n") + 4 + 120
s = tcp_connect(H, port)
for part in (msg[:cut1], msg[cut1:cut2], msg[cut2:]):
    s.send(part)
    time.sleep(0.2)
st = Stream(s)
codes = []
for _ in range(2):
    r = st.read_message(3)
    if r is None:
        break
    codes.append(status_code(r))
check(codes == [100, 404], "split INVITE: 100 Trying then 404", codes)
s.close()
got = wait_events(jlog, with_call_id(cid), 2, timeout=3)
check(len(got) == 1, "split INVITE: recorded once", len(got))
check(got and got[0]["sip_message"] == msg.decode() and got[0]["sip_message"].endswith(SDP_300.decode()),
      "split INVITE: recorded whole, with its 300-byte SDP body")
check(got and got[0]["called_number"] == "4412345678", "split INVITE: called number",
      got and got[0]["called_number"])

# (d) a header block over --sip-max-header 2K: the node closes the connection
for what, data in (
        ("whole message", request("OPTIONS", H, port, transport="TCP", extra=["X-Pad: " + "x" * 3000])),
        ("header block without an end", b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nX-Pad: " + b"y" * 4000)):
    s = tcp_connect(H, port)
    try:
        s.sendall(data)
    except OSError:
        pass
    t = wait_closed(s, 5)
    check(t is not None, "oversized %s: connection closed by the node" % what, t)
    s.close()
r = options("tcp", H, port)
check(status_code(r) == 200, "after oversized messages: OPTIONS over TCP answered 200 OK", status_line(r))
check(not wait_events(jlog, lambda e: "X-Pad" in e["sip_message"], timeout=0.5),
      "oversized messages not recorded")

# (g) TLS: OPTIONS answered over TLS
cid = token(12) + "@tls"
s = tls_connect(H, tls_port)
check(s.version() is not None, "TLS handshake done (%s, %s)" % (s.version(), s.cipher()[0]))
replies = stream_request(s, request("OPTIONS", H, tls_port, transport="TLS", call_id=cid), 1, 5)
check(replies and status_code(replies[0]) == 200, "OPTIONS over TLS answered 200 OK",
      replies and status_line(replies[0]))
s.close()
got = wait_events(jlog, with_call_id(cid))
check(len(got) == 1 and got[0]["transport_type"] == "TLS", "TLS event recorded with transport TLS",
      [e["transport_type"] for e in got])

# the silent TLS client: dropped by the 5 s handshake timer
watcher.join(10)
t = silent_closed[0] if silent_closed else None
check(t is not None and 4.5 <= t <= 6.5,
      "TLS client that never handshakes dropped after %s s (handshake timeout 5 s)" %
      (None if t is None else "%.2f" % t))
silent.close()
EOF

nudge
expect_counter sip_oversized 2 10 "oversized messages counted"
expect_counter tls_handshakes_failed 1 10 "silent TLS client counted"
expect_counter events_tcp 7 10 "TCP events counted"
expect_counter events_tls 1 10 "TLS event counted"
expect_counter tcp_connections 9 10 "TCP and TLS connections counted"
stop_node

# ---- the certificate: private, and reused; IPv6 ----------------------------------
if [ -f "$CERT" ]; then
	expect_eq "$(stat -c %a "$CERT")" 600 "self-signed certificate is mode 600"
	expect_eq "$(stat -c %a "$NODE_DIR/tls-key.pem")" 600 "its key is mode 600"
	expect_contains "$(cat "$TMP/tcp.log")" "created a self-signed TLS certificate" "node says it made the certificate"
	CERT_SUM=$(sha256sum <"$CERT")
	KEY_SUM=$(sha256sum <"$NODE_DIR/tls-key.pem")
else
	fail "no self-signed certificate at $CERT"
	CERT_SUM=missing KEY_SUM=missing
fi

# the same data directory again, now on IPv6 and IPv4 loopback
rm -f "$JLOG"
mv "$TMP/tcp.log" "$TMP/tcp-first.log"
start_node tcp --sip-address ::1 --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" \
	-r -l "$JLOG" || { finish; exit 1; }
expect_eq "$(sha256sum <"$CERT")" "$CERT_SUM" "certificate reused on restart (same content)"
expect_eq "$(sha256sum <"$NODE_DIR/tls-key.pem")" "$KEY_SUM" "key reused on restart"
if grep -qF "created a self-signed" "$NODE_LOG"; then fail "a new certificate was made on restart"; else pass "no new certificate on restart"; fi
expect_contains "$(cat "$NODE_LOG")" "listening for SIP over UDP on [::1]:$PORT" "listening on [::1]"

pyrun "IPv6" "$JLOG" "$PORT" "$TLS_PORT" <<'EOF'
import sys
from sip_client import *
jlog, port, tls_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for tp in ("UDP", "TCP", "TLS"):
    cid = token(12) + "@v6" + tp.lower()
    msg = request("OPTIONS", "::1", tls_port if tp == "TLS" else port, transport=tp, call_id=cid)
    if tp == "UDP":
        r = udp_request("::1", port, msg)
    else:
        s = tcp_connect("::1", port) if tp == "TCP" else tls_connect("::1", tls_port)
        rs = stream_request(s, msg)
        s.close()
        r = rs[0] if rs else None
    check(status_code(r) == 200, "OPTIONS over %s to [::1] answered 200 OK" % tp, status_line(r))
    got = wait_events(jlog, with_call_id(cid))
    check(len(got) == 1 and got[0]["source_ip"] == "::1" and got[0]["destination_ip"] == "::1"
          and got[0]["transport_type"] == tp,
          "%s over IPv6 recorded with source_ip and destination_ip ::1" % tp,
          [(e["source_ip"], e["destination_ip"], e["transport_type"]) for e in got])
r = options("udp", "127.0.0.1", port)
check(status_code(r) == 200, "the IPv4 listener beside it answers too", status_line(r))
EOF
stop_node
expect_exit 0 "::1 is listed" -- sp lookup --data-dir "$NODE_DIR" ::1

# ---- slow clients and too many connections -------------------------------------------
start_node limits --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -r \
	--sip-idle-timeout 2s --sip-max-connections-per-source 3 || { finish; exit 1; }

pyrun "limits" "$PORT" <<'EOF'
import sys, time
from sip_client import *
port = int(sys.argv[1])
H = "127.0.0.1"

# (e) connects and sends nothing: closed at the 2 s idle timeout
s = tcp_connect(H, port)
t = wait_closed(s, 6)
check(t is not None and 1.5 <= t <= 3.5, "silent TCP client closed after %s s (idle timeout 2s)" %
      (None if t is None else "%.2f" % t))
s.close()

# half a message, then nothing: a message must be whole within a third of it
s = tcp_connect(H, port)
s.sendall(request("OPTIONS", H, port, transport="TCP")[:60])
t = wait_closed(s, 6)
check(t is not None and t <= 1.8, "half a message then silence: closed after %s s (message timeout 0.67 s)" %
      (None if t is None else "%.2f" % t))
s.close()

# (f) six connections from one address, at most three per source
conns = [tcp_connect(H, port) for _ in range(6)]
answered, closed = 0, 0
for s in conns:
    try:
        r = stream_request(s, request("OPTIONS", H, port, transport="TCP"), 1, 1.0)
    except OSError:
        r = []
    if r and status_code(r[0]) == 200:
        answered += 1
    elif wait_closed(s, 1.0) is not None:
        closed += 1
check(answered == 3, "per-source limit 3: three of six connections answered", answered)
check(closed == 3, "per-source limit 3: the other three closed by the node", closed)
for s in conns:
    s.close()
EOF
nudge
expect_counter tcp_connections_timed_out 2 10 "timed-out connections counted"
expect_counter tcp_connections_refused 3 10 "refused connections counted"
stop_node

# ---- (i) the destination address, from IP_PKTINFO --------------------------------------
start_node any --sip-address 0.0.0.0 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -r -l "$JLOG" ||
	{ finish; exit 1; }
pyrun "destination" "$JLOG" "$PORT" <<'EOF'
import sys
from sip_client import *
jlog, port = sys.argv[1], int(sys.argv[2])
for dst, tp in (("127.0.0.2", "UDP"), ("127.0.0.3", "TCP")):
    cid = token(12) + "@dst"
    msg = request("OPTIONS", dst, port, transport=tp, call_id=cid)
    if tp == "UDP":
        # a connected socket only takes replies from 127.0.0.2: the node must
        # answer from the address it was sent to
        r = udp_request(dst, port, msg)
    else:
        s = tcp_connect(dst, port)
        rs = stream_request(s, msg)
        s.close()
        r = rs[0] if rs else None
    check(status_code(r) == 200, "OPTIONS over %s to %s answered 200 OK from %s" % (tp, dst, dst),
          status_line(r))
    got = wait_events(jlog, with_call_id(cid))
    check(len(got) == 1 and got[0]["destination_ip"] == dst,
          "%s to %s recorded with destination_ip %s" % (tp, dst, dst),
          [e["destination_ip"] for e in got])
EOF
# a client still connected does not hold the node up
python3 -c 'import socket, time
s = socket.create_connection(("127.0.0.1", int(__import__("sys").argv[1])))
time.sleep(15)' "$PORT" &
HOLDER=$!
for ((i = 0; i < 30; i++)); do ss -tn state established "( dport = :$PORT )" 2>/dev/null | grep -q "$PORT" && break; sleep 0.1; done
t0=$(date +%s%N)
stop_node
t1=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$t1" -lt 5000 ] && pass "node stopped in $t1 ms with a client connected" || fail "node took $t1 ms to stop with a client connected"
kill "$HOLDER" 2>/dev/null || true
wait "$HOLDER" 2>/dev/null || true
finish
