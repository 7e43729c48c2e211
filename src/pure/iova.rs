// SPDX-License-Identifier: GPL-2.0
//! IOVA choice and checks for an IOAS: where `IOMMU_IOAS_MAP` puts a mapping when the caller lets
//! the kernel choose, whether a caller's fixed IOVA is acceptable, and what
//! `IOMMU_IOAS_IOVA_RANGES` reports.
//!
//! Same answers as upstream's `iopt_alloc_iova()`, `iopt_check_iova()` and the IOVA_RANGES walk
//! (drivers/iommu/iommufd/io_pagetable.c, ioas.c), including their errno choices and quirks, so a
//! VMM sees the same addresses from either module.

use super::{
    span::{
        self,
        Span,
        SpanSet,
        Union, //
    },
    ulong::Ulong,
};

/// Why an IOVA request is refused; the glue maps these to errnos one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IovaError {
    /// `EINVAL`: misaligned, empty, or over a reserved range.
    Inval,
    /// `EOVERFLOW`: the range reaches past `ULONG_MAX`, or is too long to place.
    Overflow,
    /// `ENOSPC`: no free, allowed place is big enough.
    NoSpace,
    /// `EEXIST`: a fixed IOVA overlaps an existing mapping.
    Exists,
}

/// Machine constants the choice depends on: the CPU page size, the largest alignment worth
/// preserving (the THP size; upstream's `HPAGE_SIZE`, or `PAGE_SIZE` without THP) and
/// `ULONG_MAX`, the top of the IOVA space (upstream's IOVAs are `unsigned long`). Parameters
/// rather than constants so the tests can shrink the address space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) page_size: u64,
    pub(crate) max_align: u64,
    pub(crate) ulong: Ulong,
}

/// What an IOAS's IOVA space holds at the moment of a request.
pub(crate) struct IovaSpace<'a, A: ?Sized, R: ?Sized, M: ?Sized> {
    /// Ranges the caller allowed (`IOMMU_IOAS_ALLOW_IOVAS`); empty means "anywhere".
    pub(crate) allowed: &'a A,
    /// Reserved ranges of attached devices and domains, possibly overlapping.
    pub(crate) reserved: &'a R,
    /// Existing areas, including ones still being set up.
    pub(crate) areas: &'a M,
    /// The IOAS's IOVA alignment (1, or the largest minimum page size of its domains).
    pub(crate) iova_alignment: u64,
}

/// `roundup_pow_of_two()` for the lengths that reach it (below 2^63).
fn roundup_pow_of_two(x: u64) -> u64 {
    x.checked_next_power_of_two().unwrap_or(1 << 63)
}

/// Upstream's `__alloc_iova_check_range()`: the one candidate a free span `[s, l]` offers.
///
/// The page offset is OR-ed into the aligned start, not added: with an alignment below the page
/// size the candidate's low bits can differ from the user address's. Kept exactly; the
/// candidate must also start strictly before `l`.
fn candidate(free: Span, align: u64, page_offset: u64, length: u64) -> Option<u64> {
    free.start.checked_add(align - 1)?;
    let aligned = (free.start + (align - 1)) & !(align - 1);
    let start = aligned | page_offset;
    if start >= free.last || free.last - start < length - 1 {
        return None;
    }
    Some(start)
}

impl<A, R, M> IovaSpace<'_, A, R, M>
where
    A: SpanSet + ?Sized,
    R: SpanSet + ?Sized,
    M: SpanSet + ?Sized,
{
    /// Chooses the IOVA for `length` bytes whose backing memory starts at `addr` (a user VA or
    /// file offset): first fit, lowest first, aligned like `addr` up to the THP size so huge
    /// pages stay mappable as huge IOPTEs. Never uses the first or the last page.
    pub(crate) fn alloc(&self, geo: Geometry, addr: u64, length: u64) -> Result<u64, IovaError> {
        // `checked_rem` throughout: a zero page size or alignment is a caller bug, answered with
        // EINVAL rather than a panic.
        let page_offset = addr.checked_rem(geo.page_size).ok_or(IovaError::Inval)?;
        // Upstream's guard for `roundup_pow_of_two()`, in `unsigned long`.
        if length == 0 || length >= geo.ulong.max / 2 {
            return Err(IovaError::Overflow);
        }
        let mut align = roundup_pow_of_two(length);
        if addr != 0 {
            align = align.min(1 << addr.trailing_zeros());
        }
        align = align.min(geo.max_align);
        if align < self.iova_alignment {
            return Err(IovaError::Inval);
        }

        let window = Span {
            start: geo.page_size,
            last: geo.ulong.max.saturating_sub(geo.page_size),
        };
        let free = Union(self.reserved, self.areas);
        // No allowed ranges: the whole window is one allowed run.
        let any_allowed = span::used(self.allowed, window).next().is_some();
        let allowed = span::used(self.allowed, window).chain((!any_allowed).then_some(window));
        for run in allowed {
            let Some(from) = candidate(run, align, page_offset, length) else {
                continue;
            };
            for hole in span::holes(
                &free,
                Span {
                    start: from,
                    last: run.last,
                },
            ) {
                if let Some(iova) = candidate(hole, align, page_offset, length) {
                    return Ok(iova);
                }
            }
        }
        Err(IovaError::NoSpace)
    }

    /// Checks a caller-chosen IOVA (`IOMMU_IOAS_MAP_FIXED_IOVA`). Allowed ranges do not apply
    /// here: they only steer the kernel's own choice. The range must end at or below
    /// `ULONG_MAX` (upstream's `check_add_overflow()` in `unsigned long`).
    pub(crate) fn check_fixed(
        &self,
        geo: Geometry,
        iova: u64,
        length: u64,
    ) -> Result<Span, IovaError> {
        let misaligned = |x: u64| x.checked_rem(self.iova_alignment) != Some(0);
        if length == 0 || misaligned(length) || misaligned(iova) {
            return Err(IovaError::Inval);
        }
        let range = geo
            .ulong
            .span(iova, length)
            .map_err(|_| IovaError::Overflow)?;
        if self.reserved.intersects(range) {
            return Err(IovaError::Inval);
        }
        if self.areas.intersects(range) {
            return Err(IovaError::Exists);
        }
        Ok(range)
    }
}

/// What `IOMMU_IOAS_IOVA_RANGES` reports: the holes between reserved ranges over the whole
/// IOVA space, `[0, ULONG_MAX]`, lowest first (allowed ranges and areas are not part of it
/// upstream either).
pub(crate) fn usable_ranges<R: SpanSet + ?Sized>(
    reserved: &R,
    ulong: Ulong,
) -> impl Iterator<Item = Span> + '_ {
    span::holes(reserved, ulong.whole())
}
