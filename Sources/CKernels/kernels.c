#include "RoadwatchKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma clang fp contract(fast)

#define RW_EVEN4 0, 2, 4, 6
#define RW_ZIP_LO4 0, 4, 1, 5
#define RW_ZIP_HI4 2, 6, 3, 7
#define RW_ZIP_LO8 0, 8, 1, 9, 2, 10, 3, 11
#define RW_ZIP_HI8 4, 12, 5, 13, 6, 14, 7, 15
#define RW_ZIP_LO16 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define RW_ZIP_HI16 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#define RW_EVEN8 0, 2, 4, 6, 8, 10, 12, 14
#define RW_EVEN16 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30

#define RW_TARGET
#define RW_SUFFIX _generic
#define RW_VW 4
#define RW_EVEN RW_EVEN4
#define RW_ZIP_LO RW_ZIP_LO4
#define RW_ZIP_HI RW_ZIP_HI4
#include "kernels_body.h"
#undef RW_TARGET
#undef RW_SUFFIX
#undef RW_VW
#undef RW_EVEN
#undef RW_ZIP_LO
#undef RW_ZIP_HI

#if defined(__x86_64__)
#define RW_TARGET __attribute__((target("avx2,fma")))
#define RW_SUFFIX _avx2
#define RW_VW 8
#define RW_EVEN RW_EVEN8
#define RW_ZIP_LO RW_ZIP_LO8
#define RW_ZIP_HI RW_ZIP_HI8
#include "kernels_body.h"
#undef RW_TARGET
#undef RW_SUFFIX
#undef RW_VW
#undef RW_EVEN
#undef RW_ZIP_LO
#undef RW_ZIP_HI

#define RW_TARGET __attribute__((target("avx512f,avx2,fma")))
#define RW_SUFFIX _avx512
#define RW_VW 16
#define RW_EVEN RW_EVEN16
#define RW_ZIP_LO RW_ZIP_LO16
#define RW_ZIP_HI RW_ZIP_HI16
#include "kernels_body.h"
#undef RW_TARGET
#undef RW_SUFFIX
#undef RW_VW
#undef RW_EVEN
#undef RW_ZIP_LO
#undef RW_ZIP_HI
#endif

static int detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return RW_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RW_ISA_AVX2;
#endif
    return RW_ISA_GENERIC;
}

// -1 until first asked; a race between two first calls stores the same value.
static _Atomic int supported = -1, selected = -1;

int rw_isa_supported(void) {
    int s = supported;
    if (s < 0) supported = s = detect();
    return s;
}

int rw_isa_current(void) {
    int s = selected;
    if (s < 0) selected = s = rw_isa_supported();
    return s;
}

static int usable(int isa) {
    int best = rw_isa_supported();
    return isa > best ? best : isa;
}

int rw_isa_select(int isa) {
    int best = rw_isa_supported();
    int s = isa < RW_ISA_GENERIC ? RW_ISA_GENERIC : (isa > best ? best : isa);
    selected = s;
    return s;
}

// Set by the Swift side while a pipeline stage's thread does its numeric work (`ComputeThreads.occupy`).
static _Thread_local int occupied = 0;

int rw_thread_occupied(void) { return occupied; }
void rw_set_thread_occupied(int value) { occupied = value; }

// Runs `name` compiled for the instruction set `isa` (lowered to one the CPU runs).
#if defined(__x86_64__)
#define RW_DISPATCH(isa, name, ...)                                                                     \
    switch (usable(isa)) {                                                                              \
    case RW_ISA_AVX512: name##_avx512(__VA_ARGS__); break;                                              \
    case RW_ISA_AVX2: name##_avx2(__VA_ARGS__); break;                                                  \
    default: name##_generic(__VA_ARGS__); break;                                                        \
    }
#else
#define RW_DISPATCH(isa, name, ...) ((void)usable(isa), name##_generic(__VA_ARGS__))
#endif

void rw_conv3x3_run(int isa, const rw_conv3x3 *conv, int group_begin, int group_end, int row_begin, int row_end) {
    RW_DISPATCH(isa, conv3x3, conv, group_begin, group_end, row_begin, row_end);
}

void rw_hierarchical_run(int isa, const rw_hierarchical *h, int channel_begin, int channel_end) {
    RW_DISPATCH(isa, hierarchical, h, channel_begin, channel_end);
}

void rw_interleave_affine(int isa, const float *even, const float *odd, float *out, int count, float scale, float bias,
                          int has_slope, float slope) {
    RW_DISPATCH(isa, interleave, even, odd, out, count, scale, bias, has_slope, slope);
}

void rw_conv1x1_run(int isa, const rw_conv1x1 *conv, int group_begin, int group_end, long pixel_begin, long pixel_end) {
    RW_DISPATCH(isa, pointwise, conv, group_begin, group_end, pixel_begin, pixel_end);
}

long rw_score_summary_scratch(const rw_score_summary *s) {
    long w = s->width;
    return 2L * s->channels * w + 6 * w + (s->classes + 1) * w;
}

void rw_score_summary_run(int isa, const rw_score_summary *s, int row_begin, int row_end, float *scratch, float *grid,
                          unsigned char *class_map, unsigned char *cell_classes) {
    RW_DISPATCH(isa, score_summary, s, row_begin, row_end, scratch, grid, class_map, cell_classes);
}

long rw_resize_scratch(const rw_resize *r) { return 4L * r->width; }

void rw_resize_run(int isa, const rw_resize *r, int channel_begin, int channel_end, float *scratch) {
    RW_DISPATCH(isa, resize, r, channel_begin, channel_end, scratch);
}

void rw_average3x3s2_run(int isa, const float *input, int height, int width, float *output, int channel_begin,
                         int channel_end, float *scratch) {
    RW_DISPATCH(isa, average3x3s2, input, height, width, output, channel_begin, channel_end, scratch);
}
