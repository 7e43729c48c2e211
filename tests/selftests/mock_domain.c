// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: mock devices and the HWPTs they attach to (IOMMU_TEST_OP_MOCK_DOMAIN*,
 * IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO), what a domain does to the IOAS (aperture, alignment,
 * pinning, accounting) and the object lifetimes IOMMU_DESTROY enforces around them.
 * Upstream behaviour: both modules must pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"
#include "memlock.h"

#define FIXED (RW | IOMMU_IOAS_MAP_FIXED_IOVA)
/* One past the aperture's last IOVA. */
#define AP_END ((__u64)MOCK_APERTURE_LAST + 1)
#define BUF_LEN (256 * PAGE)

static int map_any(int fd, __u32 ioas, void *va, __u64 len, __u64 *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = RW,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
	};
	int ret = ioctl(fd, IOMMU_IOAS_MAP, &cmd);

	*iova = cmd.iova;
	return ret;
}

static int mock_domain_flags(int fd, __u32 pt, __u32 dev_flags, __u32 *stdev, __u32 *hwpt,
			     __u32 *idev)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = pt,
		.mock_domain_flags = { .dev_flags = dev_flags },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (stdev)
		*stdev = cmd.mock_domain_flags.out_stdev_id;
	if (hwpt)
		*hwpt = cmd.mock_domain_flags.out_hwpt_id;
	if (idev)
		*idev = cmd.mock_domain_flags.out_idev_id;
	return ret;
}

static int rlimit_mode(int fd, __u32 op, __u64 *val)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = op,
		.val64 = *val,
	};
	int ret = ioctl(fd, IOMMU_OPTION, &cmd);

	*val = cmd.val64;
	return ret;
}

FIXTURE(mock)
{
	int fd;
	__u32 ioas;
	void *buf;
};

FIXTURE_SETUP(mock)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	ASSERT_EQ(0, posix_memalign(&self->buf, HUGE, BUF_LEN));
	/* Small pages whatever the THP setting: MD_CHECK_REFS counts pins on small pages only. */
	ASSERT_EQ(0, madvise(self->buf, BUF_LEN, MADV_NOHUGEPAGE));
	memset(self->buf, 0x5a, BUF_LEN);
}

FIXTURE_TEARDOWN(mock)
{
	if (self->fd >= 0)
		close(self->fd);
	free(self->buf);
}

/* Attaching to an IOAS allocates a HWPT_PAGING of its own: a new id, usable as a mock domain. */
TEST_F(mock, attach_to_ioas_makes_auto_hwpt)
{
	__u32 stdev = 0, hwpt = 0, idev = 0;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	EXPECT_NE(0, stdev);
	EXPECT_NE(0, hwpt);
	EXPECT_NE(0, idev);
	EXPECT_NE(self->ioas, hwpt);
	EXPECT_NE(stdev, hwpt);
	EXPECT_NE(idev, hwpt);
	EXPECT_NE(stdev, idev);
	/* The HWPT is a mock paging domain; the IOAS, the device and the stdev are not HWPTs. */
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_FAIL(ENOENT, check_map(self->fd, self->ioas, AP, 0, self->buf));
	EXPECT_FAIL(ENOENT, check_map(self->fd, idev, AP, 0, self->buf));
	EXPECT_FAIL(ENOENT, check_map(self->fd, stdev, AP, 0, self->buf));
}

/* Any compatible auto domain already on the IOAS is reused by the next device. */
TEST_F(mock, second_device_reuses_auto_hwpt)
{
	__u32 stdev1, hwpt1, idev1, stdev2, hwpt2, idev2;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev1, &hwpt1, &idev1));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, &hwpt2, &idev2));
	EXPECT_EQ(hwpt1, hwpt2);
	EXPECT_NE(stdev1, stdev2);
	EXPECT_NE(idev1, idev2);
	/* A device flag that does not matter to a non-dirty domain does not split it either. */
	ASSERT_EQ(0, mock_domain_flags(self->fd, self->ioas, MOCK_FLAGS_DEVICE_NO_DIRTY, NULL,
				       &hwpt2, NULL));
	EXPECT_EQ(hwpt1, hwpt2);
}

/*
 * An IOAS remembers the IDs of its automatic HWPTs, and IDs are reused: once the first IOAS's
 * automatic HWPT is gone, its ID may name another IOAS's. A device attaching to the first IOAS
 * must get a domain of that IOAS, not join the other one's (ours did, before the lookup checked
 * the IOAS). IDs are the lowest free ones, so the second device's HWPT takes the freed ID when it
 * is made in the same order as the first's (stdev, idev, HWPT, on both modules).
 */
TEST_F(mock, auto_hwpt_id_reused_by_other_ioas)
{
	__u32 ioas2, stdev1, hwpt1, stdev2, hwpt2, stdev3, hwpt3;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev1, &hwpt1, NULL));
	ASSERT_EQ(0, destroy(self->fd, stdev1));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, &stdev2, &hwpt2, NULL));
	/* The setup this test needs: the first IOAS's old HWPT ID now names the second's. */
	ASSERT_EQ(hwpt1, hwpt2);
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, AP, RW));

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev3, &hwpt3, NULL));
	EXPECT_NE(hwpt2, hwpt3);
	/* The third device sees the first IOAS's mapping: its domain is that IOAS's. */
	EXPECT_EQ(0, check_map(self->fd, hwpt3, AP, PAGE, self->buf));
	EXPECT_NE(0, check_map(self->fd, hwpt2, AP, PAGE, self->buf));
	ASSERT_EQ(0, destroy(self->fd, stdev3));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
	EXPECT_EQ(0, destroy(self->fd, ioas2));
}

/* An attached device holds its HWPT, the HWPT its IOAS, and the driver its idev: all EBUSY. */
TEST_F(mock, destroy_is_ebusy_while_attached)
{
	__u32 stdev, hwpt, idev;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	EXPECT_FAIL(EBUSY, destroy(self->fd, hwpt));
	EXPECT_FAIL(EBUSY, destroy(self->fd, idev));
	/* The refusals changed nothing. */
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, AP, RW));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, PAGE, self->buf));
}

/* Destroying the selftest object detaches, unbinds and frees the auto HWPT with the last user. */
TEST_F(mock, stdev_destroy_frees_auto_hwpt)
{
	__u32 stdev, hwpt, idev;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, stdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, idev));
	EXPECT_FAIL(ENOENT, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_FAIL(ENOENT, destroy(self->fd, hwpt));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* The auto HWPT lives while any device is attached and goes with the last one. */
TEST_F(mock, auto_hwpt_outlives_first_device)
{
	__u32 stdev1, stdev2, hwpt, hwpt2;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev1, &hwpt, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, &hwpt2, NULL));
	ASSERT_EQ(hwpt, hwpt2);
	ASSERT_EQ(0, destroy(self->fd, stdev1));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_FAIL(EBUSY, destroy(self->fd, hwpt));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
	EXPECT_FAIL(ENOENT, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* Maps made before the domain existed are filled into it; later maps go in as they are made. */
TEST_F(mock, maps_before_and_after_attach_are_in_the_domain)
{
	__u32 hwpt;
	__u64 iova;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 16 * PAGE, AP, RW));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, &hwpt, NULL));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 32 * PAGE, 8 * PAGE, AP + HUGE, RW));
	ASSERT_EQ(0, map_any(self->fd, self->ioas, self->buf + 64 * PAGE, 4 * PAGE, &iova));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 16 * PAGE, self->buf));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP + HUGE, 8 * PAGE, self->buf + 32 * PAGE));
	EXPECT_EQ(0, check_map(self->fd, hwpt, iova, 4 * PAGE, self->buf + 64 * PAGE));
	/* The check can fail: other memory, an unmapped IOVA, a misaligned argument. */
	EXPECT_FAIL(EINVAL, check_map(self->fd, hwpt, AP, 16 * PAGE, self->buf + PAGE));
	EXPECT_FAIL(EINVAL, check_map(self->fd, hwpt, AP + 16 * PAGE, PAGE, self->buf + 16 * PAGE));
	EXPECT_FAIL(EINVAL, check_map(self->fd, hwpt, AP + 1, PAGE, self->buf));
	EXPECT_FAIL(EINVAL, check_map(self->fd, hwpt, AP, PAGE - 1, self->buf));
	/* Unmapped ranges leave the domain. */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, 16 * PAGE, NULL));
	EXPECT_FAIL(EINVAL, check_map(self->fd, hwpt, AP, PAGE, self->buf));
}

/* The mock domain has 2 KiB pages: IOVAs and lengths must be 2 KiB aligned once it is attached. */
TEST_F(mock, domain_sets_2k_iova_alignment)
{
	__u32 hwpt;

	/* Before the domain, any byte granularity goes. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 100, AP + 0x10003, RW));
	EXPECT_FAIL(EADDRINUSE, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, &hwpt, NULL));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE, AP + 0x400, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, 1000, AP, RW));
	/* Half a CPU page is a whole mock page. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 0x800, 2 * PAGE, AP + 0x800, RW));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP + 0x800, 2 * PAGE, self->buf + 0x800));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP + 0x1000, 0x800, self->buf + 0x1000));
}

/* IOVA_RANGES is the domain's aperture, and maps outside it are refused as reserved. */
TEST_F(mock, aperture_limits_maps)
{
	struct iommu_iova_range ranges[4];
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas,
		.num_iovas = 4,
		.allowed_iovas = (uintptr_t)ranges,
	};
	__u64 iova;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	ASSERT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(MOCK_APERTURE_START, ranges[0].start);
	EXPECT_EQ(MOCK_APERTURE_LAST, ranges[0].last);
	EXPECT_EQ(2048, cmd.out_iova_alignment);

	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE, AP - PAGE, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, 2 * PAGE, AP - PAGE, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE, 0x1000, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, 2 * PAGE,
				   AP_END - PAGE, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE,
				   AP_END, RW));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, AP, RW));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, AP_END - PAGE,
			    RW));
	/* The kernel's choice is in the aperture too. */
	ASSERT_EQ(0, map_any(self->fd, self->ioas, self->buf, 4 * PAGE, &iova));
	EXPECT_LE(MOCK_APERTURE_START, iova);
	EXPECT_GE(MOCK_APERTURE_LAST, iova + 4 * PAGE - 1);
}

/* A domain cannot join an IOAS that already maps outside its aperture. */
TEST_F(mock, attach_refused_when_maps_outside_aperture)
{
	__u32 stdev, hwpt;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, 0x1000, RW));
	EXPECT_FAIL(EADDRINUSE, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	/* Nothing was left holding the IOAS... */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0x1000, PAGE, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, NULL));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
	/* ...and the aperture is gone with the domain. */
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, 0x1000, RW));
}

/* Pages mapped with a domain are pinned once, whatever the number of domains on the IOAS. */
TEST_F(mock, pinned_once_with_one_or_two_domains)
{
	__u32 stdev1, hwpt1, stdev2, hwpt2, idev;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 64 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 0));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev1, &hwpt1, &idev));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 1));
	EXPECT_FAIL(EIO, check_refs(self->fd, self->buf, 64 * PAGE, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 64 * PAGE, PAGE, 0));
	/* A second domain: a manual HWPT on the same IOAS, with a device in it. */
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				&hwpt2));
	ASSERT_NE(hwpt1, hwpt2);
	ASSERT_EQ(0, mock_domain(self->fd, hwpt2, &stdev2, NULL, NULL));
	EXPECT_EQ(0, check_map(self->fd, hwpt2, AP, 64 * PAGE, self->buf));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 1));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 64 * PAGE, 8 * PAGE, AP + HUGE, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 72 * PAGE, 1));
	EXPECT_EQ(0, check_map(self->fd, hwpt1, AP + HUGE, 8 * PAGE, self->buf + 64 * PAGE));
	EXPECT_EQ(0, check_map(self->fd, hwpt2, AP + HUGE, 8 * PAGE, self->buf + 64 * PAGE));
	/* Unmap unpins. */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 72 * PAGE, 0));
}

/* Each IOAS_MAP makes its own pinned copy: the same memory in two IOASes is pinned twice. */
TEST_F(mock, map_in_two_ioas_pins_twice_copy_shares)
{
	__u32 ioas2, ioas3;
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = FIXED,
		.src_ioas_id = self->ioas,
		.length = 16 * PAGE,
		.dst_iova = AP,
		.src_iova = AP,
	};

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas3));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, NULL, NULL, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, ioas3, NULL, NULL, NULL));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 16 * PAGE, AP, RW));
	ASSERT_EQ(0, map_at(self->fd, ioas2, self->buf, 16 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 16 * PAGE, 2));
	/* IOAS_COPY shares the source's pinned pages. */
	copy.dst_ioas_id = ioas3;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 16 * PAGE, 2));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, 16 * PAGE, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 16 * PAGE, 2));
	ASSERT_EQ(0, unmap(self->fd, ioas3, AP, 16 * PAGE, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 16 * PAGE, 1));
	ASSERT_EQ(0, unmap(self->fd, ioas2, AP, 16 * PAGE, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 16 * PAGE, 0));
}

/* When the last domain goes, the pages are unpinned though still mapped in the IOAS. */
TEST_F(mock, stdev_destroy_unpins)
{
	__u32 stdev, hwpt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, NULL));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 32 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 32 * PAGE, 1));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 32 * PAGE, 0));
	/* A new domain pins them again from the IOAS's areas. */
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 32 * PAGE, 1));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 32 * PAGE, self->buf));
}

/* Closing the iommufd tears down devices, domains and areas: nothing stays pinned. */
TEST_F(mock, close_unpins_everything)
{
	__u32 ioas2;
	int fd2;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, NULL, NULL, NULL));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 32 * PAGE, AP, RW));
	ASSERT_EQ(0, map_at(self->fd, ioas2, self->buf, 32 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 32 * PAGE, 2));
	close(self->fd);
	self->fd = -1;
	fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, check_refs(fd2, self->buf, 32 * PAGE, 0));
	close(fd2);
}

/* A device moves to a manual HWPT (the auto one dies with its last user) and back to the IOAS. */
TEST_F(mock, replace_to_manual_hwpt_and_back)
{
	__u32 stdev, auto_hwpt, idev, manual, pt;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 8 * PAGE, AP, RW));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &auto_hwpt, &idev));
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				&manual));
	pt = manual;
	ASSERT_EQ(0, replace(self->fd, stdev, pt, &pt));
	EXPECT_EQ(manual, pt);
	EXPECT_FAIL(ENOENT, check_map(self->fd, auto_hwpt, AP, 0, self->buf));
	EXPECT_EQ(0, check_map(self->fd, manual, AP, 8 * PAGE, self->buf));
	EXPECT_FAIL(EBUSY, destroy(self->fd, manual));
	/* Replacing with the HWPT already attached is a no-op. */
	pt = manual;
	EXPECT_EQ(0, replace(self->fd, stdev, pt, &pt));
	EXPECT_EQ(manual, pt);
	/* Back to the IOAS: a fresh auto HWPT. */
	pt = self->ioas;
	ASSERT_EQ(0, replace(self->fd, stdev, pt, &pt));
	EXPECT_NE(self->ioas, pt);
	EXPECT_NE(manual, pt);
	EXPECT_EQ(0, check_map(self->fd, pt, AP, 8 * PAGE, self->buf));
	/* The manual HWPT stays until destroyed, then its IOAS is free of it. */
	EXPECT_EQ(0, check_map(self->fd, manual, AP, 8 * PAGE, self->buf));
	EXPECT_EQ(0, destroy(self->fd, manual));
	EXPECT_FAIL(ENOENT, check_map(self->fd, manual, AP, 0, self->buf));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 8 * PAGE, 1));
}

/* Replace may move a device to another IOAS; the old one is released. */
TEST_F(mock, replace_across_ioas)
{
	__u32 stdev, hwpt, ioas2, pt;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, map_at(self->fd, ioas2, self->buf, 4 * PAGE, AP, RW));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 0));
	pt = ioas2;
	ASSERT_EQ(0, replace(self->fd, stdev, pt, &pt));
	EXPECT_NE(hwpt, pt);
	EXPECT_NE(ioas2, pt);
	EXPECT_EQ(0, check_map(self->fd, pt, AP, 4 * PAGE, self->buf));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 1));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
	EXPECT_FAIL(EBUSY, destroy(self->fd, ioas2));
}

/* Bad replace targets fail and leave the device where it was. */
TEST_F(mock, replace_bad_input)
{
	__u32 stdev, hwpt, idev, pt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	pt = 9999;
	EXPECT_FAIL(ENOENT, replace(self->fd, stdev, pt, &pt));
	pt = stdev;
	EXPECT_FAIL(EINVAL, replace(self->fd, stdev, pt, &pt));
	pt = idev;
	EXPECT_FAIL(EINVAL, replace(self->fd, stdev, pt, &pt));
	/* The id must name a selftest device object. */
	pt = self->ioas;
	EXPECT_FAIL(ENOENT, replace(self->fd, idev, pt, &pt));
	EXPECT_FAIL(ENOENT, replace(self->fd, hwpt, pt, &pt));
	EXPECT_FAIL(ENOENT, replace(self->fd, 9999, pt, &pt));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 0, self->buf));
	EXPECT_FAIL(EBUSY, destroy(self->fd, hwpt));
}

/* MOCK_DOMAIN needs an IOAS or a paging HWPT, and only known device flags. */
TEST_F(mock, mock_domain_bad_input)
{
	__u32 stdev, hwpt, idev, out = 0;

	EXPECT_FAIL(ENOENT, mock_domain(self->fd, 9999, NULL, NULL, NULL));
	EXPECT_FAIL(ENOENT, mock_domain(self->fd, 0, NULL, NULL, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	EXPECT_FAIL(EINVAL, mock_domain(self->fd, stdev, NULL, NULL, NULL));
	EXPECT_FAIL(EINVAL, mock_domain(self->fd, idev, NULL, NULL, NULL));
	EXPECT_FAIL(EINVAL, mock_domain_flags(self->fd, self->ioas, 1 << 1, NULL, NULL, NULL));
	EXPECT_FAIL(EINVAL, mock_domain_flags(self->fd, self->ioas, 1 << 10, NULL, NULL, NULL));
	/* A paging HWPT may be named directly, and is returned as is. */
	ASSERT_EQ(0, mock_domain(self->fd, hwpt, NULL, &out, NULL));
	EXPECT_EQ(hwpt, out);
	EXPECT_EQ(0, mock_domain_flags(self->fd, self->ioas, MOCK_FLAGS_DEVICE_PASID, NULL, NULL,
				       NULL));
}

/* A manual HWPT mirrors the IOAS with no device attached, pins, and holds the IOAS. */
TEST_F(mock, hwpt_alloc_without_attach)
{
	__u32 stdev, idev, hwpt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, &idev));
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				&hwpt));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	/* The device is gone; its HWPT is not. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 8 * PAGE, AP, RW));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, 8 * PAGE, self->buf));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 8 * PAGE, 1));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	EXPECT_EQ(0, destroy(self->fd, hwpt));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 8 * PAGE, 0));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* IOMMU_HWPT_DATA_SELFTEST: the driver reads struct iommu_hwpt_selftest (iotlb required). */
TEST_F(mock, hwpt_alloc_selftest_data)
{
	struct {
		struct iommu_hwpt_selftest s;
		__u32 tail[2];
	} data = { .s = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT } };
	__u32 idev, hwpt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, &idev));
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST, &data,
				sizeof(data.s), &hwpt));
	/* A default page table: the usual aperture. */
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE, 0x1000, RW));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, AP, RW));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, PAGE, self->buf));
	/* The first version of the struct (up to iotlb) is enough. */
	EXPECT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST, &data,
				offsetofend(struct iommu_hwpt_selftest, iotlb), NULL));
	/* Shorter than that, or longer than the driver's struct, is EINVAL. */
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
				       &data, 2, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
				       &data, sizeof(data), NULL));
	/* Not E2BIG: a longer struct is refused whatever its tail holds. */
	data.tail[1] = 1;
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
				       &data, sizeof(data), NULL));
	data.tail[1] = 0;
	/* An unknown page table type. */
	data.s.pagetable_type = 77;
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
					   &data, sizeof(data.s), NULL));
	/* A data type the mock driver does not know. */
	data.s.pagetable_type = 0;
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, idev, self->ioas, 0, 0x1234, &data,
					   sizeof(data.s), NULL));
	EXPECT_FAIL(EFAULT, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
				       (void *)8, sizeof(data.s), NULL));
}

/* HWPT_ALLOC argument checks, in upstream's order. */
TEST_F(mock, hwpt_alloc_bad_input)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_alloc cmd = { .size = sizeof(cmd) };
	__u32 stdev, idev, hwpt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	cmd.dev_id = idev;
	cmd.pt_id = self->ioas;
	cmd.__reserved = 1;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_HWPT_ALLOC, &cmd));
	/* data_len must be zero for DATA_NONE and non-zero otherwise. */
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, &data,
				       sizeof(data), NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_SELFTEST,
				       &data, 0, NULL));
	/* dev_id must be a device; pt_id any IOAS or HWPT, else EINVAL (even when missing). */
	EXPECT_FAIL(ENOENT, hwpt_alloc(self->fd, self->ioas, self->ioas, 0, IOMMU_HWPT_DATA_NONE,
				       NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, hwpt_alloc(self->fd, stdev, self->ioas, 0, IOMMU_HWPT_DATA_NONE,
				       NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, hwpt_alloc(self->fd, 9999, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL,
				       0, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, 9999, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				       NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, idev, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				       NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, idev, stdev, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				       NULL));
	/* Unknown flags, and the combinations upstream refuses. */
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, idev, self->ioas, 1U << 30,
					   IOMMU_HWPT_DATA_NONE, NULL, 0, NULL));
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, idev, self->ioas,
					   IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_NEST_PARENT,
					   IOMMU_HWPT_DATA_NONE, NULL, 0, NULL));
	/* A nested HWPT (pt_id a paging HWPT) needs driver data. */
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, idev, hwpt, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
					   NULL));
}

/* DIRTY_TRACKING domains: only for devices whose IOMMU can, and only such devices may join. */
TEST_F(mock, hwpt_alloc_dirty_tracking)
{
	__u32 idev, nd_idev, hwpt;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, &idev));
	ASSERT_EQ(0, mock_domain_flags(self->fd, self->ioas, MOCK_FLAGS_DEVICE_NO_DIRTY, NULL,
				       NULL, &nd_idev));
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, nd_idev, self->ioas,
					   IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_DATA_NONE,
					   NULL, 0, NULL));
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				IOMMU_HWPT_DATA_NONE, NULL, 0, &hwpt));
	EXPECT_FAIL(EINVAL, mock_domain_flags(self->fd, hwpt, MOCK_FLAGS_DEVICE_NO_DIRTY, NULL,
					      NULL, NULL));
	EXPECT_EQ(0, mock_domain(self->fd, hwpt, NULL, NULL, NULL));
}

/* GET_HW_INFO returns the mock driver's struct, its length, and the device's capabilities. */
TEST_F(mock, get_hw_info)
{
	struct {
		struct iommu_test_hw_info info;
		__u32 extra[2];
	} out;
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.data_len = sizeof(out),
		.data_uptr = (uintptr_t)&out,
	};
	__u32 idev, nd_idev, pasid_idev;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, &idev));
	memset(&out, 0xff, sizeof(out));
	cmd.dev_id = idev;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_SELFTEST, cmd.out_data_type);
	EXPECT_EQ(sizeof(struct iommu_test_hw_info), cmd.data_len);
	EXPECT_EQ(0, out.info.flags);
	EXPECT_EQ(IOMMU_HW_INFO_SELFTEST_REGVAL, out.info.test_reg);
	/* The part of the user buffer past the kernel's struct is zeroed. */
	EXPECT_EQ(0, out.extra[0]);
	EXPECT_EQ(0, out.extra[1]);
	EXPECT_EQ(IOMMU_HW_CAP_DIRTY_TRACKING | IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
		  cmd.out_capabilities);
	EXPECT_EQ(0, cmd.out_max_pasid_log2);

	/* A short buffer gets a prefix, and the full length is reported. */
	memset(&out, 0xff, sizeof(out));
	cmd.data_len = 4;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(sizeof(struct iommu_test_hw_info), cmd.data_len);
	EXPECT_EQ(0, out.info.flags);
	EXPECT_EQ(0xffffffff, out.info.test_reg);
	cmd.data_len = 0;
	cmd.data_uptr = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(sizeof(struct iommu_test_hw_info), cmd.data_len);
	cmd.data_len = sizeof(out);
	cmd.data_uptr = (uintptr_t)&out;

	/* The device flags show. */
	ASSERT_EQ(0, mock_domain_flags(self->fd, self->ioas, MOCK_FLAGS_DEVICE_NO_DIRTY, NULL,
				       NULL, &nd_idev));
	cmd.dev_id = nd_idev;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED, cmd.out_capabilities);
	ASSERT_EQ(0, mock_domain_flags(self->fd, self->ioas, MOCK_FLAGS_DEVICE_PASID, NULL, NULL,
				       &pasid_idev));
	cmd.dev_id = pasid_idev;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(MOCK_PASID_WIDTH, cmd.out_max_pasid_log2);
}

/* GET_HW_INFO refuses non-devices, unknown flags, reserved bytes and a type the driver lacks. */
TEST_F(mock, get_hw_info_bad_input)
{
	struct iommu_test_hw_info out;
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.data_len = sizeof(out),
		.data_uptr = (uintptr_t)&out,
	};
	__u32 stdev, hwpt, idev;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	cmd.dev_id = self->ioas;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.dev_id = stdev;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.dev_id = hwpt;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.dev_id = 9999;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.dev_id = idev;
	cmd.flags = 1 << 5;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.flags = 0;
	cmd.__reserved[1] = 1;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.__reserved[1] = 0;
	/* Asking for a type: the driver's own works, another is not supported. */
	cmd.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
	cmd.in_data_type = IOMMU_HW_INFO_TYPE_SELFTEST;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_SELFTEST, cmd.out_data_type);
	cmd.in_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	/* Without the flag the input type is ignored. */
	cmd.flags = 0;
	cmd.in_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_SELFTEST, cmd.out_data_type);
	cmd.data_uptr = 8;
	EXPECT_FAIL(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.data_uptr = 0;
	EXPECT_FAIL(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
}

/* A new mock device starts with every cache entry at IOMMU_TEST_DEV_CACHE_DEFAULT. */
TEST_F(mock, dev_check_cache)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DEV_CHECK_CACHE,
	};
	__u32 stdev, idev;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, &idev));
	cmd.id = idev;
	for (__u32 i = 0; i < MOCK_DEV_CACHE_NUM; i++) {
		cmd.check_dev_cache.id = i;
		cmd.check_dev_cache.cache = IOMMU_TEST_DEV_CACHE_DEFAULT;
		EXPECT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &cmd));
		cmd.check_dev_cache.cache = 0;
		EXPECT_FAIL(EINVAL, ioctl(self->fd, IOMMU_TEST_CMD, &cmd));
	}
	cmd.check_dev_cache.id = MOCK_DEV_CACHE_ID_MAX + 1;
	cmd.check_dev_cache.cache = IOMMU_TEST_DEV_CACHE_DEFAULT;
	EXPECT_FAIL(EINVAL, ioctl(self->fd, IOMMU_TEST_CMD, &cmd));
	cmd.check_dev_cache.id = 0;
	cmd.id = stdev;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_TEST_CMD, &cmd));
	cmd.id = self->ioas;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_TEST_CMD, &cmd));
}

/* Without CAP_IPC_LOCK, pins are charged to RLIMIT_MEMLOCK: exactly the limit fits. */
TEST_F(mock, rlimit_memlock_charges_pins)
{
	long pin0 = vm_status("VmPin");

	ASSERT_EQ(0, drop_cap_ipc_lock());
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	/* Over the limit in one go: nothing is left pinned or charged. */
	EXPECT_FAIL(ENOMEM, map_at(self->fd, self->ioas, self->buf, 64 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 0));
	EXPECT_EQ(pin0, vm_status("VmPin"));
	/* Up to the limit, in two maps. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 8 * PAGE, AP, RW));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 8 * PAGE, 8 * PAGE, AP + HUGE, RW));
	EXPECT_EQ(pin0 + 64, vm_status("VmPin"));
	/* USER mode charges the user, not the mm. */
	EXPECT_EQ(0, vm_status("VmLck"));
	EXPECT_FAIL(ENOMEM, map_at(self->fd, self->ioas, self->buf + 16 * PAGE, PAGE, AP + 2 * HUGE,
				   RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 16 * PAGE, PAGE, 0));
	/* Unmapping gives the room back. */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, 8 * PAGE, NULL));
	EXPECT_EQ(pin0 + 32, vm_status("VmPin"));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf + 16 * PAGE, 8 * PAGE, AP + 2 * HUGE,
			    RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 8 * PAGE, 16 * PAGE, 1));
}

/* A map beyond the limit succeeds with no domain (nothing pinned); attaching one then fails. */
TEST_F(mock, rlimit_memlock_fails_attach)
{
	__u32 hwpt;

	ASSERT_EQ(0, drop_cap_ipc_lock());
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 64 * PAGE, AP, RW));
	EXPECT_FAIL(ENOMEM, mock_domain(self->fd, self->ioas, NULL, &hwpt, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 0));
	EXPECT_EQ(0, vm_status("VmPin"));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* CAP_IPC_LOCK exempts the pins from the limit, but they are still counted in VmPin. */
TEST_F(mock, cap_ipc_lock_is_exempt)
{
	long pin0 = vm_status("VmPin");

	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, 64 * PAGE, AP, RW));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 64 * PAGE, 1));
	EXPECT_EQ(pin0 + 256, vm_status("VmPin"));
	EXPECT_EQ(0, vm_status("VmLck"));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	EXPECT_EQ(pin0, vm_status("VmPin"));
}

/* IOMMU_OPTION_RLIMIT_MODE: global (object 0), set only on an empty context, values 0 and 1. */
TEST_F(mock, rlimit_mode_option)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = self->ioas,
	};
	__u64 val = 7;
	int fd2;

	ASSERT_EQ(0, rlimit_mode(self->fd, IOMMU_OPTION_OP_GET, &val));
	EXPECT_EQ(0, val);
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	/* This context already has an IOAS. */
	val = 1;
	EXPECT_FAIL(EBUSY, rlimit_mode(self->fd, IOMMU_OPTION_OP_SET, &val));
	fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd2);
	val = 2;
	EXPECT_FAIL(EINVAL, rlimit_mode(fd2, IOMMU_OPTION_OP_SET, &val));
	val = 1;
	ASSERT_EQ(0, rlimit_mode(fd2, IOMMU_OPTION_OP_SET, &val));
	val = 0;
	ASSERT_EQ(0, rlimit_mode(fd2, IOMMU_OPTION_OP_GET, &val));
	EXPECT_EQ(1, val);
	EXPECT_FAIL(EOPNOTSUPP, rlimit_mode(fd2, 2, &val));
	/* Back and forth while empty. */
	val = 0;
	ASSERT_EQ(0, rlimit_mode(fd2, IOMMU_OPTION_OP_SET, &val));
	val = 1;
	ASSERT_EQ(0, rlimit_mode(fd2, IOMMU_OPTION_OP_GET, &val));
	EXPECT_EQ(0, val);
	close(fd2);
}

/* RLIMIT_MODE=1 charges the pinning mm: VmLck grows by what is pinned, and the limit holds. */
TEST_F(mock, rlimit_mode_mm_charges_vmlck)
{
	__u64 val = 1;
	__u32 ioas;
	int fd2;

	ASSERT_EQ(0, drop_cap_ipc_lock());
	ASSERT_EQ(0, set_memlock(32 * PAGE));
	fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, rlimit_mode(fd2, IOMMU_OPTION_OP_SET, &val));
	ASSERT_EQ(0, ioas_alloc(fd2, &ioas));
	ASSERT_EQ(0, mock_domain(fd2, ioas, NULL, NULL, NULL));
	ASSERT_EQ(0, vm_status("VmLck"));
	ASSERT_EQ(0, map_at(fd2, ioas, self->buf, 16 * PAGE, AP, RW));
	EXPECT_EQ(64, vm_status("VmLck"));
	EXPECT_EQ(64, vm_status("VmPin"));
	EXPECT_FAIL(ENOMEM, map_at(fd2, ioas, self->buf + 16 * PAGE, 17 * PAGE, AP + HUGE, RW));
	EXPECT_EQ(64, vm_status("VmLck"));
	EXPECT_EQ(0, check_refs(fd2, self->buf + 16 * PAGE, 17 * PAGE, 0));
	ASSERT_EQ(0, map_at(fd2, ioas, self->buf + 16 * PAGE, 16 * PAGE, AP + HUGE, RW));
	EXPECT_EQ(128, vm_status("VmLck"));
	ASSERT_EQ(0, unmap(fd2, ioas, 0, UINT64_MAX, NULL));
	EXPECT_EQ(0, vm_status("VmLck"));
	EXPECT_EQ(0, vm_status("VmPin"));
	/* Closing with pins also uncharges. */
	ASSERT_EQ(0, map_at(fd2, ioas, self->buf, 8 * PAGE, AP, RW));
	EXPECT_EQ(32, vm_status("VmLck"));
	close(fd2);
	EXPECT_EQ(0, vm_status("VmLck"));
	EXPECT_EQ(0, vm_status("VmPin"));
}

/*
 * VFIO_CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) on the compat IOAS says whether every domain on it keeps
 * DMA cache coherent whatever the device asks. The mock IOMMU cannot enforce that
 * (IOMMU_CAP_ENFORCE_CACHE_COHERENCY is not among its capabilities), so its domains do not: with
 * one on the IOAS the answer is 0, and 1 again once it is gone. Without a compat IOAS: ENODEV.
 */
TEST_F(mock, vfio_dma_cc_iommu_follows_domains)
{
	struct iommu_vfio_ioas set = {
		.size = sizeof(set),
		.ioas_id = self->ioas,
		.op = IOMMU_VFIO_IOAS_SET,
	};
	__u32 stdev, hwpt, idev, manual;

	EXPECT_FAIL(ENODEV, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_VFIO_IOAS, &set));
	EXPECT_EQ(1, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, &idev));
	EXPECT_EQ(0, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU));
	/* A HWPT allocated by hand on the IOAS counts too (the automatic one goes with stdev). */
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
				&manual));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU));
	ASSERT_EQ(0, destroy(self->fd, manual));
	EXPECT_EQ(1, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU));
}

TEST_HARNESS_MAIN
