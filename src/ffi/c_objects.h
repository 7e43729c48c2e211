/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of src/ffi/c_objects.c (the C-visible parts of this module's objects); the Rust
 * declarations in src/ffi/shim.rs mirror them. The structs are upstream's, from
 * drivers/iommu/iommufd/iommufd_private.h of the tree under build; Rust sees them as opaque.
 */
#ifndef IOMMUFD_RS_C_OBJECTS_H
#define IOMMUFD_RS_C_OBJECTS_H

#include <linux/types.h>

struct device;
struct iommu_domain;
struct iommu_group;
struct iommufd_ctx;
struct iommufd_device;
struct iommufd_group;
struct iommufd_hw_pagetable;

struct iommufd_ctx *iommufd_rs_cctx_alloc(void);
void iommufd_rs_cctx_free(struct iommufd_ctx *ictx);

struct iommufd_group *iommufd_rs_cgroup_alloc(struct iommufd_ctx *ictx, struct iommu_group *group);
void iommufd_rs_cgroup_free(struct iommufd_group *igroup);
void iommufd_rs_cgroup_set_sw_msi(struct iommufd_group *igroup, phys_addr_t start);
int iommufd_rs_cgroup_setup_msi(struct iommufd_group *igroup, struct iommufd_hw_pagetable *hwpt);

struct iommufd_device *iommufd_rs_cdev_alloc(struct iommufd_ctx *ictx, struct iommufd_group *igroup,
					     struct device *dev);
void iommufd_rs_cdev_set_id(struct iommufd_device *idev, u32 id);
void iommufd_rs_cdev_free(struct iommufd_device *idev);

struct iommufd_hw_pagetable *iommufd_rs_chwpt_alloc(struct iommu_domain *domain,
						    struct iommufd_hw_pagetable *parent);
void iommufd_rs_chwpt_set_id(struct iommufd_hw_pagetable *hwpt, u32 id);
void iommufd_rs_chwpt_free(struct iommufd_hw_pagetable *hwpt);

#endif
