// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of iommufd-rs: static inlines that Rust cannot call. Nothing here decides anything;
 * each function is one inline, and shim.h declares them so the compiler checks these definitions
 * against the prototypes the Rust side mirrors (src/ffi/shim.rs).
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/page_ref.h>
#include <linux/sched/signal.h>
#include <linux/cred.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/moduleparam.h>
#include <linux/dma-resv.h>
#include <linux/io.h>
#include <linux/pci.h>
#include <linux/pci-ats.h>
#include <linux/wait.h>
#include <linux/shmem_fs.h>
#include <linux/hugetlb.h>

#include "shim.h"

/* dma_buf_get()/dma_buf_put(): IOMMU_IOAS_MAP_FILE recognises dma-bufs (src/ioas/mod.rs). */
MODULE_IMPORT_NS("DMA_BUF");
/* The IOMMU core's entry points reserved for iommufd: group attach with handles (src/hwpt/device.rs). */
MODULE_IMPORT_NS("IOMMUFD_INTERNAL");
/* The generic page table the mock domain is built on (src/selftest/mock.rs). */
MODULE_IMPORT_NS("GENERIC_PT_IOMMU");
/* iova_bitmap, built into the kernel for VFIO and us (src/hwpt/dirty.rs). */
MODULE_IMPORT_NS("IOMMUFD");

#if IS_ENABLED(CONFIG_IOMMUFD_VFIO_CONTAINER)
/* We provide /dev/vfio/vfio (src/context/miscdev.rs): opening it loads us, as it loads upstream's. */
#include <linux/miscdevice.h>
MODULE_ALIAS_MISCDEV(VFIO_MINOR);
MODULE_ALIAS("devname:vfio/vfio");
#endif

int iommufd_rs_page_ref_count(const struct page *page)
{
	return page_ref_count(page);
}

bool iommufd_rs_page_compound(const struct page *page)
{
	return PageCompound(page);
}

void iommufd_rs_put_page(struct page *page)
{
	put_page(page);
}

unsigned long iommufd_rs_page_to_pfn(const struct page *page)
{
	return page_to_pfn(page);
}

void iommufd_rs_pages_to_pfns(struct page *const *pages, u64 *pfns, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pfns[i] = page_to_pfn(pages[i]);
}

struct page *iommufd_rs_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

/* Whether @dev is PCI; if so, whether it is a VF and has PRI (a VF shares its PF's). */
bool iommufd_rs_pci_pri_facts(struct device *dev, bool *is_virtfn, bool *pri_supported)
{
	if (!dev_is_pci(dev))
		return false;
	*is_virtfn = to_pci_dev(dev)->is_virtfn;
	*pri_supported = pci_pri_supported(to_pci_dev(dev));
	return true;
}

unsigned long iommufd_rs_folio_pfn(const struct folio *folio)
{
	return folio_pfn(folio);
}

unsigned long iommufd_rs_folio_nr_pages(const struct folio *folio)
{
	return folio_nr_pages(folio);
}

struct user_struct *iommufd_rs_get_current_user(void)
{
	return get_current_user();
}

unsigned long iommufd_rs_task_rlimit_memlock(const struct task_struct *task)
{
	return task_rlimit(task, RLIMIT_MEMLOCK);
}

void iommufd_rs_mmap_write_lock(struct mm_struct *mm)
{
	mmap_write_lock(mm);
}

void iommufd_rs_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}

void iommufd_rs_memcpy_from_page(char *to, struct page *page, size_t offset, size_t len)
{
	memcpy_from_page(to, page, offset, len);
}

void iommufd_rs_memcpy_to_page(struct page *page, size_t offset, const char *from, size_t len)
{
	memcpy_to_page(page, offset, from, len);
}

void iommufd_rs_dirty_bitmap_init(struct iommu_dirty_bitmap *dirty, struct iova_bitmap *bitmap,
				  struct iommu_iotlb_gather *gather)
{
	iommu_dirty_bitmap_init(dirty, bitmap, gather);
}

void iommufd_rs_iotlb_sync(struct iommu_domain *domain, struct iommu_iotlb_gather *gather)
{
	iommu_iotlb_sync(domain, gather);
}

int iommufd_rs_dma_resv_lock(struct dma_resv *obj)
{
	return dma_resv_lock(obj, NULL);
}

void iommufd_rs_dma_resv_unlock(struct dma_resv *obj)
{
	dma_resv_unlock(obj);
}

phys_addr_t iommufd_rs_virt_to_phys(void *addr)
{
	return virt_to_phys(addr);
}

void iommufd_rs_cond_resched(void)
{
	cond_resched();
}

bool iommufd_rs_file_writable(const struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

/* memfd_get_seals() (mm/memfd.c) is not exported: the same lookup, 0 for a file with no seals. */
unsigned int iommufd_rs_file_seals(struct file *file)
{
	if (shmem_file(file))
		return SHMEM_I(file_inode(file))->seals;
#ifdef CONFIG_HUGETLBFS
	if (is_file_hugepages(file))
		return HUGETLBFS_I(file_inode(file))->seals;
#endif
	return 0;
}

/* A writable shared mapping's count on the file (what F_SEAL_WRITE waits to be zero). */
int iommufd_rs_mapping_map_writable(struct file *file)
{
	return mapping_map_writable(file->f_mapping);
}

void iommufd_rs_mapping_unmap_writable(struct file *file)
{
	mapping_unmap_writable(file->f_mapping);
}

/*
 * mmap() of /dev/iommu: a vIOMMU's physical region, mapped uncached as upstream does for MMIO.
 * The VMA's open/close ops count the mapping as a user of the vIOMMU (Rust, src/viommu/mod.rs).
 */
static void iommufd_rs_vma_open(struct vm_area_struct *vma)
{
	iommufd_rs_vma_hold(vma->vm_private_data);
}

static void iommufd_rs_vma_close(struct vm_area_struct *vma)
{
	iommufd_rs_vma_release(vma->vm_private_data);
}

static const struct vm_operations_struct iommufd_rs_vma_ops = {
	.open = iommufd_rs_vma_open,
	.close = iommufd_rs_vma_close,
};

unsigned long iommufd_rs_vma_pgoff(const struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

int iommufd_rs_mmap_phys(struct vm_area_struct *vma, void *owner, phys_addr_t addr)
{
	int rc;

	vma->vm_pgoff = 0;
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	rc = io_remap_pfn_range(vma, vma->vm_start, addr >> PAGE_SHIFT,
				vma->vm_end - vma->vm_start, vma->vm_page_prot);
	if (rc)
		return rc;
	/* Only a mapping that exists holds the owner: close runs for it alone. */
	vma->vm_private_data = owner;
	vma->vm_ops = &iommufd_rs_vma_ops;
	return 0;
}

/*
 * The fault queue's list of groups, linked through iopf_group::node (src/eventq/fault.rs): the list
 * primitives, with CONFIG_DEBUG_LIST's checks where the kernel has them.
 */
void iommufd_rs_list_add(struct list_head *entry, struct list_head *head)
{
	list_add(entry, head);
}

void iommufd_rs_list_del_init(struct list_head *entry)
{
	list_del_init(entry);
}

void iommufd_rs_list_move_tail(struct list_head *entry, struct list_head *head)
{
	list_move_tail(entry, head);
}

/*
 * Removing an object whose owner ends its life (a device's unbind) waits until no ioctl uses it
 * any more (src/context/object.rs, `Users::wait_unused`); one queue serves every context, since waits are
 * rare and each waiter rechecks its own object's count.
 */
static DECLARE_WAIT_QUEUE_HEAD(iommufd_rs_unused_wq);

void iommufd_rs_wake_unused(void)
{
	wake_up_all(&iommufd_rs_unused_wq);
}

bool iommufd_rs_wait_unused(const u32 *count, unsigned int timeout_ms)
{
	return wait_event_timeout(iommufd_rs_unused_wq, READ_ONCE(*count) == 0,
				  msecs_to_jiffies(timeout_ms)) != 0;
}

/*
 * The physical range of a vfio-pci dma-buf (a device BAR exported with VFIO_DEVICE_FEATURE_DMA_BUF),
 * through the private interface vfio-pci exports for the module named iommufd, as upstream's
 * sym_vfio_pci_dma_buf_iommufd_map(): looked up at run time, since vfio-pci depends on iommufd
 * and not the other way round. -EOPNOTSUPP when vfio-pci is not loaded, was built without dma-buf
 * export (CONFIG_VFIO_PCI_DMABUF, which needs CONFIG_PCI_P2PDMA), or did not export this dma-buf.
 */
#include <linux/vfio_pci_core.h>

int iommufd_rs_vfio_dmabuf_range(struct dma_buf_attachment *attach, u64 *paddr, u64 *len)
{
	typeof(&vfio_pci_dma_buf_iommufd_map) fn;
	struct phys_vec phys;
	int rc;

	if (!IS_ENABLED(CONFIG_VFIO_PCI_DMABUF))
		return -EOPNOTSUPP;
	fn = symbol_get(vfio_pci_dma_buf_iommufd_map);
	if (!fn)
		return -EOPNOTSUPP;
	rc = fn(attach, &phys);
	symbol_put(vfio_pci_dma_buf_iommufd_map);
	if (rc)
		return rc;
	*paddr = phys.paddr;
	*len = phys.len;
	return 0;
}

#ifdef CONFIG_IOMMUFD_TEST
#include <linux/debugfs.h>
#include <linux/fault-inject.h>

/*
 * The "fail_iommufd" fault point of the test build, as upstream's selftest.c has it: object
 * lookups fail with ENOENT when it fires, so fail-nth tests reach those paths too. C because its
 * initializer is a macro over kernel-internal fields.
 */
static DECLARE_FAULT_ATTR(fail_iommufd);
static struct dentry *fail_iommufd_dir;

bool iommufd_rs_should_fail(void)
{
	return should_fail(&fail_iommufd, 1);
}

/*
 * Pause points of the test build, so a test can force an interleaving: a test arms one by writing
 * 1 to /sys/kernel/debug/iommufd_rs/<name>; the next kernel path that reaches it sets it to 2
 * (paused) and waits, where it stands, until the test writes 0, at most 10 s. Reads show the
 * state. The only one so far is between recording a dma-buf mapping for revoke and mapping it
 * (src/pages/dmabuf.rs).
 */
enum { PAUSE_IDLE, PAUSE_ARMED, PAUSED };
static DECLARE_WAIT_QUEUE_HEAD(iommufd_rs_pause_wq);
static u32 iommufd_rs_pause_dmabuf_map;
static struct dentry *iommufd_rs_test_dir;

static int pause_get(void *data, u64 *val)
{
	*val = READ_ONCE(*(u32 *)data);
	return 0;
}

static int pause_set(void *data, u64 val)
{
	if (val != PAUSE_IDLE && val != PAUSE_ARMED)
		return -EINVAL;
	WRITE_ONCE(*(u32 *)data, val);
	wake_up_all(&iommufd_rs_pause_wq);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(pause_fops, pause_get, pause_set, "%llu\n");

void iommufd_rs_pause_at_dmabuf_map(void)
{
	u32 *state = &iommufd_rs_pause_dmabuf_map;

	if (cmpxchg(state, PAUSE_ARMED, PAUSED) != PAUSE_ARMED)
		return;
	wait_event_timeout(iommufd_rs_pause_wq, READ_ONCE(*state) != PAUSED, 10 * HZ);
	/* Timed out: nobody releases us, so disarm. */
	cmpxchg(state, PAUSED, PAUSE_IDLE);
}

void iommufd_rs_fault_init(void)
{
	fail_iommufd_dir = fault_create_debugfs_attr("fail_iommufd", NULL, &fail_iommufd);
	iommufd_rs_test_dir = debugfs_create_dir("iommufd_rs", NULL);
	debugfs_create_file_unsafe("pause_dmabuf_map", 0600, iommufd_rs_test_dir,
				   &iommufd_rs_pause_dmabuf_map, &pause_fops);
}

void iommufd_rs_fault_exit(void)
{
	debugfs_remove_recursive(iommufd_rs_test_dir);
	debugfs_remove_recursive(fail_iommufd_dir);
}

/*
 * Whether the caller may not sleep (a spinlock held, preemption or interrupts off): the mock
 * IOMMU checks this where its callers must be able to sleep, since a kernel without
 * CONFIG_DEBUG_ATOMIC_SLEEP would not notice.
 */
bool iommufd_rs_cannot_sleep(void)
{
#ifdef CONFIG_PREEMPT_COUNT
	return preempt_count() != 0 || irqs_disabled();
#else
	return irqs_disabled();
#endif
}
#endif

/*
 * The in-kernel API VFIO uses (include/linux/iommufd.h), under the kernel's names and namespaces:
 * each export forwards to its Rust implementation in src/vfio/kapi.rs. Including the kernel's header
 * makes the compiler check every prototype here against it.
 */
#include <linux/iommufd.h>

struct iommufd_ctx *iommufd_ctx_from_file(struct file *file)
{
	return iommufd_rs_ctx_from_file(file);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");

struct iommufd_ctx *iommufd_ctx_from_fd(int fd)
{
	return iommufd_rs_ctx_from_fd(fd);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");

void iommufd_ctx_get(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_get(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");

void iommufd_ctx_put(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_put(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");

bool iommufd_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	return iommufd_rs_ctx_has_group(ictx, group);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");

struct iommufd_device *iommufd_device_bind(struct iommufd_ctx *ictx, struct device *dev, u32 *id)
{
	return iommufd_rs_device_bind(ictx, dev, id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");

void iommufd_device_unbind(struct iommufd_device *idev)
{
	iommufd_rs_device_unbind(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");

int iommufd_device_attach(struct iommufd_device *idev, ioasid_t pasid, u32 *pt_id)
{
	return iommufd_rs_device_attach(idev, pasid, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");

int iommufd_device_replace(struct iommufd_device *idev, ioasid_t pasid, u32 *pt_id)
{
	return iommufd_rs_device_replace(idev, pasid, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");

void iommufd_device_detach(struct iommufd_device *idev, ioasid_t pasid)
{
	iommufd_rs_device_detach(idev, pasid);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");

struct iommufd_ctx *iommufd_device_to_ictx(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_ictx(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");

u32 iommufd_device_to_id(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_id(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");

struct iommufd_access *iommufd_access_create(struct iommufd_ctx *ictx,
					     const struct iommufd_access_ops *ops, void *data,
					     u32 *id)
{
	return iommufd_rs_access_create(ictx, ops, data, id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_create, "IOMMUFD");

void iommufd_access_destroy(struct iommufd_access *access)
{
	iommufd_rs_access_destroy(access);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_destroy, "IOMMUFD");

int iommufd_access_attach(struct iommufd_access *access, u32 ioas_id)
{
	return iommufd_rs_access_attach(access, ioas_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_attach, "IOMMUFD");

int iommufd_access_replace(struct iommufd_access *access, u32 ioas_id)
{
	return iommufd_rs_access_replace(access, ioas_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_replace, "IOMMUFD");

void iommufd_access_detach(struct iommufd_access *access)
{
	iommufd_rs_access_detach(access);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_detach, "IOMMUFD");

int iommufd_access_pin_pages(struct iommufd_access *access, unsigned long iova,
			     unsigned long length, struct page **out_pages, unsigned int flags)
{
	return iommufd_rs_access_pin_pages(access, iova, length, out_pages, flags);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_pin_pages, "IOMMUFD");

void iommufd_access_unpin_pages(struct iommufd_access *access, unsigned long iova,
				unsigned long length)
{
	iommufd_rs_access_unpin_pages(access, iova, length);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_unpin_pages, "IOMMUFD");

int iommufd_access_rw(struct iommufd_access *access, unsigned long iova, void *data,
		      size_t length, unsigned int flags)
{
	return iommufd_rs_access_rw(access, iova, data, length, flags);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_rw, "IOMMUFD");

int iommufd_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx, u32 *out_ioas_id)
{
	return iommufd_rs_vfio_compat_ioas_get_id(ictx, out_ioas_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_get_id, "IOMMUFD_VFIO");

int iommufd_vfio_compat_ioas_create(struct iommufd_ctx *ictx)
{
	return iommufd_rs_vfio_compat_ioas_create(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_create, "IOMMUFD_VFIO");

int iommufd_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx)
{
	return iommufd_rs_vfio_compat_set_no_iommu(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_set_no_iommu, "IOMMUFD_VFIO");

/*
 * As upstream: binding a device whose platform cannot isolate MSIs is refused unless the admin
 * allows it (writable at run time, like VFIO's type1 knob of the same name).
 */
static bool allow_unsafe_interrupts;
module_param(allow_unsafe_interrupts, bool, 0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Allow IOMMUFD to bind to devices even if the platform cannot isolate the MSI interrupt window. Enabling this is a security weakness.");

bool iommufd_rs_allow_unsafe_interrupts(void)
{
	return READ_ONCE(allow_unsafe_interrupts);
}
