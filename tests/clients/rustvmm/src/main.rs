// SPDX-License-Identifier: GPL-2.0
//! One edu DMA round trip (RAM -> edu -> RAM) through a VFIO device cdev bound to an iommufd
//! context, driven with rust-vmm's `vfio-ioctls` (feature `vfio_cdev`) and `iommufd-ioctls`:
//! the same path a rust-vmm VMM (cloud-hypervisor) takes to hand a device to a guest.
//! The Rust counterpart of ../edu_dma.c's first test; runs against whichever iommufd module
//! is loaded.
//!
//! Usage: rust-vmm-vfio /dev/vfio/devices/vfioN   (QEMU's edu, 1234:11e8, bound to vfio-pci)
//! Prints TAP on stdout.

use std::fs::{File, OpenOptions};
use std::panic;
use std::ptr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use iommufd_ioctls::{IommuFd, IommufdIoas};
use vfio_ioctls::{VfioDevice, VfioIommufd};

const TEST_NAME: &str = "rust_vmm_vfio";

// VFIO region indexes of a vfio-pci device and region flags (include/uapi/linux/vfio.h).
const BAR0_REGION: u32 = 0;
const CONFIG_REGION: u32 = 7;
const REGION_FLAG_MMAP: u32 = 1 << 2;
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MASTER: u16 = 0x4;

// edu's registers (QEMU docs/specs/edu.rst).
const EDU_IDENT: usize = 0x00;
const EDU_DMA_SRC: usize = 0x80;
const EDU_DMA_DST: usize = 0x88;
const EDU_DMA_CNT: usize = 0x90;
const EDU_DMA_CMD: usize = 0x98;
const EDU_CMD_START: u64 = 0x1;
const EDU_CMD_TO_RAM: u64 = 0x2;
// edu's own 4 KiB DMA buffer, in its DMA address space.
const EDU_BUF: u64 = 0x40000;
// edu masks DMA addresses to 28 bits: IOVAs below 256 MiB.
const SRC_IOVA: u64 = 0x100000;
const DST_IOVA: u64 = 0x200000;
const LEN: usize = 4096;

type Res<T> = Result<T, String>;

/// An error and its sources, for a one-line reason: the crates' errors either print their
/// source themselves or leave it to the chain, so sources already printed are skipped.
fn chain(what: &str, e: &dyn std::error::Error) -> String {
    let mut out = format!("{what}: {e}");
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out = format!("{out}: {msg}");
        }
        cur = s.source();
    }
    out
}

/// Anonymous private memory of one page, unmapped on drop. Only ever touched through raw
/// pointers: the device reads and writes it behind the compiler's back.
struct Page(*mut u8);

impl Page {
    fn new() -> Res<Self> {
        // SAFETY: a fresh anonymous mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap buffer: {}", std::io::Error::last_os_error()));
        }
        Ok(Page(p.cast()))
    }

    fn write(&self, i: usize, v: u8) {
        assert!(i < LEN);
        // SAFETY: inside the mapping.
        unsafe { ptr::write_volatile(self.0.add(i), v) }
    }

    fn read(&self, i: usize) -> u8 {
        assert!(i < LEN);
        // SAFETY: inside the mapping.
        unsafe { ptr::read_volatile(self.0.add(i)) }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no references into it outlive us.
        unsafe { libc::munmap(self.0.cast(), LEN) };
    }
}

/// BAR0 of the device mapped through the VFIO device fd, unmapped on drop.
struct Bar {
    base: *mut u8,
    size: usize,
}

impl Bar {
    fn map(dev: &VfioDevice, index: u32) -> Res<Self> {
        use std::os::unix::io::AsRawFd;

        let flags = dev.get_region_flags(index);
        let size = dev.get_region_size(index) as usize;
        let offset = dev.get_region_offset(index);
        if flags & REGION_FLAG_MMAP == 0 {
            return Err(format!(
                "region {index} is not mmap-able (flags {flags:#x})"
            ));
        }
        if size < LEN {
            return Err(format!(
                "region {index} is {size:#x} bytes, edu's BAR0 is 1 MiB"
            ));
        }
        // SAFETY: maps the region at the offset VFIO gave for it; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                dev.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap BAR{index}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Bar {
            base: p.cast(),
            size,
        })
    }

    fn rd32(&self, off: usize) -> u32 {
        assert!(off + 4 <= self.size);
        // SAFETY: aligned MMIO read inside the mapped BAR.
        unsafe { ptr::read_volatile(self.base.add(off).cast::<u32>()) }
    }

    fn rd64(&self, off: usize) -> u64 {
        assert!(off + 8 <= self.size);
        // SAFETY: aligned MMIO read inside the mapped BAR.
        unsafe { ptr::read_volatile(self.base.add(off).cast::<u64>()) }
    }

    fn wr64(&self, off: usize, v: u64) {
        assert!(off + 8 <= self.size);
        // SAFETY: aligned MMIO write inside the mapped BAR.
        unsafe { ptr::write_volatile(self.base.add(off).cast::<u64>(), v) }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.base.cast(), self.size) };
    }
}

/// Runs one edu DMA of LEN bytes and waits until the device clears the start bit.
fn edu_dma(bar: &Bar, src: u64, dst: u64, cmd: u64) -> Res<()> {
    fence(Ordering::SeqCst);
    bar.wr64(EDU_DMA_SRC, src);
    bar.wr64(EDU_DMA_DST, dst);
    bar.wr64(EDU_DMA_CNT, LEN as u64);
    bar.wr64(EDU_DMA_CMD, cmd | EDU_CMD_START);
    for _ in 0..5000 {
        if bar.rd64(EDU_DMA_CMD) & EDU_CMD_START == 0 {
            fence(Ordering::SeqCst);
            return Ok(());
        }
        sleep(Duration::from_millis(1));
    }
    Err(format!(
        "edu DMA {src:#x} -> {dst:#x} did not finish within 5 s"
    ))
}

/// Sets bus mastering through the config region (and reads it back: the crate's region
/// accessors only log their failures).
fn enable_bus_master(dev: &VfioDevice) -> Res<()> {
    let mut cmd = [0u8; 2];
    dev.region_read(CONFIG_REGION, &mut cmd, PCI_COMMAND);
    let cmd = u16::from_le_bytes(cmd) | PCI_COMMAND_MASTER;
    dev.region_write(CONFIG_REGION, &cmd.to_le_bytes(), PCI_COMMAND);
    let mut back = [0u8; 2];
    dev.region_read(CONFIG_REGION, &mut back, PCI_COMMAND);
    let back = u16::from_le_bytes(back);
    if back & PCI_COMMAND_MASTER == 0 {
        return Err(format!(
            "PCI_COMMAND reads {back:#06x} after setting bus master"
        ));
    }
    Ok(())
}

fn run(cdev_path: &str) -> Res<()> {
    // /dev/iommu and an IOAS, through iommufd-ioctls.
    let iommufd = Arc::new(IommuFd::new().map_err(|e| chain("open /dev/iommu", &e))?);
    let ioas = Arc::new(
        IommufdIoas::new(Arc::clone(&iommufd)).map_err(|e| chain("IOMMU_IOAS_ALLOC", &e))?,
    );
    // vfio-ioctls' handle on that iommufd context and IOAS (no KVM device to tell about the
    // cdev: this is no VM).
    let vfio = Arc::new(
        VfioIommufd::new(Arc::clone(&iommufd), Some(Arc::clone(&ioas)), None)
            .map_err(|e| chain("VfioIommufd::new", &e))?,
    );

    let src = Page::new()?;
    let dst = Page::new()?;
    for i in 0..LEN {
        src.write(i, (i * 7 + 3) as u8);
        dst.write(i, 0);
    }
    // IOMMU_IOAS_MAP with FIXED_IOVA | READABLE | WRITEABLE.
    // SAFETY: both pages stay mapped until after the unmaps below, and are only reached
    // through raw pointers.
    unsafe {
        vfio.vfio_dma_map(SRC_IOVA, LEN, src.0)
            .map_err(|e| chain("IOMMU_IOAS_MAP src", &e))?;
        vfio.vfio_dma_map(DST_IOVA, LEN, dst.0)
            .map_err(|e| chain("IOMMU_IOAS_MAP dst", &e))?;
    }

    // The device cdev: VFIO_DEVICE_BIND_IOMMUFD, then VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS.
    let cdev: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(cdev_path)
        .map_err(|e| format!("open {cdev_path}: {e}"))?;
    let dev = VfioDevice::new_from_fd(cdev, Arc::clone(&vfio), true)
        .map_err(|e| chain(&format!("bind/attach {cdev_path}"), &e))?;
    let devid = dev.iommufd_dev_id();
    if devid.is_none() {
        return Err("VFIO_DEVICE_BIND_IOMMUFD gave no device id".into());
    }

    let result = (|| -> Res<()> {
        let bar = Bar::map(&dev, BAR0_REGION)?;
        enable_bus_master(&dev)?;
        let ident = bar.rd32(EDU_IDENT);
        if ident & 0xff0000ff != 0x010000ed {
            return Err(format!("edu ident reads {ident:#010x}, not 0x010000ed"));
        }

        edu_dma(&bar, SRC_IOVA, EDU_BUF, 0)?;
        edu_dma(&bar, EDU_BUF, DST_IOVA, EDU_CMD_TO_RAM)?;
        if let Some(i) = (0..LEN).find(|&i| src.read(i) != dst.read(i)) {
            return Err(format!(
                "byte {i}: destination {:#04x}, source {:#04x}",
                dst.read(i),
                src.read(i)
            ));
        }
        Ok(())
    })();

    // Tear down in order, whether the DMA passed or not: detach (VfioDevice's drop detaches
    // again, which the kernel takes as a no-op), close the cdev (unbinds), unmap, destroy the
    // IOAS (IommufdIoas' drop), close /dev/iommu.
    let detach = dev.detach_hwpt().map_err(|e| chain("detach", &e));
    drop(dev);
    let unmap = vfio
        .vfio_dma_unmap(SRC_IOVA, LEN)
        .and_then(|()| vfio.vfio_dma_unmap(DST_IOVA, LEN))
        .map_err(|e| chain("IOMMU_IOAS_UNMAP", &e));
    drop(vfio);
    drop(ioas);
    drop(iommufd);
    drop(src);
    drop(dst);

    result?;
    detach?;
    unmap
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: {} /dev/vfio/devices/vfioN", args[0]);
        std::process::exit(2);
    }
    println!("TAP version 13");
    println!("1..1");
    let outcome = panic::catch_unwind(|| run(&args[1])).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(format!("panicked: {msg}"))
    });
    match outcome {
        Ok(()) => println!("ok 1 {TEST_NAME}"),
        Err(reason) => {
            println!("not ok 1 {TEST_NAME}");
            println!("# reason: {}", reason.replace('\n', " "));
            std::process::exit(1);
        }
    }
}
