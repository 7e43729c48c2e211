#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs everything the build/boot/test loop needs on a Debian 12 machine (run as root).
# Idempotent: a second run only checks. Nothing from sid or backports is taken unless named here.
set -euo pipefail

BINDGEN_VERSION=${BINDGEN_VERSION:-0.72.1}
VIRTME_NG_VERSION=${VIRTME_NG_VERSION:-1.38}

log() { printf '[setup] %s\n' "$*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }; }

apt_sources() {
	local src=/etc/apt/sources.list.d/iommufd-rs.sources pin=/etc/apt/preferences.d/iommufd-rs
	if [ ! -f "$src" ]; then
		log "adding Debian sid and bookworm-backports apt sources (low pin priority)"
		cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	fi
	if [ ! -f "$pin" ]; then
		# Below 100: never chosen automatically, not even for upgrades; only with -t or =version.
		cat >"$pin" <<'PIN'
Package: *
Pin: release n=sid
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 90
PIN
	fi
}

apt_packages() {
	local pkgs=(build-essential flex bison bc libelf-dev libssl-dev cpio kmod rsync
		libclang-19-dev llvm-19 clang-19 lld-19 udev libcap-dev busybox-static xz-utils python3-pip zstd
		dkms
		# arm64: the cross compiler for the kernel and the static user programs (tools/vm/run-arm64.sh)
		gcc-aarch64-linux-gnu libc6-dev-arm64-cross
		# the nesting rig's patched qemu-system-aarch64 (tools/qemu/build.sh)
		ninja-build bzip2 python3-venv libglib2.0-dev libfdt-dev libpixman-1-dev zlib1g-dev
		libcap-ng-dev libattr1-dev)
	local missing=()
	for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	local qemu_ok=0
	if command -v qemu-system-x86_64 >/dev/null && command -v qemu-system-aarch64 >/dev/null; then
		qemu-system-x86_64 --version | grep -Eq 'version (9\.[1-9]|[1-9][0-9]|10)\.' &&
			qemu-system-aarch64 --version | grep -Eq 'version (9\.[1-9]|[1-9][0-9]|10)\.' && qemu_ok=1
	fi
	# The arm64 guest's busybox, bash and libcap come from Debian's arm64 packages
	# (tools/vm/arm64-root.sh downloads them): apt must know the architecture.
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		log "dpkg --add-architecture arm64"
		dpkg --add-architecture arm64
		missing+=(apt-update)
	fi
	if [ ${#missing[@]} -gt 0 ] || [ $qemu_ok = 0 ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		missing=("${missing[@]/apt-update/}")
		[ -n "${missing[*]}" ] && { log "installing: ${missing[*]}"; apt-get install -y -q --no-install-recommends ${missing[*]}; }
		if [ $qemu_ok = 0 ]; then
			log "installing qemu-system-x86 and qemu-system-arm from bookworm-backports"
			apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-system-arm ovmf- qemu-efi-aarch64-
		fi
	fi
}

rust_tools() {
	export PATH="$HOME/.cargo/bin:$PATH"
	rustup component list --installed 2>/dev/null | grep -q '^rust-src' || { log "rustup component add rust-src"; rustup component add rust-src; }
	# The fuzzer and the rust-vmm client for the arm64 guest (static, linked by aarch64-linux-gnu-gcc)
	rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
		{ log "rustup target add aarch64-unknown-linux-gnu"; rustup target add aarch64-unknown-linux-gnu; }
	if ! bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		log "cargo install bindgen-cli $BINDGEN_VERSION"
		LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked -q
	fi
}

virtme() {
	if ! command -v vng >/dev/null || ! vng --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION"; then
		log "pip install virtme-ng==$VIRTME_NG_VERSION"
		pip install -q "virtme-ng==$VIRTME_NG_VERSION"
	fi
}

need_root
apt_sources
apt_packages
rust_tools
virtme
log "done: $(qemu-system-x86_64 --version | head -1); $(bindgen --version); vng $(vng --version 2>/dev/null | head -1)"
