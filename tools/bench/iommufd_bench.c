// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_bench: times /dev/iommu operations for `make bench`. One run of every benchmark;
 * tools/bench.sh alternates implementations and takes medians. Prints one line per benchmark:
 *   <bench> <domain> <value> <unit>
 * Times are wall-clock nanoseconds per operation (CLOCK_MONOTONIC) unless the unit says otherwise.
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

static long slab_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
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
	close(fd);
	return 0;
}
