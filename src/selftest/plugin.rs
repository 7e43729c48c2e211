// SPDX-License-Identifier: GPL-2.0
//! How the selftest plugs into the core: at module init it registers the mock IOMMU with the
//! IOMMU core and, with the core's registries, its answers for mock devices (`hwpt::driver`),
//! its vIOMMU driver (`viommu::driver`), its dma-buf exporter (`pages::exporter`) and the
//! `IOMMU_TEST_CMD` row (`context::ioctl_ext`); at module exit it takes them all back. The core
//! names none of this.

use kernel::{
    bindings,
    prelude::*, //
};

use crate::{
    context::ioctl::Op,
    context::ioctl_ext,
    context::registry::Registration,
    hwpt::device::Device,
    hwpt::driver::{
        self as iommu_driver,
        IommuDriver, //
    },
    hwpt::HwptPaging,
    pages::exporter::{
        self,
        DmaBufExporter, //
    },
    selftest::mock,
    selftest::mock_viommu,
    selftest::uapi as t,
    viommu::driver::{
        self as viommu_driver,
        ViommuDriver, //
    },
    viommu::{
        MmapAlloc,
        ViommuOps, //
    },
};

/// The mock IOMMU, as the core's registries know it.
struct MockDriver;

impl IommuDriver for MockDriver {
    fn drives(&self, dev: *mut bindings::device) -> bool {
        mock::is_mock(dev)
    }

    /// Mock devices do no DMA of their own and raise no interrupts.
    fn msi_safe(&self) -> bool {
        true
    }

    /// A mock device is bound by its selftest object, one of the context's objects.
    fn binds_from_context(&self) -> bool {
        true
    }
}

impl ViommuDriver for MockDriver {
    fn drives(&self, dev: &Device) -> bool {
        mock::is_mock(dev.as_raw())
    }

    fn supports(&self, _dev: &Device, viommu_type: u32) -> bool {
        viommu_type == t::IOMMU_VIOMMU_TYPE_SELFTEST
    }

    fn init(
        &self,
        _dev: &Device,
        viommu_type: u32,
        parent: &HwptPaging,
        data: Option<&bindings::iommu_user_data>,
        mmap: &mut MmapAlloc<'_>,
    ) -> Result<KBox<dyn ViommuOps>> {
        mock_viommu::viommu_init(viommu_type, parent.domain().as_raw(), data, mmap)
    }
}

/// The selftest's dma-buf exporter (`IOMMU_TEST_OP_DMABUF_GET`).
struct TestExporter;

impl DmaBufExporter for TestExporter {
    fn phys_range(&self, attach: *mut bindings::dma_buf_attachment) -> Option<Result<(u64, u64)>> {
        super::test_dmabuf_range(attach)
    }
}

/// Builds an [`Op`] constant for `$cmd`, its argument struct `$ty` and its last mandatory field,
/// as a row of the ioctl table is built.
macro_rules! ioctl_row {
    ($cmd:expr, $execute:path, $ty:ty, $last:ident) => {{
        const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
            core::mem::size_of::<F>()
        }
        Op::new(
            $cmd,
            core::mem::size_of::<$ty>(),
            core::mem::offset_of!($ty, $last) + field_size(|s: &$ty| &s.$last),
            $execute,
        )
    }};
}

static MOCK_DRIVER: MockDriver = MockDriver;
static TEST_EXPORTER: TestExporter = TestExporter;
static TEST_CMD: Op = ioctl_row!(
    t::IOMMU_TEST_CMD,
    super::test_ioctl,
    t::iommu_test_cmd,
    last
);

/// Everything the selftest registered; dropping it (module exit) unregisters in turn: first the
/// ioctl row, so no new test command starts, last the mock IOMMU.
pub(crate) struct Selftest {
    _cmd: Registration,
    _exporter: Registration,
    _viommu: Registration,
    _iommu_driver: Registration,
    _mock: mock::MockIommu,
}

impl Selftest {
    /// Registers the selftest; called once, from module init.
    pub(crate) fn register(module: &'static ThisModule) -> Result<Self> {
        super::init_statics(module);
        // The mock IOMMU first: the registrations below speak of its devices.
        let mock = mock::MockIommu::register(module)?;
        Ok(Self {
            _iommu_driver: iommu_driver::DRIVERS.register(&MOCK_DRIVER)?,
            _viommu: viommu_driver::DRIVERS.register(&MOCK_DRIVER)?,
            _exporter: exporter::EXPORTERS.register(&TEST_EXPORTER)?,
            _cmd: ioctl_ext::register(&TEST_CMD)?,
            _mock: mock,
        })
    }
}

impl Drop for Selftest {
    fn drop(&mut self) {
        // The temporary memory limit a test may have left lowered goes back to its default.
        crate::pages::batch_limit::reset();
    }
}
