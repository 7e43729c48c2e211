// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: IOVA ranges of an IOAS (IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS),
 * reserved ranges (IOMMU_TEST_OP_ADD_RESERVED) and IOMMU_OPTION. Upstream behaviour: both
 * modules must pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

struct ranges_result {
	int ret;
	int err;
	__u32 num;
	__u64 align;
	struct iommu_iova_range r[8];
};

static struct ranges_result get_ranges(int fd, __u32 ioas, __u32 capacity)
{
	struct ranges_result res = {};
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.num_iovas = capacity,
		.allowed_iovas = (uintptr_t)res.r,
	};

	res.ret = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
	res.err = errno;
	res.num = cmd.num_iovas;
	res.align = cmd.out_iova_alignment;
	return res;
}

static int option(int fd, __u32 id, __u16 op, __u32 obj, __u64 *val)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = id,
		.op = op,
		.object_id = obj,
		.val64 = *val,
	};
	int ret = ioctl(fd, IOMMU_OPTION, &cmd);

	*val = cmd.val64;
	return ret;
}

FIXTURE(ioas)
{
	int fd;
	__u32 ioas;
};

FIXTURE_SETUP(ioas)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	self->ioas = a.out_ioas_id;
}

FIXTURE_TEARDOWN(ioas)
{
	close(self->fd);
}

TEST_F(ioas, fresh_ioas_has_everything)
{
	struct ranges_result r = get_ranges(self->fd, self->ioas, 8);

	ASSERT_EQ(0, r.ret);
	EXPECT_EQ(1, r.num);
	EXPECT_EQ(1, r.align);
	EXPECT_EQ(0, r.r[0].start);
	EXPECT_EQ(UINT64_MAX, r.r[0].last);
}

/* Too small an array: EMSGSIZE, with the count needed and the alignment filled in. */
TEST_F(ioas, small_array_is_emsgsize)
{
	struct ranges_result r;

	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 16 * PAGE, PAGE));
	r = get_ranges(self->fd, self->ioas, 0);
	EXPECT_EQ(-1, r.ret);
	EXPECT_EQ(EMSGSIZE, r.err);
	EXPECT_EQ(2, r.num);
	EXPECT_EQ(1, r.align);
	r = get_ranges(self->fd, self->ioas, 1);
	EXPECT_EQ(EMSGSIZE, r.err);
	EXPECT_EQ(0, r.r[0].start);
	EXPECT_EQ(16 * PAGE - 1, r.r[0].last);
	EXPECT_EQ(0, r.r[1].last);	/* nothing past the caller's capacity */
}

TEST_F(ioas, reserved_ranges_carve_holes)
{
	struct ranges_result r;

	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 0, PAGE));
	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 0x10000, 0x1000));
	/* Overlapping and touching reservations read as one. */
	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 0x10800, 0x1000));
	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 0x11800, 0x800));
	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, UINT64_MAX - PAGE + 1, PAGE));
	r = get_ranges(self->fd, self->ioas, 8);
	ASSERT_EQ(0, r.ret);
	ASSERT_EQ(2, r.num);
	EXPECT_EQ(PAGE, r.r[0].start);
	EXPECT_EQ(0xffff, r.r[0].last);
	EXPECT_EQ(0x12000, r.r[1].start);
	EXPECT_EQ(UINT64_MAX - PAGE, r.r[1].last);
}

TEST_F(ioas, add_reserved_bad_input)
{
	EXPECT_EQ(-1, add_reserved(self->fd, self->ioas, PAGE, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add_reserved(self->fd, self->ioas, UINT64_MAX - 1, 3));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, add_reserved(self->fd, self->ioas + 100, 0, PAGE));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(ioas, allowed_and_reserved_exclude_each_other)
{
	struct iommu_iova_range a[2] = {
		{ .start = 0x100000, .last = 0x1fffff },
		{ .start = 0x200000, .last = 0x2fffff },	/* adjacent is fine */
	};
	struct iommu_iova_range covering = { .start = 0, .last = 0x400000 };

	ASSERT_EQ(0, allow(self->fd, self->ioas, a, 2));
	EXPECT_EQ(-1, add_reserved(self->fd, self->ioas, 0x1ff000, 0x2000));
	EXPECT_EQ(EADDRINUSE, errno);
	ASSERT_EQ(0, add_reserved(self->fd, self->ioas, 0x300000, PAGE));
	/* A new list over a reserved range is refused and the old list stays. */
	EXPECT_EQ(-1, allow(self->fd, self->ioas, &covering, 1));
	EXPECT_EQ(EADDRINUSE, errno);
	EXPECT_EQ(-1, add_reserved(self->fd, self->ioas, 0x150000, PAGE));
	EXPECT_EQ(EADDRINUSE, errno);
	/* An empty list clears it. */
	ASSERT_EQ(0, allow(self->fd, self->ioas, NULL, 0));
	EXPECT_EQ(0, add_reserved(self->fd, self->ioas, 0x150000, PAGE));
	/* Allowed ranges do not narrow what IOVA_RANGES reports. */
	EXPECT_EQ(3, get_ranges(self->fd, self->ioas, 8).num);
}

TEST_F(ioas, allow_iovas_bad_input)
{
	struct iommu_iova_range one_byte = { .start = 0x1000, .last = 0x1000 };
	struct iommu_iova_range backwards = { .start = 0x2000, .last = 0x1000 };
	struct iommu_iova_range overlap[2] = {
		{ .start = 0x1000, .last = 0x2fff },
		{ .start = 0x2fff, .last = 0x3fff },
	};
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas,
		.__reserved = 1,
	};

	EXPECT_EQ(-1, allow(self->fd, self->ioas, &one_byte, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, allow(self->fd, self->ioas, &backwards, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, allow(self->fd, self->ioas, overlap, 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, allow(self->fd, self->ioas, (void *)8, 1));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, allow(self->fd, self->ioas + 7, &one_byte, 0));
	EXPECT_EQ(ENOENT, errno);
	/* Nothing was applied by the refused calls. */
	EXPECT_EQ(0, add_reserved(self->fd, self->ioas, 0x1000, 0x3000));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * ALLOW_IOVAS with a long list: 2^18 one-page ranges, every other page, are all applied (the
 * kernel's IOVA choice lands in one); a num_iovas past the end of the array (up to 2^32 - 1)
 * stops at the first range it cannot read, with EFAULT, and leaves the list as it was. The
 * kernel reschedules between ranges (a cond_resched() per range): on this test kernel
 * (PREEMPT_LAZY) a long loop is preempted anyway, so that part shows only as the times logged.
 */
TEST_F(ioas, allow_iovas_many)
{
	const __u32 n = 1U << 18;
	const size_t len = (size_t)n * sizeof(struct iommu_iova_range);
	struct iommu_iova_range *r;
	void *buf;
	__u64 iova = 0;
	double t;
	__u32 i;

	/* The array ends at an unmapped page: entry n faults. */
	r = mmap(NULL, len + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	ASSERT_EQ(0, munmap((char *)r + len, PAGE));
	for (i = 0; i < n; i++) {
		r[i].start = (2ULL * i + 1) * PAGE;
		r[i].last = r[i].start + PAGE - 1;
	}
	ASSERT_EQ(0, posix_memalign(&buf, PAGE, 2 * PAGE));

	t = now_s();
	ASSERT_EQ(0, allow(self->fd, self->ioas, r, n));
	TH_LOG("ALLOW_IOVAS of %u ranges: %.3f s", n, now_s() - t);
	/* The last range and nothing past it. */
	EXPECT_FAIL(ENOSPC, map(self->fd, self->ioas, buf, 2 * PAGE, &iova, RW));
	ASSERT_EQ(0, map(self->fd, self->ioas, buf, PAGE, &iova, RW));
	EXPECT_EQ(PAGE, iova % (2 * PAGE));
	EXPECT_GE(r[n - 1].start, iova);

	t = now_s();
	EXPECT_FAIL(EFAULT, allow(self->fd, self->ioas, r, n + 1));
	TH_LOG("ALLOW_IOVAS of %u ranges, EFAULT at the next: %.3f s", n, now_s() - t);
	EXPECT_FAIL(EFAULT, allow(self->fd, self->ioas, r, UINT32_MAX));
	/* Still the old list: two pages still fit nowhere. */
	EXPECT_FAIL(ENOSPC, map(self->fd, self->ioas, buf, 2 * PAGE, &iova, RW));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	ASSERT_EQ(0, allow(self->fd, self->ioas, NULL, 0));
	iova = 0;
	EXPECT_EQ(0, map(self->fd, self->ioas, buf, 2 * PAGE, &iova, RW));
	free(buf);
	munmap(r, len);
}

TEST_F(ioas, huge_pages_option_sets_alignment)
{
	__u64 v = 7;

	ASSERT_EQ(0, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, self->ioas, &v));
	EXPECT_EQ(1, v);
	v = 0;
	ASSERT_EQ(0, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, self->ioas, &v));
	EXPECT_EQ(PAGE, get_ranges(self->fd, self->ioas, 8).align);
	ASSERT_EQ(0, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, self->ioas, &v));
	EXPECT_EQ(0, v);
	v = 1;
	ASSERT_EQ(0, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, self->ioas, &v));
	EXPECT_EQ(1, get_ranges(self->fd, self->ioas, 8).align);
	v = 2;
	EXPECT_EQ(-1, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, self->ioas, &v));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, option(self->fd, IOMMU_OPTION_HUGE_PAGES, 2, self->ioas, &v));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, option(self->fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 0, &v));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(ioas, rlimit_mode_needs_an_empty_context)
{
	__u64 v = 1;

	EXPECT_EQ(-1, option(self->fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, option(self->fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, self->ioas, &v));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST(rlimit_mode)
{
	int fd = open("/dev/iommu", O_RDWR);
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = IOMMU_OPTION_OP_GET,
		.val64 = 55,
	};
	__u64 v;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, IOMMU_OPTION, &cmd));
	EXPECT_EQ(0, cmd.val64);
	/* Only val64 is written back. */
	EXPECT_EQ(IOMMU_OPTION_RLIMIT_MODE, cmd.option_id);
	EXPECT_EQ(IOMMU_OPTION_OP_GET, cmd.op);
	v = 1;
	ASSERT_EQ(0, option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v));
	v = 0;
	ASSERT_EQ(0, option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v));
	EXPECT_EQ(1, v);
	v = 2;
	EXPECT_EQ(-1, option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v));
	EXPECT_EQ(EINVAL, errno);
	cmd.option_id = 99;
	EXPECT_EQ(-1, ioctl(fd, IOMMU_OPTION, &cmd));
	EXPECT_EQ(EOPNOTSUPP, errno);
	cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
	cmd.__reserved = 1;
	EXPECT_EQ(-1, ioctl(fd, IOMMU_OPTION, &cmd));
	EXPECT_EQ(EOPNOTSUPP, errno);
	close(fd);
}

TEST_HARNESS_MAIN
