// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: the vIOMMU uAPI on the selftest mock driver. IOMMU_VIOMMU_ALLOC (with and
 * without struct iommu_viommu_selftest, and the mmap()able page it registers on /dev/iommu),
 * IOMMU_VDEVICE_ALLOC, nested HWPTs allocated on a vIOMMU, IOMMU_VEVENTQ_ALLOC and its read()
 * stream, IOMMU_HWPT_INVALIDATE on a vIOMMU and IOMMU_HW_QUEUE_ALLOC, with the object lifetimes,
 * the errno of each bad input and the object IDs left after failures.
 * Upstream behaviour: both modules must pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

#define BUF_PAGES 4
/* The core's bound on veventq_depth. */
#define VEVENTQ_MAX_DEPTH (1U << 19)

/* mmap() of /dev/iommu fails with exactly this errno. */
#define EXPECT_MMAP_FAIL(err, fd, len, prot, flags, off)                    \
	do {                                                                \
		void *__p = mmap(NULL, len, prot, flags, fd, off);          \
		int __err = errno;                                          \
		EXPECT_EQ(MAP_FAILED, __p);                                 \
		if (__p != MAP_FAILED)                                      \
			munmap(__p, len);                                   \
		else                                                        \
			EXPECT_EQ(err, __err);                              \
	} while (0)

/* What one selftest vEVENT looks like in the read() stream: a header and the virt_id. */
struct sevent {
	struct iommufd_vevent_header hdr;
	struct iommu_viommu_event_selftest ev;
};
#define HDR_SZ sizeof(struct iommufd_vevent_header)
#define EV_SZ sizeof(struct sevent)

/* The ID the next object gets: allocate an IOAS and free it again (0 on failure). */
static __u32 next_id(int fd)
{
	__u32 id = 0;

	if (ioas_alloc(fd, &id) || destroy(fd, id))
		return 0;
	return id;
}

/* The lowest fd number free in this process. */
static int next_fd(void)
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* A nested HWPT on a vIOMMU whose mock IOTLB entries all start at @iotlb. */
static int nested_alloc(int fd, __u32 dev, __u32 viommu, __u32 iotlb, __u32 *out)
{
	struct iommu_hwpt_selftest data = { .iotlb = iotlb };

	return hwpt_alloc(fd, dev, viommu, 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), out);
}

static int viommu_alloc(int fd, __u32 dev, __u32 hwpt, __u32 type, void *data, __u32 len,
			__u32 *out)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = type,
		.dev_id = dev,
		.hwpt_id = hwpt,
		.data_len = len,
		.data_uptr = (uintptr_t)data,
	};
	int ret = ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd);

	if (out)
		*out = cmd.out_viommu_id;
	return ret;
}

static int vdev_alloc(int fd, __u32 viommu, __u32 dev, __u64 virt_id, __u32 *out)
{
	struct iommu_vdevice_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu,
		.dev_id = dev,
		.virt_id = virt_id,
	};
	int ret = ioctl(fd, IOMMU_VDEVICE_ALLOC, &cmd);

	if (out)
		*out = cmd.out_vdevice_id;
	return ret;
}

static int veventq_alloc(int fd, __u32 viommu, __u32 type, __u32 depth, __u32 *id, int *evfd)
{
	struct iommu_veventq_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu,
		.type = type,
		.veventq_depth = depth,
	};
	int ret = ioctl(fd, IOMMU_VEVENTQ_ALLOC, &cmd);

	if (id)
		*id = cmd.out_veventq_id;
	if (evfd)
		*evfd = ret ? -1 : (int)cmd.out_veventq_fd;
	return ret;
}

static int trigger(int fd, __u32 idev)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_TRIGGER_VEVENT,
		.trigger_vevent = { .dev_id = idev },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static int check_cache(int fd, __u32 idev, __u32 cache_id, __u32 val)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DEV_CHECK_CACHE,
		.id = idev,
		.check_dev_cache = { .id = cache_id, .cache = val },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* The four cache entries of a mock device, one bit each: 1 = still the default, 0 = zeroed. */
static int cache_state(int fd, __u32 idev)
{
	int mask = 0;

	for (__u32 i = 0; i < MOCK_DEV_CACHE_NUM; i++) {
		if (!check_cache(fd, idev, i, IOMMU_TEST_DEV_CACHE_DEFAULT))
			mask |= 1 << i;
		else if (check_cache(fd, idev, i, 0))
			return -1;
	}
	return mask;
}

static int check_iotlb(int fd, __u32 hwpt, __u32 iotlb_id, __u32 val)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
		.id = hwpt,
		.check_iotlb = { .id = iotlb_id, .iotlb = val },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* IOMMU_HWPT_INVALIDATE; *num goes in as entry_num and comes back as the number handled. */
static int invalidate(int fd, __u32 id, __u32 type, void *data, __u32 entry_len, __u32 *num)
{
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = id,
		.data_uptr = (uintptr_t)data,
		.data_type = type,
		.entry_len = entry_len,
		.entry_num = *num,
	};
	int ret = ioctl(fd, IOMMU_HWPT_INVALIDATE, &cmd);

	*num = cmd.entry_num;
	return ret;
}

static int inv_selftest(int fd, __u32 viommu, struct iommu_viommu_invalidate_selftest *req,
			__u32 *num)
{
	return invalidate(fd, viommu, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, req, sizeof(*req),
			  num);
}

static int hw_queue_alloc(int fd, __u32 viommu, __u32 type, __u32 index, __u64 iova, __u64 len,
			  __u32 *out)
{
	struct iommu_hw_queue_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu,
		.type = type,
		.index = index,
		.nesting_parent_iova = iova,
		.length = len,
	};
	int ret = ioctl(fd, IOMMU_HW_QUEUE_ALLOC, &cmd);

	if (out)
		*out = cmd.out_hw_queue_id;
	return ret;
}

/*
 * Sends @cmd (@len bytes) inside a 256-byte argument claiming size 256, as a newer caller would;
 * with @dirty the last byte of the unknown tail is non-zero. The answer is copied back to @cmd.
 */
static int ioctl_long(int fd, unsigned long req, void *cmd, size_t len, int dirty)
{
	union {
		__u32 size;
		__u8 bytes[256];
		__u64 align;
	} buf = {};
	__u32 size = len;
	int ret, err;

	memcpy(buf.bytes, cmd, len);
	buf.size = sizeof(buf);
	if (dirty)
		buf.bytes[sizeof(buf) - 1] = 1;
	ret = ioctl(fd, req, &buf);
	err = errno;
	memcpy(cmd, buf.bytes, len);
	memcpy(cmd, &size, sizeof(size));
	errno = err;
	return ret;
}

/* Sends @cmd with its size field set to @size. */
static int ioctl_sized(int fd, unsigned long req, void *cmd, __u32 size)
{
	memcpy(cmd, &size, sizeof(size));
	return ioctl(fd, req, cmd);
}

/* A user pointer nothing is mapped at (hidden from the compiler's bounds checks). */
static void *volatile bad_uptr = (void *)8;

static int readable(int evfd)
{
	struct pollfd p = { .fd = evfd, .events = POLLIN };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return !!(p.revents & POLLIN);
}

FIXTURE(viommu)
{
	int fd;
	__u32 ioas;
	__u32 stdev;	/* the mock device's selftest object: destroying it removes the device */
	__u32 idev;	/* its iommufd_device */
	__u32 auto_hwpt; /* the paging HWPT it was attached to */
	__u32 parent;	/* a NEST_PARENT paging HWPT on the IOAS */
	__u32 viommu;	/* a selftest vIOMMU on the parent, no driver data */
	void *buf;
};

FIXTURE_SETUP(viommu)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &self->stdev, &self->auto_hwpt,
				 &self->idev));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev, self->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT,
				IOMMU_HWPT_DATA_NONE, NULL, 0, &self->parent));
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  NULL, 0, &self->viommu));
	self->buf = mmap(NULL, BUF_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0xa5, BUF_PAGES * PAGE);
}

FIXTURE_TEARDOWN(viommu)
{
	if (self->fd >= 0)
		close(self->fd);
	munmap(self->buf, BUF_PAGES * PAGE);
}

/* ------------------------------------------------------------------ IOMMU_VIOMMU_ALLOC */

/* The vIOMMU holds its nesting parent; each goes only in order, and then is gone. */
TEST_F(viommu, viommu_holds_parent)
{
	__u32 v2;

	EXPECT_NE(0, self->viommu);
	EXPECT_NE(self->parent, self->viommu);
	EXPECT_NE(self->auto_hwpt, self->parent);
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->parent));
	/* The parent takes any number of vIOMMUs. */
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  NULL, 0, &v2));
	EXPECT_NE(self->viommu, v2);
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	EXPECT_FAIL(ENOENT, destroy(self->fd, self->viommu));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->parent));
	EXPECT_EQ(0, destroy(self->fd, v2));
	EXPECT_EQ(0, destroy(self->fd, self->parent));
	EXPECT_FAIL(ENOENT, destroy(self->fd, self->parent));
}

/* Unknown flags and types are EOPNOTSUPP; flags and the DEFAULT type are refused before ids. */
TEST_F(viommu, viommu_alloc_flags_and_types)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.flags = 1,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = self->idev,
		.hwpt_id = self->parent,
	};
	__u32 next = next_id(self->fd);

	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.flags = 1U << 31;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.dev_id = 0;
	cmd.hwpt_id = 0;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.flags = 0;
	cmd.type = IOMMU_VIOMMU_TYPE_DEFAULT;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	/* Any other type goes to the driver, after the device lookup but before the HWPT's. */
	cmd.type = 0x1234;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.dev_id = self->idev;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.hwpt_id = self->parent;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.type = IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	cmd.type = IOMMU_VIOMMU_TYPE_SELFTEST + 1;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VIOMMU_ALLOC, &cmd));
	EXPECT_EQ(0, cmd.out_viommu_id);
	EXPECT_EQ(next, next_id(self->fd));
	/* No reference on the parent was left behind. */
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	EXPECT_EQ(0, destroy(self->fd, self->parent));
}

/* dev_id must be a device and hwpt_id a NEST_PARENT paging HWPT. */
TEST_F(viommu, viommu_alloc_wrong_ids)
{
	__u32 plain, nested, next;

	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev, self->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL,
				0, &plain));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, IOMMU_TEST_IOTLB_DEFAULT,
				  &nested));
	next = next_id(self->fd);

	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, 0, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
					 NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->ioas, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->stdev, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->viommu, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->idev, 0, IOMMU_VIOMMU_TYPE_SELFTEST,
					 NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->idev, self->ioas,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->idev, self->viommu,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->idev, nested,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_FAIL(ENOENT, viommu_alloc(self->fd, self->idev, self->idev,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	/* A paging HWPT that is not a nesting parent: EINVAL, auto-allocated or not. */
	EXPECT_FAIL(EINVAL, viommu_alloc(self->fd, self->idev, plain, IOMMU_VIOMMU_TYPE_SELFTEST,
					 NULL, 0, NULL));
	EXPECT_FAIL(EINVAL, viommu_alloc(self->fd, self->idev, self->auto_hwpt,
					 IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, NULL));
	EXPECT_EQ(next, next_id(self->fd));
	EXPECT_EQ(0, destroy(self->fd, plain));
}

/* The argument may stop after out_viommu_id; a longer one needs a zero tail; __reserved is free. */
TEST_F(viommu, viommu_alloc_size_rules)
{
	struct iommu_viommu_alloc cmd = {
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = self->idev,
		.hwpt_id = self->parent,
	};
	__u32 next = next_id(self->fd);

	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_VIOMMU_ALLOC, &cmd,
					offsetof(struct iommu_viommu_alloc, out_viommu_id)));
	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_VIOMMU_ALLOC, &cmd, 0));
	EXPECT_FAIL(E2BIG, ioctl_long(self->fd, IOMMU_VIOMMU_ALLOC, &cmd, sizeof(cmd), 1));
	EXPECT_EQ(0, cmd.out_viommu_id);
	EXPECT_EQ(next, next_id(self->fd));

	/* Short of the data fields: those read as zero, no data. */
	cmd.data_len = 0xdead;
	EXPECT_EQ(0, ioctl_sized(self->fd, IOMMU_VIOMMU_ALLOC, &cmd,
				 offsetofend(struct iommu_viommu_alloc, out_viommu_id)));
	EXPECT_EQ(next, cmd.out_viommu_id);
	EXPECT_EQ(0, destroy(self->fd, cmd.out_viommu_id));
	cmd.data_len = 0;
	cmd.out_viommu_id = 0;
	EXPECT_EQ(0, ioctl_long(self->fd, IOMMU_VIOMMU_ALLOC, &cmd, sizeof(cmd), 0));
	EXPECT_EQ(next, cmd.out_viommu_id);
	EXPECT_EQ(0, destroy(self->fd, cmd.out_viommu_id));
	/* Upstream does not look at __reserved here (unlike IOMMU_VEVENTQ_ALLOC). */
	cmd.__reserved = 0xffffffff;
	cmd.out_viommu_id = 0;
	EXPECT_EQ(0, ioctl_sized(self->fd, IOMMU_VIOMMU_ALLOC, &cmd, sizeof(cmd)));
	EXPECT_EQ(next, cmd.out_viommu_id);
	EXPECT_EQ(0, destroy(self->fd, cmd.out_viommu_id));
}

/* The driver data loops in_data back, and registers a 2-page region to mmap() on /dev/iommu. */
TEST_F(viommu, viommu_data_loopback_and_mmap)
{
	struct iommu_viommu_selftest data = { .in_data = 0x1234abcd };
	__u32 id;
	__u32 *page;

	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  &data, sizeof(data), &id));
	EXPECT_EQ(0x1234abcd, data.in_data);
	EXPECT_EQ(0x1234abcd, data.out_data);
	EXPECT_EQ(2 * PAGE, data.out_mmap_length);
	EXPECT_NE(0, data.out_mmap_offset);
	EXPECT_EQ(0, data.out_mmap_offset % PAGE);

	page = mmap(NULL, data.out_mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		    data.out_mmap_offset);
	ASSERT_NE(MAP_FAILED, page);
	EXPECT_EQ(0x1234abcd, page[0]);
	EXPECT_EQ(0, page[1]);
	EXPECT_EQ(0, page[PAGE / 4]);
	/* The mapping pins the vIOMMU, and a refused destroy leaves it working. */
	EXPECT_FAIL(EBUSY, destroy(self->fd, id));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->parent));
	page[1] = 0x55;
	EXPECT_EQ(0x55, page[1]);
	EXPECT_EQ(0, munmap(page, data.out_mmap_length));
	EXPECT_EQ(0, destroy(self->fd, id));
	/* The region went with its owner. */
	EXPECT_MMAP_FAIL(ENXIO, self->fd, data.out_mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED,
			 data.out_mmap_offset);
}

/* Only the exact registered region can be mapped, shared and not executable. */
TEST_F(viommu, viommu_mmap_rules)
{
	struct iommu_viommu_selftest a = { .in_data = 0xaaaa }, b = { .in_data = 0xbbbb };
	__u32 ida, idb;
	__u32 *pa, *pb;
	off_t off;
	size_t len;

	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  &a, sizeof(a), &ida));
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  &b, sizeof(b), &idb));
	off = a.out_mmap_offset;
	len = a.out_mmap_length;
	EXPECT_NE(a.out_mmap_offset, b.out_mmap_offset);

	EXPECT_MMAP_FAIL(ENXIO, self->fd, len, PROT_READ, MAP_SHARED, 0);
	EXPECT_MMAP_FAIL(ENXIO, self->fd, len, PROT_READ, MAP_SHARED, off + PAGE);
	EXPECT_MMAP_FAIL(ENXIO, self->fd, len - PAGE, PROT_READ, MAP_SHARED, off + PAGE);
	EXPECT_MMAP_FAIL(ENXIO, self->fd, PAGE, PROT_READ, MAP_SHARED, off);
	EXPECT_MMAP_FAIL(ENXIO, self->fd, 2 * len, PROT_READ, MAP_SHARED, off);
	EXPECT_MMAP_FAIL(EINVAL, self->fd, len, PROT_READ, MAP_PRIVATE, off);
	EXPECT_MMAP_FAIL(EPERM, self->fd, len, PROT_READ | PROT_EXEC, MAP_SHARED, off);
	/* The vIOMMU without driver data registered nothing. */
	EXPECT_MMAP_FAIL(ENXIO, self->fd, PAGE, PROT_READ, MAP_SHARED, PAGE);

	/* Each region is its own vIOMMU's page; the refusals took no reference. */
	pa = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, off);
	ASSERT_NE(MAP_FAILED, pa);
	pb = mmap(NULL, b.out_mmap_length, PROT_READ, MAP_SHARED, self->fd, b.out_mmap_offset);
	ASSERT_NE(MAP_FAILED, pb);
	EXPECT_EQ(0xaaaa, pa[0]);
	EXPECT_EQ(0xbbbb, pb[0]);
	EXPECT_EQ(0, munmap(pb, b.out_mmap_length));
	EXPECT_EQ(0, destroy(self->fd, idb));
	EXPECT_FAIL(EBUSY, destroy(self->fd, ida));
	EXPECT_EQ(0, munmap(pa, len));
	EXPECT_EQ(0, destroy(self->fd, ida));
}

/* data_len: at least up to out_data, at most the driver's struct (a longer one is EINVAL). */
TEST_F(viommu, viommu_data_len_rules)
{
	struct {
		struct iommu_viommu_selftest d;
		__u64 tail;
	} data = { .d = { .in_data = 77, .out_mmap_offset = 0x5a5a, .out_mmap_length = 0x5a5a } };
	__u32 next = next_id(self->fd), id;

	EXPECT_FAIL(EINVAL, viommu_alloc(self->fd, self->idev, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, &data, 4, NULL));
	EXPECT_FAIL(EINVAL, viommu_alloc(self->fd, self->idev, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, &data, 7, NULL));
	EXPECT_FAIL(EINVAL, viommu_alloc(self->fd, self->idev, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, &data, sizeof(data), NULL));
	EXPECT_FAIL(EFAULT, viommu_alloc(self->fd, self->idev, self->parent,
					 IOMMU_VIOMMU_TYPE_SELFTEST, bad_uptr, sizeof(data.d),
					 NULL));
	EXPECT_EQ(0, data.d.out_data);
	/* The failures came after the vIOMMU object was made: its ID is free again. */
	EXPECT_EQ(next, next_id(self->fd));

	/* The first version of the struct: only out_data is written back. */
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  &data, offsetofend(struct iommu_viommu_selftest, out_data), &id));
	EXPECT_EQ(next, id);
	EXPECT_EQ(77, data.d.out_data);
	EXPECT_EQ(0x5a5a, data.d.out_mmap_offset);
	EXPECT_EQ(0x5a5a, data.d.out_mmap_length);
	EXPECT_EQ(0, destroy(self->fd, id));
	/* data_len 0: data_uptr is not even looked at. */
	EXPECT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  bad_uptr, 0, &id));
	EXPECT_EQ(0, destroy(self->fd, id));
}

/* ------------------------------------------------------------------ IOMMU_VDEVICE_ALLOC */

/* A vDEVICE holds its vIOMMU. */
TEST_F(viommu, vdevice_holds_viommu)
{
	__u32 vdev;

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x99, &vdev));
	EXPECT_NE(0, vdev);
	EXPECT_NE(self->viommu, vdev);
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	/* It does not hold the device's own objects. */
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->auto_hwpt));
	EXPECT_EQ(0, destroy(self->fd, vdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, vdev));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/* One virt_id per vIOMMU, one vDEVICE per device (across vIOMMUs); both free up on destroy. */
TEST_F(viommu, vdevice_eexist)
{
	__u32 stdev2, idev2, stdev3, idev3, v2, a, b, c;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, NULL, &idev2));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev3, NULL, &idev3));
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  NULL, 0, &v2));

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x10, &a));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, idev2, 0x10, NULL));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, self->idev, 0x20, NULL));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, v2, self->idev, 0x20, NULL));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, self->idev, 0x10, NULL));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, idev2, 0x20, &b));
	/* virt_ids are per vIOMMU. */
	ASSERT_EQ(0, vdev_alloc(self->fd, v2, idev3, 0x10, &c));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, v2, idev2, 0x30, NULL));

	EXPECT_EQ(0, destroy(self->fd, a));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, idev2, 0x10, NULL));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, self->idev, 0x20, NULL));
	ASSERT_EQ(0, vdev_alloc(self->fd, v2, self->idev, 0x20, &a));
	EXPECT_EQ(0, destroy(self->fd, a));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x10, &a));
	EXPECT_EQ(0, destroy(self->fd, a));
	EXPECT_EQ(0, destroy(self->fd, b));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	EXPECT_FAIL(EBUSY, destroy(self->fd, v2));
	EXPECT_EQ(0, destroy(self->fd, c));
	EXPECT_EQ(0, destroy(self->fd, v2));
}

/* Wrong ids are ENOENT; the size rules; any virt_id, 0 and 64-bit included. */
TEST_F(viommu, vdevice_bad_input)
{
	struct iommu_vdevice_alloc cmd = {
		.viommu_id = self->viommu,
		.dev_id = self->idev,
		.virt_id = 5,
	};
	__u32 next = next_id(self->fd), stdev2, idev2, id;

	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, 0, self->idev, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->parent, self->idev, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->ioas, self->idev, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->idev, self->idev, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->viommu, 0, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->viommu, self->stdev, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->viommu, self->ioas, 1, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->viommu, self->viommu, 1, NULL));
	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_VDEVICE_ALLOC, &cmd,
					offsetof(struct iommu_vdevice_alloc, virt_id)));
	EXPECT_FAIL(E2BIG, ioctl_long(self->fd, IOMMU_VDEVICE_ALLOC, &cmd, sizeof(cmd), 1));
	EXPECT_EQ(next, next_id(self->fd));

	ASSERT_EQ(0, ioctl_long(self->fd, IOMMU_VDEVICE_ALLOC, &cmd, sizeof(cmd), 0));
	EXPECT_EQ(next, cmd.out_vdevice_id);
	EXPECT_EQ(0, destroy(self->fd, cmd.out_vdevice_id));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 1ULL << 40, &id));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, NULL, &idev2));
	/* The same low 32 bits as the other device's: still another virt_id. */
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, idev2, 0, NULL));
}

/* Failed allocations leave no ID behind, and a failed one leaves the device free for another. */
TEST_F(viommu, vdevice_failures_leak_nothing)
{
	__u32 stdev2, idev2, a, b, next;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, NULL, &idev2));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x42, &a));
	next = next_id(self->fd);

	/* The duplicate virt_id is found after the vDEVICE object was made for idev2. */
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, idev2, 0x42, NULL));
	EXPECT_FAIL(EEXIST, vdev_alloc(self->fd, self->viommu, self->idev, 0x43, NULL));
	EXPECT_FAIL(ENOENT, vdev_alloc(self->fd, self->viommu, 0, 0x43, NULL));
	EXPECT_EQ(next, next_id(self->fd));
	/* idev2 does not count as having a vDEVICE, and 0x42 still belongs to the first. */
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, idev2, 0x43, &b));
	EXPECT_EQ(next, b);
	EXPECT_EQ(0, destroy(self->fd, a));
	EXPECT_EQ(0, destroy(self->fd, b));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/*
 * Destroying the device takes its vDEVICE along: DESTROY then answers ENOENT, the vIOMMU is free
 * to go, the virt_id is free for another device, and the vDEVICE's ID is never handed out again.
 */
TEST_F(viommu, vdevice_goes_with_its_device)
{
	__u32 stdev2, idev2, vdev, vdev2, id;

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x99, &vdev));
	ASSERT_EQ(0, destroy(self->fd, self->stdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, vdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, self->idev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, self->auto_hwpt));

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, NULL, &idev2));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, idev2, 0x99, &vdev2));
	EXPECT_NE(vdev, vdev2);
	EXPECT_EQ(0, destroy(self->fd, vdev2));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	EXPECT_EQ(0, destroy(self->fd, self->parent));

	for (int i = 0; i < 64; i++) {
		ASSERT_EQ(0, ioas_alloc(self->fd, &id));
		EXPECT_NE(vdev, id);
		if (id > vdev)
			break;
	}
	EXPECT_LT(vdev, id);
	EXPECT_FAIL(ENOENT, destroy(self->fd, vdev));
}

/* Same while the device is attached to a nested HWPT and its events are queued. */
TEST_F(viommu, vdevice_goes_while_attached)
{
	struct sevent ev[2];
	__u32 nested, vdev, qid;
	int evfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 4, &qid,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x7, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));
	ASSERT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_FAIL(EBUSY, destroy(self->fd, nested));

	ASSERT_EQ(0, destroy(self->fd, self->stdev));
	EXPECT_FAIL(ENOENT, destroy(self->fd, vdev));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->idev));
	/* The event outlives the device. */
	EXPECT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0, ev[0].hdr.flags);
	EXPECT_EQ(0, ev[0].hdr.sequence);
	EXPECT_EQ(0x7, ev[0].ev.virt_id);
	EXPECT_EQ(0, destroy(self->fd, nested));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	close(evfd);
	EXPECT_EQ(0, destroy(self->fd, qid));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/* ------------------------------------------------------------------ nested HWPT on a vIOMMU */

/* pt_id may be a vIOMMU: the nested HWPT holds the vIOMMU and takes the driver data. */
TEST_F(viommu, nested_hwpt_on_viommu)
{
	__u32 n1, n2;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, IOMMU_TEST_IOTLB_DEFAULT,
				  &n1));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0x1234, &n2));
	EXPECT_NE(n1, n2);
	for (__u32 i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) {
		EXPECT_EQ(0, check_iotlb(self->fd, n1, i, IOMMU_TEST_IOTLB_DEFAULT));
		EXPECT_EQ(0, check_iotlb(self->fd, n2, i, 0x1234));
	}
	EXPECT_FAIL(EINVAL, check_iotlb(self->fd, n2, 0, IOMMU_TEST_IOTLB_DEFAULT));
	EXPECT_FAIL(EINVAL, check_iotlb(self->fd, n2, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1, 0x1234));
	/* The vIOMMU and the paging HWPTs are not nested HWPTs. */
	EXPECT_FAIL(ENOENT, check_iotlb(self->fd, self->viommu, 0, IOMMU_TEST_IOTLB_DEFAULT));
	EXPECT_FAIL(ENOENT, check_iotlb(self->fd, self->parent, 0, IOMMU_TEST_IOTLB_DEFAULT));

	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->parent));
	EXPECT_EQ(0, destroy(self->fd, n1));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	EXPECT_EQ(0, destroy(self->fd, n2));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	EXPECT_EQ(0, destroy(self->fd, self->parent));
}

/* A device attaches to a vIOMMU's nested HWPT only once it has a vDEVICE on that vIOMMU. */
TEST_F(viommu, nested_attach_needs_vdevice)
{
	__u32 nested, v2, nested2, vdev, out;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	EXPECT_FAIL(ENOENT, replace(self->fd, self->stdev, nested, NULL));
	/* Still on its old HWPT. */
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->auto_hwpt));
	EXPECT_EQ(0, destroy(self->fd, nested));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x99, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, &out));
	EXPECT_EQ(nested, out);
	EXPECT_FAIL(EBUSY, destroy(self->fd, nested));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));

	/* A vDEVICE on another vIOMMU of the same parent does not count. */
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  NULL, 0, &v2));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, v2, 0, &nested2));
	EXPECT_FAIL(ENOENT, replace(self->fd, self->stdev, nested2, NULL));
	EXPECT_FAIL(EBUSY, destroy(self->fd, nested));

	ASSERT_EQ(0, replace(self->fd, self->stdev, self->ioas, NULL));
	EXPECT_EQ(0, destroy(self->fd, nested));
	EXPECT_EQ(0, destroy(self->fd, nested2));
	EXPECT_EQ(0, destroy(self->fd, v2));
	EXPECT_EQ(0, destroy(self->fd, vdev));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/* Bad flags, data and ids for IOMMU_HWPT_ALLOC on a vIOMMU, with no ID left behind. */
TEST_F(viommu, nested_hwpt_bad_input)
{
	struct {
		struct iommu_hwpt_selftest d;
		__u32 tail;
	} data = { .d = { .iotlb = 1 } };
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = self->idev,
		.pt_id = self->viommu,
		.data_type = IOMMU_HWPT_DATA_SELFTEST,
		.data_len = sizeof(data.d),
		.data_uptr = (uintptr_t)&data,
		.__reserved = 1,
	};
	__u32 next = next_id(self->fd), v = self->viommu, d = self->idev;
	const __u32 st = IOMMU_HWPT_DATA_SELFTEST;

	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_HWPT_ALLOC, &cmd));
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, d, v, 1U << 30, st, &data, 8, NULL));
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, d, v, IOMMU_HWPT_ALLOC_NEST_PARENT, st, &data,
					   8, NULL));
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, d, v, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, st,
					   &data, 8, NULL));
	/* No data at all: the vIOMMU path wants some. */
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, d, v, 0, IOMMU_HWPT_DATA_NONE, NULL, 0, NULL));
	/* A type and a length come together. */
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, v, 0, st, &data, 0, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, v, 0, IOMMU_HWPT_DATA_NONE, &data, 8, NULL));
	/* A type the driver does not take. */
	EXPECT_FAIL(EOPNOTSUPP, hwpt_alloc(self->fd, d, v, 0, IOMMU_HWPT_DATA_VTD_S1, &data, 8,
					   NULL));
	/* Shorter than the first field, or longer than the driver's struct (even a zero tail). */
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, v, 0, st, &data, 2, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, v, 0, st, &data, sizeof(data), NULL));
	EXPECT_FAIL(EFAULT, hwpt_alloc(self->fd, d, v, 0, st, bad_uptr, 8, NULL));
	/* A wrong pt_id is EINVAL, whatever it is; a wrong dev_id ENOENT. */
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, 0, 0, st, &data, 8, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, self->stdev, 0, st, &data, 8, NULL));
	EXPECT_FAIL(EINVAL, hwpt_alloc(self->fd, d, self->idev, 0, st, &data, 8, NULL));
	EXPECT_FAIL(ENOENT, hwpt_alloc(self->fd, 0, v, 0, st, &data, 8, NULL));
	EXPECT_FAIL(ENOENT, hwpt_alloc(self->fd, self->stdev, v, 0, st, &data, 8, NULL));
	/* A fault queue that does not exist: found out after the HWPT was made. */
	cmd.__reserved = 0;
	cmd.flags = IOMMU_HWPT_FAULT_ID_VALID;
	cmd.fault_id = 0;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_HWPT_ALLOC, &cmd));
	cmd.fault_id = self->ioas;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_HWPT_ALLOC, &cmd));
	EXPECT_EQ(0, cmd.out_hwpt_id);
	EXPECT_EQ(next, next_id(self->fd));
	/* Nothing holds the vIOMMU. */
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/* ------------------------------------------------------------------ IOMMU_VEVENTQ_ALLOC */

/* veventq_depth is 1..1<<19. */
TEST_F(viommu, veventq_depth_bounds)
{
	__u32 id;
	int evfd;

	EXPECT_FAIL(EINVAL, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 0,
					  NULL, NULL));
	EXPECT_FAIL(EINVAL, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST,
					  VEVENTQ_MAX_DEPTH + 1, NULL, NULL));
	EXPECT_FAIL(EINVAL, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST,
					  UINT32_MAX, NULL, NULL));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST,
				   VEVENTQ_MAX_DEPTH, &id, &evfd));
	EXPECT_LE(0, evfd);
	close(evfd);
	EXPECT_EQ(0, destroy(self->fd, id));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 1, &id,
				   &evfd));
	close(evfd);
	EXPECT_EQ(0, destroy(self->fd, id));
}

/* Flags, __reserved and the DEFAULT type are EOPNOTSUPP, checked first; no ID or fd leaks. */
TEST_F(viommu, veventq_bad_input)
{
	struct iommu_veventq_alloc cmd = {
		.size = sizeof(cmd),
		.flags = 1,
		.viommu_id = self->viommu,
		.type = IOMMU_VEVENTQ_TYPE_SELFTEST,
		.veventq_depth = 0,
	};
	__u32 next = next_id(self->fd);
	int nfd = next_fd();

	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.flags = 0;
	cmd.__reserved = 1;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.__reserved = 0;
	cmd.type = IOMMU_VEVENTQ_TYPE_DEFAULT;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	/* The depth is checked before the vIOMMU is looked up. */
	cmd.type = IOMMU_VEVENTQ_TYPE_SELFTEST;
	cmd.viommu_id = 0;
	EXPECT_FAIL(EINVAL, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.veventq_depth = 2;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.viommu_id = self->parent;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.viommu_id = self->ioas;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.viommu_id = self->idev;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd));
	cmd.viommu_id = self->viommu;
	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd,
					offsetof(struct iommu_veventq_alloc, out_veventq_fd)));
	EXPECT_FAIL(E2BIG, ioctl_long(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd, sizeof(cmd), 1));
	EXPECT_EQ(next, next_id(self->fd));
	EXPECT_EQ(nfd, next_fd());

	/* __reserved may be left out. */
	ASSERT_EQ(0, ioctl_sized(self->fd, IOMMU_VEVENTQ_ALLOC, &cmd,
				 offsetofend(struct iommu_veventq_alloc, out_veventq_fd)));
	EXPECT_EQ(next, cmd.out_veventq_id);
	EXPECT_EQ(nfd, (int)cmd.out_veventq_fd);
	close(cmd.out_veventq_fd);
	EXPECT_EQ(0, destroy(self->fd, cmd.out_veventq_id));
}

/*
 * One queue per type per vIOMMU (any non-DEFAULT type: the core does not ask the driver); the fd
 * is O_RDWR and close-on-exec, and pins the queue, which pins the vIOMMU.
 */
TEST_F(viommu, veventq_one_per_type)
{
	__u32 q1, q2, q3, v2, next;
	int fd1, fd2, fd3;

	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 2, &q1,
				   &fd1));
	EXPECT_EQ(O_RDWR, fcntl(fd1, F_GETFL) & O_ACCMODE);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd1, F_GETFD) & FD_CLOEXEC);
	next = next_id(self->fd);
	EXPECT_FAIL(EEXIST, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 2,
					  NULL, NULL));
	EXPECT_EQ(next, next_id(self->fd));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 2, &q2,
				   &fd2));
	EXPECT_FAIL(EEXIST, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 2,
					  NULL, NULL));
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  NULL, 0, &v2));
	ASSERT_EQ(0, veventq_alloc(self->fd, v2, IOMMU_VEVENTQ_TYPE_SELFTEST, 2, &q3, &fd3));

	EXPECT_FAIL(EBUSY, destroy(self->fd, q1));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	close(fd1);
	EXPECT_EQ(0, destroy(self->fd, q1));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 2, &q1,
				   &fd1));
	close(fd1);
	EXPECT_EQ(0, destroy(self->fd, q1));
	close(fd2);
	EXPECT_EQ(0, destroy(self->fd, q2));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
	close(fd3);
	EXPECT_EQ(0, destroy(self->fd, q3));
	EXPECT_EQ(0, destroy(self->fd, v2));
}

/* An empty queue: read() needs room for a header and then answers 0; no seeking, no write(). */
TEST_F(viommu, veventq_read_rules_empty)
{
	char buf[64];
	__u32 q;
	int evfd;

	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 4, &q,
				   &evfd));
	EXPECT_FAIL(EINVAL, read(evfd, buf, 0));
	EXPECT_FAIL(EINVAL, read(evfd, buf, HDR_SZ - 1));
	EXPECT_EQ(0, read(evfd, buf, HDR_SZ));
	EXPECT_EQ(0, read(evfd, buf, sizeof(buf)));
	EXPECT_EQ(0, readable(evfd));
	EXPECT_FAIL(ESPIPE, pread(evfd, buf, sizeof(buf), 8));
	memset(buf, 0, sizeof(buf));
	EXPECT_FAIL(EINVAL, write(evfd, buf, HDR_SZ));
	close(evfd);
	EXPECT_EQ(0, destroy(self->fd, q));
}

/* The mock reports a vEVENT only for an attached device with a non-zero virt_id, to a queue. */
TEST_F(viommu, trigger_vevent_prerequisites)
{
	__u32 nested, vdev, q, qarm;
	struct sevent ev;
	int evfd, armfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->idev));
	EXPECT_FAIL(ENOENT, trigger(self->fd, 0));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->stdev));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->viommu));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x99, &vdev));
	/* A vDEVICE but not attached to the vIOMMU's nested HWPT. */
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->idev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));
	/* No queue of the selftest type. */
	EXPECT_FAIL(EOPNOTSUPP, trigger(self->fd, self->idev));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 4, &qarm,
				   &armfd));
	EXPECT_FAIL(EOPNOTSUPP, trigger(self->fd, self->idev));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 4, &q,
				   &evfd));
	EXPECT_EQ(0, readable(evfd));
	EXPECT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_EQ(1, readable(evfd));
	EXPECT_EQ(0, readable(armfd));
	EXPECT_EQ(EV_SZ, read(evfd, &ev, sizeof(ev)));
	EXPECT_EQ(0, ev.hdr.flags);
	EXPECT_EQ(0, ev.hdr.sequence);
	EXPECT_EQ(0x99, ev.ev.virt_id);
	EXPECT_EQ(0, read(armfd, &ev, sizeof(ev)));
	/* Back on the paging HWPT, the device is no longer behind the vIOMMU. */
	ASSERT_EQ(0, replace(self->fd, self->stdev, self->ioas, NULL));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->idev));
	EXPECT_EQ(0, read(evfd, &ev, sizeof(ev)));
	close(armfd);
	close(evfd);
}

/* The mock takes virt_id 0 for "no vDEVICE": such a device reports nothing. */
TEST_F(viommu, trigger_vevent_virt_id_zero)
{
	__u32 nested, vdev, q;
	int evfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 4, &q,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));
	EXPECT_FAIL(ENOENT, trigger(self->fd, self->idev));
	EXPECT_EQ(0, readable(evfd));
	close(evfd);
}

/* Events come in order with consecutive sequence numbers; read() returns only whole events. */
TEST_F(viommu, vevent_read_and_sequence)
{
	__u32 nested, vdev, q;
	struct sevent ev[4];
	int evfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 8, &q,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x31, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_EQ(1, readable(evfd));

	/* A header fits but not its payload: EINVAL, nothing consumed. */
	EXPECT_FAIL(EINVAL, read(evfd, ev, HDR_SZ));
	EXPECT_FAIL(EINVAL, read(evfd, ev, EV_SZ - 1));
	EXPECT_FAIL(EINVAL, read(evfd, ev, 0));
	/* A bad buffer: EFAULT, and the event stays first. */
	EXPECT_FAIL(EFAULT, read(evfd, bad_uptr, EV_SZ));
	/* Room for one and a half: one. */
	memset(ev, 0xff, sizeof(ev));
	EXPECT_EQ(EV_SZ, read(evfd, ev, EV_SZ + EV_SZ / 2));
	EXPECT_EQ(0, ev[0].hdr.flags);
	EXPECT_EQ(0, ev[0].hdr.sequence);
	EXPECT_EQ(0x31, ev[0].ev.virt_id);
	EXPECT_EQ(0xffffffff, ev[1].hdr.flags);
	/* The rest in one go. */
	EXPECT_EQ(2 * EV_SZ, read(evfd, ev, sizeof(ev)));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(0, ev[i].hdr.flags);
		EXPECT_EQ(i + 1, ev[i].hdr.sequence);
		EXPECT_EQ(0x31, ev[i].ev.virt_id);
	}
	EXPECT_EQ(0, readable(evfd));
	EXPECT_EQ(0, read(evfd, ev, sizeof(ev)));
	ASSERT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(3, ev[0].hdr.sequence);

	/* A new queue counts from 0 again; the old one's pending events went with it. */
	ASSERT_EQ(0, trigger(self->fd, self->idev));
	close(evfd);
	EXPECT_EQ(0, destroy(self->fd, q));
	EXPECT_FAIL(EOPNOTSUPP, trigger(self->fd, self->idev));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 8, &q,
				   &evfd));
	EXPECT_EQ(0, read(evfd, ev, sizeof(ev)));
	ASSERT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0, ev[0].hdr.sequence);
	close(evfd);
}

/*
 * A full queue drops events but not their sequence numbers: one LOST_EVENTS header (no payload)
 * at the tail carries the last dropped number.
 */
TEST_F(viommu, vevent_overflow_lost_header)
{
	__u32 nested, vdev, q;
	struct sevent ev[4];
	char raw[64];
	int evfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 2, &q,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x88, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));

	/* Three into two: 0, 1, lost 2. */
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(2 * EV_SZ + HDR_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0, ev[0].hdr.flags);
	EXPECT_EQ(0, ev[0].hdr.sequence);
	EXPECT_EQ(0x88, ev[0].ev.virt_id);
	EXPECT_EQ(0, ev[1].hdr.flags);
	EXPECT_EQ(1, ev[1].hdr.sequence);
	EXPECT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, ev[2].hdr.flags);
	EXPECT_EQ(2, ev[2].hdr.sequence);
	EXPECT_EQ(0, read(evfd, ev, sizeof(ev)));

	/* Five into two: 3, 4, and one header for the lost 5..7 saying 7. */
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(2 * EV_SZ + HDR_SZ, read(evfd, raw, sizeof(raw)));
	memcpy(ev, raw, 2 * EV_SZ + HDR_SZ);
	EXPECT_EQ(3, ev[0].hdr.sequence);
	EXPECT_EQ(4, ev[1].hdr.sequence);
	EXPECT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, ev[2].hdr.flags);
	EXPECT_EQ(7, ev[2].hdr.sequence);

	/* The next event after the overflow is a normal one and numbering goes on. */
	EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0, ev[0].hdr.flags);
	EXPECT_EQ(8, ev[0].hdr.sequence);
	close(evfd);
}

/*
 * The LOST_EVENTS header is read on its own with a header-sized buffer, and it disappears when a
 * normal event lands behind it (the sequence gap tells the loss).
 */
TEST_F(viommu, vevent_lost_header_reads_and_yields)
{
	struct iommufd_vevent_header hdr;
	__u32 nested, vdev, q;
	struct sevent ev[4];
	int evfd;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 1, &q,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x5, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));

	/* Depth 1: event 0, lost 1. An event and 4 more bytes: just the event. */
	EXPECT_EQ(0, trigger(self->fd, self->idev));
	EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(EV_SZ, read(evfd, ev, EV_SZ + HDR_SZ / 2));
	EXPECT_EQ(0, ev[0].hdr.sequence);
	EXPECT_EQ(1, readable(evfd));
	ASSERT_EQ(HDR_SZ, read(evfd, &hdr, HDR_SZ));
	EXPECT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, hdr.flags);
	EXPECT_EQ(1, hdr.sequence);
	EXPECT_EQ(0, readable(evfd));
	EXPECT_EQ(0, read(evfd, ev, sizeof(ev)));

	/* Event 2, lost 3 and 4; read 2; then event 5 replaces the header. */
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(EV_SZ, read(evfd, ev, EV_SZ));
	EXPECT_EQ(2, ev[0].hdr.sequence);
	EXPECT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0, ev[0].hdr.flags);
	EXPECT_EQ(5, ev[0].hdr.sequence);
	EXPECT_EQ(0x5, ev[0].ev.virt_id);
	close(evfd);
}

/* ------------------------------------------------------------------ IOMMU_HWPT_INVALIDATE */

/* Entries name a vDEVICE by virt_id and one of its cache entries, or all of them. */
TEST_F(viommu, invalidate_device_cache)
{
	struct iommu_viommu_invalidate_selftest req[2] = {};
	__u32 vdev, num;

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x99, &vdev));
	EXPECT_EQ(0xf, cache_state(self->fd, self->idev));

	/* An empty array checks just the type. */
	num = 0;
	EXPECT_EQ(0, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0, invalidate(self->fd, self->viommu, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
				NULL, 0, &num));
	EXPECT_FAIL(EINVAL, invalidate(self->fd, self->viommu,
				       IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, req,
				       sizeof(req[0]), &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EINVAL, invalidate(self->fd, self->viommu,
				       IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, req,
				       sizeof(req[0]), &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0xf, cache_state(self->fd, self->idev));

	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x99, .cache_id = 2 };
	num = 1;
	EXPECT_EQ(0, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0xb, cache_state(self->fd, self->idev));
	req[0].cache_id = 0;
	req[1] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x99, .cache_id = 3 };
	num = 2;
	EXPECT_EQ(0, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(2, num);
	EXPECT_EQ(0x2, cache_state(self->fd, self->idev));
	/* FLAG_ALL ignores cache_id, but an out-of-range one is still refused first. */
	req[0] = (struct iommu_viommu_invalidate_selftest){
		.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL, .vdev_id = 0x99,
		.cache_id = MOCK_DEV_CACHE_ID_MAX + 1 };
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0x2, cache_state(self->fd, self->idev));
	req[0].cache_id = 0;
	num = 1;
	EXPECT_EQ(0, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0, cache_state(self->fd, self->idev));
}

/* Entries run in order; the first bad one stops the batch and entry_num says how many ran. */
TEST_F(viommu, invalidate_partial_success)
{
	struct iommu_viommu_invalidate_selftest req[3] = {};
	__u32 stdev2, idev2, va, vb, num;

	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev2, NULL, &idev2));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x1, &va));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, idev2, 0x2, &vb));

	/* Unknown flags: EOPNOTSUPP after one. */
	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x1, .cache_id = 0 };
	req[1] = (struct iommu_viommu_invalidate_selftest){ .flags = 2, .vdev_id = 0x1,
							      .cache_id = 1 };
	num = 2;
	EXPECT_FAIL(EOPNOTSUPP, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0xe, cache_state(self->fd, self->idev));
	EXPECT_EQ(0xf, cache_state(self->fd, idev2));

	/* A cache_id out of range: EINVAL after one. */
	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x2, .cache_id = 1 };
	req[1] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x2, .cache_id = 4 };
	num = 2;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0xd, cache_state(self->fd, idev2));

	/* An unknown virt_id is EINVAL too, after two. */
	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x1, .cache_id = 3 };
	req[1] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x2, .cache_id = 3 };
	req[2] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x3, .cache_id = 2 };
	num = 3;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(2, num);
	EXPECT_EQ(0x6, cache_state(self->fd, self->idev));
	EXPECT_EQ(0x5, cache_state(self->fd, idev2));

	/* A bad first entry: none ran. */
	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x4, .cache_id = 1 };
	req[1] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x1, .cache_id = 1 };
	num = 2;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0x6, cache_state(self->fd, self->idev));

	/* A vDEVICE gone is an unknown virt_id; the others still work. */
	EXPECT_EQ(0, destroy(self->fd, va));
	req[0] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x2, .cache_id = 0 };
	req[1] = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x1, .cache_id = 1 };
	num = 2;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->viommu, req, &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0x4, cache_state(self->fd, idev2));
	EXPECT_EQ(0x6, cache_state(self->fd, self->idev));
	EXPECT_EQ(0, destroy(self->fd, vb));
}

/*
 * entry_len: shorter entries are zero-extended, longer ones need a zero tail (else E2BIG before
 * any entry runs); the array must be addressable.
 */
TEST_F(viommu, invalidate_entry_len)
{
	struct {
		struct iommu_viommu_invalidate_selftest r;
		__u32 tail;
	} wide[2] = {};
	struct iommu_viommu_invalidate_selftest req = { .vdev_id = 0x9, .cache_id = 3 };
	const __u32 t = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
	__u32 vdev, num;

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x9, &vdev));

	wide[0].r = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x9, .cache_id = 1 };
	wide[1].r = (struct iommu_viommu_invalidate_selftest){ .vdev_id = 0x9, .cache_id = 2 };
	wide[1].tail = 1;
	num = 2;
	EXPECT_FAIL(E2BIG, invalidate(self->fd, self->viommu, t, wide, sizeof(wide[0]), &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0xf, cache_state(self->fd, self->idev));
	wide[1].tail = 0;
	num = 2;
	EXPECT_EQ(0, invalidate(self->fd, self->viommu, t, wide, sizeof(wide[0]), &num));
	EXPECT_EQ(2, num);
	EXPECT_EQ(0x9, cache_state(self->fd, self->idev));

	/* Eight bytes: cache_id reads as 0. */
	num = 1;
	EXPECT_EQ(0, invalidate(self->fd, self->viommu, t, &req,
				offsetofend(struct iommu_viommu_invalidate_selftest, vdev_id), &num));
	EXPECT_EQ(1, num);
	EXPECT_EQ(0x8, cache_state(self->fd, self->idev));

	num = 1;
	EXPECT_FAIL(EINVAL, invalidate(self->fd, self->viommu, t, &req, 0, &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EINVAL, invalidate(self->fd, self->viommu, t, NULL, sizeof(req), &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EINVAL, invalidate(self->fd, self->viommu, t, self->buf, PAGE + 1, &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EFAULT, invalidate(self->fd, self->viommu, t, bad_uptr, sizeof(req), &num));
	EXPECT_EQ(0, num);
	EXPECT_EQ(0x8, cache_state(self->fd, self->idev));
	num = 1;
	EXPECT_EQ(0, inv_selftest(self->fd, self->viommu, &req, &num));
	EXPECT_EQ(0, cache_state(self->fd, self->idev));
}

/* hwpt_id must name a vIOMMU (or a nested HWPT): a missing ID is ENOENT, another kind EINVAL. */
TEST_F(viommu, invalidate_wrong_ids_and_size)
{
	struct iommu_viommu_invalidate_selftest req = { .vdev_id = 0x9, .cache_id = 0 };
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = self->viommu,
		.data_uptr = (uintptr_t)&req,
		.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
		.entry_len = sizeof(req),
		.entry_num = 1,
		.__reserved = 1,
	};
	__u32 vdev, num;

	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x9, &vdev));
	num = 1;
	EXPECT_FAIL(ENOENT, inv_selftest(self->fd, 0, &req, &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->ioas, &req, &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->parent, &req, &num));
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->auto_hwpt, &req, &num));
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, self->idev, &req, &num));
	num = 1;
	EXPECT_FAIL(EINVAL, inv_selftest(self->fd, vdev, &req, &num));
	EXPECT_EQ(0xf, cache_state(self->fd, self->idev));

	/* __reserved: EOPNOTSUPP, and entry_num is still written back as 0. */
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_HWPT_INVALIDATE, &cmd));
	EXPECT_EQ(0, cmd.entry_num);
	cmd.__reserved = 0;
	cmd.entry_num = 1;
	/* A refused size touches nothing, entry_num included. */
	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_HWPT_INVALIDATE, &cmd,
					offsetof(struct iommu_hwpt_invalidate, __reserved)));
	EXPECT_EQ(1, cmd.entry_num);
	EXPECT_FAIL(E2BIG, ioctl_long(self->fd, IOMMU_HWPT_INVALIDATE, &cmd, sizeof(cmd), 1));
	EXPECT_EQ(1, cmd.entry_num);
	EXPECT_EQ(0xf, cache_state(self->fd, self->idev));
	EXPECT_EQ(0, ioctl_long(self->fd, IOMMU_HWPT_INVALIDATE, &cmd, sizeof(cmd), 0));
	EXPECT_EQ(1, cmd.entry_num);
	EXPECT_EQ(0xe, cache_state(self->fd, self->idev));
}

/* ------------------------------------------------------------------ IOMMU_HW_QUEUE_ALLOC */

/*
 * Queues start at index 0 and each next index needs the previous one, which it then pins; the
 * queue's IOVA is pinned against IOAS_UNMAP; the vIOMMU goes last.
 */
TEST_F(viommu, hw_queue_alloc_and_order)
{
	__u32 q0, q1;
	const __u32 t = IOMMU_HW_QUEUE_TYPE_SELFTEST;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, (char *)self->buf + PAGE, PAGE, AP + PAGE));

	EXPECT_FAIL(EIO, hw_queue_alloc(self->fd, self->viommu, t, 1, AP, PAGE, NULL));
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, t, 0, AP, PAGE, &q0));
	EXPECT_NE(0, q0);
	EXPECT_FAIL(EEXIST, hw_queue_alloc(self->fd, self->viommu, t, 0, AP + PAGE, PAGE, NULL));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, AP + PAGE, PAGE, NULL));

	/* Index 1 on a sub-page range of the same page. */
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, t, 1, AP + PAGE / 2, PAGE / 2, &q1));
	EXPECT_FAIL(EINVAL, hw_queue_alloc(self->fd, self->viommu, t, IOMMU_TEST_HW_QUEUE_MAX, AP,
					   PAGE, NULL));
	EXPECT_FAIL(EBUSY, destroy(self->fd, q0));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->parent));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, PAGE, NULL));

	EXPECT_EQ(0, destroy(self->fd, q1));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_FAIL(EBUSY, destroy(self->fd, self->viommu));
	EXPECT_EQ(0, destroy(self->fd, q0));
	EXPECT_FAIL(ENOENT, destroy(self->fd, q0));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/*
 * The queue's pin lives exactly as long as the queue: unmap is refused while it does, and its ID and
 * whatever else it took come back with it.
 */
TEST_F(viommu, hw_queue_pin_goes_with_queue)
{
	__u32 q0, next;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	next = next_id(self->fd);
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, AP,
				    PAGE, &q0));
	EXPECT_EQ(next, q0);
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_EQ(0, destroy(self->fd, q0));
	EXPECT_EQ(next, next_id(self->fd));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, AP, PAGE, NULL));
}

/*
 * IOAS_UNMAP meets a locked area (a HW queue's pin) that the range also cuts: EBUSY, as upstream
 * checks the lock before the cut (iopt_unmap_iova_range()); areas before it in the range are
 * already gone, as with any error there.
 */
TEST_F(viommu, hw_queue_unmap_locked_before_cut)
{
	__u32 q0;

	/* One 2-page area, its first page pinned by the queue. */
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, 2 * PAGE, AP));
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, AP,
				    PAGE, &q0));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP + PAGE, PAGE, NULL));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, 2 * PAGE, NULL));
	EXPECT_EQ(0, destroy(self->fd, q0));
	/* Unlocked, the cut is what is wrong. */
	EXPECT_FAIL(ENOENT, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, 2 * PAGE, NULL));

	/* A free area, then a locked 2-page one the range cuts: the first goes, then EBUSY. */
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, (char *)self->buf + PAGE, 2 * PAGE,
			       AP + PAGE));
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0,
				    AP + PAGE, PAGE, &q0));
	EXPECT_FAIL(EBUSY, unmap(self->fd, self->ioas, AP, 2 * PAGE, NULL));
	/* The first area was unmapped: its IOVA is free again. */
	EXPECT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	EXPECT_EQ(0, destroy(self->fd, q0));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
}

/* Bad input: flags/type/length/overflow before the vIOMMU lookup; no ID or pin left behind. */
TEST_F(viommu, hw_queue_bad_input)
{
	struct iommu_hw_queue_alloc cmd = {
		.size = sizeof(cmd),
		.flags = 1,
		.viommu_id = 0,
		.type = IOMMU_HW_QUEUE_TYPE_SELFTEST,
		.nesting_parent_iova = AP,
		.length = 0,
	};
	const __u32 t = IOMMU_HW_QUEUE_TYPE_SELFTEST;
	__u32 v = self->viommu, next, q;

	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	next = next_id(self->fd);

	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	cmd.flags = 0;
	cmd.type = IOMMU_HW_QUEUE_TYPE_DEFAULT;
	EXPECT_FAIL(EOPNOTSUPP, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	cmd.type = t;
	EXPECT_FAIL(EINVAL, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	cmd.length = PAGE;
	cmd.nesting_parent_iova = UINT64_MAX;
	EXPECT_FAIL(EOVERFLOW, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	cmd.nesting_parent_iova = UINT64_MAX - PAGE + 2;
	EXPECT_FAIL(EOVERFLOW, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	cmd.nesting_parent_iova = AP;
	EXPECT_FAIL(ENOENT, ioctl(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd));
	EXPECT_FAIL(ENOENT, hw_queue_alloc(self->fd, self->parent, t, 0, AP, PAGE, NULL));
	EXPECT_FAIL(ENOENT, hw_queue_alloc(self->fd, self->ioas, t, 0, AP, PAGE, NULL));
	/* A type the driver does not know: refused before anything is pinned. */
	EXPECT_FAIL(EOPNOTSUPP, hw_queue_alloc(self->fd, v, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, 0,
					       AP + 16 * PAGE, PAGE, NULL));
	EXPECT_FAIL(EOPNOTSUPP, hw_queue_alloc(self->fd, v, t + 1, 0, AP, PAGE, NULL));
	/* IOVA not mapped. */
	EXPECT_FAIL(ENOENT, hw_queue_alloc(self->fd, v, t, 0, AP + 16 * PAGE, PAGE, NULL));
	EXPECT_FAIL(ENOENT, hw_queue_alloc(self->fd, v, t, 0, AP, 2 * PAGE, NULL));
	/* Index rules, checked by the driver after the pin. */
	EXPECT_FAIL(EIO, hw_queue_alloc(self->fd, v, t, 1, AP, PAGE, NULL));
	EXPECT_FAIL(EINVAL, hw_queue_alloc(self->fd, v, t, IOMMU_TEST_HW_QUEUE_MAX, AP, PAGE,
					   NULL));
	EXPECT_FAIL(EINVAL, hw_queue_alloc(self->fd, v, t, UINT32_MAX, AP, PAGE, NULL));
	/* The whole struct is mandatory. */
	cmd.viommu_id = v;
	EXPECT_FAIL(EINVAL, ioctl_sized(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd,
					offsetof(struct iommu_hw_queue_alloc, length)));
	EXPECT_FAIL(E2BIG, ioctl_long(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd, sizeof(cmd), 1));
	EXPECT_EQ(0, cmd.out_hw_queue_id);

	EXPECT_EQ(next, next_id(self->fd));
	EXPECT_EQ(0, unmap(self->fd, self->ioas, AP, PAGE, NULL));
	EXPECT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	ASSERT_EQ(0, ioctl_long(self->fd, IOMMU_HW_QUEUE_ALLOC, &cmd, sizeof(cmd), 0));
	q = cmd.out_hw_queue_id;
	EXPECT_EQ(next, q);
	EXPECT_EQ(0, destroy(self->fd, q));
	EXPECT_EQ(0, destroy(self->fd, self->viommu));
}

/* ------------------------------------------------------------------ teardown */

/*
 * Closing /dev/iommu with the whole graph alive is fine; an open vEVENTQ fd keeps its queue
 * readable, and a new /dev/iommu starts from ID 1.
 */
TEST_F(viommu, close_with_everything_alive)
{
	struct iommu_viommu_selftest data = { .in_data = 3 };
	__u32 nested, vdev, q, hwq, v2, id;
	struct sevent ev[2];
	int evfd;

	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev, self->parent, IOMMU_VIOMMU_TYPE_SELFTEST,
				  &data, sizeof(data), &v2));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev, self->viommu, 0, &nested));
	ASSERT_EQ(0, veventq_alloc(self->fd, self->viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 4, &q,
				   &evfd));
	ASSERT_EQ(0, vdev_alloc(self->fd, self->viommu, self->idev, 0x66, &vdev));
	ASSERT_EQ(0, replace(self->fd, self->stdev, nested, NULL));
	ASSERT_EQ(0, trigger(self->fd, self->idev));
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, PAGE, AP));
	ASSERT_EQ(0, hw_queue_alloc(self->fd, self->viommu, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, AP,
				    PAGE, &hwq));

	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(EV_SZ, read(evfd, ev, sizeof(ev)));
	EXPECT_EQ(0x66, ev[0].ev.virt_id);
	EXPECT_EQ(0, close(evfd));

	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	EXPECT_EQ(1, id);
}

TEST_HARNESS_MAIN
