// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_bench: times /dev/iommu operations for `make bench`. One run of every benchmark;
 * tools/bench.sh alternates implementations and takes medians. Prints one line per benchmark:
 *   <bench> <domain> <value> <unit>
 * Times are wall-clock nanoseconds per operation (CLOCK_MONOTONIC) unless the unit says otherwise.
 *
 *   iommufd_bench [SMALL_MB [VFIO_CDEV]]
 *
 * With a VFIO device cdev (QEMU's edu behind the emulated VT-d, bound to vfio-pci), the domain
 * benchmarks run a second time on a real VT-d domain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>
/* IOMMU_TEST_CMD of the kernel under test: the mock domain both modules provide. */
#include "iommufd_test.h"

#define PAGE 4096UL

static int fd;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "iommufd_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static __u32 ioas_alloc(void)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	if (ioctl(fd, IOMMU_IOAS_ALLOC, &cmd))
		die("IOAS_ALLOC");
	return cmd.out_ioas_id;
}

static void destroy(__u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	if (ioctl(fd, IOMMU_DESTROY, &cmd))
		die("DESTROY");
}

static void map_fixed(__u32 ioas, void *va, __u64 len, __u64 iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	if (ioctl(fd, IOMMU_IOAS_MAP, &cmd))
		die("IOAS_MAP");
}

static void unmap(__u32 ioas, __u64 iova, __u64 len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = len,
	};

	if (ioctl(fd, IOMMU_IOAS_UNMAP, &cmd))
		die("IOAS_UNMAP");
}

static void copy(__u32 ioas, __u64 dst, __u64 src, __u64 len)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.dst_ioas_id = ioas,
		.src_ioas_id = ioas,
		.length = len,
		.dst_iova = dst,
		.src_iova = src,
	};

	if (ioctl(fd, IOMMU_IOAS_COPY, &cmd))
		die("IOAS_COPY");
}

static long meminfo_kb(const char *key)
{
	char line[256], fmt[64];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	snprintf(fmt, sizeof(fmt), "%s: %%ld kB", key);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long slab_kb(void)
{
	return meminfo_kb("Slab");
}

/* Kernel memory an IOAS costs: slab objects plus IOMMU page tables (SecPageTables). */
static long kmem_kb(void)
{
	long slab = meminfo_kb("Slab"), pt = meminfo_kb("SecPageTables");

	return slab < 0 ? -1 : slab + (pt < 0 ? 0 : pt);
}

static int test_cmd(struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(fd, IOMMU_TEST_CMD, cmd);
}

/* A mock device attached to `ioas`: the selftest's mock IOMMU, which both modules provide. */
static void mock_domain(__u32 ioas, __u32 *stdev, __u32 *hwpt, __u32 *idev)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };

	if (test_cmd(&cmd))
		die("MOCK_DOMAIN");
	*stdev = cmd.mock_domain.out_stdev_id;
	*hwpt = cmd.mock_domain.out_hwpt_id;
	*idev = cmd.mock_domain.out_idev_id;
}

/* A mock device attached to `ioas`. */
static void attach_mock(__u32 ioas, __u32 *stdev, __u32 *idev)
{
	__u32 hwpt;

	mock_domain(ioas, stdev, &hwpt, idev);
}

/* The edu device of `cdev` bound to this iommufd and attached to `ioas` (a VT-d domain). */
static int attach_vfio(const char *cdev, __u32 ioas, __u32 *idev)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .flags = 0 };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = ioas };
	int dfd = open(cdev, O_RDWR);

	if (dfd < 0)
		die("open VFIO cdev");
	bind.iommufd = fd;
	if (ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	if (ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	*idev = bind.out_devid;
	return dfd;
}

/*
 * The same operations with a domain attached (`dom`: "mock" or "vtd"), where every map pins and
 * programs page tables; IOVAs from `base`.
 */
static void bench_domain(const char *dom, __u32 ioas, __u32 idev, __u64 base, unsigned long small_mb)
{
	const __u64 len = small_mb << 20;
	unsigned long areas = len / PAGE;
	unsigned int reps = 20;
	double t0, t1;
	long k0, k1;
	char *mem, *huge;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");

	t0 = now_ns();
	for (unsigned int i = 0; i < 200; i++) {
		struct iommu_hwpt_alloc h = { .size = sizeof(h), .dev_id = idev, .pt_id = ioas };

		if (ioctl(fd, IOMMU_HWPT_ALLOC, &h))
			die("HWPT_ALLOC");
		destroy(h.out_hwpt_id);
	}
	t1 = now_ns();
	printf("hwpt_alloc_destroy %s %.0f ns\n", dom, (t1 - t0) / 200);

	k0 = kmem_kb();
	t0 = now_ns();
	for (unsigned long i = 0; i < areas; i++)
		map_fixed(ioas, mem + i * PAGE, PAGE, base + i * PAGE);
	t1 = now_ns();
	k1 = kmem_kb();
	printf("map_4k_areas %s %.0f ns\n", dom, (t1 - t0) / areas);
	if (k0 >= 0 && k1 >= 0)
		printf("kmem_per_mib_4k_areas %s %.0f bytes\n", dom, (k1 - k0) * 1024.0 / small_mb);
	t0 = now_ns();
	for (unsigned long i = 0; i < areas; i++)
		unmap(ioas, base + i * PAGE, PAGE);
	t1 = now_ns();
	printf("unmap_4k_areas %s %.0f ns\n", dom, (t1 - t0) / areas);

	t0 = now_ns();
	for (unsigned int i = 0; i < reps; i++) {
		map_fixed(ioas, mem, len, base);
		unmap(ioas, base, len);
	}
	t1 = now_ns();
	printf("map_unmap_one_area %s %.0f ns\n", dom, (t1 - t0) / reps);

	map_fixed(ioas, mem, len, base);
	t0 = now_ns();
	for (unsigned int i = 0; i < reps; i++) {
		copy(ioas, base + len, base, len);
		unmap(ioas, base + len, len);
	}
	t1 = now_ns();
	printf("copy_unmap_one_area %s %.0f ns\n", dom, (t1 - t0) / reps);
	unmap(ioas, base, len);

	/* The same area backed by 2 MiB hugetlb pages (the guest reserves them): pinned per folio,
	 * mapped with large IOMMU pages where the domain has them. */
	huge = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (huge == MAP_FAILED) {
		printf("# map_unmap_2m_pages %s skipped: no hugetlb pages (%s)\n", dom,
		       strerror(errno));
	} else {
		t0 = now_ns();
		for (unsigned int i = 0; i < reps; i++) {
			map_fixed(ioas, huge, len, base);
			unmap(ioas, base, len);
		}
		t1 = now_ns();
		printf("map_unmap_2m_pages %s %.0f ns\n", dom, (t1 - t0) / reps);
		munmap(huge, len);
	}

	/* Emulated access: pin and unpin (up to 16 MiB, the selftest's cap per call) through an
	 * access fd, per page; the same for every domain, so measured on the mock one. */
	if (!strcmp(dom, "mock")) {
		const __u64 alen = len < (16UL << 20) ? len : (16UL << 20);
		struct iommu_test_cmd create = {
			.op = IOMMU_TEST_OP_CREATE_ACCESS, .id = ioas,
			.create_access = { .flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES },
		};
		__u32 access_fd, item;

		map_fixed(ioas, mem, len, base);
		if (test_cmd(&create))
			die("CREATE_ACCESS");
		access_fd = create.create_access.out_access_fd;
		t0 = now_ns();
		for (unsigned int i = 0; i < reps; i++) {
			struct iommu_test_cmd pin = {
				.op = IOMMU_TEST_OP_ACCESS_PAGES, .id = access_fd,
				.access_pages = { .iova = base, .length = alen },
			};
			struct iommu_test_cmd unpin = {
				.op = IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, .id = access_fd,
			};

			if (test_cmd(&pin))
				die("ACCESS_PAGES");
			item = pin.access_pages.out_access_pages_id;
			unpin.destroy_access_pages.access_pages_id = item;
			if (test_cmd(&unpin))
				die("DESTROY_ACCESS_PAGES");
		}
		t1 = now_ns();
		printf("access_pin_unpin_per_page mock %.1f ns\n", (t1 - t0) / reps / (alen / PAGE));
		close(access_fd);
	}

	unmap(ioas, 0, UINT64_MAX);
	munmap(mem, len);
}

static void bench_mock(unsigned long small_mb)
{
	__u32 ioas = ioas_alloc(), stdev, idev;

	attach_mock(ioas, &stdev, &idev);
	bench_domain("mock", ioas, idev, MOCK_APERTURE_START, small_mb);
	destroy(stdev);
	destroy(ioas);
}

static void bench_vtd(const char *cdev, unsigned long small_mb)
{
	__u32 ioas = ioas_alloc(), idev;
	int dfd = attach_vfio(cdev, ioas, &idev);

	/* Above 4 GiB: clear of the MSI window VT-d reserves below it. */
	bench_domain("vtd", ioas, idev, 1UL << 32, small_mb);
	close(dfd);
	destroy(ioas);
}

int main(int argc, char **argv)
{
	/* Under TCG a 1 GiB sweep in 4 KiB areas is slow; the size is a parameter (MiB). */
	unsigned long small_mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	unsigned long areas = small_mb * (1UL << 20) / PAGE;
	const __u64 gib = 1UL << 30, base = 1UL << 32;
	unsigned int reps = 2000;
	double t0, t1;
	char *mem;
	__u32 ioas;
	long s0, s1;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		die("open /dev/iommu");
	/* Nothing is pinned without a domain or access: untouched memory is enough. */
	mem = mmap(NULL, 2 * gib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");

	t0 = now_ns();
	for (unsigned int i = 0; i < reps * 5; i++)
		destroy(ioas_alloc());
	t1 = now_ns();
	printf("ioas_alloc_destroy none %.0f ns\n", (t1 - t0) / (reps * 5));

	ioas = ioas_alloc();
	s0 = slab_kb();
	t0 = now_ns();
	for (unsigned long i = 0; i < areas; i++)
		map_fixed(ioas, mem + i * PAGE, PAGE, base + i * PAGE);
	t1 = now_ns();
	s1 = slab_kb();
	printf("map_4k_areas none %.0f ns\n", (t1 - t0) / areas);
	if (s0 >= 0 && s1 >= 0)
		printf("slab_per_4k_area none %.0f bytes\n", (s1 - s0) * 1024.0 / areas);
	t0 = now_ns();
	for (unsigned long i = 0; i < areas; i++)
		unmap(ioas, base + i * PAGE, PAGE);
	t1 = now_ns();
	printf("unmap_4k_areas none %.0f ns\n", (t1 - t0) / areas);

	for (unsigned long i = 0; i < areas; i++)
		map_fixed(ioas, mem + i * PAGE, PAGE, base + i * PAGE);
	t0 = now_ns();
	unmap(ioas, 0, UINT64_MAX);
	t1 = now_ns();
	printf("unmap_all_4k_areas none %.0f ns\n", (t1 - t0) / areas);

	t0 = now_ns();
	for (unsigned int i = 0; i < reps; i++) {
		map_fixed(ioas, mem, gib, base);
		unmap(ioas, base, gib);
	}
	t1 = now_ns();
	printf("map_unmap_1g_area none %.0f ns\n", (t1 - t0) / reps);

	map_fixed(ioas, mem, gib, base);
	t0 = now_ns();
	for (unsigned int i = 0; i < reps; i++) {
		copy(ioas, base + 2 * gib, base, gib);
		unmap(ioas, base + 2 * gib, gib);
	}
	t1 = now_ns();
	printf("copy_unmap_1g_area none %.0f ns\n", (t1 - t0) / reps);

	destroy(ioas);
	bench_mock(small_mb);
	if (argc > 2)
		bench_vtd(argv[2], small_mb);
	close(fd);
	return 0;
}
