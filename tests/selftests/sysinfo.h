/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs tests: what the tests read of the kernel's state from /proc and /sys, shared by the
 * selftests and the VFIO clients (which include it with -I../selftests).
 */
#ifndef IOMMUFD_RS_SYSINFO_H
#define IOMMUFD_RS_SYSINFO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The iommufd module's reference count (/sys/module/iommufd/refcnt), or -1. */
static inline long module_refcnt(void)
{
	FILE *f = fopen("/sys/module/iommufd/refcnt", "r");
	long n = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

/*
 * Whether iommufd is built into the kernel (an in-tree build with CONFIG_IOMMUFD=y): /dev/iommu is
 * there but no module, so no reference count, exists.
 */
static inline int iommufd_builtin(void)
{
	FILE *f = fopen("/sys/module/iommufd/refcnt", "r");

	if (f) {
		fclose(f);
		return 0;
	}
	f = fopen("/dev/iommu", "r");
	if (!f)
		return 0;
	fclose(f);
	return 1;
}

/* The "@tag: N kB" line of @path (/proc/meminfo, /proc/self/status), in kB; -1 if missing. */
static inline long proc_kb(const char *path, const char *tag)
{
	char line[128];
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, tag, strlen(tag)) && line[strlen(tag)] == ':') {
			val = strtol(line + strlen(tag) + 1, NULL, 10);
			break;
		}
	fclose(f);
	return val;
}

/*
 * Whether the loaded iommufd is ours (the Rust module), for the few tests where ours is stricter
 * than upstream (Documentation/design.rst, "Where we are stricter than upstream"): they assert
 * our answer and log the C module's. The runners say which one they loaded (IOMMUFD_IMPL=c or
 * rust); without it, an out-of-tree module (taint flag O) is taken for ours.
 */
static inline int impl_is_rust(void)
{
	const char *impl = getenv("IOMMUFD_IMPL");
	char taint[32] = "";
	FILE *f;

	if (impl)
		return strcmp(impl, "rust") == 0;
	f = fopen("/sys/module/iommufd/taint", "r");
	if (!f)
		return 0;
	if (!fgets(taint, sizeof(taint), f))
		taint[0] = 0;
	fclose(f);
	return strchr(taint, 'O') != NULL;
}

#endif
