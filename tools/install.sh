#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make install / make uninstall: puts iommufd.ko of this checkout into (or takes it out of) the
# updates/ directory of a kernel's module tree and reruns depmod, so that `modprobe iommufd`, and
# `modprobe vfio-pci` which needs it, load ours instead of the kernel's own C iommufd.ko (depmod
# searches updates/ before the kernel's own modules); after an uninstall they load the C one again.
#
#   install.sh install|uninstall KDIR [ROOT]
#
# KDIR is the kernel's build tree (the Makefile passes the running kernel's build link unless
# KDIR is given); ROOT installs under another root (INSTALL_MOD_PATH), for a staged or guest tree.
# The module must have been built for KDIR first (make module KDIR=...): an install never builds,
# so `sudo make install` does not run the Rust toolchain as root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: install.sh install|uninstall KDIR [ROOT]" >&2; exit 2; }
what=$1 kdir=$2 root=${3:-}
rel_file=$kdir/include/config/kernel.release
[ -f "$rel_file" ] || {
	echo "install: $kdir is not a configured kernel build tree (no include/config/kernel.release)" >&2
	exit 1
}
rel=$(cat "$rel_file")
moddir=$root/lib/modules/$rel
depmod_b=()
[ -z "$root" ] || depmod_b=(-b "$root")

# Which file `modprobe iommufd` would load now, and whose it is.
show() {
	local path desc
	path=$(modinfo "${depmod_b[@]}" -k "$rel" -n iommufd 2>/dev/null) || path="(none)"
	desc=$(modinfo "${depmod_b[@]}" -k "$rel" -F description iommufd 2>/dev/null) || desc=
	echo "install: modprobe iommufd on $rel now loads $path${desc:+ ($desc)}"
}

case $what in
install)
	ko=$repo/iommufd.ko
	[ -f "$ko" ] || { echo "install: no $ko: run 'make module KDIR=$kdir' first" >&2; exit 1; }
	built_for=$(modinfo -F vermagic "$ko" | awk '{print $1}')
	[ "$built_for" = "$rel" ] || {
		echo "install: $ko was built for $built_for, $kdir is $rel: run 'make module KDIR=$kdir' first" >&2
		exit 1
	}
	[ -d "$moddir" ] || { echo "install: no module tree $moddir" >&2; exit 1; }
	# Kbuild's own install: it signs and compresses the module as the kernel's config says.
	make -s -C "$kdir" M="$repo" INSTALL_MOD_DIR=updates ${root:+INSTALL_MOD_PATH="$root"} \
		modules_install
	depmod "${depmod_b[@]}" -a "$rel"
	show
	path=$(modinfo "${depmod_b[@]}" -k "$rel" -n iommufd)
	case $path in
	*/updates/*) ;;
	*)
		echo "install: depmod does not prefer updates/ here (see depmod.d(5)): $path wins" >&2
		exit 1
		;;
	esac
	;;
uninstall)
	rm -f "$moddir"/updates/iommufd.ko "$moddir"/updates/iommufd.ko.{gz,xz,zst}
	depmod "${depmod_b[@]}" -a "$rel"
	show
	;;
*)
	echo "usage: install.sh install|uninstall KDIR [ROOT]" >&2
	exit 2
	;;
esac
