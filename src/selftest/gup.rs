// SPDX-License-Identifier: GPL-2.0
//! A reference to a user page taken with `get_user_pages_fast()` and dropped with `put_page()`.
//!
//! Only the selftest's `MD_CHECK_REFS` looks at user pages this way; the pinning of mapped
//! memory (FOLL_LONGTERM, batched) is the pages layer's job.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use crate::ffi::shim::{
    iommufd_rs_page_compound,
    iommufd_rs_page_ref_count,
    iommufd_rs_put_page, //
};

/// # Invariants
///
/// `self.0` is a page on which this object holds one reference from `get_user_pages_fast()`.
pub(crate) struct UserPageRef(NonNull<bindings::page>);

impl UserPageRef {
    /// Takes a reference on the page mapped at user address `addr` of the current process.
    pub(crate) fn get(addr: usize) -> Result<Self> {
        let mut page: *mut bindings::page = core::ptr::null_mut();
        // SAFETY: `page` has room for the one page asked for; GUP validates `addr` itself and
        // fails for kernel or unmapped addresses.
        let n = unsafe { bindings::get_user_pages_fast(addr, 1, 0, &mut page) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        // INVARIANT: one page was returned with a reference taken for us.
        match NonNull::new(page) {
            Some(page) if n == 1 => Ok(Self(page)),
            _ => Err(EFAULT),
        }
    }

    /// The page.
    pub(crate) fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// The page's frame number.
    pub(crate) fn pfn(&self) -> u64 {
        // SAFETY: by the type invariant the page is referenced, so it stays valid.
        unsafe { crate::ffi::shim::iommufd_rs_page_to_pfn(self.0.as_ptr()) as u64 }
    }

    /// How many FOLL_PIN pins the page carries, or `None` for a compound page, whose refcount
    /// counts pins differently.
    pub(crate) fn pin_count(&self) -> Option<u32> {
        // SAFETY: by the type invariant the page is referenced, so it stays valid.
        if unsafe { iommufd_rs_page_compound(self.0.as_ptr()) } {
            return None;
        }
        // SAFETY: as above.
        let refs = unsafe { iommufd_rs_page_ref_count(self.0.as_ptr()) };
        u32::try_from(refs)
            .ok()
            .map(|r| r / bindings::GUP_PIN_COUNTING_BIAS)
    }
}

impl Drop for UserPageRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this object holds one reference; this releases it.
        unsafe { iommufd_rs_put_page(self.0.as_ptr()) };
    }
}
