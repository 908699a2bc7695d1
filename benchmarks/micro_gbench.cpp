/* SPDX-License-Identifier: MIT */
// micro_gbench: Google Benchmark micro-benchmarks of hakmem's C API.
//
//   BM_hak_alloc_free/<size>     hak_alloc + hak_free of one block, for every size class (16 B .. 256 KiB)
//   BM_malloc_free/<size>        the same pair with the C library's malloc/free (this program is linked to
//                                hakmem_static and not preloaded, so malloc is glibc's), for comparison
//   BM_hak_heap_alloc_free/<size> hak_heap_alloc from a private heap + hak_free
//   BM_hak_heap_alloc_destroy/<n> n hak_heap_alloc calls (16..1024 B) then hak_heap_destroy; time per block
//
// Example: micro_gbench --benchmark_min_time=0.05 --benchmark_filter=BM_hak_alloc_free
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include <hakmem/hakmem.h>

namespace {

// hakmem's size classes: 16 B steps up to 128 B, then four classes per doubling up to 256 KiB.
std::vector<long> size_classes() {
    std::vector<long> v;
    for (long s = 16; s <= 128; s += 16) v.push_back(s);
    for (long base = 128; base < 256 * 1024; base *= 2)
        for (long k = 1; k <= 4; k++) v.push_back(base + base / 4 * k);
    return v;
}

void class_args(benchmark::internal::Benchmark *b) {
    for (long s : size_classes()) b->Arg(s);
}

void BM_hak_alloc_free(benchmark::State &state) {
    const size_t n = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void *p = hak_alloc(n);
        benchmark::DoNotOptimize(p);
        hak_free(p);
    }
}
BENCHMARK(BM_hak_alloc_free)->Apply(class_args);

void BM_malloc_free(benchmark::State &state) {
    const size_t n = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void *p = std::malloc(n);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}
BENCHMARK(BM_malloc_free)->Apply(class_args);

void BM_hak_heap_alloc_free(benchmark::State &state) {
    const size_t n = static_cast<size_t>(state.range(0));
    hak_heap_t *heap = hak_heap_create(nullptr);
    for (auto _ : state) {
        void *p = hak_heap_alloc(heap, n);
        benchmark::DoNotOptimize(p);
        hak_free(p);
    }
    hak_heap_destroy(heap);
}
BENCHMARK(BM_hak_heap_alloc_free)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(8192)->Arg(65536);

void BM_hak_heap_alloc_destroy(benchmark::State &state) {
    const long n = state.range(0);
    unsigned x = 12345;
    for (auto _ : state) {
        hak_heap_t *heap = hak_heap_create(nullptr);
        for (long i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            void *p = hak_heap_alloc(heap, 16 + (x >> 16) % 1009);
            benchmark::DoNotOptimize(p);
        }
        hak_heap_destroy(heap);
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_hak_heap_alloc_destroy)->Arg(100)->Arg(10000);

}  // namespace

BENCHMARK_MAIN();
