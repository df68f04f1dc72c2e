#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# Install the Debian 12 packages a step needs, if any are missing.
#   tools/deps.sh build   compiler, meson and the libraries
#   tools/deps.sh test    build + test tools (cmocka, jq, nft, ipset, ...)
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build liblmdb-dev libmsgpack-dev libjansson-dev
	libosip2-dev libgnutls28-dev libmicrohttpd-dev)
test_pkgs=(libcmocka-dev jq nftables ipset lmdb-utils python3 util-linux iproute2
	sipsak sip-tester sipvicious fail2ban clang libclang-rt-14-dev)

case "${1:-build}" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "Not root and no sudo: run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
