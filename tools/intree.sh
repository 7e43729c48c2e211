#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Puts iommufd-rs into a kernel source tree as a choice of how CONFIG_IOMMUFD is implemented (C
# or Rust: CONFIG_IOMMUFD_IMPL_C / CONFIG_IOMMUFD_IMPL_RUST), so that everything that depends on
# IOMMUFD (vfio's device cdev and its iommufd glue, IOMMUFD_VFIO_CONTAINER, the selftests'
# config) keeps working with ours, as a module or built in.
#
#   intree.sh apply KSRC          change KSRC in place (ours at drivers/iommu/iommufd/rust/)
#   intree.sh patches KSRC OUT    the same change as a patch series (git format-patch) over the
#                                 files of KSRC, which is left as it is, written to OUT
#
# What changes in the tree: drivers/iommu/iommufd/rust/ (this checkout's Kbuild as its Makefile,
# src/, the bindgen script), the choice (this checkout's Kconfig) in drivers/iommu/iommufd/Kconfig
# after "config IOMMUFD", and drivers/iommu/iommufd/Makefile builds rust/ instead of the C
# objects of iommufd.o when the choice is Rust. The C module's built-in helpers (iommufd_driver.o,
# iova_bitmap.o) stay as they are: drivers call them whichever implementation is chosen.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: intree.sh apply KSRC | intree.sh patches KSRC OUT" >&2; exit 2; }
[ $# -ge 2 ] || usage
what=$1 ksrc=$(cd "$2" && pwd)
fd=drivers/iommu/iommufd
[ -f "$ksrc/$fd/Kconfig" ] && [ -f "$ksrc/$fd/Makefile" ] || { echo "intree.sh: $ksrc has no $fd" >&2; exit 1; }

# Our sources into $1/$fd/rust (tracked files only: no build output, no generated bindings).
put_sources() {
	local dest=$1/$fd/rust
	rm -rf "$dest"
	mkdir -p "$dest"
	(cd "$repo" && git ls-files -z -- src) | (cd "$repo" && xargs -0 cp --parents -t "$dest")
	cp "$repo/Kbuild" "$dest/Makefile"
	cp "$repo/tools/gen-bindings.sh" "$dest/gen-bindings.sh"
	printf '/src/ffi/generated/\n' >"$dest/.gitignore"
}

# The choice in $1/$fd/Kconfig, after the "config IOMMUFD" entry.
put_kconfig() {
	local k=$1/$fd/Kconfig
	grep -q IOMMUFD_IMPL_RUST "$k" && return 0
	python3 - "$k" "$repo/Kconfig" <<'PY'
import sys
path, choice = sys.argv[1], sys.argv[2]
lines = open(path).read().split("\n")
body = "".join(l for l in open(choice) if not l.startswith("#")).strip("\n").split("\n")
at = lines.index("config IOMMUFD")
# The entry ends before the next line that is not indented (its help text may hold blank lines).
end = next(i for i in range(at + 1, len(lines)) if lines[i] and not lines[i][0].isspace())
while lines[end - 1] == "":
    end -= 1
lines[end:end] = [""] + body
open(path + ".new", "w").write("\n".join(lines))
PY
	mv "$k.new" "$k"
}

# $1/$fd/Makefile: iommufd.o from rust/ when the choice is Rust.
put_makefile() {
	local m=$1/$fd/Makefile
	grep -q IOMMUFD_IMPL_RUST "$m" && return 0
	grep -qx 'obj-$(CONFIG_IOMMUFD) += iommufd.o' "$m" ||
		{ echo "intree.sh: $m does not build iommufd.o as expected" >&2; exit 1; }
	python3 - "$m" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
old = "obj-$(CONFIG_IOMMUFD) += iommufd.o\n"
new = ("ifdef CONFIG_IOMMUFD_IMPL_RUST\n"
       "obj-$(CONFIG_IOMMUFD) += rust/\n"
       "else\n"
       "obj-$(CONFIG_IOMMUFD) += iommufd.o\n"
       "endif\n")
open(path + ".new", "w").write(text.replace(old, new, 1))
PY
	mv "$m.new" "$m"
}

case $what in
apply)
	put_sources "$ksrc"
	put_kconfig "$ksrc"
	put_makefile "$ksrc"
	echo "intree.sh: $ksrc now offers CONFIG_IOMMUFD_IMPL_RUST (drivers/iommu/iommufd/rust/)"
	;;
patches)
	[ $# -ge 3 ] || usage
	out=$3
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	ver=$(sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$ksrc/Makefile" | paste -sd.)
	# The files the series touches, as they are in KSRC, are its base.
	mkdir -p "$work/$fd"
	cp "$ksrc/$fd/Kconfig" "$ksrc/$fd/Makefile" "$work/$fd/"
	g() { git -C "$work" -c user.name="iommufd-rs" -c user.email="iommufd-rs@invalid" "$@"; }
	g init -q
	g add -A
	g commit -q -m "Linux $ver: drivers/iommu/iommufd as released"
	put_sources "$work"
	g add -A
	g commit -q -F - <<EOF
iommufd: add a Rust implementation of /dev/iommu (iommufd-rs)

A Rust implementation of the iommufd subsystem: the same user API
(include/uapi/linux/iommufd.h) and the same in-kernel API
(include/linux/iommufd.h, namespace IOMMUFD) as the C one, built as the
module iommufd. Nothing builds it yet: the next patch makes it a choice
of how CONFIG_IOMMUFD is implemented.

The directory keeps the crate as it is developed out of tree: the root
src/iommufd_rs.rs, one folder per subsystem, the safe layer over the C
interfaces in src/abstractions/, and the bindgen output it includes made
at build time by gen-bindings.sh.
EOF
	put_kconfig "$work"
	put_makefile "$work"
	g add -A
	g commit -q -F - <<EOF
iommufd: choose the implementation of CONFIG_IOMMUFD, C or Rust

CONFIG_IOMMUFD_IMPL_C (the default) builds iommufd.o from the C sources
as before; CONFIG_IOMMUFD_IMPL_RUST, which needs CONFIG_RUST, builds it
from rust/. Either is a module or built in as CONFIG_IOMMUFD says, so
every option that depends on IOMMUFD (VFIO_DEVICE_CDEV, vfio's iommufd
glue, IOMMUFD_VFIO_CONTAINER, IOMMUFD_TEST) is unchanged, and the
built-in helpers drivers call (iommufd_driver.o, iova_bitmap.o) stay C.
EOF
	rm -f "$out"/*.patch
	g format-patch -q -o "$out" --cover-letter HEAD~2
	sed -i "s/\*\*\* SUBJECT HERE \*\*\*/iommufd: a Rust implementation, as a choice of CONFIG_IOMMUFD/; s/\*\*\* BLURB HERE \*\*\*/Over Linux $ver: patch 1 adds the Rust sources, patch 2 the choice./" \
		"$out"/0000-cover-letter.patch
	ls "$out"
	;;
*) usage ;;
esac
