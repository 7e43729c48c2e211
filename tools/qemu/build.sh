#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds (or reuses) the nesting rig's QEMU: qemu-system-aarch64 from Debian's 10.0.2 source (the
# version bookworm-backports installs) with the patches of this directory applied. Today one:
# smmuv3-fwb.patch advertises IDR3.FWB, without which the 7.2 arm-smmu-v3 driver offers no vIOMMU
# (arm_smmu_get_viommu_size() wants S2FWB or IORT CANWBS). QEMU models no cache attributes: FWB
# changes no translation, and QEMU's STE decoding ignores the S2FWB bit the driver then sets.
#
# The build lives in $IOMMUFD_RS_CACHE (default ~/.cache/iommufd-rs)/qemu, keyed by the version
# and a hash of this script and the patches, so a rerun with nothing changed costs a stamp check.
#
#   build.sh          build if needed (progress on stderr)
#   build.sh --path   print the path of the patched qemu-system-aarch64 and exit
#
# Only the aarch64 system emulator, only what tools/vm/run-arm64.sh uses (TCG, virt, 9p, edu).
# Build dependencies come from tools/setup.sh; meson (QEMU 10.0 needs 1.5) comes from PyPI into a
# venv of the build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}
version=10.0.2
tarball=qemu_${version}+ds.orig.tar.xz
sha256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
url=http://deb.debian.org/debian/pool/main/q/qemu/qemu_${version}%2bds.orig.tar.xz

key=$(cat "$0" "$here"/*.patch | sha256sum | cut -c1-12)
dir=$cache/qemu/$version-$key
bin=$dir/qemu-system-aarch64
if [ "${1:-}" = --path ]; then
	echo "$bin"
	exit 0
fi
log() { printf '[qemu] %s\n' "$*" >&2; }
if [ -x "$bin" ] && [ -f "$dir/.built" ]; then
	log "cached: $bin"
	exit 0
fi

mkdir -p "$cache/qemu"
if ! echo "$sha256  $cache/qemu/$tarball" | sha256sum -c --status 2>/dev/null; then
	log "fetching $tarball"
	curl -sfL -o "$cache/qemu/$tarball.part" "$url"
	echo "$sha256  $cache/qemu/$tarball.part" | sha256sum -c --status ||
		{ log "checksum mismatch for $url"; exit 1; }
	mv "$cache/qemu/$tarball.part" "$cache/qemu/$tarball"
fi

rm -rf "$dir"
mkdir -p "$dir"
log "unpacking and patching"
tar -C "$dir" -xf "$cache/qemu/$tarball"
src=$dir/qemu-$version
for p in "$here"/*.patch; do
	patch -s -d "$src" -p1 <"$p"
done
# Debian's +ds tarball leaves out the prebuilt firmware; meson still lists the EDK2 images for an
# aarch64 target. The guest boots with -kernel, so empty stand-ins do.
for f in $(sed -n '/fds = \[/,/\]/p' "$src/pc-bios/meson.build" | grep -o "edk2-[a-z0-9_-]*\.fd"); do
	[ -e "$src/pc-bios/$f.bz2" ] || bzip2 -c </dev/null >"$src/pc-bios/$f.bz2"
done
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install -q meson==1.5.0 pycotap==1.3.1

log "configuring"
mkdir -p "$src/build"
(cd "$src/build" && ../configure --python="$dir/venv/bin/python3" --target-list=aarch64-softmmu \
	--without-default-features --disable-docs --disable-tools --disable-user --disable-werror \
	--disable-install-blobs --enable-fdt=system --enable-virtfs --enable-attr --enable-cap-ng \
	>"$dir/configure.log" 2>&1) || { tail -20 "$dir/configure.log" >&2; exit 1; }
log "building qemu-system-aarch64 (about 20 min on 2 cores)"
t0=$(date +%s)
ninja -C "$src/build" qemu-system-aarch64 >"$dir/build.log" 2>&1 || { tail -20 "$dir/build.log" >&2; exit 1; }
cp "$src/build/qemu-system-aarch64" "$bin"
rm -rf "$src" "$dir/venv"
echo "$(( $(date +%s) - t0 ))" >"$dir/.built"
log "built in $(cat "$dir/.built") s: $bin"
