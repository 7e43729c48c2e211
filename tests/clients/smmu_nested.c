// SPDX-License-Identifier: GPL-2.0
/*
 * Nested translation through /dev/iommu on an SMMUv3: this program plays a VMM together with its
 * guest's SMMU driver. QEMU's edu device (1234:11e8), bound to vfio-pci, is reached through its
 * VFIO cdev; a buffer of this process is the "guest RAM", mapped into an IOAS at GPA_BASE (its
 * IOVAs there are the guest's IPAs). Stage 2 is a NEST_PARENT HWPT on that IOAS, the vIOMMU and a
 * vDEVICE (virtual StreamID VSID) sit on it, and stage 1 is what a guest would write: a Context
 * Descriptor and an AArch64 4 KiB-granule page table inside the guest RAM, named by the vSTE of a
 * nested HWPT allocated on the vIOMMU. What it proves:
 *
 * - nested.attach: the whole chain allocates and the device attaches to the nested HWPT.
 * - nested.dma_through_both_stages: an edu DMA at stage-1 IOVAs (edu masks DMA addresses to 28
 *   bits) lands in the page stage 1 then stage 2 translate to, and nowhere else in the RAM.
 * - nested.stage1_change_and_invalidate: after the stage-1 PTE moves to another page, an
 *   IOMMU_HWPT_INVALIDATE on the vIOMMU with CMDQ TLBI commands (NH_VA, NH_ASID, NSNH_ALL) makes
 *   the next DMA land in the new page; commands the driver refuses answer EIO with entry_num at
 *   the refused one.
 * - nested.fault_becomes_vevent: a DMA at a stage-1 IOVA with no mapping leaves memory untouched
 *   and comes back on a vEVENTQ as the SMMU's F_TRANSLATION event with the virtual StreamID,
 *   sequence numbers from 0 on.
 * - nested.full_veventq_records_lost_events: a vEVENTQ of depth 4 keeps 4 events of a faulting
 *   DMA, then one lost-events header numbered as the last report; the next event follows it.
 * - nested.bad_input_changes_nothing: what the driver or the core refuses (a second vDEVICE, a
 *   vSTE with a forbidden Config, bad vEVENTQs, an unknown invalidation opcode) leaves nothing:
 *   the vIOMMU still translates and everything tears down.
 * - nested.destroy_*: the objects torn down in several orders: in use, IOMMU_DESTROY answers
 *   EBUSY (the vIOMMU while a vDEVICE, nested HWPT or vEVENTQ holds it, the parent while the
 *   vIOMMU does, ...); at the end every ID answers ENOENT and VmPin is back where it was.
 *
 * It skips where the platform cannot nest: no SMMUv3 behind the device (VT-d, virtio-iommu), or an
 * SMMUv3 without S2FWB (IDR3.FWB, read through GET_HW_INFO), where IOMMU_VIOMMU_ALLOC answers
 * EOPNOTSUPP to any iommufd. With S2FWB an EOPNOTSUPP fails. The 7.2 arm-smmu-v3 driver offers a vIOMMU only with
 * S2FWB or IORT CANWBS (arm_smmu_get_viommu_size()); QEMU 10.0.2's SMMUv3 has neither, so the
 * vIOMMU needs the QEMU of tools/qemu/build.sh, patched by tools/qemu/smmuv3-fwb.patch to
 * advertise IDR3.FWB (QEMU models no cache attributes: FWB changes no translation).
 *
 * Usage: smmu_nested /dev/vfio/devices/vfioN. Runs against whichever iommufd module is loaded;
 * prints TAP.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "sysinfo.h"

#define PAGE		4096UL

/* The guest RAM: IPA GPA_BASE.. of the IOAS, GPA_SIZE bytes of this process. */
#define GPA_BASE	0x40000000UL
#define GPA_SIZE	(4UL << 20)
/* Its layout: the CD and the three levels of the stage-1 table, then data pages. */
#define CD_OFF		0x0000UL
#define L1_OFF		0x1000UL
#define L2_OFF		0x2000UL
#define L3_OFF		0x3000UL
#define META_END	0x4000UL
#define SRC_OFF		0x10000UL
#define DSTA_OFF	0x11000UL
/* in the other 2 MiB half, so also another stage-2 block if the parent maps blocks */
#define DSTB_OFF	0x234000UL
#define DSTC_OFF	0x3ff000UL
#define IPA(off)	(GPA_BASE + (off))

/* Stage-1 IOVAs (the device's addresses), below 256 MiB and none an IPA of the guest RAM. */
#define SRC_IOVA	0x100000UL	/* L3 entry 0x100 -> SRC page */
#define DST_IOVA	0x180000UL	/* L3 entry 0x180 -> DSTA page (then B, A, C) */
#define FAULT_IOVA	0x1c0000UL	/* L3 entry 0x1c0 invalid */
#define FAULT2_IOVA	0x3000000UL	/* L2 entry 24 invalid */
#define LEN		PAGE

#define VSID		0x42UL		/* the device's virtual StreamID */
#define ASID		5UL		/* the CD's ASID */

/*
 * The vSTE (arm-smmu-v3.h STRTAB_STE_*; the driver lets a guest set only
 * STRTAB_STE_{0,1}_NESTING_ALLOWED and Config abort, bypass or S1_TRANS).
 */
#define STE0_V			(1ULL << 0)
#define STE0_CFG_S1_TRANS	(5ULL << 1)
#define STE0_S1CTXPTR(ipa)	((ipa) & 0x000fffffffffffc0ULL)	/* bits 51:6; S1FMT 0, S1CDMAX 0 */
#define STE1_S1CIR_WBRA		(1ULL << 2)
#define STE1_S1COR_WBRA		(1ULL << 4)
#define STE1_S1CSH_ISH		(3ULL << 6)

/* The CD (arm-smmu-v3.h CTXDESC_CD_*; QEMU hw/arm/smmuv3.c decode_cd()). */
#define CD0_T0SZ(n)		((uint64_t)(n))		/* 5:0 */
#define CD0_TG0_4K		(0ULL << 6)
#define CD0_IRGN0_WBWA		(1ULL << 8)
#define CD0_ORGN0_WBWA		(1ULL << 10)
#define CD0_SH0_ISH		(3ULL << 12)
#define CD0_EPD1		(1ULL << 30)
#define CD0_V			(1ULL << 31)
#define CD0_IPS_40		(2ULL << 32)
#define CD0_AA64		(1ULL << 41)
#define CD0_R			(1ULL << 45)
#define CD0_A			(1ULL << 46)
#define CD0_ASID(a)		((uint64_t)(a) << 48)
#define CD1_TTB0(ipa)		((ipa) & 0x000ffffffffffff0ULL)	/* bits 51:4 */
/* MAIR attr 0 NC, 1 WBRWA, 2 device, 3 inner NC outer WB, as Linux's io-pgtable: QEMU ignores it */
#define CD3_MAIR		0xf404ff44ULL
/* T0SZ 25: 39-bit input, a 4 KiB walk from level 1 (QEMU: 4 - (39 - 4) / 9) */
#define S1_T0SZ			25

/* Stage-1 descriptors, VMSAv8-64 4 KiB granule. */
#define PTE_TABLE		3ULL		/* levels 1-2: next-level table */
#define PTE_PAGE		3ULL		/* level 3: page */
#define PTE_ATTRINDX(i)		((uint64_t)(i) << 2)
#define PTE_AP_UNPRIV		(1ULL << 6)	/* AP[2] clear: writable */
#define PTE_SH_ISH		(3ULL << 8)
#define PTE_AF			(1ULL << 10)
#define PTE_NG			(1ULL << 11)
#define PTE_ADDR(ipa)		((ipa) & 0x0000fffffffff000ULL)

/* CMDQ opcodes and fields (arm-smmu-v3.h CMDQ_*) the driver converts for a vIOMMU. */
#define CMD_OP_CFGI_STE		0x03ULL		/* refused */
#define CMD_OP_CFGI_CD		0x05ULL
#define CMD_OP_TLBI_NH_ASID	0x11ULL
#define CMD_OP_TLBI_NH_VA	0x12ULL
#define CMD_OP_TLBI_NSNH_ALL	0x30ULL		/* becomes NH_ALL of the vIOMMU's VMID */
#define CMD0_ASID(a)		((uint64_t)(a) << 48)
#define CMD0_SID(s)		((uint64_t)(s) << 32)
#define CMD1_LEAF		1ULL
#define CMD1_ADDR(a)		((a) & ~0xfffULL)

/* Event record fields (arm-smmu-v3.h EVTQ_*). */
#define EVT_ID_TRANSLATION_FAULT	0x10
#define EVT1_RNW		(1ULL << 35)
#define EVT1_S2			(1ULL << 39)

static const char *cdev_path;

static inline void barrier_dev(void)
{
#if defined(__aarch64__)
	__asm__ __volatile__("dsb sy" ::: "memory");
#else
	__sync_synchronize();
#endif
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &d) ? errno : 0;
}

/* IOMMU_HWPT_INVALIDATE on the vIOMMU; 0 or the errno, *done the entries handled. */
static int invalidate(int fd, uint32_t viommu, struct iommu_viommu_arm_smmuv3_invalidate *cmds,
		      uint32_t n, uint32_t *done)
{
	struct iommu_hwpt_invalidate inv = {
		.size = sizeof(inv),
		.hwpt_id = viommu,
		.data_uptr = (uintptr_t)cmds,
		.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
		.entry_len = sizeof(*cmds),
		.entry_num = n,
	};
	int rc = ioctl(fd, IOMMU_HWPT_INVALIDATE, &inv) ? errno : 0;

	*done = inv.entry_num;
	return rc;
}

static void set_cmd(struct iommu_viommu_arm_smmuv3_invalidate *c, uint64_t d0, uint64_t d1)
{
	c->cmd[0] = htole64(d0);
	c->cmd[1] = htole64(d1);
}

static uint64_t s1_page(uint64_t ipa)
{
	return PTE_ADDR(ipa) | PTE_NG | PTE_AF | PTE_SH_ISH | PTE_AP_UNPRIV | PTE_ATTRINDX(1) |
	       PTE_PAGE;
}

static volatile uint64_t *l3_entry(uint8_t *ram, uint64_t iova)
{
	return (volatile uint64_t *)(ram + L3_OFF) + ((iova >> 12) & 511);
}

/* What the guest driver writes before it installs the vSTE: the CD and the stage-1 table. */
static void write_stage1(uint8_t *ram)
{
	uint64_t *cd = (uint64_t *)(ram + CD_OFF);
	uint64_t *l1 = (uint64_t *)(ram + L1_OFF);
	uint64_t *l2 = (uint64_t *)(ram + L2_OFF);

	memset(ram, 0, META_END);
	cd[0] = htole64(CD0_T0SZ(S1_T0SZ) | CD0_TG0_4K | CD0_IRGN0_WBWA | CD0_ORGN0_WBWA |
			CD0_SH0_ISH | CD0_EPD1 | CD0_V | CD0_IPS_40 | CD0_AA64 | CD0_R | CD0_A |
			CD0_ASID(ASID));
	cd[1] = htole64(CD1_TTB0(IPA(L1_OFF)));
	cd[2] = 0;
	cd[3] = htole64(CD3_MAIR);
	/* IOVAs 0..1 GiB: L1 entry 0; 0..2 MiB: L2 entry 0 */
	l1[0] = htole64(PTE_ADDR(IPA(L2_OFF)) | PTE_TABLE);
	l2[0] = htole64(PTE_ADDR(IPA(L3_OFF)) | PTE_TABLE);
	*l3_entry(ram, SRC_IOVA) = htole64(s1_page(IPA(SRC_OFF)));
	*l3_entry(ram, DST_IOVA) = htole64(s1_page(IPA(DSTA_OFF)));
	barrier_dev();
}

FIXTURE(nested)
{
	int iommufd;
	int devfd;
	int veventq_fd;
	uint32_t dev_id;
	uint32_t ioas_id;
	uint32_t s2_id;
	uint32_t viommu_id;
	uint32_t vdev_id;
	uint32_t nested_id;
	uint32_t veventq_id;
	uint8_t *ram;
	volatile uint8_t *bar0;
	size_t bar0_size;
	long pin0;
};

FIXTURE_SETUP(nested)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = GPA_SIZE,
		.iova = GPA_BASE,
	};
	struct iommu_hwpt_alloc s2 = {
		.size = sizeof(s2),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
	};
	struct iommu_viommu_alloc viommu = {
		.size = sizeof(viommu),
		.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
	};
	struct iommu_vdevice_alloc vdev = { .size = sizeof(vdev), .virt_id = VSID };
	struct iommu_hwpt_arm_smmuv3 vste = {
		.ste = {
			htole64(STE0_V | STE0_CFG_S1_TRANS | STE0_S1CTXPTR(IPA(CD_OFF))),
			htole64(STE1_S1CIR_WBRA | STE1_S1COR_WBRA | STE1_S1CSH_ISH),
		},
	};
	struct iommu_hwpt_alloc nested = {
		.size = sizeof(nested),
		.data_type = IOMMU_HWPT_DATA_ARM_SMMUV3,
		.data_len = sizeof(vste),
		.data_uptr = (uintptr_t)&vste,
	};
	struct iommu_viommu_arm_smmuv3_invalidate cmds[2];
	uint16_t command;
	uint32_t done;

	self->iommufd = self->devfd = self->veventq_fd = -1;
	if (iommu_kind(cdev_path) != SMMUV3)
		SKIP(return, "%s is behind %s, not an SMMUv3: nothing to nest", cdev_path,
		     iommu_kind(cdev_path) == VTD ? "VT-d" : "virtio-iommu or no IOMMU");
	self->pin0 = proc_kb("/proc/self/status", "VmPin");

	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd) TH_LOG("/dev/iommu: %s", strerror(errno));
	self->devfd = open(cdev_path, O_RDWR);
	ASSERT_LE(0, self->devfd) TH_LOG("open %s: %s", cdev_path, strerror(errno));
	bind.iommufd = self->iommufd;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	self->dev_id = bind.out_devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOC, &ioas));
	self->ioas_id = ioas.out_ioas_id;

	self->ram = mmap(NULL, GPA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	memset(self->ram, 0, GPA_SIZE);
	map.ioas_id = self->ioas_id;
	map.user_va = (uintptr_t)self->ram;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_MAP, &map))
		TH_LOG("IOMMU_IOAS_MAP at %#lx: %s", GPA_BASE, strerror(errno));

	/* Stage 2: the parent, filled from the IOAS. */
	s2.dev_id = self->dev_id;
	s2.pt_id = self->ioas_id;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &s2))
		TH_LOG("IOMMU_HWPT_ALLOC(NEST_PARENT): %s", strerror(errno));
	self->s2_id = s2.out_hwpt_id;

	viommu.dev_id = self->dev_id;
	viommu.hwpt_id = self->s2_id;
	if (ioctl(self->iommufd, IOMMU_VIOMMU_ALLOC, &viommu)) {
		/*
		 * Without S2FWB (QEMU without the patch; CANWBS never comes on QEMU's virt machine)
		 * the driver has no vIOMMU, whichever iommufd asks. With it, the iommufd must give
		 * one.
		 */
		if (errno == EOPNOTSUPP && !(smmu_idr3(self->iommufd, self->dev_id) & SMMU_IDR3_FWB))
			SKIP(return,
			     "IOMMU_VIOMMU_ALLOC(ARM_SMMUV3): EOPNOTSUPP: the SMMU has no S2FWB (QEMU without tools/qemu/smmuv3-fwb.patch)");
		ASSERT_EQ(0, errno) TH_LOG("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) with IDR3.FWB: %s",
					   strerror(errno));
	}
	self->viommu_id = viommu.out_viommu_id;

	vdev.viommu_id = self->viommu_id;
	vdev.dev_id = self->dev_id;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_VDEVICE_ALLOC, &vdev))
		TH_LOG("IOMMU_VDEVICE_ALLOC(vSID %#lx): %s", VSID, strerror(errno));
	self->vdev_id = vdev.out_vdevice_id;

	write_stage1(self->ram);

	nested.dev_id = self->dev_id;
	nested.pt_id = self->viommu_id;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &nested))
		TH_LOG("IOMMU_HWPT_ALLOC(nested, vSTE %#llx %#llx): %s",
		       (unsigned long long)le64toh(vste.ste[0]),
		       (unsigned long long)le64toh(vste.ste[1]), strerror(errno));
	self->nested_id = nested.out_hwpt_id;

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &bar));
	ASSERT_LE(4096, bar.size);
	self->bar0_size = bar.size;
	self->bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, self->devfd,
			  bar.offset);
	ASSERT_NE(MAP_FAILED, self->bar0);
	ASSERT_EQ(0x010000edU, rd32(self->bar0, EDU_IDENT) & 0xff0000ffU);
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	ASSERT_EQ(2, pread(self->devfd, &command, 2, cfg.offset + 4));
	command |= 0x4;		/* bus master */
	ASSERT_EQ(2, pwrite(self->devfd, &command, 2, cfg.offset + 4));

	attach.pt_id = self->nested_id;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT(nested): %s", strerror(errno));
	ASSERT_EQ(self->nested_id, attach.pt_id);

	/*
	 * As a guest driver does once its CD is in place: CFGI_CD for the vSID (the driver swaps in
	 * the physical SID) and TLBI_NH_ASID (VMID left 0: the driver puts the vIOMMU's), which also
	 * drops what an earlier test with this ASID left in QEMU's IOTLB.
	 */
	set_cmd(&cmds[0], CMD_OP_CFGI_CD | CMD0_SID(VSID), CMD1_LEAF);
	set_cmd(&cmds[1], CMD_OP_TLBI_NH_ASID | CMD0_ASID(ASID), 0);
	ASSERT_EQ(0, invalidate(self->iommufd, self->viommu_id, cmds, 2, &done))
		TH_LOG("IOMMU_HWPT_INVALIDATE(CFGI_CD, TLBI_NH_ASID): %s", strerror(errno));
	ASSERT_EQ(2, done);
}

FIXTURE_TEARDOWN(nested)
{
	if (self->bar0 && self->bar0 != MAP_FAILED)
		munmap((void *)self->bar0, self->bar0_size);
	if (self->veventq_fd >= 0)
		close(self->veventq_fd);
	if (self->devfd >= 0)
		close(self->devfd);
	if (self->iommufd >= 0)
		close(self->iommufd);
}

static void fill(uint8_t *p, uint8_t seed)
{
	size_t i;

	for (i = 0; i < LEN; i++)
		p[i] = (uint8_t)(i * 13 + seed) | 1;	/* never 0 */
}

/*
 * The offset of the first 8 bytes of the guest RAM outside the tables, the source page and @dst
 * (or everywhere outside the first two with @dst == -1) that are not 0, or -1.
 */
static long stray_byte(const uint8_t *ram, long dst)
{
	const volatile uint64_t *w = (const volatile uint64_t *)ram;
	long off;

	barrier_dev();
	for (off = META_END; off < (long)GPA_SIZE; off += 8) {
		if (off == (long)SRC_OFF || (dst >= 0 && off == dst)) {
			off += LEN - 8;
			continue;
		}
		if (w[off / 8])
			return off;
	}
	return -1;
}

/* SRC_IOVA -> edu's buffer -> DST_IOVA: 0 when both DMAs completed. */
static int dma_round_trip(volatile uint8_t *bar0, uint64_t dst_iova)
{
	barrier_dev();
	if (edu_run_dma(bar0, SRC_IOVA, EDU_BUF, LEN, 0))
		return -1;
	if (edu_run_dma(bar0, EDU_BUF, dst_iova, LEN, EDU_CMD_TO_RAM))
		return -1;
	barrier_dev();
	return 0;
}

TEST_F(nested, attach)
{
	/* Every object its own ID. */
	uint32_t ids[] = { self->dev_id, self->ioas_id, self->s2_id, self->viommu_id,
			   self->vdev_id, self->nested_id };
	size_t i, j;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		for (j = i + 1; j < sizeof(ids) / sizeof(ids[0]); j++)
			ASSERT_NE(ids[i], ids[j]);
	TH_LOG("dev %u ioas %u parent %u viommu %u vdevice %u nested %u", self->dev_id,
	       self->ioas_id, self->s2_id, self->viommu_id, self->vdev_id, self->nested_id);
	/* The guest RAM is pinned for the parent's page table. */
	if (self->pin0 >= 0)
		EXPECT_EQ(self->pin0 + (long)(GPA_SIZE >> 10), proc_kb("/proc/self/status", "VmPin"));
}

TEST_F(nested, dma_through_both_stages)
{
	long off;

	fill(self->ram + SRC_OFF, 3);
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA)) TH_LOG("edu DMA did not complete");
	ASSERT_EQ(0, memcmp(self->ram + SRC_OFF, self->ram + DSTA_OFF, LEN))
		TH_LOG("IOVA %#lx -> IPA %#lx: the bytes are not there", DST_IOVA, IPA(DSTA_OFF));
	off = stray_byte(self->ram, DSTA_OFF);
	ASSERT_EQ(-1, off) TH_LOG("a byte landed at IPA %#lx", IPA(off));
}

TEST_F(nested, stage1_change_and_invalidate)
{
	struct iommu_viommu_arm_smmuv3_invalidate cmds[2];
	uint8_t *a = self->ram + DSTA_OFF, *b = self->ram + DSTB_OFF, *c = self->ram + DSTC_OFF;
	uint8_t *src = self->ram + SRC_OFF;
	uint32_t done;
	long off;

	fill(src, 17);
	/* The translation to A, now in QEMU's IOTLB. */
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	ASSERT_EQ(0, memcmp(src, a, LEN));
	memset(a, 0, LEN);

	/* The PTE moves to B; before any invalidation the SMMU may still use the old one. */
	*l3_entry(self->ram, DST_IOVA) = htole64(s1_page(IPA(DSTB_OFF)));
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	if (!memcmp(src, a, LEN))
		TH_LOG("without an invalidation the DMA still went to the old page (cached)");
	else if (!memcmp(src, b, LEN))
		TH_LOG("without an invalidation the DMA already went to the new page (not cached)");
	else
		ASSERT_TRUE(0) TH_LOG("the DMA landed in neither the old nor the new page");
	memset(a, 0, LEN);
	memset(b, 0, LEN);

	/* TLBI_NH_VA of that IOVA (leaf, no range: TG 0) */
	set_cmd(&cmds[0], CMD_OP_TLBI_NH_VA | CMD0_ASID(ASID), CMD1_ADDR(DST_IOVA) | CMD1_LEAF);
	ASSERT_EQ(0, invalidate(self->iommufd, self->viommu_id, cmds, 1, &done))
		TH_LOG("TLBI_NH_VA: %s", strerror(errno));
	ASSERT_EQ(1, done);
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	ASSERT_EQ(0, memcmp(src, b, LEN)) TH_LOG("after TLBI_NH_VA the DMA did not reach the new page");
	off = stray_byte(self->ram, DSTB_OFF);
	ASSERT_EQ(-1, off) TH_LOG("a byte landed at IPA %#lx", IPA(off));
	memset(b, 0, LEN);

	/* Back to A, TLBI_NH_ASID. */
	*l3_entry(self->ram, DST_IOVA) = htole64(s1_page(IPA(DSTA_OFF)));
	set_cmd(&cmds[0], CMD_OP_TLBI_NH_ASID | CMD0_ASID(ASID), 0);
	ASSERT_EQ(0, invalidate(self->iommufd, self->viommu_id, cmds, 1, &done))
		TH_LOG("TLBI_NH_ASID: %s", strerror(errno));
	ASSERT_EQ(1, done);
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	ASSERT_EQ(0, memcmp(src, a, LEN)) TH_LOG("after TLBI_NH_ASID the DMA did not reach page A");
	off = stray_byte(self->ram, DSTA_OFF);
	ASSERT_EQ(-1, off) TH_LOG("a byte landed at IPA %#lx", IPA(off));
	memset(a, 0, LEN);

	/* To C, TLBI_NSNH_ALL (the driver makes it NH_ALL of the vIOMMU's VMID) */
	*l3_entry(self->ram, DST_IOVA) = htole64(s1_page(IPA(DSTC_OFF)));
	set_cmd(&cmds[0], CMD_OP_TLBI_NSNH_ALL, 0);
	ASSERT_EQ(0, invalidate(self->iommufd, self->viommu_id, cmds, 1, &done))
		TH_LOG("TLBI_NSNH_ALL: %s", strerror(errno));
	ASSERT_EQ(1, done);
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	ASSERT_EQ(0, memcmp(src, c, LEN)) TH_LOG("after TLBI_NSNH_ALL the DMA did not reach page C");
	off = stray_byte(self->ram, DSTC_OFF);
	ASSERT_EQ(-1, off) TH_LOG("a byte landed at IPA %#lx", IPA(off));

	/* Refused: CFGI_STE is not a guest's to send; entry_num stops at it. */
	set_cmd(&cmds[0], CMD_OP_TLBI_NH_ASID | CMD0_ASID(ASID), 0);
	set_cmd(&cmds[1], CMD_OP_CFGI_STE | CMD0_SID(VSID), CMD1_LEAF);
	ASSERT_EQ(EIO, invalidate(self->iommufd, self->viommu_id, cmds, 2, &done));
	ASSERT_EQ(1, done);
	/* A vSID no vDEVICE has. */
	set_cmd(&cmds[0], CMD_OP_CFGI_CD | CMD0_SID(VSID + 1), CMD1_LEAF);
	ASSERT_EQ(EIO, invalidate(self->iommufd, self->viommu_id, cmds, 1, &done));
	ASSERT_EQ(0, done);
}

/*
 * QEMU records one event per faulting access, and edu moves its 4 KiB in 4-byte accesses: one DMA
 * is up to a thousand events (fewer if QEMU's own event queue overflows: the kernel numbers what
 * reaches it). The vEVENTQ is deep enough for two DMAs' worth, so none is lost there.
 */
#define MAX_VEVENTS	4096
#define VEVENTQ_DEPTH	8192

static int veventq_alloc_depth(FIXTURE_DATA(nested) *self, uint32_t depth)
{
	struct iommu_veventq_alloc q = {
		.size = sizeof(q),
		.viommu_id = self->viommu_id,
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
		.veventq_depth = depth,
	};

	if (ioctl(self->iommufd, IOMMU_VEVENTQ_ALLOC, &q))
		return errno;
	self->veventq_id = q.out_veventq_id;
	self->veventq_fd = q.out_veventq_fd;
	return 0;
}

static int veventq_alloc(FIXTURE_DATA(nested) *self)
{
	return veventq_alloc_depth(self, VEVENTQ_DEPTH);
}

struct vevent {
	uint32_t flags;
	uint32_t seq;
	uint64_t evt[4];
};

/*
 * Reads what the vEVENTQ has, waiting up to @timeout_ms for the first; appends to @ev (at most
 * @max in all) and answers how many it added, or -1 on a malformed read.
 */
static int read_vevents(int fd, struct vevent *ev, int max, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t buf[64 * (sizeof(struct iommufd_vevent_header) +
			  sizeof(struct iommu_vevent_arm_smmuv3))];
	struct iommufd_vevent_header hdr;
	struct iommu_vevent_arm_smmuv3 data;
	ssize_t n, off = 0;
	int got = 0, i;

	size_t rec = sizeof(hdr) + sizeof(data), want;

	if (max <= 0)
		return 0;
	if (poll(&p, 1, timeout_ms) != 1 || !(p.revents & POLLIN))
		return 0;
	/*
	 * No more than @max whole records: edu's DMA faults once per access (4 bytes), so one DMA
	 * queues many events, and the read returns as many as fit.
	 */
	want = (size_t)max * rec;
	n = read(fd, buf, want < sizeof(buf) ? want : sizeof(buf));
	if (n < 0)
		return -1;
	while (off + (ssize_t)sizeof(hdr) <= n && got < max) {
		memcpy(&hdr, buf + off, sizeof(hdr));
		off += sizeof(hdr);
		ev[got].flags = hdr.flags;
		ev[got].seq = hdr.sequence;
		memset(ev[got].evt, 0, sizeof(ev[got].evt));
		if (!(hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS)) {
			if (off + (ssize_t)sizeof(data) > n)
				return -1;
			memcpy(&data, buf + off, sizeof(data));
			off += sizeof(data);
			for (i = 0; i < 4; i++)
				ev[got].evt[i] = le64toh(data.evt[i]);
		}
		got++;
	}
	return off == n ? got : -1;
}

/*
 * Reads records until none comes for @quiet_ms (the first waited for up to @first_ms), appending
 * to @ev after @have (at most @max in all); the total, or -1 on a malformed read.
 */
static int drain_vevents(int fd, struct vevent *ev, int have, int max, int first_ms, int quiet_ms)
{
	int n = read_vevents(fd, ev + have, max - have, first_ms);

	while (n > 0) {
		have += n;
		n = read_vevents(fd, ev + have, max - have, quiet_ms);
	}
	return n < 0 ? -1 : have;
}

static void log_vevent(struct __test_metadata *_metadata, const struct vevent *e)
{
	TH_LOG("vevent seq %u flags %#x: %#018llx %#018llx %#018llx %#018llx", e->seq, e->flags,
	       (unsigned long long)e->evt[0], (unsigned long long)e->evt[1],
	       (unsigned long long)e->evt[2], (unsigned long long)e->evt[3]);
}

static struct vevent vevents[MAX_VEVENTS];

TEST_F(nested, fault_becomes_vevent)
{
	struct vevent *ev = vevents;
	int n, first, i;
	long off;

	ASSERT_EQ(0, veventq_alloc(self)) TH_LOG("IOMMU_VEVENTQ_ALLOC: %s", strerror(errno));
	/* Nothing there yet. */
	ASSERT_EQ(0, read_vevents(self->veventq_fd, ev, MAX_VEVENTS, 0));

	/* A write through an invalid L3 entry: nothing reaches memory; F_TRANSLATION events. */
	fill(self->ram + SRC_OFF, 29);
	ASSERT_EQ(0, dma_round_trip(self->bar0, FAULT_IOVA));
	off = stray_byte(self->ram, -1);
	ASSERT_EQ(-1, off) TH_LOG("a byte of the faulting DMA landed at IPA %#lx", IPA(off));
	n = drain_vevents(self->veventq_fd, ev, 0, MAX_VEVENTS, 5000, 300);
	ASSERT_LE(1, n) TH_LOG("no vEVENT within 5 s of the write fault (%d)", n);
	first = n;

	/* A read through an invalid L2 entry. */
	barrier_dev();
	ASSERT_EQ(0, edu_run_dma(self->bar0, FAULT2_IOVA, EDU_BUF, LEN, 0));
	n = drain_vevents(self->veventq_fd, ev, n, MAX_VEVENTS, 5000, 300);
	ASSERT_LT(first, n) TH_LOG("no vEVENT within 5 s of the read fault (%d)", n);
	TH_LOG("%d vEVENTs for the write, %d for the read", first, n - first);
	log_vevent(_metadata, &ev[0]);
	log_vevent(_metadata, &ev[n - 1]);

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, ev[i].flags) TH_LOG("vEVENT %d: events were lost", i);
		/* Every report numbered, from 0, none skipped. */
		ASSERT_EQ((uint32_t)i, ev[i].seq);
		ASSERT_EQ(EVT_ID_TRANSLATION_FAULT, ev[i].evt[0] & 0xff);
		/* StreamID (63:32): the vDEVICE's, not the physical one */
		ASSERT_EQ(VSID, ev[i].evt[0] >> 32);
		ASSERT_EQ(0, ev[i].evt[1] & EVT1_S2) TH_LOG("a stage-2 fault was forwarded");
		/* The write's faults at FAULT_IOVA's page, then the read's at FAULT2_IOVA's (InputAddr). */
		if (i < first) {
			ASSERT_EQ(FAULT_IOVA, ev[i].evt[2] & ~0xfffULL);
			ASSERT_EQ(0, ev[i].evt[1] & EVT1_RNW);
		} else {
			ASSERT_EQ(FAULT2_IOVA, ev[i].evt[2] & ~0xfffULL);
			ASSERT_EQ(EVT1_RNW, ev[i].evt[1] & EVT1_RNW);
		}
	}

	/* The vIOMMU has one vEVENTQ of a type. */
	close(self->veventq_fd);
	self->veventq_fd = -1;
	ASSERT_EQ(EEXIST, veventq_alloc(self));
}

/*
 * A full vEVENTQ keeps its first @depth events and records the rest as lost: one header with
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS at the tail, numbered as the last report; reading makes room and
 * the numbering goes on from there.
 */
#define SMALL_DEPTH 4

TEST_F(nested, full_veventq_records_lost_events)
{
	struct vevent *ev = vevents;
	uint32_t lost_seq;
	int n, i;

	ASSERT_EQ(0, veventq_alloc_depth(self, SMALL_DEPTH));
	/* A faulting write: one event per access, far more than the depth. */
	ASSERT_EQ(0, dma_round_trip(self->bar0, FAULT_IOVA));
	usleep(300000);
	n = drain_vevents(self->veventq_fd, ev, 0, MAX_VEVENTS, 5000, 300);
	ASSERT_EQ(SMALL_DEPTH + 1, n) TH_LOG("%d records from a full queue of %d", n, SMALL_DEPTH);
	for (i = 0; i < SMALL_DEPTH; i++) {
		ASSERT_EQ(0, ev[i].flags);
		ASSERT_EQ((uint32_t)i, ev[i].seq);
		ASSERT_EQ(VSID, ev[i].evt[0] >> 32);
	}
	ASSERT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, ev[SMALL_DEPTH].flags);
	lost_seq = ev[SMALL_DEPTH].seq;
	ASSERT_LE(SMALL_DEPTH, lost_seq);
	TH_LOG("lost-events record numbered %u", lost_seq);

	/* Read empty, the queue takes events again, numbered after the lost ones. */
	barrier_dev();
	ASSERT_EQ(0, edu_run_dma(self->bar0, FAULT2_IOVA, EDU_BUF, LEN, 0));
	n = drain_vevents(self->veventq_fd, ev, 0, MAX_VEVENTS, 5000, 300);
	ASSERT_LE(1, n);
	ASSERT_EQ(0, ev[0].flags);
	ASSERT_EQ(lost_seq + 1, ev[0].seq);
	ASSERT_EQ(FAULT2_IOVA, ev[0].evt[2] & ~0xfffULL);
}

static int detach(int devfd)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d) ? errno : 0;
}

/* Every object is gone: IOMMU_DESTROY answers ENOENT for each ID. */
static void all_gone(struct __test_metadata *_metadata, FIXTURE_DATA(nested) *self)
{
	uint32_t ids[] = { self->veventq_id, self->vdev_id, self->nested_id, self->viommu_id,
			   self->s2_id, self->ioas_id, self->dev_id };
	uint32_t id;
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		id = ids[i];
		EXPECT_EQ(ENOENT, destroy(self->iommufd, id)) TH_LOG("object %u is left", id);
	}
}

/* VmPin is back where it was before the guest RAM was mapped (the release may trail a little). */
static void unpinned(struct __test_metadata *_metadata, FIXTURE_DATA(nested) *self)
{
	long now = -1;
	int i;

	if (self->pin0 < 0)
		return;
	for (i = 0; i < 100; i++) {
		now = proc_kb("/proc/self/status", "VmPin");
		if (now == self->pin0)
			break;
		usleep(10000);
	}
	EXPECT_EQ(self->pin0, now);
}

static void close_fd(int *fd)
{
	close(*fd);
	*fd = -1;
}

/* Unbinds the device: its last file reference goes (BAR0's mapping holds one too). */
static void unbind(FIXTURE_DATA(nested) *self)
{
	if (self->bar0) {
		munmap((void *)self->bar0, self->bar0_size);
		self->bar0 = NULL;
	}
	close_fd(&self->devfd);
}

/* The reverse of creation, each object tried while still in use first. */
/*
 * What the driver or the core refuses leaves nothing behind: a second vDEVICE for the device
 * (EEXIST), a vSTE whose Config the guest may not choose (the driver's EIO), a vEVENTQ of no type
 * (EOPNOTSUPP) or of depth 0 (EINVAL), a second vEVENTQ of a type (EEXIST), an invalidation with
 * an opcode the driver does not take (EIO, none handled). Then everything still tears down to
 * nothing, and the vIOMMU works: a DMA goes through both stages as before.
 */
TEST_F(nested, bad_input_changes_nothing)
{
	struct iommu_vdevice_alloc vdev = {
		.size = sizeof(vdev),
		.viommu_id = self->viommu_id,
		.dev_id = self->dev_id,
		.virt_id = VSID + 1,
	};
	/* Config 0b111 (stage 1 and 2): the guest's STE may only abort, bypass or translate stage 1. */
	struct iommu_hwpt_arm_smmuv3 vste = {
		.ste = { htole64(STE0_V | (7ULL << 1) | STE0_S1CTXPTR(IPA(CD_OFF))), 0 },
	};
	struct iommu_hwpt_alloc bad = {
		.size = sizeof(bad),
		.dev_id = self->dev_id,
		.pt_id = self->viommu_id,
		.data_type = IOMMU_HWPT_DATA_ARM_SMMUV3,
		.data_len = sizeof(vste),
		.data_uptr = (uintptr_t)&vste,
	};
	struct iommu_veventq_alloc q = {
		.size = sizeof(q),
		.viommu_id = self->viommu_id,
		.type = IOMMU_VEVENTQ_TYPE_DEFAULT,
		.veventq_depth = 4,
	};
	struct iommu_viommu_arm_smmuv3_invalidate cmd;
	int fd = self->iommufd;
	uint32_t done = 1;
	long off;

	EXPECT_EQ(-1, ioctl(fd, IOMMU_VDEVICE_ALLOC, &vdev));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-1, ioctl(fd, IOMMU_HWPT_ALLOC, &bad));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, ioctl(fd, IOMMU_VEVENTQ_ALLOC, &q));
	EXPECT_EQ(EOPNOTSUPP, errno);
	q.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3;
	q.veventq_depth = 0;
	EXPECT_EQ(-1, ioctl(fd, IOMMU_VEVENTQ_ALLOC, &q));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, veventq_alloc(self));
	EXPECT_EQ(EEXIST, veventq_alloc_depth(self, 4));
	set_cmd(&cmd, 0x7f, 0);	/* no such CMDQ opcode */
	EXPECT_EQ(EIO, invalidate(fd, self->viommu_id, &cmd, 1, &done));
	EXPECT_EQ(0, done);

	/* The vIOMMU still translates. */
	fill(self->ram + SRC_OFF, 61);
	ASSERT_EQ(0, dma_round_trip(self->bar0, DST_IOVA));
	EXPECT_EQ(0, memcmp(self->ram + SRC_OFF, self->ram + DSTA_OFF, LEN));
	off = stray_byte(self->ram, DSTA_OFF);
	EXPECT_EQ(-1, off);

	ASSERT_EQ(0, detach(self->devfd));
	ASSERT_EQ(0, destroy(fd, self->nested_id));
	close_fd(&self->veventq_fd);
	ASSERT_EQ(0, destroy(fd, self->veventq_id));
	ASSERT_EQ(0, destroy(fd, self->vdev_id));
	ASSERT_EQ(0, destroy(fd, self->viommu_id));
	ASSERT_EQ(0, destroy(fd, self->s2_id));
	ASSERT_EQ(0, destroy(fd, self->ioas_id));
	unbind(self);
	all_gone(_metadata, self);
	unpinned(_metadata, self);
}

TEST_F(nested, destroy_in_reverse)
{
	int fd = self->iommufd;

	ASSERT_EQ(0, veventq_alloc(self));
	EXPECT_EQ(EBUSY, destroy(fd, self->ioas_id));		/* the parent's */
	EXPECT_EQ(EBUSY, destroy(fd, self->s2_id));		/* the vIOMMU's */
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* vDEVICE, nested, vEVENTQ */
	EXPECT_EQ(EBUSY, destroy(fd, self->nested_id));	/* attached */
	EXPECT_EQ(EBUSY, destroy(fd, self->veventq_id));	/* its fd is open */
	EXPECT_EQ(EBUSY, destroy(fd, self->dev_id));		/* bound */

	ASSERT_EQ(0, detach(self->devfd));
	ASSERT_EQ(0, destroy(fd, self->nested_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* vDEVICE, vEVENTQ */
	close_fd(&self->veventq_fd);
	ASSERT_EQ(0, destroy(fd, self->veventq_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* vDEVICE */
	ASSERT_EQ(0, destroy(fd, self->vdev_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->ioas_id));
	ASSERT_EQ(0, destroy(fd, self->viommu_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->ioas_id));
	ASSERT_EQ(0, destroy(fd, self->s2_id));
	ASSERT_EQ(0, destroy(fd, self->ioas_id));
	unbind(self);
	all_gone(_metadata, self);
	unpinned(_metadata, self);
}

/*
 * The device unbound first, attached and with its vDEVICE: the unbind detaches it and destroys
 * the vDEVICE (its ID left a tombstone); the rest then goes from the top.
 */
TEST_F(nested, destroy_unbind_first)
{
	int fd = self->iommufd;

	ASSERT_EQ(0, veventq_alloc(self));
	unbind(self);
	EXPECT_EQ(ENOENT, destroy(fd, self->vdev_id));
	EXPECT_EQ(ENOENT, destroy(fd, self->dev_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* nested, vEVENTQ */
	EXPECT_EQ(EBUSY, destroy(fd, self->s2_id));
	ASSERT_EQ(0, destroy(fd, self->nested_id));		/* no longer attached */
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* vEVENTQ */
	close_fd(&self->veventq_fd);
	ASSERT_EQ(0, destroy(fd, self->veventq_id));
	ASSERT_EQ(0, destroy(fd, self->viommu_id));
	ASSERT_EQ(0, destroy(fd, self->s2_id));
	ASSERT_EQ(0, destroy(fd, self->ioas_id));
	all_gone(_metadata, self);
	unpinned(_metadata, self);
}

/*
 * The vDEVICE and the vEVENTQ go while the device is still attached to the nested HWPT (the
 * vIOMMU stays busy with the nested HWPT); then detach and the rest.
 */
TEST_F(nested, destroy_vdevice_while_attached)
{
	int fd = self->iommufd;

	ASSERT_EQ(0, veventq_alloc(self));
	ASSERT_EQ(0, destroy(fd, self->vdev_id));
	EXPECT_EQ(ENOENT, destroy(fd, self->vdev_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* nested, vEVENTQ */
	close_fd(&self->veventq_fd);
	ASSERT_EQ(0, destroy(fd, self->veventq_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->viommu_id));	/* nested */
	EXPECT_EQ(EBUSY, destroy(fd, self->s2_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->nested_id));	/* attached */
	ASSERT_EQ(0, detach(self->devfd));
	ASSERT_EQ(0, destroy(fd, self->nested_id));
	ASSERT_EQ(0, destroy(fd, self->viommu_id));
	ASSERT_EQ(0, destroy(fd, self->s2_id));
	ASSERT_EQ(0, destroy(fd, self->ioas_id));
	EXPECT_EQ(EBUSY, destroy(fd, self->dev_id));		/* still bound */
	unbind(self);
	all_gone(_metadata, self);
	unpinned(_metadata, self);
}

/*
 * No IOMMU_DESTROY at all: /dev/iommu closed first, everything still alive (the device and the
 * vEVENTQ hold the context), then the vEVENTQ's fd, then the device's. The context goes with its
 * last holder, with every object; the device can then be bound again.
 */
TEST_F(nested, destroy_close_iommufd_first)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	int devfd, fd;

	ASSERT_EQ(0, veventq_alloc(self));
	close_fd(&self->iommufd);
	close_fd(&self->veventq_fd);
	if (self->pin0 >= 0)
		EXPECT_EQ(self->pin0 + (long)(GPA_SIZE >> 10), proc_kb("/proc/self/status", "VmPin"));
	unbind(self);
	unpinned(_metadata, self);

	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	devfd = open(cdev_path, O_RDWR);
	ASSERT_LE(0, devfd) TH_LOG("open %s again: %s", cdev_path, strerror(errno));
	bind.iommufd = fd;
	ASSERT_EQ(0, ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		TH_LOG("bind after the context went: %s", strerror(errno));
	close(devfd);
	close(fd);
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
