// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP on an IOAS with no domain attached
 * (pure IOVA bookkeeping: nothing is pinned until a domain or an access needs the pages).
 * Upstream behaviour: both modules must pass. One exception, where ours is stricter
 * (map_file_write_permission: Documentation/design.rst, "Where we are stricter than upstream"):
 * it asserts our answer and logs the C module's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

FIXTURE(map)
{
	int fd;
	__u32 ioas;
	void *buf;
	size_t len;
};

FIXTURE_SETUP(map)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	self->ioas = a.out_ioas_id;
	self->len = 4 * HUGE;
	ASSERT_EQ(0, posix_memalign(&self->buf, HUGE, self->len));
	/* Small pages whatever the THP setting: MD_CHECK_REFS counts pins on small pages only. */
	ASSERT_EQ(0, madvise(self->buf, self->len, MADV_NOHUGEPAGE));
	memset(self->buf, 0, self->len);
}

FIXTURE_TEARDOWN(map)
{
	close(self->fd);
	free(self->buf);
}

TEST_F(map, fixed_map_unmap)
{
	__u64 unmapped = 0;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 16 * PAGE, 0x100000));
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x100000 + 15 * PAGE));
	EXPECT_EQ(EEXIST, errno);
	/* Half an area cannot be unmapped, and nothing is removed. */
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, 0x100000, 8 * PAGE, NULL));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0x100000, 16 * PAGE, &unmapped));
	EXPECT_EQ(16 * PAGE, unmapped);
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, 0x100000, 16 * PAGE, NULL));
	EXPECT_EQ(ENOENT, errno);
	/* Unmap-all succeeds on an empty IOAS and reports 0. */
	unmapped = 77;
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(0, unmapped);
}

TEST_F(map, unmap_range_covers_many_areas)
{
	__u64 unmapped;

	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf + i * PAGE, PAGE,
				       0x200000 + 2 * i * PAGE));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0x200000, 8 * PAGE, &unmapped));
	EXPECT_EQ(4 * PAGE, unmapped);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(4 * PAGE, unmapped);
}

/* Unmap is not atomic: areas before the one the range cuts are already gone. */
TEST_F(map, unmap_stops_at_a_cut_area)
{
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x200000));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 2 * PAGE, 0x205000));
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, 0x200000, 0x6000, NULL));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x200000));
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x205000));
	EXPECT_EQ(EEXIST, errno);
}

TEST_F(map, auto_iova_keeps_huge_alignment)
{
	__u64 a = 0, b = 0, c = 0;

	ASSERT_EQ(0, map(self->fd, self->ioas, self->buf, HUGE, &a, RW));
	ASSERT_EQ(0, map(self->fd, self->ioas, self->buf + HUGE, 2 * HUGE, &b, RW));
	EXPECT_EQ(0, a % HUGE);
	EXPECT_EQ(0, b % HUGE);
	EXPECT_NE(0, a);	/* never the first page */
	EXPECT_TRUE(b >= a + HUGE || b + 2 * HUGE <= a);
	/* Page-offset memory keeps its offset. */
	ASSERT_EQ(0, map(self->fd, self->ioas, self->buf + 3 * PAGE + 5, 100, &c, RW));
	EXPECT_EQ(5, c % PAGE);
}

TEST_F(map, auto_iova_honours_allowed_and_reserved)
{
	struct iommu_iova_range allowed = { .start = 0x40000000, .last = 0x4fffffff };
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&allowed,
	};
	__u64 iova = 0;

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	ASSERT_EQ(0, map(self->fd, self->ioas, self->buf, 4 * PAGE, &iova, RW));
	EXPECT_TRUE(iova >= allowed.start && iova + 4 * PAGE - 1 <= allowed.last);
	/* A fixed IOVA may lie outside the allowed ranges. */
	EXPECT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x1000));
	/* Nothing left in the allowed window for this size. */
	iova = 0;
	EXPECT_EQ(-1, map(self->fd, self->ioas, self->buf, 0x20000000, &iova, RW));
	EXPECT_EQ(ENOSPC, errno);
}

TEST_F(map, fixed_over_reserved_is_einval)
{
	struct iommu_test_cmd res = {
		.size = sizeof(res),
		.op = IOMMU_TEST_OP_ADD_RESERVED,
		.id = self->ioas,
		.add_reserved = { .start = 0x300000, .length = PAGE },
	};

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &res));
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, 4 * PAGE, 0x2ff000));
	EXPECT_EQ(EINVAL, errno);
	/* And a reservation over a mapping is refused. */
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x400000));
	res.add_reserved.start = 0x400000;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_TEST_CMD, &res));
	EXPECT_EQ(EADDRINUSE, errno);
}

TEST_F(map, bad_input)
{
	__u64 iova = 0;
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = RW,
		.ioas_id = self->ioas,
		.user_va = (uintptr_t)self->buf,
		.length = PAGE,
		.__reserved = 1,
	};

	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, map(self->fd, self->ioas, self->buf, PAGE, &iova, RW | (1 << 7)));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, map(self->fd, self->ioas, self->buf, PAGE, &iova, IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, map(self->fd, self->ioas, self->buf, 0, &iova, RW));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, PAGE, UINT64_MAX));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, 2 * PAGE, UINT64_MAX - PAGE));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, (void *)(UINTPTR_MAX - PAGE), 2 * PAGE, 0x1000));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas + 9, self->buf, PAGE, 0x1000));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, 0x1000, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, UINT64_MAX - 1, 3, NULL));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, unmap(self->fd, self->ioas, UINT64_MAX, 1, NULL));
	EXPECT_EQ(EOVERFLOW, errno);
}

TEST_F(map, huge_pages_off_needs_page_aligned_areas)
{
	__u64 v = 0;
	struct iommu_option opt = {
		.size = sizeof(opt),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_SET,
		.object_id = self->ioas,
		.val64 = 0,
	};

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf + 3, 100, 0x10003));
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_OPTION, &opt));
	EXPECT_EQ(EADDRINUSE, errno);
	opt.op = IOMMU_OPTION_OP_GET;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, &opt));
	EXPECT_EQ(1, opt.val64);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &v));
	opt.op = IOMMU_OPTION_OP_SET;
	opt.val64 = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, &opt));
	/* Now sub-page mappings are refused. */
	EXPECT_EQ(-1, map_fixed(self->fd, self->ioas, self->buf, 100, 0x10000));
	EXPECT_EQ(EINVAL, errno);
}

/* With no domain and no access, mapping pins nothing (upstream pins on demand). */
TEST_F(map, no_domain_pins_nothing)
{
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, self->len, 0x1000000));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, self->len, 0));
	EXPECT_EQ(-1, check_refs(self->fd, self->buf, self->len, 1));
	EXPECT_EQ(EIO, errno);
}

/* Destroying an IOAS with mappings, and closing with them, tears everything down. */
TEST_F(map, destroy_with_areas)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = self->ioas };

	for (int i = 0; i < 64; i++)
		ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, 0x1000000 + i * PAGE));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, &d));
}

TEST_F(map, copy_shares_areas)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	__u64 iova = 0x800000, unmapped;
	__u32 dst;

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	dst = a.out_ioas_id;
	/* Two adjacent areas; a copy may span both and start inside the first. */
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 4 * PAGE, 0x100000));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf + 4 * PAGE, 4 * PAGE, 0x104000));
	ASSERT_EQ(0, copy(self->fd, dst, &iova, self->ioas, 0x102000, 4 * PAGE,
			  RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(0x800000, iova);
	/* One destination area per source area: the first can be unmapped alone. */
	ASSERT_EQ(0, unmap(self->fd, dst, 0x800000, 2 * PAGE, &unmapped));
	EXPECT_EQ(2 * PAGE, unmapped);
	/* The copy outlives the source's mapping. */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(8 * PAGE, unmapped);
	ASSERT_EQ(0, unmap(self->fd, dst, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(2 * PAGE, unmapped);
}

TEST_F(map, copy_into_the_same_ioas_auto_iova)
{
	__u64 iova = 0;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, HUGE, 0x200000));
	ASSERT_EQ(0, copy(self->fd, self->ioas, &iova, self->ioas, 0x200000, HUGE, RW));
	EXPECT_NE(0x200000, iova);
	EXPECT_EQ(0, iova % HUGE);	/* keeps the memory's huge alignment */
}

TEST_F(map, copy_bad_input)
{
	__u64 iova = 0x900000;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 2 * PAGE, 0x100000));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 2 * PAGE, 0x103000));
	/* A gap in the source. */
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, 5 * PAGE,
			   RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, 0,
			   RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, PAGE, 1 << 9));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, UINT64_MAX, PAGE, RW));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, PAGE,
			   IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EINVAL, errno);
	/* Onto an existing mapping. */
	iova = 0x103000;
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, PAGE,
			   RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EEXIST, errno);
}

/* Read-only memory cannot be copied as writeable. */
TEST_F(map, copy_read_only_as_writeable_is_eperm)
{
	__u64 iova = 0x100000;

	ASSERT_EQ(0, map(self->fd, self->ioas, self->buf, PAGE, &iova,
			 IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
	iova = 0x900000;
	EXPECT_EQ(-1, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, PAGE,
			   RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, copy(self->fd, self->ioas, &iova, self->ioas, 0x100000, PAGE,
			  IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
}

static int map_file(int fd, __u32 ioas, int mfd, __u64 start, __u64 len, __u64 *iova, __u32 flags)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas,
		.fd = mfd,
		.start = start,
		.length = len,
		.iova = *iova,
	};
	int ret = ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);

	*iova = cmd.iova;
	return ret;
}

TEST_F(map, map_file)
{
	int mfd = memfd_create("iommufd-rs", 0);
	__u64 iova = 0x400000, unmapped;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, 4 * HUGE));
	ASSERT_EQ(0, map_file(self->fd, self->ioas, mfd, 0, 2 * HUGE, &iova,
			      RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	/* A kernel-chosen IOVA keeps the file offset's alignment. */
	iova = 0;
	ASSERT_EQ(0, map_file(self->fd, self->ioas, mfd, HUGE, HUGE, &iova, RW));
	EXPECT_EQ(0, iova % HUGE);
	/* The mapping holds the file: closing the fd changes nothing. */
	close(mfd);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(3 * HUGE, unmapped);
}

TEST_F(map, map_file_bad_input)
{
	int mfd = memfd_create("iommufd-rs", 0);
	__u64 iova = 0x400000;

	ASSERT_LE(0, mfd);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, -1, 0, PAGE, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, 9999, 0, PAGE, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, mfd, 0, 0, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, mfd, UINT64_MAX - 1, 3, &iova,
			       RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova, 1 << 5));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova, IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(EINVAL, errno);
	close(mfd);
}

/*
 * A file mapping's length must leave room for its page count (pages.c's iopt_alloc_pages():
 * "length > SIZE_MAX - PAGE_SIZE" is EINVAL), whichever IOVA it asks for; one byte less is
 * accepted (bookkeeping only, nothing is pinned without a domain).
 */
TEST_F(map, map_file_huge_length_is_einval)
{
	int mfd = memfd_create("iommufd-rs", 0);
	__u64 iova = 0, unmapped = 0;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, PAGE));
	EXPECT_FAIL(EINVAL, map_file(self->fd, self->ioas, mfd, 0, UINT64_MAX - PAGE + 1, &iova,
				     RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	iova = 0;
	EXPECT_FAIL(EINVAL, map_file(self->fd, self->ioas, mfd, 0, UINT64_MAX - PAGE + 1, &iova, RW));
	/* Nothing was mapped by either. */
	EXPECT_FAIL(ENOENT, unmap(self->fd, self->ioas, 0, UINT64_MAX - PAGE + 1, NULL));
	iova = 0;
	ASSERT_EQ(0, map_file(self->fd, self->ioas, mfd, 0, UINT64_MAX - PAGE, &iova,
			      RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(UINT64_MAX - PAGE, unmapped);
	close(mfd);
}

/* A second path to @mfd, opened with @flags. */
static int reopen(int mfd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	return open(path, flags);
}

/*
 * MAP_FILE for device writes (IOMMU_IOAS_MAP_WRITEABLE) where mmap(PROT_WRITE, MAP_SHARED)
 * would refuse: an fd opened read-only (EACCES), a memfd sealed F_SEAL_WRITE or
 * F_SEAL_FUTURE_WRITE (EPERM). Ours refuses as mmap() does, and a writeable mapping keeps
 * F_SEAL_WRITE out (EBUSY) until it goes; the C module maps all of them (logged), and a write
 * through the mapping then changes the sealed file. Read-only mappings are fine on both.
 */
TEST_F(map, map_file_write_permission)
{
	const int rust = impl_is_rust();
	int mfd = memfd_create("iommufd-rs", MFD_ALLOW_SEALING);
	char *p;
	int ro, ret, err, afd;
	__u64 iova;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, 2 * PAGE));
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, 2 * PAGE);
	munmap(p, 2 * PAGE);

	/* Read-only fd. */
	ro = reopen(mfd, O_RDONLY);
	ASSERT_LE(0, ro);
	iova = 0x100000;
	EXPECT_EQ(0, map_file(self->fd, self->ioas, ro, 0, PAGE, &iova,
			      IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
	iova = 0x200000;
	ret = map_file(self->fd, self->ioas, ro, 0, PAGE, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA);
	err = errno;
	if (rust) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EACCES, err);
	} else {
		TH_LOG("C module: writeable MAP_FILE of a read-only fd: %d (%s)", ret,
		       ret ? strerror(err) : "mapped");
	}
	/* What mmap() answers for the same fd. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_WRITE, MAP_SHARED, ro, 0));
	EXPECT_EQ(EACCES, errno);
	close(ro);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));

	/* While mapped writeable, ours keeps F_SEAL_WRITE out, as a writable shared mmap does. */
	iova = 0x100000;
	ASSERT_EQ(0, map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova,
			      RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	ret = fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE);
	err = errno;
	if (rust) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EBUSY, err);
	} else {
		TH_LOG("C module: F_SEAL_WRITE while mapped writeable: %d (%s)", ret,
		       ret ? strerror(err) : "sealed");
	}
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	if (rust)
		ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	ASSERT_EQ(F_SEAL_WRITE, fcntl(mfd, F_GET_SEALS) & F_SEAL_WRITE);

	/* Sealed F_SEAL_WRITE. */
	iova = 0x100000;
	EXPECT_EQ(0, map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova,
			      IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
	iova = 0x200000;
	ret = map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA);
	err = errno;
	if (rust) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EPERM, err);
	} else {
		TH_LOG("C module: writeable MAP_FILE of an F_SEAL_WRITE memfd: %d (%s)", ret,
		       ret ? strerror(err) : "mapped");
		if (!ret && !create_access(self->fd, self->ioas, 0, &afd)) {
			char w[16];

			/* A device write (through an emulated access) into the sealed file. */
			memset(w, 0x22, sizeof(w));
			ret = access_rw(self->fd, afd, 0x200000, w, sizeof(w), MOCK_ACCESS_RW_WRITE);
			p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, mfd, 0);
			ASSERT_NE(MAP_FAILED, p);
			TH_LOG("C module: write through it: %d; sealed file now starts %#x", ret,
			       (unsigned char)p[0]);
			munmap(p, PAGE);
			close(afd);
		}
	}
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_WRITE, MAP_SHARED, mfd, 0));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	close(mfd);

	/* Sealed F_SEAL_FUTURE_WRITE. */
	mfd = memfd_create("iommufd-rs", MFD_ALLOW_SEALING);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, PAGE));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
	iova = 0x100000;
	EXPECT_EQ(0, map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova,
			      IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
	iova = 0x200000;
	ret = map_file(self->fd, self->ioas, mfd, 0, PAGE, &iova,
		       IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA);
	err = errno;
	if (rust) {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EPERM, err);
	} else {
		TH_LOG("C module: writeable MAP_FILE of an F_SEAL_FUTURE_WRITE memfd: %d (%s)", ret,
		       ret ? strerror(err) : "mapped");
	}
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_WRITE, MAP_SHARED, mfd, 0));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	close(mfd);

	/* A hugetlbfs memfd opened read-only, where the VM has huge pages to give. */
	mfd = memfd_create("iommufd-rs", MFD_HUGETLB);
	if (mfd < 0 || ftruncate(mfd, HUGE)) {
		TH_LOG("no hugetlbfs memfd (%s): its case not run", strerror(errno));
	} else {
		ro = reopen(mfd, O_RDONLY);
		ASSERT_LE(0, ro);
		iova = 0x400000;
		ret = map_file(self->fd, self->ioas, ro, 0, HUGE, &iova,
			       RW | IOMMU_IOAS_MAP_FIXED_IOVA);
		err = errno;
		if (rust) {
			EXPECT_EQ(-1, ret);
			EXPECT_EQ(EACCES, err);
		} else {
			TH_LOG("C module: writeable MAP_FILE of a read-only hugetlbfs fd: %d (%s)",
			       ret, ret ? strerror(err) : "mapped");
		}
		iova = 0x800000;
		EXPECT_EQ(0, map_file(self->fd, self->ioas, ro, 0, HUGE, &iova,
				      IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA));
		ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
		close(ro);
	}
	if (mfd >= 0)
		close(mfd);
}

TEST_HARNESS_MAIN
