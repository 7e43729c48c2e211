/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of src/ffi/shim.c; the Rust declarations in src/ffi/shim.rs mirror them. */
#ifndef IOMMUFD_RS_SHIM_H
#define IOMMUFD_RS_SHIM_H

struct page;
struct folio;
struct user_struct;
struct iommu_dirty_bitmap;
struct iova_bitmap;
struct iommu_iotlb_gather;
struct iommu_domain;
struct file;

int iommufd_rs_page_ref_count(const struct page *page);
bool iommufd_rs_page_compound(const struct page *page);
void iommufd_rs_put_page(struct page *page);
unsigned long iommufd_rs_page_to_pfn(const struct page *page);
/* The PFNs of pages[0..n) into pfns[0..n): one call for a batch GUP filled. */
void iommufd_rs_pages_to_pfns(struct page *const *pages, u64 *pfns, size_t n);
struct page *iommufd_rs_pfn_to_page(unsigned long pfn);
struct device;
bool iommufd_rs_pci_pri_facts(struct device *dev, bool *is_virtfn, bool *pri_supported);
unsigned long iommufd_rs_folio_pfn(const struct folio *folio);
unsigned long iommufd_rs_folio_nr_pages(const struct folio *folio);
struct user_struct *iommufd_rs_get_current_user(void);
struct task_struct;
struct mm_struct;
unsigned long iommufd_rs_task_rlimit_memlock(const struct task_struct *task);
void iommufd_rs_mmap_write_lock(struct mm_struct *mm);
void iommufd_rs_mmap_write_unlock(struct mm_struct *mm);
void iommufd_rs_memcpy_from_page(char *to, struct page *page, size_t offset, size_t len);
void iommufd_rs_memcpy_to_page(struct page *page, size_t offset, const char *from, size_t len);
void iommufd_rs_dirty_bitmap_init(struct iommu_dirty_bitmap *dirty, struct iova_bitmap *bitmap,
				  struct iommu_iotlb_gather *gather);
void iommufd_rs_iotlb_sync(struct iommu_domain *domain, struct iommu_iotlb_gather *gather);
struct dma_resv;
int iommufd_rs_dma_resv_lock(struct dma_resv *obj);
void iommufd_rs_dma_resv_unlock(struct dma_resv *obj);
phys_addr_t iommufd_rs_virt_to_phys(void *addr);
void iommufd_rs_cond_resched(void);
bool iommufd_rs_file_writable(const struct file *file);
unsigned int iommufd_rs_file_seals(struct file *file);
int iommufd_rs_mapping_map_writable(struct file *file);
void iommufd_rs_mapping_unmap_writable(struct file *file);
struct vm_area_struct;
unsigned long iommufd_rs_vma_pgoff(const struct vm_area_struct *vma);
int iommufd_rs_mmap_phys(struct vm_area_struct *vma, void *owner, phys_addr_t addr);
struct list_head;
void iommufd_rs_list_add(struct list_head *entry, struct list_head *head);
void iommufd_rs_list_del_init(struct list_head *entry);
void iommufd_rs_list_move_tail(struct list_head *entry, struct list_head *head);
/* Rust (src/viommu/mod.rs): a VMA of a vIOMMU region was copied / went away. */
void iommufd_rs_vma_hold(void *owner);
void iommufd_rs_vma_release(void *owner);

struct dma_buf_attachment;
int iommufd_rs_vfio_dmabuf_range(struct dma_buf_attachment *attach, u64 *paddr, u64 *len);

#ifdef CONFIG_IOMMUFD_TEST
bool iommufd_rs_should_fail(void);
void iommufd_rs_fault_init(void);
void iommufd_rs_fault_exit(void);
void iommufd_rs_pause_at_dmabuf_map(void);
bool iommufd_rs_cannot_sleep(void);

#endif

/*
 * The in-kernel API of include/linux/iommufd.h, implemented in Rust (src/vfio/kapi.rs) and exported by
 * shim.c under the kernel's own names. bindgen reads these declarations and src/vfio/kapi.rs checks
 * its definitions against them.
 */
struct file;
struct device;
struct iommu_group;
struct iommufd_ctx;
struct iommufd_device;
struct iommufd_access;
struct iommufd_access_ops;

struct iommufd_ctx *iommufd_rs_ctx_from_file(struct file *file);
struct iommufd_ctx *iommufd_rs_ctx_from_fd(int fd);
void iommufd_rs_ctx_get(struct iommufd_ctx *ictx);
void iommufd_rs_ctx_put(struct iommufd_ctx *ictx);
bool iommufd_rs_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group);
struct iommufd_device *iommufd_rs_device_bind(struct iommufd_ctx *ictx, struct device *dev,
					      u32 *id);
void iommufd_rs_device_unbind(struct iommufd_device *idev);
int iommufd_rs_device_attach(struct iommufd_device *idev, u32 pasid, u32 *pt_id);
int iommufd_rs_device_replace(struct iommufd_device *idev, u32 pasid, u32 *pt_id);
void iommufd_rs_device_detach(struct iommufd_device *idev, u32 pasid);
struct iommufd_ctx *iommufd_rs_device_to_ictx(struct iommufd_device *idev);
u32 iommufd_rs_device_to_id(struct iommufd_device *idev);
struct iommufd_access *iommufd_rs_access_create(struct iommufd_ctx *ictx,
						const struct iommufd_access_ops *ops,
						void *data, u32 *id);
void iommufd_rs_access_destroy(struct iommufd_access *access);
int iommufd_rs_access_attach(struct iommufd_access *access, u32 ioas_id);
int iommufd_rs_access_replace(struct iommufd_access *access, u32 ioas_id);
void iommufd_rs_access_detach(struct iommufd_access *access);
int iommufd_rs_access_pin_pages(struct iommufd_access *access, unsigned long iova,
				unsigned long length, struct page **out_pages, unsigned int flags);
void iommufd_rs_access_unpin_pages(struct iommufd_access *access, unsigned long iova,
				   unsigned long length);
int iommufd_rs_access_rw(struct iommufd_access *access, unsigned long iova, void *data,
			 size_t length, unsigned int flags);
int iommufd_rs_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx, u32 *out_ioas_id);
int iommufd_rs_vfio_compat_ioas_create(struct iommufd_ctx *ictx);
int iommufd_rs_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx);

bool iommufd_rs_allow_unsafe_interrupts(void);
void iommufd_rs_wake_unused(void);
bool iommufd_rs_wait_unused(const u32 *count, unsigned int timeout_ms);

#endif
