/* Statistics, gathered by walking metadata under the heap locks: nothing is counted on the fast paths. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <unistd.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "bigcache/large.h"
#include "common/options.h"
#include "heap/heap.h"
#include "os/os.h"
#include "tiny/span.h"
#include "tiny/tcache.h"

static void add_superslab(hak_stats_t *st, hak_superslab_t *ss) {
    st->reserved_bytes += HAK_SS_SIZE;
    st->committed_bytes += HAK_SS_SIZE;
    uint32_t free_mask = hak_load_relaxed(&ss->free_mask);
    st->cached_bytes += (uint64_t)__builtin_popcount(free_mask) * HAK_SLAB_SIZE;
    unsigned i = 0;
    for (const hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
        uint64_t bs = hak_load_relaxed(&s->block_size);
        /* blocks freed by other threads and not yet collected by the owner are not live */
        uint32_t owner_used = hak_load_relaxed(&s->used), pending = hak_load_relaxed(&s->remote_pending);
        uint64_t used = owner_used > pending ? owner_used - pending : 0;
        uint64_t reserved = hak_load_relaxed(&s->reserved);
        unsigned cls = hak_load_relaxed(&s->cls);
        st->live_blocks += used;
        st->live_bytes += used * bs;
        st->cached_bytes += (reserved > used ? reserved - used : 0) * bs;
        if (cls < HAK_STATS_CLASSES_MAX) {
            st->classes[cls].live_blocks += used;
            st->classes[cls].slabs += 1;
        }
    }
}

/* Blocks in a thread cache count as used in their spans, but they are free. */
static void sub_tcache(hak_stats_t *st, const hak_theap_t *th) {
    for (unsigned cls = 0; cls < HAK_CLASS_COUNT; cls++) {
        uint64_t n = hak_tcache_count(th, cls), bs = hak_class_size(cls);
        if (n == 0)
            continue;
        if (cls < HAK_STATS_CLASSES_MAX)
            n = n < st->classes[cls].live_blocks ? n : st->classes[cls].live_blocks;
        n = n < st->live_blocks ? n : st->live_blocks;
        st->live_blocks -= n;
        st->live_bytes -= n * bs;
        st->cached_bytes += n * bs;
        if (cls < HAK_STATS_CLASSES_MAX)
            st->classes[cls].live_blocks -= n;
    }
}

static void add_arena(hak_stats_t *st, hak_tiny_arena_t *arena) {
    hak_lock(&arena->lock);
    for (hak_list_node_t *t = arena->theaps.first; t != NULL; t = t->next) {
        hak_theap_t *th = hak_list_entry(t, hak_theap_t, link);
        for (hak_list_node_t *l = th->superslabs.first; l != NULL; l = l->next)
            add_superslab(st, hak_ss_of_link(l));
        sub_tcache(st, th);
    }
    for (hak_list_node_t *l = arena->abandoned.first; l != NULL; l = l->next)
        add_superslab(st, hak_ss_of_link(l));
    hak_unlock(&arena->lock);
}

static void add_large_set(hak_stats_t *st, hak_large_set_t *set) {
    hak_lock(&set->lock);
    for (hak_list_node_t *l = set->blocks.first; l != NULL; l = l->next) {
        hak_large_t *h = hak_list_entry(l, hak_large_t, link);
        uint64_t usable = h->usable;
        st->large_blocks++;
        st->large_bytes += usable;
        st->live_blocks++;
        st->live_bytes += usable;
        st->reserved_bytes += h->map_size;
        st->committed_bytes += hak_large_charged(h);
    }
    hak_unlock(&set->lock);
}

/* Raises *peak to live (atomic max) and returns the peak: the highest live bytes any walk has seen. */
static uint64_t note_peak(size_t *peak, uint64_t live) {
    size_t p = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (live > p &&
           !__atomic_compare_exchange_n(peak, &p, (size_t)live, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return live > p ? live : p;
}

static void fill_one(hak_heap_t *heap, hak_stats_t *st) {
    hak_lock(&heap->lock);
    hak_tiny_arena_settle_abandoned(&heap->slabs);
    add_arena(st, &heap->slabs);
    add_large_set(st, &heap->large);
    hak_unlock(&heap->lock);
    st->peak_live_bytes = note_peak(&heap->peak_live_bytes, st->live_bytes);
    st->held_bytes = hak_quota_held(&heap->quota);
    st->peak_held_bytes = hak_quota_peak(&heap->quota);
    st->limit_bytes = heap->quota.limit;
}

static void add_to_process(hak_heap_t *heap, void *arg) {
    hak_stats_t *total = arg;
    hak_stats_t one;
    memset(&one, 0, sizeof one);
    fill_one(heap, &one);
    total->heap_count++;
    total->live_blocks += one.live_blocks;
    total->live_bytes += one.live_bytes;
    total->reserved_bytes += one.reserved_bytes;
    total->committed_bytes += one.committed_bytes;
    total->cached_bytes += one.cached_bytes;
    total->large_blocks += one.large_blocks;
    total->large_bytes += one.large_bytes;
    for (unsigned c = 0; c < HAK_STATS_CLASSES_MAX; c++) {
        total->classes[c].live_blocks += one.classes[c].live_blocks;
        total->classes[c].slabs += one.classes[c].slabs;
    }
}

/* The highest process-wide live bytes seen by a walk of the whole process. */
static size_t process_peak_live;

int hak_heap_stats(hak_heap_t *heap, hak_stats_t *out) {
    if (out == NULL || out->size < sizeof(size_t))
        return -1;
    hak_init();
    hak_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (heap != NULL && !hak_heap_handle_ok(heap)) {
        hak_heap_report_bad("hak_heap_stats of a destroyed or invalid heap", heap);
        return -1;
    }
    if (heap != NULL) {
        fill_one(heap, &st);
        memcpy(st.name, heap->name, sizeof st.name);
        st.heap_count = 1;
    } else {
        strcpy(st.name, "process");
        hak_heap_foreach(add_to_process, &st);
        uint64_t ss_count, ss_warm, big_entries, big_bytes, big_dirty;
        hak_ss_cache_stats(&ss_count, &ss_warm);
        hak_bigcache_stats(&big_entries, &big_bytes, &big_dirty);
        st.reserved_bytes += ss_count * HAK_SS_SIZE + big_bytes;
        st.committed_bytes += ss_warm * HAK_SS_SIZE + big_dirty;
        st.cached_bytes += ss_warm * HAK_SS_SIZE + big_dirty;
        st.peak_live_bytes = note_peak(&process_peak_live, st.live_bytes);
        st.held_bytes = hak_quota_held(&hak_quota_all);
        st.peak_held_bytes = hak_quota_peak(&hak_quota_all);
    }
    st.class_count = HAK_CLASS_COUNT < HAK_STATS_CLASSES_MAX ? HAK_CLASS_COUNT : HAK_STATS_CLASSES_MAX;
    for (unsigned c = 0; c < st.class_count; c++)
        st.classes[c].block_size = hak_class_size(c);
    size_t n = out->size < sizeof st ? out->size : sizeof st;
    memcpy((char *)out + sizeof(size_t), (char *)&st + sizeof(size_t), n - sizeof(size_t));
    return 0;
}

/* Appends printf-style text to buf (capacity cap, length *len), truncating at the end. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t cap, size_t *len, const char *fmt,
                                                         ...) {
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* Formats the process statistics as text or JSON into buf; returns the length. */
static size_t format_stats(char *buf, size_t cap, int json) {
    hak_stats_t st;
    st.size = sizeof st;
    size_t len = 0;
    buf[0] = '\0';
    if (hak_heap_stats(NULL, &st) != 0)
        return 0;
    if (json) {
        append(buf, cap, &len,
               "{\"name\":\"%s\",\"heaps\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"live_bytes\":%" PRIu64
               ",\"peak_live_bytes\":%" PRIu64 ",\"reserved_bytes\":%" PRIu64 ",\"committed_bytes\":%" PRIu64
               ",\"cached_bytes\":%" PRIu64 ",\"large_blocks\":%" PRIu64 ",\"large_bytes\":%" PRIu64
               ",\"held_bytes\":%" PRIu64 ",\"peak_held_bytes\":%" PRIu64 ",\"classes\":[",
               st.name, st.heap_count, st.live_blocks, st.live_bytes, st.peak_live_bytes, st.reserved_bytes,
               st.committed_bytes, st.cached_bytes, st.large_blocks, st.large_bytes, st.held_bytes,
               st.peak_held_bytes);
        for (unsigned c = 0; c < st.class_count; c++)
            append(buf, cap, &len,
                   "%s{\"block_size\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"slabs\":%" PRIu64 "}",
                   c ? "," : "", st.classes[c].block_size, st.classes[c].live_blocks, st.classes[c].slabs);
        append(buf, cap, &len, "]}\n");
        return len;
    }
    append(buf, cap, &len,
           "hakmem stats (%s): heaps %" PRIu64 "\n"
           "  live      %" PRIu64 " blocks, %" PRIu64 " bytes\n"
           "  held      %" PRIu64 " bytes, peak %" PRIu64 " (spans and large blocks)\n"
           "  large     %" PRIu64 " blocks, %" PRIu64 " bytes\n"
           "  reserved  %" PRIu64 " bytes, committed %" PRIu64 ", cached %" PRIu64 "\n",
           st.name, st.heap_count, st.live_blocks, st.live_bytes, st.held_bytes, st.peak_held_bytes,
           st.large_blocks, st.large_bytes, st.reserved_bytes, st.committed_bytes, st.cached_bytes);
    for (unsigned c = 0; c < st.class_count; c++)
        if (st.classes[c].slabs != 0)
            append(buf, cap, &len, "  class %6" PRIu64 " B: %" PRIu64 " live blocks in %" PRIu64 " spans\n",
                   st.classes[c].block_size, st.classes[c].live_blocks, st.classes[c].slabs);
    return len;
}

#define STATS_TEXT_MAX 8192

void hak_stats_print(FILE *out, int json) {
    char buf[STATS_TEXT_MAX];
    size_t len = format_stats(buf, sizeof buf, json);
    if (out != NULL && len != 0)
        fwrite(buf, 1, len, out);
}

/* HAKMEM_SHOW_STATS=1: print the process statistics at exit. Some programs (coreutils) close stderr in an
 * atexit handler before library destructors run, so a private duplicate of fd 2 is taken at start-up and
 * the text goes there with write(2). */
static int stats_fd = -1;

void hak_stats_init(void) {
    if (hak_options.show_stats)
        stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

__attribute__((destructor)) static void show_stats_at_exit(void) {
    if (stats_fd < 0)
        return;
    char buf[STATS_TEXT_MAX];
    size_t len = format_stats(buf, sizeof buf, 0);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(stats_fd, buf + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}
