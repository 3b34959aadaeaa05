#ifndef ROADWATCH_KERNELS_H
#define ROADWATCH_KERNELS_H

// Convolution kernels compiled once per instruction set (AVX-512, AVX2 with FMA, the baseline) and chosen when the
// program runs, so one binary uses the CPU's full vector width and still runs on CPUs without it.
// Every input is a zero-bordered copy (the Swift side's PaddedPlanes): taps near an edge read zeros, and rows are
// long enough that vector loads past the last output stay inside the buffer (those lanes are never stored).

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RW_ISA_GENERIC = 0,  // whatever the compiler's baseline target gives (SSE2 on x86-64)
    RW_ISA_AVX2 = 1,     // AVX2 and FMA, 8 floats a vector
    RW_ISA_AVX512 = 2,   // AVX-512F, 16 floats a vector
};

/// The widest instruction set this CPU runs.
int rw_isa_supported(void);
/// The instruction set the kernels use now (the widest supported unless one was selected).
int rw_isa_current(void);
/// Selects an instruction set, clamped to what the CPU runs; returns the one in use.
int rw_isa_select(int isa);

/// Whether the calling thread is inside `ComputeThreads.occupy` (a flag of the thread's own).
int rw_thread_occupied(void);
void rw_set_thread_occupied(int value);

// Each kernel takes the instruction set to run on (`rw_isa_current()` for the process's choice); a set the CPU
// does not run is lowered to one it does.

/// A short wait for a spinning thread: the x86 PAUSE hint (nothing elsewhere).
static inline void rw_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/// A 3x3 convolution with square stride 1 or 2, any dilation and groups, its bias, an optional residual and an
/// optional PReLU. The input's border may be wider than `padding` (one copy serving several dilations).
typedef struct rw_conv3x3 {
    const float *input;      // pixel (0, 0) of input channel 0
    long plane_stride;       // floats from one input channel to the next
    long row_stride;         // floats from one input row to the next
    int in_per_group;
    int out_per_group;
    int stride;              // 1 or 2
    int dilation;
    int padding;             // rows and columns of zeros the taps may read on each side
    const float *weight;     // [outputs][in_per_group][3][3]
    const float *bias;       // [outputs]
    const float *slopes;     // [outputs] PReLU slopes, or NULL
    const float *residual;   // added before the PReLU, laid out as the output, or NULL
    long residual_plane;
    float *output;           // pixel (0, 0) of output channel 0
    long output_plane;       // floats from one output channel to the next
    int out_height;
    int out_width;
} rw_conv3x3;

/// Computes groups `group_begin..<group_end`, output rows `row_begin..<row_end` of each.
void rw_conv3x3_run(int isa, const rw_conv3x3 *conv, int group_begin, int group_end, int row_begin, int row_end);

/// Depthwise 3x3 branches over one input, each branch's output plus the previous one's (hierarchical sums), then a
/// per-channel affine map and PReLU: output channel `b * channels + j` is branch b of input channel j.
typedef struct rw_hierarchical {
    const float *input;      // pixel (0, 0) of input channel 0, bordered by the largest dilation
    long plane_stride;
    long row_stride;
    int channels;
    int branches;
    int stride;              // 1 or 2, every branch
    const int *dilations;    // [branches]; each branch's padding equals its dilation
    const float *taps;       // [channels][branches][9]
    const float *biases;     // [channels][branches]
    const float *scale;      // [branches * channels], indexed by output channel
    const float *shift;
    const float *slopes;
    float *output;
    long output_plane;
    int out_height;
    int out_width;
} rw_hierarchical;

/// Computes input channels `channel_begin..<channel_end` (every branch of each).
void rw_hierarchical_run(int isa, const rw_hierarchical *h, int channel_begin, int channel_end);

/// A 1x1 convolution with groups over contiguous planes of `pixels` floats: its bias, an optional residual added
/// before an optional PReLU.
typedef struct rw_conv1x1 {
    const float *input;      // input channel 0
    long input_plane;        // floats from one input channel to the next
    int in_per_group;
    int out_per_group;
    const float *weight;     // [outputs][in_per_group]
    const float *bias;       // [outputs]
    const float *slopes;     // [outputs] PReLU slopes, or NULL
    const float *residual;   // laid out as the output, or NULL
    long residual_plane;
    float *output;
    long output_plane;
    long pixels;
} rw_conv1x1;

/// Computes groups `group_begin..<group_end`, pixels `pixel_begin..<pixel_end` of each.
void rw_conv1x1_run(int isa, const rw_conv1x1 *conv, int group_begin, int group_end, long pixel_begin, long pixel_end);

/// Two rows side by side, lane by lane: `out[2x] = f(even[x])`, `out[2x + 1] = f(odd[x])` for x in 0..<count, with
/// f(v) = v * scale + bias, then a PReLU of `slope` unless `has_slope` is 0 (a 2x2 stride-2 transposed
/// convolution's output row from its two column phases).
void rw_interleave_affine(int isa, const float *even, const float *odd, float *out, int count, float scale, float bias,
                          int has_slope, float slope);

/// 3x3 average pooling, stride 2, padding 1, the padding counted (every output divided by 9), of channels
/// `channel_begin..<channel_end` of contiguous `height` x `width` planes into planes of ((height - 1) / 2 + 1) x
/// ((width - 1) / 2 + 1). Inside the map each output is ((top row's three) + (middle's three)) + (bottom's three),
/// each row's three summed left to right; on the border the taps inside the map are summed from zero in row order.
/// `scratch` holds 3 * output width floats.
void rw_average3x3s2_run(int isa, const float *input, int height, int width, float *output, int channel_begin,
                         int channel_end, float *scratch);

/// A bilinear resize of whole planes: each output row blends two source rows (`t + (b - t) * fy`) that were first
/// interpolated along x (`l + (u - l) * fx`), the interpolated rows kept while consecutive output rows share them.
typedef struct rw_resize {
    const float *source;     // channel 0, planes of source_height x source_width floats
    int source_width;
    int source_height;
    int width;               // output columns
    int height;              // output rows
    const long *x_lower;     // [width] source columns and weights along x
    const long *x_upper;
    const float *x_fraction;
    const long *y_lower;     // [height] source rows and weights along y
    const long *y_upper;
    const float *y_fraction;
    float *output;           // row 0 of channel 0
    long row_stride;
    long plane_stride;
    // Optionally, each resized value v becomes (v + addend * factors[c]) * scale[c] + shift[c], then a PReLU of
    // slopes[c] when slopes is not NULL: a gated map added and a batch norm applied as the rows are written.
    const float *addend;     // laid out as the output, or NULL for the plain resize
    const float *factors;
    const float *scale;
    const float *shift;
    const float *slopes;
} rw_resize;

/// Floats of scratch memory `rw_resize_run` needs for `r`.
long rw_resize_scratch(const rw_resize *r);

/// Resizes channels `channel_begin..<channel_end`.
void rw_resize_run(int isa, const rw_resize *r, int channel_begin, int channel_end, float *scratch);

/// The summary the monitor keeps of class scores that are a coarse tensor and its bilinear resize, computed row by
/// row of the resize without holding it: the mean over each cell x cell block of the max over the first `classes`
/// channels, optionally the argmax over every channel per pixel and the argmax over the first `classes` channels of
/// each block's summed scores. The same arithmetic, in the same order, as resizing the whole tensor (each source row
/// interpolated along x, then two such rows blended) and summarising that: every value equals the full path's.
typedef struct rw_score_summary {
    const float *source;     // channel 0 of the coarse scores, planes of height x width floats
    int channels;
    int classes;             // 1...channels
    int source_width;
    int source_height;
    int width;               // of the resize, a multiple of cell
    int cell;
    const long *x_lower;     // [width] source columns and weights along x
    const long *x_upper;
    const float *x_fraction;
    const long *y_lower;     // [the resize's height] source rows and weights along y
    const long *y_upper;
    const float *y_fraction;
} rw_score_summary;

/// Floats of scratch memory `rw_score_summary_run` needs for `s`.
long rw_score_summary_scratch(const rw_score_summary *s);

/// Resize rows `row_begin..<row_end` (whole cells): their block means into `grid` ((rows / cell) x (width / cell)),
/// the per-pixel argmax into `class_map` (rows x width) and the block classes into `cell_classes` (as `grid`) when
/// these are not NULL. `scratch` holds `rw_score_summary_scratch(s)` floats.
void rw_score_summary_run(int isa, const rw_score_summary *s, int row_begin, int row_end, float *scratch, float *grid,
                          unsigned char *class_map, unsigned char *cell_classes);

#ifdef __cplusplus
}
#endif

#endif
