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
struct iommufd_vdevice;
struct iommufd_vevent;
struct iommufd_veventq;
struct iommufd_viommu;
struct iommu_user_data;
struct iommu_user_data_array;
struct wait_queue_head;

/* A vEVENTQ record a reader holds (iommufd_rs_cveventq_fetch()). */
struct iommufd_rs_vevent {
	u32 flags;
	u32 sequence;
	/* The report's record, the reader's until restored or done; NULL: the lost-events header */
	struct iommufd_vevent *record;
	const u8 *data;
	ssize_t data_len;
};

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

bool iommufd_rs_cviommu_supported(struct device *dev, u32 type);
struct iommufd_viommu *iommufd_rs_cviommu_alloc(struct iommufd_ctx *ictx, struct device *dev,
						u32 type, struct iommufd_hw_pagetable *parent,
						const struct iommu_user_data *user_data);
void iommufd_rs_cviommu_set_id(struct iommufd_viommu *viommu, u32 id);
void iommufd_rs_cviommu_free(struct iommufd_viommu *viommu);
struct iommu_domain *iommufd_rs_cviommu_alloc_domain_nested(struct iommufd_viommu *viommu,
							    u32 flags,
							    const struct iommu_user_data *user_data);
int iommufd_rs_cviommu_cache_invalidate(struct iommufd_viommu *viommu,
					struct iommu_user_data_array *array);

struct iommufd_vdevice *iommufd_rs_cvdevice_alloc(struct iommufd_viommu *viommu,
						  struct iommufd_device *idev, u64 virt_id);
void iommufd_rs_cvdevice_set_id(struct iommufd_vdevice *vdev, u32 id);
void iommufd_rs_cvdevice_free(struct iommufd_vdevice *vdev);

struct iommufd_veventq *iommufd_rs_cveventq_alloc(struct iommufd_viommu *viommu, u32 type,
						  u32 depth);
void iommufd_rs_cveventq_list(struct iommufd_veventq *veventq);
void iommufd_rs_cveventq_unlist(struct iommufd_veventq *veventq);
void iommufd_rs_cveventq_free(struct iommufd_veventq *veventq);
struct wait_queue_head *iommufd_rs_cveventq_wait(struct iommufd_veventq *veventq);
bool iommufd_rs_cveventq_readable(struct iommufd_veventq *veventq);
bool iommufd_rs_cveventq_fetch(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *out);
void iommufd_rs_cveventq_restore(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *rec);
void iommufd_rs_cveventq_done(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *rec);

#endif
