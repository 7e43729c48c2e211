// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: fault queues (IOMMU_FAULT_QUEUE_ALLOC) with I/O page faults the mock
 * IOMMU raises (IOMMU_TEST_OP_TRIGGER_IOPF) on a nested HWPT allocated with a fault ID.
 *
 * - read() whose buffer cannot hold the first pending group (a zero-length read: the length must
 *   be a multiple of the record size): EINVAL, and the group stays queued, as upstream's
 *   iommufd_fault_fops_read() ("Read count doesn't fit the first fault group").
 * - A device leaving the fault-capable HWPT (replace or destroy) answers the groups it left
 *   pending, with every allocation of the call failed in turn (fail-nth, as fail_nth_objects.c):
 *   the call either fails and leaves the groups queued, or succeeds and leaves nothing pending;
 *   and never answers a group where sleeping is not allowed (iopf_group_response() takes a
 *   mutex). A debug kernel (CONFIG_DEBUG_ATOMIC_SLEEP) reports such an answer itself; on others
 *   our mock IOMMU checks the context of its page_response op and WARNs. Either shows in the
 *   kernel log, which the test reads.
 * Upstream behaviour: both modules must pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"
#include "fail_nth.h"

#define REC sizeof(struct iommu_hwpt_pgfault)

/* Every allocation injectable (GFP_ATOMIC ones are anyway), quietly. */
static __attribute__((constructor)) void setup(void)
{
	fail_nth_setup();
	writefile("/sys/kernel/debug/fail_iommufd/verbose", "0");
}

/* The kernel log from now on (-1 if it cannot be read: no check then). */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* The first new kernel log record that reports a bug or a warning, into @line; false if none. */
static bool kmsg_splat(int fd, char *line, size_t len)
{
	static const char *const marks[] = {
		"WARNING:", "BUG:", "sleeping function called from invalid context",
		"page response where sleeping is not allowed",
	};
	char rec[1024];
	ssize_t n;

	if (fd < 0)
		return false;
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			return false;
		rec[n] = 0;
		for (unsigned int i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
			if (strstr(rec, marks[i])) {
				snprintf(line, len, "%s", rec);
				return true;
			}
	}
}

static int fault_alloc(int fd, __u32 *id, int *ffd)
{
	struct iommu_fault_alloc c = { .size = sizeof(c) };
	int ret = ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &c);

	*id = c.out_fault_id;
	*ffd = ret ? -1 : (int)c.out_fault_fd;
	return ret;
}

/* A nested mock HWPT on @parent whose faults go to queue @fault. */
static int iopf_hwpt_alloc(int fd, __u32 idev, __u32 parent, __u32 fault, __u32 *out)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_alloc c = {
		.size = sizeof(c), .flags = IOMMU_HWPT_FAULT_ID_VALID, .dev_id = idev,
		.pt_id = parent, .data_type = IOMMU_HWPT_DATA_SELFTEST, .data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data, .fault_id = fault,
	};
	int ret = ioctl(fd, IOMMU_HWPT_ALLOC, &c);

	*out = c.out_hwpt_id;
	return ret;
}

/* The mock IOMMU reports a page request (one group, @grpid) from device @idev. */
static int trigger_iopf(int fd, __u32 idev, __u32 grpid)
{
	struct iommu_test_cmd c = {
		.size = sizeof(c),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {
			.dev_id = idev, .pasid = 0x1, .grpid = grpid,
			.perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
			.addr = 0xdeadb000,
		},
	};

	return ioctl(fd, IOMMU_TEST_CMD, &c);
}

static int respond(int ffd, __u32 cookie)
{
	struct iommu_hwpt_page_response r = { .cookie = cookie, .code = IOMMUFD_PAGE_RESP_SUCCESS };

	return write(ffd, &r, sizeof(r)) == sizeof(r) ? 0 : -1;
}

/* Whether the queue has a group to read (poll, without consuming it). */
static bool pending(int ffd)
{
	struct pollfd p = { .fd = ffd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * A mock device on a parent HWPT, then moved onto a nested HWPT of it with a fault queue:
 * @iopf, whose faults go to *ffd.
 */
struct iopf_setup {
	__u32 ioas, stdev, idev, parent, fault, iopf;
	int ffd;
};

static int iopf_setup(int fd, struct iopf_setup *s)
{
	s->ffd = -1;
	if (ioas_alloc(fd, &s->ioas) || mock_domain(fd, s->ioas, &s->stdev, NULL, &s->idev) ||
	    hwpt_alloc(fd, s->idev, s->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_NONE,
		       NULL, 0, &s->parent) ||
	    replace(fd, s->stdev, s->parent, NULL) || fault_alloc(fd, &s->fault, &s->ffd) ||
	    iopf_hwpt_alloc(fd, s->idev, s->parent, s->fault, &s->iopf) ||
	    replace(fd, s->stdev, s->iopf, NULL))
		return -1;
	return 0;
}

FIXTURE(fault_queue) {
	int fd;
	struct iopf_setup s;
};

FIXTURE_SETUP(fault_queue)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, iopf_setup(self->fd, &self->s));
}

FIXTURE_TEARDOWN(fault_queue)
{
	if (self->s.ffd >= 0)
		close(self->s.ffd);
	close(self->fd);
}

/* A zero-length read cannot hold the first group: EINVAL, and the group stays queued. */
TEST_F(fault_queue, read_too_small_for_first_group)
{
	struct iommu_hwpt_pgfault f[2] = {};

	/* Nothing pending: a read of any length answers 0. */
	EXPECT_EQ(0, read(self->s.ffd, f, 0));
	EXPECT_EQ(0, read(self->s.ffd, f, REC));

	ASSERT_EQ(0, trigger_iopf(self->fd, self->s.idev, 0x2));
	ASSERT_TRUE(pending(self->s.ffd));
	EXPECT_FAIL(EINVAL, read(self->s.ffd, f, 0));
	/* A length that is not a whole number of records. */
	EXPECT_FAIL(ESPIPE, read(self->s.ffd, f, REC - 1));
	/* The group is still there, whole. */
	ASSERT_TRUE(pending(self->s.ffd));
	ASSERT_EQ((ssize_t)REC, read(self->s.ffd, f, 2 * REC));
	EXPECT_EQ(self->s.idev, f[0].dev_id);
	EXPECT_EQ(0x2, f[0].grpid);
	EXPECT_FALSE(pending(self->s.ffd));
	EXPECT_EQ(0, respond(self->s.ffd, f[0].cookie));
	EXPECT_EQ(0, replace(self->fd, self->s.stdev, self->s.parent, NULL));
}

/*
 * The device leaves the fault-capable HWPT with two groups pending (@by_destroy: its mock device
 * is destroyed; else it is replaced onto the parent), with the n-th allocation of the call
 * failed, for n = 1, 2, ... until the call no longer reaches the n-th.
 */
static void leave_with_pending(struct __test_metadata *_metadata, bool by_destroy)
{
	const char *what = by_destroy ? "destroy" : "replace";
	unsigned int n, injected = 0, survived = 0;
	char line[1024];

	nth_open();
	if (nth_fd < 0)
		SKIP(return, "no /proc/self/task/<tid>/fail-nth (CONFIG_FAULT_INJECTION_DEBUG_FS)");
	for (n = 1; n < 500; n++) {
		struct iommu_hwpt_pgfault f[4] = {};
		struct iopf_setup s;
		int fd = open("/dev/iommu", O_RDWR), kmsg, rc;
		bool fired;

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, iopf_setup(fd, &s));
		ASSERT_EQ(0, trigger_iopf(fd, s.idev, 0x2));
		ASSERT_EQ(0, trigger_iopf(fd, s.idev, 0x3));
		ASSERT_TRUE(pending(s.ffd));
		kmsg = kmsg_open();
		nth_arm(n);
		rc = (by_destroy ? destroy(fd, s.stdev) : replace(fd, s.stdev, s.parent, NULL)) ? errno : 0;
		fired = nth_fired();
		EXPECT_FALSE(kmsg_splat(kmsg, line, sizeof(line)))
			TH_LOG("%s, n=%u (%s): kernel log: %s", what, n, fired ? "injected" : "not injected",
			       line);
		if (kmsg >= 0)
			close(kmsg);
		if (rc) {
			/* Failed: still on the fault-capable HWPT, the groups still queued. */
			EXPECT_TRUE(fired);
			EXPECT_TRUE(rc == ENOMEM || rc == ENOENT || rc == EINVAL)
				TH_LOG("%s, n=%u: %d", what, n, rc);
			ASSERT_EQ((ssize_t)(2 * REC), read(s.ffd, f, sizeof(f)))
				TH_LOG("%s, n=%u: the pending groups were lost", what, n);
			EXPECT_EQ(0, respond(s.ffd, f[0].cookie));
			EXPECT_EQ(0, respond(s.ffd, f[1].cookie));
			injected++;
		} else {
			/* Done: both groups were answered for the device, none is left to read. */
			EXPECT_FALSE(pending(s.ffd)) TH_LOG("%s, n=%u: groups left pending", what, n);
			EXPECT_EQ(0, read(s.ffd, f, sizeof(f)));
			if (fired)
				survived++;
		}
		/* The queue is still usable: a new fault on a device attached again comes through. */
		if (by_destroy && !rc) {
			ASSERT_EQ(0, mock_domain(fd, s.parent, &s.stdev, NULL, &s.idev));
		}
		ASSERT_EQ(0, replace(fd, s.stdev, s.iopf, NULL)) TH_LOG("%s, n=%u", what, n);
		ASSERT_EQ(0, trigger_iopf(fd, s.idev, 0x4));
		ASSERT_EQ((ssize_t)REC, read(s.ffd, f, sizeof(f)));
		EXPECT_EQ(0, respond(s.ffd, f[0].cookie));
		ASSERT_EQ(0, replace(fd, s.stdev, s.parent, NULL));
		close(s.ffd);
		close(fd);
		if (!fired)
			break;
	}
	ASSERT_GT(500, n);
	TH_LOG("%s: %u injection points (the call failed at %u, succeeded anyway at %u)", what,
	       n - 1, injected, survived);
}

TEST(replace_with_pending_faults)
{
	leave_with_pending(_metadata, false);
}

TEST(destroy_with_pending_faults)
{
	leave_with_pending(_metadata, true);
}

TEST_HARNESS_MAIN
