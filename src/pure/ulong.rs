// SPDX-License-Identifier: GPL-2.0
//! The `unsigned long` bound on IOVAs and lengths.
//!
//! The uAPI carries IOVAs, lengths and file offsets as `__u64`; upstream keeps them in `unsigned
//! long` from the ioctl on, and the IOMMU API (`iommu_map()`, `iommu_unmap()`,
//! `iova_bitmap_alloc()`, a driver's `read_and_clear_dirty()`) takes `unsigned long` IOVAs and
//! `size_t` lengths, the same width in the kernel. On a 32-bit kernel a value over `ULONG_MAX`
//! would be cut short by a cast: a map of 4 GiB + 4 KiB becomes a map of 4 KiB, an IOVA of
//! 4 GiB becomes 0. These checks refuse such values where upstream does, with upstream's errno
//! (ioas.c's `>= ULONG_MAX` on entry, io_pagetable.c's `check_add_overflow()` in `unsigned long`,
//! pages.c's `SIZE_MAX - PAGE_SIZE`, `iommufd_check_iova_range()`), and narrow to the C types
//! with checked conversions only.
//!
//! The bound is a value, not the host's `usize`, so the host tests can run a 32-bit kernel's
//! checks on a 64-bit machine.

use super::span::Span;

/// Why a value or range is refused; the glue maps these to errnos one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeError {
    /// `EINVAL`: empty, misaligned, or too long to have pages.
    Inval,
    /// `EOVERFLOW`: past `ULONG_MAX`.
    Overflow,
}

/// `ULONG_MAX` of a kernel (and so `SIZE_MAX`: the kernel's `size_t` is as wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ulong {
    pub(crate) max: u64,
}

impl Ulong {
    /// The kernel this is built for.
    pub(crate) const NATIVE: Ulong = Ulong {
        max: if usize::BITS >= u64::BITS {
            u64::MAX
        } else {
            (1u64 << usize::BITS) - 1
        },
    };

    /// The whole IOVA space, `[0, ULONG_MAX]` (upstream's unmap-all and IOVA_RANGES walk).
    pub(crate) fn whole(self) -> Span {
        Span {
            start: 0,
            last: self.max,
        }
    }

    /// The entry check of MAP, MAP_FILE, COPY and UNMAP (ioas.c): `x >= ULONG_MAX` is
    /// `EOVERFLOW`. `ULONG_MAX` itself is refused too, as upstream, so that `x + 1` and
    /// `length - 1` stay in range below.
    pub(crate) fn arg(self, x: u64) -> Result<u64, RangeError> {
        if x >= self.max {
            return Err(RangeError::Overflow);
        }
        Ok(x)
    }

    /// `[start, start + length - 1]` as upstream computes it in `unsigned long`: `EINVAL` if
    /// empty, `EOVERFLOW` if it reaches past `ULONG_MAX` (`check_add_overflow()` in
    /// `iopt_check_iova()`, `iopt_unmap_iova()`, `iopt_get_pages()`, `iopt_map_file_pages()`).
    pub(crate) fn span(self, start: u64, length: u64) -> Result<Span, RangeError> {
        let span = Span::from_len(start, length).ok_or(if length == 0 {
            RangeError::Inval
        } else {
            RangeError::Overflow
        })?;
        if span.last > self.max {
            return Err(RangeError::Overflow);
        }
        Ok(span)
    }

    /// The length check of a new pages object (pages.c's `iopt_alloc_pages()`): "the iommu API
    /// uses size_t as the length", and the page count of `length` must not overflow, so
    /// `EINVAL` for 0 or over `SIZE_MAX - PAGE_SIZE`.
    pub(crate) fn pages_length(self, length: u64, page_size: u64) -> Result<u64, RangeError> {
        if length == 0 || length > self.max.saturating_sub(page_size) {
            return Err(RangeError::Inval);
        }
        Ok(length)
    }

    /// `[iova, iova + length)` as the IOMMU API takes it: an `unsigned long` IOVA and a `size_t`
    /// length (`T` is `usize` in the kernel), both ends inside the bound. What goes into
    /// `iommu_map()`, `iommu_unmap()` and the dirty-tracking ops.
    pub(crate) fn narrow<T: TryFrom<u64>>(
        self,
        iova: u64,
        length: u64,
    ) -> Result<(T, T), RangeError> {
        let span = self.span(iova, length)?;
        let iova = T::try_from(span.start).map_err(|_| RangeError::Overflow)?;
        let length = T::try_from(length).map_err(|_| RangeError::Overflow)?;
        Ok((iova, length))
    }

    /// Upstream's `iommufd_check_iova_range()` for `IOMMU_HWPT_GET_DIRTY_BITMAP`: the range is
    /// computed in 64 bits (`length` 0 wraps to the whole space from 0, as upstream), must end
    /// at or below `ULONG_MAX`, and start and end on both the IOAS's alignment and the bitmap's
    /// `page_size` (both powers of two). Returns `[iova, last]`.
    pub(crate) fn dirty_range(
        self,
        iova: u64,
        length: u64,
        iova_alignment: u64,
        page_size: u64,
    ) -> Result<Span, RangeError> {
        let last = iova
            .checked_add(length.wrapping_sub(1))
            .ok_or(RangeError::Overflow)?;
        if iova > self.max || last > self.max {
            return Err(RangeError::Overflow);
        }
        let end = last.wrapping_add(1);
        let misaligned = |x: u64, align: u64| x & align.wrapping_sub(1) != 0;
        if misaligned(iova, iova_alignment) || misaligned(end, iova_alignment) {
            return Err(RangeError::Inval);
        }
        if page_size == 0 {
            return Err(RangeError::Inval);
        }
        if misaligned(iova, page_size) || misaligned(end, page_size) {
            return Err(RangeError::Inval);
        }
        Ok(Span { start: iova, last })
    }
}
