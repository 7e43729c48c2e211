#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Proves that the VM runner fails loudly instead of hanging: one guest panics, one hangs; and that
# its guests survive QEMU's TCG memory-map race (tools/vm/run.sh). Prints TAP (suite `runner` in
# results/tests.tsv).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
n=0 fails=0
tap() { # ok|not-ok name [diag]
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n $2"; else echo "not ok $n $2"; fails=$((fails + 1)); fi
	[ -n "${3:-}" ] && echo "# $3"
	return 0
}
echo "TAP version 13"
echo "1..4"

t0=$(date +%s)
"$here/run.sh" --timeout 120 --log "$out/panic.log" -- sh -c 'echo c >/proc/sysrq-trigger; sleep 100' \
	>/dev/null 2>"$out/panic.err"
rc=$? took=$(( $(date +%s) - t0 ))
if [ $rc -ne 0 ] && grep -q 'guest kernel crashed' "$out/panic.err" && [ $took -lt 110 ]; then
	tap ok runner.panic_fails_fast "rc $rc after ${took}s"
else
	tap not-ok runner.panic_fails_fast "rc $rc after ${took}s: $(head -c 300 "$out/panic.err")"
fi

t0=$(date +%s)
"$here/run.sh" --timeout 60 --log "$out/hang.log" -- sleep 1000 >/dev/null 2>"$out/hang.err"
rc=$? took=$(( $(date +%s) - t0 ))
# Before the kill, the host's NMI makes the guest print its tasks with their stacks.
if [ $rc -ne 0 ] && grep -q 'did not finish within 60s' "$out/hang.err" && [ $took -lt 90 ] &&
	grep -q 'task:kthreadd ' "$out/hang.log" && grep -q 'Call Trace' "$out/hang.log"; then
	tap ok runner.hang_is_killed "rc $rc after ${took}s"
else
	tap not-ok runner.hang_is_killed "rc $rc after ${took}s: $(head -c 300 "$out/hang.err")"
fi

"$here/run.sh" --timeout 120 --log "$out/exit.log" -- sh -c 'exit 3' >/dev/null 2>"$out/exit.err"
rc=$?
if [ $rc -eq 3 ]; then tap ok runner.exit_status_passes_through; else tap not-ok runner.exit_status_passes_through "rc $rc"; fi
# A PCI BAR mapped and unmapped as fast as the guest can while the other vCPU programs its local
# APIC timer: with the APICs and the virtio notifications on MMIO this stalled a vCPU within 10 s.
"$here/run.sh" --timeout 240 --log "$out/churn.log" -- python3 "$here/bar-churn.py" 45 \
	>"$out/churn.out" 2>"$out/churn.err"
rc=$?
if [ $rc -eq 0 ]; then
	tap ok runner.guest_survives_bar_churn "$(grep -m1 '^bar-churn:' "$out/churn.out")"
else
	tap not-ok runner.guest_survives_bar_churn "rc $rc: $(grep -m1 '^bar-churn:' "$out/churn.out") \
$(head -c 300 "$out/churn.err")"
fi
exit $((fails > 0))
