// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: dma-buf areas (IOMMU_IOAS_MAP_FILE on the selftest exporter's dma-buf,
 * IOMMU_TEST_OP_DMABUF_GET / DMABUF_REVOKE) and their revoke.
 *
 * A revoke must take back every domain mapping of the dma-buf, including one being made while it
 * runs: upstream holds the pages mutex from recording a mapping to mapping it, and its revoke
 * takes the same mutex. The revoke_during_* tests force a revoke into that window. Our test build
 * has a pause point there (/sys/kernel/debug/iommufd_rs/pause_dmabuf_map: write 1 to arm it, the
 * next dma-buf map into a domain waits there and reads 2, write 0 to let it go); the test arms
 * it, starts the map (or the attach that fills a domain), and once the map is paused starts the
 * revoke and gives it up to REVOKE_WAIT_MS to finish before it lets the map go. Then the same
 * race runs ROUNDS times unforced; on the C module, which has no pause point, only those.
 *
 * What is mapped is read back from the mock domain: once the area is unmapped, a user buffer
 * mapped at the same IOVA must land in the domain (IOMMU_TEST_OP_MD_CHECK_MAP). A mapping the
 * revoke missed is still there, so that map fails (the page table answers EADDRINUSE) or the
 * check does. Upstream behaviour: both modules must pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

#define PAUSE_PATH "/sys/kernel/debug/iommufd_rs/pause_dmabuf_map"
#define LEN (4 * PAGE)
#define REVOKE_WAIT_MS 1000
#define PAUSE_WAIT_MS 5000
#define ROUNDS 100

static int dmabuf_get(int fd, __u32 len, int *dfd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DMABUF_GET,
		.dmabuf_get = { .length = len, .open_flags = O_CLOEXEC },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	*dfd = ret;
	return ret < 0 ? ret : 0;
}

static int dmabuf_revoke(int fd, int dfd, int revoked)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DMABUF_REVOKE,
		.dmabuf_revoke = { .dmabuf_fd = dfd, .revoked = revoked },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static int map_file_at(int fd, __u32 ioas, int mfd, __u64 len, __u64 iova)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.fd = mfd,
		.start = 0,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);
}

/* The pause point's state (0 idle, 1 armed, 2 paused); -1 without one. */
static int pause_read(void)
{
	char buf[16] = "";
	int pfd = open(PAUSE_PATH, O_RDONLY);
	ssize_t n;

	if (pfd < 0)
		return -1;
	n = read(pfd, buf, sizeof(buf) - 1);
	close(pfd);
	return n > 0 ? atoi(buf) : -1;
}

static int pause_write(int v)
{
	char c = '0' + v;
	int pfd = open(PAUSE_PATH, O_WRONLY);
	ssize_t n;

	if (pfd < 0)
		return -1;
	n = write(pfd, &c, 1);
	close(pfd);
	return n == 1 ? 0 : -1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits until *flag is set or @ms pass; whether it was set. */
static int wait_flag(atomic_int *flag, double ms)
{
	double end = now_ms() + ms;

	while (!atomic_load(flag)) {
		if (now_ms() > end)
			return 0;
		usleep(1000);
	}
	return 1;
}

/* One operation on another thread: the map (or attach) and the revoke. */
struct op {
	int fd, dfd;
	__u32 ioas;
	int attach; /* 0: MAP_FILE of dfd at AP; 1: attach a mock device (fills a domain) */
	int revoke;
	int ret, err;
	__u32 stdev, hwpt;
	atomic_int done;
};

static void *run_op(void *arg)
{
	struct op *op = arg;

	if (op->revoke)
		op->ret = dmabuf_revoke(op->fd, op->dfd, 1);
	else if (op->attach)
		op->ret = mock_domain(op->fd, op->ioas, &op->stdev, &op->hwpt, NULL);
	else
		op->ret = map_file_at(op->fd, op->ioas, op->dfd, LEN, AP);
	op->err = errno;
	atomic_store(&op->done, 1);
	return NULL;
}

FIXTURE(dmabuf)
{
	int fd;
	__u32 ioas;
	void *buf;
};

FIXTURE_SETUP(dmabuf)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	self->buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
}

FIXTURE_TEARDOWN(dmabuf)
{
	if (pause_read() > 0)
		pause_write(0);
	munmap(self->buf, LEN);
	close(self->fd);
}

/*
 * One race of a revoke with a map of a fresh dma-buf (@attach = 0: MAP_FILE into @ioas, whose
 * domain is @hwpt; 1: MAP_FILE first, then a mock device's attach fills a new domain), forced
 * into the window between recording the mapping and mapping it when @forced. Afterwards no
 * mapping of the dma-buf may be left in the domain. *@revoked_first is set when, unforced, the
 * revoke came before MAP_FILE attached to the dma-buf.
 */
static void race(struct __test_metadata *_metadata, FIXTURE_DATA(dmabuf) *self, int attach,
		 __u32 hwpt, int forced, int *revoked_first)
{
	struct op map = { .fd = self->fd, .ioas = self->ioas, .attach = attach };
	struct op rev = { .fd = self->fd, .revoke = 1 };
	pthread_t tm, tr;
	__u64 unmapped = 0;
	int dfd, in_window = 0;

	ASSERT_EQ(0, dmabuf_get(self->fd, LEN, &dfd));
	map.dfd = rev.dfd = dfd;
	if (attach)
		ASSERT_EQ(0, map_file_at(self->fd, self->ioas, dfd, LEN, AP));
	if (forced)
		ASSERT_EQ(0, pause_write(1));
	ASSERT_EQ(0, pthread_create(&tm, NULL, run_op, &map));
	if (forced) {
		double end = now_ms() + PAUSE_WAIT_MS;

		while (pause_read() != 2 && !atomic_load(&map.done) && now_ms() < end)
			usleep(1000);
		ASSERT_EQ(2, pause_read()) TH_LOG("the map never reached the pause point");
	}
	ASSERT_EQ(0, pthread_create(&tr, NULL, run_op, &rev));
	if (forced) {
		/* Ours takes the revoke only after the map: it waits the whole time. */
		in_window = wait_flag(&rev.done, REVOKE_WAIT_MS);
		ASSERT_EQ(0, pause_write(0));
	}
	pthread_join(tm, NULL);
	pthread_join(tr, NULL);
	if (forced)
		TH_LOG("revoke %s inside the window", in_window ? "completed" : "waited");
	ASSERT_EQ(0, rev.ret) TH_LOG("revoke: errno %d", rev.err);
	/* Unforced, the revoke may come first: then MAP_FILE finds the dma-buf revoked. */
	if (!forced && !attach && map.ret == -1 && map.err == ENODEV) {
		*revoked_first = 1;
	} else {
		ASSERT_EQ(0, map.ret) TH_LOG("map/attach: errno %d", map.err);
		/* The area stays until unmapped; with it, whatever the domain still maps there. */
		ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, LEN, &unmapped));
		ASSERT_EQ(LEN, unmapped);
	}
	if (attach)
		hwpt = map.hwpt;
	close(dfd);
	EXPECT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, LEN, AP))
		TH_LOG("a mapping the revoke missed is still in the domain: errno %d", errno);
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, LEN, self->buf));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, LEN, NULL));
	if (attach)
		ASSERT_EQ(0, destroy(self->fd, map.stdev));
}

static void race_rounds(struct __test_metadata *_metadata, FIXTURE_DATA(dmabuf) *self,
			int attach)
{
	__u32 stdev = 0, hwpt = 0;
	int forced = pause_read() >= 0;
	int revoked_first = 0, n_first = 0;

	if (!forced)
		TH_LOG("no pause point (%s): the race runs unforced only",
		       impl_is_rust() ? "ours, without its test build?" : "C module");
	/* The forced round first, where there is a pause point; then ROUNDS unforced ones. */
	for (int i = !forced; i <= ROUNDS; i++) {
		if (!attach)
			ASSERT_EQ(0, mock_domain(self->fd, self->ioas, &stdev, &hwpt, NULL));
		revoked_first = 0;
		race(_metadata, self, attach, hwpt, i == 0, &revoked_first);
		n_first += revoked_first;
		if (!attach)
			ASSERT_EQ(0, destroy(self->fd, stdev));
		if (_metadata->exit_code)
			return;
	}
	if (!attach)
		TH_LOG("unforced: in %d of %d rounds the revoke came before the map", n_first,
		       ROUNDS);
}

/* A revoke while MAP_FILE maps the dma-buf into the IOAS's domain. */
TEST_F(dmabuf, revoke_during_map)
{
	race_rounds(_metadata, self, 0);
}

/* A revoke while attaching a device fills the new domain with an area of the dma-buf. */
TEST_F(dmabuf, revoke_during_attach)
{
	race_rounds(_metadata, self, 1);
}

/* A COPY of a dma-buf area is mapped in the other IOAS's domain, and a revoke takes it back too. */
TEST_F(dmabuf, revoke_unmaps_copies)
{
	__u32 ioas2, hwpt, hwpt2;
	__u64 dst = AP;
	int dfd;

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas, NULL, &hwpt, NULL));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, NULL, &hwpt2, NULL));
	ASSERT_EQ(0, dmabuf_get(self->fd, LEN, &dfd));
	ASSERT_EQ(0, map_file_at(self->fd, self->ioas, dfd, LEN, AP));
	ASSERT_EQ(0, copy(self->fd, ioas2, &dst, self->ioas, AP, LEN,
			  RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	ASSERT_EQ(0, dmabuf_revoke(self->fd, dfd, 1));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, AP, LEN, NULL));
	ASSERT_EQ(0, unmap(self->fd, ioas2, AP, LEN, NULL));
	close(dfd);
	ASSERT_EQ(0, map_fixed(self->fd, self->ioas, self->buf, LEN, AP));
	ASSERT_EQ(0, map_fixed(self->fd, ioas2, self->buf, LEN, AP));
	EXPECT_EQ(0, check_map(self->fd, hwpt, AP, LEN, self->buf));
	EXPECT_EQ(0, check_map(self->fd, hwpt2, AP, LEN, self->buf));
}

TEST_HARNESS_MAIN
