/* SPDX-License-Identifier: MIT */
#include "common/quota.h"

hak_quota_t hak_quota_all;

__attribute__((weak)) void hak_test_hook_quota_refused(void) {}
