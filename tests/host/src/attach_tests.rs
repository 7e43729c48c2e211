// SPDX-License-Identifier: GPL-2.0
//! Tests of `pure::attach`: the PRI-on-a-VF rule of upstream's
//! `iommufd_hwpt_compatible_device()` and the MSI region rule of
//! `iopt_table_enforce_dev_resv_regions()`. Neither can be reached in the test VM (QEMU emulates
//! no VF with PRI; VT-d reports one IOMMU_RESV_MSI region, the mock no region at all), so these
//! are their tests.

use crate::pure::attach::{
    hwpt_compatible_device,
    MsiRegions,
    PciFacts,
    ResvKind, //
};
use proptest::prelude::*;

const VF_PRI: PciFacts = PciFacts {
    is_virtfn: true,
    pri_supported: true,
};

#[test]
fn a_vf_with_pri_cannot_take_a_fault_capable_hwpt() {
    assert!(!hwpt_compatible_device(true, Some(VF_PRI)));
}

#[test]
fn everything_else_may_attach() {
    for fault in [false, true] {
        // Not PCI (the mock device, a platform device).
        assert!(hwpt_compatible_device(fault, None));
        for is_virtfn in [false, true] {
            for pri_supported in [false, true] {
                let pci = PciFacts {
                    is_virtfn,
                    pri_supported,
                };
                let refused = fault && is_virtfn && pri_supported;
                assert_eq!(
                    hwpt_compatible_device(fault, Some(pci)),
                    !refused,
                    "{pci:?} {fault}"
                );
            }
        }
    }
}

fn regions(kinds: &[ResvKind]) -> MsiRegions {
    let mut m = MsiRegions::default();
    for &k in kinds {
        m.count(k);
    }
    m
}

#[test]
fn the_drivers_we_meet_are_sane() {
    use ResvKind::*;
    // The mock: no regions. VT-d: the interrupt window (MSI), maybe RMRRs (direct).
    assert!(regions(&[]).sane());
    assert!(regions(&[Msi]).sane());
    assert!(regions(&[Other, Msi, Other]).sane());
    // SMMUv3: one software MSI window.
    assert!(regions(&[SwMsi, Other]).sane());
}

#[test]
fn mixed_or_doubled_software_msi_is_refused() {
    use ResvKind::*;
    assert!(!regions(&[SwMsi, Msi]).sane());
    assert!(!regions(&[Msi, Other, SwMsi]).sane());
    assert!(!regions(&[SwMsi, SwMsi]).sane());
}

fn kind() -> impl Strategy<Value = ResvKind> {
    prop_oneof![
        Just(ResvKind::Msi),
        Just(ResvKind::SwMsi),
        Just(ResvKind::Other)
    ]
}

proptest! {
    /// Upstream's condition, `!(num_sw_msi && num_hw_msi) && !(num_sw_msi > 1)`, in any order.
    #[test]
    fn sane_is_upstreams_rule(kinds in prop::collection::vec(kind(), 0..8)) {
        let hw = kinds.iter().filter(|k| **k == ResvKind::Msi).count();
        let sw = kinds.iter().filter(|k| **k == ResvKind::SwMsi).count();
        prop_assert_eq!(regions(&kinds).sane(), !(sw != 0 && hw != 0) && sw <= 1);
    }
}
