#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The install paths, in one boot of the test kernel (tools/check.sh runs it; TAP in
# $OUT/install.tap):
# - `make install` and `make uninstall` run in the guest with no KDIR, so against the running
#   kernel's build link, into the guest's own module tree (a writable copy of the test kernel's,
#   mounted over /lib/modules/$(uname -r)); `modprobe vfio-pci` loads ours after the install and
#   the C module after the uninstall, and an edu device DMAs through each (tests/clients/edu_dma).
#   Which module is loaded is told by its taint: ours is out of tree (O), the C one is in tree.
# - DKMS (Debian's dkms package): `dkms add` and `dkms build` on the host against the test kernel
#   (a Rust build under the guest's emulated CPU would take most of an hour), `dkms install` in
#   the guest into its module tree, modprobe loads that one, `dkms remove` gives the C one back.
#   The dkms tree is ours (results/raw/install/dkms), never /var/lib/dkms.
#
#   run.sh OUT KDIR      (./iommufd.ko and tests/clients/build/edu_dma built for KDIR)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$1 kdir=$2
work=$out/install
rel=$(cat "$kdir/include/config/kernel.release")
rm -rf "$work"
mkdir -p "$work/root/lib/modules" "$work/dkms"
cp -a "$kdir/modroot/lib/modules/$rel" "$work/root/lib/modules/"
tap=$out/install.tap

# DKMS's pre-build check (tools/dkms-prebuild.sh): the test kernel can take the module; a tree
# like a distribution's headers package (no Rust metadata, CONFIG_IOMMUFD unset) is told what it
# lacks, one line each, and refused.
host_tap=$work/host.tap
: >"$host_tap"
if "$repo/tools/dkms-prebuild.sh" "$kdir" >"$work/prebuild-test-kernel.log" 2>&1; then
	echo "ok 101 install.dkms_prebuild_accepts_the_test_kernel" >>"$host_tap"
else
	echo "not ok 101 install.dkms_prebuild_accepts_the_test_kernel # $(head -1 "$work/prebuild-test-kernel.log")" >>"$host_tap"
fi
fake=$work/headers-only
mkdir -p "$fake/include/config"
grep -v '^CONFIG_IOMMUFD=' "$kdir/.config" >"$fake/.config"
echo "$rel" >"$fake/include/config/kernel.release"
"$repo/tools/dkms-prebuild.sh" "$fake" >"$work/prebuild-headers-only.log" 2>&1 && fake_rc=0 || fake_rc=$?
if [ "$fake_rc" != 0 ] && grep -q 'rust/libkernel.rmeta is missing' "$work/prebuild-headers-only.log" &&
	grep -q 'CONFIG_IOMMUFD unset' "$work/prebuild-headers-only.log"; then
	echo "ok 102 install.dkms_prebuild_names_what_is_missing" >>"$host_tap"
else
	echo "not ok 102 install.dkms_prebuild_names_what_is_missing # rc $fake_rc: $(head -1 "$work/prebuild-headers-only.log")" >>"$host_tap"
fi

# DKMS, host half: the source tree dkms builds from is a copy of this checkout's sources.
dkms_ok=1 dkms_why=
if ! command -v dkms >/dev/null; then
	dkms_ok=0 dkms_why="no dkms (tools/setup.sh installs it)"
else
	ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$repo/dkms.conf")
	src=$work/src/iommufd-rs-$ver
	mkdir -p "$src"
	(cd "$repo" && git ls-files -z -- Kbuild Kconfig Makefile dkms.conf src include tools/gen-bindings.sh \
		tools/kernel/build.sh tools/dkms-prebuild.sh | xargs -0 cp --parents -t "$src")
	dk=(dkms --dkmstree "$work/dkms" --sourcetree "$work/src" --installtree "$work/root/lib/modules")
	if ! "${dk[@]}" add -m iommufd-rs -v "$ver" >"$work/dkms-add.log" 2>&1; then
		dkms_ok=0 dkms_why="dkms add failed: $(tail -1 "$work/dkms-add.log")"
	elif ! "${dk[@]}" build -m iommufd-rs -v "$ver" -k "$rel" --kernelsourcedir "$kdir" \
		>"$work/dkms-build.log" 2>&1; then
		dkms_ok=0 dkms_why="dkms build failed: $(grep -m1 -iE 'error|missing' "$work/dkms-build.log" || tail -1 "$work/dkms-build.log")"
	fi
fi

"$repo/tools/vm/run.sh" --timeout "${VM_TIMEOUT:-900}" --log "$work/console.log" --rwdir "$work" -- \
	env WORK="$work" DKMS_OK="$dkms_ok" DKMS_WHY="$dkms_why" DKMS_VER="${ver:-}" \
	"$here/guest.sh" >"$work/guest.log" 2>&1 || true
{
	echo "TAP version 13"
	cat "$host_tap"
	if grep -q '^1\.\.' "$work/guest.tap" 2>/dev/null; then
		cat "$work/guest.tap"
	else
		cat "$work/guest.tap" 2>/dev/null
		echo "not ok 99 install.guest_finished # the guest did not finish: $work/console.log"
	fi
} >"$tap"
grep -E '^(not )?ok' "$tap" || true
