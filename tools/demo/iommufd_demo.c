// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_demo: talks to /dev/iommu the way a VMM starts to, printing each step. Run by
 * `make demo` in the test VM against our module; it grows as features land.
 */
#include <errno.h>
#include <fcntl.h>
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
