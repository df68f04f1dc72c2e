#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Install the Debian 12 packages a step needs, if any are missing.
#   tools/deps.sh build   compiler, meson and the libraries
#   tools/deps.sh test    build + test tools (cmocka, jq, nft, ipset, curl, ...);
#                         Chromium too if it can be installed (the dashboard
#                         test skips, saying so, without it)
#   tools/deps.sh bench   build + the benchmarks' tools (wrk, curl)
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build liblmdb-dev libmsgpack-dev libjansson-dev liblz4-dev
	libosip2-dev libgnutls28-dev libopendht-c-dev libmicrohttpd-dev)
test_pkgs=(libcmocka-dev jq nftables ipset lmdb-utils python3 util-linux iproute2
	sipsak sip-tester sipvicious fail2ban clang libclang-rt-14-dev dhtnode curl)
test_optional=(chromium)
bench_pkgs=(wrk curl python3 util-linux iproute2 libzstd-dev valgrind)

optional=()
case "${1:-build}" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}"); optional=("${test_optional[@]}") ;;
bench) pkgs=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing_of() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
	done
}
mapfile -t missing < <(missing_of "${pkgs[@]}")
mapfile -t missing_optional < <(missing_of ${optional[@]+"${optional[@]}"})
[ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	[ ${#missing[@]} -eq 0 ] && exit 0 # only optional ones: the tests that need them skip
	echo "Not root and no sudo: run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	echo "Installing Debian packages: ${missing[*]}"
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
	echo "Installing Debian packages (optional): ${missing_optional[*]}"
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" >/dev/null ||
		echo "Could not install ${missing_optional[*]}: the tests that need them will skip" >&2
fi
