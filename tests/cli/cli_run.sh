# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# run: starts in the foreground, shares its store with the CLI, and stops
# cleanly on SIGTERM and SIGINT.
. "$(dirname "$0")/lib.sh"

# SIP on loopback, on ports the kernel picks: no clash with anything
SIPARGS=(--sip-address 127.0.0.1 --sip-port 0 --sip-tls-port 0)

start_node() { # LOG ARGS...
	local log=$1
	shift
	"$SENTRYPEER" "$@" "${SIPARGS[@]}" >"$log" 2>&1 &
	NODE=$!
	wait_file_has "$log" "running" 10 && pass "node started ($*)" || fail "node did not start: $(cat "$log")"
}

stop_node() { # SIGNAL LOG
	local rc=0 i
	kill -"$1" "$NODE"
	for ((i = 0; i < 100; i++)); do kill -0 "$NODE" 2>/dev/null || break; sleep 0.1; done
	wait "$NODE" || rc=$?
	expect_eq "$rc" "0" "node exits 0 on SIG$1"
	expect_contains "$(cat "$2")" "stopped cleanly" "node says it stopped cleanly on SIG$1"
}

start_node "$TMP/node.log" run --retention 8d --sweep-interval 1s
expect_contains "$(cat "$TMP/node.log")" "retention 8d" "node logs its settings"
expect_contains "$(cat "$TMP/node.log")" "no bootstrap: waiting for peers" "node says it shares, and with whom"
[ "$(stat -c %a "$SENTRYPEER_DATA_DIR")" = 700 ] && pass "data directory is private (0700)" || fail "data dir mode $(stat -c %a "$SENTRYPEER_DATA_DIR")"
[ "$(stat -c %a "$SENTRYPEER_DATA_DIR/sentrypeer.mdb")" = 600 ] && pass "store file is private (0600)" || fail "store mode"

# the CLI reads and writes while the node runs
make_fixture "$TMP/f.jsonl"
expect_exit 0 "import while the node runs" -- sp import "$TMP/f.jsonl"
expect_exit 0 "lookup while the node runs" -- sp lookup 203.0.113.5
expect_exit 0 "stats while the node runs" -- sp stats
expect_contains "$OUT" "retention:    8d" "stats shows the node's retention"
expect_contains "$OUT" "ip addresses: 5" "stats counts addresses"
# the node's sweeper removes the expired record within its interval
for ((i = 0; i < 50; i++)); do
	sp stats --json 2>/dev/null | grep -q '"ip_addresses":{"count":4' && break
	sleep 0.1
done
expect_contains "$(sp stats --json)" '"ip_addresses":{"count":4' "sweeper removed the expired record"
stop_node TERM "$TMP/node.log"

start_node "$TMP/node2.log" run
stop_node INT "$TMP/node2.log"
expect_exit 0 "data survives a restart" -- sp lookup 203.0.113.5

# upstream style: flags without a subcommand run the node
start_node "$TMP/node3.log" -d -v
stop_node TERM "$TMP/node3.log"

# the defaults, in a network namespace of our own: 5060 UDP and TCP, 5061 TLS
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
	expect_exit 0 "defaults bind 5060/5061 on IPv4 and IPv6" -- unshare -n sh -c "
		ip link set lo up
		'$SENTRYPEER' run --data-dir '$TMP/ns' >'$TMP/ns.log' 2>&1 & p=\$!
		for i in \$(seq 50); do grep -q 'honeypot running' '$TMP/ns.log' && break; sleep 0.1; done
		ss -lnup; ss -lntp
		kill \$p; wait \$p"
	for want in '0.0.0.0:5060' '[::]:5060' '0.0.0.0:5061' '[::]:5061'; do
		expect_contains "$OUT" "$want" "listening on $want"
	done
	expect_contains "$(cat "$TMP/ns.log")" "now running as user nobody" "root drops to nobody after binding"
else
	skip "default ports need root and unshare -n"
fi
SIPARGS=()
python3 -c 'import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1], flush=True); time.sleep(30)' >"$TMP/busy.port" &
HOLDER=$!
for ((i = 0; i < 50; i++)); do [ -s "$TMP/busy.port" ] && break; sleep 0.1; done
expect_exit 2 "a port in use is a clear error" -- "$SENTRYPEER" run --data-dir "$TMP/busy" --sip-address 127.0.0.1 --sip-port "$(cat "$TMP/busy.port")" --no-sip-tcp --no-sip-tls
expect_contains "$ERR" "another program has it" "port in use explained"
kill "$HOLDER"

printf 'retention = often\n' >"$TMP/bad.conf"
expect_exit 2 "node refuses a bad config" -- sp run --config "$TMP/bad.conf"
expect_contains "$ERR" "bad.conf:1" "config error located"

# root with SIP off still gives up root (no port of its own to bind first)
if [ "$(id -u)" = 0 ]; then
	start_node "$TMP/nosip.log" run -R --data-dir "$TMP/nosip"
	wait_file_has "$TMP/nosip.log" "now running as user nobody" 10 &&
		pass "SIP off: root is dropped all the same" || fail "SIP off kept root: $(cat "$TMP/nosip.log")"
	stop_node TERM "$TMP/nosip.log"
	expect_exit 0 "a data dir root made stays root's" -- stat -c %U "$TMP/nosip/sentrypeer.mdb"
	expect_contains "$OUT" "root" "the store stays root's in root's directory"

	# a data directory given to the node's user: the store follows it, so
	# the node can open it again by path (sp_store_reopen) once it is nobody
	mkdir -p "$TMP/given" && chown nobody "$TMP/given"
	start_node "$TMP/given.log" run -R --data-dir "$TMP/given"
	wait_file_has "$TMP/given.log" "now running as user nobody" 10 || fail "no switch: $(cat "$TMP/given.log")"
	stop_node TERM "$TMP/given.log"
	for f in sentrypeer.mdb sentrypeer.mdb-lock; do
		[ "$(stat -c %U "$TMP/given/$f")" = nobody ] &&
			pass "$f follows a directory given to nobody" || fail "$f: $(stat -c %U "$TMP/given/$f")"
	done

	# root never opens a store or lock file that links elsewhere
	mkdir -p "$TMP/linked" && chown nobody "$TMP/linked"
	ln -s "$TMP/victim" "$TMP/linked/sentrypeer.mdb-lock"
	expect_exit 2 "root refuses a linked lock file" -- sp run -R --data-dir "$TMP/linked"
	expect_contains "$ERR" "symbolic link" "the link is named"
	[ ! -e "$TMP/victim" ] && pass "the link's target was not touched" || fail "root wrote through a link"

	# root writes the TLS key it makes under a new temporary name (O_EXCL,
	# O_NOFOLLOW): a link planted at that name in a directory the node's
	# user owns does not make root write through it
	mkdir -p "$TMP/planted" && chown nobody "$TMP/planted"
	echo untouched >"$TMP/victim2"
	ln -s "$TMP/victim2" "$TMP/planted/tls-key.pem.tmp"
	start_node "$TMP/planted.log" run --data-dir "$TMP/planted"
	stop_node TERM "$TMP/planted.log"
	expect_eq "$(cat "$TMP/victim2")" "untouched" "root did not write through a link at the key's temporary name"
	[ -f "$TMP/planted/tls-key.pem" ] && [ ! -L "$TMP/planted/tls-key.pem" ] &&
		pass "the key was made all the same, a file of its own" || fail "no key: $(ls -l "$TMP/planted")"

	# before binding its control socket, root asks whatever answers there
	# (another node?) only when that is a socket: a link planted at the
	# name to some other program's socket is removed, not connected to
	mkdir -p "$TMP/sockplant" && chown nobody "$TMP/sockplant"
	python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); print("ready", flush=True)
c,_=s.accept(); open(sys.argv[2],"w").write("connected\n")' "$TMP/other.sock" "$TMP/other.hit" >"$TMP/other.out" &
	OTHER=$!
	wait_file_has "$TMP/other.out" ready 10 || fail "no listener"
	ln -s "$TMP/other.sock" "$TMP/sockplant/sentrypeer.sock"
	start_node "$TMP/sockplant.log" run -R --data-dir "$TMP/sockplant"
	wait_file_has "$TMP/sockplant.log" "now running as user nobody" 10 || fail "no start: $(cat "$TMP/sockplant.log")"
	[ -S "$TMP/sockplant/sentrypeer.sock" ] && [ ! -L "$TMP/sockplant/sentrypeer.sock" ] &&
		pass "the node's control socket replaced the link" || fail "$(ls -l "$TMP/sockplant")"
	stop_node TERM "$TMP/sockplant.log"
	[ ! -e "$TMP/other.hit" ] && pass "root did not connect through the planted link" ||
		fail "root connected to the link's socket"
	kill "$OTHER" 2>/dev/null || true
	wait "$OTHER" 2>/dev/null || true

	# in a directory the node's user owns (and can reach), root opens the
	# store as that user (setfsuid): LMDB opens by path after the link
	# checks, so a link swapped in between reaches only the user's files
	chmod 711 "$TMP" # the user must reach the directory through it
	REACH="$TMP/reach"
	mkdir "$REACH" && chown nobody "$REACH"
	# a store root made there (an import as root) is handed to the user
	printf '{"kind":"ip","key":"198.51.100.9","reports":[{"reporter":"local","first_seen":"2026-11-27T00:00:00Z","last_seen":"2026-11-27T00:00:00Z","count":1}]}\n' >"$TMP/one.jsonl"
	expect_exit 0 "root imports into the user's directory" -- sp import --data-dir "$REACH" "$TMP/one.jsonl"
	expect_eq "$(stat -c %U "$REACH/sentrypeer.mdb")" "root" "the import left the store root's"
	start_node "$TMP/reach.log" run -R -d --data-dir "$REACH"
	stop_node TERM "$TMP/reach.log"
	expect_contains "$(cat "$TMP/reach.log")" "opening the store as user nobody" "root opens the store as the directory's user"
	for f in sentrypeer.mdb sentrypeer.mdb-lock; do
		expect_eq "$(stat -c %U "$REACH/$f")" "nobody" "$f, made by root, was given to the user"
	done
	# root's rights are not used there: a store its owner may not read
	# stays unread (root alone could open it)
	chmod 000 "$REACH/sentrypeer.mdb"
	expect_exit 2 "a store the user may not read is not opened with root's rights" -- timeout 20 "$SENTRYPEER" run -R --data-dir "$REACH"
	expect_contains "$ERR" "as user nobody, who owns" "the refusal says as whom"
	chmod 700 "$TMP"
fi

# the node's own TLS pair is read only as regular files of at most 64 KiB:
# links there (to a device, say) are a clear error, not a read without end
mkdir -p "$TMP/tlslinks"
ln -s /dev/zero "$TMP/tlslinks/tls-cert.pem"
ln -s /dev/zero "$TMP/tlslinks/tls-key.pem"
expect_exit 2 "a linked self-signed pair is refused" -- \
	timeout 20 "$SENTRYPEER" run --data-dir "$TMP/tlslinks" "${SIPARGS[@]}"
expect_contains "$ERR" "cannot read $TMP/tlslinks/tls-cert.pem" "the linked file is named"

# the default JSON log (DATA_DIR/sentrypeer_json.log) is opened only as a
# regular file of its own: a link there is refused, its target untouched
mkdir -p "$TMP/jsonlink"
echo untouched >"$TMP/victim3"
ln -s "$TMP/victim3" "$TMP/jsonlink/sentrypeer_json.log"
expect_exit 2 "a linked default JSON log is refused" -- \
	timeout 20 "$SENTRYPEER" run -j --data-dir "$TMP/jsonlink" "${SIPARGS[@]}"
expect_contains "$ERR" "must be a regular file, not a link" "the refusal says why"
expect_eq "$(cat "$TMP/victim3")" "untouched" "nothing written through the link"
rm "$TMP/jsonlink/sentrypeer_json.log"
start_node "$TMP/jsonlog.log" run -j --data-dir "$TMP/jsonlink"
stop_node TERM "$TMP/jsonlog.log"
[ -f "$TMP/jsonlink/sentrypeer_json.log" ] && [ ! -L "$TMP/jsonlink/sentrypeer_json.log" ] &&
	pass "without the link the default JSON log is made" || fail "no JSON log: $(ls -l "$TMP/jsonlink")"

# a data directory that cannot be created is a clear error
expect_exit 2 "data dir under a file" -- sp run --data-dir /dev/null/sp
expect_contains "$ERR" "cannot create data directory" "bad data dir explained"
finish
