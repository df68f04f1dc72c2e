#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Quick start: install what is missing, build, and run the node in the
# foreground with the built-in defaults. Extra arguments go to
# `sentrypeer run` (e.g. tools/run.sh --retention 14d). Ctrl-C stops it.
#
# As root with the default data directory and user, the node runs as a
# system user of its own, `sentrypeer` (made here if missing), which owns
# /var/lib/sentrypeer: the node binds its ports as root, then switches to
# it, and can then reopen its store to give back the memory a flood took
# (docs/sip.md, Root). Given --user, --data-dir, --db-file, --config, their
# SENTRYPEER_* variables or /etc/sentrypeer/sentrypeer.conf, nothing is
# prepared: the node does as told.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh build
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null

own_user=1
for a in "$@"; do
	case $a in
	--user | --user=* | --data-dir | --data-dir=* | --config | --config=* | --db-file | \
		--db-file=* | -f* | -[!-]*f*) own_user=0 ;; # -f, or short flags with it (-jf)
	esac
done
for v in SENTRYPEER_USER SENTRYPEER_DATA_DIR SENTRYPEER_CONFIG SENTRYPEER_DB_FILE; do
	[ -z "${!v+set}" ] || own_user=0
done
[ ! -e /etc/sentrypeer/sentrypeer.conf ] || own_user=0 # its settings rule
if [ "$(id -u)" = 0 ] && [ "$own_user" = 1 ]; then
	if ! id sentrypeer >/dev/null 2>&1; then
		if getent group sentrypeer >/dev/null; then group=(-g sentrypeer); else group=(--user-group); fi
		/usr/sbin/useradd --system "${group[@]}" --no-create-home --home-dir /var/lib/sentrypeer \
			--shell /usr/sbin/nologin sentrypeer
		echo "run.sh: made the system user sentrypeer for the node" >&2
	fi
	# the directory only (the node gives its store and lock file to the
	# user itself, and refuses links there; other files stay root's); one
	# the user already owns is left as it is (an admin's 0750, say)
	if [ ! -d /var/lib/sentrypeer ] || [ "$(stat -c %U /var/lib/sentrypeer)" = root ]; then
		install -d -m 0700 -o sentrypeer -g "$(id -gn sentrypeer)" /var/lib/sentrypeer
	fi
	set -- --user sentrypeer "$@"
fi
exec build/src/sentrypeer run "$@"
