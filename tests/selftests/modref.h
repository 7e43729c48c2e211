/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs tests: the iommufd module's reference count, shared by the selftests and the VFIO
 * clients (which include it with -I../selftests).
 */
#ifndef IOMMUFD_RS_MODREF_H
#define IOMMUFD_RS_MODREF_H

#include <stdio.h>

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

#endif
