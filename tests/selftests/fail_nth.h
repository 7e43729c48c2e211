/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs selftests: allocation-failure injection through /proc/self/task/<tid>/fail-nth
 * (failslab + fail_page_alloc, and the test build's fail_iommufd point on the same counter),
 * and writing the debugfs knobs that control it.
 */
#ifndef IOMMUFD_RS_FAIL_NTH_H
#define IOMMUFD_RS_FAIL_NTH_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void writefile(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, val, strlen(val)) < 0)
			perror(path);
		close(fd);
	}
}

/* Let sleeping allocations be injectable too, and keep the injection quiet in dmesg. */
static inline void fail_nth_setup(void)
{
	writefile("/sys/kernel/debug/failslab/ignore-gfp-wait", "N");
	writefile("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N");
	writefile("/sys/kernel/debug/failslab/verbose", "0");
	writefile("/sys/kernel/debug/fail_page_alloc/verbose", "0");
}

static int nth_fd = -1;

static inline void nth_open(void)
{
	char path[64];

	if (nth_fd < 0) {
		snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth", (long)syscall(SYS_gettid));
		nth_fd = open(path, O_RDWR);
	}
}

static inline void nth_arm(unsigned int n)
{
	char v[16];
	int len = snprintf(v, sizeof(v), "%u", n);

	if (pwrite(nth_fd, v, len, 0) != len)
		abort();
}

/* Disarms; true if the armed failure was injected. */
static inline bool nth_fired(void)
{
	char v[16] = "";

	if (pread(nth_fd, v, sizeof(v) - 1, 0) < 0)
		v[0] = '1';
	while (pwrite(nth_fd, "0", 1, 0) < 0 && errno == EFAULT)
		;
	return atoi(v) == 0;
}

#endif
