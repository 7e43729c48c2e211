// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: what pinning costs the kernel and whom it is charged to.
 *
 * - A pin allocates in proportion to what it pins, never to the length of the mapping: one page
 *   pinned at the end of a 64 TiB mapping costs a few KiB, and an attach that meets an unbacked
 *   page fails there, at once, with the kernel's memory (SUnreclaim + VmallocUsed of
 *   /proc/meminfo) back where it was.
 * - IOMMU_IOAS_CHANGE_PROCESS that fails half way gives every charge back where it was.
 * - Pins are judged against the RLIMIT_MEMLOCK and the capabilities of the process that mapped
 *   the memory, whichever process pins it later (upstream's pages->source_task).
 *
 * Upstream behaviour: both modules must pass. Root only (mock domain, CAP_SYS_RESOURCE).
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"
#include "memlock.h"

#define TIB (1UL << 40)
#define MIB (1UL << 20)
#define KB(pages) ((long)(pages) * (long)(PAGE / 1024))
/* What a failed pin may leave in the kernel's counters: noise, far below what a table for the
 * whole mapping costs (4 MiB for the mock aperture, 48 MiB and more for 64 TiB). */
#define SLACK_KB 1024
#define PIN_ACCESS MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES
/* How fast a failing attach must fail: at once (well under a second), or on a debug kernel
 * (KASAN, lockdep: tools/kernel/slow-harness.h raises the harness's timeout) within its slowdown. */
#if TEST_TIMEOUT_DEFAULT > 30
#define FAST_MS 30000
#else
#define FAST_MS 1000
#endif

/* A line of /proc/meminfo, in kB; -1 if missing. */
static long meminfo(const char *tag)
{
	return proc_kb("/proc/meminfo", tag);
}

/* Kernel memory a pin's bookkeeping can come from: slab (kmalloc, large kmalloc) and vmalloc. */
static long kmem_kb(void)
{
	return meminfo("SUnreclaim") + meminfo("VmallocUsed");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* @len bytes of address space no page can ever be behind (PROT_NONE: GUP answers EFAULT), the
 * first @backed bytes of it made readable, writeable and touched. */
static char *reserve_va(size_t len, size_t backed)
{
	char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED || !backed)
		return p;
	if (mprotect(p, backed, PROT_READ | PROT_WRITE) || madvise(p, backed, MADV_NOHUGEPAGE))
		return MAP_FAILED;
	memset(p, 0x6b, backed);
	return p;
}

/* As reserve_va() with nothing backed, halving *len from 64 TiB until the mm accepts it (not
 * below 1 TiB). */
static char *reserve_huge_va(size_t *len)
{
	char *p;

	for (*len = 64 * TIB; *len >= TIB; *len >>= 1) {
		p = reserve_va(*len, 0);
		if (p != MAP_FAILED)
			return p;
	}
	return MAP_FAILED;
}

static int rlimit_mode_mm(int fd)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = IOMMU_OPTION_OP_SET,
		.val64 = 1,
	};

	return ioctl(fd, IOMMU_OPTION, &cmd);
}

static int map_file(int fd, __u32 ioas, int mfd, __u64 len, __u64 iova)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.fd = mfd,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);
}

static int change_process(int fd)
{
	struct iommu_ioas_change_process cmd = { .size = sizeof(cmd) };

	return ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cmd);
}

/* Runs @fn in a child process; its answer: 0, or the errno it failed with (-1: the child died). */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg) ? (errno & 0xff) : 0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* /dev/kmsg from now on: whether the kernel warned (a WARN splat or an allocation failure). */
static int kmsg_open(void)
{
	int k = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (k >= 0)
		lseek(k, 0, SEEK_END);
	return k;
}

static int kmsg_warned(int k)
{
	char line[2048];
	ssize_t n;
	int bad = 0;

	while ((n = read(k, line, sizeof(line) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		line[n] = 0;
		if (strstr(line, "WARNING:") || strstr(line, "page allocation failure") ||
		    strstr(line, "vmalloc error") || strstr(line, "Out of memory"))
			bad = 1;
	}
	close(k);
	return bad;
}

/* ------------------------------------------------------------------ kernel memory of a pin */

/* One page pinned by an access at the end of a 64 TiB mapping (no domain): the pin costs what it
 * pins, not a table for the whole mapping. */
TEST(far_pin_of_a_huge_mapping_is_small)
{
	size_t len;
	char *va = reserve_huge_va(&len);
	long before, during;
	__u32 ioas, id;
	int fd, afd;

	ASSERT_NE(MAP_FAILED, va);
	if (len != 64 * TIB)
		TH_LOG("the mm refused 64 TiB: %zu TiB", len / TIB);
	ASSERT_EQ(0, mprotect(va + len - PAGE, PAGE, PROT_READ | PROT_WRITE));
	va[len - PAGE] = 1;
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, map_fixed(fd, ioas, va, len, 0));
	ASSERT_EQ(0, create_access(fd, ioas, PIN_ACCESS, &afd));
	before = kmem_kb();
	ASSERT_EQ(0, access_pages(fd, afd, len - PAGE, PAGE, va + len - PAGE, 0, &id));
	during = kmem_kb();
	TH_LOG("one page pinned at %zu TiB: SUnreclaim+VmallocUsed %+ld kB", len / TIB,
	       during - before);
	EXPECT_GT(SLACK_KB, during - before);
	EXPECT_EQ(0, unpin(fd, afd, id));
	EXPECT_GT(SLACK_KB, kmem_kb() - before);
	close(afd);
	close(fd);
	munmap(va, len);
}

/* A mapping of the whole mock aperture, backed for its first 40 MiB and unbacked after: attaching
 * a domain pins up to the first unbacked page and fails there (EFAULT) at once, leaving nothing
 * pinned and the kernel's memory where it was. */
TEST(attach_fails_fast_at_an_unbacked_page)
{
	size_t backed = 40 * MIB, len = (size_t)MOCK_APERTURE_LAST + 1 - AP;
	char *va = reserve_va(len, backed);
	long before, after, pin0 = vm_status("VmPin");
	double t0, ms;
	__u32 ioas;
	int fd, k = kmsg_open();

	ASSERT_NE(MAP_FAILED, va);
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, map_fixed(fd, ioas, va, len, AP));
	before = kmem_kb();
	t0 = now_ms();
	EXPECT_FAIL(EFAULT, mock_domain(fd, ioas, NULL, NULL, NULL));
	ms = now_ms() - t0;
	after = kmem_kb();
	TH_LOG("attach over %lu MiB, %zu MiB backed: failed in %.0f ms, SUnreclaim+VmallocUsed %+ld kB",
	       (unsigned long)(len / MIB), backed / MIB, ms, after - before);
	EXPECT_GT(FAST_MS, ms);
	EXPECT_GT(SLACK_KB, after - before);
	EXPECT_EQ(pin0, vm_status("VmPin"));
	EXPECT_EQ(0, check_refs(fd, va, backed, 0));
	/* The IOAS still works: the backed part attaches. */
	ASSERT_EQ(0, unmap(fd, ioas, 0, UINT64_MAX, NULL));
	ASSERT_EQ(0, map_fixed(fd, ioas, va, backed, AP));
	EXPECT_EQ(0, mock_domain(fd, ioas, NULL, NULL, NULL));
	EXPECT_EQ(0, check_refs(fd, va, backed, 1));
	close(fd);
	munmap(va, len);
	if (k >= 0)
		EXPECT_EQ(0, kmsg_warned(k));
}

/* Over RLIMIT_MEMLOCK: the attach is refused before it allocates anything for the mapping. Ours
 * charges each batch before it pins it, so the first batch is over the limit (ENOMEM) before a
 * page is touched; the C module pins the whole area and charges it at the end, so it meets the
 * unbacked page first (EFAULT). */
TEST(attach_over_memlock_allocates_nothing)
{
	size_t backed = 40 * MIB, len = (size_t)MOCK_APERTURE_LAST + 1 - AP;
	char *va = reserve_va(len, backed);
	long before, after;
	__u32 ioas;
	int fd, ret, err;

	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(0, drop_cap(CAP_IPC_LOCK, CAP_CLEAR));
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, map_fixed(fd, ioas, va, len, AP));
	before = kmem_kb();
	ret = mock_domain(fd, ioas, NULL, NULL, NULL);
	err = errno;
	after = kmem_kb();
	TH_LOG("attach over the limit: %s, SUnreclaim+VmallocUsed %+ld kB",
	       ret ? strerror(err) : "success", after - before);
	EXPECT_EQ(-1, ret);
	if (impl_is_rust()) {
		EXPECT_EQ(ENOMEM, err);
	} else {
		EXPECT_TRUE(err == ENOMEM || err == EFAULT);
	}
	EXPECT_GT(SLACK_KB, after - before);
	EXPECT_EQ(0, vm_status("VmPin"));
	EXPECT_EQ(0, check_refs(fd, va, backed, 0));
	close(fd);
	munmap(va, len);
}

/* ------------------------------------------------------------------ CHANGE_PROCESS rollback */

#define NP 16

static int change_process_low_limit(void *arg)
{
	/* Room for the first pages object's charge, not for both. */
	if (set_memlock((NP + NP / 2) * PAGE))
		return -1;
	return change_process(*(int *)arg);
}

/* RLIMIT_MODE=1: a child whose limit holds one of two pages objects takes over the charges with
 * IOMMU_IOAS_CHANGE_PROCESS; the second fails, and the first must go back to the parent's mm
 * whole, whatever the child's limit, so that unmapping later neither warns nor wraps VmLck. */
TEST(change_process_rollback_keeps_the_charge)
{
	int fd = open("/dev/iommu", O_RDWR), k = kmsg_open();
	int mfd[2];
	long lck0;
	__u32 ioas;
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rlimit_mode_mm(fd));
	ASSERT_EQ(0, drop_cap(CAP_IPC_LOCK, CAP_CLEAR));
	ASSERT_EQ(0, set_memlock(4 * MIB));
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, mock_domain(fd, ioas, NULL, NULL, NULL));
	lck0 = vm_status("VmLck");
	for (i = 0; i < 2; i++) {
		mfd[i] = memfd_create("pin_accounting", 0);
		ASSERT_LE(0, mfd[i]);
		ASSERT_EQ(0, ftruncate(mfd[i], NP * PAGE));
		ASSERT_EQ(0, map_file(fd, ioas, mfd[i], NP * PAGE, AP + i * HUGE));
	}
	ASSERT_EQ(lck0 + KB(2 * NP), vm_status("VmLck"));

	EXPECT_EQ(ENOMEM, in_child(change_process_low_limit, &fd));
	EXPECT_EQ(lck0 + KB(2 * NP), vm_status("VmLck"));

	ASSERT_EQ(0, unmap(fd, ioas, 0, UINT64_MAX, NULL));
	EXPECT_EQ(lck0, vm_status("VmLck"));
	close(fd);
	close(mfd[0]);
	close(mfd[1]);
	if (k >= 0)
		EXPECT_EQ(0, kmsg_warned(k));
}

/* ------------------------------------------------------------------ whose limit judges a pin */

struct attach_arg {
	int fd;
	__u32 ioas;
	rlim_t memlock;		/* the child's own limit; 0: unchanged */
	int cap_ipc_lock;	/* the child raises CAP_IPC_LOCK */
};

static int attach_in_child(void *p)
{
	struct attach_arg *a = p;

	if (a->memlock && set_memlock(a->memlock))
		return -1;
	if (a->cap_ipc_lock && drop_cap(CAP_IPC_LOCK, CAP_SET))
		return -1;
	return mock_domain(a->fd, a->ioas, NULL, NULL, NULL);
}

/* The user's locked_vm (RLIMIT_MODE=0): a child with a limit of its own attaches the domain that
 * pins the parent's mapping; the parent's limit decides, as it stands at the pin. */
TEST(child_pin_is_judged_by_the_mappers_limit)
{
	struct attach_arg a = { .fd = open("/dev/iommu", O_RDWR) };
	void *buf = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 1, 64 * PAGE);
	ASSERT_LE(0, a.fd);
	ASSERT_EQ(0, drop_cap(CAP_IPC_LOCK, CAP_CLEAR));
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, ioas_alloc(a.fd, &a.ioas));
	ASSERT_EQ(0, map_fixed(a.fd, a.ioas, buf, 64 * PAGE, AP));

	/* The child may lock all it wants; the mapper may not. */
	a.memlock = RLIM_INFINITY;
	EXPECT_EQ(ENOMEM, in_child(attach_in_child, &a));
	EXPECT_EQ(0, check_refs(a.fd, buf, 64 * PAGE, 0));
	EXPECT_EQ(0, vm_status("VmPin"));

	/* Now the mapper may, a child that may not attaches. */
	ASSERT_EQ(0, set_memlock(64 * PAGE));
	a.memlock = 16 * PAGE;
	EXPECT_EQ(0, in_child(attach_in_child, &a));
	EXPECT_EQ(0, check_refs(a.fd, buf, 64 * PAGE, 1));
	EXPECT_EQ(KB(64), vm_status("VmPin"));
	close(a.fd);
	munmap(buf, 64 * PAGE);
}

/* The mm's locked_vm (RLIMIT_MODE=1): a child holding CAP_IPC_LOCK attaches the domain that pins
 * the mapping of a parent without it; the mapper's limit decides, not the child's capability. */
TEST(cap_ipc_lock_child_is_judged_by_the_mappers_limit)
{
	struct attach_arg a = { .fd = open("/dev/iommu", O_RDWR), .cap_ipc_lock = 1 };
	void *buf = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long lck0;

	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 1, 64 * PAGE);
	ASSERT_LE(0, a.fd);
	ASSERT_EQ(0, rlimit_mode_mm(a.fd));
	ASSERT_EQ(0, drop_cap(CAP_IPC_LOCK, CAP_CLEAR));
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, ioas_alloc(a.fd, &a.ioas));
	ASSERT_EQ(0, map_fixed(a.fd, a.ioas, buf, 64 * PAGE, AP));
	lck0 = vm_status("VmLck");

	EXPECT_EQ(ENOMEM, in_child(attach_in_child, &a));
	EXPECT_EQ(0, check_refs(a.fd, buf, 64 * PAGE, 0));
	EXPECT_EQ(lck0, vm_status("VmLck"));

	/* Within the mapper's limit, the child's pin is charged to the mapper's mm. */
	ASSERT_EQ(0, set_memlock(64 * PAGE));
	EXPECT_EQ(0, in_child(attach_in_child, &a));
	EXPECT_EQ(lck0 + KB(64), vm_status("VmLck"));
	close(a.fd);
	munmap(buf, 64 * PAGE);
}

/* The mapper's CAP_IPC_LOCK is decided when it maps: a child without it pins past any limit. */
TEST(mappers_cap_ipc_lock_exempts_a_childs_pin)
{
	struct attach_arg a = { .fd = open("/dev/iommu", O_RDWR) };
	void *buf = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 1, 64 * PAGE);
	ASSERT_LE(0, a.fd);
	ASSERT_EQ(0, set_memlock(16 * PAGE));
	ASSERT_EQ(0, ioas_alloc(a.fd, &a.ioas));
	ASSERT_EQ(0, map_fixed(a.fd, a.ioas, buf, 64 * PAGE, AP));
	ASSERT_EQ(0, drop_cap(CAP_IPC_LOCK, CAP_CLEAR));
	EXPECT_EQ(0, in_child(attach_in_child, &a));
	EXPECT_EQ(0, check_refs(a.fd, buf, 64 * PAGE, 1));
	close(a.fd);
	munmap(buf, 64 * PAGE);
}

TEST_HARNESS_MAIN
