// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_demo: talks to /dev/iommu the way a VMM starts to, printing each step. Run by
 * `make demo` in the test VM against our module; it grows as features land.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>

static int failures;

static void step(const char *what, int ret, int want_errno)
{
	int err = errno;
	int ok = want_errno ? (ret == -1 && err == want_errno) : ret == 0;

	printf("  %-52s -> %s", what, ret == 0 ? "ok" : strerror(err));
	if (want_errno)
		printf(" (upstream: %s)", strerror(want_errno));
	printf("%s\n", ok ? "" : "   <-- UNEXPECTED");
	failures += !ok;
}

int main(void)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_destroy destroy = { .size = sizeof(destroy) };
	__u32 ioas[3];
	int fd;

	printf("opening /dev/iommu\n");
	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0) {
		printf("  open: %s\n", strerror(errno));
		return 1;
	}
	printf("allocating three IOAS objects (IOMMU_IOAS_ALLOC)\n");
	for (int i = 0; i < 3; i++) {
		alloc.flags = 0;
		step("IOMMU_IOAS_ALLOC", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc), 0);
		ioas[i] = alloc.out_ioas_id;
		printf("  -> out_ioas_id = %u\n", ioas[i]);
	}
	printf("the uAPI rules\n");
	alloc.flags = 1;
	step("IOMMU_IOAS_ALLOC with an unknown flag", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc), EOPNOTSUPP);
	alloc.flags = 0;
	alloc.size = 8;
	step("IOMMU_IOAS_ALLOC, size 8 (< end of out_ioas_id)", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc), EINVAL);
	step("unknown command _IO(';', 0xff)", ioctl(fd, _IO(IOMMUFD_TYPE, 0xff), &alloc), ENOTTY);
	{
		static char buf[1 << 22] __attribute__((aligned(1 << 21)));
		struct iommu_iova_range ranges[4];
		struct iommu_ioas_iova_ranges r = {
			.size = sizeof(r), .ioas_id = ioas[0], .num_iovas = 4,
			.allowed_iovas = (uintptr_t)ranges,
		};
		struct iommu_ioas_map map = {
			.size = sizeof(map), .ioas_id = ioas[0],
			.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
			.user_va = (uintptr_t)buf, .length = sizeof(buf),
		};
		struct iommu_ioas_copy copy = {
			.size = sizeof(copy), .dst_ioas_id = ioas[1], .src_ioas_id = ioas[0],
			.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
			.length = sizeof(buf), .dst_iova = 0x40000000,
		};
		struct iommu_ioas_unmap unmap = {
			.size = sizeof(unmap), .ioas_id = ioas[0], .iova = 0, .length = UINT64_MAX,
		};

		printf("IOVA space of IOAS %u (IOMMU_IOAS_IOVA_RANGES)\n", ioas[0]);
		step("IOMMU_IOAS_IOVA_RANGES", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r), 0);
		for (unsigned int i = 0; i < r.num_iovas && i < 4; i++)
			printf("  -> usable [%#llx, %#llx], alignment %llu\n",
			       (unsigned long long)ranges[i].start, (unsigned long long)ranges[i].last,
			       (unsigned long long)r.out_iova_alignment);
		printf("mapping 4 MiB of 2 MiB-aligned memory, kernel-chosen IOVA (IOMMU_IOAS_MAP)\n");
		step("IOMMU_IOAS_MAP", ioctl(fd, IOMMU_IOAS_MAP, &map), 0);
		printf("  -> iova = %#llx (huge-page aligned, like the memory)\n", (unsigned long long)map.iova);
		step("IOMMU_IOAS_MAP again at that fixed IOVA", (map.flags |= IOMMU_IOAS_MAP_FIXED_IOVA,
		     ioctl(fd, IOMMU_IOAS_MAP, &map)), EEXIST);
		copy.src_iova = map.iova;
		printf("sharing it with IOAS %u at 0x40000000 (IOMMU_IOAS_COPY)\n", ioas[1]);
		step("IOMMU_IOAS_COPY", ioctl(fd, IOMMU_IOAS_COPY, &copy), 0);
		printf("unmapping everything in IOAS %u (IOMMU_IOAS_UNMAP, iova 0, length U64_MAX)\n", ioas[0]);
		step("IOMMU_IOAS_UNMAP", ioctl(fd, IOMMU_IOAS_UNMAP, &unmap), 0);
		printf("  -> %llu bytes unmapped\n", (unsigned long long)unmap.length);
	}
	printf("destroying them (IOMMU_DESTROY)\n");
	for (int i = 0; i < 3; i++) {
		destroy.id = ioas[i];
		step("IOMMU_DESTROY", ioctl(fd, IOMMU_DESTROY, &destroy), 0);
	}
	destroy.id = ioas[0];
	step("IOMMU_DESTROY of an id already destroyed", ioctl(fd, IOMMU_DESTROY, &destroy), ENOENT);
	close(fd);
	printf("%s\n", failures ? "demo: FAILED" : "demo: all steps answered as upstream specifies");
	return failures ? 1 : 0;
}
