// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: dirty tracking at its edges. IOMMU_TEST_OP_DIRTY (the mock IOMMU marking
 * pages dirty, as a device writing them would) with a range that runs past the top of the IOVA
 * space, and IOMMU_HWPT_GET_DIRTY_BITMAP over a range with a gap in its mappings.
 *
 * Ours is stricter than upstream in both (Documentation/design.rst, "Where we are stricter than
 * upstream" for the bitmap; the test op is the test build's): these tests assert our answer when
 * impl_is_rust() and log the C module's otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

#define BUF_PAGES 4

static int set_dirty_tracking(int fd, __u32 hwpt, int on)
{
	struct iommu_hwpt_set_dirty_tracking c = {
		.size = sizeof(c),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = hwpt,
	};

	return ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &c);
}

/* The dirty bits of [iova, iova + len) into *bits, one per page; *bits is cleared first. */
static int get_dirty(int fd, __u32 hwpt, __u64 iova, __u64 len, __u64 *bits)
{
	struct iommu_hwpt_get_dirty_bitmap c = {
		.size = sizeof(c),
		.hwpt_id = hwpt,
		.iova = iova,
		.length = len,
		.page_size = PAGE,
		.data = (uintptr_t)bits,
	};

	*bits = 0;
	return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &c);
}

/* IOMMU_TEST_OP_DIRTY: marks the pages of @bits (one per @page_size from @iova) dirty. */
static int mark_dirty(int fd, __u32 hwpt, __u64 iova, __u64 len, __u64 page_size, __u64 bits,
		      __u64 *nr)
{
	struct iommu_test_cmd c = {
		.size = sizeof(c),
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt,
		.dirty = { .iova = iova, .length = len, .page_size = page_size,
			   .uptr = (uintptr_t)&bits },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &c);

	*nr = c.dirty.out_nr_dirty;
	return ret;
}

FIXTURE(dirty)
{
	int fd;
	__u32 ioas, idev, hwpt;
	char *buf;
};

FIXTURE_SETUP(dirty)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, NULL, &self->idev));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev, self->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				IOMMU_HWPT_DATA_NONE, NULL, 0, &self->hwpt));
	self->buf = mmap(NULL, BUF_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_EQ(0, set_dirty_tracking(self->fd, self->hwpt, 1));
}

FIXTURE_TEARDOWN(dirty)
{
	close(self->fd);
	munmap(self->buf, BUF_PAGES * PAGE);
}

/*
 * A range of the test op that passes 2^64: upstream computes iova + i * page_size unchecked and
 * marks the wrapped IOVA; ours used to overflow there (a panic with Rust's overflow checks) and
 * now refuses the range as a whole, with the EOVERFLOW upstream gives ranges too large to mark.
 * A range ending exactly at 2^64 - 1 is fine on both.
 */
TEST_F(dirty, op_dirty_past_the_top_of_the_iova_space)
{
	const __u64 top = 0ULL - PAGE;
	__u64 nr = 99, bits;
	int ret, err;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));

	/* The last page of the space: nothing is mapped there, but the op counts what it marks. */
	EXPECT_EQ(0, mark_dirty(self->fd, self->hwpt, top, PAGE, PAGE, 1, &nr));
	EXPECT_EQ(1, nr);

	nr = 99;
	errno = 0;
	ret = mark_dirty(self->fd, self->hwpt, top, 2 * PAGE, PAGE, 3, &nr);
	err = errno;
	if (impl_is_rust()) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EOVERFLOW, err);
	} else {
		TH_LOG("C: [2^64 - 4K, +8K): ret %d errno %d (%s), out_nr_dirty %llu", ret, err,
		       ret ? strerror(err) : "-", (unsigned long long)nr);
	}

	/* Huge page sizes wrap the same way: [2^64 - 2^62, +2^63). */
	nr = 99;
	errno = 0;
	ret = mark_dirty(self->fd, self->hwpt, 0ULL - (1ULL << 62), 1ULL << 63, 1ULL << 62, 3, &nr);
	err = errno;
	if (impl_is_rust()) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EOVERFLOW, err);
	} else {
		TH_LOG("C: [2^64 - 2^62, +2^63) by 2^62: ret %d errno %d (%s), out_nr_dirty %llu", ret,
		       err, ret ? strerror(err) : "-", (unsigned long long)nr);
	}

	/* The module still works: a mapped page marks and reads back dirty. */
	EXPECT_EQ(0, mark_dirty(self->fd, self->hwpt, AP, PAGE, PAGE, 1, &nr));
	EXPECT_EQ(1, nr);
	EXPECT_EQ(0, get_dirty(self->fd, self->hwpt, AP, PAGE, &bits));
	EXPECT_EQ(1, bits);
}

/*
 * GET_DIRTY_BITMAP over [AP, AP + 3 pages) with page 1 unmapped: the walk stops at the gap.
 * Upstream answers success with the bits after the gap clear although page 2 is dirty (a VMM
 * migrating a guest would skip it); ours answers EINVAL. Either way page 2 is still dirty, as a
 * read of its own range shows.
 */
TEST_F(dirty, get_dirty_bitmap_over_a_gap)
{
	__u64 bits, nr;
	int ret, err;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf + 2 * PAGE, PAGE, AP + 2 * PAGE));
	ASSERT_EQ(0, mark_dirty(self->fd, self->hwpt, AP, 3 * PAGE, PAGE, 0x5, &nr));

	errno = 0;
	ret = get_dirty(self->fd, self->hwpt, AP, 3 * PAGE, &bits);
	err = errno;
	if (impl_is_rust()) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EINVAL, err);
	} else {
		TH_LOG("C: bitmap over a gap: ret %d errno %d (%s), bits %#llx (pages 0 and 2 dirty)",
		       ret, err, ret ? strerror(err) : "-", (unsigned long long)bits);
	}

	/* Page 2, after the gap, was never read: still dirty. */
	EXPECT_EQ(0, get_dirty(self->fd, self->hwpt, AP + 2 * PAGE, PAGE, &bits));
	EXPECT_EQ(1, bits);
	/* A range without a gap reads on both: page 0, marked again, reads dirty once. */
	EXPECT_EQ(0, mark_dirty(self->fd, self->hwpt, AP, PAGE, PAGE, 1, &nr));
	EXPECT_EQ(0, get_dirty(self->fd, self->hwpt, AP, PAGE, &bits));
	EXPECT_EQ(1, bits);
	EXPECT_EQ(0, get_dirty(self->fd, self->hwpt, AP, PAGE, &bits));
	EXPECT_EQ(0, bits);
}

TEST_HARNESS_MAIN
