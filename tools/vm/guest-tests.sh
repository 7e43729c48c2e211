#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (started by tools/check.sh through tools/vm/run.sh): for each implementation
# named in $IMPLS, load it, run every suite, unload it, and leave the raw results in $OUT/<impl>/:
# one TAP file per suite, dmesg, and a `done` marker the host uses to tell a finished run from a
# crashed one.
#
# Environment: IMPLS ("c rust"), OUT (a read-write dir), KDIR (kernel build tree), REPO,
# SUITE_TIMEOUT (seconds per suite binary; the fuzzer gets FUZZ_SECS more, its own cap).
# Optional: SUITES="clients viommu iommufd" runs those suites only (default: all); LABEL names
# the results $OUT/<impl>-LABEL (another kernel profile or IOMMU); RUST_KO is the Rust module to load (default $REPO/iommufd.ko).
set -uo pipefail

: "${IMPLS:?}" "${OUT:?}" "${KDIR:?}" "${REPO:?}"
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1200}

# Each line carries the guest's uptime: a run cut short by the VM limit shows how far it got when.
say() { printf '[guest] %5ss %s\n' "$(cut -d. -f1 /proc/uptime)" "$*"; }

prepare() {
	# (busybox, the arm64 guest, has no mountpoint: its init mounted debugfs already)
	grep -q ' /sys/kernel/debug debugfs ' /proc/mounts || mount -t debugfs none /sys/kernel/debug
	# The upstream selftests use huge pages when they can: give them some of each kind.
	echo 64 >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	[ -w /sys/kernel/mm/transparent_hugepage/enabled ] &&
		echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
	say "hugepages: $(cat /proc/sys/vm/nr_hugepages), THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
	ulimit -l unlimited 2>/dev/null || true
}

# RUST_KO=modprobe: ours is the kernel's own iommufd module (an in-tree build, tools/intree.sh);
# RUST_KO=builtin: ours is built into the kernel, nothing to load or unload.
. "$REPO/tools/vm/modules.sh"

# UNSAFE_INTERRUPTS=1: a platform that cannot isolate MSIs (the x86 guest with a virtio-iommu):
# either module gets allow_unsafe_interrupts, or no device binds (EPERM).
load() { # impl
	case $1:${RUST_KO:-} in
	c:*) modprobe iommufd ;;
	rust:modprobe) modprobe iommufd ;;
	rust:builtin) true ;;
	rust:*) insmod "${RUST_KO:-$REPO/iommufd.ko}" ;;
	esac || return 1
	for _ in $(seq 50); do [ -c /dev/iommu ] && break; sleep 0.1; done
	[ -c /dev/iommu ] || { say "/dev/iommu did not appear"; return 1; }
	[ "${UNSAFE_INTERRUPTS:-0}" != 1 ] || echo Y >/sys/module/iommufd/parameters/allow_unsafe_interrupts || return 1
	# Whichever way it came, the iommufd answering is the one asked for.
	local got
	got=$(iommufd_impl)
	[ "$got" = "$1" ] || { say "the iommufd answering is the $got one, not $1"; return 1; }
}

# A built-in iommufd stays.
unload() {
	if [ "${RUST_KO:-}" = builtin ]; then KEEP_IOMMUFD=1 unload_iommufd_stack; else unload_iommufd_stack; fi
}

# suite name, binary [args]: TAP on stdout into $dir/<suite>.tap, exit status into <suite>.rc.
# timeout(1) cannot end a process that sleeps in the kernel and never returns: STUCK_GRACE
# seconds past the suite's limit (and its kill) it is given up for stuck (see stuck()), and no
# suite runs after it: its tasks hold the module and their fds. The hung-task detector usually
# ends such a guest earlier, with the trace (tools/vm/run.sh); this catches the tasks it does not
# see (woken now and then, or sleeping interruptibly while the kill is pending).
STUCK=
STUCK_GRACE=${STUCK_GRACE:-60}
# LIMIT=N before the call gives one suite another limit than SUITE_TIMEOUT.
run_suite() {
	local dir=$1 suite=$2 bin=$3 rc pid start=$SECONDS limit=${LIMIT:-$SUITE_TIMEOUT}
	shift 3
	[ -z "$STUCK" ] || return 0
	timeout -k 10 "$limit" "$bin" "$@" >"$dir/$suite.tap" 2>"$dir/$suite.err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ $((SECONDS - start)) -gt $((limit + STUCK_GRACE)) ]; then
			stuck "$dir" "$suite" "$pid" "$limit"
			# It may have ended while the report was taken.
			kill -0 "$pid" 2>/dev/null || { STUCK=; rm -f "$dir/$suite.stuck"; continue; }
			return
		fi
		sleep 0.5
	done
	wait "$pid"
	rc=$?
	echo $rc >"$dir/$suite.rc"
	say "$suite: exit $rc in $((SECONDS - start))s, $(grep -c '^ok ' "$dir/$suite.tap") ok, $(grep -c '^not ok ' "$dir/$suite.tap") not ok"
}

# Records what a stuck suite waits on into $dir/<suite>.stuck (tools/report.py puts the top frames
# in the failure): first every thread of the suite's process group (timeout(1) leads it, with the
# suite's pid as group ID), then every other thread in uninterruptible sleep, each with its state
# and kernel stack. sysrq w puts the blocked tasks into the kernel log as well.
stuck() { # dir suite pid limit
	local dir=$1 suite=$2 pgid=$3 limit=$4 t state
	STUCK=$suite
	{
		for t in /proc/[0-9]*/task/[0-9]*; do
			state=$(awk '/^State:/ {print $2}' "$t/status" 2>/dev/null)
			[ -n "$state" ] || continue
			if [ "$(awk '{print $5}' "$t/stat" 2>/dev/null)" = "$pgid" ]; then
				echo "task ${t##*/} $(cat "$t/comm" 2>/dev/null) ($state, suite)"
			elif [ "$state" = D ]; then
				echo "task ${t##*/} $(cat "$t/comm" 2>/dev/null) ($state)"
			else
				continue
			fi
			cat "$t/stack" 2>/dev/null
		done
	} >"$dir/$suite.stuck"
	echo w >/proc/sysrq-trigger 2>/dev/null
	say "$suite: STUCK $STUCK_GRACE s past its $limit s limit: $(grep -c '^task ' "$dir/$suite.stuck") task(s) recorded; the run stops here"
}

# On a kernel with kmemleak (the debug profiles), look for leaks once the module is gone: what it
# allocated and did not free shows up as unreferenced objects. The report is saved as
# kmemleak.txt, which the host's report reads (tools/report.py: kmemleak_clean); it is too long
# for /dev/kmsg records, so it does not go through dmesg.
kmemleak_scan() {
	local k=/sys/kernel/debug/kmemleak
	[ -w $k ] || return 0
	echo scan >$k; sleep 1; echo scan >$k
	cat $k >"$1/kmemleak.txt"
	[ -s "$1/kmemleak.txt" ] && say "kmemleak: $(grep -c unreferenced "$1/kmemleak.txt") unreferenced objects"
	echo clear >$k
}

# edu_devices, edu_to_vfio, edu_release.
. "$REPO/tools/vm/edu.sh"

# The whole stack: edu through vfio-pci's cdev on the loaded iommufd, DMA through VT-d; the
# group pair for DMA ownership.
run_clients() {
	local dir=$1 cdev bdfs group=()
	[ -z "$STUCK" ] || return 0
	mapfile -t bdfs < <(edu_devices)
	if [ "${#bdfs[@]}" -lt 1 ] || ! cdev=$(edu_to_vfio "${bdfs[0]}"); then
		say "clients: no edu device bound to vfio-pci"
		printf 'TAP version 13\n1..4\nnot ok 1 edu_dma\nnot ok 2 edu_dma_after_unmap\nnot ok 3 qemu_vfio_pci\nnot ok 4 rust_vmm_vfio\n' >"$dir/clients.tap"
		echo 1 >"$dir/clients.rc"
		return
	fi
	if [ "${#bdfs[@]}" -ge 3 ]; then
		group=("$(edu_to_vfio "${bdfs[1]}")" "$(edu_to_vfio "${bdfs[2]}")")
	fi
	run_suite "$dir" clients "$REPO/tests/clients/run.sh" "$cdev" "${group[@]}"
	# A stuck client holds its device open: unbinding it would wait for it too.
	[ -n "$STUCK" ] || edu_release
}

# The suites named, into $1: clients (run by run_clients, after the others), our selftests by
# name, fuzz, and upstream's iommufd and iommufd_fail_nth.
run_named() {
	local dir=$1 s
	shift
	for s in "$@"; do
		case $s in
		clients) ;;
		# Random and mutated ioctls, 4 threads on one fd: FUZZ_CALLS calls or FUZZ_SECS seconds,
		# same seed for both modules so their errno profiles can be compared
		# (results/raw/<impl>/fuzz.tap). Its limit is its own time cap plus a suite's: a hang
		# elsewhere is not waited for that long.
		fuzz)
			LIMIT=$((SUITE_TIMEOUT + ${FUZZ_SECS:-60})) \
				run_suite "$dir" fuzz "$REPO/tools/fuzz/target/release/iommufd-fuzz" \
				"${FUZZ_CALLS:-200000}" "${FUZZ_SECS:-60}" 4
			grep '^# fuzz:' "$dir/fuzz.tap" | sed 's/^# /[guest] /'
			;;
		iommufd | iommufd_fail_nth) run_suite "$dir" "$s" "$KDIR/kselftest/iommu/$s" ;;
		*) run_suite "$dir" "$s" "$REPO/tests/selftests/build/$s" ;;
		esac
	done
}

# Every suite but the clients: ours (each built selftest), the fuzzer, upstream's.
all_but_clients() {
	local t
	for t in "$REPO"/tests/selftests/build/*; do
		[ -x "$t" ] && basename "$t"
	done
	echo fuzz iommufd iommufd_fail_nth
}

prepare
[ -w /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak
for impl in $IMPLS; do
	dir=$OUT/$impl${LABEL:+-$LABEL}
	rm -rf "$dir"; mkdir -p "$dir"
	if [ -n "$STUCK" ]; then
		echo "not run: suite $STUCK of the module before it got stuck" >"$dir/skipped"
		say "=== $impl: not run ($STUCK got stuck)"
		continue
	fi
	# -c, not -C: busybox (the arm64 guest) knows only the former.
	dmesg -c >/dev/null
	say "=== $impl"
	# The few suites where ours is stricter than upstream read which module is loaded.
	export IOMMUFD_IMPL=$impl
	if ! load "$impl" >"$dir/load.log" 2>&1; then
		say "loading the $impl module failed: $(cat "$dir/load.log")"
		echo "load failed" >"$dir/load.failed"
		dmesg >"$dir/dmesg.txt"
		touch "$dir/done"
		continue
	fi
	# A run of named suites says so: the report expects no other suite from it.
	if [ "${SUITES:-all}" = all ]; then
		# shellcheck disable=SC2046 # a list of names
		run_named "$dir" $(all_but_clients)
		run_clients "$dir"
	else
		echo "$SUITES" >"$dir/suites"
		# shellcheck disable=SC2086 # a list of names
		run_named "$dir" $SUITES
		case " $SUITES " in *" clients "*) run_clients "$dir" ;; esac
	fi
	if [ -n "$STUCK" ]; then
		sleep 2 # the sysrq report
		dmesg >"$dir/dmesg.txt"
		echo "$STUCK" >"$dir/stuck"
		continue
	fi
	unload >"$dir/unload.log" 2>&1 || { say "unloading $impl failed: $(cat "$dir/unload.log")"; echo failed >"$dir/unload.failed"; }
	kmemleak_scan "$dir"
	dmesg >"$dir/dmesg.txt"
	touch "$dir/done"
done
say "finished"
