// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of iommufd-rs: static inlines that Rust cannot call. Nothing here decides anything;
 * each function is one inline, and shim.h declares them so the compiler checks these definitions
 * against the prototypes the Rust side mirrors (src/gup.rs).
 */
#include <linux/mm.h>
#include <linux/page_ref.h>

#include "shim.h"

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
