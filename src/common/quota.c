#include "common/quota.h"

hak_quota_t hak_quota_all;
