// SPDX-License-Identifier: GPL-2.0
/*
 * End-to-end DMA through /dev/iommu: QEMU's edu device (1234:11e8), bound to vfio-pci, reached
 * through its VFIO device cdev bound to an iommufd context, DMAs from one IOVA into its own
 * buffer and back out to another IOVA, through the VT-d page tables the iommufd module built.
 * Then the destination is unmapped and the same DMA must no longer reach memory: the
 * destination stays untouched and the IOMMU reports a DMA remapping fault (VT-d's DMAR fault,
 * SMMUv3's F_TRANSLATION event, virtio-iommu's fault from the endpoint).
 *
 * edu_msi*: the device's MSI, raised when a DMA completes, reaches an eventfd through
 * VFIO_DEVICE_SET_IRQS; also after its HWPT is replaced and after a detach and attach. On arm64
 * with an SMMUv3 and a GICv3 ITS the MSI doorbell is translated by the IOMMU: the domain the
 * device is attached to must map it (software-managed MSI, IOMMU_RESV_SW_MSI), else enabling MSI
 * fails or the MSI write faults.
 *
 * edu_bind_needs_isolated_msi: a bind where the platform cannot isolate MSIs answers EPERM unless
 * allow_unsafe_interrupts is set.
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
#include <poll.h>
#include <sys/eventfd.h>
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
			if ((strstr(line, "DMAR") && strstr(line, "fault")) ||
			    strstr(line, "F_TRANSLATION") || strstr(line, "fault from EP"))
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

/* Routes the device's MSI vector 0 to a new eventfd (VFIO_DEVICE_SET_IRQS); the fd, or -1. */
static int msi_to_eventfd(struct __test_metadata *_metadata, struct edu *self)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_MSI_IRQ_INDEX };
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t efd;

	if (ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &info) || info.count < 1)
		return -1;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -1;
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSI_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	if (ioctl(self->devfd, VFIO_DEVICE_SET_IRQS, set)) {
		TH_LOG("VFIO_DEVICE_SET_IRQS (MSI): %s", strerror(errno));
		close(efd);
		return -1;
	}
	return efd;
}

#define EDU_IRQ_STATUS	0x24
#define EDU_IRQ_ACK	0x64
#define EDU_CMD_IRQ	0x4

/*
 * One DMA into the device with its completion interrupt: 1 if the eventfd then fired within two
 * seconds, 0 if not. The device's status is acknowledged either way.
 */
static int dma_raises_msi(struct edu *self, int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t count = 0;
	int fired;

	while (read(efd, &count, sizeof(count)) == sizeof(count))
		;
	if (edu_run_dma(self->bar0, SRC_IOVA, EDU_BUF, LEN, EDU_CMD_IRQ))
		return 0;
	fired = poll(&p, 1, 2000) == 1 && read(efd, &count, sizeof(count)) == sizeof(count) &&
		count > 0;
	*(volatile uint32_t *)(self->bar0 + EDU_IRQ_ACK) =
		*(volatile uint32_t *)(self->bar0 + EDU_IRQ_STATUS);
	return fired;
}

static void msi_off(struct edu *self, int efd)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSI_IRQ_INDEX,
	};

	ioctl(self->devfd, VFIO_DEVICE_SET_IRQS, &set);
	close(efd);
}

/* The device's MSI on DMA completion reaches the eventfd. */
TEST(edu_msi)
{
	struct edu e = { .iommufd = -1, .devfd = -1 }, *self = &e;
	int efd;

	edu_setup(_metadata, self);
	efd = msi_to_eventfd(_metadata, self);
	ASSERT_LE(0, efd);
	ASSERT_EQ(1, dma_raises_msi(self, efd)) TH_LOG("no MSI reached the eventfd");
	ASSERT_EQ(1, dma_raises_msi(self, efd)) TH_LOG("no second MSI reached the eventfd");
	msi_off(self, efd);
	edu_teardown(self);
}

/*
 * MSI enabled while attached to one HWPT keeps working after the device is moved to another
 * (replace) and after it is detached and attached again: the new domains get the MSI page at the
 * same address without the MSI being set up again.
 */
TEST(edu_msi_after_replace_and_reattach)
{
	struct edu e = { .iommufd = -1, .devfd = -1 }, *self = &e;
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	struct iommu_hwpt_alloc h = { .size = sizeof(h) };
	int efd;

	edu_setup(_metadata, self);
	efd = msi_to_eventfd(_metadata, self);
	ASSERT_LE(0, efd);
	ASSERT_EQ(1, dma_raises_msi(self, efd));

	h.pt_id = self->ioas;
	h.dev_id = self->devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &h));
	attach.pt_id = h.out_hwpt_id;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	ASSERT_EQ(1, dma_raises_msi(self, efd)) TH_LOG("no MSI after the replace");

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	attach.pt_id = self->ioas;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	ASSERT_EQ(1, dma_raises_msi(self, efd)) TH_LOG("no MSI after detach and attach");

	msi_off(self, efd);
	edu_teardown(self);
}

/*
 * Binding needs interrupts the platform isolates (upstream's iommufd_device_bind()): VT-d with
 * interrupt remapping (the x86 guest turns it on) and arm64's GICv3 ITS do, an x86 guest whose only
 * IOMMU is a virtio-iommu does not. There a bind answers EPERM unless the module's
 * allow_unsafe_interrupts parameter is set; where MSIs are isolated the parameter does not matter.
 */
#define UNSAFE_IRQS "/sys/module/iommufd/parameters/allow_unsafe_interrupts"

static int set_unsafe_irqs(char v)
{
	int fd = open(UNSAFE_IRQS, O_WRONLY);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, &v, 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

/* 0 when the device binds to a new iommufd context, else the errno. */
static int bind_once(void)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	int iommufd = open("/dev/iommu", O_RDWR);
	int devfd = open(cdev_path, O_RDWR);
	int ret = -1;

	if (iommufd >= 0 && devfd >= 0) {
		bind.iommufd = iommufd;
		ret = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind) ? errno : 0;
	}
	if (devfd >= 0)
		close(devfd);
	if (iommufd >= 0)
		close(iommufd);
	return ret;
}

TEST(edu_bind_needs_isolated_msi)
{
	char was = 'N';
	int fd = open(UNSAFE_IRQS, O_RDONLY), isolated;

	if (fd < 0)
		SKIP(return, "no %s: %s", UNSAFE_IRQS, strerror(errno));
	ASSERT_EQ(1, read(fd, &was, 1));
	close(fd);
#if defined(__x86_64__)
	isolated = iommu_kind(cdev_path) == VTD;
#else
	isolated = 1;
#endif
	ASSERT_EQ(0, set_unsafe_irqs('N'));
	if (isolated) {
		EXPECT_EQ(0, bind_once());
	} else {
		EXPECT_EQ(EPERM, bind_once()) TH_LOG("a bind without isolated MSIs must be refused");
	}
	ASSERT_EQ(0, set_unsafe_irqs('Y'));
	EXPECT_EQ(0, bind_once());
	ASSERT_EQ(0, set_unsafe_irqs(was));
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
