// The kernels' bodies, included once per instruction set by kernels.c with RW_TARGET (a target attribute, or
// nothing), RW_SUFFIX (the function-name suffix), RW_VW (floats per vector) and RW_EVEN (the even lane indices of
// two vectors) defined. Plain C vector arithmetic: the compiler maps it onto the target's registers.

#define RW_CAT_(a, b) a##b
#define RW_CAT(a, b) RW_CAT_(a, b)
#define RW_FN(name) RW_CAT(name, RW_SUFFIX)
#define RW_VF RW_CAT(rw_vf_, RW_SUFFIX)
#define RW_INLINE static inline __attribute__((always_inline)) RW_TARGET

typedef float RW_VF __attribute__((vector_size(RW_VW * sizeof(float))));

// Output blocks (at most RW_MAXOB outputs) and vectors of pixels per tile, so that outputs x vectors sums fit the
// registers with the loads beside them: AVX-512 has 32 vector registers (8 outputs x 3 vectors = 24 sums), AVX2
// and SSE 16: 6 outputs x 2 vectors = 12 sums, enough independent multiply-adds to cover their latency on two
// FMA units, with 2 pixel loads and 6 weight broadcasts per 12 (8 outputs x 1 vector had 8 sums and 9 loads per 8:
// ESPNet 512x256 one thread 56.4 to 45.9 ms, ESPNetv2 47.9 to 40.4 ms on an AVX2 CPU; 4 x 3 ran slower than both).
#if RW_VW == 16
#define RW_MAXOB 8
#define RW_NX34 4
#define RW_NX56 4
#define RW_NX78 3
#else
#define RW_MAXOB 6
#define RW_NX34 2
#define RW_NX56 2
#define RW_NX78 1
#endif

// Eight or sixteen consecutive floats from anywhere.
RW_INLINE RW_VF RW_FN(load1)(const float *p) {
    RW_VF v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

// Every other float from `p`: a vector of stride-2 inputs.
RW_INLINE RW_VF RW_FN(load2)(const float *p) {
    RW_VF a, b;
    __builtin_memcpy(&a, p, sizeof a);
    __builtin_memcpy(&b, p + RW_VW, sizeof b);
    return __builtin_shufflevector(a, b, RW_EVEN);
}

RW_INLINE RW_VF RW_FN(load)(const float *p, const int step) {
    return step == 1 ? RW_FN(load1)(p) : RW_FN(load2)(p);
}

RW_INLINE RW_VF RW_FN(splat)(float s) {
    RW_VF v = {0};
    return v + s;
}

// PReLU as max(v, 0) + slope * min(v, 0): one of the two terms is zero, so the value is exact.
RW_INLINE RW_VF RW_FN(prelu)(RW_VF v, float slope) {
    RW_VF zero = {0};
    return __builtin_elementwise_max(v, zero) + __builtin_elementwise_min(v, zero) * slope;
}

// The first `count` lanes of `v` (all of them when count >= RW_VW) at `p`.
RW_INLINE void RW_FN(store)(float *p, RW_VF v, int count) {
    if (count >= RW_VW) {
        __builtin_memcpy(p, &v, sizeof v);
    } else {
        float lanes[RW_VW];
        __builtin_memcpy(lanes, &v, sizeof v);
        for (int i = 0; i < count; i++) p[i] = lanes[i];
    }
}

// The first `count` lanes of `p` (all of them when count >= RW_VW); lanes past `count` are never read.
RW_INLINE RW_VF RW_FN(load_part)(const float *p, int count) {
    if (count >= RW_VW) return RW_FN(load1)(p);
    float lanes[RW_VW] = {0};
    for (int i = 0; i < count; i++) lanes[i] = p[i];
    RW_VF v;
    __builtin_memcpy(&v, lanes, sizeof v);
    return v;
}

// `nx` vectors of outputs from column `ox` of row `oy` for `ob` output channels from `first`, summed over the
// group's inputs `i0..<i1` and the taps in registers; `count` is how many of the last vector's lanes are stored.
// The first inputs start from the bias, later ones from the partial sums stored before (float stores and loads
// are exact, so the sums are those of one pass); the last ones apply the PReLU.
RW_INLINE void RW_FN(conv_tile)(const rw_conv3x3 *c, const float *row, const long *offsets, int first,
                                const int ob, const int nx, const int step, int oy, int ox, int count, int i0, int i1) {
    const long weights_per_output = (long)c->in_per_group * 9;
    float *out = c->output + first * c->output_plane + (long)oy * c->out_width + ox;
    RW_VF acc[8][4];
#pragma clang loop unroll(full)
    for (int o = 0; o < ob; o++) {
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) {
            acc[o][x] = i0 == 0 ? RW_FN(splat)(c->bias[first + o])
                                : RW_FN(load_part)(out + o * c->output_plane + x * RW_VW, x == nx - 1 ? count : RW_VW);
        }
    }
    const float *w = c->weight + (long)first * weights_per_output;
    for (int i = i0; i < i1; i++) {
        const float *src = row + i * c->plane_stride + (long)ox * step;
        for (int t = 0; t < 9; t++) {
            RW_VF v[4];
#pragma clang loop unroll(full)
            for (int x = 0; x < nx; x++) v[x] = RW_FN(load)(src + offsets[t] + x * RW_VW * step, step);
#pragma clang loop unroll(full)
            for (int o = 0; o < ob; o++) {
                const float k = w[o * weights_per_output + i * 9 + t];
#pragma clang loop unroll(full)
                for (int x = 0; x < nx; x++) acc[o][x] += v[x] * k;
            }
        }
    }
    const int last = i1 == c->in_per_group;
#pragma clang loop unroll(full)
    for (int o = 0; o < ob; o++) {
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) {
            const int lanes = x == nx - 1 ? count : RW_VW;
            RW_VF y = acc[o][x];
            if (last && c->residual) {
                const float *r = c->residual + (first + o) * c->residual_plane + (long)oy * c->out_width + ox;
                y += RW_FN(load_part)(r + x * RW_VW, lanes);
            }
            if (last && c->slopes) y = RW_FN(prelu)(y, c->slopes[first + o]);
            RW_FN(store)(out + o * c->output_plane + x * RW_VW, y, lanes);
        }
    }
}

// Row `oy` of `ob` output channels from `first`, over inputs `i0..<i1`: blocks of `nx` vectors, then single ones.
RW_INLINE void RW_FN(conv_row)(const rw_conv3x3 *c, const float *row, const long *offsets, int first, const int ob,
                               const int nx, const int step, int oy, int i0, int i1) {
    const int ow = c->out_width;
    int ox = 0;
    for (; ox + nx * RW_VW <= ow; ox += nx * RW_VW)
        RW_FN(conv_tile)(c, row, offsets, first, ob, nx, step, oy, ox, RW_VW, i0, i1);
    if (nx > 2) {
        for (; ox + 2 * RW_VW <= ow; ox += 2 * RW_VW)
            RW_FN(conv_tile)(c, row, offsets, first, ob, 2, step, oy, ox, RW_VW, i0, i1);
    }
    for (; ox < ow; ox += RW_VW)
        RW_FN(conv_tile)(c, row, offsets, first, ob, 1, step, oy, ox, ow - ox, i0, i1);
}

// Every output of group `g` in blocks of at most RW_MAXOB, as even as they come (25 outputs: 7, 6, 6, 6 with eight,
// five of 5 with six), each block run by `CASE(n, vectors)` with `first` its first output channel.
#define RW_OUTPUT_BLOCKS(CASE)                                                                          \
    for (int blocks = (cout + RW_MAXOB - 1) / RW_MAXOB, done = 0; blocks > 0; blocks--) {               \
        const int n = (cout - done + blocks - 1) / blocks;                                              \
        const int first = g * cout + done;                                                              \
        switch (n) {                                                                                    \
            CASE(1, 4)                                                                                  \
            CASE(2, 4)                                                                                  \
            CASE(3, RW_NX34)                                                                            \
            CASE(4, RW_NX34)                                                                            \
            CASE(5, RW_NX56)                                                                            \
            CASE(6, RW_NX56)                                                                            \
            CASE(7, RW_NX78)                                                                            \
            default: CASE(8, RW_NX78)                                                                   \
        }                                                                                               \
        done += n;                                                                                      \
    }

// Up to RW_MAXOB outputs share each input load; with few outputs several vectors of pixels keep enough independent
// sums in flight to hide the multiply-add latency.
#define RW_CONV_CASE(n, x)                                                                              \
    case n:                                                                                             \
        if (c->stride == 1) RW_FN(conv_row)(c, row, offsets, first, n, x, 1, oy, i0, i1);              \
        else RW_FN(conv_row)(c, row, offsets, first, n, x, 2, oy, i0, i1);                            \
        break;

// Per output row, the inputs sixteen channels at a time (the rows one step reads, 16 channels x 3 taps, stay in the
// near caches; 131 inputs at once ran at a seventh of the speed), and for each such step every block of at most
// RW_MAXOB outputs, as even as they come, so all outputs use the rows while they are near.
RW_TARGET static void RW_FN(conv3x3)(const rw_conv3x3 *c, int g0, int g1, int r0, int r1) {
    const int cin = c->in_per_group, cout = c->out_per_group, step = c->stride;
    const long rs = c->row_stride;
    const int d = c->dilation, p = c->padding;
    long offsets[9];
    for (int t = 0; t < 9; t++) offsets[t] = (long)(t / 3) * d * rs + (t % 3) * d;
    for (int g = g0; g < g1; g++) {
        const float *group = c->input + (long)g * cin * c->plane_stride;
        for (int oy = r0; oy < r1; oy++) {
            const float *row = group + (long)(oy * step - p) * rs - p;
            for (int i0 = 0; i0 < cin; i0 += 16) {
                const int i1 = cin - i0 > 16 ? i0 + 16 : cin;
                RW_OUTPUT_BLOCKS(RW_CONV_CASE)
            }
        }
    }
}
#undef RW_CONV_CASE

// `nx` vectors from column `ox` of row `oy` of input channel `j`, every branch.
RW_INLINE void RW_FN(hier_tile)(const rw_hierarchical *h, int j, const int nx, const int step, int oy, int ox,
                                int count) {
    const int n = h->channels, k = h->branches;
    const long rs = h->row_stride;
    const float *source = h->input + (long)j * h->plane_stride;
    RW_VF running[4];
#pragma clang loop unroll(full)
    for (int x = 0; x < nx; x++) running[x] = RW_FN(splat)(0);
    for (int b = 0; b < k; b++) {
        const int d = h->dilations[b], ch = b * n + j;
        const float *p = source + (long)(oy * step - d) * rs - d + (long)ox * step;
        const float *taps = h->taps + ((long)j * k + b) * 9;
        RW_VF sum[4];
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) sum[x] = RW_FN(splat)(h->biases[j * k + b]);
#pragma clang loop unroll(full)
        for (int t = 0; t < 9; t++) {
            const float *q = p + (long)(t / 3) * d * rs + (t % 3) * d;
#pragma clang loop unroll(full)
            for (int x = 0; x < nx; x++) sum[x] += RW_FN(load)(q + x * RW_VW * step, step) * taps[t];
        }
        float *dst = h->output + ch * h->output_plane + (long)oy * h->out_width + ox;
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) {
            running[x] += sum[x];
            RW_VF y = RW_FN(prelu)(running[x] * h->scale[ch] + h->shift[ch], h->slopes[ch]);
            RW_FN(store)(dst + x * RW_VW, y, x == nx - 1 ? count : RW_VW);
        }
    }
}

RW_INLINE void RW_FN(hier_channel)(const rw_hierarchical *h, int j, const int step) {
    const int ow = h->out_width;
    for (int oy = 0; oy < h->out_height; oy++) {
        int ox = 0;
        for (; ox + 4 * RW_VW <= ow; ox += 4 * RW_VW) RW_FN(hier_tile)(h, j, 4, step, oy, ox, RW_VW);
        for (; ox < ow; ox += RW_VW) RW_FN(hier_tile)(h, j, 1, step, oy, ox, ow - ox);
    }
}

RW_TARGET static void RW_FN(hierarchical)(const rw_hierarchical *h, int j0, int j1) {
    for (int j = j0; j < j1; j++) {
        if (h->stride == 1) RW_FN(hier_channel)(h, j, 1);
        else RW_FN(hier_channel)(h, j, 2);
    }
}

// `nx` vectors of pixels from `px` for `ob` outputs from `first`, over inputs `i0..<i1` of group `g`; partial sums
// go through the output between input passes as in `conv_tile`, and the last pass adds the residual and applies
// the PReLU.
RW_INLINE void RW_FN(pointwise_tile)(const rw_conv1x1 *c, int g, int first, const int ob, const int nx, long px,
                                     int count, int i0, int i1) {
    const int cin = c->in_per_group;
    float *out = c->output + first * c->output_plane + px;
    RW_VF acc[8][4];
#pragma clang loop unroll(full)
    for (int o = 0; o < ob; o++) {
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) {
            acc[o][x] = i0 == 0 ? RW_FN(splat)(c->bias[first + o])
                                : RW_FN(load_part)(out + o * c->output_plane + x * RW_VW, x == nx - 1 ? count : RW_VW);
        }
    }
    const float *src = c->input + (long)g * cin * c->input_plane + px;
    const float *w = c->weight + (long)first * cin;
    for (int i = i0; i < i1; i++) {
        RW_VF v[4];
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) v[x] = RW_FN(load_part)(src + i * c->input_plane + x * RW_VW, x == nx - 1 ? count : RW_VW);
#pragma clang loop unroll(full)
        for (int o = 0; o < ob; o++) {
            const float k = w[o * cin + i];
#pragma clang loop unroll(full)
            for (int x = 0; x < nx; x++) acc[o][x] += v[x] * k;
        }
    }
    const int last = i1 == cin;
#pragma clang loop unroll(full)
    for (int o = 0; o < ob; o++) {
#pragma clang loop unroll(full)
        for (int x = 0; x < nx; x++) {
            const int lanes = x == nx - 1 ? count : RW_VW;
            RW_VF y = acc[o][x];
            if (last && c->residual)
                y += RW_FN(load_part)(c->residual + (first + o) * c->residual_plane + px + x * RW_VW, lanes);
            if (last && c->slopes) y = RW_FN(prelu)(y, c->slopes[first + o]);
            RW_FN(store)(out + o * c->output_plane + x * RW_VW, y, lanes);
        }
    }
}

RW_INLINE void RW_FN(pointwise_span)(const rw_conv1x1 *c, int g, int first, const int ob, const int nx, long p0,
                                     long p1, int i0, int i1) {
    long px = p0;
    // Whole tiles pass `count` as the constant RW_VW even when `nx` is 1: a run-time count would put a branch on
    // every input load of the inner loop (and, with 8 sums in 16 registers, spills around it).
    for (; px + nx * RW_VW <= p1; px += nx * RW_VW) RW_FN(pointwise_tile)(c, g, first, ob, nx, px, RW_VW, i0, i1);
    for (; px < p1; px += RW_VW) {
        const long left = p1 - px;
        RW_FN(pointwise_tile)(c, g, first, ob, 1, px, left < RW_VW ? (int)left : RW_VW, i0, i1);
    }
}

#ifndef RW_PW_SPAN
#define RW_PW_SPAN 192
#define RW_PW_PASS 32
#endif
#define RW_POINTWISE_CASE(n, x)                                                                         \
    case n: RW_FN(pointwise_span)(c, g, first, n, x, s0, s1, i0, i1); break;

// Spans of 256 pixels: a pass's sixteen input rows of a span (16 KB) stay in L1 while every output block reads
// them; the outputs' partial sums of a span stay in L2.
RW_TARGET static void RW_FN(pointwise)(const rw_conv1x1 *c, int g0, int g1, long p0, long p1) {
    const int cin = c->in_per_group, cout = c->out_per_group;
    for (int g = g0; g < g1; g++) {
        for (long s0 = p0; s0 < p1; s0 += RW_PW_SPAN) {
            const long s1 = p1 - s0 > RW_PW_SPAN ? s0 + RW_PW_SPAN : p1;
            for (int i0 = 0; i0 < cin; i0 += RW_PW_PASS) {
                const int i1 = cin - i0 > RW_PW_PASS ? i0 + RW_PW_PASS : cin;
                RW_OUTPUT_BLOCKS(RW_POINTWISE_CASE)
            }
        }
    }
}
#undef RW_POINTWISE_CASE

RW_TARGET static void RW_FN(interleave)(const float *even, const float *odd, float *out, int count, float scale,
                                        float bias, int has_slope, float slope) {
    int x = 0;
    for (; x + RW_VW <= count; x += RW_VW) {
        RW_VF a = RW_FN(load1)(even + x) * scale + bias, b = RW_FN(load1)(odd + x) * scale + bias;
        if (has_slope) {
            a = RW_FN(prelu)(a, slope);
            b = RW_FN(prelu)(b, slope);
        }
        RW_VF lo = __builtin_shufflevector(a, b, RW_ZIP_LO), hi = __builtin_shufflevector(a, b, RW_ZIP_HI);
        __builtin_memcpy(out + 2 * x, &lo, sizeof lo);
        __builtin_memcpy(out + 2 * x + RW_VW, &hi, sizeof hi);
    }
    for (; x < count; x++) {
        float a = even[x] * scale + bias, b = odd[x] * scale + bias;
        if (has_slope) {
            a = a < 0 ? a * slope : a;
            b = b < 0 ? b * slope : b;
        }
        out[2 * x] = a;
        out[2 * x + 1] = b;
    }
}

// One source row interpolated along x: `line[x] = l + (u - l) * f` (the resize's first step).
RW_INLINE void RW_FN(lerp_row)(const int *lower, const int *upper, const float *fraction, int w,
                                         const float *src, int src_width, float *line) {
#pragma clang fp contract(off)
    int x = 0;
#if RW_VW == 16
    // Sixteen outputs whose taps lie within sixteen consecutive inputs (an enlargement): one load, two permutes.
    const int last = (int)(src_width - 16);
    for (; x + 16 <= w; x += 16) {
        const int base = lower[x];
        if (base > last || upper[x + 15] - base >= 16) break;
        __m512i base16 = _mm512_set1_epi32(base);
        __m512i lo = _mm512_sub_epi32(_mm512_loadu_si512(lower + x), base16);
        __m512i hi = _mm512_sub_epi32(_mm512_loadu_si512(upper + x), base16);
        __m512 window = _mm512_loadu_ps(src + base);
        __m512 l = _mm512_permutexvar_ps(lo, window), u = _mm512_permutexvar_ps(hi, window);
        _mm512_storeu_ps(line + x, _mm512_add_ps(l, _mm512_mul_ps(_mm512_sub_ps(u, l), _mm512_loadu_ps(fraction + x))));
    }
#elif RW_VW == 8 && defined(__x86_64__)
    // The same with eight outputs within eight consecutive inputs (AVX2's permute across lanes).
    const int last = (int)(src_width - 8);
    for (; x + 8 <= w; x += 8) {
        const int base = lower[x];
        if (base > last || upper[x + 7] - base >= 8) break;
        __m256i base8 = _mm256_set1_epi32(base);
        __m256i lo = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(lower + x)), base8);
        __m256i hi = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(upper + x)), base8);
        __m256 window = _mm256_loadu_ps(src + base);
        __m256 l = _mm256_permutevar8x32_ps(window, lo), u = _mm256_permutevar8x32_ps(window, hi);
        _mm256_storeu_ps(line + x, _mm256_add_ps(l, _mm256_mul_ps(_mm256_sub_ps(u, l), _mm256_loadu_ps(fraction + x))));
    }
#endif
    for (; x < w; x++) {
        float l = src[lower[x]], u = src[upper[x]];
        line[x] = l + (u - l) * fraction[x];
    }
}

// `sums[x] += v[x]` for x in 0..<w.
RW_INLINE void RW_FN(summary_accumulate)(float *sums, const float *v, int w) {
    int x = 0;
    for (; x + RW_VW <= w; x += RW_VW) {
        RW_VF t = RW_FN(load1)(sums + x) + RW_FN(load1)(v + x);
        __builtin_memcpy(sums + x, &t, sizeof t);
    }
    for (; x < w; x++) sums[x] += v[x];
}

// Each block's sum from its column sums, left to right.
RW_INLINE float RW_FN(summary_block)(const float *columns, int cell) {
    float sum = 0;
    for (int j = 0; j < cell; j++) sum += columns[j];
    return sum;
}

// The taps inside the map of output (oy, ox), summed from zero row by row, divided by 9.
RW_INLINE float RW_FN(average_border)(const float *src, int h, int w, int oy, int ox) {
    float sum = 0;
    int y0 = oy * 2 - 1 < 0 ? 0 : oy * 2 - 1, y1 = oy * 2 + 1 > h - 1 ? h - 1 : oy * 2 + 1;
    int x0 = ox * 2 - 1 < 0 ? 0 : ox * 2 - 1, x1 = ox * 2 + 1 > w - 1 ? w - 1 : ox * 2 + 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) sum += src[(long)y * w + x];
    return sum / 9;
}

// `line[ox] = (row[2ox - 1] + row[2ox]) + row[2ox + 1]` for ox in 1..<end.
RW_INLINE void RW_FN(triples)(const float *row, float *line, int end, int w) {
    int ox = 1;
    // The third load of a vector reads up to column 2ox + 2 * RW_VW: it has to stay in the row.
    for (; ox + RW_VW <= end && 2 * ox + 2 * RW_VW < w; ox += RW_VW) {
        const float *p = row + 2 * ox - 1;
        RW_VF a = RW_FN(load2)(p), b = RW_FN(load2)(p + 1), c = RW_FN(load2)(p + 2);
        RW_VF t = (a + b) + c;
        __builtin_memcpy(line + ox, &t, sizeof t);
    }
    for (; ox < end; ox++) line[ox] = (row[2 * ox - 1] + row[2 * ox]) + row[2 * ox + 1];
}

RW_TARGET static void RW_FN(average3x3s2)(const float *input, int h, int w, float *output, int c0, int c1,
                                          float *scratch) {
#pragma clang fp contract(off)
    const int oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1;
    // Columns 1..<end have all three taps inside the row.
    const int end = (w - 1) / 2 < ow ? (w - 1) / 2 : ow;
    float *rows[3] = {scratch, scratch + ow, scratch + 2L * ow};
    for (int c = c0; c < c1; c++) {
        const float *src = input + (long)c * h * w;
        float *dst = output + (long)c * oh * ow;
        int cached = -1;  // the input row whose triples rows[0] holds
        for (int oy = 0; oy < oh; oy++) {
            float *line = dst + (long)oy * ow;
            if (oy * 2 - 1 < 0 || oy * 2 + 1 >= h) {
                for (int ox = 0; ox < ow; ox++) line[ox] = RW_FN(average_border)(src, h, w, oy, ox);
                continue;
            }
            const int r = oy * 2 - 1;
            if (cached == r) {
                float *t = rows[0];
                rows[0] = rows[2];
                rows[2] = t;
            } else {
                RW_FN(triples)(src + (long)r * w, rows[0], end, w);
            }
            RW_FN(triples)(src + (long)(r + 1) * w, rows[1], end, w);
            RW_FN(triples)(src + (long)(r + 2) * w, rows[2], end, w);
            cached = r + 2;
            line[0] = RW_FN(average_border)(src, h, w, oy, 0);
            const float *a = rows[0], *b = rows[1], *d = rows[2];
            int ox = 1;
            for (; ox + RW_VW <= end; ox += RW_VW) {
                RW_VF t = (RW_FN(load1)(a + ox) + RW_FN(load1)(b + ox)) + RW_FN(load1)(d + ox);
                t = t / 9;
                __builtin_memcpy(line + ox, &t, sizeof t);
            }
            for (; ox < end; ox++) line[ox] = ((a[ox] + b[ox]) + d[ox]) / 9;
            for (; ox < ow; ox++) line[ox] = RW_FN(average_border)(src, h, w, oy, ox);
        }
    }
}

RW_TARGET static void RW_FN(resize)(const rw_resize *r, int c0, int c1, float *scratch) {
#pragma clang fp contract(off)
    const int w = r->width, sw = r->source_width;
    float *rowA = scratch, *rowB = scratch + w;
    int *lower = (int *)(scratch + 2L * w), *upper = lower + w;
    for (int x = 0; x < w; x++) {
        lower[x] = (int)r->x_lower[x];
        upper[x] = (int)r->x_upper[x];
    }
    const long plane = (long)sw * r->source_height;
    for (int c = c0; c < c1; c++) {
        const float *src = r->source + c * plane;
        float *dst = r->output + c * r->plane_stride, *top = rowA, *bottom = rowB;
        long topRow = -1, bottomRow = -1;
        for (int y = 0; y < r->height; y++) {
            const long ra = r->y_lower[y], rb = r->y_upper[y];
            if (ra != topRow) {
                if (ra == bottomRow) {
                    float *t = top;
                    top = bottom;
                    bottom = t;
                    topRow = bottomRow;
                    bottomRow = -1;
                } else {
                    RW_FN(lerp_row)(lower, upper, r->x_fraction, w, src + ra * sw, sw, top);
                    topRow = ra;
                }
            }
            if (rb != bottomRow) {
                RW_FN(lerp_row)(lower, upper, r->x_fraction, w, src + rb * sw, sw, bottom);
                bottomRow = rb;
            }
            const float fy = r->y_fraction[y];
            const RW_VF vfy = RW_FN(splat)(fy);
            float *line = dst + y * r->row_stride;
            int x = 0;
            if (r->addend) {
                const float *add = r->addend + c * r->plane_stride + y * r->row_stride;
                const float f = r->factors[c], k = r->scale[c], t = r->shift[c];
                const int prelu = r->slopes != 0;
                const float slope = prelu ? r->slopes[c] : 0;
                for (; x + RW_VW <= w; x += RW_VW) {
                    RW_VF ta = RW_FN(load1)(top + x), tb = RW_FN(load1)(bottom + x);
                    RW_VF v = ta + (tb - ta) * vfy;
                    v = (v + RW_FN(load1)(add + x) * f) * k + t;
                    if (prelu) v = RW_FN(prelu)(v, slope);
                    __builtin_memcpy(line + x, &v, sizeof v);
                }
                for (; x < w; x++) {
                    float v = top[x] + (bottom[x] - top[x]) * fy;
                    v = (v + add[x] * f) * k + t;
                    line[x] = prelu && !(v > 0) ? v * slope : v;
                }
                continue;
            }
            for (; x + RW_VW <= w; x += RW_VW) {
                RW_VF ta = RW_FN(load1)(top + x), tb = RW_FN(load1)(bottom + x);
                RW_VF v = ta + (tb - ta) * vfy;
                __builtin_memcpy(line + x, &v, sizeof v);
            }
            for (; x < w; x++) line[x] = top[x] + (bottom[x] - top[x]) * fy;
        }
    }
}

RW_TARGET static void RW_FN(score_summary)(const rw_score_summary *s, int r0, int r1, float *scratch, float *grid,
                                           unsigned char *map, unsigned char *cells) {
#pragma clang fp contract(off)
    typedef int vi __attribute__((vector_size(RW_VW * sizeof(int))));
    const int channels = s->channels, classes = s->classes, w = s->width, cell = s->cell, gw = w / cell;
    const long plane = (long)s->source_width * s->source_height;
    // Per channel the two x-interpolated source rows the current output row blends (kept while the next rows
    // blend them too); the row's values, their max over the classes and argmax over every channel; the column
    // sums of the band of `cell` rows (max-logit, then each class); the x taps as 32-bit indices.
    float *lines = scratch, *value = lines + 2L * channels * w, *top = value + w, *best = top + w;
    int *index = (int *)(best + w), *lower = index + w, *upper = lower + w;
    float *meanColumns = (float *)(upper + w), *classColumns = meanColumns + w;
    for (int x = 0; x < w; x++) {
        lower[x] = (int)s->x_lower[x];
        upper[x] = (int)s->x_upper[x];
    }
    long cachedTop[channels], cachedBottom[channels];
    float *upperLine[channels], *lowerLine[channels];
    for (int c = 0; c < channels; c++) {
        cachedTop[c] = cachedBottom[c] = -1;
        upperLine[c] = lines + 2L * c * w;
        lowerLine[c] = upperLine[c] + w;
    }
    for (int y = r0; y < r1; y++) {
        const int rowInCell = (y - r0) % cell;
        if (rowInCell == 0) {
            for (int x = 0; x < w; x++) meanColumns[x] = 0;
            if (cells) for (long i = 0; i < (long)classes * w; i++) classColumns[i] = 0;
        }
        const long ra = s->y_lower[y], rb = s->y_upper[y];
        const float fy = s->y_fraction[y];
        for (int c = 0; c < channels; c++) {
            const float *src = s->source + c * plane;
            if (ra != cachedTop[c]) {
                if (ra == cachedBottom[c]) {
                    float *t = upperLine[c];
                    upperLine[c] = lowerLine[c];
                    lowerLine[c] = t;
                    cachedTop[c] = cachedBottom[c];
                    cachedBottom[c] = -1;
                } else {
                    RW_FN(lerp_row)(lower, upper, s->x_fraction, w, src + ra * s->source_width, s->source_width,
                                              upperLine[c]);
                    cachedTop[c] = ra;
                }
            }
            if (rb != cachedBottom[c]) {
                RW_FN(lerp_row)(lower, upper, s->x_fraction, w, src + rb * s->source_width, s->source_width,
                                          lowerLine[c]);
                cachedBottom[c] = rb;
            }
            const float *a = upperLine[c], *b = lowerLine[c];
            int x = 0;
            const RW_VF vfy = RW_FN(splat)(fy);
            for (; x + RW_VW <= w; x += RW_VW) {
                RW_VF ta = RW_FN(load1)(a + x), tb = RW_FN(load1)(b + x);
                RW_VF v = ta + (tb - ta) * vfy;
                __builtin_memcpy(value + x, &v, sizeof v);
            }
            for (; x < w; x++) value[x] = a[x] + (b[x] - a[x]) * fy;

            // The max over the classes, the argmax over every channel: a later channel wins only when greater.
            if (c < classes) {
                if (c == 0) {
                    __builtin_memcpy(top, value, sizeof(float) * w);
                } else {
                    for (x = 0; x + RW_VW <= w; x += RW_VW) {
                        RW_VF v = RW_FN(load1)(value + x), m = RW_FN(load1)(top + x);
                        vi greater = (vi)(v > m);
                        RW_VF chosen = (RW_VF)(((vi)v & greater) | ((vi)m & ~greater));
                        __builtin_memcpy(top + x, &chosen, sizeof chosen);
                    }
                    for (; x < w; x++) if (value[x] > top[x]) top[x] = value[x];
                }
                if (cells) RW_FN(summary_accumulate)(classColumns + (long)c * w, value, w);
            }
            if (map) {
                if (c == 0) {
                    __builtin_memcpy(best, value, sizeof(float) * w);
                    for (x = 0; x < w; x++) index[x] = 0;
                } else {
                    const vi vc = (vi){0} + c;
                    for (x = 0; x + RW_VW <= w; x += RW_VW) {
                        RW_VF v = RW_FN(load1)(value + x), m = RW_FN(load1)(best + x);
                        vi k, greater = (vi)(v > m);
                        __builtin_memcpy(&k, index + x, sizeof k);
                        RW_VF chosen = (RW_VF)(((vi)v & greater) | ((vi)m & ~greater));
                        k = (vc & greater) | (k & ~greater);
                        __builtin_memcpy(best + x, &chosen, sizeof chosen);
                        __builtin_memcpy(index + x, &k, sizeof k);
                    }
                    for (; x < w; x++) if (value[x] > best[x]) { best[x] = value[x]; index[x] = c; }
                }
            }
        }
        if (map) {
            unsigned char *out = map + (long)(y - r0) * w;
            for (int x = 0; x < w; x++) out[x] = (unsigned char)index[x];
        }
        RW_FN(summary_accumulate)(meanColumns, top, w);
        if (rowInCell == cell - 1) {
            const long gy = (y - r0) / cell;
            for (int i = 0; i < gw; i++)
                grid[gy * gw + i] = RW_FN(summary_block)(meanColumns + i * cell, cell) / (float)(cell * cell);
            if (cells) {
                for (int i = 0; i < gw; i++) {
                    float most = -__builtin_inff();
                    int chosen = 0;
                    for (int c = 0; c < classes; c++) {
                        float sum = RW_FN(summary_block)(classColumns + (long)c * w + i * cell, cell);
                        if (sum > most) {
                            most = sum;
                            chosen = c;
                        }
                    }
                    cells[gy * gw + i] = (unsigned char)chosen;
                }
            }
        }
    }
}

#undef RW_OUTPUT_BLOCKS
#undef RW_NX34
#undef RW_NX56
#undef RW_NX78
#undef RW_MAXOB
#undef RW_INLINE
#undef RW_VF
#undef RW_FN
#undef RW_CAT
#undef RW_CAT_
