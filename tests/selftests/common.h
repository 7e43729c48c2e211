/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs selftests: the macros and ioctl helpers that several of the tests here share, one
 * copy each. A helper returns what the ioctl returned (0, or -1 with errno set as the ioctl left
 * it) and afterwards copies its outputs out of the argument struct; outputs documented as
 * NULL-able are skipped when NULL. Helpers only one test uses stay in that test.
 */
#ifndef IOMMUFD_RS_SELFTESTS_COMMON_H
#define IOMMUFD_RS_SELFTESTS_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"
#include "sysinfo.h"

#define PAGE 4096UL
#define HUGE (2UL << 20)
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
/* First IOVA of the mock domain's aperture. */
#define AP ((__u64)MOCK_APERTURE_START)
#ifndef offsetofend
#define offsetofend(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#endif

/* The call fails with exactly this errno (errno is read before anything can clobber it). */
#define EXPECT_FAIL(err, expr)                  \
	do {                                    \
		long __ret = (expr);            \
		int __err = errno;              \
		EXPECT_EQ(-1, __ret);           \
		EXPECT_EQ(err, __err);          \
	} while (0)

static inline int ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return ret;
}

static inline int destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

/* IOMMU_IOAS_MAP with exactly @flags; *iova goes in as the IOVA and comes back as the one used. */
static inline int map(int fd, __u32 ioas, void *va, __u64 len, __u64 *iova, __u32 flags)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = *iova,
	};
	int ret = ioctl(fd, IOMMU_IOAS_MAP, &cmd);

	*iova = cmd.iova;
	return ret;
}

/* IOMMU_IOAS_MAP at a fixed @iova: @flags | IOMMU_IOAS_MAP_FIXED_IOVA. */
static inline int map_at(int fd, __u32 ioas, void *va, __u64 len, __u64 iova, __u32 flags)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &cmd);
}

/* A readable and writeable map at a fixed @iova. */
static inline int map_fixed(int fd, __u32 ioas, void *va, __u64 len, __u64 iova)
{
	return map_at(fd, ioas, va, len, iova, RW);
}

/* *unmapped (NULL-able) is the length the kernel reports unmapped. */
static inline int unmap(int fd, __u32 ioas, __u64 iova, __u64 len, __u64 *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};
	int ret = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);

	if (unmapped)
		*unmapped = cmd.length;
	return ret;
}

/* IOMMU_IOAS_COPY; *dst_iova goes in as the destination IOVA and comes back as the one used. */
static inline int copy(int fd, __u32 dst, __u64 *dst_iova, __u32 src, __u64 src_iova, __u64 len,
		       __u32 flags)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst,
		.src_ioas_id = src,
		.length = len,
		.dst_iova = *dst_iova,
		.src_iova = src_iova,
	};
	int ret = ioctl(fd, IOMMU_IOAS_COPY, &cmd);

	*dst_iova = cmd.dst_iova;
	return ret;
}

static inline int add_reserved(int fd, __u32 ioas, __u64 start, __u64 length)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_ADD_RESERVED,
		.id = ioas,
		.add_reserved = { .start = start, .length = length },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static inline int allow(int fd, __u32 ioas, const struct iommu_iova_range *r, __u32 n)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.num_iovas = n,
		.allowed_iovas = (uintptr_t)r,
	};

	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

static inline int check_refs(int fd, void *va, __u64 len, __u32 refs)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
		.check_refs = { .length = len, .uptr = (uintptr_t)va, .refs = refs },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* IOMMU_TEST_OP_MD_CHECK_MAP: [@iova, @iova + @len) of mock HWPT @hwpt maps @va. */
static inline int check_map(int fd, __u32 hwpt, __u64 iova, __u64 len, void *va)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt,
		.check_map = { .iova = iova, .length = len, .uptr = (uintptr_t)va },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* A mock device attached to @pt; the three outputs are NULL-able. */
static inline int mock_domain(int fd, __u32 pt, __u32 *stdev, __u32 *hwpt, __u32 *idev)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = pt,
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (stdev)
		*stdev = cmd.mock_domain.out_stdev_id;
	if (hwpt)
		*hwpt = cmd.mock_domain.out_hwpt_id;
	if (idev)
		*idev = cmd.mock_domain.out_idev_id;
	return ret;
}

/* Moves the mock device to another HWPT (or IOAS); *out (NULL-able) is what it attached to. */
static inline int replace(int fd, __u32 stdev, __u32 pt, __u32 *out)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev,
		.mock_domain_replace = { .pt_id = pt },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (out)
		*out = cmd.mock_domain_replace.pt_id;
	return ret;
}

/* IOMMU_HWPT_ALLOC; *out (NULL-able) is the new HWPT's ID. */
static inline int hwpt_alloc(int fd, __u32 dev, __u32 pt, __u32 flags, __u32 type, void *data,
			     __u32 len, __u32 *out)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev,
		.pt_id = pt,
		.data_type = type,
		.data_len = len,
		.data_uptr = (uintptr_t)data,
	};
	int ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (out)
		*out = cmd.out_hwpt_id;
	return ret;
}

/* An emulated access on @ioas; *afd is its fd, or -1 if the call failed. */
static inline int create_access(int fd, __u32 ioas, __u32 flags, int *afd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.id = ioas,
		.create_access = { .flags = flags },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	*afd = ret ? -1 : (int)cmd.create_access.out_access_fd;
	return ret;
}

/* Pins through access @afd; *id (NULL-able) is the pin's ID for unpin(). */
static inline int access_pages(int fd, int afd, __u64 iova, __u64 len, void *uptr, __u32 flags,
			       __u32 *id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_ACCESS_PAGES,
		.id = afd,
		.access_pages = { .flags = flags, .iova = iova, .length = len,
				  .uptr = (uintptr_t)uptr },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (id)
		*id = cmd.access_pages.out_access_pages_id;
	return ret;
}

static inline int unpin(int fd, int afd, __u32 id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
		.id = afd,
		.destroy_access_pages = { .access_pages_id = id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static inline int access_rw(int fd, int afd, __u64 iova, void *data, __u64 len, __u32 flags)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_ACCESS_RW,
		.id = afd,
		.access_rw = { .iova = iova, .length = len, .uptr = (uintptr_t)data,
			       .flags = flags },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static inline int access_replace(int fd, int afd, __u32 ioas)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
		.id = afd,
		.access_replace_ioas = { .ioas_id = ioas },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* A "Vm...:" line of /proc/self/status, in kB; -1 if missing. */
static inline long vm_status(const char *tag)
{
	return proc_kb("/proc/self/status", tag);
}

#endif /* IOMMUFD_RS_SELFTESTS_COMMON_H */
