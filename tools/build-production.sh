#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build iommufd.ko for the nocontainer kernel (tools/kernel/nocontainer.config), which has no
# CONFIG_IOMMUFD_TEST: the production build, with none of the selftest compiled in. The build
# runs in a copy of the tree at DEST (default results/raw/nocontainer-build), so ./iommufd.ko,
# built for the test kernel, stays as it is. Extra arguments go to `make module` (CLIPPY=1).
# Builds the nocontainer kernel first if it is not cached (a few minutes from the default
# build's objects).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
dest=${1:-$repo/results/raw/nocontainer-build}
shift || true
tools/kernel/build.sh --profile nocontainer >&2
kdir=$(tools/kernel/build.sh --profile nocontainer --dir)
ksrc=$(tools/kernel/build.sh --src)
mkdir -p "$dest/tools"
cp -a Kbuild Kconfig Makefile src "$dest/"
cp -a tools/gen-bindings.sh tools/kernel "$dest/tools/"
rm -rf "$dest/src/ffi/generated"
find "$dest/src" \( -name '*.o' -o -name '*.cmd' -o -name '*.d' \) -print0 | xargs -0 -r rm -f
cd "$dest"
make -s module KPROFILE=nocontainer KDIR="$kdir" KSRC="$ksrc" "$@"
