#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds (or reuses) the test kernel: bzImage, modules, uAPI headers and the upstream iommu selftests.
#
# The tree lives outside the repo, in $IOMMUFD_RS_CACHE (default ~/.cache/iommufd-rs), keyed by the kernel
# version and a hash of the config fragments, so a rerun with nothing changed costs a stamp check.
#
#   build.sh [--profile NAME]          build if needed, print nothing but progress
#   build.sh [--profile NAME] --dir    print the build directory (the module's KDIR) and exit
#   build.sh [--profile NAME] --src    print the kernel source directory and exit
#   build.sh [--profile NAME] --make-vars   print the make variables the profile builds with
#
# Profiles: default (gcc), debug (KASAN etc.; Rust with KASAN needs the kernel built by clang,
# so it builds with LLVM=-19), nocontainer (no VFIO container: iommufd provides /dev/vfio/vfio),
# intree and intree-builtin (a tree with ours applied by tools/intree.sh, given as KSRC: ours as
# the module iommufd, or built in; tests/intree/run.sh), arm64 (cross-built with
# aarch64-linux-gnu-gcc for QEMU's virt machine with SMMUv3: tools/vm/run-arm64.sh).
#
# KSRC=/path/to/linux-7.2 points the build at another 7.2 tree instead of the pinned Debian source.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}
profile=default
mode=build
while [ $# -gt 0 ]; do
	case $1 in
	--profile) profile=$2; shift 2 ;;
	--dir) mode=dir; shift ;;
	--src) mode=src; shift ;;
	--make-vars) mode=vars; shift ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

case $profile in
debug) make_vars=(LLVM=-19) ;;
arm64) make_vars=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) ;;
*) make_vars=() ;;
esac
# The architecture's defconfig, its boot image and the config fragments on top of it.
if [ "$profile" = arm64 ]; then
	arch=arm64 defconfig=defconfig image=arch/arm64/boot/Image image_target=Image
else
	arch=x86 defconfig=x86_64_defconfig image=arch/x86/boot/bzImage image_target=bzImage
fi
[ $mode = vars ] && { echo "${make_vars[*]}"; exit 0; }

export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
log() { [ $mode = build ] && printf '[kernel] %s\n' "$*" >&2 || true; }

# --- source ---------------------------------------------------------------------------------------
pinned_deb=${PINNED_DEB:-$repo/../shared/kernel/linux-source-7.2_7.2.13-1_all.deb}
src_from_deb() {
	local deb=$1 dest=$cache/src
	local tree=$dest/linux-source-7.2
	if [ ! -f "$tree/.unpacked" ]; then
		[ $mode = build ] || { echo "$tree"; return; }
		log "unpacking $(basename "$deb") into $dest"
		rm -rf "$dest/deb" "$tree"
		mkdir -p "$dest"
		dpkg-deb -x "$deb" "$dest/deb"
		tar -C "$dest" -xf "$dest/deb/usr/src/linux-source-7.2.tar.xz"
		rm -rf "$dest/deb"
		touch "$tree/.unpacked"
	fi
	echo "$tree"
}
if [ -n "${KSRC:-}" ]; then
	src=$(cd "$KSRC" && pwd)
elif [ -f "$pinned_deb" ]; then
	src=$(src_from_deb "$pinned_deb")
elif [ -f /usr/src/linux-source-7.2.tar.xz ]; then
	src=$cache/src/linux-source-7.2
	if [ ! -f "$src/.unpacked" ] && [ $mode = build ]; then
		mkdir -p "$cache/src"; tar -C "$cache/src" -xf /usr/src/linux-source-7.2.tar.xz; touch "$src/.unpacked"
	fi
elif [ -f "$cache/src/linux-source-7.2/.unpacked" ]; then
	src=$cache/src/linux-source-7.2
else
	# Fetch the package file only: installing it with -t sid would drag sid's libc along.
	[ $mode = build ] || { echo "$cache/src/linux-source-7.2"; exit 0; }
	log "downloading linux-source-7.2 from Debian sid (package file only)"
	mkdir -p "$cache/deb"
	(cd "$cache/deb" && apt-get download -q 'linux-source-7.2/sid')
	deb=$(ls "$cache"/deb/linux-source-7.2_*_all.deb | tail -n 1)
	src=$(src_from_deb "$deb")
fi
[ $mode = src ] && { echo "$src"; exit 0; }

version() { sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$1/Makefile" | paste -sd.; }
[ -f "$src/Makefile" ] && kver=$(version "$src") || kver=7.2.13

# --- config and cache key ------------------------------------------------------------------------
if [ $arch = arm64 ]; then
	fragments=("$src/arch/arm64/configs/virt.config" "$here/base.config")
else
	fragments=("$src/kernel/configs/kvm_guest.config" "$here/base.config")
fi
[ "$profile" = default ] || fragments+=("$here/$profile.config")
for f in "${fragments[@]:1}"; do [ -f "$f" ] || { echo "build.sh: missing fragment $f" >&2; exit 1; }; done
key=$( { echo "$kver $src"; cat "${fragments[@]:1}"; } | sha256sum | cut -c1-12)
out=$cache/build/$kver-$profile-$key
[ $mode = dir ] && { echo "$out"; exit 0; }

# Upstream's iommu selftests, built from the source tree into the build tree. On a debug profile
# every test's harness timeout (30 s, fixed in kselftest_harness.h) is raised by force-including
# slow-harness.h: lockdep or KASAN under TCG makes an iommufd_fail_nth test run several minutes.
selftests() {
	local extra=() sstamp=$out/.iommufd-rs-selftests-$profile cc=gcc
	[ "$profile" = default ] || [ $arch = arm64 ] || extra=(USERCFLAGS="-include $here/slow-harness.h")
	# arm64: static binaries (the guest's root is a busybox initramfs), libcap from the arm64
	# sysroot of tools/vm/arm64-root.sh.
	if [ $arch = arm64 ]; then
		local sysroot
		sysroot=$("$repo/tools/vm/arm64-root.sh")/sysroot
		cc=aarch64-linux-gnu-gcc
		extra=(USERCFLAGS="-I$sysroot/usr/include" USERLDFLAGS="-static -L$sysroot/usr/lib/aarch64-linux-gnu")
	fi
	if [ -f "$sstamp" ] && { [ "$profile" = default ] || [ "$sstamp" -nt "$here/slow-harness.h" ]; }; then
		return 0
	fi
	log "building tools/testing/selftests/iommu"
	mkdir -p "$out/kselftest/iommu"
	rm -f "$out"/kselftest/iommu/iommufd "$out"/kselftest/iommu/iommufd_fail_nth
	make -s -C "$src/tools/testing/selftests/iommu" OUTPUT="$out/kselftest/iommu" CC=$cc ARCH=$arch \
		KHDR_INCLUDES="-isystem $out/usr/include" "${extra[@]}" >/dev/null
	touch "$sstamp"
}

stamp=$out/.iommufd-rs-built
install_build() {
	log "installing modules and uAPI headers"
	rm -rf "$out/modroot" "$out/.virtme_mods"
	kmake INSTALL_MOD_PATH="$out/modroot" INSTALL_MOD_STRIP=1 modules_install >/dev/null
	kmake headers_install >/dev/null
}
jobs=$(nproc)
kmake() { make -s -C "$src" O="$out" -j"$jobs" "${make_vars[@]}" "$@"; }
if [ -f "$stamp" ] && [ -f "$out/$image" ]; then
	# REBUILD=1: a source tree that changes under the same key (a tree with ours applied in tree,
	# whose Rust sources are this checkout's) is made again, incrementally, with its config as is.
	if [ "${REBUILD:-0}" = 1 ]; then
		t0=$(date +%s)
		log "incremental: $out"
		kmake $image_target modules
		install_build
		log "rebuilt in $(( $(date +%s) - t0 ))s"
	else
		log "cached: $out"
	fi
	selftests
	exit 0
fi

[ "$kver" = "${kver#7.2.}" ] && { echo "build.sh: $src is Linux $kver, not 7.2" >&2; exit 1; }
# A new key for a profile that was built before (a config fragment changed): start from a copy of
# that build. Kbuild tracks which objects depend on which CONFIG_ symbols, so only those rebuild,
# in minutes rather than a cold build's quarter of an hour.
if [ ! -f "$out/.config" ]; then
	prev=$(ls -td "$cache/build/$kver-$profile-"*/.iommufd-rs-built 2>/dev/null | head -n 1 || true)
	# BASE_PROFILE=NAME: start from that profile's build (the same source tree: intree-builtin
	# from intree, tests/intree/run.sh).
	if [ -z "$prev" ] && [ -n "${BASE_PROFILE:-}" ]; then
		prev=$(ls -td "$cache/build/$kver-$BASE_PROFILE-"*/.iommufd-rs-built 2>/dev/null | head -n 1 || true)
	fi
	# A profile never built before that builds with the same compiler as the default one (the
	# nocontainer profile, a few VFIO symbols apart) starts from the default build the same way.
	if [ -z "$prev" ] && [ ${#make_vars[@]} = 0 ] && [ "$profile" != default ] && [ -z "${KSRC:-}" ]; then
		prev=$(ls -td "$cache/build/$kver-default-"*/.iommufd-rs-built 2>/dev/null | head -n 1 || true)
	fi
	if [ -n "$prev" ]; then
		prev=$(dirname "$prev")
		log "starting from $prev"
		rm -rf "$out.tmp"
		cp -a "$prev" "$out.tmp"
		rm -f "$out.tmp/.iommufd-rs-built" "$out.tmp"/.iommufd-rs-selftests-* "$out.tmp"/kvm-probe-*
		rm -rf "$out.tmp/.virtme_mods"
		mv -T "$out.tmp" "$out"
	fi
fi
mkdir -p "$out"

log "Linux $kver, profile $profile -> $out"
kmake rustavailable >/dev/null || { echo "build.sh: Rust toolchain not usable for the kernel (run tools/setup.sh)" >&2; exit 1; }
kmake $defconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
kmake olddefconfig >/dev/null

# arm64: COMPILE_TEST is there only to offer GENERIC_PT, the generic page table the mock IOMMU of
# CONFIG_IOMMUFD_TEST is built on (no arm64 driver selects it). It also turns on hundreds of
# other platforms' drivers (clocks, pin controllers, PHYs...) that default to COMPILE_TEST: every
# symbol it turned on that no fragment asks for goes back off, which keeps the cold build to the
# virt machine's kernel.
if [ $arch = arm64 ]; then
	plain=$out/.config.no-compile-test
	cp "$out/.config" "$plain"
	"$src/scripts/config" --file "$plain" -d COMPILE_TEST
	make -s -C "$src" O="$out" "${make_vars[@]}" KCONFIG_CONFIG=.config.no-compile-test olddefconfig >/dev/null
	asked=$(cat "${fragments[@]:1}" | sed -n 's/^CONFIG_\([A-Za-z0-9_]*\)=.*/\1/p' | sort -u)
	extra=$(comm -23 <(sed -n 's/^CONFIG_\([A-Za-z0-9_]*\)=[ym]$/\1/p' "$out/.config" | sort -u) \
		<(sed -n 's/^CONFIG_\([A-Za-z0-9_]*\)=[ym]$/\1/p' "$plain" | sort -u) | comm -23 - <(echo "$asked"))
	args=()
	for sym in $extra; do args+=(-d "$sym"); done
	[ ${#args[@]} = 0 ] || "$src/scripts/config" --file "$out/.config" "${args[@]}"
	kmake olddefconfig >/dev/null
	log "COMPILE_TEST: $(echo "$extra" | wc -w) symbols it turned on are off again"
	rm -f "$plain"
fi

# merge_config.sh is silent when a symbol does not take: check the ones the project depends on.
# A later fragment overrides an earlier one (the nocontainer profile unsets CONFIG_IOMMUFD_TEST),
# so only the last word on each symbol is checked.
bad=0
declare -A want=()
for f in "${fragments[@]:1}"; do
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) want[${line%%=*}]=$line ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; want[${sym%% *}]= ;;
		esac
	done <"$f"
done
# A fragment may name symbols of an earlier one that its architecture lacks (# not-on-ARCH: ...).
for f in "${fragments[@]:1}"; do
	for sym in $(sed -n "s/^# not-on-$arch://p" "$f"); do unset "want[$sym]"; done
done
for sym in "${!want[@]}"; do
	line=${want[$sym]}
	[ -z "$line" ] || grep -qx "$line" "$out/.config" || { echo "build.sh: $line did not take" >&2; bad=1; }
done
[ $bad = 0 ] || exit 1

t0=$(date +%s)
log "building $image_target and modules ($jobs jobs)"
kmake $image_target modules
install_build

selftests
log "built in $(( $(date +%s) - t0 ))s"
touch "$stamp"
