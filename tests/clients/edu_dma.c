// SPDX-License-Identifier: GPL-2.0
/*
 * End-to-end DMA through /dev/iommu: QEMU's edu device (1234:11e8), bound to vfio-pci, reached
 * through its VFIO device cdev bound to an iommufd context, DMAs from one IOVA into its own
 * buffer and back out to another IOVA, through the VT-d page tables the iommufd module built.
 * Then the destination is unmapped and the same DMA must no longer reach memory: the
 * destination stays untouched and the IOMMU reports a DMA remapping fault.
 *
 * Usage: edu_dma <vfio cdev path>   (e.g. /dev/vfio/devices/vfio0)
 * Runs against whichever iommufd module is loaded; prints TAP.
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
#include "sysinfo.h"

/* edu masks DMA addresses to 28 bits: IOVAs below 256 MiB */
#define SRC_IOVA	0x100000UL
#define DST_IOVA	0x200000UL
#define LEN		4096UL

static const char *cdev_path;

/* One bound, attached device with two mapped buffers. */
struct edu {
	int iommufd;
	int devfd;
	uint32_t devid;
	uint32_t ioas;
	volatile uint8_t *bar0;
	size_t bar0_size;
	uint8_t *src;
	uint8_t *dst;
};

static int map_fixed(int fd, uint32_t ioas, void *va, uint64_t iova)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = LEN,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &map);
}

static void edu_setup(struct __test_metadata *_metadata, struct edu *self)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	uint16_t command;

	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	self->devfd = open(cdev_path, O_RDWR);
	ASSERT_LE(0, self->devfd) TH_LOG("open %s: %s", cdev_path, strerror(errno));

	bind.iommufd = self->iommufd;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	self->devid = bind.out_devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOC, &alloc));
	self->ioas = alloc.out_ioas_id;

	self->src = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->dst = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->src);
	ASSERT_NE(MAP_FAILED, self->dst);
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, self->src, SRC_IOVA));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, self->dst, DST_IOVA));

	attach.pt_id = self->ioas;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno));
	/* Attaching to an IOAS answers the HWPT the kernel chose for it. */
	ASSERT_NE(self->ioas, attach.pt_id);

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &bar));
	ASSERT_LE(4096, bar.size);
	self->bar0_size = bar.size;
	self->bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, self->devfd,
			  bar.offset);
	ASSERT_NE(MAP_FAILED, self->bar0);

	/* Bus mastering on, or the device's DMA never leaves it. */
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	ASSERT_EQ(2, pread(self->devfd, &command, 2, cfg.offset + 4));
	command |= 0x4;
	ASSERT_EQ(2, pwrite(self->devfd, &command, 2, cfg.offset + 4));

	ASSERT_EQ(0x010000edU, *(volatile uint32_t *)(self->bar0 + EDU_IDENT) & 0xff0000ffU);
}

static void edu_teardown(struct edu *self)
{
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };

	if (self->bar0 && self->bar0 != MAP_FAILED)
		munmap((void *)self->bar0, self->bar0_size);
	if (self->devfd >= 0) {
		ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
		close(self->devfd);
	}
	if (self->iommufd >= 0)
		close(self->iommufd);
}

/* Memory -> edu -> memory through the IOMMU: the bytes arrive where the IOVAs say. */
TEST(edu_dma)
{
	struct edu e = { .iommufd = -1, .devfd = -1 }, *self = &e;
	size_t i;

	edu_setup(_metadata, self);
	for (i = 0; i < LEN; i++)
		self->src[i] = (uint8_t)(i * 7 + 3);
	memset(self->dst, 0, LEN);

	ASSERT_EQ(0, edu_run_dma(self->bar0, SRC_IOVA, EDU_BUF, LEN, 0));
	ASSERT_EQ(0, edu_run_dma(self->bar0, EDU_BUF, DST_IOVA, LEN, EDU_CMD_TO_RAM));
	ASSERT_EQ(0, memcmp(self->src, self->dst, LEN));
	edu_teardown(self);
}

/* After IOMMU_IOAS_UNMAP the device's writes to that IOVA no longer reach memory. */
TEST(edu_dma_after_unmap)
{
	struct edu e = { .iommufd = -1, .devfd = -1 }, *self = &e;
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.iova = DST_IOVA,
		.length = LEN,
	};
	char line[1024];
	int kmsg, faults = 0;
	ssize_t n;
	size_t i;

	edu_setup(_metadata, self);
	unmap.ioas_id = self->ioas;
	for (i = 0; i < LEN; i++)
		self->src[i] = (uint8_t)(i ^ 0x5a);
	memset(self->dst, 0, LEN);
	ASSERT_EQ(0, edu_run_dma(self->bar0, SRC_IOVA, EDU_BUF, LEN, 0));

	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_UNMAP, &unmap));
	ASSERT_EQ(LEN, unmap.length);

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, kmsg);
	lseek(kmsg, 0, SEEK_END);

	ASSERT_EQ(0, edu_run_dma(self->bar0, EDU_BUF, DST_IOVA, LEN, EDU_CMD_TO_RAM));
	for (i = 0; i < LEN; i++)
		ASSERT_EQ(0, self->dst[i]) TH_LOG("byte %zu reached unmapped memory", i);

	/* The fault report may trail the DMA a little. */
	for (i = 0; i < 50 && !faults; i++) {
		while ((n = read(kmsg, line, sizeof(line) - 1)) > 0) {
			line[n] = 0;
			if (strstr(line, "DMAR") && strstr(line, "fault"))
				faults++;
		}
		usleep(20000);
	}
	close(kmsg);
	ASSERT_LT(0, faults) TH_LOG("no DMA remapping fault was reported");
	edu_teardown(self);
}

/* VFIO_DEVICE_ATTACH_IOMMUFD_PT on an attached device replaces its HWPT (iommufd_device_replace):
 * DMA keeps working through the new domain, filled from the same IOAS. */
TEST(edu_dma_after_replace)
{
	struct edu e = { .iommufd = -1, .devfd = -1 }, *self = &e;
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct iommu_hwpt_alloc h = { .size = sizeof(h) };
	size_t i;

	edu_setup(_metadata, self);
	h.pt_id = self->ioas;
	h.dev_id = self->devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &h));
	attach.pt_id = h.out_hwpt_id;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	ASSERT_EQ(h.out_hwpt_id, attach.pt_id);

	for (i = 0; i < LEN; i++)
		self->src[i] = (uint8_t)(i * 3 + 11);
	memset(self->dst, 0, LEN);
	ASSERT_EQ(0, edu_run_dma(self->bar0, SRC_IOVA, EDU_BUF, LEN, 0));
	ASSERT_EQ(0, edu_run_dma(self->bar0, EDU_BUF, DST_IOVA, LEN, EDU_CMD_TO_RAM));
	ASSERT_EQ(0, memcmp(self->src, self->dst, LEN));
	edu_teardown(self);
}

/*
 * The legacy group path with @container_path as the container: the VFIO group is given its fd
 * (VFIO_GROUP_SET_CONTAINER), the VMM picks type1 and maps with the type1 ioctls, and edu DMAs
 * through the result.
 */
static void group_dma(struct __test_metadata *_metadata, const char *container_path)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.size = LEN,
	};
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	char link[512], path[600], group_path[64], bdf[64];
	volatile uint8_t *bar0;
	uint8_t *src, *dst;
	int iommufd, group, dev;
	uint16_t command;
	ssize_t n;
	size_t i;

	/* /sys/class/vfio-dev/vfioN/device -> the PCI device; its iommu_group -> the group. */
	snprintf(path, sizeof(path), "/sys/class/vfio-dev/%s/device", strrchr(cdev_path, '/') + 1);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	snprintf(bdf, sizeof(bdf), "%s", strrchr(link, '/') + 1);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	snprintf(group_path, sizeof(group_path), "/dev/vfio/%s", strrchr(link, '/') + 1);

	iommufd = open(container_path, O_RDWR);
	ASSERT_LE(0, iommufd) TH_LOG("%s: %s", container_path, strerror(errno));
	group = open(group_path, O_RDWR);
	ASSERT_LE(0, group) TH_LOG("%s: %s", group_path, strerror(errno));
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_GET_STATUS, &status));
	ASSERT_TRUE(status.flags & VFIO_GROUP_FLAGS_VIABLE);
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_SET_CONTAINER, &iommufd))
		TH_LOG("VFIO_GROUP_SET_CONTAINER with %s: %s", container_path, strerror(errno));
	ASSERT_EQ(0, ioctl(iommufd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	ASSERT_LE(0, dev) TH_LOG("VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf, strerror(errno));

	src = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	ASSERT_NE(MAP_FAILED, dst);
	map.vaddr = (uintptr_t)src;
	map.iova = SRC_IOVA;
	ASSERT_EQ(0, ioctl(iommufd, VFIO_IOMMU_MAP_DMA, &map));
	map.vaddr = (uintptr_t)dst;
	map.iova = DST_IOVA;
	ASSERT_EQ(0, ioctl(iommufd, VFIO_IOMMU_MAP_DMA, &map));

	ASSERT_EQ(0, ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &bar));
	ASSERT_EQ(0, ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, bar.offset);
	ASSERT_NE(MAP_FAILED, bar0);
	ASSERT_EQ(2, pread(dev, &command, 2, cfg.offset + 4));
	command |= 0x4;
	ASSERT_EQ(2, pwrite(dev, &command, 2, cfg.offset + 4));

	for (i = 0; i < LEN; i++)
		src[i] = (uint8_t)(i * 5 + 7);
	memset(dst, 0, LEN);
	ASSERT_EQ(0, edu_run_dma(bar0, SRC_IOVA, EDU_BUF, LEN, 0));
	ASSERT_EQ(0, edu_run_dma(bar0, EDU_BUF, DST_IOVA, LEN, EDU_CMD_TO_RAM));
	ASSERT_EQ(0, memcmp(src, dst, LEN));

	munmap((void *)bar0, bar.size);
	close(dev);
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_UNSET_CONTAINER));
	close(group);
	close(iommufd);
}

/* The group path with /dev/iommu as the container (VFIO_GROUP_SET_CONTAINER ->
 * iommufd_ctx_from_file, iommufd_vfio_compat_ioas_create): the device is attached to the compat
 * IOAS and the VMM maps with the type1 ioctls on /dev/iommu. */
TEST(edu_dma_group_compat)
{
	group_dma(_metadata, "/dev/iommu");
}

/*
 * A type1 VMM as it was written (DPDK, older QEMU): /dev/vfio/vfio. On a kernel without VFIO's
 * own container (CONFIG_VFIO_CONTAINER=n; the runner says so with
 * IOMMUFD_PROVIDES_VFIO_CONTAINER=1) the loaded iommufd provides that device: opening it takes a
 * reference on the iommufd module, and vfio_iommu_type1 is nowhere. Elsewhere it is VFIO's.
 */
TEST(edu_dma_vfio_container)
{
	const char *provides = getenv("IOMMUFD_PROVIDES_VFIO_CONTAINER");
	long before = module_refcnt();
	int fd;

	if (provides && strcmp(provides, "1") == 0) {
		ASSERT_NE(0, access("/sys/module/vfio_iommu_type1", F_OK));
		fd = open("/dev/vfio/vfio", O_RDWR);
		ASSERT_LE(0, fd) TH_LOG("/dev/vfio/vfio: %s", strerror(errno));
		EXPECT_EQ(before + 1, module_refcnt());
		EXPECT_EQ(VFIO_API_VERSION, ioctl(fd, VFIO_GET_API_VERSION));
		EXPECT_EQ(1, ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
		close(fd);
	}
	group_dma(_metadata, "/dev/vfio/vfio");
	if (provides && strcmp(provides, "1") == 0)
		EXPECT_NE(0, access("/sys/module/vfio_iommu_type1", F_OK));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s /dev/vfio/devices/vfioN\n", argv[0]);
		return 2;
	}
	cdev_path = argv[1];
	return test_harness_run(1, argv);
}
