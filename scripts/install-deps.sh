#!/usr/bin/env bash
# Install what uktls needs to build and test on a Debian machine.
# Packages already present are skipped, so this is quick on a second run.
set -euo pipefail
# gnuplot-nox draws the benchmarks' scaling chart (bench_recv --png).
pkgs=(gcc make pkg-config libssl-dev openssl libgnutls28-dev gnutls-bin
	libipsec-mb-dev clang libclang-rt-14-dev gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	SUDO=
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q "${missing[@]}"
fi
