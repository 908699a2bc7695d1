/* SPDX-License-Identifier: MIT */
#include "common/region_map.h"

uint8_t hak_region_kinds[HAK_REGION_ENTRIES];
