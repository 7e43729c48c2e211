#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest for `make bench`: ROUNDS times, the C module then ours (A B A B ...), each
# loaded fresh, the benchmark program run once. Appends `<impl> <round> <bench> <domain> <value>
# <unit>` lines to $OUT/bench.raw.
set -euo pipefail
: "${OUT:?}" "${REPO:?}" "${ROUNDS:=5}" "${SMALL_MB:=64}"
bin=$REPO/tools/bench/build/iommufd_bench
: >"$OUT/bench.raw"
for round in $(seq "$ROUNDS"); do
	for impl in c rust; do
		case $impl in
		c) modprobe iommufd ;;
		rust) insmod "$REPO/iommufd.ko" ;;
		esac
		for _ in $(seq 50); do [ -c /dev/iommu ] && break; sleep 0.1; done
		"$bin" "$SMALL_MB" | sed "s/^/$impl $round /" >>"$OUT/bench.raw"
		rmmod iommufd
		echo "[guest] round $round $impl done"
	done
done
