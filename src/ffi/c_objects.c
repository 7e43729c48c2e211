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
 *
 * The other readers are the IOMMU drivers' vIOMMUs (arm-smmu-v3's arm_vsmmu, AMD's, Tegra CMDQV's):
 * they embed struct iommufd_viommu in a struct of their own, of the size their get_viommu_size()
 * gives, and call the built-in helpers of drivers/iommu/iommufd/driver.c, which read the
 * vIOMMU's vDEVICE xarray (iommufd_vdevice -> iommufd_device -> struct device) and its list of
 * iommufd_veventq (iommufd_viommu_report_event() queues struct iommufd_vevent on the queue's
 * deliver list, under its spinlock, and wakes its wait queue). The iommufd_rs_cviommu_*,
 * iommufd_rs_cvdevice_* and iommufd_rs_cveventq_* functions below build those for such a driver.
 */
#include <linux/build_bug.h>
#include <linux/err.h>
#include <linux/iommu.h>
#include <linux/list.h>
#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>
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
/* Mirrored by shim::CVeventRecord, which asserts the same size. */
static_assert(sizeof(struct iommufd_rs_vevent) == 2 * sizeof(u32) + 3 * sizeof(void *));

struct iommufd_ctx *iommufd_rs_cctx_alloc(void)
{
	struct iommufd_ctx *ictx = kzalloc(sizeof(*ictx), GFP_KERNEL_ACCOUNT);

	if (!ictx)
		return NULL;
	mutex_init(&ictx->sw_msi_lock);
	INIT_LIST_HEAD(&ictx->sw_msi_list);
	/* What _iommufd_alloc_mmap() allocates offsets from (a driver's vIOMMU may call it). */
	mt_init_flags(&ictx->mt_mmap, MT_FLAGS_ALLOC_RANGE);
	return ictx;
}

void iommufd_rs_cctx_free(struct iommufd_ctx *ictx)
{
	struct iommufd_sw_msi_map *map, *next;

	/* The maps are iommufd_sw_msi()'s, allocated with kzalloc. */
	list_for_each_entry_safe(map, next, &ictx->sw_msi_list, sw_msi_item)
		kfree(map);
	/* Every vIOMMU freed its ranges (_iommufd_destroy_mmap()) when it went. */
	WARN_ON(!mtree_empty(&ictx->mt_mmap));
	mtree_destroy(&ictx->mt_mmap);
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

/* Drops the mmap ranges @owner registered (_iommufd_alloc_mmap()) and left behind. */
static void iommufd_rs_forget_mmaps(struct iommufd_ctx *ictx, struct iommufd_object *owner)
{
	struct iommufd_mmap *immap;
	unsigned long index = 0;

	mt_for_each(&ictx->mt_mmap, immap, index, ULONG_MAX) {
		if (immap->owner != owner)
			continue;
		mtree_erase(&ictx->mt_mmap, immap->vm_pgoff << PAGE_SHIFT);
		kfree(immap);
	}
}

/*
 * Whether @dev's IOMMU driver has vIOMMUs of @type: its get_viommu_size() answers a size (and
 * the driver has the viommu_init() that goes with it).
 */
bool iommufd_rs_cviommu_supported(struct device *dev, u32 type)
{
	const struct iommu_ops *ops = dev_iommu_ops(dev);

	return ops->get_viommu_size && ops->viommu_init && ops->get_viommu_size(dev, type);
}

/*
 * A vIOMMU of @dev's IOMMU driver (upstream's iommufd_viommu_alloc_ioctl() past its look-ups):
 * the driver's struct, of the size it asks for, with the core part filled in, then the driver's
 * viommu_init() over @parent's domain. The caller holds @parent (the nesting parent) and @ictx's
 * owner as long as the vIOMMU lives; the C part of neither counts users here. An ERR_PTR on
 * failure, with nothing left behind.
 */
struct iommufd_viommu *iommufd_rs_cviommu_alloc(struct iommufd_ctx *ictx, struct device *dev,
						u32 type, struct iommufd_hw_pagetable *parent,
						const struct iommu_user_data *user_data)
{
	const struct iommu_ops *ops = dev_iommu_ops(dev);
	struct iommufd_viommu *viommu;
	size_t size;
	int rc;

	if (!ops->get_viommu_size || !ops->viommu_init)
		return ERR_PTR(-EOPNOTSUPP);
	size = ops->get_viommu_size(dev, type);
	if (!size)
		return ERR_PTR(-EOPNOTSUPP);
	/* A driver's struct smaller than the core's is a driver bug. */
	if (WARN_ON_ONCE(size < sizeof(*viommu)))
		return ERR_PTR(-EOPNOTSUPP);
	if (WARN_ON_ONCE(parent->obj.type != IOMMUFD_OBJ_HWPT_PAGING))
		return ERR_PTR(-EINVAL);
	viommu = kzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!viommu)
		return ERR_PTR(-ENOMEM);
	viommu->obj.type = IOMMUFD_OBJ_VIOMMU;
	viommu->ictx = ictx;
	viommu->type = type;
	viommu->hwpt = container_of(parent, struct iommufd_hwpt_paging, common);
	viommu->iommu_dev = __iommu_get_iommu_dev(dev);
	xa_init(&viommu->vdevs);
	INIT_LIST_HEAD(&viommu->veventqs);
	init_rwsem(&viommu->veventqs_rwsem);
	rc = ops->viommu_init(viommu, parent->domain, user_data);
	if (!rc && WARN_ON_ONCE(!viommu->ops))
		rc = -EOPNOTSUPP;
	/*
	 * A driver with HW queues (Tegra241 CMDQV) hands the guest queues and an mmap range of its
	 * own, which this module does not serve yet (design.rst, "Differences"): refused here rather
	 * than failing at the VMM's first HW_QUEUE_ALLOC or mmap.
	 */
	if (!rc && viommu->ops->get_hw_queue_size)
		rc = -EOPNOTSUPP;
	if (rc) {
		/* As upstream's destroy of a failed vIOMMU: the driver's destroy if its ops are in. */
		if (viommu->ops && viommu->ops->destroy)
			viommu->ops->destroy(viommu);
		iommufd_rs_forget_mmaps(ictx, &viommu->obj);
		xa_destroy(&viommu->vdevs);
		kfree(viommu);
		return ERR_PTR(rc);
	}
	return viommu;
}

void iommufd_rs_cviommu_set_id(struct iommufd_viommu *viommu, u32 id)
{
	WRITE_ONCE(viommu->obj.id, id);
}

/* After every vDEVICE, vEVENTQ and nested HWPT of the vIOMMU is gone. */
void iommufd_rs_cviommu_free(struct iommufd_viommu *viommu)
{
	if (viommu->ops->destroy)
		viommu->ops->destroy(viommu);
	iommufd_rs_forget_mmaps(viommu->ictx, &viommu->obj);
	WARN_ON(!xa_empty(&viommu->vdevs));
	WARN_ON(!list_empty(&viommu->veventqs));
	xa_destroy(&viommu->vdevs);
	kfree(viommu);
}

/*
 * The driver's nested domain for a guest's stage-1 @user_data (upstream's
 * iommufd_viommu_alloc_hwpt_nested()); an ERR_PTR on failure. The caller owns the domain; its
 * cookie is set with its C HWPT (iommufd_rs_chwpt_alloc()).
 */
struct iommu_domain *iommufd_rs_cviommu_alloc_domain_nested(struct iommufd_viommu *viommu,
							    u32 flags,
							    const struct iommu_user_data *user_data)
{
	struct iommu_domain *domain;

	if (!viommu->ops->alloc_domain_nested)
		return ERR_PTR(-EOPNOTSUPP);
	domain = viommu->ops->alloc_domain_nested(viommu, flags, user_data);
	if (IS_ERR(domain))
		return domain;
	if (WARN_ON_ONCE(!domain))
		return ERR_PTR(-EINVAL);
	/* As upstream: the driver does not have to fill these in. */
	domain->owner = viommu->iommu_dev->ops;
	return domain;
}

/* The guest's cache invalidations, in the vIOMMU's format; entry_num comes back as handled. */
int iommufd_rs_cviommu_cache_invalidate(struct iommufd_viommu *viommu,
					struct iommu_user_data_array *array)
{
	if (!viommu->ops->cache_invalidate) {
		/* None handled, as upstream answers. */
		array->entry_num = 0;
		return -EOPNOTSUPP;
	}
	return viommu->ops->cache_invalidate(viommu, array);
}

/*
 * A vDEVICE of a driver's vIOMMU: @idev is @virt_id to the guest (upstream's
 * iommufd_vdevice_alloc_ioctl() past its checks). The driver's struct, of its vdevice_size, with
 * the core part filled in; listed in the vIOMMU's xarray once the driver's vdevice_init() took
 * it. -EEXIST if the virtual ID is taken. The caller keeps @idev and the vIOMMU alive as long.
 */
struct iommufd_vdevice *iommufd_rs_cvdevice_alloc(struct iommufd_viommu *viommu,
						  struct iommufd_device *idev, u64 virt_id)
{
	size_t size = sizeof(struct iommufd_vdevice);
	struct iommufd_vdevice *vdev;
	int rc;

	if (viommu->ops->vdevice_size) {
		/* Smaller than the core's, or without its init, is a driver bug. */
		if (WARN_ON_ONCE(viommu->ops->vdevice_size < size || !viommu->ops->vdevice_init))
			return ERR_PTR(-EOPNOTSUPP);
		size = viommu->ops->vdevice_size;
	}
	vdev = kzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!vdev)
		return ERR_PTR(-ENOMEM);
	vdev->obj.type = IOMMUFD_OBJ_VDEVICE;
	vdev->viommu = viommu;
	vdev->idev = idev;
	vdev->virt_id = virt_id;
	/* The slot is reserved (reads back NULL) until the driver accepts the vDEVICE. */
	rc = xa_insert(&viommu->vdevs, virt_id, NULL, GFP_KERNEL_ACCOUNT);
	if (rc) {
		kfree(vdev);
		return ERR_PTR(rc == -EBUSY ? -EEXIST : rc);
	}
	if (viommu->ops->vdevice_init) {
		rc = viommu->ops->vdevice_init(vdev);
		if (rc) {
			/* As upstream's abort: the driver's destroy if its init set one. */
			if (vdev->destroy)
				vdev->destroy(vdev);
			xa_release(&viommu->vdevs, virt_id);
			kfree(vdev);
			return ERR_PTR(rc);
		}
	}
	xa_store(&viommu->vdevs, virt_id, vdev, GFP_KERNEL_ACCOUNT);
	return vdev;
}

void iommufd_rs_cvdevice_set_id(struct iommufd_vdevice *vdev, u32 id)
{
	WRITE_ONCE(vdev->obj.id, id);
}

void iommufd_rs_cvdevice_free(struct iommufd_vdevice *vdev)
{
	if (vdev->destroy)
		vdev->destroy(vdev);
	xa_cmpxchg(&vdev->viommu->vdevs, vdev->virt_id, vdev, NULL, GFP_KERNEL);
	kfree(vdev);
}

/*
 * A vEVENTQ of a driver's vIOMMU for events of @type, at most @depth of them; not listed yet
 * (iommufd_rs_cveventq_list()).
 */
struct iommufd_veventq *iommufd_rs_cveventq_alloc(struct iommufd_viommu *viommu, u32 type,
						  u32 depth)
{
	struct iommufd_veventq *veventq = kzalloc(sizeof(*veventq), GFP_KERNEL_ACCOUNT);

	if (!veventq)
		return NULL;
	veventq->common.obj.type = IOMMUFD_OBJ_VEVENTQ;
	veventq->common.ictx = viommu->ictx;
	spin_lock_init(&veventq->common.lock);
	INIT_LIST_HEAD(&veventq->common.deliver);
	init_waitqueue_head(&veventq->common.wait_queue);
	veventq->viommu = viommu;
	veventq->type = type;
	veventq->depth = depth;
	veventq->lost_events_header.header.flags = IOMMU_VEVENTQ_FLAG_LOST_EVENTS;
	INIT_LIST_HEAD(&veventq->lost_events_header.node);
	INIT_LIST_HEAD(&veventq->node);
	return veventq;
}

/*
 * Lists the queue where iommufd_viommu_report_event() looks; the caller (holding its own list's
 * lock) has checked that no queue of the type is listed.
 */
void iommufd_rs_cveventq_list(struct iommufd_veventq *veventq)
{
	down_write(&veventq->viommu->veventqs_rwsem);
	list_add_tail(&veventq->node, &veventq->viommu->veventqs);
	up_write(&veventq->viommu->veventqs_rwsem);
}

/* Unlists the queue if listed: no report reaches it after this returns. */
void iommufd_rs_cveventq_unlist(struct iommufd_veventq *veventq)
{
	down_write(&veventq->viommu->veventqs_rwsem);
	list_del_init(&veventq->node);
	up_write(&veventq->viommu->veventqs_rwsem);
}

/* Unlists the queue if it still is, then frees what it holds. */
void iommufd_rs_cveventq_free(struct iommufd_veventq *veventq)
{
	struct iommufd_vevent *cur, *next;

	iommufd_rs_cveventq_unlist(veventq);
	list_for_each_entry_safe(cur, next, &veventq->common.deliver, node) {
		list_del(&cur->node);
		if (cur != &veventq->lost_events_header)
			kfree(cur);
	}
	kfree(veventq);
}

struct wait_queue_head *iommufd_rs_cveventq_wait(struct iommufd_veventq *veventq)
{
	return &veventq->common.wait_queue;
}

bool iommufd_rs_cveventq_readable(struct iommufd_veventq *veventq)
{
	bool readable;

	spin_lock(&veventq->common.lock);
	readable = !list_empty(&veventq->common.deliver);
	spin_unlock(&veventq->common.lock);
	return readable;
}

/*
 * Takes the oldest record off the queue for a reader, who copies it to user memory with the lock
 * dropped and then gives it back (iommufd_rs_cveventq_restore(), at the head again) or is done
 * with it (iommufd_rs_cveventq_done()). A report's record is the reader's meanwhile; the
 * lost-events header is embedded in the queue and may be queued again by a reporter, so the
 * reader gets a copy of its header. False if the queue is empty.
 */
bool iommufd_rs_cveventq_fetch(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *out)
{
	struct iommufd_vevent *first;

	spin_lock(&veventq->common.lock);
	first = list_first_entry_or_null(&veventq->common.deliver, struct iommufd_vevent, node);
	if (first) {
		list_del_init(&first->node);
		out->flags = first->header.flags;
		out->sequence = first->header.sequence;
		if (first == &veventq->lost_events_header) {
			out->record = NULL;
			out->data = NULL;
			out->data_len = 0;
		} else {
			out->record = first;
			out->data = first->event_data;
			out->data_len = first->data_len;
		}
	}
	spin_unlock(&veventq->common.lock);
	return first;
}

void iommufd_rs_cveventq_restore(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *rec)
{
	struct list_head *deliver = &veventq->common.deliver;

	spin_lock(&veventq->common.lock);
	if (rec->record) {
		list_add(&rec->record->node, deliver);
	} else if (list_empty(deliver)) {
		/* The lost-events header goes back only if no report re-queued it meanwhile. */
		list_add(&veventq->lost_events_header.node, deliver);
	}
	spin_unlock(&veventq->common.lock);
}

void iommufd_rs_cveventq_done(struct iommufd_veventq *veventq, struct iommufd_rs_vevent *rec)
{
	if (!rec->record)
		return;
	spin_lock(&veventq->common.lock);
	veventq->num_events--;
	spin_unlock(&veventq->common.lock);
	kfree(rec->record);
}
