// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-rs selftests: a bounded-time concurrency stress of one /dev/iommu fd. Worker threads
 * map, unmap and copy between a few shared IOASes and swap them for fresh ones (IOMMU_IOAS_ALLOC
 * and IOMMU_DESTROY); a device thread creates mock devices on them, allocates HWPTs, replaces
 * attachments and destroys it all; an access thread pins, unpins, reads and writes through
 * emulated accesses and moves them between IOASes. Racing makes many calls fail with errnos that
 * are listed per op below; any other errno, wrong data, a crash or a hang fails the test. At the
 * end everything must unmap and destroy cleanly, no object may be left, no page may stay pinned
 * (IOMMU_TEST_OP_MD_CHECK_REFS and VmPin) and the buffer must be unchanged.
 *
 * Every IOVA in the window [ID_BASE, ID_BASE + BUF_LEN) maps the buffer at the same offset, in
 * every IOAS (fixed maps and same-IOVA copies only), so pins and reads there can be checked.
 * Maps and copies without a fixed IOVA go below the window, kept there by IOMMU_IOAS_ALLOW_IOVAS.
 *
 * Two variants. mixed destroys a swapped-out IOAS only once every thread has finished the op it
 * was in (a grace period), so IOMMU_DESTROY races object users but never an ioctl still using the
 * id. destroy_race destroys it at once, under the ioctls of the other threads.
 *
 * Upstream stalls for 60 s when a destroy that waits for an object's short-term users (wait_cnt)
 * races one: iommufd_put_object() wakes destroy_wait with wake_up_interruptible_all(), which does
 * not wake the uninterruptible wait_event_timeout() in iommufd_object_dec_wait(), so the waiter
 * sleeps the whole timeout. Here that is IOMMU_DESTROY of an IOAS under another thread's ioctl
 * (destroy_race) and closing an access fd while an unmap tells the access to unpin (both). Such a
 * stall, an IOAS destroy or access close that succeeds after STALL_MIN..STALL_MAX s, is reported
 * and tolerated; any other op slower than SLOW_OP fails the test, as does a thread that does not
 * stop within JOIN_GRACE s of the deadline (its kernel stack is printed).
 *
 * device_lookup_vs_unbind (below) races lookups of a device by ID with the device's unbind.
 *
 * STRESS_SECONDS (default 8, at most MAX_SECONDS) is the run time of both variants together,
 * STRESS_SEED the seed of every thread's random stream (the schedule itself is not reproducible).
 * Upstream behaviour: both modules must pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include "iommufd_test.h"

#include "kselftest_harness.h"
#include "common.h"

/* The identity window: IOVA ID_BASE + off is buf + off in every IOAS. */
#define ID_BASE ((__u64)1 << 30)
#define CHUNK (8 * PAGE)
#define NCHUNKS 64
#define NPAGES (NCHUNKS * CHUNK / PAGE)
#define BUF_LEN (NCHUNKS * CHUNK)
#define NSLOTS 3
#define NWORKERS 4
#define NTHREADS (NWORKERS + 2)
#define MAX_RETIRED 1024
#define MAX_ITEMS 16
#define RW_MAX (16 * PAGE)
#define DEFAULT_SECONDS 8.0
#define MAX_SECONDS 60
/*
 * How long each thread gets to notice the deadline and clean up before it counts as a hang: more
 * than upstream's 60 s destroy_wait stall.
 */
#define JOIN_GRACE 90
/* An IOAS destroy or access close that succeeded after this long is upstream's 60 s stall. */
#define STALL_MIN 55.0
#define STALL_MAX 75.0
#define MAX_ERRNO 134
#define MAX_REPORTS 20
/* An ioctl taking longer than this (seconds) is reported. */
#define SLOW_OP 2.0
#define DEFAULT_SEED 0x10aa5eedULL

enum op {
	OP_MAP,
	OP_MAP_ANY,
	OP_UNMAP,
	OP_COPY,
	OP_IOAS_ALLOC,
	OP_ALLOW_IOVAS,
	OP_IOAS_DESTROY,
	OP_MOCK_DOMAIN,
	OP_HWPT_ALLOC,
	OP_REPLACE,
	OP_HWPT_DESTROY,
	OP_DEV_DESTROY,
	OP_ACCESS_CREATE,
	OP_ACCESS_PAGES,
	OP_ACCESS_UNPIN,
	OP_ACCESS_RW,
	OP_ACCESS_REPLACE,
	OP_ACCESS_CLOSE,
	/* Not an ioctl: an ACCESS_RW read that returned other bytes than the buffer's (errno 0). */
	OP_RW_DATA,
	NOPS,
};

static const char *const op_name[NOPS] = {
	[OP_MAP] = "map",
	[OP_MAP_ANY] = "map_any_iova",
	[OP_UNMAP] = "unmap",
	[OP_COPY] = "copy",
	[OP_IOAS_ALLOC] = "ioas_alloc",
	[OP_ALLOW_IOVAS] = "allow_iovas",
	[OP_IOAS_DESTROY] = "ioas_destroy",
	[OP_MOCK_DOMAIN] = "mock_domain",
	[OP_HWPT_ALLOC] = "hwpt_alloc",
	[OP_REPLACE] = "mock_domain_replace",
	[OP_HWPT_DESTROY] = "hwpt_destroy",
	[OP_DEV_DESTROY] = "stdev_destroy",
	[OP_ACCESS_CREATE] = "access_create",
	[OP_ACCESS_PAGES] = "access_pages",
	[OP_ACCESS_UNPIN] = "access_unpin",
	[OP_ACCESS_RW] = "access_rw",
	[OP_ACCESS_REPLACE] = "access_replace_ioas",
	[OP_ACCESS_CLOSE] = "access_close",
	[OP_RW_DATA] = "access_rw_data",
};

/*
 * The errnos racing may cause, per op; 0 ends a list. Why each one is there:
 * ENOENT: a stale or reused id, or an IOVA range another thread unmapped (or never covered by
 *   areas, for unmap, copy, pin and rw).
 * EEXIST: a fixed IOVA already mapped.  ENOSPC: no room left below the identity window.
 * EPERM: writing (copy with WRITEABLE, a write pin, an rw write) through a read-only map.
 * EBUSY: destroying an object still in use (an IOAS with a device, HWPT or access on it; an
 *   attached HWPT); replacing an access that races its own detach.
 * EINVAL: an id of the wrong kind after reuse (HWPT_ALLOC/REPLACE on a non-IOAS, non-paging
 *   object); pinning or reading an area that an unmap is taking away (prevent_access).
 * EADDRINUSE: attaching a domain to an IOAS that a stale-id non-fixed map put below the aperture
 *   before ALLOW_IOVAS was set.
 * Destroying the device or a detached HWPT, allocating an IOAS and setting its allowed IOVAs
 * never fail.
 */
static const int expected[NOPS][8] = {
	[OP_MAP] = { ENOENT, EEXIST },
	[OP_MAP_ANY] = { ENOENT, ENOSPC },
	[OP_UNMAP] = { ENOENT, EBUSY },
	[OP_COPY] = { ENOENT, EEXIST, ENOSPC, EPERM },
	[OP_IOAS_DESTROY] = { EBUSY },
	[OP_MOCK_DOMAIN] = { ENOENT, EINVAL, EADDRINUSE },
	[OP_HWPT_ALLOC] = { ENOENT, EINVAL, EADDRINUSE },
	[OP_REPLACE] = { ENOENT, EINVAL, EADDRINUSE },
	[OP_HWPT_DESTROY] = { EBUSY },
	[OP_ACCESS_CREATE] = { ENOENT },
	[OP_ACCESS_PAGES] = { ENOENT, EINVAL, EPERM },
	[OP_ACCESS_UNPIN] = { ENOENT },
	[OP_ACCESS_RW] = { ENOENT, EINVAL, EPERM },
	[OP_ACCESS_REPLACE] = { ENOENT, EBUSY },
};

struct stats {
	double max_time[NOPS];
	/* Ops slower than SLOW_OP; destroys and closes that sat out upstream's 60 s wait. */
	unsigned long slow, stalls;
	unsigned long ok[NOPS];
	unsigned long err[NOPS][MAX_ERRNO + 1];
};

struct shared {
	int fd;
	unsigned char *buf;
	/* The buffer's bytes as filled: nothing may change them. */
	unsigned char *pattern;
	_Atomic __u32 slot[NSLOTS];
	/* destroy_race: destroy swapped-out IOASes at once instead of after a grace period. */
	int race;
	struct worker *threads;
	_Atomic int stop;
	_Atomic unsigned long unexpected;
	_Atomic __u32 max_id;
	pthread_mutex_t lock;
	/*
	 * IOASes out of their slot, not destroyed yet: waiting for their grace period or busy (a
	 * device, HWPT or access is on them); under lock.
	 */
	struct retired {
		__u32 id;
		/* Every thread's epoch when it was swapped out. */
		unsigned long epochs[NTHREADS];
	} retired[MAX_RETIRED];
	int nretired;
	/* Reports of unexpected results printed so far; under lock. */
	int nreports;
};

struct worker {
	struct shared *sh;
	pthread_t thread;
	char name[16];
	__u64 rng;
	/* The op in progress, -1 between ops: what a hung thread was doing. */
	_Atomic int cur_op;
	/* Bumped after every op: a thread past the epoch it had holds no id it read before. */
	_Atomic unsigned long epoch;
	/* For /proc/self/task/<tid>/stack when it hangs. */
	_Atomic pid_t tid;
	struct stats st;
};

static __u64 next_rand(struct worker *w)
{
	/* splitmix64 */
	__u64 z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd(struct worker *w, unsigned int n)
{
	return next_rand(w) % n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_id(struct shared *sh, __u32 id)
{
	__u32 cur = atomic_load(&sh->max_id);

	while (id > cur && !atomic_compare_exchange_weak(&sh->max_id, &cur, id))
		;
}

static int is_expected(int op, int err)
{
	for (int i = 0; i < 8 && expected[op][i]; i++)
		if (expected[op][i] == err)
			return 1;
	return 0;
}

/* Count one result; report it if it is not one of the op's expected errnos. */
static int record(struct worker *w, int op, int ret, int err, const char *fmt, ...)
	__printf(5, 6);

static int record(struct worker *w, int op, int ret, int err, const char *fmt, ...)
{
	struct shared *sh = w->sh;
	va_list ap;

	if (!ret) {
		w->st.ok[op]++;
		return 0;
	}
	w->st.err[op][err > 0 && err <= MAX_ERRNO ? err : 0]++;
	if (op != OP_RW_DATA && is_expected(op, err))
		return ret;
	atomic_fetch_add(&sh->unexpected, 1);
	pthread_mutex_lock(&sh->lock);
	if (sh->nreports++ < MAX_REPORTS) {
		printf("# %s: unexpected %s failure: errno %d (%s): ", w->name, op_name[op], err,
		       err ? strerror(err) : "data mismatch");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		fflush(stdout);
	}
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

static void slow(struct worker *w, int op, double secs, int err, const char *fmt, ...)
	__printf(5, 6);

/*
 * Report an op that took more than SLOW_OP seconds: it fails the test, unless it is upstream's
 * 60 s destroy_wait stall.
 */
static void slow(struct worker *w, int op, double secs, int err, const char *fmt, ...)
{
	struct shared *sh = w->sh;
	int stall = (op == OP_IOAS_DESTROY || op == OP_ACCESS_CLOSE) && !err &&
		    secs >= STALL_MIN && secs <= STALL_MAX;
	va_list ap;

	if (stall)
		w->st.stalls++;
	else
		w->st.slow++;
	pthread_mutex_lock(&sh->lock);
	printf("# %s: %s took %.1f s (errno %d)%s: ", w->name, op_name[op], secs, err,
	       stall ? ", the 60 s destroy_wait timeout (upstream's missed wakeup)" : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&sh->lock);
}

/* Run one ioctl as op, with errno captured right after it; report it if it took too long. */
#define DO(w, op, call, fmt, ...)                                              \
	({                                                                     \
		double __t0 = now(), __dt;                                     \
		int __r, __e;                                                  \
		atomic_store(&(w)->cur_op, op);                                \
		__r = (call);                                                  \
		__e = __r ? errno : 0;                                         \
		atomic_store(&(w)->cur_op, -1);                                \
		__dt = now() - __t0;                                           \
		if (__dt > (w)->st.max_time[op])                               \
			(w)->st.max_time[op] = __dt;                           \
		if (__dt > SLOW_OP)                                            \
			slow(w, op, __dt, __e, fmt, ##__VA_ARGS__);            \
		record(w, op, __r, __e, fmt, ##__VA_ARGS__);                   \
	})

static int allow_iovas(int fd, __u32 ioas, __u64 start, __u64 last)
{
	struct iommu_iova_range range = { .start = start, .last = last };
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
	};

	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

static __u32 any_slot(struct worker *w)
{
	return atomic_load(&w->sh->slot[rnd(w, NSLOTS)]);
}

/*
 * A range of the buffer: mostly 1..max whole chunks, sometimes pages, so areas do not always line
 * up.
 */
static void pick_range(struct worker *w, __u64 *off, __u64 *len, unsigned int max)
{
	if (rnd(w, 4)) {
		unsigned int n = 1 + rnd(w, max);

		*off = rnd(w, NCHUNKS - n + 1) * CHUNK;
		*len = n * CHUNK;
	} else {
		unsigned int n = 1 + rnd(w, 4 * max);

		*off = rnd(w, NPAGES - n + 1) * PAGE;
		*len = n * PAGE;
	}
}

/* A new IOAS whose non-fixed IOVAs stay below the identity window. */
static int new_ioas(struct worker *w, __u32 *id)
{
	int fd = w->sh->fd;

	if (DO(w, OP_IOAS_ALLOC, ioas_alloc(fd, id), "%s", ""))
		return -1;
	note_id(w->sh, *id);
	if (DO(w, OP_ALLOW_IOVAS, allow_iovas(fd, *id, AP, ID_BASE - 1), "ioas %u", *id)) {
		destroy(fd, *id);
		return -1;
	}
	return 0;
}

/* Keep an IOAS for destroying later; 0 if the list is full. */
static int retire(struct shared *sh, __u32 id)
{
	struct retired *r;
	int ret = 0;

	pthread_mutex_lock(&sh->lock);
	if (sh->nretired < MAX_RETIRED) {
		r = &sh->retired[sh->nretired++];
		r->id = id;
		for (int i = 0; i < NTHREADS; i++)
			r->epochs[i] = atomic_load(&sh->threads[i].epoch);
		ret = 1;
	}
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

/* Take a retired IOAS that no thread can still be using in an ioctl (any in destroy_race). */
static __u32 take_retired(struct worker *w)
{
	struct shared *sh = w->sh;
	__u32 id = 0;

	pthread_mutex_lock(&sh->lock);
	for (int n = 0; n < sh->nretired && !id; n++) {
		int k = (n + rnd(w, sh->nretired)) % sh->nretired, ready = 1;
		struct retired *r = &sh->retired[k];

		for (int i = 0; i < NTHREADS && !sh->race; i++)
			if (atomic_load(&sh->threads[i].epoch) <= r->epochs[i] &&
			    &sh->threads[i] != w)
				ready = 0;
		if (ready) {
			id = r->id;
			*r = sh->retired[--sh->nretired];
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return id;
}

/*
 * Swap a fresh IOAS into a slot; destroy the one it held now (destroy_race) or once its grace
 * period is over, and destroy one earlier IOAS whose time has come.
 */
static void churn_ioas(struct worker *w)
{
	struct shared *sh = w->sh;
	__u32 id, old;
	__u64 off, len, iova;

	old = take_retired(w);
	if (old && DO(w, OP_IOAS_DESTROY, destroy(sh->fd, old), "retired ioas %u", old))
		retire(sh, old);
	if (sh->nretired >= MAX_RETIRED - NTHREADS || new_ioas(w, &id))
		return;
	/* Sometimes the new IOAS comes with something already mapped. */
	if (rnd(w, 2)) {
		pick_range(w, &off, &len, 4);
		iova = ID_BASE + off;
		DO(w, OP_MAP, map(sh->fd, id, sh->buf + off, len, &iova,
				  RW | IOMMU_IOAS_MAP_FIXED_IOVA),
		   "new ioas %u iova %#llx len %#llx", id, iova, len);
	}
	old = atomic_exchange(&sh->slot[rnd(w, NSLOTS)], id);
	if (sh->race && !DO(w, OP_IOAS_DESTROY, destroy(sh->fd, old), "ioas %u", old))
		return;
	if (!retire(sh, old))
		record(w, OP_IOAS_DESTROY, -1, ENOSPC, "retired list full, ioas %u leaks", old);
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	int fd = sh->fd;

	atomic_store(&w->tid, gettid());

	for (; !atomic_load(&sh->stop); atomic_fetch_add(&w->epoch, 1)) {
		unsigned int r = rnd(w, 1000);
		__u64 off, len, iova;
		__u32 ioas = any_slot(w), flags;

		if (r < 320) {
			/* A fixed map in the identity window; a tenth of them read-only. */
			pick_range(w, &off, &len, 4);
			iova = ID_BASE + off;
			flags = (rnd(w, 10) ? RW : IOMMU_IOAS_MAP_READABLE) |
				IOMMU_IOAS_MAP_FIXED_IOVA;
			DO(w, OP_MAP, map(fd, ioas, sh->buf + off, len, &iova, flags),
			   "ioas %u iova %#llx len %#llx flags %#x", ioas, iova, len, flags);
		} else if (r < 400) {
			pick_range(w, &off, &len, 4);
			iova = 0;
			DO(w, OP_MAP_ANY, map(fd, ioas, sh->buf + off, len, &iova, RW),
			   "ioas %u len %#llx", ioas, len);
		} else if (r < 580) {
			pick_range(w, &off, &len, 4);
			DO(w, OP_UNMAP, unmap(fd, ioas, ID_BASE + off, len, NULL),
			   "ioas %u iova %#llx len %#llx", ioas, ID_BASE + off, len);
		} else if (r < 610) {
			/* Everything below the window: what map_any and copy put there. */
			DO(w, OP_UNMAP, unmap(fd, ioas, 0, ID_BASE, NULL),
			   "ioas %u below the window", ioas);
		} else if (r < 620) {
			DO(w, OP_UNMAP, unmap(fd, ioas, 0, UINT64_MAX, NULL), "ioas %u all", ioas);
		} else if (r < 990) {
			__u32 src = any_slot(w);

			pick_range(w, &off, &len, 1);
			/* Same IOVA in the window, or anywhere below it. */
			flags = RW;
			iova = 0;
			if (rnd(w, 10) < 7) {
				flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
				iova = ID_BASE + off;
			}
			DO(w, OP_COPY, copy(fd, ioas, &iova, src, ID_BASE + off, len, flags),
			   "ioas %u <- %u iova %#llx len %#llx flags %#x", ioas, src,
			   ID_BASE + off, len, flags);
		} else {
			churn_ioas(w);
		}
	}
	return NULL;
}

/*
 * Mock devices: attach to an IOAS, allocate HWPTs on the device for any IOAS, move between IOASes
 * and HWPTs, destroy HWPTs (busy while attached), then destroy the device and its HWPTs.
 */
static void *device_thread(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	int fd = sh->fd;

	atomic_store(&w->tid, gettid());

	while (!atomic_load(&sh->stop)) {
		__u32 stdev, auto_hwpt, idev, pt = any_slot(w);
		__u32 hwpts[2];
		int nh = 0, steps = 1 + rnd(w, 8), ret;

		ret = DO(w, OP_MOCK_DOMAIN, mock_domain(fd, pt, &stdev, &auto_hwpt, &idev), "pt %u",
			 pt);
		atomic_fetch_add(&w->epoch, 1);
		if (ret)
			continue;
		note_id(sh, stdev);
		note_id(sh, auto_hwpt);
		note_id(sh, idev);
		for (; steps-- && !atomic_load(&sh->stop); atomic_fetch_add(&w->epoch, 1)) {
			unsigned int r = rnd(w, 10);

			if (r < 3 && nh < 2) {
				__u32 hwpt;

				pt = any_slot(w);
				if (!DO(w, OP_HWPT_ALLOC,
					hwpt_alloc(fd, idev, pt, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
						   &hwpt),
					"idev %u pt %u", idev, pt)) {
					note_id(sh, hwpt);
					hwpts[nh++] = hwpt;
				}
			} else if (r < 8) {
				/*
				 * An IOAS (through an auto HWPT) or one of our HWPTs. Not an auto
				 * HWPT's id: once detached it is gone and the id may be reused.
				 */
				pt = rnd(w, 2) || !nh ? any_slot(w) : hwpts[rnd(w, nh)];
				DO(w, OP_REPLACE, replace(fd, stdev, pt, &pt), "stdev %u pt %u",
				   stdev, pt);
			} else if (nh) {
				int i = rnd(w, nh);

				if (!DO(w, OP_HWPT_DESTROY, destroy(fd, hwpts[i]), "hwpt %u",
					hwpts[i]))
					hwpts[i] = hwpts[--nh];
			}
		}
		DO(w, OP_DEV_DESTROY, destroy(fd, stdev), "stdev %u", stdev);
		/* Nothing is attached to them any more. */
		while (nh--)
			DO(w, OP_DEV_DESTROY, destroy(fd, hwpts[nh]), "hwpt %u after stdev",
			   hwpts[nh]);
	}
	return NULL;
}

/* An access fd's state in the access thread: its pins, and a buffer for ACCESS_RW. */
struct access_state {
	int afd;
	int nitems;
	__u32 items[MAX_ITEMS];
	unsigned char *tmp;
};

static void access_pin(struct worker *w, struct access_state *a, __u64 off, __u64 len)
{
	__u32 flags = rnd(w, 4) ? 0 : MOCK_FLAGS_ACCESS_WRITE, id;
	int fd = w->sh->fd;

	if (a->nitems == MAX_ITEMS) {
		int i = rnd(w, a->nitems);

		DO(w, OP_ACCESS_UNPIN, unpin(fd, a->afd, a->items[i]), "item %u", a->items[i]);
		a->items[i] = a->items[--a->nitems];
	}
	/* The module checks the pages it pinned are the buffer's at the same offset. */
	if (!DO(w, OP_ACCESS_PAGES,
		access_pages(fd, a->afd, ID_BASE + off, len, w->sh->buf + off, flags, &id),
		"iova %#llx len %#llx flags %#x", ID_BASE + off, len, flags))
		a->items[a->nitems++] = id;
}

static void access_unpin(struct worker *w, struct access_state *a)
{
	int i = rnd(w, a->nitems);

	/* ENOENT if an unmap already took it. */
	DO(w, OP_ACCESS_UNPIN, unpin(w->sh->fd, a->afd, a->items[i]), "item %u", a->items[i]);
	a->items[i] = a->items[--a->nitems];
}

/* Read and compare with the buffer, or write back the bytes that are there. */
static void access_read_write(struct worker *w, struct access_state *a, __u64 off, __u64 len)
{
	struct shared *sh = w->sh;
	__u32 flags = rnd(w, 2) ? MOCK_ACCESS_RW_SLOW_PATH : 0;
	__u64 iova = ID_BASE + off;

	if (rnd(w, 3)) {
		memset(a->tmp, 0xa5, len);
		if (!DO(w, OP_ACCESS_RW, access_rw(sh->fd, a->afd, iova, a->tmp, len, flags),
			"read iova %#llx len %#llx flags %#x", iova, len, flags) &&
		    memcmp(a->tmp, sh->pattern + off, len))
			record(w, OP_RW_DATA, -1, 0, "read iova %#llx len %#llx flags %#x", iova,
			       len, flags);
		return;
	}
	/* A write through a wrong mapping shows in the final check of the buffer. */
	memcpy(a->tmp, sh->pattern + off, len);
	flags |= MOCK_ACCESS_RW_WRITE;
	DO(w, OP_ACCESS_RW, access_rw(sh->fd, a->afd, iova, a->tmp, len, flags),
	   "write iova %#llx len %#llx flags %#x", iova, len, flags);
}

/*
 * Emulated pinning accesses: pin ranges of the identity window, unpin them, read them and write
 * back the same bytes, move to another IOAS, close the fd (which unpins what is left).
 */
static void *access_thread(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct access_state a = { .tmp = malloc(RW_MAX) };

	atomic_store(&w->tid, gettid());
	if (!a.tmp)
		return NULL;
	while (!atomic_load(&sh->stop)) {
		__u32 ioas = any_slot(w);
		int steps = 1 + rnd(w, 24), ret;

		a.nitems = 0;
		ret = DO(w, OP_ACCESS_CREATE,
			 create_access(sh->fd, ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
				       &a.afd),
			 "ioas %u", ioas);
		atomic_fetch_add(&w->epoch, 1);
		if (ret)
			continue;
		for (; steps-- && !atomic_load(&sh->stop); atomic_fetch_add(&w->epoch, 1)) {
			unsigned int r = rnd(w, 10);
			__u64 off, len;

			pick_range(w, &off, &len, 2);
			if (len > RW_MAX)
				len = RW_MAX;
			/* Sometimes not page aligned at either end. */
			if (!rnd(w, 4)) {
				__u64 head = rnd(w, PAGE), tail = rnd(w, PAGE);

				off += head;
				len = len > head + tail ? len - head - tail : 1;
			}
			if (r < 4) {
				access_pin(w, &a, off, len);
			} else if (r < 6 && a.nitems) {
				access_unpin(w, &a);
			} else if (r < 9) {
				access_read_write(w, &a, off, len);
			} else {
				ioas = any_slot(w);
				/* A move unpins everything the access had pinned. */
				if (!DO(w, OP_ACCESS_REPLACE, access_replace(sh->fd, a.afd, ioas),
					"ioas %u", ioas))
					a.nitems = 0;
			}
		}
		/*
		 * Destroys the access. Upstream waits here for unmaps still telling it to unpin;
		 * a module that does not, frees the driver's data under them.
		 */
		DO(w, OP_ACCESS_CLOSE, close(a.afd), "access fd %d", a.afd);
	}
	free(a.tmp);
	return NULL;
}

static double run_seconds(void)
{
	const char *s = getenv("STRESS_SECONDS");
	double secs = s ? strtod(s, NULL) : DEFAULT_SECONDS;

	if (!(secs > 0))
		secs = DEFAULT_SECONDS;
	return secs > MAX_SECONDS ? MAX_SECONDS : secs;
}

static unsigned long long run_seed(void)
{
	const char *s = getenv("STRESS_SEED");

	return s ? strtoull(s, NULL, 0) : DEFAULT_SEED;
}

/* "# op: N ok, M failed (ENOENT 12, EEXIST 3)" for every op that ran. */
static void print_stats(const struct stats *st)
{
	for (int op = 0; op < NOPS; op++) {
		unsigned long failed = 0;
		int first = 1;

		for (int e = 0; e <= MAX_ERRNO; e++)
			failed += st->err[op][e];
		if (!st->ok[op] && !failed)
			continue;
		printf("# %s: %lu ok, %lu failed", op_name[op], st->ok[op], failed);
		for (int e = 0; e <= MAX_ERRNO; e++) {
			const char *name;

			if (!st->err[op][e])
				continue;
			name = e ? strerrorname_np(e) : "mismatch";
			printf("%s%s %lu", first ? " (" : ", ", name ? name : "?", st->err[op][e]);
			first = 0;
		}
		printf("%s, slowest %.3f s\n", first ? "" : ")", st->max_time[op]);
	}
	fflush(stdout);
}

/* What a hung thread is doing in the kernel. */
static void print_kernel_stack(struct worker *w)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", (int)atomic_load(&w->tid));
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("#   %s", line);
	fclose(f);
}

static void add_stats(struct stats *total, const struct stats *st)
{
	total->slow += st->slow;
	total->stalls += st->stalls;
	for (int op = 0; op < NOPS; op++) {
		if (st->max_time[op] > total->max_time[op])
			total->max_time[op] = st->max_time[op];
		total->ok[op] += st->ok[op];
		for (int e = 0; e <= MAX_ERRNO; e++)
			total->err[op][e] += st->err[op][e];
	}
}

FIXTURE(stress)
{
	struct shared sh;
	struct worker w[NTHREADS];
};

FIXTURE_VARIANT(stress)
{
	/* Destroy swapped-out IOASes at once, under the other threads' ioctls. */
	int race;
	/* This variant's share of STRESS_SECONDS. */
	double share;
};

FIXTURE_VARIANT_ADD(stress, mixed)
{
	.race = 0,
	.share = 0.75,
};

FIXTURE_VARIANT_ADD(stress, destroy_race)
{
	.race = 1,
	.share = 0.25,
};

FIXTURE_SETUP(stress)
{
	void *p;

	memset(&self->sh, 0, sizeof(self->sh));
	memset(self->w, 0, sizeof(self->w));
	pthread_mutex_init(&self->sh.lock, NULL);
	self->sh.race = variant->race;
	self->sh.threads = self->w;
	self->sh.fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->sh.fd);
	ASSERT_EQ(0, posix_memalign(&p, HUGE, BUF_LEN));
	self->sh.buf = p;
	/* Small pages whatever the THP setting: MD_CHECK_REFS counts pins on small pages only. */
	ASSERT_EQ(0, madvise(p, BUF_LEN, MADV_NOHUGEPAGE));
	self->sh.pattern = malloc(BUF_LEN);
	ASSERT_NE(NULL, self->sh.pattern);
	for (size_t i = 0; i < BUF_LEN; i++)
		self->sh.pattern[i] = (unsigned char)(i * 13 + (i >> 12) * 7 + 1);
	memcpy(self->sh.buf, self->sh.pattern, BUF_LEN);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->sh.fd >= 0)
		close(self->sh.fd);
	free(self->sh.buf);
	free(self->sh.pattern);
}

TEST_F_TIMEOUT(stress, run, MAX_SECONDS + JOIN_GRACE + 60)
{
	static void *(*const fns[])(void *) = { device_thread, access_thread };
	struct shared *sh = &self->sh;
	unsigned long long seed = run_seed();
	double secs = run_seconds() * variant->share, start, end;
	long pin0 = vm_status("VmPin"), pin_max = pin0;
	static struct stats total;
	int fd = sh->fd, nleft;
	__u32 left[MAX_RETIRED + NSLOTS], max_id, leaked = 0;

	printf("# seed %#llx, %.1f s, %d workers + device + access thread, %d IOAS slots, %s\n",
	       seed, secs, NWORKERS, NSLOTS,
	       sh->race ? "IOASes destroyed at once" : "IOASes destroyed after a grace period");
	fflush(stdout);
	for (int i = 0; i < NSLOTS; i++) {
		__u32 id;

		ASSERT_EQ(0, ioas_alloc(fd, &id));
		ASSERT_EQ(0, allow_iovas(fd, id, AP, ID_BASE - 1));
		note_id(sh, id);
		atomic_store(&sh->slot[i], id);
	}

	for (int i = 0; i < NTHREADS; i++) {
		struct worker *w = &self->w[i];

		w->sh = sh;
		w->rng = seed ^ (0x632be59bd9b4e019ULL * (i + 1));
		atomic_store(&w->cur_op, -1);
		if (i < NWORKERS)
			snprintf(w->name, sizeof(w->name), "worker%d", i);
		else
			snprintf(w->name, sizeof(w->name), "%s",
				 i == NWORKERS ? "device" : "access");
	}
	for (int i = 0; i < NTHREADS; i++)
		ASSERT_EQ(0, pthread_create(&self->w[i].thread, NULL,
					    i < NWORKERS ? worker_thread : fns[i - NWORKERS],
					    &self->w[i]));

	start = now();
	end = start + secs;
	while (now() < end) {
		long pin = vm_status("VmPin");

		if (pin > pin_max)
			pin_max = pin;
		usleep(20000);
	}
	atomic_store(&sh->stop, 1);

	for (int i = 0; i < NTHREADS; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += JOIN_GRACE;
		if (!pthread_timedjoin_np(self->w[i].thread, NULL, &ts))
			continue;
		for (int j = 0; j < NTHREADS; j++) {
			int op = atomic_load(&self->w[j].cur_op);

			printf("# %s: %s\n", self->w[j].name,
			       j < i ? "stopped" : op >= 0 ? op_name[op] : "not in an ioctl");
			if (j >= i)
				print_kernel_stack(&self->w[j]);
		}
		printf("# %s did not stop within %d s of the deadline\n", self->w[i].name,
		       JOIN_GRACE);
		for (int j = 0; j < NTHREADS; j++)
			add_stats(&total, &self->w[j].st);
		print_stats(&total);
		/* No teardown: the buffer and the fd are still in use. */
		_exit(KSFT_FAIL);
	}
	for (int i = 0; i < NTHREADS; i++)
		add_stats(&total, &self->w[i].st);
	printf("# all threads stopped %.2f s after the deadline\n", now() - end);
	printf("# VmPin %ld kB at start, %ld kB at most\n", pin0, pin_max);
	print_stats(&total);
	if (total.stalls)
		printf("# %lu IOAS destroys or access closes sat out upstream's 60 s wait\n",
		       total.stalls);
	EXPECT_EQ(0, atomic_load(&sh->unexpected));
	/* Any other stall is a hang that happened to end. */
	EXPECT_EQ(0, total.slow);

	/* Nothing holds the IOASes now: every one unmaps everything and goes. */
	nleft = 0;
	for (int i = 0; i < sh->nretired; i++)
		left[nleft++] = sh->retired[i].id;
	for (int i = 0; i < NSLOTS; i++)
		left[nleft++] = atomic_load(&sh->slot[i]);
	printf("# %d IOASes left (%d of them out of their slot)\n", nleft, sh->nretired);
	for (int i = 0; i < nleft; i++) {
		EXPECT_EQ(0, unmap(fd, left[i], 0, UINT64_MAX, NULL))
			TH_LOG("unmap all of ioas %u: %s", left[i], strerror(errno));
		EXPECT_EQ(0, destroy(fd, left[i]))
			TH_LOG("destroy ioas %u: %s", left[i], strerror(errno));
	}
	/* No object is left behind: every id handed out is free again. */
	max_id = atomic_load(&sh->max_id);
	for (__u32 id = 1; id <= max_id + 16; id++) {
		int ret = destroy(fd, id), err = errno;

		if (ret == 0 || err != ENOENT) {
			TH_LOG("object %u was still there (destroy: %s)", id,
			       ret ? strerror(err) : "succeeded");
			leaked++;
		}
	}
	EXPECT_EQ(0, leaked);
	/* No page stays pinned, nothing stays charged, and the bytes are the ones written. */
	EXPECT_EQ(0, check_refs(fd, sh->buf, BUF_LEN, 0));
	EXPECT_EQ(pin0, vm_status("VmPin"));
	EXPECT_EQ(0, memcmp(sh->buf, sh->pattern, BUF_LEN));
	/* And the context still works. */
	{
		__u32 ioas, stdev, hwpt, idev;
		__u64 iova = ID_BASE;

		ASSERT_EQ(0, ioas_alloc(fd, &ioas));
		ASSERT_EQ(0, mock_domain(fd, ioas, &stdev, &hwpt, &idev));
		ASSERT_EQ(0, map(fd, ioas, sh->buf, BUF_LEN, &iova,
				 RW | IOMMU_IOAS_MAP_FIXED_IOVA));
		EXPECT_EQ(0, check_refs(fd, sh->buf, BUF_LEN, 1));
		EXPECT_FAIL(EBUSY, destroy(fd, ioas));
		ASSERT_EQ(0, destroy(fd, stdev));
		ASSERT_EQ(0, destroy(fd, ioas));
		EXPECT_EQ(0, check_refs(fd, sh->buf, BUF_LEN, 0));
		EXPECT_EQ(pin0, vm_status("VmPin"));
	}
}

/*
 * Looking a device up by ID races its unbind. Two threads ask GET_HW_INFO about, and allocate
 * HWPTs for, the newest mock device while the main thread creates mock devices and destroys
 * them (which unbinds the device and unregisters it: dev->iommu is freed). The unbind must wait
 * for those ioctls (upstream: REMOVE_WAIT_SHORTTERM); a lookup after it answers ENOENT. Found by
 * the 1M-call fuzz on the lockdep kernel: ours read dev->iommu after it was freed.
 *
 * On C a destroy that waits sits out the 60 s stall described at the top; one such destroy per
 * run is expected there (the loop ends at the deadline, which the stall passes).
 */
#define LOOKUP_SECONDS 4.0
#define LOOKUP_THREADS 2

struct lookup_race {
	int fd;
	__u32 ioas;
	_Atomic __u32 idev;
	atomic_int stop;
	atomic_ulong calls, found, gone, unexpected;
	/* The first unexpected answer: which call, and its errno. */
	_Atomic(const char *) what;
	atomic_int what_errno;
};

static void lookup_unexpected(struct lookup_race *r, const char *what, int err)
{
	const char *none = NULL;

	if (atomic_fetch_add(&r->unexpected, 1) == 0 &&
	    atomic_compare_exchange_strong(&r->what, &none, what))
		atomic_store(&r->what_errno, err);
}

static void *lookup_thread(void *arg)
{
	struct lookup_race *r = arg;
	struct iommu_test_hw_info info;

	while (!atomic_load(&r->stop)) {
		__u32 idev = atomic_load(&r->idev), hwpt;
		struct iommu_hw_info cmd = {
			.size = sizeof(cmd),
			.dev_id = idev,
			.data_len = sizeof(info),
			.data_uptr = (uintptr_t)&info,
		};
		int ret = ioctl(r->fd, IOMMU_GET_HW_INFO, &cmd), err = errno;

		atomic_fetch_add(&r->calls, 1);
		if (!ret)
			atomic_fetch_add(&r->found, 1);
		else if (err == ENOENT)
			atomic_fetch_add(&r->gone, 1);
		else
			lookup_unexpected(r, "GET_HW_INFO", err);

		ret = hwpt_alloc(r->fd, idev, r->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0, &hwpt);
		err = errno;
		atomic_fetch_add(&r->calls, 1);
		if (!ret) {
			atomic_fetch_add(&r->found, 1);
			if (destroy(r->fd, hwpt))
				lookup_unexpected(r, "DESTROY of the new HWPT", errno);
		} else if (err == ENOENT) {
			atomic_fetch_add(&r->gone, 1);
		} else {
			lookup_unexpected(r, "HWPT_ALLOC", err);
		}
	}
	return NULL;
}

FIXTURE(lookup)
{
	struct lookup_race r;
};

FIXTURE_SETUP(lookup)
{
	self->r.fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->r.fd);
}

FIXTURE_TEARDOWN(lookup)
{
	close(self->r.fd);
}

TEST_F_TIMEOUT(lookup, device_lookup_vs_unbind, 2 * LOOKUP_SECONDS + STALL_MAX + 30)
{
	struct lookup_race r = { .fd = self->r.fd };
	pthread_t threads[LOOKUP_THREADS];
	unsigned long cycles = 0, stalls = 0, slow_destroys = 0;
	double end;

	ASSERT_EQ(0, ioas_alloc(r.fd, &r.ioas));
	for (int i = 0; i < LOOKUP_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, lookup_thread, &r));
	end = now() + LOOKUP_SECONDS;
	while (now() < end) {
		__u32 stdev, hwpt, idev;
		double t;

		ASSERT_EQ(0, mock_domain(r.fd, r.ioas, &stdev, &hwpt, &idev));
		atomic_store(&r.idev, idev);
		t = now();
		ASSERT_EQ(0, destroy(r.fd, stdev));
		t = now() - t;
		if (t >= STALL_MIN && t <= STALL_MAX)
			stalls++;
		else if (t > SLOW_OP)
			slow_destroys++;
		cycles++;
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < LOOKUP_THREADS; i++)
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
	printf("# %lu mock devices created and destroyed; %lu lookups: %lu found the device, %lu ENOENT, %lu other errors; %lu destroys sat out upstream's 60 s stall\n",
	       cycles, atomic_load(&r.calls), atomic_load(&r.found), atomic_load(&r.gone),
	       atomic_load(&r.unexpected), stalls);
	EXPECT_EQ(0, atomic_load(&r.unexpected))
		TH_LOG("first: %s: %s", atomic_load(&r.what), strerror(atomic_load(&r.what_errno)));
	EXPECT_EQ(0, slow_destroys);
	/* Both outcomes happened, or the race was not run. */
	EXPECT_LT(0, atomic_load(&r.found));
	EXPECT_LT(0, atomic_load(&r.gone));
	/* Nothing is left but the IOAS. */
	EXPECT_EQ(0, destroy(r.fd, r.ioas));
	for (__u32 id = 1; id <= 64; id++)
		EXPECT_EQ(ENOENT, destroy(r.fd, id) ? errno : 0);
}

/*
 * A vDEVICE allocation races its device's unbind. Two threads allocate vDEVICEs for the newest
 * mock device on its vIOMMU while the main thread creates a device (with a nesting parent HWPT
 * and a vIOMMU on it) and destroys it at once. A vDEVICE the allocation published must be gone
 * with the device: its ID answers ENOENT (the unbind's tombstone). Ours published a vDEVICE
 * claimed before the unbind began but finished after the unbind looked: it outlived the device,
 * holding it (and the context) until the user destroyed it.
 */
#define VDEV_SECONDS 3.0

struct vdev_race {
	int fd;
	/* The newest device and its vIOMMU, as one word: idev << 32 | viommu; 0 while none. */
	_Atomic __u64 target;
	/* vDEVICEs allocated for the current target (the main thread checks and clears them). */
	_Atomic __u32 made[2];
	/* The main thread's round, and the last round each thread saw no target in: all its calls
	 * on the previous target had returned and been counted. */
	atomic_ulong round, idle[2];
	atomic_int stop;
	atomic_ulong calls, made_total, unexpected;
	atomic_int first_errno;
};

static void *vdev_thread(void *arg)
{
	struct vdev_race *r = ((void **)arg)[0];
	int me = (int)(uintptr_t)((void **)arg)[1];

	while (!atomic_load(&r->stop)) {
		__u64 t = atomic_load(&r->target);
		struct iommu_vdevice_alloc cmd = {
			.size = sizeof(cmd),
			.viommu_id = (__u32)t,
			.dev_id = (__u32)(t >> 32),
			.virt_id = 0x10 + me,
		};

		if (!t) {
			atomic_store(&r->idle[me], atomic_load(&r->round));
			continue;
		}
		atomic_fetch_add(&r->calls, 1);
		if (!ioctl(r->fd, IOMMU_VDEVICE_ALLOC, &cmd)) {
			__u32 none = 0;

			atomic_fetch_add(&r->made_total, 1);
			/* One vDEVICE per device: a second success before the check is wrong too. */
			if (!atomic_compare_exchange_strong(&r->made[me], &none, cmd.out_vdevice_id) &&
			    atomic_fetch_add(&r->unexpected, 1) == 0)
				atomic_store(&r->first_errno, 0);
		} else if (errno != ENOENT && errno != EEXIST && errno != EINVAL &&
			   atomic_fetch_add(&r->unexpected, 1) == 0) {
			/* EINVAL: a stale target whose IDs were reused by other kinds. */
			atomic_store(&r->first_errno, errno);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(lookup, vdevice_alloc_vs_unbind, VDEV_SECONDS + STALL_MAX + 30)
{
	struct vdev_race r = { .fd = self->r.fd };
	void *args[2][2] = { { &r, (void *)0 }, { &r, (void *)1 } };
	pthread_t threads[2];
	unsigned long cycles = 0, outlived = 0, round;
	__u32 ioas;
	double end;

	ASSERT_EQ(0, ioas_alloc(r.fd, &ioas));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, vdev_thread, args[i]));
	end = now() + VDEV_SECONDS;
	while (now() < end) {
		__u32 stdev, hwpt, idev, parent, viommu;
		struct iommu_viommu_alloc va = { .size = sizeof(va), .type = IOMMU_VIOMMU_TYPE_SELFTEST };

		ASSERT_EQ(0, mock_domain(r.fd, ioas, &stdev, &hwpt, &idev));
		ASSERT_EQ(0, hwpt_alloc(r.fd, idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT,
					IOMMU_HWPT_DATA_NONE, NULL, 0, &parent));
		va.dev_id = idev;
		va.hwpt_id = parent;
		ASSERT_EQ(0, ioctl(r.fd, IOMMU_VIOMMU_ALLOC, &va));
		viommu = va.out_viommu_id;
		atomic_store(&r.target, (__u64)idev << 32 | viommu);
		/*
		 * Every other round lets an allocation succeed first (a vDEVICE the unbind must
		 * tombstone; on a loaded machine an immediate destroy may never see one made), the
		 * others destroy at once (racing allocations in flight).
		 */
		if (cycles % 2 == 0) {
			double until = now() + 1.0;

			while (!atomic_load(&r.made[0]) && !atomic_load(&r.made[1]) && now() < until)
				sched_yield();
		}
		ASSERT_EQ(0, destroy(r.fd, stdev));
		atomic_store(&r.target, 0);
		/* Every allocation on the target has returned and been counted. */
		round = atomic_fetch_add(&r.round, 1) + 1;
		for (int i = 0; i < 2; i++)
			while (atomic_load(&r.idle[i]) != round)
				sched_yield();
		for (int i = 0; i < 2; i++) {
			__u32 v = atomic_exchange(&r.made[i], 0);

			if (v && !destroy(r.fd, v))
				outlived++;
			else if (v)
				EXPECT_EQ(ENOENT, errno);
		}
		ASSERT_EQ(0, destroy(r.fd, viommu)) TH_LOG("vIOMMU: %s", strerror(errno));
		ASSERT_EQ(0, destroy(r.fd, parent));
		cycles++;
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
	printf("# %lu devices with a vIOMMU created and destroyed; %lu vDEVICE allocations, %lu made, %lu outlived their device\n",
	       cycles, atomic_load(&r.calls), atomic_load(&r.made_total), outlived);
	EXPECT_EQ(0, outlived);
	EXPECT_EQ(0, atomic_load(&r.unexpected))
		TH_LOG("first unexpected errno: %s", strerror(atomic_load(&r.first_errno)));
	EXPECT_LT(0, atomic_load(&r.made_total));
	EXPECT_EQ(0, destroy(r.fd, ioas));
}

TEST_HARNESS_MAIN
