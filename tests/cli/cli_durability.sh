# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# kill -9 of a writer mid-load: the store opens and holds every event the
# writer reported committed, in each sync mode.
. "$(dirname "$0")/lib.sh"
: "${STORE_LOADER:?set STORE_LOADER}"

for mode in full nometa none; do
	db="$TMP/$mode.mdb"
	"$STORE_LOADER" "$db" 100000000 "$mode" >"$TMP/$mode.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c committed "$TMP/$mode.log" 2>/dev/null || true)" -ge 20 ] && break
		sleep 0.1
	done
	sleep 0.$((RANDOM % 5))
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	last=$(grep committed "$TMP/$mode.log" | tail -1 | awk '{print $2}')
	[ -n "$last" ] && [ "$last" -gt 0 ] && pass "$mode: loader committed $last events before kill -9" \
		|| { fail "$mode: loader reported no commit: $(head -3 "$TMP/$mode.log")"; continue; }
	expect_exit 0 "$mode: store opens after kill -9" -- sp stats --json -f "$db"
	got=$(printf '%s' "$OUT" | sed -n 's/.*"events":{"count":\([0-9]*\).*/\1/p')
	[ -n "$got" ] && [ "$got" -ge "$last" ] && pass "$mode: $got events stored >= $last reported committed" \
		|| fail "$mode: $got events stored < $last reported committed"
	recorded=$(printf '%s' "$OUT" | sed -n 's/.*"events_recorded":\([0-9]*\).*/\1/p')
	expect_eq "$recorded" "$got" "$mode: events_recorded counter matches the events table"
	# aggregates are folded from the events: the next writer to open the
	# store (here an empty import) folds what the killed one had not
	expect_exit 0 "$mode: a writer opens the store after kill -9" -- sp import -f "$db" /dev/null
	expect_exit 0 "$mode: lookup works after kill -9" -- sp lookup -f "$db" 203.0.0.1
	if command -v jq >/dev/null; then
		sum=$(sp export -f "$db" --format jsonl --kind ip --include-private | jq -s 'map(.count) | add')
		expect_eq "$sum" "$got" "$mode: IP aggregates count every stored event once"
	fi
	# a new writer takes over the stale lock
	expect_exit 0 "$mode: a new writer can write after kill -9" -- "$STORE_LOADER" "$db" 1000 "$mode"
done
finish
