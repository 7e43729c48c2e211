/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of src/shim.c; the Rust declarations in src/gup.rs mirror them. */
#ifndef IOMMUFD_RS_SHIM_H
#define IOMMUFD_RS_SHIM_H

struct page;

int iommufd_rs_page_ref_count(const struct page *page);
bool iommufd_rs_page_compound(const struct page *page);
void iommufd_rs_put_page(struct page *page);

#ifdef CONFIG_IOMMUFD_TEST
bool iommufd_rs_should_fail(void);
void iommufd_rs_fault_init(void);
void iommufd_rs_fault_exit(void);
#endif

#endif
