/* SPDX-License-Identifier: MIT */
/* Statistics, gathered by walking metadata under the heap locks: nothing is counted on the fast paths. The
 * event counters are kept where the events happen, all of them on slow paths (the slab tier's per thread
 * heap, the large-block set's, the SuperSlab cache's, the BigCache's, the OS layer's), and summed here. */
#include <errno.h>
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

/* The event counters of hak_stats_t that belong to a heap (summed over heaps for the process), then those
 * of shared structures (process only), in the order of the JSON output. */
#define HEAP_EVENTS(X)                                                                                       \
    X(alloc_slow)                                                                                            \
    X(free_slow)                                                                                             \
    X(remote_frees)                                                                                          \
    X(spans_carved)                                                                                          \
    X(spans_released)                                                                                        \
    X(superslabs_mapped)                                                                                     \
    X(superslabs_reused)                                                                                     \
    X(superslabs_adopted)                                                                                    \
    X(large_allocs)                                                                                          \
    X(large_frees)                                                                                           \
    X(bigcache_hits)                                                                                         \
    X(bigcache_misses)
#define PROCESS_EVENTS(X)                                                                                    \
    X(superslabs_purged)                                                                                     \
    X(bigcache_trims)                                                                                        \
    X(mmap_calls)                                                                                            \
    X(munmap_calls)                                                                                          \
    X(mremap_calls)                                                                                          \
    X(madvise_calls)

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
        st->free_slow += pending; /* remote frees not collected yet left the fast path all the same */
        if (cls < HAK_STATS_CLASSES_MAX) {
            st->classes[cls].live_blocks += used;
            st->classes[cls].slabs += 1;
        }
    }
}

/* Blocks in a thread cache count as used in their spans, but they are free. `cached` holds the cache's
 * counts, read before the spans' (see tiny/tcache.c: a flush in progress is then never counted as live). */
static void sub_tcache(hak_stats_t *st, const uint32_t cached[HAK_CLASS_COUNT]) {
    for (unsigned cls = 0; cls < HAK_CLASS_COUNT; cls++) {
        uint64_t n = cached[cls], bs = hak_class_size(cls);
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

/* The slab tier's event counts: its thread heaps', and those of exited ones and of settling. */
static void add_tiny_counts(hak_stats_t *st, const hak_tiny_counts_t *c) {
    st->alloc_slow += c->alloc_slow;
    st->free_slow += c->free_slow + c->remote_frees;
    st->remote_frees += c->remote_frees;
    st->spans_carved += c->spans_carved;
    st->spans_released += c->spans_released;
    st->superslabs_mapped += c->ss_mapped;
    st->superslabs_reused += c->ss_reused;
    st->superslabs_adopted += c->ss_adopted;
}

static void add_arena(hak_stats_t *st, hak_tiny_arena_t *arena) {
    hak_tiny_counts_t counts;
    memset(&counts, 0, sizeof counts);
    hak_lock(&arena->lock);
    hak_tiny_counts_add(&counts, &arena->retired);
    for (hak_list_node_t *t = arena->theaps.first; t != NULL; t = t->next) {
        hak_theap_t *th = hak_list_entry(t, hak_theap_t, link);
        uint32_t cached[HAK_CLASS_COUNT];
        for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
            cached[c] = hak_tcache_count(th, c);
            uint32_t cap = hak_tcache_capacity(th, c);
            if (c < HAK_STATS_CLASSES_MAX && cap > st->tcache_capacity[c])
                st->tcache_capacity[c] = cap;
        }
        for (hak_list_node_t *l = th->superslabs.first; l != NULL; l = l->next)
            add_superslab(st, hak_ss_of_link(l));
        sub_tcache(st, cached);
        hak_tiny_counts_add(&counts, &th->counts);
    }
    for (hak_list_node_t *l = arena->abandoned.first; l != NULL; l = l->next)
        add_superslab(st, hak_ss_of_link(l));
    hak_unlock(&arena->lock);
    add_tiny_counts(st, &counts);
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
    st->large_allocs += __atomic_load_n(&set->allocs, __ATOMIC_RELAXED);
    st->large_frees += __atomic_load_n(&set->frees, __ATOMIC_RELAXED);
    st->bigcache_hits += __atomic_load_n(&set->cache_hits, __ATOMIC_RELAXED);
    st->bigcache_misses += __atomic_load_n(&set->cache_misses, __ATOMIC_RELAXED);
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

/* The event counts of destroyed heaps, kept for the process totals (registry lock). */
static hak_stats_t retired;

void hak_stats_retire_locked(hak_heap_t *heap) {
    hak_stats_t one;
    memset(&one, 0, sizeof one);
    fill_one(heap, &one);
    one.large_frees += one.large_blocks; /* the destroy frees them */
#define RETIRE(name) retired.name += one.name;
    HEAP_EVENTS(RETIRE)
#undef RETIRE
}

static void add_to_process(hak_heap_t *heap, void *arg) {
    hak_stats_t *total = arg;
    hak_stats_t one;
    memset(&one, 0, sizeof one);
    fill_one(heap, &one);
    if (heap == &hak_heap_main) { /* once per walk, with the registry locked (hak_heap_foreach) */
#define ADD_RETIRED(name) one.name += retired.name;
        HEAP_EVENTS(ADD_RETIRED)
#undef ADD_RETIRED
    }
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
        if (one.tcache_capacity[c] > total->tcache_capacity[c])
            total->tcache_capacity[c] = one.tcache_capacity[c];
    }
#define ADD_EVENT(name) total->name += one.name;
    HEAP_EVENTS(ADD_EVENT)
#undef ADD_EVENT
}

/* The highest process-wide live bytes seen by a walk of the whole process. */
static size_t process_peak_live;

static void fill_process(hak_stats_t *st) {
    strcpy(st->name, "process");
    hak_heap_foreach(add_to_process, st);
    uint64_t ss_count, ss_warm, big_entries, big_bytes, big_dirty;
    hak_ss_cache_stats(&ss_count, &ss_warm);
    hak_bigcache_stats(&big_entries, &big_bytes, &big_dirty);
    st->reserved_bytes += ss_count * HAK_SS_SIZE + big_bytes;
    st->committed_bytes += ss_warm * HAK_SS_SIZE + big_dirty;
    st->cached_bytes += ss_warm * HAK_SS_SIZE + big_dirty;
    st->peak_live_bytes = note_peak(&process_peak_live, st->live_bytes);
    st->held_bytes = hak_quota_held(&hak_quota_all);
    st->peak_held_bytes = hak_quota_peak(&hak_quota_all);
    st->superslabs_purged = hak_ss_cache_purged();
    hak_bigcache_info_t big;
    hak_bigcache_info(&big);
    st->bigcache_trims = big.trims;
    hak_os_counts_t os;
    hak_os_counts(&os);
    st->mmap_calls = os.mmap;
    st->munmap_calls = os.munmap;
    st->mremap_calls = os.mremap;
    st->madvise_calls = os.madvise;
}

int hak_heap_stats(hak_heap_t *heap, hak_stats_t *out) {
    if (out == NULL || out->size < sizeof(size_t)) {
        errno = EINVAL;
        return -1;
    }
    hak_init();
    hak_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (heap != NULL && !hak_heap_handle_ok(heap)) {
        hak_heap_report_bad("hak_heap_stats of a destroyed or invalid heap", heap);
        errno = EINVAL;
        return -1;
    }
    if (heap != NULL) {
        fill_one(heap, &st);
        memcpy(st.name, heap->name, sizeof st.name);
        st.heap_count = 1;
    } else {
        fill_process(&st);
    }
    st.class_count = HAK_CLASS_COUNT < HAK_STATS_CLASSES_MAX ? HAK_CLASS_COUNT : HAK_STATS_CLASSES_MAX;
    for (unsigned c = 0; c < st.class_count; c++)
        st.classes[c].block_size = hak_class_size(c);
    size_t n = out->size < sizeof st ? out->size : sizeof st;
    memcpy((char *)out + sizeof(size_t), (char *)&st + sizeof(size_t), n - sizeof(size_t));
    return 0;
}

/* ---- output: formatted into a buffer on the stack (nothing here allocates), then written ---- */

#define STATS_TEXT_MAX 8192

typedef struct out_s {
    char buf[STATS_TEXT_MAX];
    size_t len;
} out_t;

/* Appends printf-style text, truncating at the end of the buffer. */
__attribute__((format(printf, 2, 3))) static void append(out_t *o, const char *fmt, ...) {
    if (o->len + 1 >= sizeof o->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < sizeof o->buf ? o->len + (size_t)n : sizeof o->buf - 1;
}

/* A heap name as a JSON string: quotes, backslashes and control characters escaped. */
static void append_json_string(out_t *o, const char *s, size_t max) {
    append(o, "\"");
    for (size_t i = 0; i < max && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            append(o, "\\%c", c);
        else if (c < 0x20)
            append(o, "\\u%04x", c);
        else
            append(o, "%c", c);
    }
    append(o, "\"");
}

static void format_json(out_t *o, const hak_stats_t *st) {
    append(o, "{\"name\":");
    append_json_string(o, st->name, sizeof st->name);
    append(o,
           ",\"heaps\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"live_bytes\":%" PRIu64
           ",\"peak_live_bytes\":%" PRIu64 ",\"reserved_bytes\":%" PRIu64 ",\"committed_bytes\":%" PRIu64
           ",\"cached_bytes\":%" PRIu64 ",\"large_blocks\":%" PRIu64 ",\"large_bytes\":%" PRIu64
           ",\"held_bytes\":%" PRIu64 ",\"peak_held_bytes\":%" PRIu64 ",\"limit_bytes\":%" PRIu64,
           st->heap_count, st->live_blocks, st->live_bytes, st->peak_live_bytes, st->reserved_bytes,
           st->committed_bytes, st->cached_bytes, st->large_blocks, st->large_bytes, st->held_bytes,
           st->peak_held_bytes, st->limit_bytes);
    const char *sep = "";
    append(o, ",\"events\":{");
#define EVENT_JSON(name)                                                                                     \
    append(o, "%s\"" #name "\":%" PRIu64, sep, st->name);                                                    \
    sep = ",";
    HEAP_EVENTS(EVENT_JSON)
    PROCESS_EVENTS(EVENT_JSON)
#undef EVENT_JSON
    append(o, "},\"classes\":[");
    for (unsigned c = 0; c < st->class_count; c++)
        append(o, "%s{\"block_size\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"slabs\":%" PRIu64 "}",
               c ? "," : "", st->classes[c].block_size, st->classes[c].live_blocks, st->classes[c].slabs);
    append(o, "]}\n");
}

/* No ';' in the text: programs such as CMake run children with their stderr captured into lists. */
static void format_text(out_t *o, const hak_stats_t *st, bool process) {
    append(o,
           "hakmem stats (%s): heaps %" PRIu64 "\n"
           "  live      %" PRIu64 " blocks, %" PRIu64 " bytes\n"
           "  held      %" PRIu64 " bytes, peak %" PRIu64 " (spans and large blocks)\n"
           "  large     %" PRIu64 " blocks, %" PRIu64 " bytes\n"
           "  reserved  %" PRIu64 " bytes, committed %" PRIu64 ", cached %" PRIu64 "\n",
           st->name, st->heap_count, st->live_blocks, st->live_bytes, st->held_bytes, st->peak_held_bytes,
           st->large_blocks, st->large_bytes, st->reserved_bytes, st->committed_bytes, st->cached_bytes);
    if (st->limit_bytes != 0)
        append(o, "  limit     %" PRIu64 " bytes\n", st->limit_bytes);
    append(o,
           "  slow      %" PRIu64 " allocations, %" PRIu64 " frees (%" PRIu64 " remote frees collected)\n"
           "  spans     %" PRIu64 " carved, %" PRIu64 " released\n"
           "  superslabs %" PRIu64 " mapped, %" PRIu64 " reused, %" PRIu64 " adopted",
           st->alloc_slow, st->free_slow, st->remote_frees, st->spans_carved, st->spans_released,
           st->superslabs_mapped, st->superslabs_reused, st->superslabs_adopted);
    if (process)
        append(o, ", %" PRIu64 " purged", st->superslabs_purged);
    append(o,
           "\n"
           "  large ops %" PRIu64 " allocated, %" PRIu64 " freed, bigcache %" PRIu64 " hits, %" PRIu64
           " misses",
           st->large_allocs, st->large_frees, st->bigcache_hits, st->bigcache_misses);
    if (process)
        append(o,
               ", %" PRIu64 " trims\n"
               "  syscalls  mmap %" PRIu64 ", munmap %" PRIu64 ", mremap %" PRIu64 ", madvise %" PRIu64,
               st->bigcache_trims, st->mmap_calls, st->munmap_calls, st->mremap_calls, st->madvise_calls);
    append(o, "\n");
    for (unsigned c = 0; c < st->class_count; c++)
        if (st->classes[c].slabs != 0)
            append(o, "  class %6" PRIu64 " B: %" PRIu64 " live blocks in %" PRIu64 " spans\n",
                   st->classes[c].block_size, st->classes[c].live_blocks, st->classes[c].slabs);
}

/* Formats the statistics of heap (NULL: the process) into o; false (errno EINVAL) for a bad heap. */
static bool format_stats(out_t *o, hak_heap_t *heap, int json) {
    hak_stats_t st;
    st.size = sizeof st;
    o->len = 0;
    o->buf[0] = '\0';
    if (hak_heap_stats(heap, &st) != 0)
        return false;
    if (json)
        format_json(o, &st);
    else
        format_text(o, &st, heap == NULL);
    return true;
}

int hak_heap_stats_print(hak_heap_t *heap, FILE *out, int json) {
    out_t o;
    if (!format_stats(&o, heap, json))
        return -1;
    if (out != NULL && o.len != 0)
        fwrite(o.buf, 1, o.len, out);
    return 0;
}

void hak_stats_print(FILE *out, int json) { hak_heap_stats_print(NULL, out, json); }

static void write_all(int fd, const char *buf, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

int hak_stats_write(int fd, hak_heap_t *heap, int json) {
    out_t o;
    if (!format_stats(&o, heap, json))
        return -1;
    write_all(fd, o.buf, o.len);
    return 0;
}

/* HAKMEM_SHOW_STATS=1: print the process statistics at exit. Some programs (coreutils) close stderr in an
 * atexit handler before library destructors run, so a private duplicate of fd 2 is taken when the option is
 * turned on (at start-up, or by hak_option_set) and the text goes there with write(2). */
static int stats_fd = -1;

void hak_stats_show_at_exit(bool on) {
    if (!on || __atomic_load_n(&stats_fd, __ATOMIC_ACQUIRE) >= 0)
        return;
    int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    int none = -1;
    if (fd >= 0 &&
        !__atomic_compare_exchange_n(&stats_fd, &none, fd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        close(fd); /* another thread turned it on first */
}

void hak_stats_init(void) { hak_stats_show_at_exit(hak_options.show_stats); }

__attribute__((destructor)) static void show_stats_at_exit(void) {
    int fd = __atomic_load_n(&stats_fd, __ATOMIC_ACQUIRE);
    if (fd < 0 || !hak_options.show_stats)
        return;
    hak_stats_write(fd, NULL, 0);
}
