// SPDX-License-Identifier: GPL-2.0
/*
 * A 64 TiB mapping attached to a real IOMMU: QEMU's edu device bound to vfio-pci, its VFIO
 * device cdev bound to an iommufd context, attached through the VT-d or SMMUv3 driver (aperture
 * 2^48; a virtio-iommu's 2^39 takes 256 GiB).
 *
 * A VMM maps a huge range of address space that is not backed (no domain yet: bookkeeping only),
 * then attaches a device, which pins every page of it. The pin must fail at the first unbacked
 * page, at once, having allocated no more than what it pinned so far: no table sized by the
 * mapping, no OOM killer, no allocation-failure splat, SUnreclaim and VmallocUsed of
 * /proc/meminfo back where they were. Over RLIMIT_MEMLOCK, the attach fails before it allocates
 * anything for the mapping.
 *
 * Usage: huge_attach <vfio cdev path>   (e.g. /dev/vfio/devices/vfio0)
 * Runs against whichever iommufd module is loaded; prints TAP. Needs root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "sysinfo.h"

#define PAGE 4096UL
#define MIB (1UL << 20)
#define TIB (1UL << 40)
/* What a failed attach may leave in the kernel's counters: noise, far below a table for the
 * mapping (64 TiB of PFNs is 128 GiB; its directory alone was 48 MiB). */
#define SLACK_KB 1024L
/* How fast a failing attach must fail: at once (well under a second), or on a debug kernel
 * (KASAN, lockdep: tools/kernel/slow-harness.h raises the harness's timeout) within its slowdown. */
#if TEST_TIMEOUT_DEFAULT > 30
#define FAST_MS 30000
#else
#define FAST_MS 1000
#endif

static const char *cdev_path;

struct dev {
	int iommufd;
	int devfd;
	uint32_t ioas;
};

static long meminfo(const char *tag)
{
	return proc_kb("/proc/meminfo", tag);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int attach(struct dev *d, uint32_t pt)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = pt };

	return ioctl(d->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

static int detach(struct dev *d)
{
	struct vfio_device_detach_iommufd_pt a = { .argsz = sizeof(a) };

	return ioctl(d->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &a);
}

/* Binds the device and allocates an IOAS; *top is the last IOVA the device's domain can map,
 * learnt from an attach to the empty IOAS (then detached). */
static void dev_setup(struct __test_metadata *_metadata, struct dev *d, uint64_t *top)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_iova_range r[16];
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q), .num_iovas = 16, .allowed_iovas = (uintptr_t)r,
	};

	d->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, d->iommufd);
	d->devfd = open(cdev_path, O_RDWR);
	ASSERT_LE(0, d->devfd) TH_LOG("open %s: %s", cdev_path, strerror(errno));
	bind.iommufd = d->iommufd;
	ASSERT_EQ(0, ioctl(d->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	ASSERT_EQ(0, ioctl(d->iommufd, IOMMU_IOAS_ALLOC, &alloc));
	d->ioas = alloc.out_ioas_id;
	ASSERT_EQ(0, attach(d, d->ioas)) TH_LOG("attach: %s", strerror(errno));
	q.ioas_id = d->ioas;
	ASSERT_EQ(0, ioctl(d->iommufd, IOMMU_IOAS_IOVA_RANGES, &q));
	ASSERT_LT(0, q.num_iovas);
	*top = r[q.num_iovas - 1].last;
	ASSERT_EQ(0, detach(d));
}

static void dev_teardown(struct dev *d)
{
	detach(d);
	close(d->devfd);
	close(d->iommufd);
}

/* The largest power of two up to 64 TiB that fits, aligned, above 4 GiB and below @top; its IOVA
 * in *iova. */
static uint64_t fit(uint64_t top, uint64_t *iova)
{
	uint64_t len;

	for (len = 64 * TIB; len > (4UL << 30); len >>= 1)
		if (top >= 2 * len - 1) {
			*iova = len;
			return len;
		}
	*iova = 4UL << 30;
	return 4UL << 30;
}

/*
 * @len bytes of address space with @prot, halving until the mm accepts, not below fit()'s least
 * (4 GiB; a virtio-iommu's aperture is 2^39, so fit() gives 256 GiB there).
 */
static char *reserve(uint64_t *len, int prot)
{
	char *p;

	for (; *len >= (4UL << 30); *len >>= 1) {
		p = mmap(NULL, *len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED)
			return p;
	}
	return MAP_FAILED;
}

static int map_fixed(struct dev *d, void *va, uint64_t len, uint64_t iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = d->ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(d->iommufd, IOMMU_IOAS_MAP, &m);
}

/* Whether the kernel logged a warning, an allocation failure or the OOM killer since @k opened. */
static int kmsg_warned(int k)
{
	char line[2048];
	ssize_t n;
	int bad = 0;

	if (k < 0)
		return 0;
	while ((n = read(k, line, sizeof(line) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		line[n] = 0;
		if (strstr(line, "WARNING:") || strstr(line, "page allocation failure") ||
		    strstr(line, "vmalloc error") || strstr(line, "Out of memory")) {
			bad = 1;
			fprintf(stderr, "# kmsg: %s", line);
		}
	}
	close(k);
	return bad;
}

static int kmsg_open(void)
{
	int k = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (k >= 0)
		lseek(k, 0, SEEK_END);
	return k;
}

/*
 * The attach of @d to its IOAS fails with @err within FAST_MS, Slab and VmallocUsed within
 * SLACK_KB of what they were, and no warning in the kernel log since @k was opened.
 */
static void attach_fails_fast(struct __test_metadata *_metadata, struct dev *d, int err, int k)
{
	long slab0 = meminfo("Slab"), vm0 = meminfo("VmallocUsed"), slab1, vm1;
	double t0 = now_ms(), ms;

	ASSERT_EQ(-1, attach(d, d->ioas));
	EXPECT_EQ(err, errno);
	ms = now_ms() - t0;
	slab1 = meminfo("Slab");
	vm1 = meminfo("VmallocUsed");
	TH_LOG("attach failed (%s) in %.0f ms; Slab %ld -> %ld kB, VmallocUsed %ld -> %ld kB",
	       strerror(errno), ms, slab0, slab1, vm0, vm1);
	EXPECT_GT(FAST_MS, ms);
	EXPECT_GT(SLACK_KB, slab1 - slab0);
	EXPECT_GT(SLACK_KB, vm1 - vm0);
	EXPECT_EQ(0, kmsg_warned(k));
}

/* Clears CAP_IPC_LOCK from the effective set: pins are charged to RLIMIT_MEMLOCK. */
static int drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2];

	if (syscall(SYS_capget, &h, c))
		return -1;
	c[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, c);
}

/* 64 TiB, the first 40 MiB backed, the rest PROT_NONE: the attach pins 40 MiB, meets the first
 * unbacked page and fails there (EFAULT), in well under a second, with nothing left behind. */
TEST(huge_unbacked_attach_fails_fast)
{
	struct iommu_ioas_unmap u = { .size = sizeof(u), .length = UINT64_MAX };
	uint64_t top, iova, len, backed = 40 * MIB;
	struct dev d;
	int k = kmsg_open();
	char *va;

	dev_setup(_metadata, &d, &top);
	len = fit(top, &iova);
	va = reserve(&len, PROT_NONE);
	ASSERT_NE(MAP_FAILED, va);
	TH_LOG("domain maps up to %#llx: %llu GiB mapped at IOVA %#llx", (unsigned long long)top,
	       (unsigned long long)(len >> 30), (unsigned long long)iova);
	ASSERT_EQ(0, mprotect(va, backed, PROT_READ | PROT_WRITE));
	memset(va, 0x3c, backed);
	ASSERT_EQ(0, map_fixed(&d, va, len, iova));

	attach_fails_fast(_metadata, &d, EFAULT, k);

	/* The context is fine: the backed part attaches and maps. */
	u.ioas_id = d.ioas;
	ASSERT_EQ(0, ioctl(d.iommufd, IOMMU_IOAS_UNMAP, &u));
	ASSERT_EQ(0, map_fixed(&d, va, backed, iova));
	EXPECT_EQ(0, attach(&d, d.ioas));
	dev_teardown(&d);
	munmap(va, len);
}

/* 64 TiB of ordinary (not populated) memory, RLIMIT_MEMLOCK 16 MiB and no CAP_IPC_LOCK: the
 * attach fails with ENOMEM at once, having allocated nothing for the mapping. Ours charges each
 * batch before it pins it. The C module charges an area once it has pinned all of it
 * (iopt_area_fill_domain() -> pfn_reader_update_pinned()): it faults in and pins memory until
 * the OOM killer ends the process (seen: anon-rss 2.7 GB of a 3 GB guest), so it is not run. */
TEST(huge_over_memlock_attach_fails_fast)
{
	struct rlimit r = { .rlim_cur = 16 * MIB, .rlim_max = 16 * MIB };
	uint64_t top, iova, len;
	int prot = PROT_READ | PROT_WRITE;
	struct dev d;
	int k = kmsg_open();
	char *va;

	if (!impl_is_rust())
		SKIP(return, "the C module pins all 64 TiB before it charges them: OOM");
	dev_setup(_metadata, &d, &top);
	len = fit(top, &iova);
	va = reserve(&len, prot);
	if (va == MAP_FAILED) {
		TH_LOG("the mm refused %llu GiB read/write; PROT_NONE", (unsigned long long)(len >> 30));
		len = fit(top, &iova);
		prot = PROT_NONE;
		va = reserve(&len, prot);
	}
	ASSERT_NE(MAP_FAILED, va);
	TH_LOG("%llu GiB %s at IOVA %#llx", (unsigned long long)(len >> 30),
	       prot == PROT_NONE ? "PROT_NONE" : "PROT_READ|PROT_WRITE", (unsigned long long)iova);
	/* The mapper's capability and limit are what count. */
	ASSERT_EQ(0, drop_cap_ipc_lock());
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &r));
	ASSERT_EQ(0, map_fixed(&d, va, len, iova));

	attach_fails_fast(_metadata, &d, ENOMEM, k);
	dev_teardown(&d);
	munmap(va, len);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s /dev/vfio/devices/vfioN\n", argv[0]);
		return 2;
	}
	cdev_path = argv[1];
	return test_harness_run(1, argv);
}
