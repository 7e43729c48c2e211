#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build iommufd.ko for the nocontainer kernel (tools/kernel/nocontainer.config), which has no
# CONFIG_IOMMUFD_TEST: the production build, with none of the selftest compiled in, in a copy of
# the tree at DEST (default results/raw/nocontainer-build). Extra arguments go to `make module`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/results/raw/nocontainer-build}
shift || true
exec "$repo/tools/build-copy.sh" nocontainer "$dest" "$@"
