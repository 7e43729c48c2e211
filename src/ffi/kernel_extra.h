/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel interfaces iommufd-rs needs that the kernel crate's bindings do not cover: the IOMMU
 * core's iommufd-only entry points (drivers/iommu/iommu-priv.h, namespace IOMMUFD_INTERNAL), the
 * generic page table library the mock domain is built on, the page-list helper its IOTLB sync
 * frees table pages with, and the memfd seals MAP_FILE honours. tools/gen-bindings.sh runs
 * bindgen over this file with the flags the kernel used for its own bindings, keeping only the
 * items it names; every other type resolves to kernel::bindings. Headers are read from the tree
 * under build, never copied.
 */
#include <linux/iommu.h>
#include <linux/anon_inodes.h>
#include <linux/fcntl.h>
#include <linux/highmem.h>
#include <linux/iommufd.h>
#include <linux/pci-ats.h>
#include <linux/generic_pt/iommu.h>
#include "drivers/iommu/iommu-priv.h"
#include "drivers/iommu/iommu-pages.h"
#include "src/ffi/shim.h"
