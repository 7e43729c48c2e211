// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: the ioctl dispatch contract of /dev/iommu, run unchanged against the C
 * module and ours. Every expectation here is upstream's behaviour; a test that fails against the
 * C module is a wrong test.
 *
 * Built with the kselftest harness of the kernel tree we test (see tests/selftests/Makefile).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "kselftest_harness.h"
#include "common.h"

/* A struct larger than any this kernel knows, to send "newer ABI" arguments. */
struct big_arg {
	__u32 size;
	__u32 words[63];
};

FIXTURE(dev_iommu)
{
	int fd;
};

FIXTURE_SETUP(dev_iommu)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/iommu: %s", strerror(errno));
}

FIXTURE_TEARDOWN(dev_iommu)
{
	close(self->fd);
}

/* A number past the last command, and a number in range with the wrong type byte. */
TEST_F(dev_iommu, unknown_command_is_enotty)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd) };

	EXPECT_EQ(-1, ioctl(self->fd, _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 0x70), &cmd));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('x', IOMMUFD_CMD_DESTROY), &cmd));
	EXPECT_EQ(ENOTTY, errno);
	/* The same number with a direction/size encoding is another command. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOW(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, __u64), &cmd));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev_iommu, bad_pointer_is_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_DESTROY, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOC, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

/* Shorter than the last mandatory field: EINVAL, whatever the rest says. */
TEST_F(dev_iommu, short_size_is_einval)
{
	struct iommu_destroy d = { .size = offsetof(struct iommu_destroy, id) };
	struct iommu_ioas_alloc a = { .size = offsetof(struct iommu_ioas_alloc, out_ioas_id) };

	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_DESTROY, &d));
	EXPECT_EQ(EINVAL, errno);
	d.size = 0;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_DESTROY, &d));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	EXPECT_EQ(EINVAL, errno);
}

/* Longer than ours: accepted when the tail is zero, E2BIG otherwise, and nothing is created. */
TEST_F(dev_iommu, long_size_needs_zero_tail)
{
	struct big_arg arg = { .size = sizeof(arg) };
	struct iommu_ioas_alloc *a = (void *)&arg;
	__u32 id;

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &arg));
	id = a->out_ioas_id;
	EXPECT_NE(0, id);
	/* The answer never runs past the struct the kernel knows. */
	for (unsigned int i = 2; i < 63; i++)
		EXPECT_EQ(0, arg.words[i]);

	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.words[62] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOC, &arg));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(0, a->out_ioas_id);

	/* A refused DESTROY leaves the object alone. */
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.words[0] = id;
	arg.words[40] = 7;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_DESTROY, &arg));
	EXPECT_EQ(E2BIG, errno);
	arg.words[40] = 0;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, &arg));
	EXPECT_EQ(-1, destroy(self->fd, id));
	EXPECT_EQ(ENOENT, errno);
}

/* A newer caller's tail that runs into unmapped memory is a fault, not a size error. */
TEST_F(dev_iommu, tail_past_mapping_faults)
{
	long page = sysconf(_SC_PAGESIZE);
	char *buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_destroy *d;

	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, munmap(buf + page, page));
	d = (void *)(buf + page - sizeof(*d));
	d->size = sizeof(*d) + 8;
	d->id = 1;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_DESTROY, d));
	EXPECT_EQ(EFAULT, errno);
	munmap(buf, page);
}

TEST_F(dev_iommu, ioas_alloc_flags)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a), .flags = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	EXPECT_EQ(EOPNOTSUPP, errno);
	a.flags = 1u << 31;
	EXPECT_EQ(-1, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST_F(dev_iommu, ioas_alloc_destroy)
{
	__u32 ids[16];

	for (unsigned int i = 0; i < 16; i++) {
		ASSERT_EQ(0, ioas_alloc(self->fd, &ids[i]));
		EXPECT_NE(0, ids[i]);
		for (unsigned int j = 0; j < i; j++)
			EXPECT_NE(ids[j], ids[i]);
	}
	for (unsigned int i = 0; i < 16; i += 2)
		EXPECT_EQ(0, destroy(self->fd, ids[i]));
	for (unsigned int i = 0; i < 16; i += 2) {
		EXPECT_EQ(-1, destroy(self->fd, ids[i]));
		EXPECT_EQ(ENOENT, errno);
	}
	for (unsigned int i = 1; i < 16; i += 2)
		EXPECT_EQ(0, destroy(self->fd, ids[i]));
}

TEST_F(dev_iommu, destroy_unknown_id)
{
	EXPECT_EQ(-1, destroy(self->fd, 0));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, destroy(self->fd, 12345));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, destroy(self->fd, UINT32_MAX));
	EXPECT_EQ(ENOENT, errno);
}

/* Objects belong to one open file: another open cannot see or destroy them. */
TEST_F(dev_iommu, objects_are_per_fd)
{
	int other = open("/dev/iommu", O_RDWR);
	__u32 id;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	EXPECT_EQ(-1, destroy(other, id));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, destroy(self->fd, id));
	close(other);
}

/* Closing a file with live objects tears them down (kmemleak and the module unload check it). */
TEST(close_with_objects)
{
	int fd = open("/dev/iommu", O_RDWR);
	__u32 id;

	ASSERT_LE(0, fd);
	for (unsigned int i = 0; i < 64; i++)
		ASSERT_EQ(0, ioas_alloc(fd, &id));
	EXPECT_EQ(0, close(fd));
}

TEST_HARNESS_MAIN
