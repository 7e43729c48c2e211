/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of src/shim.c; the Rust declarations in src/shim.rs mirror them. */
#ifndef IOMMUFD_RS_SHIM_H
#define IOMMUFD_RS_SHIM_H

struct page;
struct folio;
struct user_struct;
struct iommu_dirty_bitmap;
struct iova_bitmap;
struct iommu_iotlb_gather;
struct iommu_domain;

int iommufd_rs_page_ref_count(const struct page *page);
bool iommufd_rs_page_compound(const struct page *page);
void iommufd_rs_put_page(struct page *page);
unsigned long iommufd_rs_page_to_pfn(const struct page *page);
struct page *iommufd_rs_pfn_to_page(unsigned long pfn);
unsigned long iommufd_rs_folio_pfn(const struct folio *folio);
unsigned long iommufd_rs_folio_nr_pages(const struct folio *folio);
struct user_struct *iommufd_rs_get_current_user(void);
unsigned long iommufd_rs_rlimit_memlock(void);
void iommufd_rs_memcpy_from_page(char *to, struct page *page, size_t offset, size_t len);
void iommufd_rs_memcpy_to_page(struct page *page, size_t offset, const char *from, size_t len);
void iommufd_rs_dirty_bitmap_init(struct iommu_dirty_bitmap *dirty, struct iova_bitmap *bitmap,
				  struct iommu_iotlb_gather *gather);
void iommufd_rs_iotlb_sync(struct iommu_domain *domain, struct iommu_iotlb_gather *gather);

#ifdef CONFIG_IOMMUFD_TEST
bool iommufd_rs_should_fail(void);
void iommufd_rs_fault_init(void);
void iommufd_rs_fault_exit(void);
#endif

#endif
