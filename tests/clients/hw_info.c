// SPDX-License-Identifier: GPL-2.0
/*
 * What the real IOMMU driver behind edu tells through iommufd, and what it can allocate: the
 * VT-d driver, the SMMUv3 driver (tools/vm/run-arm64.sh) or virtio-iommu's (GET_HW_INFO type
 * NONE, no NEST_PARENT), with the answers of the QEMU 10.0 models measured on these machines:
 *
 * - hw_info_names_the_driver: IOMMU_GET_HW_INFO answers the driver's type with its registers
 *   (VT-d: CAP and ECAP; SMMUv3: IDR0-5, IIDR, AIDR, as the driver read them), and an input type
 *   naming another driver is refused (EOPNOTSUPP).
 * - nest_parent: a NEST_PARENT paging HWPT allocates on SMMUv3 (QEMU's has both stages) and is
 *   refused on VT-d (QEMU's never sets ECAP.NEST: EOPNOTSUPP).
 * - viommu_arm_smmuv3: IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) on that parent answers EOPNOTSUPP on this
 *   QEMU: its SMMUv3 has no IDR3.FWB and its IORT no CANWBS, which the 7.2 driver requires.
 *
 * Usage: hw_info /dev/vfio/devices/vfioN. Prints TAP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "edu.h"

static const char *cdev_path;

FIXTURE(dev)
{
	int iommufd;
	int devfd;
	uint32_t dev_id;
	uint32_t ioas;
};

FIXTURE_SETUP(dev)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };

	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	self->devfd = open(cdev_path, O_RDWR);
	ASSERT_LE(0, self->devfd);
	bind.iommufd = self->iommufd;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	self->dev_id = bind.out_devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOC, &alloc));
	self->ioas = alloc.out_ioas_id;
}

FIXTURE_TEARDOWN(dev)
{
	close(self->devfd);
	close(self->iommufd);
}

TEST_F(dev, hw_info_names_the_driver)
{
	union {
		struct iommu_hw_info_vtd vtd;
		struct iommu_hw_info_arm_smmuv3 smmu;
		uint8_t bytes[256];
	} data;
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = self->dev_id,
		.data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data,
	};
	uint32_t other;

	memset(&data, 0xa5, sizeof(data));
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_GET_HW_INFO, &info));
	if (iommu_kind(cdev_path) == OTHER) {
		/* A driver with no hw_info (virtio-iommu): type NONE, no data. */
		ASSERT_EQ(IOMMU_HW_INFO_TYPE_NONE, info.out_data_type);
		ASSERT_EQ(0, info.data_len);
		return;
	}
	if (iommu_kind(cdev_path) == SMMUV3) {
		ASSERT_EQ(IOMMU_HW_INFO_TYPE_ARM_SMMUV3, info.out_data_type);
		ASSERT_EQ(sizeof(data.smmu), info.data_len);
		/* IDR0 of an SMMUv3 with both stages: S1P (bit 1) and S2P (bit 0). */
		ASSERT_EQ(0x3, data.smmu.idr[0] & 0x3) TH_LOG("IDR0 %#x", data.smmu.idr[0]);
		ASSERT_NE(0, data.smmu.idr[1]);
		ASSERT_NE(0, data.smmu.idr[5]);
		other = IOMMU_HW_INFO_TYPE_INTEL_VTD;
		TH_LOG("SMMUv3: IDR0 %#x IDR1 %#x IDR3 %#x IDR5 %#x IIDR %#x AIDR %#x",
		       data.smmu.idr[0], data.smmu.idr[1], data.smmu.idr[3], data.smmu.idr[5],
		       data.smmu.iidr, data.smmu.aidr);
	} else {
		ASSERT_EQ(IOMMU_HW_INFO_TYPE_INTEL_VTD, info.out_data_type);
		ASSERT_EQ(sizeof(data.vtd), info.data_len);
		ASSERT_NE(0, data.vtd.cap_reg);
		ASSERT_NE(0, data.vtd.ecap_reg);
		other = IOMMU_HW_INFO_TYPE_ARM_SMMUV3;
		TH_LOG("VT-d: CAP %#llx ECAP %#llx", (unsigned long long)data.vtd.cap_reg,
		       (unsigned long long)data.vtd.ecap_reg);
	}
	/* Asking for another driver's type is refused. */
	info.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
	info.in_data_type = other;
	info.data_len = sizeof(data);
	ASSERT_EQ(-1, ioctl(self->iommufd, IOMMU_GET_HW_INFO, &info));
	ASSERT_EQ(EOPNOTSUPP, errno);
}

static int destroy(int iommufd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &d);
}

TEST_F(dev, nest_parent_and_viommu)
{
	struct iommu_hwpt_alloc h = {
		.size = sizeof(h),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
		.dev_id = self->dev_id,
		.pt_id = self->ioas,
	};
	struct iommu_viommu_alloc v = {
		.size = sizeof(v),
		.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
		.dev_id = self->dev_id,
	};
	int rc = ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &h);

	/* VT-d here has no ECAP.NEST; virtio-iommu has paging domains only. */
	if (iommu_kind(cdev_path) != SMMUV3) {
		ASSERT_EQ(-1, rc);
		ASSERT_EQ(EOPNOTSUPP, errno);
		return;
	}
	ASSERT_EQ(0, rc) TH_LOG("NEST_PARENT on SMMUv3: %s", strerror(errno));
	v.hwpt_id = h.out_hwpt_id;
	/*
	 * The 7.2 driver offers a vIOMMU only with stage-2 forced write-back (IDR3.FWB) or a
	 * coherent root complex (IORT CANWBS, which QEMU's virt machine never sets): Debian's QEMU
	 * 10.0 has no FWB, the nesting rig's (tools/qemu/smmuv3-fwb.patch) has.
	 */
	if (!(smmu_idr3(self->iommufd, self->dev_id) & SMMU_IDR3_FWB)) {
		ASSERT_EQ(-1, ioctl(self->iommufd, IOMMU_VIOMMU_ALLOC, &v));
		ASSERT_EQ(EOPNOTSUPP, errno);
		return;
	}
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_VIOMMU_ALLOC, &v))
		TH_LOG("VIOMMU_ALLOC(ARM_SMMUV3) with IDR3.FWB: %s", strerror(errno));
	/* The vIOMMU holds its nesting parent. */
	ASSERT_EQ(-1, destroy(self->iommufd, h.out_hwpt_id));
	ASSERT_EQ(EBUSY, errno);
	ASSERT_EQ(0, destroy(self->iommufd, v.out_viommu_id));
	ASSERT_EQ(0, destroy(self->iommufd, h.out_hwpt_id));
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
