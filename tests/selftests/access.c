// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: emulated accesses (IOMMU_TEST_OP_CREATE_ACCESS and the ops on the access
 * fd): pinning pages by IOVA, reading and writing through the IOAS, being told of unmaps, moving
 * to another IOAS, and what an access holds until its fd is closed.
 * Upstream behaviour: both modules must pass. One exception, where ours is stricter
 * (create_without_ops: Documentation/design.rst, "Where we are stricter than upstream"): it
 * asserts our answer and logs the C module's.
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
#include <sys/wait.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

#define BUF_LEN (64 * PAGE)
/* The fixture maps the first NPAGES pages of its buffer here. */
#define BASE ((__u64)MOCK_APERTURE_START)
#define NPAGES 16
#define PIN MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES

static void fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}

FIXTURE(access)
{
	int fd;
	__u32 ioas;
	unsigned char *buf;
};

FIXTURE_SETUP(access)
{
	void *p;

	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	ASSERT_EQ(0, posix_memalign(&p, HUGE, BUF_LEN));
	self->buf = p;
	/* Small pages whatever the THP setting: MD_CHECK_REFS counts pins on small pages only. */
	ASSERT_EQ(0, madvise(self->buf, BUF_LEN, MADV_NOHUGEPAGE));
	fill(self->buf, BUF_LEN, 1);
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, NPAGES * PAGE, BASE, RW));
}

FIXTURE_TEARDOWN(access)
{
	if (self->fd >= 0)
		close(self->fd);
	free(self->buf);
}

/* An access is an fd; while it exists it holds its IOAS (EBUSY), closing it lets the IOAS go. */
TEST_F(access, create_and_close)
{
	int afd, pafd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	EXPECT_LE(0, afd);
	EXPECT_NE(self->fd, afd);
	/* The fd is close-on-exec. */
	EXPECT_EQ(FD_CLOEXEC, fcntl(afd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &pafd));
	EXPECT_NE(afd, pafd);
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	close(afd);
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	close(pafd);
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* CREATE_ACCESS knows one flag and needs an IOAS id. */
TEST_F(access, create_bad_input)
{
	__u32 stdev;
	int afd;

	EXPECT_FAIL(EOPNOTSUPP, create_access(self->fd, self->ioas, 1 << 1, &afd));
	EXPECT_FAIL(EOPNOTSUPP, create_access(self->fd, self->ioas, PIN | (1 << 4), &afd));
	EXPECT_FAIL(ENOENT, create_access(self->fd, 9999, 0, &afd));
	EXPECT_FAIL(ENOENT, create_access(self->fd, 0, PIN, &afd));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, NULL));
	EXPECT_FAIL(ENOENT, create_access(self->fd, stdev, 0, &afd));
	/* None of these left anything holding the IOAS. */
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/*
 * iommufd_access_create() without an ops table (a broken driver) answers EINVAL and makes
 * nothing: no object holds the IOAS, no fd is left. Our test build reaches it with a flag only it
 * knows (MOCK_FLAGS_ACCESS_CREATE_NULL_OPS in src/selftest/mod.rs); upstream's selftest answers
 * EOPNOTSUPP to that flag, and upstream's iommufd_access_create() dereferences the ops it is
 * given (where we are stricter than upstream: Documentation/design.rst).
 */
#define NULL_OPS (1u << 31)
TEST_F(access, create_without_ops)
{
	int afd, before, after;

	before = dup(0);
	ASSERT_LE(0, before);
	close(before);
	if (!impl_is_rust()) {
		int ret = create_access(self->fd, self->ioas, NULL_OPS, &afd);
		int err = errno;

		TH_LOG("C module: CREATE_ACCESS with our null-ops flag: %d (%s)", ret,
		       ret ? strerror(err) : "accepted");
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EOPNOTSUPP, err);
		return;
	}
	EXPECT_FAIL(EINVAL, create_access(self->fd, self->ioas, NULL_OPS, &afd));
	EXPECT_FAIL(EINVAL, create_access(self->fd, self->ioas, NULL_OPS | PIN, &afd));
	after = dup(0);
	EXPECT_EQ(before, after);
	close(after);
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* A pinning access needs page-aligned areas; with one attached, sub-page maps are refused. */
TEST_F(access, pin_access_needs_page_aligned_areas)
{
	int afd;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 3, 100, BASE + 0x400003, RW));
	EXPECT_FAIL(EADDRINUSE, create_access(self->fd, self->ioas, PIN, &afd));
	/* An access that only reads and writes does not care. */
	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	close(afd);
	ASSERT_EQ(0, unmap(self->fd, self->ioas, BASE + 0x400003, 100, NULL));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, PAGE, BASE + 0x400800, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf, 100, BASE + 0x400000, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, self->ioas, self->buf + 0x800, PAGE, BASE + 0x400000,
				   RW));
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, BASE + 0x400000, RW));
	/* The rule goes with the access. */
	close(afd);
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf + 3, 100, BASE + 0x500003, RW));
}

/* ACCESS_PAGES is only for accesses created with NEEDS_PIN_PAGES. */
TEST_F(access, pin_needs_pin_access)
{
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	EXPECT_FAIL(EOPNOTSUPP, access_pages(self->fd, afd, BASE, PAGE, self->buf, 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	close(afd);
}

/* Pins are counted per page and undone by DESTROY_ACCESS_PAGES; overlapping pins pin once. */
TEST_F(access, pin_and_unpin)
{
	__u32 id1, id2;
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + 4 * PAGE, 4 * PAGE, self->buf + 4 * PAGE,
				  0, &id1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 4 * PAGE, 4 * PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 8 * PAGE, 8 * PAGE, 0));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + 6 * PAGE, 4 * PAGE, self->buf + 6 * PAGE,
				  MOCK_FLAGS_ACCESS_WRITE, &id2));
	EXPECT_NE(id1, id2);
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 4 * PAGE, 6 * PAGE, 1));
	ASSERT_EQ(0, unpin(self->fd, afd, id1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 4 * PAGE, 2 * PAGE, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 6 * PAGE, 4 * PAGE, 1));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, id1));
	ASSERT_EQ(0, unpin(self->fd, afd, id2));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, id2));
	close(afd);
}

/* The pages returned are the ones under the user VA: a wrong uptr is EBADE, and nothing stays. */
TEST_F(access, pin_checks_pages)
{
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(EBADE, access_pages(self->fd, afd, BASE, 2 * PAGE, self->buf + PAGE, 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	/* uptr 0 skips the check. */
	EXPECT_EQ(0, access_pages(self->fd, afd, BASE, 2 * PAGE, NULL, 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 2 * PAGE, 1));
	close(afd);
}

/* The start must be page-aligned in the memory; the length need not be, it rounds to pages. */
TEST_F(access, pin_alignment)
{
	__u32 id;
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(EINVAL, access_pages(self->fd, afd, BASE + 1, PAGE, self->buf + 1, 0, NULL));
	EXPECT_FAIL(EINVAL, access_pages(self->fd, afd, BASE + 100, 10, self->buf + 100, 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 100, self->buf, 0, &id));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + PAGE, PAGE, 0));
	ASSERT_EQ(0, unpin(self->fd, afd, id));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + 2 * PAGE, PAGE + 1, self->buf + 2 * PAGE, 0,
				  &id));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 2 * PAGE, 2 * PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 4 * PAGE, PAGE, 0));
	ASSERT_EQ(0, unpin(self->fd, afd, id));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	close(afd);
}

/* Pins need every IOVA mapped; a partial success is undone. Adjacent areas may be spanned. */
TEST_F(access, pin_needs_mapped_iova)
{
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(ENOENT, access_pages(self->fd, afd, BASE + 0x900000, PAGE, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, access_pages(self->fd, afd, BASE + (NPAGES - 2) * PAGE, 4 * PAGE,
					 NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, access_pages(self->fd, afd, BASE - PAGE, 2 * PAGE, NULL, 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	/* Two adjacent areas, and one beyond a gap. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 32 * PAGE, 4 * PAGE,
			    BASE + NPAGES * PAGE, RW));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 40 * PAGE, 4 * PAGE,
			    BASE + (NPAGES + 5) * PAGE, RW));
	EXPECT_EQ(0, access_pages(self->fd, afd, BASE + (NPAGES - 2) * PAGE, 4 * PAGE, NULL, 0,
				  NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + (NPAGES - 2) * PAGE, 2 * PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 2 * PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 34 * PAGE, 2 * PAGE, 0));
	EXPECT_FAIL(ENOENT, access_pages(self->fd, afd, BASE + (NPAGES + 3) * PAGE, 3 * PAGE, NULL,
					 0, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 34 * PAGE, 2 * PAGE, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 40 * PAGE, 4 * PAGE, 0));
	close(afd);
}

/* A write pin of a read-only mapping is EPERM; a read pin is fine. */
TEST_F(access, pin_write_to_read_only_is_eperm)
{
	int afd;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 32 * PAGE, 4 * PAGE, BASE + 0x400000,
			    IOMMU_IOAS_MAP_READABLE));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(EPERM, access_pages(self->fd, afd, BASE + 0x400000, PAGE, self->buf + 32 * PAGE,
					MOCK_FLAGS_ACCESS_WRITE, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 4 * PAGE, 0));
	EXPECT_EQ(0, access_pages(self->fd, afd, BASE + 0x400000, PAGE, self->buf + 32 * PAGE, 0,
				  NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, PAGE, 1));
	close(afd);
}

/* ACCESS_PAGES argument checks. */
TEST_F(access, pin_bad_input)
{
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	EXPECT_FAIL(EOPNOTSUPP, access_pages(self->fd, afd, BASE, PAGE, NULL, 1 << 3, NULL));
	EXPECT_FAIL(EINVAL, access_pages(self->fd, afd, BASE, 0, NULL, 0, NULL));
	EXPECT_FAIL(EOVERFLOW, access_pages(self->fd, afd, UINT64_MAX - PAGE + 1, 2 * PAGE, NULL,
					    0, NULL));
	EXPECT_FAIL(ENOMEM, access_pages(self->fd, afd, BASE, 16 * 1024 * 1024 + 1, NULL, 0, NULL));
	/* The id is an access fd: anything else is EBADFD. */
	EXPECT_FAIL(EBADFD, access_pages(self->fd, self->fd, BASE, PAGE, NULL, 0, NULL));
	EXPECT_FAIL(EBADFD, access_pages(self->fd, 9999, BASE, PAGE, NULL, 0, NULL));
	EXPECT_FAIL(EBADFD, unpin(self->fd, self->fd, 0));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	close(afd);
}

/* Unmapping pinned IOVA succeeds: the access is told, unpins, and its item is gone. */
TEST_F(access, unmap_tells_access_to_unpin)
{
	__u64 unmapped = 0;
	__u32 id1, id2;
	int afd;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 32 * PAGE, 8 * PAGE, BASE + 0x400000,
			    RW));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf, 0, &id1));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + 0x400000, 8 * PAGE, self->buf + 32 * PAGE,
				  0, &id2));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, BASE, NPAGES * PAGE, &unmapped));
	EXPECT_EQ(NPAGES * PAGE, unmapped);
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, id1));
	/* The other pin was not in the range and is still there. */
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 8 * PAGE, 1));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, &unmapped));
	EXPECT_EQ(8 * PAGE, unmapped);
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 8 * PAGE, 0));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, id2));
	/* And the access keeps working on new maps. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf, PAGE, BASE, RW));
	EXPECT_EQ(0, access_pages(self->fd, afd, BASE, PAGE, self->buf, 0, NULL));
	close(afd);
}

/* Closing the access fd unpins everything it pinned and releases the IOAS. */
TEST_F(access, close_releases_pins)
{
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf, 0, NULL));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + 8 * PAGE, 8 * PAGE, self->buf + 8 * PAGE,
				  MOCK_FLAGS_ACCESS_WRITE, NULL));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->ioas));
	close(afd);
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
}

/* The access holds the iommufd context: closing the iommufd first leaves its pins in place. */
TEST_F(access, close_iommufd_with_access_open)
{
	int afd, fd2;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf, 0, NULL));
	close(self->fd);
	self->fd = -1;
	/* The access still pins: the pages stay with it until its fd goes. */
	fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, check_refs(fd2, self->buf, 4 * PAGE, 1));
	close(afd);
	EXPECT_EQ(0, check_refs(fd2, self->buf, NPAGES * PAGE, 0));
	close(fd2);
}

/* An access pin and a domain share one pin of each page. */
TEST_F(access, pin_shared_with_domain)
{
	__u32 stdev, id;
	int afd;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf, 0, &id));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	/* The domain goes: the access's pages stay pinned, the rest are released. */
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 4 * PAGE, (NPAGES - 4) * PAGE, 0));
	/* A new domain is filled from the pinned pages and the user memory, pinning once. */
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, NULL));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	ASSERT_EQ(0, unpin(self->fd, afd, id));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	close(afd);
}

/*
 * Access pins of exactly the span of the area's own pin (the domain's), twice, and a smaller one:
 * each unpin ends one access pin, never the area's; the domain's going leaves the access pins;
 * an unmap is held for every access pin still counted and goes through once they are unpinned.
 * (An unpin that matches no access pin is possible only for in-kernel callers; upstream and ours
 * then change nothing.)
 */
TEST_F(access, pins_on_the_area_span)
{
	__u32 stdev, whole1, whole2, part;
	__u64 unmapped = 0;
	int afd;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, NULL));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, NPAGES * PAGE, self->buf, 0, &whole1));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, NPAGES * PAGE, self->buf, 0, &whole2));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE + PAGE, PAGE, self->buf + PAGE, 0, &part));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	ASSERT_EQ(0, unpin(self->fd, afd, whole1));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	/* The domain's pin went; the access's whole-span pin keeps every page. */
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	ASSERT_EQ(0, unpin(self->fd, afd, whole2));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, PAGE, 0));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + PAGE, PAGE, 1));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 2 * PAGE, (NPAGES - 2) * PAGE, 0));
	/* The last pin is counted: the unmap asks the access for it, then goes through. */
	ASSERT_EQ(0, unmap(self->fd, self->ioas, BASE, NPAGES * PAGE, &unmapped));
	EXPECT_EQ(NPAGES * PAGE, unmapped);
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, part));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 0));
	close(afd);
}

/* ACCESS_RW copies bytes to and from the memory under any IOVA range, aligned or not. */
TEST_F(access, rw_read_write)
{
	static const struct {
		__u64 off, len;
	} cases[] = {
		{ 0, 1 }, { 0, PAGE }, { 5, 10 }, { PAGE - 3, 6 }, { 123, 3 * PAGE + 77 },
		{ 2 * PAGE, 4 * PAGE }, { NPAGES * PAGE - 1, 1 }, { 0, NPAGES * PAGE },
	};
	static const __u32 modes[] = { 0, MOCK_ACCESS_RW_SLOW_PATH };
	unsigned char *data = malloc(NPAGES * PAGE), *want = malloc(BUF_LEN);
	unsigned int seed = 10;
	int afd;

	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, want);
	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	for (unsigned int m = 0; m < 2; m++) {
		for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			__u64 off = cases[c].off, len = cases[c].len;

			/* Write, then see it in memory and nowhere else. */
			memcpy(want, self->buf, BUF_LEN);
			fill(data, len, seed++);
			ASSERT_EQ(0, access_rw(self->fd, afd, BASE + off, data, len,
					       modes[m] | MOCK_ACCESS_RW_WRITE));
			memcpy(want + off, data, len);
			ASSERT_EQ(0, memcmp(want, self->buf, BUF_LEN))
				TH_LOG("mode %u case %u: write", m, c);
			/* Memory written by the CPU reads back through the access. */
			fill(self->buf + off, len, seed++);
			memset(data, 0, len);
			ASSERT_EQ(0, access_rw(self->fd, afd, BASE + off, data, len, modes[m]));
			ASSERT_EQ(0, memcmp(data, self->buf + off, len))
				TH_LOG("mode %u case %u: read", m, c);
		}
	}
	close(afd);
	free(data);
	free(want);
}

/* RW spans adjacent areas, whatever memory each one maps; a gap or unmapped IOVA is ENOENT. */
TEST_F(access, rw_across_areas_and_holes)
{
	unsigned char data[2 * PAGE];
	int afd;

	/* After BASE's area, an area backed by buf + 40 pages, then a hole. */
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 40 * PAGE, 2 * PAGE,
			    BASE + NPAGES * PAGE, RW));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	for (int slow = 0; slow < 2; slow++) {
		__u32 flags = slow ? MOCK_ACCESS_RW_SLOW_PATH : 0;

		fill(data, sizeof(data), 50 + slow);
		ASSERT_EQ(0, access_rw(self->fd, afd, BASE + NPAGES * PAGE - PAGE - 9, data,
				       sizeof(data), flags | MOCK_ACCESS_RW_WRITE));
		EXPECT_EQ(0, memcmp(self->buf + NPAGES * PAGE - PAGE - 9, data, PAGE + 9));
		EXPECT_EQ(0, memcmp(self->buf + 40 * PAGE, data + PAGE + 9, PAGE - 9));
		memset(data, 0, sizeof(data));
		ASSERT_EQ(0, access_rw(self->fd, afd, BASE + NPAGES * PAGE - PAGE - 9, data,
				       sizeof(data), flags));
		EXPECT_EQ(0, memcmp(self->buf + NPAGES * PAGE - PAGE - 9, data, PAGE + 9));
		EXPECT_EQ(0, memcmp(self->buf + 40 * PAGE, data + PAGE + 9, PAGE - 9));

		EXPECT_FAIL(ENOENT, access_rw(self->fd, afd, BASE - 1, data, 2, flags));
		EXPECT_FAIL(ENOENT, access_rw(self->fd, afd, BASE + 0x900000, data, 1, flags));
		EXPECT_FAIL(ENOENT, access_rw(self->fd, afd, BASE + (NPAGES + 1) * PAGE, data,
					      2 * PAGE, flags));
		/*
		 * Upstream copies area by area and finds the hole last: a write running into it
		 * fails, but the mapped part before the hole has been written.
		 */
		memset(data, 0xab, sizeof(data));
		EXPECT_FAIL(ENOENT, access_rw(self->fd, afd, BASE + (NPAGES + 1) * PAGE, data,
					      2 * PAGE, flags | MOCK_ACCESS_RW_WRITE));
		EXPECT_EQ(0, memcmp(self->buf + 41 * PAGE, data, PAGE));
		fill(self->buf + 41 * PAGE, PAGE, 3);
	}
	close(afd);
}

/* Writes to a read-only mapping and reads of a write-only one are EPERM, on both paths. */
TEST_F(access, rw_permissions)
{
	unsigned char data[64], before[64];
	int afd;

	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 32 * PAGE, PAGE, BASE + 0x400000,
			    IOMMU_IOAS_MAP_READABLE));
	ASSERT_EQ(0, map_at(self->fd, self->ioas, self->buf + 33 * PAGE, PAGE, BASE + 0x500000,
			    IOMMU_IOAS_MAP_WRITEABLE));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	memcpy(before, self->buf + 32 * PAGE + 8, sizeof(before));
	for (int slow = 0; slow < 2; slow++) {
		__u32 flags = slow ? MOCK_ACCESS_RW_SLOW_PATH : 0;

		fill(data, sizeof(data), 90);
		EXPECT_FAIL(EPERM, access_rw(self->fd, afd, BASE + 0x400008, data, sizeof(data),
					     flags | MOCK_ACCESS_RW_WRITE));
		EXPECT_EQ(0, memcmp(before, self->buf + 32 * PAGE + 8, sizeof(before)));
		EXPECT_EQ(0, access_rw(self->fd, afd, BASE + 0x400008, data, sizeof(data), flags));
		EXPECT_EQ(0, memcmp(data, self->buf + 32 * PAGE + 8, sizeof(data)));
		EXPECT_FAIL(EPERM, access_rw(self->fd, afd, BASE + 0x500008, data, sizeof(data),
					     flags));
		fill(data, sizeof(data), 91 + slow);
		EXPECT_EQ(0, access_rw(self->fd, afd, BASE + 0x500008, data, sizeof(data),
				       flags | MOCK_ACCESS_RW_WRITE));
		EXPECT_EQ(0, memcmp(data, self->buf + 33 * PAGE + 8, sizeof(data)));
	}
	close(afd);
}

/* ACCESS_RW argument checks. */
TEST_F(access, rw_bad_input)
{
	unsigned char data[16];
	int afd;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	EXPECT_FAIL(EINVAL, access_rw(self->fd, afd, BASE, data, 0, 0));
	EXPECT_FAIL(EOPNOTSUPP, access_rw(self->fd, afd, BASE, data, sizeof(data), 1 << 1));
	EXPECT_FAIL(EOPNOTSUPP, access_rw(self->fd, afd, BASE, data, sizeof(data), 1 << 5));
	EXPECT_FAIL(EOVERFLOW, access_rw(self->fd, afd, UINT64_MAX - 3, data, sizeof(data), 0));
	EXPECT_FAIL(ENOMEM, access_rw(self->fd, afd, BASE, data, 16 * 1024 * 1024 + 1, 0));
	EXPECT_FAIL(EBADFD, access_rw(self->fd, self->fd, BASE, data, sizeof(data), 0));
	EXPECT_FAIL(EBADFD, access_rw(self->fd, 9999, BASE, data, sizeof(data), 0));
	/* A bad user buffer faults, in either direction. */
	EXPECT_FAIL(EFAULT, access_rw(self->fd, afd, BASE, (void *)8, sizeof(data),
				      MOCK_ACCESS_RW_WRITE));
	EXPECT_FAIL(EFAULT, access_rw(self->fd, afd, BASE, (void *)8, sizeof(data), 0));
	close(afd);
}

/* From another process the access still reaches the memory of the process that mapped it. */
TEST_F(access, rw_from_another_process)
{
	unsigned char data[3 * PAGE];
	int afd, status;
	pid_t pid;

	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	fill(self->buf, NPAGES * PAGE, 33);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* This process's copy now differs from the mapped (parent's) memory. */
		unsigned char orig[3 * PAGE];

		memcpy(orig, self->buf + PAGE + 5, sizeof(orig));
		memset(self->buf, 0xee, NPAGES * PAGE);
		if (access_rw(self->fd, afd, BASE + PAGE + 5, data, sizeof(data), 0))
			_exit(1);
		if (memcmp(data, orig, sizeof(data)))
			_exit(2);
		memset(data, 0x77, sizeof(data));
		if (access_rw(self->fd, afd, BASE + 2 * PAGE, data, PAGE + 1,
			      MOCK_ACCESS_RW_WRITE))
			_exit(3);
		if (self->buf[2 * PAGE] != 0xee)
			_exit(4);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	memset(data, 0x77, PAGE + 1);
	EXPECT_EQ(0, memcmp(self->buf + 2 * PAGE, data, PAGE + 1));
	EXPECT_NE(0x77, self->buf[3 * PAGE + 1]);
	close(afd);
}

/* With a domain attached RW goes through the pinned pages; the slow path sees CPU writes too. */
TEST_F(access, rw_with_domain)
{
	unsigned char data[PAGE + 100];
	__u32 stdev;
	int afd;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, NULL, NULL));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	fill(data, sizeof(data), 7);
	ASSERT_EQ(0, access_rw(self->fd, afd, BASE + 3 * PAGE - 50, data, sizeof(data),
			       MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH));
	EXPECT_EQ(0, memcmp(self->buf + 3 * PAGE - 50, data, sizeof(data)));
	fill(self->buf + 3 * PAGE - 50, sizeof(data), 8);
	ASSERT_EQ(0, access_rw(self->fd, afd, BASE + 3 * PAGE - 50, data, sizeof(data),
			       MOCK_ACCESS_RW_SLOW_PATH));
	EXPECT_EQ(0, memcmp(self->buf + 3 * PAGE - 50, data, sizeof(data)));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, NPAGES * PAGE, 1));
	close(afd);
}

/*
 * A page of a 2 TiB mapping (reserved address space, nearly all untouched) can be pinned and read
 * through the slow path: what is pinned costs what it pins, not the mapping's length.
 */
TEST_F(access, pin_in_huge_mapping)
{
	const __u64 len = 2ULL << 40, iova = 1ULL << 44;
	unsigned char out[64];
	__u32 id;
	char *big;
	int afd;

	big = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (big == MAP_FAILED)
		SKIP(return, "no 2 TiB of address space: %s", strerror(errno));
	memset(big + len / 2, 0x5a, PAGE);
	ASSERT_EQ(0, map_at(self->fd, self->ioas, big, len, iova, RW));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, iova + len / 2, PAGE, big + len / 2, 0, &id));
	EXPECT_EQ(0, check_refs(self->fd, big + len / 2, PAGE, 1));
	memset(out, 0, sizeof(out));
	ASSERT_EQ(0, access_rw(self->fd, afd, iova + len / 2, out, sizeof(out),
			       MOCK_ACCESS_RW_SLOW_PATH));
	EXPECT_EQ(0x5a, out[0]);
	EXPECT_EQ(0x5a, out[sizeof(out) - 1]);
	ASSERT_EQ(0, unpin(self->fd, afd, id));
	EXPECT_EQ(0, check_refs(self->fd, big + len / 2, PAGE, 0));
	close(afd);
	EXPECT_EQ(0, unmap(self->fd, self->ioas, iova, len, NULL));
	munmap(big, len);
}

/* ACCESS_REPLACE_IOAS moves the access: RW then reads the new IOAS, and the old one is free. */
TEST_F(access, replace_ioas)
{
	unsigned char data[32];
	__u32 ioas2;
	int afd;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	/* The same IOVA, other memory. */
	ASSERT_EQ(0, map_at(self->fd, ioas2, self->buf + 32 * PAGE, PAGE, BASE, RW));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, 0, &afd));
	ASSERT_EQ(0, access_rw(self->fd, afd, BASE, data, sizeof(data), 0));
	EXPECT_EQ(0, memcmp(data, self->buf, sizeof(data)));
	ASSERT_EQ(0, access_replace(self->fd, afd, ioas2));
	ASSERT_EQ(0, access_rw(self->fd, afd, BASE, data, sizeof(data), 0));
	EXPECT_EQ(0, memcmp(data, self->buf + 32 * PAGE, sizeof(data)));
	EXPECT_FAIL(ENOENT, access_rw(self->fd, afd, BASE + PAGE, data, sizeof(data), 0));
	EXPECT_FAIL(EBUSY, destroy(self->fd, ioas2));
	EXPECT_EQ(0, destroy(self->fd, self->ioas));
	/* A failed replace leaves it where it was. */
	EXPECT_FAIL(ENOENT, access_replace(self->fd, afd, self->ioas));
	EXPECT_FAIL(ENOENT, access_replace(self->fd, afd, 9999));
	EXPECT_FAIL(EBADFD, access_replace(self->fd, self->fd, ioas2));
	EXPECT_EQ(0, access_rw(self->fd, afd, BASE, data, sizeof(data), 0));
	/* Replacing with the IOAS it is on changes nothing. */
	EXPECT_EQ(0, access_replace(self->fd, afd, ioas2));
	EXPECT_FAIL(EBUSY, destroy(self->fd, ioas2));
	close(afd);
	EXPECT_EQ(0, destroy(self->fd, ioas2));
}

/* Moving to another IOAS tells the access to drop every pin first; the same IOAS keeps them. */
TEST_F(access, replace_ioas_drops_pins)
{
	__u32 ioas2, id1, id2;
	int afd;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, map_at(self->fd, ioas2, self->buf + 32 * PAGE, 4 * PAGE, BASE, RW));
	ASSERT_EQ(0, create_access(self->fd, self->ioas, PIN, &afd));
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf, 0, &id1));
	ASSERT_EQ(0, access_replace(self->fd, afd, self->ioas));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 1));
	ASSERT_EQ(0, access_replace(self->fd, afd, ioas2));
	EXPECT_EQ(0, check_refs(self->fd, self->buf, 4 * PAGE, 0));
	EXPECT_FAIL(ENOENT, unpin(self->fd, afd, id1));
	/* Pins now come from the new IOAS; the old one's IOVA means the new one's memory. */
	ASSERT_EQ(0, access_pages(self->fd, afd, BASE, 4 * PAGE, self->buf + 32 * PAGE, 0, &id2));
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 4 * PAGE, 1));
	/* The pin alignment rule moved too. */
	EXPECT_EQ(0, map_at(self->fd, self->ioas, self->buf + 3, 100, BASE + 0x400003, RW));
	EXPECT_FAIL(EINVAL, map_at(self->fd, ioas2, self->buf + 3, 100, BASE + 0x400003, RW));
	EXPECT_FAIL(EADDRINUSE, access_replace(self->fd, afd, self->ioas));
	/* ...and a refused replace did not drop the pins. */
	EXPECT_EQ(0, check_refs(self->fd, self->buf + 32 * PAGE, 4 * PAGE, 1));
	EXPECT_EQ(0, unpin(self->fd, afd, id2));
	close(afd);
}

TEST_HARNESS_MAIN
