/* SPDX-License-Identifier: MIT */
#include "common/meta.h"

#include <string.h>

#include "common/lock.h"
#include "os/os.h"

/* Objects are rounded to 64 bytes; sizes up to META_MAX_SMALL come from 64 KiB chunks with one free list per
 * rounded size, larger ones get their own mapping. */
#define META_GRAIN 64
#define META_MAX_SMALL (16 * 1024)
#define META_CHUNK (64 * 1024)

typedef struct meta_free_s {
    struct meta_free_s *next;
} meta_free_t;

static hak_lock_t meta_lock = HAK_LOCK_INIT;
static meta_free_t *meta_lists[META_MAX_SMALL / META_GRAIN + 1];
static char *meta_bump;
static size_t meta_bump_left;

void *hak_meta_alloc(size_t size) {
    size = hak_align_up(size ? size : 1, META_GRAIN);
    if (size > META_MAX_SMALL)
        return hak_os_map(hak_align_up(size, HAK_OS_PAGE));
    size_t bucket = size / META_GRAIN;
    hak_lock(&meta_lock);
    void *p = meta_lists[bucket];
    if (p != NULL) {
        meta_lists[bucket] = ((meta_free_t *)p)->next;
        hak_unlock(&meta_lock);
        memset(p, 0, size);
        return p;
    }
    if (meta_bump_left < size) {
        char *chunk = hak_os_map(META_CHUNK);
        if (chunk == NULL) {
            hak_unlock(&meta_lock);
            return NULL;
        }
        meta_bump = chunk; /* the rest of the old chunk is abandoned: metadata is small */
        meta_bump_left = META_CHUNK;
    }
    p = meta_bump;
    meta_bump += size;
    meta_bump_left -= size;
    hak_unlock(&meta_lock);
    return p; /* fresh mapping: already zero */
}

void hak_meta_free(void *p, size_t size) {
    if (p == NULL)
        return;
    size = hak_align_up(size ? size : 1, META_GRAIN);
    if (size > META_MAX_SMALL) {
        hak_os_unmap(p, hak_align_up(size, HAK_OS_PAGE));
        return;
    }
    size_t bucket = size / META_GRAIN;
    hak_lock(&meta_lock);
    ((meta_free_t *)p)->next = meta_lists[bucket];
    meta_lists[bucket] = p;
    hak_unlock(&meta_lock);
}

void hak_meta_fork_prepare(void) { hak_lock(&meta_lock); }
void hak_meta_fork_parent(void) { hak_unlock(&meta_lock); }
void hak_meta_fork_child(void) { hak_lock_init(&meta_lock); }
