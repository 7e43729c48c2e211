#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run by DKMS before it builds (dkms.conf's PRE_BUILD), and usable by hand: tells whether the
# kernel whose build tree is $1 can take iommufd-rs, and if not, what is missing, in one line
# each. Exit status 0 when the build can go ahead.
#
#   dkms-prebuild.sh KDIR
set -uo pipefail
kdir=${1:?usage: dkms-prebuild.sh KDIR}
export PATH="$HOME/.cargo/bin:$PATH"
missing=0
no() { echo "iommufd-rs: $*" >&2; missing=1; }
has() { grep -q "^$1=y" "$kdir/.config" 2>/dev/null; }

[ -f "$kdir/.config" ] || { no "$kdir has no .config: not a kernel build tree or headers package"; exit 1; }
rel=$(cat "$kdir/include/config/kernel.release" 2>/dev/null || echo "?")
has CONFIG_RUST || no "kernel $rel was built without Rust support (CONFIG_RUST): it cannot load a Rust module"
has CONFIG_IOMMU_API || no "kernel $rel has no IOMMU API (CONFIG_IOMMU_API)"
if has CONFIG_RUST; then
	# An out-of-tree Rust module links against the kernel crate's metadata, which distribution
	# headers packages mostly do not ship.
	for f in rust/libkernel.rmeta rust/libmacros.so rust/bindings/.bindings_generated.rs.cmd; do
		[ -e "$kdir/$f" ] || no "kernel $rel: $kdir/$f is missing (the Rust build metadata of its build tree)"
	done
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"/\1/p' "$kdir/.config")
	have=$(rustc --version 2>/dev/null || echo "no rustc")
	[ -z "$want" ] || [ "$want" = "$have" ] ||
		no "kernel $rel was built by '$want', this machine has '$have' (they must be the same)"
	command -v bindgen >/dev/null || no "no bindgen on PATH (cargo install bindgen-cli)"
fi
[ -f "$kdir/usr/include/linux/iommufd.h" ] ||
	no "kernel $rel: no uAPI headers in its build tree ($kdir/usr/include): run 'make headers_install' there"
# Not fatal: /dev/iommu works, but VFIO devices cannot be bound to it.
has CONFIG_IOMMUFD || grep -q '^CONFIG_IOMMUFD=m' "$kdir/.config" ||
	echo "iommufd-rs: note: kernel $rel has CONFIG_IOMMUFD unset, so vfio has no iommufd support and no device can bind to /dev/iommu" >&2
exit "$missing"
