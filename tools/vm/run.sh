#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the test kernel under QEMU (q35 + emulated VT-d in scalable mode + the edu DMA device) with
# virtme-ng, runs one command in the guest and returns its exit status. Never hangs: past the time
# limit the guest is killed and the reason (panic, oops, hang) is printed.
#
#   run.sh [--timeout SECONDS] [--log FILE] [--rwdir DIR]... -- COMMAND [ARGS...]
#
# The guest sees the host's root filesystem read-only (so it runs the repo's and the kernel tree's
# binaries in place) and each --rwdir read-write. KVM is used only if a probe boot succeeded on this
# machine (cached); otherwise TCG.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The arm64 kernel boots on QEMU's virt machine with SMMUv3 instead (same interface).
[ "${KPROFILE:-default}" = arm64 ] && exec "$here/run-arm64.sh" "$@"
repo=$(cd "$here/../.." && pwd)
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}
kdir=${KDIR:-$("$repo/tools/kernel/build.sh" --profile "${KPROFILE:-default}" --dir)}
timeout=${VM_TIMEOUT:-600}
log=
rwdirs=()
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--rwdir) rwdirs+=("--rwdir=$(cd "$2" && pwd)=$(cd "$2" && pwd)"); shift 2 ;;
	--) shift; break ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "run.sh: no command" >&2; exit 2; }
[ -f "$kdir/arch/x86/boot/bzImage" ] || { echo "run.sh: no kernel in $kdir (make kernel)" >&2; exit 2; }
[ -n "$log" ] || log=$(mktemp /tmp/iommufd-rs-vm.XXXXXX.log)

qemu_opts="-machine q35,kernel-irqchip=split"
# VM_IOMMU picks the IOMMU: vtd (VT-d in scalable mode, second-stage page tables), vtd-fl (the
# same with first-stage page tables: x-flts, which needs 48-bit addresses) or virtio
# (virtio-iommu: paging domains only).
# eim=on: interrupt remapping with 32-bit destinations, which Linux needs before it puts the local
# APICs in x2APIC mode (below).
case ${VM_IOMMU:-vtd} in
vtd) qemu_opts+=" -device intel-iommu,intremap=on,eim=on,caching-mode=on,x-scalable-mode=on" ;;
vtd-fl) qemu_opts+=" -device intel-iommu,intremap=on,eim=on,caching-mode=on,x-scalable-mode=on,x-flts=on,aw-bits=48" ;;
# The guest's own virtio devices (the 9p root, the console) must not be behind the virtio-iommu
# (behind it none of them is probed before the root is mounted): the main bus bypasses it and the
# edus sit on a second root bus (pxb-pcie) that does not.
virtio) qemu_opts+=",default_bus_bypass_iommu=on -device virtio-iommu-pci"
	qemu_opts+=" -device pxb-pcie,id=pxb1,bus_nr=128,bus=pcie.0,bypass_iommu=off"
	qemu_opts+=" -device pcie-root-port,id=rp1,bus=pxb1,chassis=1,slot=1"
	qemu_opts+=" -device pcie-root-port,id=rp2,bus=pxb1,chassis=2,slot=2"
	qemu_opts+=" -device edu,bus=rp1"
	# The shared group is a two-function edu: behind a PCIe-to-PCI bridge the alias requester ID
	# fails the virtio-iommu's probe of the whole bus (and every group with it).
	qemu_opts+=" -device edu,bus=rp2,addr=0.0,multifunction=on -device edu,bus=rp2,addr=0.1"
	;;
*) echo "run.sh: VM_IOMMU is vtd, vtd-fl or virtio" >&2; exit 2 ;;
esac
if [ "${VM_IOMMU:-vtd}" != virtio ]; then
	qemu_opts+=" -device edu"
	# Two more behind a conventional PCI bridge: one IOMMU group with two devices (DMA ownership tests).
	qemu_opts+=" -device pci-bridge,id=br0,chassis_nr=1 -device edu,bus=br0,addr=1 -device edu,bus=br0,addr=2"
fi
# A QMP socket for the host's NMI at the time limit (below).
qmp=$(mktemp -u /tmp/iommufd-rs-qmp.XXXXXX)
qemu_opts+=" -qmp unix:$qmp,server=on,wait=off"
# Extra QEMU options, e.g. `-icount shift=0,sleep=off` for instruction-counted time (make bench).
qemu_opts+=" ${VM_QEMU_EXTRA:-}"
# A hung task, soft or hard lockup becomes a panic, and a panic ends QEMU (virtme passes
# -no-reboot). watchdog_thresh=60 (the most): a lockup is 120 s in the kernel (60 s with
# interrupts off), so a TCG guest whose vCPUs the host leaves waiting a while is not one.
# no_timer_check: under TCG on a loaded host the IO-APIC timer check can fail at boot and panic
# ("timer doesn't work through Interrupt-remapped IO-APIC"); the check tests QEMU, not us.
append=(--append "no_timer_check" --append "hung_task_panic=1" --append "sysctl.kernel.softlockup_panic=1" --append "oops=panic"
	--append "watchdog_thresh=60" --append "nmi_watchdog=panic"
	--append "intel_iommu=on,sm_on" --append "iommu.strict=1"
	# The guest saves dmesg per module run and the host scans it for splats: a buffer big enough
	# for a whole hard run (the default 256 KiB wraps, and an early WARN would scroll away).
	--append "log_buf_len=32M"
	# A guest still running near the time limit gets an NMI from the host (below): it panics and
	# prints every task with its stack (and the held locks on lockdep kernels) before it is
	# killed, so a hang names what waits on what even when no detector fired (a task asleep in
	# S state, or a guest whose userspace cannot run its own stuck-suite report).
	--append "unknown_nmi_panic=1" --append "panic_sys_info=tasks,locks")
# Extra kernel command-line words for one run, e.g. VM_APPEND="nmi_watchdog=1" (space-separated).
for word in ${VM_APPEND:-}; do
	append+=(--append "$word")
done

# The KASAN kernel (profile debug) under TCG: udevd does not finish coldplug before
# virtme-ng-init gives up waiting, so the command's I/O ports are never named and it never runs.
# There the guest uses virtme's shell init, which mounts the --rodir shares before it starts udevd,
# and /usr/lib/systemd is a share holding only a stand-in udevd that names the ports and exits
# (tools/vm/udevd-standin). Other kernels boot with udev as usual.
init_opts=()
# On the debug kernels every lock costs a lot more: a task only counts as hung after 10 minutes.
if [ "${KPROFILE:-default}" != default ]; then
	append+=(--append "sysctl.kernel.hung_task_timeout_secs=600")
fi
if [ "${KPROFILE:-default}" = debug ]; then
	init_opts=(--no-virtme-ng-init "--rodir=/usr/lib/systemd=$here/udevd-standin")
fi

vng_cmd() { # accel-flag timeout command...
	local accel=$1 limit=$2; shift 2
	local cmd
	printf -v cmd '%q ' "$@"
	# --disable-microvm: VT-d needs q35. No stdin: CI has none, and vng must not wait on it.
	# --verbose puts the guest kernel's console in the output: the log keeps it (that is where a
	# panic or oops shows), the terminal gets only the command's own lines.
	timeout --kill-after=15 "$limit" vng -r "$kdir" $accel --verbose --disable-microvm --disable-monitor \
		--memory 3G --cpus 2 --qemu-opts="$qemu_opts" "${append[@]}" "${rwdirs[@]}" "${init_opts[@]}" \
		--cwd "$repo" --exec "$cmd" </dev/null
}

# One probe per machine and kernel: does a KVM guest with this kernel get as far as running `true`?
accel=--disable-kvm
probe=$cache/kvm-probe-$(basename "$kdir")
if [ "${VM_ACCEL:-auto}" = kvm ]; then
	accel=
elif [ "${VM_ACCEL:-auto}" = auto ] && [ -w /dev/kvm ]; then
	if [ ! -f "$probe" ]; then
		if vng_cmd "" 90 true >"$probe.log" 2>&1; then echo kvm >"$probe"; else echo tcg >"$probe"; fi
		echo "[vm] KVM probe: $(cat "$probe") (log: $probe.log)" >&2
	fi
	[ "$(cat "$probe")" = kvm ] && accel=
fi
# QEMU 10.0's TCG can send a vCPU's MMIO store to the wrong device when the memory map changes
# under it (a PCI BAR mapped or unmapped; every VFIO reset does that): the store goes through a
# TLB entry made before the change, whose section number now names another region. The store is
# lost, and two kinds of loss stall the guest for good (Documentation/testing.rst):
# - a local APIC store (a timer count, an EOI): that vCPU takes no timer interrupt and no IPI
#   again; the hard-lockup detector finds it idle with interrupts on. One was seen landing in
#   VT-d's registers: `vtd_mem_write: MMIO over range: addr=0x380` (TMICT is APIC offset 0x380).
# - a virtio queue notification: with event-index suppression the driver would never notify that
#   queue again, and the console port or the 9p root would go quiet (seen once, not proven).
# So under TCG the local APICs run in x2APIC mode (MSRs; QEMU's default CPU model has none), and
# virtme-ng's virtio devices are legacy ones, notified by port I/O. Neither goes through the TLB.
# tools/vm/bar-churn.py (a runner self-test) checks that a guest survives BAR churn. KVM guests
# get -cpu host from virtme-ng, and KVM has no such race.
# Not with -icount (make bench): there QEMU aborts ("Bad icount read"), we believe on the guest's
# read of the x2APIC timer by MSR; without x2APIC the same VM runs. icount runs all vCPUs on one thread, where the other vCPUs flush their
# TLBs before they run again; only the vCPU that changed the map keeps a window.
if [ -n "$accel" ]; then
	case " ${VM_QEMU_EXTRA:-} " in
	*" -icount "*) ;;
	*) qemu_opts+=" -cpu qemu64,+x2apic" ;;
	esac
	qemu_opts+=" -global virtio-9p-pci.disable-modern=on -global virtio-serial-pci.disable-modern=on"
fi

# Lines of the boot itself (kernel console, decompressor, firmware), kept out of the terminal.
boot_noise='^\[ *[0-9]+\.[0-9]+\]|^(virtme|qemu-system|SeaBIOS|Booting|iPXE|Probing EDD|early console|input_|output|kernel_total_size|needed_size|trampoline_32bit|Physical KASLR|Virtual KASLR|Memory KASLR|Poking KASLR|Decompressing|Parsing ELF)|^\s*$'
start=$(date +%s)
# The NMI comes 90 s before the limit (a quarter of the limit for short ones), time enough for
# the dump under TCG; `nmi_sent` marks that it came.
nmi_lead=90
[ "$timeout" -ge 360 ] || nmi_lead=$((timeout / 4))
nmi_sent=$qmp.nmi
python3 - "$qmp" $((timeout - nmi_lead)) "$nmi_sent" >/dev/null 2>&1 <<'PY' &
import json, os, pathlib, socket, sys, time
# Not a holder of the caller's descriptors (a `flock` on the VM lock): a watcher left behind must
# not keep the next VM waiting. It also ends as soon as run.sh is gone.
os.closerange(3, 65536)
parent, deadline = os.getppid(), time.monotonic() + int(sys.argv[2])
while time.monotonic() < deadline:
    if os.getppid() != parent:
        sys.exit(0)
    time.sleep(1)
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # greeting
for cmd in ("qmp_capabilities", "inject-nmi"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while "return" not in (reply := json.loads(f.readline())) and "error" not in reply:
        pass  # events
    if "error" in reply:
        sys.exit(1)
pathlib.Path(sys.argv[3]).touch()
PY
nmi_watch=$!
set +e
vng_cmd "$accel" "$timeout" "$@" 2>&1 | tee "$log" | grep --line-buffered -v -E "$boot_noise"
rc=${PIPESTATUS[0]}
set -e
kill "$nmi_watch" 2>/dev/null || true
wait "$nmi_watch" 2>/dev/null || true
took=$(( $(date +%s) - start ))
nmi=
[ -f "$nmi_sent" ] && nmi=1
rm -f "$qmp" "$nmi_sent"

if [ -n "$nmi" ]; then
	# Not a crash: the host's NMI at the limit. The tasks' stacks follow the panic line in the log.
	echo "[vm] FAIL: guest did not finish within ${timeout}s (hang); the host's NMI $nmi_lead s before the limit put every task's stack in $log; last output before it:" >&2
	{ grep -v -E "$boot_noise" "$log" || true; } | tail -n 5 | sed 's/^/[vm]   /' >&2
	rc=124
elif grep -qE 'Kernel panic - not syncing|BUG: kernel NULL|Oops:|general protection fault' "$log"; then
	echo "[vm] FAIL: guest kernel crashed after ${took}s:" >&2
	grep -E -m5 'Kernel panic - not syncing|BUG:|Oops:|general protection fault|RIP:' "$log" | sed 's/^/[vm]   /' >&2
	[ "$rc" = 0 ] && rc=70
elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "[vm] FAIL: guest did not finish within ${timeout}s and was killed (hang); last output:" >&2
	tail -n 5 "$log" | sed 's/^/[vm]   /' >&2
elif [ "$rc" = 255 ]; then
	echo "[vm] FAIL: guest ended without the command's exit status after ${took}s; last output:" >&2
	tail -n 5 "$log" | sed 's/^/[vm]   /' >&2
fi
exit "$rc"
