# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Real SIP clients against a responsive node: sipsak, SIPp (INVITE answered
# 404, or 302 with --sip-redirect; SIPp only counts a call as successful
# when the replies match its transaction), and SIPVicious svmap and svwar.
# Then the JSON log, the store and the counters must show what they did.
# Runs in a private network namespace (sip_lib.sh): loopback only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

PORT=5070     # not 5060: svmap and svwar bind 5060 locally
TLS_PORT=5071
JLOG="$TMP/events.jsonl"
SIPP_NUMBER=4915123456
SIPP_NUMBER_302=4930999888

have() { command -v "$1" >/dev/null; }

# sipp_run SCENARIO NUMBER: five calls, one at a time; SIPP_OK = successful calls
sipp_run() {
	local rc=0
	(cd "$TMP" && timeout 60 sipp -sf "$SOURCE_ROOT/tools/sipp/$1" "127.0.0.1:$PORT" -i 127.0.0.1 -s "$2" \
		-m 5 -l 1 -r 5 -timeout 20s -timeout_error -nostdin -trace_err) >"$TMP/sipp.out" 2>&1 || rc=$?
	SIPP_RC=$rc
	SIPP_OK=$(awk -F'|' '/Successful call/ { v = $3 } END { gsub(/ /, "", v); print v }' "$TMP/sipp.out")
}

# --sip-reply-rate 1000: svwar sends its requests in one burst from one
# address; the default limit (10/s, burst 20) would leave some unanswered
start_node clients --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" \
	-r -l "$JLOG" --sip-reply-rate 1000 || { finish; exit 1; }

# (a) sipsak OPTIONS (-H: the local address without resolving the host name)
if have sipsak; then
	expect_exit 0 "sipsak OPTIONS gets a 2xx" -- timeout 20 sipsak -H 127.0.0.1 -vv -s "sip:100@127.0.0.1:$PORT"
	expect_contains "$OUT" "SIP/2.0 200 OK" "sipsak saw 200 OK"
else
	skip "sipsak not installed (Debian package sipsak)"
fi

# (b) SIPp: INVITE with SDP, 100, 404 with a To tag, ACK
if have sipp; then
	sipp_run uac_invite_404.xml "$SIPP_NUMBER"
	if [ "$SIPP_RC" = 0 ] && [ "$SIPP_OK" = 5 ]; then
		pass "SIPp uac_invite_404: 5 successful calls"
	else
		fail "SIPp uac_invite_404: exit $SIPP_RC, $SIPP_OK successful calls: $(tail -c 1500 "$TMP/sipp.out"; cat "$TMP"/*errors.log 2>/dev/null | head -c 1500)"
	fi
	if grep -qE '[1-9][0-9]* out-of-call msg' "$TMP/sipp.out"; then
		fail "SIPp discarded replies as out-of-call: $(grep out-of-call "$TMP/sipp.out" | tail -1)"
	else
		pass "SIPp discarded no reply as out-of-call"
	fi
else
	skip "sipp not installed (Debian package sip-tester)"
fi

# (c) SIPVicious
if have svmap && have svwar; then
	expect_exit 0 "svmap runs" -- env HOME="$TMP" timeout 60 svmap -p "$PORT" 127.0.0.1
	expect_contains "$OUT" "127.0.0.1:$PORT" "svmap lists the node"
	expect_contains "$OUT" "FPBX-" "svmap shows the node's Server header"
	expect_exit 0 "svwar INVITE scan of 100-110 runs to completion" -- \
		env HOME="$TMP" timeout 60 svwar -e100-110 -m INVITE -p "$PORT" 127.0.0.1
else
	skip "svmap/svwar not installed (Debian package sipvicious)"
fi

# one more OPTIONS from python, so the last check does not depend on the tools
expect_exit 0 "python OPTIONS over UDP gets 200 OK" -- sip_options udp 127.0.0.1 "$PORT"
stop_node

# (d) what the node recorded
pyrun "JSON log" "$JLOG" "$(have sipsak && echo 1)" "$(have sipp && echo 1)" "$(have svmap && echo 1)" "$SIPP_NUMBER" <<'EOF'
import json, re, sys
from sip_client import check
path, sipsak, sipp, svmap, number = sys.argv[1:6]
KEYS = ["app_name", "app_version", "event_timestamp", "event_uuid", "created_by_node_id",
        "collected_method", "transport_type", "source_ip", "destination_ip", "called_number",
        "sip_method", "sip_user_agent", "sip_message"]
events, bad = [], []
with open(path, "rb") as f:
    for n, line in enumerate(f, 1):
        try:
            o = json.loads(line)
            if not isinstance(o, dict):
                raise ValueError("not an object")
            events.append(o)
        except Exception as e:
            bad.append("line %d: %s" % (n, e))
check(events and not bad, "JSON log: %d lines, each one JSON object" % len(events), bad[:3])
wrong = [sorted(e) for e in events if sorted(e) != sorted(KEYS)]
check(not wrong, "every event has exactly upstream's 13 keys", wrong[:1])
check(all(list(e) == KEYS for e in events), "keys in upstream's order")
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
check(all(uuid.match(e.get("event_uuid", "")) for e in events), "event_uuid is a UUID")
check(len({e.get("event_uuid") for e in events}) == len(events), "event_uuid unique")
check(len({e.get("created_by_node_id") for e in events}) == 1 and
      uuid.match(events[0].get("created_by_node_id", "")) is not None, "one created_by_node_id, a UUID")
ts = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}$")
check(all(ts.match(e.get("event_timestamp", "")) for e in events), "event_timestamp like upstream's",
      [e.get("event_timestamp") for e in events[:2]])
check(all(e.get("app_name") == "sentrypeer" and e.get("collected_method") == "responsive" and
          e.get("transport_type") == "UDP" and e.get("source_ip") == "127.0.0.1" and
          e.get("destination_ip") == "127.0.0.1" for e in events),
      "app_name, collected_method, transport, source and destination IP",
      [(e.get("collected_method"), e.get("transport_type"), e.get("source_ip"), e.get("destination_ip"))
       for e in events[:3]])
check(all(e.get("sip_message", "").startswith(e.get("sip_method", "?") + " ") for e in events),
      "sip_message holds the request, starting with its method")
def count(method, ua):
    return [e for e in events if e.get("sip_method") == method and ua in e.get("sip_user_agent", "")]
if sipsak:
    check(count("OPTIONS", "sipsak"), "OPTIONS from sipsak recorded")
if sipp:
    inv = count("INVITE", "SIPp uac_invite_404")
    check(len(inv) >= 5, "5 INVITEs from SIPp recorded", len(inv))
    check(all(e.get("called_number") == number for e in inv), "SIPp's called number recorded",
          {e.get("called_number") for e in inv})
    check(all("application/sdp" in e["sip_message"] and "m=audio" in e["sip_message"] for e in inv),
          "INVITEs recorded with their SDP")
    check(len(count("ACK", "SIPp uac_invite_404")) >= 5, "SIPp's ACKs recorded")
if svmap:
    fs = [e for e in events if re.search("friendly-scanner|sipvicious", e.get("sip_user_agent", ""), re.I)]
    check([e for e in fs if e.get("sip_method") == "OPTIONS"], "svmap's OPTIONS recorded (friendly-scanner)")
    called = {e.get("called_number") for e in fs if e.get("sip_method") == "INVITE"}
    want = {str(n) for n in range(100, 111)}
    check(want <= called, "svwar's INVITEs to 100-110 recorded", sorted(want - called))
EOF

expect_exit 0 "127.0.0.1 is listed" -- sp lookup --data-dir "$NODE_DIR" 127.0.0.1
expect_contains "$OUT" "127.0.0.1" "lookup names the address"
if have sipp; then
	expect_exit 0 "the number SIPp dialled is listed" -- sp lookup --data-dir "$NODE_DIR" "$SIPP_NUMBER"
	expect_contains "$OUT" "INVITE" "the number's record has the INVITE method"
fi
expect_exit 1 "a number nobody dialled is not listed" -- sp lookup --data-dir "$NODE_DIR" 4477009900
for c in events_udp sip_replies sip_received events_recorded; do
	v=$(counter "$c")
	[ "$v" -gt 0 ] && pass "stats: $c = $v" || fail "stats: $c = $v, wanted > 0"
done
expect_eq "$(counter events_recorded)" "$(wc -l <"$JLOG")" "events_recorded equals the JSON log's lines"
expect_eq "$(counter sip_replies_rate_limited)" 0 "no reply was rate limited"

# (b') the redirect: 302 to the configured URI
if have sipp; then
	start_node redirect --sip-address 127.0.0.1 --sip-port "$PORT" --sip-tls-port "$TLS_PORT" \
		-r --sip-redirect sip:voicemail@192.0.2.1 || { finish; exit 1; }
	sipp_run uac_invite_302.xml "$SIPP_NUMBER_302"
	if [ "$SIPP_RC" = 0 ] && [ "$SIPP_OK" = 5 ]; then
		pass "SIPp uac_invite_302: 5 successful calls, redirected to sip:voicemail@192.0.2.1"
	else
		fail "SIPp uac_invite_302: exit $SIPP_RC, $SIPP_OK successful calls: $(tail -c 1500 "$TMP/sipp.out"; cat "$TMP"/*errors.log 2>/dev/null | head -c 1500)"
	fi
	stop_node
	expect_exit 0 "the number dialled through the redirect is listed" -- \
		sp lookup --data-dir "$NODE_DIR" "$SIPP_NUMBER_302"
fi

# the defaults: 5060 (UDP, TCP) and 5061 (TLS) on 0.0.0.0 and ::
start_node defaults -r || { finish; exit 1; }
if have sipsak; then
	expect_exit 0 "sipsak OPTIONS to the default port" -- timeout 20 sipsak -H 127.0.0.1 -s sip:100@127.0.0.1
fi
expect_exit 0 "OPTIONS over UDP to [::1]:5060" -- sip_options udp ::1 5060
expect_exit 0 "OPTIONS over TCP to 127.0.0.1:5060" -- sip_options tcp 127.0.0.1 5060
expect_exit 0 "OPTIONS over TLS to [::1]:5061" -- sip_options tls ::1 5061
stop_node
finish
