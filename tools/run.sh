#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Quick start: install what is missing, build, and run the node in the
# foreground with the built-in defaults. Extra arguments go to
# `sentrypeer run` (e.g. tools/run.sh --retention 14d). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh build
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
exec build/src/sentrypeer run "$@"
