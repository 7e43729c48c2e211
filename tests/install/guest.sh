#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The guest half of tests/install/run.sh (which see): TAP into $WORK/guest.tap.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tools/vm/edu.sh"
rel=$(uname -r)
tap=$WORK/guest.tap
n=0
: >"$tap"
result() { # ok|fail name [note]
	n=$((n + 1))
	local line
	if [ "$1" = ok ]; then line="ok $n install.$2"; else line="not ok $n install.$2"; fi
	[ -z "${3:-}" ] || line+=" # $3"
	echo "$line" | tee -a "$tap"
}
skip() { n=$((n + 1)); echo "ok $n install.$1 # SKIP $2" | tee -a "$tap"; }

# The guest's module tree: a writable copy of the test kernel's (its build link is the test
# kernel's build tree), over the one the guest booted with.
mount --bind "$WORK/root/lib/modules/$rel" "/lib/modules/$rel" || { result fail module_tree "bind mount"; exit 0; }
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug

. "$repo/tools/vm/modules.sh"
# Which iommufd is loaded (iommufd_impl), and that ours carries the out-of-tree taint and the C
# one none, as a user would check it.
loaded() {
	local impl taint
	impl=$(iommufd_impl)
	taint=$(cat /sys/module/iommufd/taint 2>/dev/null)
	case $impl:$taint in
	rust:*O* | c: | none:) echo "$impl" ;;
	*) echo "$impl (taint '$taint')" ;;
	esac
}
unload_all() {
	edu_release
	unload_iommufd_stack || true
}
# `modprobe vfio-pci` loads $1 as iommufd, and the edu device DMAs through it.
modprobe_and_dma() { # expected-impl label
	local want=$1 label=$2 cdev got
	unload_all
	if ! modprobe vfio-pci; then
		result fail "modprobe_vfio_pci_loads_$label" "modprobe vfio-pci failed"
		return
	fi
	got=$(loaded)
	if [ "$got" = "$want" ]; then
		result ok "modprobe_vfio_pci_loads_$label"
	else
		result fail "modprobe_vfio_pci_loads_$label" "loaded: $got"
	fi
	cdev=$(edu_to_vfio "$(edu_devices | head -1)")
	if [ -z "$cdev" ]; then
		result fail "edu_dma_$label" "no VFIO cdev for the edu device"
	elif "$repo/tests/clients/build/edu_dma" "$cdev" >"$WORK/edu_dma-$label.log" 2>&1; then
		result ok "edu_dma_$label"
	else
		result fail "edu_dma_$label" "$(grep -m1 '^not ok' "$WORK/edu_dma-$label.log")"
	fi
	unload_all
}
# What `modprobe iommufd` would load now.
resolves() { modinfo -k "$rel" -n iommufd 2>/dev/null; }

# make install / uninstall, with no KDIR: the running kernel's build link.
if make -s -C "$repo" install >"$WORK/make-install.log" 2>&1 && [[ $(resolves) == */updates/iommufd.ko* ]]; then
	result ok make_install
else
	result fail make_install "$(tail -1 "$WORK/make-install.log"); resolves to $(resolves)"
fi
modprobe_and_dma rust installed
if make -s -C "$repo" uninstall >"$WORK/make-uninstall.log" 2>&1 && [[ $(resolves) == */kernel/* ]]; then
	result ok make_uninstall
else
	result fail make_uninstall "$(tail -1 "$WORK/make-uninstall.log"); resolves to $(resolves)"
fi
modprobe_and_dma c uninstalled

# DKMS: built on the host (run.sh), installed and removed here.
if [ "$DKMS_OK" != 1 ]; then
	result fail dkms_build "$DKMS_WHY"
elif ! command -v dkms >/dev/null; then
	result fail dkms_install "no dkms in the guest"
else
	result ok dkms_build
	dk=(dkms --dkmstree "$WORK/dkms" --sourcetree "$WORK/src")
	if "${dk[@]}" install -m iommufd-rs -v "$DKMS_VER" -k "$rel" >"$WORK/dkms-install.log" 2>&1 &&
		[[ $(resolves) == */updates/dkms/iommufd.ko* ]]; then
		result ok dkms_install
	else
		result fail dkms_install "$(tail -1 "$WORK/dkms-install.log"); resolves to $(resolves)"
	fi
	modprobe_and_dma rust dkms
	if "${dk[@]}" remove -m iommufd-rs -v "$DKMS_VER" -k "$rel" >"$WORK/dkms-remove.log" 2>&1 &&
		[[ $(resolves) == */kernel/* ]]; then
		result ok dkms_remove
	else
		result fail dkms_remove "$(tail -1 "$WORK/dkms-remove.log"); resolves to $(resolves)"
	fi
fi
echo "1..$n" >>"$tap"
