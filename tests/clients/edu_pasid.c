// SPDX-License-Identifier: GPL-2.0
/*
 * PASID attachments through VFIO's device cdev (VFIO_DEVICE_ATTACH_IOMMUFD_PT with
 * VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_DETACH_IOMMUFD_PT likewise) on edu: attach, replace and
 * detach at a PASID, and the rules of the [RID] and [RID, PASID] slots as upstream's iommufd
 * keeps them: one HWPT per slot for the whole group, PASID slots only with HWPTs allocated with
 * IOMMU_HWPT_ALLOC_PASID (and then a RID HWPT allocated so too), no PASID attach straight to an
 * IOAS, a HWPT held while any slot uses it.
 *
 * QEMU 10.0 emulates no PCI device with a PASID capability, so the IOMMU never sees a
 * transaction with a PASID: this exercises iommufd's bookkeeping, VFIO's and the IOMMU core's
 * (VT-d in scalable mode programs the PASID table entry), not DMA tagged with a PASID.
 *
 * Usage: edu_pasid /dev/vfio/devices/vfioN [cdevA cdevB]   (A and B: two devices of one group)
 * Runs against whichever iommufd module is loaded; prints TAP.
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
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#define LEN 4096UL
/* The RID, as this test names it (the kernel's RID is not uAPI). */
#define RID 0U

static const char *cdev_path, *group_a, *group_b;

struct dev {
	int fd;
	uint32_t id;
};

static int bind_dev(int iommufd, const char *path, struct dev *d)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };

	d->fd = open(path, O_RDWR);
	if (d->fd < 0)
		return -1;
	if (ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -1;
	d->id = bind.out_devid;
	return 0;
}

/* VFIO_DEVICE_ATTACH_IOMMUFD_PT at @pasid (RID: the RID); 0 or -errno. */
static int attach(struct dev *d, uint32_t pasid, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a),
		.pt_id = pt_id,
		.flags = pasid == RID ? 0 : VFIO_DEVICE_ATTACH_PASID,
		.pasid = pasid,
	};

	if (ioctl(d->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a))
		return -errno;
	/* Attaching to a HWPT answers that HWPT. */
	return a.pt_id == pt_id ? 0 : -EPROTO;
}

static int detach(struct dev *d, uint32_t pasid)
{
	struct vfio_device_detach_iommufd_pt a = {
		.argsz = sizeof(a),
		.flags = pasid == RID ? 0 : VFIO_DEVICE_DETACH_PASID,
		.pasid = pasid,
	};

	return ioctl(d->fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &a) ? -errno : 0;
}

static int destroy(int iommufd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &d) ? -errno : 0;
}

static int try_hwpt_alloc(int iommufd, uint32_t dev_id, uint32_t ioas, uint32_t flags,
			  uint32_t *id)
{
	struct iommu_hwpt_alloc h = {
		.size = sizeof(h), .flags = flags, .dev_id = dev_id, .pt_id = ioas,
	};

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &h))
		return -errno;
	*id = h.out_hwpt_id;
	return 0;
}

static uint32_t hwpt_alloc(struct __test_metadata *_metadata, int iommufd, uint32_t dev_id,
			   uint32_t ioas, uint32_t flags)
{
	uint32_t id = 0;

	ASSERT_EQ(0, try_hwpt_alloc(iommufd, dev_id, ioas, flags, &id))
		TH_LOG("IOMMU_HWPT_ALLOC: %s", strerror(errno));
	return id;
}

/*
 * Whether this platform takes PASID attachments at all: 0, or the errno of the first step that
 * failed (a PASID HWPT's allocation, or the attach). VT-d in scalable mode does; an IOMMU without
 * PASID support (virtio-iommu, this QEMU's SMMUv3 with SSIDSIZE=0) does not, and then the tests
 * skip, naming the answer, which the report shows for both modules.
 */
static int pasid_unsupported(int iommufd, struct dev *d, uint32_t ioas, const char **step)
{
	uint32_t id = 0;
	int rc;

	*step = "IOMMU_HWPT_ALLOC(IOMMU_HWPT_ALLOC_PASID)";
	rc = try_hwpt_alloc(iommufd, d->id, ioas, IOMMU_HWPT_ALLOC_PASID, &id);
	if (rc)
		return rc;
	*step = "VFIO_DEVICE_ATTACH_IOMMUFD_PT(VFIO_DEVICE_ATTACH_PASID)";
	rc = attach(d, 1, id);
	if (!rc)
		detach(d, 1);
	destroy(iommufd, id);
	return rc;
}

FIXTURE(pasid)
{
	int iommufd;
	uint32_t ioas;
	struct dev d;
	/* allocated with IOMMU_HWPT_ALLOC_PASID: rid for the RID, p1 and p2 for PASIDs */
	uint32_t rid, p1, p2;
	/* allocated without */
	uint32_t plain;
	void *buf;
};

FIXTURE_SETUP(pasid)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = LEN,
		.iova = 0x100000,
	};
	const char *step;
	int rc;

	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	ASSERT_EQ(0, bind_dev(self->iommufd, cdev_path, &self->d))
		TH_LOG("bind %s: %s", cdev_path, strerror(errno));
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOC, &alloc));
	self->ioas = alloc.out_ioas_id;
	self->buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	map.ioas_id = self->ioas;
	map.user_va = (uintptr_t)self->buf;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_MAP, &map));
	rc = pasid_unsupported(self->iommufd, &self->d, self->ioas, &step);
	if (rc)
		SKIP(return, "%s answers %s on this IOMMU", step, strerror(-rc));
	self->rid = hwpt_alloc(_metadata, self->iommufd, self->d.id, self->ioas, IOMMU_HWPT_ALLOC_PASID);
	self->p1 = hwpt_alloc(_metadata, self->iommufd, self->d.id, self->ioas, IOMMU_HWPT_ALLOC_PASID);
	self->p2 = hwpt_alloc(_metadata, self->iommufd, self->d.id, self->ioas, IOMMU_HWPT_ALLOC_PASID);
	self->plain = hwpt_alloc(_metadata, self->iommufd, self->d.id, self->ioas, 0);
}

FIXTURE_TEARDOWN(pasid)
{
	if (self->d.fd >= 0)
		close(self->d.fd);
	close(self->iommufd);
}

/* Attach at a PASID, replace there (a second attach), detach; the HWPTs are held meanwhile. */
TEST_F(pasid, attach_replace_detach)
{
	ASSERT_EQ(0, attach(&self->d, RID, self->rid));
	ASSERT_EQ(0, attach(&self->d, 1, self->p1));
	ASSERT_EQ(-EBUSY, destroy(self->iommufd, self->p1));
	/* A second attach at the same PASID replaces its HWPT (VFIO turns it into a replace). */
	ASSERT_EQ(0, attach(&self->d, 1, self->p2));
	ASSERT_EQ(0, destroy(self->iommufd, self->p1));
	ASSERT_EQ(-EBUSY, destroy(self->iommufd, self->p2));
	/* Replacing with the HWPT already there changes nothing. */
	ASSERT_EQ(0, attach(&self->d, 1, self->p2));
	/* Another PASID of the same device is a slot of its own. */
	ASSERT_EQ(0, attach(&self->d, 2, self->p2));
	ASSERT_EQ(0, detach(&self->d, 1));
	ASSERT_EQ(-EBUSY, destroy(self->iommufd, self->p2));
	ASSERT_EQ(0, detach(&self->d, 2));
	ASSERT_EQ(0, destroy(self->iommufd, self->p2));
	/* The RID stays attached through all of it. */
	ASSERT_EQ(-EBUSY, destroy(self->iommufd, self->rid));
	ASSERT_EQ(0, detach(&self->d, RID));
	ASSERT_EQ(0, destroy(self->iommufd, self->rid));
}

/* A PASID attachment needs a HWPT allocated for PASID use, and not an IOAS. */
TEST_F(pasid, slot_needs_pasid_hwpt)
{
	ASSERT_EQ(0, attach(&self->d, RID, self->rid));
	ASSERT_EQ(-EINVAL, attach(&self->d, 1, self->plain));
	ASSERT_EQ(-EINVAL, attach(&self->d, 1, self->ioas));
	ASSERT_EQ(0, attach(&self->d, 1, self->p1));
	ASSERT_EQ(0, detach(&self->d, 1));
	ASSERT_EQ(0, detach(&self->d, RID));
}

/*
 * With a PASID slot in use the RID's HWPT must be PASID-capable too: a RID attach or replace to
 * one that is not is refused, and the PASID attachment stays.
 */
TEST_F(pasid, rid_next_to_pasid_needs_pasid_hwpt)
{
	ASSERT_EQ(0, attach(&self->d, 1, self->p1));
	ASSERT_EQ(-EINVAL, attach(&self->d, RID, self->plain));
	ASSERT_EQ(0, attach(&self->d, RID, self->rid));
	ASSERT_EQ(-EINVAL, attach(&self->d, RID, self->plain));
	ASSERT_EQ(-EBUSY, destroy(self->iommufd, self->p1));
	ASSERT_EQ(0, detach(&self->d, 1));
	/* Alone again, the RID may take any HWPT. */
	ASSERT_EQ(0, attach(&self->d, RID, self->plain));
	ASSERT_EQ(0, detach(&self->d, RID));
}

/* A detach of a PASID that is not attached changes nothing (VFIO ignores it). */
TEST_F(pasid, detach_unattached)
{
	ASSERT_EQ(0, detach(&self->d, 5));
	ASSERT_EQ(0, attach(&self->d, 5, self->p1));
	ASSERT_EQ(0, detach(&self->d, 5));
	ASSERT_EQ(0, detach(&self->d, 5));
	ASSERT_EQ(0, destroy(self->iommufd, self->p1));
}

/*
 * One HWPT per slot for the whole group: two devices of one IOMMU group share each slot's
 * attachment, so the second may join the first's HWPT at that PASID but not bring another.
 */
TEST(group_shares_pasid_slot)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct dev a = { -1 }, b = { -1 };
	const char *step;
	uint32_t ha, hb;
	int iommufd, rc;

	if (!group_a)
		SKIP(return, "no two devices of one IOMMU group given");
	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	ASSERT_EQ(0, bind_dev(iommufd, group_a, &a));
	ASSERT_EQ(0, bind_dev(iommufd, group_b, &b));
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc));
	rc = pasid_unsupported(iommufd, &a, alloc.out_ioas_id, &step);
	if (rc)
		SKIP(return, "%s answers %s on this IOMMU", step, strerror(-rc));
	ha = hwpt_alloc(_metadata, iommufd, a.id, alloc.out_ioas_id, IOMMU_HWPT_ALLOC_PASID);
	hb = hwpt_alloc(_metadata, iommufd, b.id, alloc.out_ioas_id, IOMMU_HWPT_ALLOC_PASID);
	ASSERT_EQ(0, attach(&a, 3, ha));
	ASSERT_EQ(-EINVAL, attach(&b, 3, hb));
	ASSERT_EQ(0, attach(&b, 3, ha));
	ASSERT_EQ(0, detach(&a, 3));
	ASSERT_EQ(-EBUSY, destroy(iommufd, ha));
	ASSERT_EQ(0, detach(&b, 3));
	ASSERT_EQ(0, destroy(iommufd, ha));
	close(a.fd);
	close(b.fd);
	close(iommufd);
}

/*
 * On every platform, PASID support or not (the only PASID test a virtio-iommu or this QEMU's
 * SMMUv3 runs): a PASID attachment to a HWPT allocated without IOMMU_HWPT_ALLOC_PASID, or straight
 * to an IOAS, is EINVAL and changes nothing: the RID then attaches as before.
 */
TEST(pasid_attach_needs_pasid_hwpt)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct dev d = { -1 };
	uint32_t plain;
	int iommufd;

	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	ASSERT_EQ(0, bind_dev(iommufd, cdev_path, &d)) TH_LOG("bind %s: %s", cdev_path, strerror(errno));
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc));
	plain = hwpt_alloc(_metadata, iommufd, d.id, alloc.out_ioas_id, 0);
	ASSERT_EQ(-EINVAL, attach(&d, 1, plain));
	ASSERT_EQ(-EINVAL, attach(&d, 1, alloc.out_ioas_id));
	/* Nothing held the HWPT. */
	ASSERT_EQ(0, destroy(iommufd, plain));
	plain = hwpt_alloc(_metadata, iommufd, d.id, alloc.out_ioas_id, 0);
	ASSERT_EQ(0, attach(&d, RID, plain));
	ASSERT_EQ(-EBUSY, destroy(iommufd, plain));
	ASSERT_EQ(0, detach(&d, RID));
	ASSERT_EQ(0, destroy(iommufd, plain));
	close(d.fd);
	close(iommufd);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s /dev/vfio/devices/vfioN [cdevA cdevB]\n", argv[0]);
		return 2;
	}
	cdev_path = argv[1];
	if (argc >= 4) {
		group_a = argv[2];
		group_b = argv[3];
	}
	return test_harness_run(1, argv);
}
