// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: what keeps the module loaded, and how /dev/iommu is created.
 *
 * Every file whose operations are the module's (a /dev/iommu fd, a vIOMMU region mmap()ed from
 * one, a fault queue fd, the selftest's access fd) holds a reference on the module for as long
 * as it is open, as upstream's file operations do with `.owner = THIS_MODULE`: otherwise rmmod
 * succeeds and the next ioctl, close or munmap runs freed module text. The module's reference
 * count (/sys/module/iommufd/refcnt) tells; a delete_module() is only tried once the count says
 * it must fail, so a module without the reference is caught without being unloaded under us.
 *
 * /dev/iommu is 0660, as upstream's misc device has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"
#include "kselftest_harness.h"
#include "common.h"
#include "sysinfo.h"

/*
 * With the count above @base (so the unload must be refused), delete_module() must fail and
 * leave the module loaded; it is never tried otherwise.
 */
static int unload_refused(long base)
{
	long ret;

	if (module_refcnt() <= base)
		return 0;
	ret = syscall(__NR_delete_module, "iommufd", O_NONBLOCK);
	return ret == -1 && (errno == EWOULDBLOCK || errno == EBUSY) && module_refcnt() > base;
}

TEST(dev_iommu_mode_0660)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/iommu", &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0660, st.st_mode & 07777);
}

/* An open /dev/iommu holds the module; the fd keeps working while rmmod is refused. */
TEST(fd_holds_module)
{
	long base = module_refcnt();
	__u32 ioas;
	int fd;

	if (iommufd_builtin())
		SKIP(return, "iommufd is built into the kernel: no module to hold");

	ASSERT_LE(0, base);
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(base + 1, module_refcnt());
	EXPECT_TRUE(unload_refused(base));
	EXPECT_EQ(0, ioas_alloc(fd, &ioas));
	EXPECT_EQ(0, destroy(fd, ioas));
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(base, module_refcnt());
}

/* A vIOMMU region mapped from a /dev/iommu fd holds it (and so the module) after close(). */
TEST(viommu_mmap_holds_module)
{
	struct iommu_viommu_selftest data = { .in_data = 1 };
	struct iommu_viommu_alloc va = {
		.size = sizeof(va),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data,
	};
	__u32 ioas, stdev, hwpt, idev, parent;
	long base = module_refcnt(), open_refs;
	void *p;
	int fd;

	if (iommufd_builtin())
		SKIP(return, "iommufd is built into the kernel: no module to hold");

	ASSERT_LE(0, base);
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, mock_domain(fd, ioas, &stdev, &hwpt, &idev));
	ASSERT_EQ(0, hwpt_alloc(fd, idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_NONE,
				NULL, 0, &parent));
	va.dev_id = idev;
	va.hwpt_id = parent;
	ASSERT_EQ(0, ioctl(fd, IOMMU_VIOMMU_ALLOC, &va));
	p = mmap(NULL, data.out_mmap_length, PROT_READ, MAP_SHARED, fd, data.out_mmap_offset);
	ASSERT_NE(MAP_FAILED, p);
	/* The file's reference and whatever its objects hold (the mock device's IOMMU holds one). */
	open_refs = module_refcnt();
	EXPECT_LT(base, open_refs);
	EXPECT_EQ(0, close(fd));
	/* Only the mapping holds the file now: nothing was let go. */
	EXPECT_EQ(open_refs, module_refcnt());
	EXPECT_TRUE(unload_refused(base));
	EXPECT_EQ(1, *(volatile __u32 *)p);
	EXPECT_EQ(0, munmap(p, data.out_mmap_length));
	EXPECT_EQ(base, module_refcnt());
}

/* A fault queue's fd holds the module after the /dev/iommu fd is closed. */
TEST(fault_fd_holds_module)
{
	struct iommu_fault_alloc fa = { .size = sizeof(fa) };
	long base = module_refcnt();
	int fd;

	if (iommufd_builtin())
		SKIP(return, "iommufd is built into the kernel: no module to hold");

	ASSERT_LE(0, base);
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));
	EXPECT_EQ(0, close(fd));
	EXPECT_LT(base, module_refcnt());
	EXPECT_TRUE(unload_refused(base));
	EXPECT_EQ(0, close(fa.out_fault_fd));
	EXPECT_EQ(base, module_refcnt());
}

/* The selftest's access fd holds the module after the /dev/iommu fd is closed. */
TEST(access_fd_holds_module)
{
	long base = module_refcnt();
	__u32 ioas;
	int fd, afd;

	if (iommufd_builtin())
		SKIP(return, "iommufd is built into the kernel: no module to hold");

	ASSERT_LE(0, base);
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, create_access(fd, ioas, 0, &afd));
	EXPECT_EQ(0, close(fd));
	EXPECT_LT(base, module_refcnt());
	EXPECT_TRUE(unload_refused(base));
	EXPECT_EQ(0, close(afd));
	EXPECT_EQ(base, module_refcnt());
}

TEST_HARNESS_MAIN
