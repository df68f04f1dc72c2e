# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# The node's outputs for people and other tools: the debug print of each
# event (-d, upstream's "Bad Actor is:" block), and syslog (-s) as
# Fail2Ban reads it, through tools/fail2ban/sentrypeer.conf. Syslog is
# caught without a syslog daemon: in a private mount namespace a python3
# listener's socket is bind-mounted over /dev/log. Runs in private network
# and mount namespaces (sip_lib.sh).
SIP_UNSHARE_MOUNT=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

PORT=5070
TLS_PORT=5071

# ---- -d: "Bad Actor is:" -------------------------------------------------------
start_node debug --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -d ||
	{ finish; exit 1; }
pyrun "debug output" "$PORT" "$NODE_LOG" <<'EOF'
import re, sys, time
from sip_client import *
port, log = int(sys.argv[1]), sys.argv[2]
cid = token(12) + "@debug"
udp_request("127.0.0.1", port, request("OPTIONS", "127.0.0.1", port, number="100",
                                        ua="friendly-scanner", call_id=cid), 0.2)
udp_request("127.0.0.1", port, b"\x01\x02 not SIP at all", 0.2)
deadline, text = time.monotonic() + 10, ""
while time.monotonic() < deadline:
    text = open(log, encoding="latin-1").read()
    if "Bad Actor is:" in text and "do not parse" in text:
        break
    time.sleep(0.1)
block = text[text.find("Bad Actor is:"):]
check("Bad Actor is:" in text, "debug: a 'Bad Actor is:' block", text[-500:])
check(re.search(r"^Event Timestamp: \d{4}-\d\d-\d\d", block, re.M), "debug: Event Timestamp line")
check(re.search(r"^SIP Message: OPTIONS sip:100@127\.0\.0\.1:%d SIP/2\.0\r?$" % port, block, re.M),
      "debug: SIP Message line with the request", block[:300])
check(("Call-ID: %s" % cid) in block, "debug: the whole message is printed")
for line in ("Source IP: 127.0.0.1", "Called Number: 100", "SIP Method: OPTIONS",
             "Transport Type: UDP", "User Agent: friendly-scanner"):
    check(re.search("^" + re.escape(line) + "$", block, re.M), "debug: '%s' line" % line)
# upstream's order: the message, then the summary lines
order = [block.find(k) for k in ("Event Timestamp:", "SIP Message:", "Source IP:", "Called Number:",
                                 "SIP Method:", "Transport Type:", "User Agent:")]
check(all(i >= 0 for i in order) and order == sorted(order), "debug: lines in upstream's order", order)
check("do not parse as SIP" in text, "debug: a message that does not parse is logged")
EOF
stop_node

# ---- -s: syslog ---------------------------------------------------------------------
MADE_DEVLOG=
devlog_restore() { # the mount goes with the namespace; a /dev/log we made goes now
	umount /dev/log 2>/dev/null || true
	if [ -n "$MADE_DEVLOG" ] && [ -f /dev/log ] && [ ! -s /dev/log ]; then rm -f /dev/log; fi
	MADE_DEVLOG=
}
trap 'devlog_restore; cleanup' EXIT

syslog_test() {
	local sock="$TMP/devlog.sock" raw="$TMP/syslog.jsonl" listener i
	if ! command -v fail2ban-regex >/dev/null; then
		skip "syslog: fail2ban-regex not installed (Debian package fail2ban)"
		return
	fi
	if [ ! -f /etc/fail2ban/filter.d/common.conf ]; then
		skip "syslog: /etc/fail2ban/filter.d/common.conf missing"
		return
	fi
	# a datagram socket like /dev/log, read by python3: one JSON string a line
	python3 - "$sock" "$raw" 50 <<'EOF' &
import json, os, socket, sys, time
path, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)  # the node writes as nobody once it has dropped root
s.settimeout(0.2)
deadline = time.monotonic() + secs
with open(out, "w") as f:
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        f.write(json.dumps(d.decode("latin-1")) + "\n")
        f.flush()
EOF
	listener=$!
	for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
	if [ ! -S "$sock" ]; then
		fail "syslog: the listener did not start"
		return
	fi
	# /dev/log is replaced in this mount namespace only; on a machine without
	# one, an empty file is made to mount over, and removed afterwards
	if [ ! -e /dev/log ] && [ ! -L /dev/log ]; then
		touch /dev/log && MADE_DEVLOG=1
	fi
	if ! mount --bind "$sock" /dev/log; then
		skip "syslog: cannot bind-mount a socket over /dev/log"
		devlog_restore
		kill "$listener" 2>/dev/null || true
		return 0
	fi
	pass "syslog: a listener stands in for /dev/log"

	start_node syslog --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" -s -r \
		--sip-reply-rate 1000 || { devlog_restore; return 0; }
	local node_pid=$NODE_PID
	pyrun "syslog" "$PORT" "$raw" "$NODE_PID" <<'EOF'
import json, re, sys, time
from sip_client import *
port, raw, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
H = "127.0.0.1"
uas = ["friendly-scanner", "sipvicious", "evil\x0bAgent", "esc\x1b[31mred\x7fdel",
       "fold\r\n Source IP: 203.0.113.66, Method: X, Agent: y", "fmt %s%n%x%p", "tab\there"]
methods = ["OPTIONS", "INVITE", "REGISTER"]
for i, ua in enumerate(uas):
    m = methods[i % len(methods)]
    udp_request(H, port, request(m, H, port, number="100", ua=ua, body=SDP_300 if m == "INVITE" else b""), 0.3)
r = options("tcp", H, port, ua="over-tcp")
n = len(uas) + 1
deadline, lines = time.monotonic() + 10, []
while time.monotonic() < deadline:
    with open(raw) as f:
        lines = [json.loads(l) for l in f if l.endswith("\n")]
    if len([l for l in lines if "Source IP:" in l]) >= n:
        break
    time.sleep(0.1)
ev = [l for l in lines if "Source IP:" in l]
check(len(ev) == n, "syslog: one line per event (%d of %d)" % (len(ev), n), lines[:3])
form = re.compile(r"^<13>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d sentrypeer(\[(\d+)\])?: "
                  r"Source IP: 127\.0\.0\.1, Method: (OPTIONS|INVITE|REGISTER), Agent: [^\x00-\x1f\x7f]*$")
bad = [l for l in ev if not form.match(l)]
check(ev and not bad, "syslog: '<13>DATE sentrypeer: Source IP: ..., Method: ..., Agent: ...' "
      "(user.notice, ident sentrypeer)", bad[:2])
pids = {form.match(l).group(2) for l in ev if form.match(l)}
if pids == {None}:
    print("note: syslog tag without PID")
else:
    check(pids == {pid}, "syslog: the tag carries the node's PID, sentrypeer[%s]" % pid, pids)
check(not [l for l in lines if re.search(r"[\x00-\x1f\x7f]", l)], "syslog: no control characters in any line")
check([l for l in ev if l.endswith("Method: OPTIONS, Agent: friendly-scanner")], "syslog: friendly-scanner line")
check([l for l in ev if "Agent: evil?Agent" in l], "syslog: 'evil\\x0bAgent' written as 'evil?Agent'",
      [l for l in ev if "evil" in l])
check([l for l in ev if "Agent: fmt %s%n%x%p" in l], "syslog: a format string in the agent is written as is")
check(not [l for l in ev if re.search(r"\]: Source IP: 203\.0\.113\.66", l)],
      "syslog: a folded User-Agent cannot start a line of its own")
check([l for l in ev if l.endswith("Agent: over-tcp")], "syslog: the TCP event too")
# classic syslog file lines for fail2ban-regex, as rsyslog writes them
# ("Mon DD HH:MM:SS host TAG: message"), and with the tag as upstream's
# (sentrypeer[PID]) in case the node's lacks the PID
with open(raw + ".log", "w") as f, open(raw + ".pid.log", "w") as g:
    for l in ev:
        m = re.match(r"^<\d+>(.{15}) (sentrypeer(?:\[\d+\])?): (.*)$", l, re.S)
        if not m:
            f.write(l + "\n")
            g.write(l + "\n")
            continue
        f.write("%s sentrypeer-test-host %s: %s\n" % m.groups())
        g.write("%s sentrypeer-test-host sentrypeer[%s]: %s\n" % (m.group(1), pid, m.group(3)))
EOF
	stop_node
	devlog_restore
	kill "$listener" 2>/dev/null || true
	wait "$listener" 2>/dev/null || true

	if grep -qx "note: syslog tag without PID" "$TMP/py.out"; then
		skip "syslog: the lines carry no PID (sentrypeer: rather than upstream's sentrypeer[$node_pid]:; openlog without LOG_PID)"
	fi

	# fail2ban-regex needs common.conf beside the filter
	mkdir -p "$TMP/f2b"
	cp /etc/fail2ban/filter.d/common.conf "$SOURCE_ROOT/tools/fail2ban/sentrypeer.conf" "$TMP/f2b/"
	local n f
	for f in "$raw.log" "$raw.pid.log"; do
		n=$(wc -l <"$f")
		expect_exit 0 "fail2ban-regex runs on $n syslog lines ($(basename "$f"))" -- \
			fail2ban-regex "$f" "$TMP/f2b/sentrypeer.conf"
		expect_contains "$OUT" "Lines: $n lines, 0 ignored, $n matched, 0 missed" "fail2ban: every line matched"
		expect_exit 0 "fail2ban-regex -o ip" -- fail2ban-regex -o ip "$f" "$TMP/f2b/sentrypeer.conf"
		expect_eq "$(printf '%s\n' "$OUT" | sort -u)" "127.0.0.1" "fail2ban finds only the real source, 127.0.0.1"
	done
	expect_contains "$(head -1 "$raw.pid.log")" " sentrypeer-test-host sentrypeer[$node_pid]: Source IP: 127.0.0.1, Method: " \
		"classic syslog line written for fail2ban"
}
syslog_test
finish
