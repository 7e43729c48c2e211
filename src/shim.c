// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of iommufd-rs: static inlines that Rust cannot call. Nothing here decides anything;
 * each function is one inline, and shim.h declares them so the compiler checks these definitions
 * against the prototypes the Rust side mirrors (src/shim.rs).
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/page_ref.h>
#include <linux/sched/signal.h>
#include <linux/cred.h>
#include <linux/highmem.h>
#include <linux/iommu.h>

#include "shim.h"

/* dma_buf_get()/dma_buf_put(): IOMMU_IOAS_MAP_FILE recognises dma-bufs (src/ioas.rs). */
MODULE_IMPORT_NS("DMA_BUF");
/* The IOMMU core's entry points reserved for iommufd: group attach with handles (src/device.rs). */
MODULE_IMPORT_NS("IOMMUFD_INTERNAL");
/* The generic page table the mock domain is built on (src/mock.rs). */
MODULE_IMPORT_NS("GENERIC_PT_IOMMU");
/* iova_bitmap, built into the kernel for VFIO and us (src/dirty.rs). */
MODULE_IMPORT_NS("IOMMUFD");

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

struct page *iommufd_rs_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
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

unsigned long iommufd_rs_rlimit_memlock(void)
{
	return rlimit(RLIMIT_MEMLOCK);
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

void iommufd_rs_fault_init(void)
{
	fail_iommufd_dir = fault_create_debugfs_attr("fail_iommufd", NULL, &fail_iommufd);
}

void iommufd_rs_fault_exit(void)
{
	debugfs_remove_recursive(fail_iommufd_dir);
}
#endif
