// SPDX-License-Identifier: GPL-2.0
//! IOMMU domains (`struct iommu_domain`): a translation a device can be attached to.
//!
//! [`Domain`] is a borrowed domain (what attach, map and the drivers' ops take); [`OwnedDomain`]
//! is one allocated here and freed on drop. The user data a driver reads itself when it allocates
//! a domain or invalidates its caches travels as [`UserData`] and [`UserDataArray`].
//!
//! Devices are `kernel::device::Device`s the IOMMU core probed: the allocators here find the
//! driver's ops the way the core's `dev_iommu_ops()` does (`ENODEV` for a device without an
//! IOMMU) and, like the core's own exported allocators, rely on the device staying probed for the
//! call, which holds for a device bound to a driver or to iommufd (its IOMMU state goes only when
//! it leaves its bus).

use core::{
    ops::Deref,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    device::Device,
    error::from_err_ptr,
    ffi::c_int,
    prelude::*,
    types::Opaque, //
};

/// The C `struct device` of `dev`.
#[inline]
fn raw_dev(dev: &Device) -> *mut bindings::device {
    // `Device` is a transparent wrapper of the C struct (its `from_raw()` casts the other way).
    core::ptr::from_ref(dev).cast_mut().cast()
}

/// The IOMMU driver's ops for `dev` (`dev_iommu_ops()`): `ENODEV` without an IOMMU.
fn dev_iommu_ops(dev: &Device) -> Result<&bindings::iommu_ops> {
    // SAFETY: `dev` is live; `dev->iommu` and its `iommu_dev` are set when the IOMMU core probes
    // the device and stay while it is probed (the module doc), and the driver's ops are static.
    unsafe {
        let iommu = (*raw_dev(dev)).iommu;
        if iommu.is_null() || (*iommu).iommu_dev.is_null() {
            return Err(ENODEV);
        }
        (*(*iommu).iommu_dev).ops.as_ref().ok_or(ENODEV)
    }
}

/// A live `struct iommu_domain`, borrowed: what attach, map and the drivers' ops take.
///
/// # Invariants
///
/// The wrapped domain is allocated and not freed for as long as the reference lives; its
/// `ops`, `dirty_ops`, `pgsize_bitmap` and `geometry` are the driver's, set at allocation.
#[repr(transparent)]
pub(crate) struct Domain(Opaque<bindings::iommu_domain>);

// SAFETY: the IOMMU core and the drivers lock inside their domain operations; a domain may be
// used from any thread.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

impl Domain {
    /// Borrows the domain at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live domain that is not freed while the returned reference lives.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::iommu_domain) -> &'a Self {
        // SAFETY: `Domain` is a transparent wrapper of the C struct; the caller promises the
        // domain lives for `'a` (the type invariant).
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C domain, for the C interfaces that take one.
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::iommu_domain {
        self.0.get()
    }

    /// The page sizes the domain maps (`pgsize_bitmap`).
    #[inline]
    pub(crate) fn pgsize_bitmap(&self) -> usize {
        // SAFETY: a live domain (the type invariant); the field is set at allocation.
        unsafe { (*self.as_raw()).pgsize_bitmap }
    }

    /// The IOVA the domain translates, `[start, end]` (`geometry.aperture_*`).
    #[inline]
    pub(crate) fn aperture(&self) -> (u64, u64) {
        // SAFETY: as in `pgsize_bitmap`.
        let g = unsafe { &(*self.as_raw()).geometry };
        (g.aperture_start, g.aperture_end)
    }

    /// The driver ops the domain was allocated through (`owner`), for comparisons only.
    #[inline]
    pub(crate) fn owner(&self) -> *const bindings::iommu_ops {
        // SAFETY: as in `pgsize_bitmap`; the allocator set the owner.
        unsafe { (*self.as_raw()).owner }
    }

    /// The driver's domain ops.
    #[inline]
    fn ops(&self) -> Option<&bindings::iommu_domain_ops> {
        // SAFETY: as in `pgsize_bitmap`; the ops are the driver's, static.
        unsafe { (*self.as_raw()).ops.as_ref() }
    }

    /// The driver's dirty tracking ops, if the domain tracks dirty IOPTEs.
    #[inline]
    pub(super) fn dirty_ops(&self) -> Option<&bindings::iommu_dirty_ops> {
        // SAFETY: as in `ops`.
        unsafe { (*self.as_raw()).dirty_ops.as_ref() }
    }

    /// Maps `size` bytes at `iova` to `paddr` with `prot` (`IOMMU_READ`...) through
    /// `iommu_map()`, all or nothing; page table memory is charged to the caller's cgroup
    /// (`GFP_KERNEL_ACCOUNT`).
    ///
    /// # Safety
    ///
    /// The mapping lets the attached devices read and write that memory behind the kernel's
    /// back: `[paddr, paddr + size)` must be memory the caller keeps (pinned pages, an
    /// exporter's range it is told to give back) until it unmaps it.
    #[inline]
    pub(crate) unsafe fn map(
        &self,
        iova: usize,
        paddr: bindings::phys_addr_t,
        size: usize,
        prot: c_int,
    ) -> Result {
        // SAFETY: a live domain (the type invariant); the IOMMU core checks the range against
        // the domain's page sizes and locks inside; the memory is the caller's to give out
        // (the function's safety section).
        let rc = unsafe {
            bindings::iommu_map(
                self.as_raw(),
                iova,
                paddr,
                size,
                prot,
                bindings::GFP_KERNEL_ACCOUNT,
            )
        };
        // Checked inline: `to_result()` is a call, once per run mapped.
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok(())
    }

    /// Unmaps `[iova, iova + size)` (`iommu_unmap()`); the bytes unmapped.
    #[inline]
    pub(crate) fn unmap(&self, iova: usize, size: usize) -> usize {
        // SAFETY: a live domain (the type invariant); the IOMMU core locks inside.
        unsafe { bindings::iommu_unmap(self.as_raw(), iova, size) }
    }

    /// Hands the driver a nested domain's cache invalidation requests
    /// (`cache_invalidate_user()`). The driver writes back into `array` how many entries it
    /// handled, also on failure; a driver without the op handles none (`EOPNOTSUPP`).
    pub(crate) fn cache_invalidate_user(&self, array: &mut UserDataArray) -> Result {
        let Some(inval) = self.ops().and_then(|o| o.cache_invalidate_user) else {
            array.0.entry_num = 0;
            return Err(crate::context::errno::eopnotsupp());
        };
        // SAFETY: the driver contract: a live domain (the type invariant) and an array it reads
        // from user space itself (`UserDataArray`'s invariant).
        let rc = unsafe { inval(self.as_raw(), &mut array.0) };
        kernel::error::to_result(rc)
    }
}

/// The function an IOMMU core calls with a domain's I/O page fault groups
/// (`iommu_domain::iopf_handler`).
pub(crate) type IopfHandler = unsafe extern "C" fn(group: *mut bindings::iopf_group) -> c_int;

/// An `iommu_domain` allocated here, freed with `iommu_domain_free()` when dropped; it derefs to
/// the [`Domain`] the rest borrows.
///
/// # Invariants
///
/// `self.0` is a live domain this value alone frees; its `owner` is set.
pub(crate) struct OwnedDomain(NonNull<bindings::iommu_domain>);

// SAFETY: as for `Domain`; freeing may happen from any thread.
unsafe impl Send for OwnedDomain {}
// SAFETY: as for `Domain`.
unsafe impl Sync for OwnedDomain {}

impl OwnedDomain {
    /// Takes over `raw` (or the error it encodes).
    fn from_alloc(raw: *mut bindings::iommu_domain) -> Result<Self> {
        let raw = from_err_ptr(raw)?;
        // INVARIANT: a new domain, ours alone; the callers set the owner before they give it out.
        NonNull::new(raw).map(Self).ok_or(ENOMEM)
    }

    /// A paging domain for `dev`: through the driver's `domain_alloc_paging_flags()` with
    /// `user_data` (driver-specific page table settings) when given, else through the IOMMU
    /// core's `iommu_paging_domain_alloc_flags()`.
    pub(crate) fn alloc_paging(
        dev: &Device,
        flags: u32,
        user_data: Option<&UserData>,
    ) -> Result<Self> {
        let Some(data) = user_data else {
            // SAFETY: `dev` is live; the core checks it has an IOMMU and sets the owner.
            let raw = unsafe { bindings::iommu_paging_domain_alloc_flags(raw_dev(dev), flags) };
            return Self::from_alloc(raw);
        };
        let ops = dev_iommu_ops(dev)?;
        let alloc = ops
            .domain_alloc_paging_flags
            .ok_or(crate::context::errno::eopnotsupp())?;
        // SAFETY: the driver contract: a device it probed (the module doc), flags, and user data
        // the driver copies from user space itself.
        let domain = Self::from_alloc(unsafe { alloc(raw_dev(dev), flags, &data.0) })?;
        // SAFETY: our new domain; the core's allocator would set the owner, this path must.
        unsafe { (*domain.0.as_ptr()).owner = ops };
        Ok(domain)
    }

    /// A nested domain for `dev` over the paging domain `parent` (the driver's
    /// `domain_alloc_nested()`); a domain of another type is freed again (`EOPNOTSUPP`).
    pub(crate) fn alloc_nested(
        dev: &Device,
        parent: &Domain,
        flags: u32,
        user_data: &UserData,
    ) -> Result<Self> {
        let ops = dev_iommu_ops(dev)?;
        let alloc = ops
            .domain_alloc_nested
            .ok_or(crate::context::errno::eopnotsupp())?;
        // SAFETY: the driver contract: a device it probed, a live parent domain (borrowed for
        // the call), flags and user data the driver copies from user space itself.
        let raw = unsafe { alloc(raw_dev(dev), parent.as_raw(), flags, &user_data.0) };
        // SAFETY: what the driver returned is a new domain or an error.
        unsafe { Self::adopt_nested(from_err_ptr(raw)?, ops) }
    }

    /// Takes over `raw`, a nested domain a driver of `ops` just allocated (for a device or a
    /// vIOMMU): the core's allocator would set the owner, this path must. A domain of another
    /// type is freed again (`EOPNOTSUPP`); NULL is `ENOMEM`.
    ///
    /// # Safety
    ///
    /// `raw` is NULL or a live domain nobody else frees or uses yet.
    pub(crate) unsafe fn adopt_nested(
        raw: *mut bindings::iommu_domain,
        ops: *const bindings::iommu_ops,
    ) -> Result<Self> {
        // INVARIANT: the caller's guarantee; the owner is set next.
        let domain = NonNull::new(raw).map(Self).ok_or(ENOMEM)?;
        // SAFETY: our new domain (the caller's guarantee).
        unsafe { (*raw).owner = ops };
        // SAFETY: as above.
        if unsafe { (*raw).type_ } != bindings::IOMMU_DOMAIN_NESTED {
            return Err(crate::context::errno::eopnotsupp());
        }
        Ok(domain)
    }

    /// Asks the driver to make the domain's DMA snoop the CPU caches whatever the device asks
    /// (`enforce_cache_coherency()`); whether it does. Only before anything is mapped (`&mut`:
    /// nobody else has the domain yet): drivers with a per-PTE bit for it decide once.
    pub(crate) fn enforce_cache_coherency(&mut self) -> bool {
        let op = self.ops().and_then(|o| o.enforce_cache_coherency);
        // SAFETY: the driver's op on its own live domain, which nothing uses yet.
        op.is_some_and(|f| unsafe { f(self.as_raw()) })
    }

    /// Routes the domain's I/O page faults to `handler` (before anything attaches: `&mut`,
    /// nobody else has the domain yet).
    pub(crate) fn set_iopf_handler(&mut self, handler: IopfHandler) {
        // SAFETY: our live domain, which nothing uses yet.
        unsafe { (*self.as_raw()).iopf_handler = Some(handler) };
    }
}

impl Deref for OwnedDomain {
    type Target = Domain;

    #[inline]
    fn deref(&self) -> &Domain {
        // SAFETY: the type invariant: live until this value drops.
        unsafe { Domain::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedDomain {
    fn drop(&mut self) {
        // SAFETY: the type invariant: ours to free. Nothing is attached to it any more: a user
        // that attaches devices keeps this value until they are detached (the HWPT objects,
        // which attached devices hold).
        unsafe { bindings::iommu_domain_free(self.0.as_ptr()) };
    }
}

/// User data a driver reads itself (`struct iommu_user_data`): a typed, sized pointer into user
/// space.
///
/// # Invariants
///
/// `uptr` and `len` are what userspace passed; the driver copies from them with
/// `copy_from_user()`-style accessors, never directly.
#[repr(transparent)]
pub(crate) struct UserData(bindings::iommu_user_data);

impl UserData {
    /// Data of driver type `type_`, `len` bytes at user address `uptr`: `EFAULT` for an address
    /// and `EINVAL` for a length that do not fit this machine.
    pub(crate) fn new(type_: u32, uptr: u64, len: u64) -> Result<Self> {
        let uptr = usize::try_from(uptr).map_err(|_| EFAULT)?;
        Ok(Self(bindings::iommu_user_data {
            type_,
            uptr: kernel::uaccess::UserPtr::from_addr(uptr).as_mut_ptr(),
            len: usize::try_from(len).map_err(|_| EINVAL)?,
        }))
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len
    }

    /// The C struct, for the drivers that read it.
    pub(crate) fn as_raw(&self) -> &bindings::iommu_user_data {
        &self.0
    }
}

/// An array of user data entries a driver reads itself (`struct iommu_user_data_array`); the
/// driver writes back how many it handled.
///
/// # Invariants
///
/// As for [`UserData`]: `uptr`, `entry_len` and `entry_num` are what userspace passed.
#[repr(transparent)]
pub(crate) struct UserDataArray(bindings::iommu_user_data_array);

impl UserDataArray {
    /// `entry_num` entries of `entry_len` bytes of driver type `type_` at user address `uptr`:
    /// `EFAULT` for an address that does not fit this machine.
    pub(crate) fn new(type_: u32, uptr: u64, entry_len: u32, entry_num: u32) -> Result<Self> {
        let uptr = usize::try_from(uptr).map_err(|_| EFAULT)?;
        Ok(Self(bindings::iommu_user_data_array {
            type_,
            uptr: kernel::uaccess::UserPtr::from_addr(uptr).as_mut_ptr(),
            entry_len: usize::try_from(entry_len).map_err(|_| EINVAL)?,
            entry_num,
        }))
    }

    /// How many entries: as passed, or after the driver ran, as many as it handled.
    pub(crate) fn entry_num(&self) -> u32 {
        self.0.entry_num
    }

    /// The C struct, for the drivers that read it and write back
    /// `entry_num`.
    pub(crate) fn as_raw_mut(&mut self) -> &mut bindings::iommu_user_data_array {
        &mut self.0
    }
}

/// Page frame numbers and `struct page`s (would sit in `abstractions/mm/`; kept here until
/// that module has them).
pub(crate) mod page {
    use kernel::bindings;

    // `pfn_to_page()` below is arithmetic only on this memory model.
    #[cfg(not(CONFIG_SPARSEMEM_VMEMMAP))]
    compile_error!("iommufd-rs expects CONFIG_SPARSEMEM_VMEMMAP");

    /// The `struct page` of page frame `pfn` (`pfn_to_page()`). With SPARSEMEM_VMEMMAP this is
    /// `vmemmap + pfn`, reading nothing; the pointer names a valid page only for a `pfn` of
    /// memory the caller knows (pinned pages), and only then may it be used.
    #[inline]
    pub(crate) fn pfn_to_page(pfn: usize) -> *mut bindings::page {
        // SAFETY: pointer arithmetic only (the memory model above); nothing is dereferenced.
        unsafe { crate::ffi::shim::iommufd_rs_pfn_to_page(pfn) }
    }
}

/// `mmap()` of a physical range into a VMA (`io_remap_pfn_range()`, uncached), with an owner
/// the mapping keeps until its last VMA goes (would sit in `abstractions/mm/`).
pub(crate) mod phys_mmap {
    use core::ffi::c_void;
    use kernel::{
        mm::virt::VmaNew,
        prelude::*,
        sync::{
            Arc,
            ArcBorrow, //
        },
    };

    /// What a mapping keeps: told once per VMA that maps it (`mmap`, split, fork) and once per
    /// VMA that goes.
    pub(crate) trait Owner: Send + Sync {
        /// One more VMA maps the range.
        fn hold(&self);
        /// A VMA that mapped the range went.
        fn release(&self);
    }

    /// The VMAs' private data: one reference per VMA.
    struct Keeper(Arc<dyn Owner>);

    /// The page offset the VMA is being mapped at (`vm_pgoff`).
    pub(crate) fn pgoff(vma: &VmaNew) -> usize {
        // SAFETY: a VMA being set up, live for the borrow.
        unsafe { crate::ffi::shim::iommufd_rs_vma_pgoff(vma.as_ptr()) }
    }

    /// Maps the whole VMA, shared and uncached, to the physical range at `phys`; on success the
    /// VMA (and each copy of it) keeps `owner` and tells it (`Owner::hold`) until it goes.
    ///
    /// The range must be one the owner keeps for as long as it is held: userspace reaches it
    /// directly.
    pub(crate) fn map(vma: &VmaNew, phys: u64, owner: Arc<dyn Owner>) -> Result {
        let keeper = Arc::new(Keeper(owner), GFP_KERNEL_ACCOUNT)?;
        keeper.0.hold();
        let raw = Arc::into_raw(keeper);
        // SAFETY: the VMA is being set up by our mmap handler; on success it keeps `raw` (one
        // reference) until its close op gives it back through `iommufd_rs_vma_release`.
        let rc = unsafe {
            crate::ffi::shim::iommufd_rs_mmap_phys(vma.as_ptr(), raw.cast_mut().cast(), phys)
        };
        if rc != 0 {
            // SAFETY: the reference `into_raw` gave, which the VMA did not take.
            unsafe { release(raw.cast_mut().cast()) };
            return Err(Error::from_errno(rc));
        }
        Ok(())
    }

    /// A mapping was duplicated (VMA split or copy): one more reference and hold.
    ///
    /// # Safety
    ///
    /// `owner` is the private data [`map`] gave a VMA, still held by it.
    #[no_mangle]
    pub(crate) unsafe extern "C" fn iommufd_rs_vma_hold(owner: *mut c_void) {
        // SAFETY: the caller's guarantee: `owner` is a live `Arc<Keeper>` reference.
        let b = unsafe { ArcBorrow::from_raw(owner.cast::<Keeper>().cast_const()) };
        let keeper: Arc<Keeper> = b.into();
        keeper.0.hold();
        // The new VMA keeps this reference until its close op.
        let _ = Arc::into_raw(keeper);
    }

    /// A mapping went: its hold and reference go.
    ///
    /// # Safety
    ///
    /// As for [`iommufd_rs_vma_hold`]; called once per reference.
    #[no_mangle]
    pub(crate) unsafe extern "C" fn iommufd_rs_vma_release(owner: *mut c_void) {
        // SAFETY: the caller's guarantee.
        unsafe { release(owner) };
    }

    /// Gives back one reference and hold of `owner`.
    ///
    /// # Safety
    ///
    /// `owner` is a `Keeper` reference from [`map`] (or taken again by a hold), given back once.
    unsafe fn release(owner: *mut c_void) {
        // SAFETY: the caller's guarantee: `owner` came from `Arc::into_raw`; this gives back
        // one reference.
        let keeper = unsafe { Arc::from_raw(owner.cast::<Keeper>().cast_const()) };
        keeper.0.release();
    }
}
