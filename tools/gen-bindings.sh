#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Generates src/generated/*.rs from the headers of the kernel in $1 (its build directory) and $2
# (its source tree, for the selftest command header that is not installed as uAPI).
# Rerun only when a header is newer than its output.
set -euo pipefail
kdir=$1
ksrc=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/src/generated
mkdir -p "$out"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

gen_uapi() { # header output
	local hdr=$1 rs=$2
	[ -f "$rs" ] && [ "$rs" -nt "$hdr" ] && [ "$rs" -nt "$0" ] && return 0
	bindgen "$hdr" -o "$rs.tmp" \
		--use-core --ctypes-prefix ffi --no-layout-tests --no-doc-comments \
		--with-derive-default --default-enum-style consts --no-prepend-enum-name \
		--allowlist-file ".*/$(basename "$hdr")" \
		-- -I"$kdir/usr/include" -nostdinc
	mv "$rs.tmp" "$rs"
}

gen_uapi "$kdir/usr/include/linux/iommufd.h" "$out/iommufd_uapi.rs"
# IOMMU_TEST_CMD (drivers/iommu/iommufd/iommufd_test.h): read from the tree under test, never copied.
gen_uapi "$ksrc/drivers/iommu/iommufd/iommufd_test.h" "$out/iommufd_test.rs"
