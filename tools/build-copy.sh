#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds iommufd.ko for another kernel profile in a copy of the tree at DEST, so ./iommufd.ko,
# built for the test kernel, stays as it is. Extra arguments go to `make module` (CLIPPY=1).
# Builds that profile's kernel first if it is not cached.
#
#   build-copy.sh PROFILE DEST [make args]
#
# nocontainer (tools/kernel/nocontainer.config) has no CONFIG_IOMMUFD_TEST: the production build,
# with none of the selftest compiled in (tools/build-production.sh). arm64 is the cross-built
# kernel for the SMMUv3 guest (tools/build-arm64.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=${1:?usage: build-copy.sh PROFILE DEST [make args]}
dest=${2:?usage: build-copy.sh PROFILE DEST [make args]}
shift 2
tools/kernel/build.sh --profile "$profile" >&2
kdir=$(tools/kernel/build.sh --profile "$profile" --dir)
ksrc=$(tools/kernel/build.sh --src)
mkdir -p "$dest/tools"
cp -a Kbuild Kconfig Makefile src "$dest/"
cp -a tools/gen-bindings.sh tools/kernel "$dest/tools/"
rm -rf "$dest/src/ffi/generated"
find "$dest/src" \( -name '*.o' -o -name '*.cmd' -o -name '*.d' \) -print0 | xargs -0 -r rm -f
cd "$dest"
make -s module KPROFILE="$profile" KDIR="$kdir" KSRC="$ksrc" "$@"
