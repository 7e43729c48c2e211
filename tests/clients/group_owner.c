// SPDX-License-Identifier: GPL-2.0
/*
 * Device-centric DMA ownership (the RFC's seed 002): two edu devices behind one PCI bridge share
 * an IOMMU group. Once one iommufd context owns a device of the group, no other context can bind
 * a device of it; the same context can, and its devices must share one attachment. Closing the
 * device fds gives the group back.
 *
 * Usage: group_owner /dev/vfio/devices/vfioA /dev/vfio/devices/vfioB (same IOMMU group).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

static const char *cdev_a, *cdev_b;

static int bind(int dev, int iommufd, uint32_t *devid)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
	int rc = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);

	if (!rc && devid)
		*devid = b.out_devid;
	return rc;
}

static int attach(int dev, uint32_t *pt_id)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = *pt_id };
	int rc = ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	*pt_id = a.pt_id;
	return rc;
}

static int detach(int dev)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };

	return ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

static uint32_t ioas_alloc(struct __test_metadata *_metadata, int fd)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	EXPECT_EQ(0, ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	return a.out_ioas_id;
}

/* One context owns the group: another context cannot bind a device of it, the owner can. */
TEST(group_dma_ownership)
{
	int ctx1 = open("/dev/iommu", O_RDWR), ctx2 = open("/dev/iommu", O_RDWR);
	int a = open(cdev_a, O_RDWR), b = open(cdev_b, O_RDWR);
	uint32_t id_a, id_b;

	ASSERT_LE(0, ctx1);
	ASSERT_LE(0, ctx2);
	ASSERT_LE(0, a) TH_LOG("%s: %s", cdev_a, strerror(errno));
	ASSERT_LE(0, b) TH_LOG("%s: %s", cdev_b, strerror(errno));

	ASSERT_EQ(0, bind(a, ctx1, &id_a));
	EXPECT_EQ(-1, bind(b, ctx2, NULL));
	EXPECT_EQ(EPERM, errno); /* iommu_device_claim_dma_owner(): another owner */
	ASSERT_EQ(0, bind(b, ctx1, &id_b));
	EXPECT_NE(id_a, id_b);

	/* Giving the devices up gives the group back: the other context may have it now. */
	close(a);
	close(b);
	b = open(cdev_b, O_RDWR);
	ASSERT_LE(0, b);
	EXPECT_EQ(0, bind(b, ctx2, NULL)) TH_LOG("bind after release: %s", strerror(errno));
	close(b);
	close(ctx1);
	close(ctx2);
}

/* Devices of one group attach together: the same IOAS reuses the group's HWPT, another HWPT is
 * refused while a device of the group still uses the first, and detach frees it. */
TEST(group_shares_attachment)
{
	int ctx = open("/dev/iommu", O_RDWR);
	int a = open(cdev_a, O_RDWR), b = open(cdev_b, O_RDWR);
	struct iommu_hwpt_alloc h = { .size = sizeof(h) };
	uint32_t id_a, id_b, ioas, pt_a, pt_b, pt;

	ASSERT_LE(0, ctx);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, bind(a, ctx, &id_a));
	ASSERT_EQ(0, bind(b, ctx, &id_b));
	ioas = ioas_alloc(_metadata, ctx);

	pt_a = ioas;
	ASSERT_EQ(0, attach(a, &pt_a));
	pt_b = ioas;
	ASSERT_EQ(0, attach(b, &pt_b));
	EXPECT_EQ(pt_a, pt_b);

	h.dev_id = id_b;
	h.pt_id = ioas;
	ASSERT_EQ(0, ioctl(ctx, IOMMU_HWPT_ALLOC, &h));
	pt = h.out_hwpt_id;
	EXPECT_NE(pt_a, pt);
	EXPECT_EQ(0, detach(b));
	EXPECT_EQ(-1, attach(b, &pt));
	EXPECT_EQ(EINVAL, errno);

	/* The last device out detaches the group; the other HWPT is free to take it then. */
	EXPECT_EQ(0, detach(a));
	pt = h.out_hwpt_id;
	EXPECT_EQ(0, attach(b, &pt));
	EXPECT_EQ(h.out_hwpt_id, pt);
	EXPECT_EQ(0, detach(b));
	close(a);
	close(b);
	close(ctx);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s cdevA cdevB (same IOMMU group)\n", argv[0]);
		return 2;
	}
	cdev_a = argv[1];
	cdev_b = argv[2];
	return test_harness_run(1, argv);
}
