// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: allocation-failure injection for every IOAS ioctl. For n = 1, 2, ... the
 * n-th allocation of the task fails (failslab + fail_page_alloc, /proc/self/task/<tid>/fail-nth)
 * during one ioctl (or the test build's fail_iommufd point makes a lookup miss); the ioctl must
 * then fail with ENOMEM (ENOENT) and leave no trace (the same call
 * afterwards gives the answer an uninjected call gives, IDs are not used up, no area is left
 * half-made), and the fd must still work. The loop ends when the ioctl completes without
 * reaching the n-th allocation. Leaks of memory are kmemleak's to find (make check-hard).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"
#include "fail_nth.h"

static char *buf;

/* Let every allocation be injectable, and keep the injection quiet in dmesg. */
static __attribute__((constructor)) void setup(void)
{
	fail_nth_setup();
	writefile("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N");
	buf = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/*
 * The helpers of common.h as FAIL_NTH_LOOP wants them, like ranges() below: 0 or -errno rather
 * than -1 and errno. nth_map maps buf readable and writeable (and @flags); nth_copy copies
 * readable and writeable to a fixed IOVA.
 */
static int nth_ioas_alloc(int fd, __u32 *id)
{
	return ioas_alloc(fd, id) ? -errno : 0;
}

static int nth_destroy(int fd, __u32 id)
{
	return destroy(fd, id) ? -errno : 0;
}

static int nth_map(int fd, __u32 ioas, __u64 *iova, __u32 flags, __u64 len)
{
	return map(fd, ioas, buf, len, iova, RW | flags) ? -errno : 0;
}

static int nth_unmap(int fd, __u32 ioas, __u64 iova, __u64 len, __u64 *out)
{
	return unmap(fd, ioas, iova, len, out) ? -errno : 0;
}

static int nth_copy(int fd, __u32 dst, __u32 src, __u64 dst_iova, __u64 src_iova, __u64 len)
{
	return copy(fd, dst, &dst_iova, src, src_iova, len, RW | IOMMU_IOAS_MAP_FIXED_IOVA) ?
		-errno : 0;
}

static int nth_add_reserved(int fd, __u32 ioas, __u64 start, __u64 len)
{
	return add_reserved(fd, ioas, start, len) ? -errno : 0;
}

static int nth_allow(int fd, __u32 ioas, struct iommu_iova_range *r, __u32 n)
{
	return allow(fd, ioas, r, n) ? -errno : 0;
}

static int ranges(int fd, __u32 ioas, __u32 *num)
{
	struct iommu_iova_range r[8];
	struct iommu_ioas_iova_ranges c = {
		.size = sizeof(c), .ioas_id = ioas, .num_iovas = 8, .allowed_iovas = (uintptr_t)r,
	};
	int ret = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &c);

	*num = c.num_iovas;
	return ret ? -errno : 0;
}

/* The fd still does its basic job after an injected failure. */
static bool fd_works(int fd)
{
	__u32 id;

	return !nth_ioas_alloc(fd, &id) && !nth_destroy(fd, id);
}

/*
 * Drives one scenario: `prepare` sets up a fresh fd without injection, `op` is the ioctl under
 * test, `check` verifies the state after an injected failure. Returns the number of injection
 * points seen, or -1 on a failed expectation (reported through the harness).
 */
#define FAIL_NTH_LOOP(_prepare, _op, _check)                                           \
	do {                                                                          \
		unsigned int n;                                                       \
		nth_open();                                                           \
		if (nth_fd < 0)                                                       \
			SKIP(return, "no /proc/self/task/<tid>/fail-nth (CONFIG_FAULT_INJECTION_DEBUG_FS)"); \
		for (n = 1; n < 500; n++) {                                           \
			int fd = open("/dev/iommu", O_RDWR), rc;                      \
			bool fired;                                                   \
			ASSERT_LE(0, fd);                                             \
			_prepare;                                                     \
			nth_arm(n);                                                   \
			rc = (_op);                                                   \
			fired = nth_fired();                                          \
			if (!fired) {                                                 \
				ASSERT_EQ(0, rc) {                                    \
					TH_LOG("uninjected call failed: %d", rc);     \
				}                                                     \
				close(fd);                                            \
				break;                                                \
			}                                                             \
			if (rc) {                                                     \
				/* ENOENT: the test build's fail_iommufd point in a lookup */ \
				ASSERT_TRUE(rc == -ENOMEM || rc == -ENOENT) {         \
					TH_LOG("n=%u: %d", n, rc);                    \
				}                                                     \
				_check;                                               \
			}                                                             \
			ASSERT_TRUE(fd_works(fd)) {                                   \
				TH_LOG("fd broken after n=%u", n);                    \
			}                                                             \
			close(fd);                                                    \
		}                                                                     \
		ASSERT_GT(500, n);                                                    \
		TH_LOG("%u injection points", n - 1);                                \
	} while (0)

TEST(alloc)
{
	__u32 ioas, id, again;

	FAIL_NTH_LOOP(
		{ ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas)); },
		nth_ioas_alloc(fd, &id),
		{
			/* The failed call did not use up an ID. */
			ASSERT_EQ(0, nth_ioas_alloc(fd, &again));
			EXPECT_EQ(ioas + 1, again);
		});
}

TEST(map_fixed_iova)
{
	__u32 ioas;
	__u64 iova, got;

	FAIL_NTH_LOOP(
		{ ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas)); iova = 0x100000; },
		nth_map(fd, ioas, &iova, IOMMU_IOAS_MAP_FIXED_IOVA, 16 * PAGE),
		{
			/* No half-made area: the same mapping goes in, and out whole. */
			iova = 0x100000;
			ASSERT_EQ(0, nth_map(fd, ioas, &iova, IOMMU_IOAS_MAP_FIXED_IOVA,
					     16 * PAGE));
			ASSERT_EQ(0, nth_unmap(fd, ioas, 0, UINT64_MAX, &got));
			EXPECT_EQ(16 * PAGE, got);
		});
}

TEST(map_auto_and_copy)
{
	__u32 ioas, dst;
	__u64 iova, got;

	FAIL_NTH_LOOP(
		{
			ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas));
			ASSERT_EQ(0, nth_ioas_alloc(fd, &dst));
			iova = 0x100000;
			ASSERT_EQ(0, nth_map(fd, ioas, &iova, IOMMU_IOAS_MAP_FIXED_IOVA, 8 * PAGE));
			iova = 0x108000;
			ASSERT_EQ(0, nth_map(fd, ioas, &iova, IOMMU_IOAS_MAP_FIXED_IOVA, 8 * PAGE));
		},
		nth_copy(fd, dst, ioas, 0x200000, 0x104000, 8 * PAGE),
		{
			ASSERT_EQ(0, nth_unmap(fd, dst, 0, UINT64_MAX, &got));
			EXPECT_EQ(0, got);
		});
	FAIL_NTH_LOOP(
		{ ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas)); iova = 0; },
		nth_map(fd, ioas, &iova, 0, 4 * PAGE),
		{
			ASSERT_EQ(0, nth_unmap(fd, ioas, 0, UINT64_MAX, &got));
			EXPECT_EQ(0, got);
		});
}

TEST(unmap_range)
{
	__u32 ioas;
	__u64 iova, got;

	FAIL_NTH_LOOP(
		{
			ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas));
			for (int i = 0; i < 4; i++) {
				iova = 0x100000 + i * PAGE;
				ASSERT_EQ(0, nth_map(fd, ioas, &iova, IOMMU_IOAS_MAP_FIXED_IOVA,
						     PAGE));
			}
		},
		nth_unmap(fd, ioas, 0x100000, 4 * PAGE, &got),
		{
			ASSERT_EQ(0, nth_unmap(fd, ioas, 0, UINT64_MAX, &got));
		});
}

TEST(ranges_reserved_allowed)
{
	struct iommu_iova_range allowed[3] = {
		{ .start = 0x100000, .last = 0x1fffff },
		{ .start = 0x300000, .last = 0x3fffff },
		{ .start = 0x500000, .last = 0x5fffff },
	};
	__u32 ioas, num;

	FAIL_NTH_LOOP(
		{ ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas)); },
		nth_add_reserved(fd, ioas, 0x10000, PAGE),
		{
			ASSERT_EQ(0, ranges(fd, ioas, &num));
			EXPECT_EQ(1, num);
		});
	FAIL_NTH_LOOP(
		{
			ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas));
			ASSERT_EQ(0, nth_add_reserved(fd, ioas, 0x10000, PAGE));
		},
		ranges(fd, ioas, &num),
		{
			ASSERT_EQ(0, ranges(fd, ioas, &num));
			EXPECT_EQ(2, num);
		});
	FAIL_NTH_LOOP(
		{ ASSERT_EQ(0, nth_ioas_alloc(fd, &ioas)); },
		nth_allow(fd, ioas, allowed, 3),
		{
			/* The old (empty) list stands: a reservation inside the new one is fine. */
			EXPECT_EQ(0, nth_add_reserved(fd, ioas, 0x300000, PAGE));
		});
}

TEST_HARNESS_MAIN
