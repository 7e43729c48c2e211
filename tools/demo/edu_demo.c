// SPDX-License-Identifier: GPL-2.0
/*
 * `make demo`, second act: a real device doing DMA through page tables our iommufd built.
 * QEMU's edu device, bound to vfio-pci, is driven through its VFIO cdev on /dev/iommu, step by
 * step, printing what each step did.
 *
 * Usage: edu_demo /dev/vfio/devices/vfioN
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#define SRC_IOVA 0x100000UL
#define DST_IOVA 0x200000UL
#define LEN 4096UL
#define EDU_BUF 0x40000UL

static void die(const char *what)
{
	fprintf(stderr, "   FAILED: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void step(const char *fmt, const char *detail)
{
	printf("-- %s%s%s\n", fmt, detail ? ": " : "", detail ? detail : "");
}

static volatile uint64_t *reg(volatile uint8_t *bar, unsigned int off)
{
	return (volatile uint64_t *)(bar + off);
}

static int dma(volatile uint8_t *bar, uint64_t src, uint64_t dst, uint64_t cmd)
{
	struct timespec ts = { 0, 1000000 };
	int i;

	*reg(bar, 0x80) = src;
	*reg(bar, 0x88) = dst;
	*reg(bar, 0x90) = LEN;
	*reg(bar, 0x98) = cmd | 1;
	for (i = 0; i < 5000; i++) {
		if (!(*reg(bar, 0x98) & 1))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void map(int fd, uint32_t ioas, void *va, uint64_t iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = LEN,
		.iova = iova,
	};

	if (ioctl(fd, IOMMU_IOAS_MAP, &m))
		die("IOMMU_IOAS_MAP");
	printf("   IOVA 0x%llx -> user page %p, pinned and written into the VT-d page table\n",
	       (unsigned long long)iova, va);
}

int main(int argc, char **argv)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_iova_range ranges[8];
	struct iommu_ioas_iova_ranges rq = { .size = sizeof(rq), .num_iovas = 8 };
	struct iommu_ioas_unmap unmap = { .size = sizeof(unmap), .iova = DST_IOVA, .length = LEN };
	uint64_t hw[64] = { 0 };
	struct iommu_hw_info info = { .size = sizeof(info), .data_len = sizeof(hw) };
	volatile uint8_t *bar0;
	uint8_t *src, *dst;
	uint16_t command;
	int fd, dev, ok;
	unsigned int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s /dev/vfio/devices/vfioN\n", argv[0]);
		return 2;
	}
	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		die("open /dev/iommu");
	step("opened /dev/iommu", NULL);
	dev = open(argv[1], O_RDWR);
	if (dev < 0)
		die(argv[1]);
	bind.iommufd = fd;
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	printf("-- VFIO_DEVICE_BIND_IOMMUFD on %s: vfio-pci called our iommufd_device_bind(), device ID %u\n",
	       argv[1], bind.out_devid);

	info.dev_id = bind.out_devid;
	info.data_uptr = (uintptr_t)hw;
	if (ioctl(fd, IOMMU_GET_HW_INFO, &info))
		die("IOMMU_GET_HW_INFO");
	printf("-- IOMMU_GET_HW_INFO: type %u (%s), %u bytes, cap 0x%llx ecap 0x%llx, PASID bits %u\n",
	       info.out_data_type,
	       info.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD ? "Intel VT-d" : "other",
	       info.data_len, (unsigned long long)hw[1], (unsigned long long)hw[2],
	       info.out_max_pasid_log2);

	if (ioctl(fd, IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	printf("-- IOMMU_IOAS_ALLOC: IOAS %u\n", alloc.out_ioas_id);
	src = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED)
		die("mmap");

	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("-- VFIO_DEVICE_ATTACH_IOMMUFD_PT to IOAS %u: our module allocated a VT-d paging domain, HWPT %u\n",
	       alloc.out_ioas_id, attach.pt_id);
	rq.ioas_id = alloc.out_ioas_id;
	rq.allowed_iovas = (uintptr_t)ranges;
	if (ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rq))
		die("IOMMU_IOAS_IOVA_RANGES");
	printf("-- IOMMU_IOAS_IOVA_RANGES: %u usable ranges (the MSI window is reserved):\n", rq.num_iovas);
	for (i = 0; i < rq.num_iovas && i < 8; i++)
		printf("   0x%016llx - 0x%016llx\n", (unsigned long long)ranges[i].start,
		       (unsigned long long)ranges[i].last);

	step("IOMMU_IOAS_MAP", "two pages for the device");
	map(fd, alloc.out_ioas_id, src, SRC_IOVA);
	map(fd, alloc.out_ioas_id, dst, DST_IOVA);

	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &bar) ||
	    ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		die("VFIO_DEVICE_GET_REGION_INFO");
	bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, bar.offset);
	if (bar0 == MAP_FAILED)
		die("mmap BAR0");
	if (pread(dev, &command, 2, cfg.offset + 4) != 2)
		die("read PCI command");
	command |= 0x4;
	if (pwrite(dev, &command, 2, cfg.offset + 4) != 2)
		die("enable bus mastering");
	printf("-- BAR0 mapped, bus mastering on; edu identifies as 0x%08x\n",
	       *(volatile uint32_t *)bar0);

	for (i = 0; i < LEN; i++)
		src[i] = (uint8_t)(i * 13 + 1);
	memset(dst, 0, LEN);
	if (dma(bar0, SRC_IOVA, EDU_BUF, 0) || dma(bar0, EDU_BUF, DST_IOVA, 2))
		die("edu DMA did not complete");
	ok = !memcmp(src, dst, LEN);
	printf("-- edu DMA: IOVA 0x%lx -> edu buffer -> IOVA 0x%lx: %s\n", SRC_IOVA, DST_IOVA,
	       ok ? "4096 bytes arrived intact" : "DATA MISMATCH");
	if (!ok)
		return 1;

	unmap.ioas_id = alloc.out_ioas_id;
	if (ioctl(fd, IOMMU_IOAS_UNMAP, &unmap))
		die("IOMMU_IOAS_UNMAP");
	printf("-- IOMMU_IOAS_UNMAP of IOVA 0x%lx: %llu bytes unmapped, page unpinned\n", DST_IOVA,
	       (unsigned long long)unmap.length);
	memset(dst, 0, LEN);
	if (dma(bar0, EDU_BUF, DST_IOVA, 2))
		die("edu DMA did not complete");
	for (i = 0, ok = 1; i < LEN; i++)
		ok &= !dst[i];
	printf("-- edu DMA to the unmapped IOVA: %s (see the DMAR fault below)\n",
	       ok ? "blocked by the IOMMU, memory untouched" : "REACHED MEMORY");
	close(dev);
	close(fd);
	return ok ? 0 : 1;
}
