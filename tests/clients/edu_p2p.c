// SPDX-License-Identifier: GPL-2.0
/*
 * Peer-to-peer DMA through a vfio-pci dma-buf: edu device A's BAR0, exported by vfio-pci as a
 * dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF), is mapped into an IOAS with IOMMU_IOAS_MAP_FILE; edu
 * device B, attached to that IOAS (a VT-d domain), DMAs into the IOVA and the bytes land in A's
 * registers. The module reads the BAR's physical range from vfio-pci's private interface
 * (vfio_pci_dma_buf_iommufd_map, exported for the module named iommufd).
 *
 * The target is A's liveness register (BAR0 + 0x04), which reads back the complement of what was
 * written last: B copies a value from memory into its own buffer and from there to the IOVA of
 * A's register, and A then reads back its complement. After IOMMU_IOAS_UNMAP of the dma-buf the
 * same DMA must not reach A.
 *
 * Needs a kernel whose vfio-pci exports dma-bufs (CONFIG_VFIO_PCI_DMABUF, which needs
 * CONFIG_PCI_P2PDMA); without one the test is skipped.
 *
 * Usage: edu_p2p <vfio cdev of A> <vfio cdev of B>   Prints TAP.
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

#include "kselftest_harness.h"
#include "edu.h"

/* edu masks DMA addresses to 28 bits: IOVAs below 256 MiB */
#define SRC_IOVA	0x100000UL
#define BAR_IOVA	0x1000000UL
#define PAGE		4096UL

static const char *cdev_a, *cdev_b;

/* An edu device opened through its cdev and bound to @iommufd, BAR0 mmapped. */
struct edu {
	int fd;
	uint32_t devid;
	volatile uint8_t *bar0;
	uint64_t bar0_size;
};

static void edu_open(struct __test_metadata *_metadata, struct edu *e, const char *path,
		     int iommufd)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t command;

	e->fd = open(path, O_RDWR);
	ASSERT_LE(0, e->fd) TH_LOG("open %s: %s", path, strerror(errno));
	ASSERT_EQ(0, ioctl(e->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	e->devid = bind.out_devid;
	ASSERT_EQ(0, ioctl(e->fd, VFIO_DEVICE_GET_REGION_INFO, &bar));
	e->bar0_size = bar.size;
	e->bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, bar.offset);
	ASSERT_NE(MAP_FAILED, e->bar0);
	/* Memory decoding (a disabled BAR revokes its dma-bufs) and bus mastering on. */
	ASSERT_EQ(0, ioctl(e->fd, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	ASSERT_EQ(2, pread(e->fd, &command, 2, cfg.offset + 4));
	command |= 0x6;
	ASSERT_EQ(2, pwrite(e->fd, &command, 2, cfg.offset + 4));
	ASSERT_EQ(0x010000edU, rd32(e->bar0, EDU_IDENT) & 0xff0000ffU);
}

/* A dma-buf of BAR0 of @e, from vfio-pci; -1 with errno set if it exports none. */
static int bar0_dmabuf(struct edu *e)
{
	struct {
		struct vfio_device_feature feature;
		struct vfio_device_feature_dma_buf get;
		struct vfio_region_dma_range range;
	} __attribute__((packed)) arg = {
		.feature = {
			.argsz = sizeof(arg),
			.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF,
		},
		.get = {
			.region_index = VFIO_PCI_BAR0_REGION_INDEX,
			.open_flags = O_RDWR | O_CLOEXEC,
			.nr_ranges = 1,
		},
		.range = { .offset = 0, .length = e->bar0_size },
	};

	return ioctl(e->fd, VFIO_DEVICE_FEATURE, &arg);
}

static int map_file(int iommufd, uint32_t ioas, int dfd, uint64_t len, uint64_t iova)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.fd = dfd,
		.start = 0,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &cmd);
}

/* B writes @val into A's liveness register by DMA to its IOVA. */
static int p2p_write(struct edu *b, uint32_t *src, uint32_t val)
{
	*src = val;
	if (edu_run_dma(b->bar0, SRC_IOVA, EDU_BUF, 4, 0))
		return -1;
	return edu_run_dma(b->bar0, EDU_BUF, BAR_IOVA + EDU_LIVENESS, 4, EDU_CMD_TO_RAM);
}

TEST(edu_p2p_dmabuf)
{
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = PAGE,
		.iova = SRC_IOVA,
	};
	struct iommu_ioas_unmap unmap = { .size = sizeof(unmap), .iova = BAR_IOVA };
	struct edu a = { .fd = -1 }, b = { .fd = -1 };
	int iommufd, dfd;
	uint32_t *src;

	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc));
	edu_open(_metadata, &a, cdev_a, iommufd);
	edu_open(_metadata, &b, cdev_b, iommufd);

	dfd = bar0_dmabuf(&a);
	if (dfd < 0)
		SKIP(return, "vfio-pci exports no dma-buf of BAR0 (%s): a kernel without "
			     "CONFIG_VFIO_PCI_DMABUF?", strerror(errno));

	ASSERT_EQ(0, map_file(iommufd, alloc.out_ioas_id, dfd, a.bar0_size, BAR_IOVA))
		TH_LOG("IOMMU_IOAS_MAP_FILE of a vfio-pci dma-buf: %s", strerror(errno));
	src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	map.ioas_id = alloc.out_ioas_id;
	map.user_va = (uintptr_t)src;
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_MAP, &map));
	attach.pt_id = alloc.out_ioas_id;
	ASSERT_EQ(0, ioctl(b.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno));

	/* The liveness register holds the complement of the last value written. */
	ASSERT_EQ(0, p2p_write(&b, src, 0x12345678));
	EXPECT_EQ(~0x12345678U, rd32(a.bar0, EDU_LIVENESS));
	ASSERT_EQ(0, p2p_write(&b, src, 0xa5a5f00d));
	EXPECT_EQ(~0xa5a5f00dU, rd32(a.bar0, EDU_LIVENESS));

	/* Unmapped, B's DMA no longer reaches A. */
	unmap.ioas_id = alloc.out_ioas_id;
	unmap.length = a.bar0_size;
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap));
	ASSERT_EQ(0, p2p_write(&b, src, 0x0badcafe));
	EXPECT_EQ(~0xa5a5f00dU, rd32(a.bar0, EDU_LIVENESS));

	close(dfd);
	munmap((void *)a.bar0, a.bar0_size);
	munmap((void *)b.bar0, b.bar0_size);
	close(b.fd);
	close(a.fd);
	close(iommufd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s <vfio cdev of A> <vfio cdev of B>\n", argv[0]);
		return 2;
	}
	cdev_a = argv[1];
	cdev_b = argv[2];
	return test_harness_run(1, argv);
}
