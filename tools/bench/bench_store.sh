#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
#
# Build a release tree (build-bench/, once) and run the store benchmark.
# Arguments go to bench_store, e.g.
#   tools/bench/bench_store.sh                           # full run, sync full
#   tools/bench/bench_store.sh --sync none
#   tools/bench/bench_store.sh --events 20000 --ips 2000 --numbers 2000   # smoke
# BUILD_DIR overrides the build directory.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release -Dtests=false
fi
ninja -C "$build" >&2

# a config file or SENTRYPEER_* variables must not change what the CLI does
export SENTRYPEER_CONFIG=
exec "$build/tools/bench/bench_store" --cli "$build/src/sentrypeer" "$@"
