/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Force-included (gcc -include) into upstream's tools/testing/selftests/iommu programs when they
 * are built for a debug kernel profile (tools/kernel/build.sh). kselftest_harness.h fixes every
 * test's timeout at 30 s; under lockdep or KASAN in a TCG guest an iommufd_fail_nth test needs
 * minutes, on the C module as on ours. The harness macros expand TEST_TIMEOUT_DEFAULT where the
 * tests are defined, so redefining it after the (include-guarded) harness raises the limit without
 * touching upstream's sources. The suite as a whole stays bounded by guest-tests.sh's timeout.
 */
#include "kselftest_harness.h"
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 900
