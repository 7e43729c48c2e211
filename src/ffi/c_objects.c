// SPDX-License-Identifier: GPL-2.0
/*
 * The C-visible part of this module's objects: the parts of upstream's iommufd_ctx, iommufd_group,
 * iommufd_device and iommufd_hw_pagetable that code built into the kernel reads from the objects
 * of whichever iommufd is loaded. The layouts come from the tree under build
 * (drivers/iommu/iommufd/iommufd_private.h), never copied; each Rust object owns one of these
 * (src/abstractions/iommufd_c.rs) and frees it.
 *
 * Today's reader is the software-managed MSI path: on a platform whose MSI doorbell sits behind
 * the IOMMU (arm64 with a GICv3 ITS behind an SMMUv3), enabling a device's MSI calls
 * iommu_dma_prepare_msi(), which, for a domain whose cookie is IOMMU_COOKIE_IOMMUFD, calls
 * iommufd_sw_msi() (drivers/iommu/iommufd/driver.c, built in). That maps the doorbell page into the
 * domain at an IOVA of the group's IOMMU_RESV_SW_MSI window chosen per context, records the page in
 * the context and marks it required by the group; iommufd_rs_cgroup_setup_msi() maps the pages a
 * group requires into every domain it is attached to later, so an MSI programmed once keeps
 * working across a replace or a detach and attach.
 */
#include <linux/build_bug.h>
#include <linux/iommu.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include "iommufd_private.h"
#include "c_objects.h"

/*
 * Our attach handle (src/abstractions/iommu/attach.rs) is the core's handle followed by the C
 * device: upstream's struct iommufd_attach_handle, which iommufd_sw_msi() reads. The Rust side
 * asserts that its device pointer follows the core's handle directly; this asserts the same of
 * the C struct, so the two agree or the build fails.
 */
static_assert(offsetof(struct iommufd_attach_handle, idev) == sizeof(struct iommu_attach_handle));
static_assert(offsetof(struct iommufd_hwpt_paging, common) == 0);
static_assert(offsetof(struct iommufd_hwpt_nested, common) == 0);

struct iommufd_ctx *iommufd_rs_cctx_alloc(void)
{
	struct iommufd_ctx *ictx = kzalloc(sizeof(*ictx), GFP_KERNEL_ACCOUNT);

	if (!ictx)
		return NULL;
	mutex_init(&ictx->sw_msi_lock);
	INIT_LIST_HEAD(&ictx->sw_msi_list);
	return ictx;
}

void iommufd_rs_cctx_free(struct iommufd_ctx *ictx)
{
	struct iommufd_sw_msi_map *map, *next;

	/* The maps are iommufd_sw_msi()'s, allocated with kzalloc. */
	list_for_each_entry_safe(map, next, &ictx->sw_msi_list, sw_msi_item)
		kfree(map);
	mutex_destroy(&ictx->sw_msi_lock);
	kfree(ictx);
}

struct iommufd_group *iommufd_rs_cgroup_alloc(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	struct iommufd_group *igroup = kzalloc(sizeof(*igroup), GFP_KERNEL_ACCOUNT);

	if (!igroup)
		return NULL;
	kref_init(&igroup->ref);
	mutex_init(&igroup->lock);
	xa_init(&igroup->pasid_attach);
	igroup->ictx = ictx;
	igroup->group = group;
	igroup->sw_msi_start = PHYS_ADDR_MAX;
	return igroup;
}

void iommufd_rs_cgroup_free(struct iommufd_group *igroup)
{
	xa_destroy(&igroup->pasid_attach);
	mutex_destroy(&igroup->lock);
	kfree(igroup);
}

/*
 * The group's IOMMU_RESV_SW_MSI window, as a device's reserved regions report it at an attach (the
 * iommufd_sw_msi() readers hold the IOMMU group's mutex, the writers the Rust group's attach lock:
 * a single word, as upstream).
 */
void iommufd_rs_cgroup_set_sw_msi(struct iommufd_group *igroup, phys_addr_t start)
{
	WRITE_ONCE(igroup->sw_msi_start, start);
}

/*
 * Maps every MSI doorbell page the group's devices have been given (by iommufd_sw_msi(), through
 * whatever domain they were attached to then) into @hwpt's domain, at the same IOVA: called before
 * the group's RID attaches to @hwpt, or is replaced by it.
 */
int iommufd_rs_cgroup_setup_msi(struct iommufd_group *igroup, struct iommufd_hw_pagetable *hwpt)
{
#ifdef CONFIG_IRQ_MSI_IOMMU
	struct iommufd_ctx *ictx = igroup->ictx;
	struct iommufd_hwpt_paging *paging = find_hwpt_paging(hwpt);
	phys_addr_t start = READ_ONCE(igroup->sw_msi_start);
	struct iommufd_sw_msi_map *map;
	int rc = 0;

	if (start == PHYS_ADDR_MAX || !paging)
		return 0;
	mutex_lock(&ictx->sw_msi_lock);
	list_for_each_entry(map, &ictx->sw_msi_list, sw_msi_item) {
		if (map->sw_msi_start != start || !test_bit(map->id, igroup->required_sw_msi.bitmap))
			continue;
		rc = iommufd_sw_msi_install(ictx, paging, map);
		if (rc)
			break;
	}
	mutex_unlock(&ictx->sw_msi_lock);
	return rc;
#else
	return 0;
#endif
}

struct iommufd_device *iommufd_rs_cdev_alloc(struct iommufd_ctx *ictx, struct iommufd_group *igroup,
					     struct device *dev)
{
	struct iommufd_device *idev = kzalloc(sizeof(*idev), GFP_KERNEL_ACCOUNT);

	if (!idev)
		return NULL;
	idev->obj.type = IOMMUFD_OBJ_DEVICE;
	idev->ictx = ictx;
	idev->igroup = igroup;
	INIT_LIST_HEAD(&idev->group_item);
	idev->dev = dev;
	return idev;
}

void iommufd_rs_cdev_set_id(struct iommufd_device *idev, u32 id)
{
	WRITE_ONCE(idev->obj.id, id);
}

void iommufd_rs_cdev_free(struct iommufd_device *idev)
{
	kfree(idev);
}

/*
 * The C HWPT of @domain: a paging one, or, given the C HWPT of its parent, a nested one. The
 * domain's cookie names it (IOMMU_COOKIE_IOMMUFD, as upstream sets on every HWPT's domain) unless
 * the driver gave the domain a cookie of its own. The caller frees it with
 * iommufd_rs_chwpt_free() after the domain.
 */
struct iommufd_hw_pagetable *iommufd_rs_chwpt_alloc(struct iommu_domain *domain,
						    struct iommufd_hw_pagetable *parent)
{
	struct iommufd_hw_pagetable *common;

	if (parent) {
		struct iommufd_hwpt_nested *nested = kzalloc(sizeof(*nested), GFP_KERNEL_ACCOUNT);

		if (!nested)
			return NULL;
		if (WARN_ON(parent->obj.type != IOMMUFD_OBJ_HWPT_PAGING)) {
			kfree(nested);
			return NULL;
		}
		nested->parent = container_of(parent, struct iommufd_hwpt_paging, common);
		common = &nested->common;
		common->obj.type = IOMMUFD_OBJ_HWPT_NESTED;
	} else {
		struct iommufd_hwpt_paging *paging = kzalloc(sizeof(*paging), GFP_KERNEL_ACCOUNT);

		if (!paging)
			return NULL;
		INIT_LIST_HEAD(&paging->hwpt_item);
		common = &paging->common;
		common->obj.type = IOMMUFD_OBJ_HWPT_PAGING;
	}
	common->domain = domain;
	if (domain->cookie_type == IOMMU_COOKIE_NONE) {
		domain->iommufd_hwpt = common;
		domain->cookie_type = IOMMU_COOKIE_IOMMUFD;
	}
	return common;
}

void iommufd_rs_chwpt_set_id(struct iommufd_hw_pagetable *hwpt, u32 id)
{
	WRITE_ONCE(hwpt->obj.id, id);
}

void iommufd_rs_chwpt_free(struct iommufd_hw_pagetable *hwpt)
{
	/* common is the first member of both kinds (asserted above). */
	kfree(hwpt);
}
