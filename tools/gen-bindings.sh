#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Generates src/ffi/generated/*.rs from the headers of the kernel in $1 (its build directory) and
# $2 (its source tree, for the selftest command header that is not installed as uAPI), for the
# crate whose root directory is $3 (default: this checkout; in a kernel tree, the directory the
# in-tree build keeps it in, tools/intree.sh). Rerun only when a header is newer than its output.
set -euo pipefail
kdir=$1
ksrc=$2
crate=${3:-$(cd "$(dirname "$0")/.." && pwd)}
out=$crate/src/ffi/generated
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
		-- "${uapi_inc[@]}" -nostdinc
	mv "$rs.tmp" "$rs"
}

# The uAPI headers as installed in the build tree (make headers_install); a kernel build that
# installed none (an in-tree build without CONFIG_HEADERS_INSTALL) has them in its source tree and
# its generated uAPI headers (SRCARCH from kbuild).
if [ -f "$kdir/usr/include/linux/iommufd.h" ]; then
	uapi=$kdir/usr/include
	uapi_inc=(-I"$kdir/usr/include")
else
	uapi=$ksrc/include/uapi
	arch=${SRCARCH:?gen-bindings: no $kdir/usr/include and no SRCARCH}
	uapi_inc=(-I"$ksrc/include/uapi" -I"$ksrc/arch/$arch/include/uapi"
		-I"$kdir/arch/$arch/include/generated/uapi" -I"$kdir/include/generated/uapi"
		# What headers_install strips from them.
		-D__user= -D__force= -D__iomem= -D__attribute_const__= -D__EXPORTED_HEADERS__)
fi
gen_uapi "$uapi/linux/iommufd.h" "$out/iommufd_uapi.rs"
# VFIO type1 container ioctls, which /dev/iommu answers for compatibility (src/vfio/compat.rs).
gen_uapi "$uapi/linux/vfio.h" "$out/vfio_uapi.rs"
# IOMMU_TEST_CMD (drivers/iommu/iommufd/iommufd_test.h): read from the tree under test, never copied.
# Only the test build (CONFIG_IOMMUFD_TEST) uses it; a kernel's headers-only tree has none.
test_hdr=$ksrc/drivers/iommu/iommufd/iommufd_test.h
if [ -f "$test_hdr" ]; then
	gen_uapi "$test_hdr" "$out/iommufd_test.rs"
elif grep -q '^CONFIG_IOMMUFD_TEST=y' "$kdir/.config"; then
	echo "gen-bindings: $kdir has CONFIG_IOMMUFD_TEST but $test_hdr is missing (KSRC: the kernel's source tree)" >&2
	exit 1
fi

# Kernel interfaces outside the kernel crate's bindings (src/ffi/kernel_extra.h). bindgen gets the
# exact clang flags the kernel used for rust/bindings (read from its .cmd file), so layouts match
# the kernel's; only the listed items are emitted and every type they use comes from
# kernel::bindings.
gen_kernel_extra() {
	local hdr=$crate/src/ffi/kernel_extra.h rs=$out/kernel_extra.rs
	local cmdfile=$kdir/rust/bindings/.bindings_generated.rs.cmd
	# Layouts depend on the kernel's config (lockdep grows locks): regenerate for another tree.
	local stamp=$rs.kdir
	[ -f "$rs" ] && [ "$rs" -nt "$hdr" ] && [ "$rs" -nt "$0" ] && [ "$rs" -nt "$cmdfile" ] &&
		[ "$rs" -nt "$crate/src/ffi/shim.h" ] &&
		[ "$(cat "$stamp" 2>/dev/null)" = "$kdir" ] && return 0
	local line flags=()
	# The clang half of the kernel's own bindgen command, up to its sed post-processing; kbuild
	# wrote it shell-quoted, so the shell splits it back into words.
	line=$(sed -n 's/^savedcmd_[^ ]* := .* -- //p' "$cmdfile" | sed 's/ ; .*//; s/-Wp,-MMD,[^ ]*//')
	[ -n "$line" ] || { echo "gen-bindings: no clang flags in $cmdfile" >&2; exit 1; }
	eval "flags=($line)"
	local items=(
		--allowlist-type 'pt_iommu'
		--allowlist-type 'pt_iommu_ops'
		--allowlist-type 'pt_iommu_cfg'
		--allowlist-type 'pt_iommu_amdv1'
		--allowlist-type 'pt_iommu_amdv1_cfg'
		--allowlist-type 'pt_amdv1'
		--allowlist-type 'pt_common'
		--allowlist-type 'pt_iommu_driver_ops'
		--allowlist-type 'pt_iommu_info'
		--allowlist-type 'iommufd_access_ops'
		--allowlist-var 'IOMMUFD_ACCESS_RW_.*'
		--allowlist-var '__IOMMUFD_ACCESS_RW_SLOW_PATH'
		--allowlist-var 'F_SEAL_.*'
		--allowlist-function 'pt_iommu_amdv1_mock_init'
		--allowlist-function 'pt_iommu_amdv1_mock_iova_to_phys'
		--allowlist-function 'pt_iommu_amdv1_mock_read_and_clear_dirty'
		--allowlist-function 'iommu_device_register_bus'
		--allowlist-function 'iommu_device_unregister_bus'
		--allowlist-function 'iommu_mock_device_add'
		--allowlist-function 'iommu_attach_group_handle'
		--allowlist-function 'iommu_detach_group_handle'
		--allowlist-function 'iommu_replace_group_handle'
		--allowlist-function 'iommu_replace_device_pasid'
		--allowlist-function 'iommu_attach_handle_get'
		--allowlist-function 'iommu_put_pages_list'
		--allowlist-function 'anon_inode_getfile'
		--allowlist-function 'pci_pasid_status'
		--allowlist-function 'iommufd_rs_.*'
		--allowlist-type 'iommufd_ctx'
		--allowlist-type 'iommufd_device'
		--allowlist-type 'iommufd_access'
	)
	(cd "$kdir" && bindgen "$hdr" -o "$rs.tmp" \
		--use-core --ctypes-prefix ffi --no-layout-tests --no-doc-comments --no-debug '.*' \
		--with-derive-default --no-recursive-allowlist --rust-target 1.85 \
		--raw-line 'use kernel::bindings::*;' "${items[@]}" \
		-- "${flags[@]}" -I"$ksrc" -I"$crate")
	mv "$rs.tmp" "$rs"
	echo "$kdir" >"$stamp"
}
gen_kernel_extra
