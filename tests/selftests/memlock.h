/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs selftests: the capability and RLIMIT_MEMLOCK a test runs under, for the suites that
 * check how pins are charged (pins are charged only for tasks without CAP_IPC_LOCK).
 */
#ifndef IOMMUFD_RS_MEMLOCK_H
#define IOMMUFD_RS_MEMLOCK_H

#include <sys/capability.h>
#include <sys/resource.h>

/* Sets @cap in the effective set to @how (CAP_SET or CAP_CLEAR). */
static inline int drop_cap(cap_value_t cap, cap_flag_value_t how)
{
	cap_t caps = cap_get_proc();
	int ret;

	if (!caps)
		return -1;
	ret = cap_set_flag(caps, CAP_EFFECTIVE, 1, &cap, how);
	if (!ret)
		ret = cap_set_proc(caps);
	cap_free(caps);
	return ret;
}

static inline int drop_cap_ipc_lock(void)
{
	return drop_cap(CAP_IPC_LOCK, CAP_CLEAR);
}

static inline int set_memlock(rlim_t bytes)
{
	struct rlimit r = { .rlim_cur = bytes, .rlim_max = bytes };

	return setrlimit(RLIMIT_MEMLOCK, &r);
}

#endif
