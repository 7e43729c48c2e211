#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Ours in tree (tools/intree.sh), as the kernel would carry it: the pinned tree with this
# checkout applied as the implementation of CONFIG_IOMMUFD, built twice, with ours as the module
# iommufd (profile intree) and built in (profile intree-builtin, from the first build's objects),
# and each booted for the suites (guest-tests.sh: RUST_KO=modprobe, RUST_KO=builtin; results
# rust-intree and rust-builtin in results/tests.tsv). Before the boots, TAP in $OUT/intree.tap:
# the series applies, each kernel builds, keeps vfio's iommufd support and carries ours, not C.
#
#   run.sh OUT [SUITES]    (SUITES=clients: the VFIO clients only)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$1 suites=${2:-all}
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}
tap=$out/intree.tap
log=$out/intree
mkdir -p "$log"
n=0
result() { # ok|fail name [note]
	n=$((n + 1))
	local line="ok $n intree.$2"
	[ "$1" = ok ] || line="not ok $n intree.$2"
	[ -z "${3:-}" ] || line+=" # $3"
	echo "$line" >>"$tap"
}
echo "TAP version 13" >"$tap"

# The tree: a hard-linked copy of the pinned one (tools/intree.sh replaces the files it changes,
# never writes through a link), made again on each run so it holds this checkout's sources.
pinned=$("$repo/tools/kernel/build.sh" --src)
tree=$cache/src/linux-source-7.2-intree
rm -rf "$tree.tmp"
cp -al "$pinned" "$tree.tmp"
if "$repo/tools/intree.sh" apply "$tree.tmp" >"$log/apply.log" 2>&1 &&
	"$repo/tools/intree.sh" patches "$pinned" "$log/series" >>"$log/apply.log" 2>&1; then
	result ok applies_and_makes_a_series
else
	result fail applies_and_makes_a_series "$(tail -1 "$log/apply.log")"
fi
# Keep the generated bindings of the previous run's tree (made by its build, fresh by their own
# checks): without them every rebuild would run bindgen and compile ours from scratch anyway.
gen=drivers/iommu/iommufd/rust/src/ffi/generated
[ -d "$tree/$gen" ] && cp -a "$tree/$gen" "$tree.tmp/$gen"
rm -rf "$tree"
mv "$tree.tmp" "$tree"

declare -A label=([intree]=intree [intree-builtin]=builtin)
# The TAP names: intree.module.* and intree.builtin.*.
declare -A row=([intree]=module [intree-builtin]=builtin)
declare -A how=([intree]=modprobe [intree-builtin]=builtin)
for profile in intree intree-builtin; do
	base=
	[ "$profile" = intree-builtin ] && base=intree
	t0=$(date +%s)
	if ! KSRC=$tree BASE_PROFILE=$base REBUILD=1 "$repo/tools/kernel/build.sh" --profile "$profile" \
		>"$log/build-$profile.log" 2>&1; then
		result fail "${row[$profile]}.kernel_builds" "$(grep -m1 -E 'error|Error' "$log/build-$profile.log")"
		continue
	fi
	result ok "${row[$profile]}.kernel_builds" "$(( $(date +%s) - t0 )) s"
	kdir=$(KSRC=$tree "$repo/tools/kernel/build.sh" --profile "$profile" --dir)
	cfg=$kdir/.config
	want_iommufd=m
	[ "$profile" = intree-builtin ] && want_iommufd=y
	if grep -qx "CONFIG_IOMMUFD=$want_iommufd" "$cfg" && grep -qx CONFIG_IOMMUFD_IMPL_RUST=y "$cfg" &&
		grep -qx CONFIG_VFIO_DEVICE_CDEV=y "$cfg" && grep -q '^CONFIG_IOMMUFD_DRIVER_CORE=y' "$cfg"; then
		result ok "${row[$profile]}.keeps_vfio_iommufd_support"
	else
		result fail "${row[$profile]}.keeps_vfio_iommufd_support" \
			"$(grep -E '^CONFIG_(IOMMUFD|IOMMUFD_IMPL_RUST|VFIO_DEVICE_CDEV)=' "$cfg" | tr '\n' ' ')"
	fi
	mods=$kdir/modroot/lib/modules/$(cat "$kdir/include/config/kernel.release")
	c_ko=$(find "$mods" -path '*/iommufd/iommufd.ko*' | head -1)
	rust_ko=$(find "$mods" -path '*/iommufd/rust/iommufd.ko*' | head -1)
	if [ "$profile" = intree ]; then
		# (nm into a variable: grep -q ending the pipe early would fail it under pipefail.)
		syms=$(nm "$kdir/drivers/iommu/iommufd/rust/iommufd.ko" 2>/dev/null || true)
		if [ -n "$rust_ko" ] && [ -z "$c_ko" ] && grep -q ' T iommufd_rs_' <<<"$syms"; then
			result ok module.module_is_ours
		else
			result fail module.module_is_ours "rust: ${rust_ko:-none}, C: ${c_ko:-none}"
		fi
	else
		if [ -z "$rust_ko$c_ko" ] && grep -q ' T iommufd_rs_' "$kdir/System.map" &&
			grep -q 'drivers/iommu/iommufd/rust/iommufd.ko' "$mods/modules.builtin"; then
			result ok builtin.vmlinux_carries_ours
		else
			result fail builtin.vmlinux_carries_ours "modules: ${rust_ko:-} ${c_ko:-}"
		fi
	fi
	# The suites, ours only (the C module is not in this kernel).
	KPROFILE=$profile KDIR="$kdir" "$repo/tools/vm/run.sh" --timeout "${VM_TIMEOUT:-3000}" \
		--log "$out/console-rust-${label[$profile]}.log" --rwdir "$out" -- \
		env IMPLS=rust LABEL="${label[$profile]}" SUITES="$suites" OUT="$out" KDIR="$kdir" REPO="$repo" \
		RUST_KO="${how[$profile]}" SUITE_TIMEOUT="${SUITE_TIMEOUT:-600}" STUCK_GRACE=60 \
		FUZZ_CALLS="${FUZZ_CALLS:-200000}" FUZZ_SECS="${FUZZ_SECS:-60}" "$repo/tools/vm/guest-tests.sh" |
		grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
done
echo "1..$n" >>"$tap"
grep -E '^(not )?ok' "$tap" || true
