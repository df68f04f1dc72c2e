# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Hostile input over UDP and TCP: garbage, NULs, 64 KiB datagrams, a 60 KiB
# INVITE, truncated INVITEs, 500 Via headers, 10,000-character header
# lines, bad Content-Length, a flood of malformed datagrams. The node must
# keep running, keep answering, count what it could not parse and stay
# small. Then the reflector guard: replies are rate limited per source,
# and never much larger than the request. Runs in a private network
# namespace (sip_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

PORT=5070
TLS_PORT=5071
JLOG="$TMP/events.jsonl"

start_node hostile --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -r \
	-l "$JLOG" --raw-max 64K --sip-reply-rate 100000 || { finish; exit 1; }

pyrun "hostile input" "$JLOG" "$PORT" <<'EOF'
import json, os, random, socket, sys, time
from sip_client import *
jlog, port = sys.argv[1], int(sys.argv[2])
H = "127.0.0.1"
rnd = random.Random(1234)

def rbytes(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))

u = udp_socket(H)
u.connect((H, port))

def udp(data):
    try:
        u.send(data)
    except OSError as e:  # e.g. ECONNREFUSED from an earlier reply: keep going
        pass

def drain(sock, secs=0.2):
    out = []
    while True:
        r = udp_recv(sock, secs)
        if r is None:
            return out
        out.append(r)

def alive(what):
    r = options("udp", H, port)
    return check(status_code(r) == 200, "still answers after %s" % what, status_line(r))

# -- UDP garbage
for d in (b"", b"\x00", b"\r\n\r\n", b"hello world\r\n\r\n", b"\x00" * 1000,
          b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\x00\x00\r\nCall-ID: \x00x\r\n\r\n",
          b"INVITE \x00\xff\xfe sip:\x00@\x00 SIP/2.0\r\n\r\n",
          b"SIP/2.0 200 OK\r\n\r\n", b"\xff" * 512, rbytes(1500), rbytes(65507)):
    udp(d)
drain(u)
alive("garbage, NULs and a 64 KiB random datagram over UDP")

# -- a 60 KiB INVITE over UDP, recorded whole (--raw-max 64K)
cid = token(12) + "@big"
big = request("INVITE", H, port, number="15551234567", call_id=cid, body=sdp(60000))
check(60000 <= len(big) <= 65507, "60 KiB INVITE built (%d bytes)" % len(big))
udp(big)
codes = [status_code(r) for r in drain(u, 1.0)]
check(codes == [100, 404], "60 KiB INVITE answered 100 then 404", codes)
got = wait_events(jlog, with_call_id(cid))
check(len(got) == 1 and len(got[0]["sip_message"]) == len(big) and got[0]["sip_message"] == big.decode(),
      "60 KiB INVITE recorded whole (%s bytes)" % (got and len(got[0]["sip_message"])))

# -- truncated INVITEs: every 50th prefix, over UDP and over TCP
inv = request("INVITE", H, port, number="4420794960000", body=SDP_300)
for n in range(50, len(inv), 50):
    udp(inv[:n])
drain(u)
for n in range(50, len(inv), 50):
    s = tcp_connect(H, port)
    s.sendall(inv[:n])
    s.close()
alive("%d truncated INVITEs over UDP and TCP" % (2 * len(range(50, len(inv), 50))))

# -- 500 Via headers
vias = ["Via: SIP/2.0/UDP 10.%d.%d.1:5060;branch=z9hG4bK%06d" % (i // 250, i % 250, i) for i in range(500)]
cid = token(12) + "@vias"
msg = request("OPTIONS", H, port, call_id=cid, extra=vias)
udp(msg)
rs = drain(u, 0.5)
check(all(len(r) <= 4096 for r in rs), "500 Via headers: no reply over 4096 bytes", [len(r) for r in rs])
s = tcp_connect(H, port)
try:
    s.sendall(request("OPTIONS", H, port, transport="TCP", extra=vias))
except OSError:
    pass
check(wait_closed(s, 5) is not None, "500 Via headers over TCP (over --sip-max-header 16K): connection closed")
s.close()
alive("500 Via headers")

# -- a Via that libosip2 refuses: the event needs only the start line, To and
# User-Agent, so the INVITE is recorded; a reply must copy the Via: none
cid = token(12) + "@badvia"
msg = request("INVITE", H, port, number="4420794961111", call_id=cid, body=SDP_300)
head, sep, rest = msg.partition(b"\r\nVia: ")
msg = head + sep + b"SIP/2.0/UDP" + rest[rest.index(b"\r\n"):]
udp(msg)
rs = drain(u, 0.5)
check(rs == [], "an INVITE with a Via libosip2 refuses: not answered", [status_line(r) for r in rs])
got = wait_events(jlog, with_call_id(cid))
check(len(got) == 1 and got[0]["called_number"] == "4420794961111",
      "an INVITE with a Via libosip2 refuses: recorded with its number", got and got[0]["called_number"])
# a header the node does not read (Contact) may be malformed; one with no
# colon may not
cid = token(12) + "@badcontact"
udp(request("OPTIONS", H, port, call_id=cid, extra=["Contact: <<<sip:>>>;;;\"", "Allow: ,,,"]))
r = udp_recv(u, 1.0)
check(status_code(r) == 200, "an OPTIONS with a malformed Contact and Allow answered", status_line(r))
check(len(wait_events(jlog, with_call_id(cid))) == 1, "an OPTIONS with a malformed Contact recorded")

# -- header lines of 10,000 characters
long_ua = "A" * 10000
cid = token(12) + "@longlines"
msg = request("INVITE", H, port, number="9" * 10000, call_id=cid, ua=long_ua,
              extra=["Subject: " + "S" * 10000, "X-Long: " + "x" * 10000])
udp(msg)
drain(u)
s = tcp_connect(H, port)
st = Stream(s)
s.sendall(request("OPTIONS", H, port, transport="TCP", ua=long_ua))
r = st.read_message(3)
check(status_code(r) == 200, "a 10,000-character header line over TCP answered", status_line(r))
s.close()
got = wait_events(jlog, with_call_id(cid))
check(len(got) == 1, "10,000-character header lines over UDP recorded", len(got))
if got:
    e = got[0]
    check(len(e["sip_user_agent"]) < 1000 and long_ua.startswith(e["sip_user_agent"]),
          "a 10,000-character User-Agent is truncated in the event (%d)" % len(e["sip_user_agent"]))
    check(len(e["called_number"]) < 1000, "a 10,000-digit number is truncated in the event (%d)" %
          len(e["called_number"]))
alive("10,000-character header lines")

# -- TCP: garbage and NULs (then we close), bad Content-Length (the node closes)
for what, data, node_closes in (
        ("random bytes", rbytes(5000), False),
        ("NULs", b"\x00" * 3000 + b"\r\n\r\n", False),
        ("a message with NULs", b"OPTIONS sip:1@2 SIP/2.0\r\nVia: \x00\x00\r\n\r\n", False),
        ("Content-Length: -1", b"OPTIONS sip:1@2 SIP/2.0\r\nContent-Length: -1\r\n\r\n", True),
        ("Content-Length: abc", b"OPTIONS sip:1@2 SIP/2.0\r\nContent-Length: abc\r\n\r\n", True),
        ("Content-Length: 2^70", b"OPTIONS sip:1@2 SIP/2.0\r\nContent-Length: 1180591620717411303424\r\n\r\n", True),
        ("Content-Length over --sip-max-body", b"INVITE sip:1@2 SIP/2.0\r\nl: 1000000\r\n\r\nv=0\r\n", True),
        # no value, and the header block ends exactly where the node's first
        # 4096-byte read does: nothing past it may be read
        ("Content-Length without a value at the end of a 4096-byte read",
         (lambda h, t: h + b"a" * (4096 - len(h) - len(t)) + t)(
             b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nX-Pad: ", b"\r\nContent-Length:\r\n\r\n"), False)):
    s = tcp_connect(H, port)
    try:
        s.sendall(data)
        if not node_closes:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    t = wait_closed(s, 3)
    if node_closes:
        check(t is not None, "TCP %s: connection closed by the node" % what)
    s.close()
alive("garbage, NULs and bad Content-Length over TCP")

# -- a flood of 2,000 malformed datagrams from one source
junk = [b"INVITE\r\n\r\n", b"\x00\x01\x02\x03", b"OPTIONS\r\n\r\n",
        b"SIP/2.0\r\nVia: ;;;;;;\r\n\r\n", b"REGISTER sip:@ SIP/3.0\r\nFrom: <>\r\n\r\n"]
for i in range(2000):
    udp(junk[i % len(junk)] if i % 3 else rbytes(rnd.randint(1, 1400)))
drain(u)
alive("a flood of 2,000 malformed datagrams")

# -- a body of binary bytes and header values that are not UTF-8: recorded,
#    and the JSON log stays valid JSON in UTF-8
cid = token(12) + "@binary"
udp(request("INVITE", H, port, number="555\xe9", ua="caf\xe9 \x7f", call_id=cid,
            body=b"v=0\r\n\x00\x01\xff\xfe\xc3\x28\xe2\x82 end\r\n", extra=["Subject: \xff\xfe"]))
drain(u)
check(len(wait_events(jlog, with_call_id(cid))) == 1, "INVITE with a binary body recorded")
bad = []
with open(jlog, "rb") as f:
    for n, line in enumerate(f, 1):
        try:
            json.loads(line)  # bytes: must be UTF-8
        except ValueError as e:
            bad.append("line %d: %s" % (n, e))
check(not bad, "the JSON log is valid JSON and UTF-8 after all of this", bad[:3])

# -- replies are small: at most 4 times the request (all replies to it)
for meth in ("OPTIONS", "REGISTER", "INVITE", "BYE", "SUBSCRIBE"):
    m = ("%s sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP c;branch=z9hG4bK1\r\nf: <sip:b@x>;tag=1\r\n"
         "t: <sip:a@x>\r\ni: %s\r\nCSeq: 1 %s\r\n\r\n" % (meth, token(4), meth)).encode()
    udp(m)
    rs = drain(u, 0.5)
    total = sum(len(r) for r in rs)
    check(rs and total <= 4 * len(m), "minimal %s (%d bytes): replies total %d bytes, at most 4x" %
          (meth, len(m), total), [status_line(r) for r in rs])
EOF

expect_counter sip_parse_errors 2000 10 "the flood's parse errors counted"
if node_alive; then pass "node still running"; else fail "node died: $(tail -c 2000 "$NODE_LOG")"; fi
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$NODE_PID/status" 2>/dev/null || echo 999999999)
if [ "$rss" -lt 102400 ]; then pass "RSS after the flood ${rss} kB < 100 MB"; else fail "RSS after the flood ${rss} kB"; fi
expect_exit 0 "a normal OPTIONS answered at the end" -- sip_options udp 127.0.0.1 "$PORT"
stop_node

# ---- the reflector guard -------------------------------------------------------
start_node reflector --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -r \
	--sip-reply-rate 5 || { finish; exit 1; }
pyrun "reply rate" "$PORT" <<'EOF'
import sys, time
from sip_client import *
port = int(sys.argv[1])
H = "127.0.0.1"
s = udp_socket(H)
s.connect((H, port))
t0 = time.monotonic()
for i in range(200):
    s.send(request("OPTIONS", H, port))
sent = time.monotonic() - t0
replies = 0
while udp_recv(s, 1.5) is not None:
    replies += 1
limit = 10 + 5 * sent + 1
check(10 <= replies <= min(15, limit),
      "200 OPTIONS in %.2f s from one source: %d replies (burst 10 + 5/s)" % (sent, replies))
EOF
expect_counter events_udp 200 15 "every request recorded, answered or not"
sleep 0.5 # a late datagram would show in the exact comparison below
c_udp=$(counter events_udp)
c_rep=$(counter sip_replies)
c_lim=$(counter sip_replies_rate_limited)
expect_eq "$c_udp" 200 "events_udp = 200"
[ "$c_lim" -gt 0 ] && pass "sip_replies_rate_limited = $c_lim" || fail "sip_replies_rate_limited = $c_lim"
expect_eq "$((c_rep + c_lim))" 200 "replies + rate-limited = requests ($c_rep + $c_lim)"

pyrun "reply rate, other sources" "$PORT" <<'EOF'
import sys, time
from sip_client import *
port = int(sys.argv[1])
H = "127.0.0.1"
# another source address has its own budget
o = udp_socket(H, ("127.0.0.5", 0))
o.connect((H, port))
o.send(request("OPTIONS", H, port, local=("127.0.0.5", o.getsockname()[1])))
r = udp_recv(o, 3)
check(status_code(r) == 200, "another source address is still answered", status_line(r))
# and the limited one is answered again as its budget refills
s = udp_socket(H)
s.connect((H, port))
deadline, ok = time.monotonic() + 5, False
while not ok and time.monotonic() < deadline:
    s.send(request("OPTIONS", H, port))
    ok = status_code(udp_recv(s, 0.5)) == 200
check(ok, "the limited source is answered again after a pause")
EOF
stop_node
expect_eq "$(counter events_udp)" "$(counter events_recorded)" "every UDP event stored"
finish
