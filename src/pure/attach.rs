// SPDX-License-Identifier: GPL-2.0
//! The rules an attach checks before it asks the IOMMU core (upstream's device.c and
//! io_pagetable.c), on facts the kernel glue reads from the device and its driver.

/// What the fault-capable attach rule needs of a PCI device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PciFacts {
    /// An SR-IOV virtual function (`pdev->is_virtfn`).
    pub(crate) is_virtfn: bool,
    /// PRI is supported (`pci_pri_supported()`: a VF shares its PF's).
    pub(crate) pri_supported: bool,
}

/// Whether a device may attach to (or be replaced onto) a HWPT; upstream's
/// `iommufd_hwpt_compatible_device()`. `pci` is `None` for a device that is not PCI.
///
/// A VF with PRI cannot take a fault-capable HWPT: its page responses go through the PRI
/// interface it shares with the PF and the other VFs, so a failure response it sends would stop
/// PRI for all of them, and nothing coordinates that shared capability.
pub(crate) fn hwpt_compatible_device(hwpt_fault_capable: bool, pci: Option<PciFacts>) -> bool {
    match pci {
        Some(p) if hwpt_fault_capable => !p.is_virtfn || !p.pri_supported,
        _ => true,
    }
}

/// A reserved region's type, as far as the MSI rule cares (`enum iommu_resv_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResvKind {
    /// `IOMMU_RESV_MSI`: the hardware translates MSIs at a fixed window.
    Msi,
    /// `IOMMU_RESV_SW_MSI`: software maps the MSI doorbells into this window.
    SwMsi,
    /// Any other reservation.
    Other,
}

/// The MSI regions a device's driver reports, counted (upstream's `num_hw_msi` and `num_sw_msi`
/// of `iopt_table_enforce_dev_resv_regions()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MsiRegions {
    hw: u32,
    sw: u32,
}

impl MsiRegions {
    pub(crate) fn count(&mut self, kind: ResvKind) {
        match kind {
            ResvKind::Msi => self.hw = self.hw.saturating_add(1),
            ResvKind::SwMsi => self.sw = self.sw.saturating_add(1),
            ResvKind::Other => {}
        }
    }

    /// Whether the combination is one a driver may offer: MSIs are translated either by the
    /// hardware or in one software window, never both, never two windows. Upstream refuses the
    /// attach otherwise (`EINVAL`, with a warning: a driver bug).
    pub(crate) fn sane(&self) -> bool {
        !(self.sw != 0 && self.hw != 0) && self.sw <= 1
    }
}
