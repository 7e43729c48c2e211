#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The arm64 guest's root and the arm64 sysroot for static user programs, from Debian's arm64
# packages (apt must know the architecture: tools/setup.sh adds it). Cached in
# $IOMMUFD_RS_CACHE/arm64; a rerun with this script unchanged costs a stamp check.
#
#   arm64-root.sh            build if needed, print the cache directory
#
# In the cache:
#   initramfs.cpio.gz  busybox (static) with all its applets, bash (static) as /bin/bash, and the
#                      init below: the guest's whole root; the repo, the kernel build tree and a
#                      per-run directory come in over 9p (tools/vm/run-arm64.sh)
#   sysroot/           libcap's headers and static library for aarch64-linux-gnu-gcc -static
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}/arm64
key=$(sha256sum "$here/arm64-root.sh" | cut -c1-12)
stamp=$cache/.built-$key
if [ -f "$stamp" ]; then
	echo "$cache"
	exit 0
fi
log() { printf '[arm64-root] %s\n' "$*" >&2; }

rm -rf "$cache"
mkdir -p "$cache/debs" "$cache/root" "$cache/sysroot"
log "downloading busybox-static, bash-static, libcap2 and libcap-dev for arm64"
(cd "$cache/debs" && apt-get download -q busybox-static:arm64 bash-static:arm64 libcap2:arm64 libcap-dev:arm64 >/dev/null 2>&1) ||
	{ echo "arm64-root.sh: apt-get download of the arm64 packages failed (run tools/setup.sh)" >&2; exit 1; }
for deb in "$cache"/debs/libcap*.deb; do dpkg-deb -x "$deb" "$cache/sysroot"; done
[ -f "$cache/sysroot/usr/lib/aarch64-linux-gnu/libcap.a" ] || { echo "arm64-root.sh: no libcap.a in libcap-dev:arm64" >&2; exit 1; }

root=$cache/root
for deb in "$cache"/debs/busybox-static*.deb "$cache"/debs/bash-static*.deb; do dpkg-deb -x "$deb" "$root"; done
mkdir -p "$root"/{dev,proc,sys,tmp,run,lib/modules,usr/bin,usr/sbin,sbin,etc,root,mnt}
ln -sf bash-static "$root/bin/bash"
ln -sf busybox "$root/bin/sh"
: >"$root/etc/fstab"
echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
rm -rf "$root/usr/share"

# The init: mounts the kernel's filesystems and the 9p shares named on the command line
# (iommufd_rs.share=TAG:PATH, read-only unless TAG ends in -rw), runs /run/iommufd-rs/cmd (a bash
# script the host wrote into the per-run share) in iommufd_rs.cwd, writes its exit status next to
# it and powers off. A panic or a hang is the host's business (tools/vm/run-arm64.sh).
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
# What udev would make: bash's process substitution needs /dev/fd.
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmp /tmp
mount -t debugfs none /sys/kernel/debug
cwd=/ mods=
for word in $(cat /proc/cmdline); do
	case $word in
	iommufd_rs.share=*)
		spec=${word#iommufd_rs.share=}
		tag=${spec%%:*} path=${spec#*:} opts=trans=virtio,version=9p2000.L,msize=1048576,cache=loose
		case $tag in *-rw) ;; *) opts=$opts,ro ;; esac
		mkdir -p "$path"
		mount -t 9p -o "$opts" "$tag" "$path" || echo "[init] mount of $tag at $path failed"
		;;
	iommufd_rs.cwd=*) cwd=${word#iommufd_rs.cwd=} ;;
	iommufd_rs.modules=*) mods=${word#iommufd_rs.modules=} ;;
	esac
done
# The kernel's module tree, once the share holding it is mounted.
if [ -n "${mods:-}" ]; then
	mount --bind "$mods" /lib/modules || echo "[init] no modules at $mods"
fi
hostname arm64-guest
ifconfig lo 127.0.0.1 up 2>/dev/null
cd "$cwd"
rc=255
if [ -f /run/iommufd-rs/cmd ]; then
	/bin/bash /run/iommufd-rs/cmd
	rc=$?
fi
echo "$rc" >/run/iommufd-rs/rc
sync
echo "[init] command exited $rc"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$cache/initramfs.cpio.gz"
rm -rf "$cache/debs"
touch "$stamp"
log "built $cache/initramfs.cpio.gz ($(du -k "$cache/initramfs.cpio.gz" | cut -f1) KiB)"
echo "$cache"
