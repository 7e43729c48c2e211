// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: many pin users of one pages object. Every per-page pin of an emulated
 * access, and every COPY of an area into an IOAS with a domain, is one more user of the same
 * pages; pinning and unpinning must cost what the user's own span meets, not a scan of all the
 * other users (which made N users cost N^2, under the IOAS and pages locks, without a
 * reschedule).
 *
 * The access test times the same work at N and 10 N users in one boot and bounds the ratio:
 * about 10 when the cost per user does not grow with their number, about 100 for a scan. The copy
 * test times more copies and unmaps among N and among 10 N others. The checks of what is pinned
 * (MD_CHECK_REFS) make sure the work was done.
 *
 * Upstream keeps interval trees of users: per-page access pins scale (both modules must pass),
 * but its span iterator walks every user overlapping a span, so COPYs of one area, all users of
 * the same page, cost N^2 there too (2000 copies and their unmap 0.4 s, 20000 73 s under TCG).
 * That test asserts our bound and, on the C module, logs its ratio at a quarter of the size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

#define PIN MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES
/* Users at the large size, and at the small one. */
#define MANY 20000
#define FEW (MANY / 10)
/* Linear is about 10 (a little more for the log of an rbtree), a scan of the users about 100. */
#define MAX_RATIO 30.0
/*
 * Copies and unmaps timed among FEW and among MANY copies: about 1 (the log of the trees) when
 * each costs what its span meets, about 7 with a scan of the users.
 */
#define CHURN 1000
#define MAX_CHURN_RATIO 3.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A stride coprime with any n not a multiple of 7919: every page once, out of order. */
static __u64 scattered(__u64 i, __u64 n)
{
	return (i * 7919) % n;
}

/*
 * n single-page pins of an access on the pages of a MANY-page area, spread over all of it, then
 * closing the access, which unpins them all. The area is the same size whatever n, so that only
 * the number of users changes between runs, not the memory touched. Seconds taken, or a
 * negative number if a step failed.
 */
static double access_pins(struct __test_metadata *_metadata, __u64 n)
{
	size_t len = MANY * PAGE;
	double t0, t_pin, t_close;
	__u32 ioas;
	char *buf;
	int fd, afd;

	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	/* Small pages: MD_CHECK_REFS counts pins on small pages only. */
	ASSERT_EQ(0, madvise(buf, len, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, map_fixed(fd, ioas, buf, len, AP));
	ASSERT_EQ(0, create_access(fd, ioas, PIN, &afd));

	t0 = now();
	for (__u64 i = 0; i < n; i++) {
		__u64 p = scattered(i, MANY);

		if (access_pages(fd, afd, AP + p * PAGE, PAGE, NULL, 0, NULL)) {
			TH_LOG("pin %llu of %llu (page %llu): %s", (unsigned long long)i,
			       (unsigned long long)n, (unsigned long long)p, strerror(errno));
			return -1;
		}
	}
	t_pin = now() - t0;
	if (n == MANY) {
		/* Each page pinned once, none twice. */
		EXPECT_EQ(0, check_refs(fd, buf, len, 1));
	}
	t0 = now();
	close(afd);
	t_close = now() - t0;
	EXPECT_EQ(0, check_refs(fd, buf, len, 0));
	TH_LOG("  %llu access pins: pin %.3f s, close %.3f s", (unsigned long long)n, t_pin,
	       t_close);
	close(fd);
	munmap(buf, len);
	return t_pin + t_close;
}

/* K COPYs of the source area into fresh IOVAs past the copies, each unmapped again at once. */
static double churn(struct __test_metadata *_metadata, int fd, __u32 ioas)
{
	double t0 = now();

	for (__u64 j = 0; j < CHURN; j++) {
		__u64 dst = AP + (MANY + 2 + j) * PAGE;

		if (copy(fd, ioas, &dst, ioas, AP, PAGE, RW | IOMMU_IOAS_MAP_FIXED_IOVA) ||
		    unmap(fd, ioas, dst, PAGE, NULL)) {
			TH_LOG("churn %llu: %s", (unsigned long long)j, strerror(errno));
			return -1;
		}
	}
	return now() - t0;
}

/*
 * What one more COPY (and its UNMAP) of a one-page area costs in an IOAS with a mock domain
 * where n copies of it already are, each a pin user of the same page for the domain. Logs the
 * times; the churn time, or a negative number if a step failed.
 */
static double copies(struct __test_metadata *_metadata, __u64 n)
{
	double t0, t_copy, t_unmap, t_churn;
	__u64 unmapped;
	__u32 ioas;
	char *buf;
	int fd;

	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, mock_domain(fd, ioas, NULL, NULL, NULL));
	buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, map_fixed(fd, ioas, buf, PAGE, AP));

	/* Untimed: allocates the domain's page tables where the churn maps. */
	churn(_metadata, fd, ioas);
	t0 = now();
	for (__u64 i = 0; i < n; i++) {
		__u64 dst = AP + (scattered(i, MANY) + 1) * PAGE;

		if (copy(fd, ioas, &dst, ioas, AP, PAGE, RW | IOMMU_IOAS_MAP_FIXED_IOVA)) {
			TH_LOG("copy %llu of %llu: %s", (unsigned long long)i,
			       (unsigned long long)n, strerror(errno));
			return -1;
		}
	}
	t_copy = now() - t0;
	t_churn = churn(_metadata, fd, ioas);
	/* The page is pinned once however many areas map it. */
	EXPECT_EQ(0, check_refs(fd, buf, PAGE, 1));
	t0 = now();
	EXPECT_EQ(0, unmap(fd, ioas, 0, UINT64_MAX, &unmapped));
	t_unmap = now() - t0;
	EXPECT_EQ((n + 1) * PAGE, unmapped);
	EXPECT_EQ(0, check_refs(fd, buf, PAGE, 0));
	TH_LOG("  %llu copies %.3f s, unmap of all %.3f s; %d more copies and unmaps among them "
	       "%.3f s", (unsigned long long)n, t_copy, t_unmap, CHURN, t_churn);
	close(fd);
	munmap(buf, PAGE);
	return t_churn;
}

static void bound_ratio(struct __test_metadata *_metadata, const char *what, double few,
			double many)
{
	ASSERT_LT(0, few);
	ASSERT_LT(0, many);
	TH_LOG("%s: %d users %.3f s (%.1f us each), %d users %.3f s (%.1f us each), ratio %.1f",
	       what, FEW, few, few * 1e6 / FEW, MANY, many, many * 1e6 / MANY, many / few);
	EXPECT_GE(MAX_RATIO, many / few);
}

FIXTURE(scale) {};
FIXTURE_SETUP(scale) {}
FIXTURE_TEARDOWN(scale) {}

/* 20000 per-page pins of one access on one area. */
TEST_F_TIMEOUT(scale, access_pins_per_page, 300)
{
	double few, many;

	/* A first round warms the caches and the allocator up. */
	access_pins(_metadata, FEW);
	few = access_pins(_metadata, FEW);
	many = access_pins(_metadata, MANY);
	bound_ratio(_metadata, "access pins", few, many);
}

/*
 * One more COPY of an area, and its UNMAP, among 20000 copies of it (each a pin user of the same
 * page for the domain) costs about what it costs among 2000.
 */
TEST_F_TIMEOUT(scale, copies_of_one_area, 300)
{
	double few, many;

	few = copies(_metadata, FEW);
	ASSERT_LT(0, few);
	if (!impl_is_rust()) {
		many = copies(_metadata, MANY / 4);
		ASSERT_LT(0, many);
		TH_LOG("C: one more copy and unmap among %d copies costs %.1f times what it costs "
		       "among %d", MANY / 4, many / few, FEW);
		return;
	}
	many = copies(_metadata, MANY);
	ASSERT_LT(0, many);
	TH_LOG("one more copy and unmap among %d copies costs %.1f times what it costs among %d",
	       MANY, many / few, FEW);
	EXPECT_GE(MAX_CHURN_RATIO, many / few);
}

TEST_HARNESS_MAIN
