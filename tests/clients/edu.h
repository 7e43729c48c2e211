/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's edu device (1234:11e8) as the VFIO clients drive it: its registers (QEMU
 * docs/specs/edu.rst) and one DMA run.
 */
#ifndef IOMMUFD_RS_EDU_H
#define IOMMUFD_RS_EDU_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>

#define EDU_IDENT	0x00
#define EDU_LIVENESS	0x04
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
/* edu's own 4 KiB DMA buffer, in its DMA address space */
#define EDU_BUF		0x40000

static inline uint64_t rd64(volatile uint8_t *bar, unsigned int off)
{
	return *(volatile uint64_t *)(bar + off);
}

static inline void wr64(volatile uint8_t *bar, unsigned int off, uint64_t v)
{
	*(volatile uint64_t *)(bar + off) = v;
}

static inline uint32_t rd32(volatile uint8_t *bar, unsigned int off)
{
	return *(volatile uint32_t *)(bar + off);
}

/* Runs one edu DMA and waits for the device to finish it (it always does, fault or not). */
static inline int edu_run_dma(volatile uint8_t *bar, uint64_t src, uint64_t dst, uint64_t len,
			      uint64_t cmd)
{
	struct timespec ts = { 0, 1000000 };
	int i;

	wr64(bar, EDU_DMA_SRC, src);
	wr64(bar, EDU_DMA_DST, dst);
	wr64(bar, EDU_DMA_CNT, len);
	wr64(bar, EDU_DMA_CMD, cmd | EDU_CMD_START);
	for (i = 0; i < 5000; i++) {
		if (!(rd64(bar, EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

enum iommu_kind { VTD, SMMUV3, OTHER };

/*
 * The IOMMU behind a VFIO device (its cdev path), as the IOMMU core names it in sysfs (not as the
 * iommufd under test says): VT-d's units are dmarN, SMMUv3's smmu3.<address>; virtio-iommu's
 * anything else.
 */
static inline enum iommu_kind iommu_kind(const char *cdev)
{
	char path[256], link[256];
	const char *name;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/vfio-dev/%s/device/iommu", strrchr(cdev, '/') + 1);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return OTHER;
	link[n] = 0;
	name = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	if (!strncmp(name, "dmar", 4))
		return VTD;
	if (!strncmp(name, "smmu3.", 6))
		return SMMUV3;
	return OTHER;
}

#define SMMU_IDR3_FWB (1U << 8)

/*
 * SMMU_IDR3 of the SMMUv3 behind device @dev_id of context @iommufd, as IOMMU_GET_HW_INFO reports
 * it; 0 if the call fails or the device is not behind an SMMUv3. (Needs <linux/iommufd.h> and
 * <sys/ioctl.h> first.)
 */
static inline uint32_t smmu_idr3(int iommufd, uint32_t dev_id)
{
	struct iommu_hw_info_arm_smmuv3 smmu = {};
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = dev_id,
		.data_len = sizeof(smmu),
		.data_uptr = (uintptr_t)&smmu,
	};

	if (ioctl(iommufd, IOMMU_GET_HW_INFO, &info) ||
	    info.out_data_type != IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
		return 0;
	return smmu.idr[3];
}

#endif
