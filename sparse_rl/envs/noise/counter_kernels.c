/*
 * Counter-based noise of the extremely noisy environments (sparse_rl.envs.noise.CounterNoise loads
 * this through ctypes; sparse_rl.envs.noise computes the same numbers with numpy when it cannot).
 *
 * The noise of observation k is a pure function of (key, k): a SplitMix64 stream seeded by
 * s_k = mix64(key + (k + 1) G) yields one 64-bit word per pair of features,
 * r_p = mix64(s_k + (p + 1) G), and the word's top 24 bits (a) and next 24 bits (b) make the pair:
 *   uniform: a / 2^24, b / 2^24 (U[0, 1), exact in float32);
 *   normal:  Box-Muller, R = sqrt(-2 ln u1) with u1 = (a + 1) / 2^24, angle 2 pi b / 2^24:
 *            (R cos, R sin).
 * ln, cos and sin are polynomial approximations (Cephes' logf, sinf and cosf coefficients) made of
 * float32 additions and multiplications only, compiled with -ffp-contract=off (no fused multiply-add;
 * -fno-math-errno only lets sqrt vectorise and -fno-trapping-math lets the selects below compute both
 * sides, so that the loops vectorise; neither changes a result): every operation is
 * rounded as IEEE 754 prescribes, in the order written, so numpy's version of the same arithmetic
 * gives the same bits on any machine.
 */
#include <stdint.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

/* Values below which a call stays on one thread (starting threads would cost more than it saves). */
#define MIN_VALUES_PER_THREAD (1 << 16)

/* The threads to use for `values` numbers when `threads` are allowed (at least 1). */
static int64_t threads_for(int64_t values, int64_t threads)
{
    const int64_t useful = values / MIN_VALUES_PER_THREAD;
    if (useful < threads)
        threads = useful;
    return threads < 1 ? 1 : threads;
}

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define TWO_POW_M24 5.9604644775390625e-08f
/* float32(2 pi) / 2^24, exact (a power of two) */
#define TURN_TO_RADIANS (6.28318530717958647692f * TWO_POW_M24)

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline float as_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t as_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* ln((a + 1) / 2^24) for an integer a in [0, 2^24). */
static inline float log_unit(uint32_t a)
{
    float x = (float)(a + 1u); /* exact: at most 2^24 */
    uint32_t bits = as_bits(x);
    float e = (float)((int32_t)(bits >> 23) - 126 - 24);
    float f = as_float((bits & 0x007FFFFFu) | 0x3F000000u); /* x = f 2^(e + 24), f in [0.5, 1) */
    int small = f < 0.707106781186547524f;
    e = small ? e - 1.0f : e;
    float t = small ? (f + f) - 1.0f : f - 1.0f;
    float z = t * t;
    float y = 7.0376836292e-2f;
    y = y * t + -1.1514610310e-1f;
    y = y * t + 1.1676998740e-1f;
    y = y * t + -1.2420140846e-1f;
    y = y * t + 1.4249322787e-1f;
    y = y * t + -1.6668057665e-1f;
    y = y * t + 2.0000714765e-1f;
    y = y * t + -2.4999993993e-1f;
    y = y * t + 3.3333331174e-1f;
    y = ((y * t) * z) + (-2.12194440e-4f * e);
    y = y + (-0.5f * z);
    return (t + y) + (0.693359375f * e);
}

/* (cos, sin) of 2 pi b / 2^24 for an integer b in [0, 2^24). */
static inline void cos_sin_turn(uint32_t b, float *c_out, float *s_out)
{
    uint32_t shifted = (b + (1u << 21)) & 0xFFFFFFu;
    uint32_t quadrant = shifted >> 22;
    float a = (float)((int32_t)(shifted & 0x3FFFFFu) - (1 << 21)) * TURN_TO_RADIANS;
    float z = a * a;
    float s = -1.9515295891e-4f;
    s = s * z + 8.3321608736e-3f;
    s = s * z + -1.6666654611e-1f;
    s = ((s * z) * a) + a;
    float c = 2.443315711809948e-5f;
    c = c * z + -1.388731625493765e-3f;
    c = c * z + 4.166664568298827e-2f;
    c = (((c * z) * z) + (-0.5f * z)) + 1.0f;
    /* quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c) */
    float swapped_c = (quadrant & 1u) ? s : c;
    float swapped_s = (quadrant & 1u) ? c : s;
    float cq = ((quadrant + 1u) & 2u) ? -swapped_c : swapped_c;
    float sq = (quadrant & 2u) ? -swapped_s : swapped_s;
    *c_out = cq;
    *s_out = sq;
}

/* The pairs of one observation: the words first (64-bit integer work), then the floats in a loop
 * without branches that the compiler vectorises. */
#define CHUNK 256

static void normal_pairs(const uint32_t *a, const uint32_t *b, int64_t n, float *first, float *second)
{
    for (int64_t p = 0; p < n; ++p) {
        float radius = __builtin_sqrtf(-2.0f * log_unit(a[p]));
        float c, s;
        cos_sin_turn(b[p], &c, &s);
        first[p] = radius * c;
        second[p] = radius * s;
    }
}

/* The pairs [p0, p0 + n) of one observation's stream (n <= CHUNK): features 2p in first, 2p + 1 in
 * second. */
static void noise_pairs(uint64_t stream, int64_t p0, int64_t n, int32_t kind, float *first, float *second)
{
    uint32_t a[CHUNK], b[CHUNK];
    for (int64_t p = 0; p < n; ++p) {
        const uint64_t r = mix64(stream + (uint64_t)(p0 + p + 1) * GOLDEN);
        a[p] = (uint32_t)(r >> 40);
        b[p] = (uint32_t)(r >> 16) & 0xFFFFFFu;
    }
    if (kind == 0) {
        normal_pairs(a, b, n, first, second);
    } else {
        for (int64_t p = 0; p < n; ++p) {
            first[p] = (float)a[p] * TWO_POW_M24;
            second[p] = (float)b[p] * TWO_POW_M24;
        }
    }
}

/* The noise of one observation (stream `stream`) into row[0 .. size). */
static void noise_row(uint64_t stream, int64_t size, int32_t kind, float *row)
{
    const int64_t pairs = (size + 1) / 2;
    float first[CHUNK], second[CHUNK];
    for (int64_t p0 = 0; p0 < pairs; p0 += CHUNK) {
        const int64_t n = pairs - p0 < CHUNK ? pairs - p0 : CHUNK;
        noise_pairs(stream, p0, n, kind, first, second);
        float *dst = row + 2 * p0;
        const int64_t last = 2 * p0 + 2 * n > size ? n - 1 : n; /* an odd size drops the last second */
        for (int64_t p = 0; p < last; ++p) {
            dst[2 * p] = first[p];
            dst[2 * p + 1] = second[p];
        }
        if (last < n)
            dst[2 * last] = first[last];
    }
}

/*
 * Noise of `rows` observations into out[i * ld + j] (j < size): row i is observation indices[i].
 * kind 0: standard normal; kind 1: U[0, 1). On up to `threads` threads (OpenMP, when the compiler
 * has it), each a share of the rows: a row's numbers do not depend on who computes them.
 */
void sparse_rl_counter_noise(uint64_t key, const uint64_t *indices, int64_t rows, int64_t size, int32_t kind,
                             float *out, int64_t ld, int64_t threads)
{
    threads = threads_for(rows * size, threads);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads((int)threads) if (threads > 1)
#endif
    for (int64_t i = 0; i < rows; ++i)
        noise_row(mix64(key + (indices[i] + 1u) * GOLDEN), size, kind, out + i * ld);
}

/* Observations per group of the feature-major kernel: one vector of 16 lanes, one observation
 * each, so that a feature's numbers for the group are one contiguous store. */
#define GROUP 16

/* Features [2 p0, 2 p1) of observations [i0, i0 + n) (n <= GROUP), feature-major. */
static void feature_major_group(const uint64_t *streams, int64_t n, int64_t p0, int64_t p1, int64_t size,
                                int32_t kind, float *out, int64_t ld)
{
    for (int64_t p = p0; p < p1; ++p) {
        uint32_t a[GROUP], b[GROUP];
        float first[GROUP], second[GROUP];
        const uint64_t step = (uint64_t)(p + 1) * GOLDEN;
        for (int64_t i = 0; i < GROUP; ++i) {
            const uint64_t r = mix64(streams[i] + step);
            a[i] = (uint32_t)(r >> 40);
            b[i] = (uint32_t)(r >> 16) & 0xFFFFFFu;
        }
        if (kind == 0) {
            normal_pairs(a, b, GROUP, first, second);
        } else {
            for (int64_t i = 0; i < GROUP; ++i) {
                first[i] = (float)a[i] * TWO_POW_M24;
                second[i] = (float)b[i] * TWO_POW_M24;
            }
        }
        float *row = out + 2 * p * ld;
        for (int64_t i = 0; i < n; ++i)
            row[i] = first[i];
        if (2 * p + 1 < size) { /* an odd size drops the last second */
            row += ld;
            for (int64_t i = 0; i < n; ++i)
                row[i] = second[i];
        }
    }
}

/*
 * The same numbers as sparse_rl_counter_noise, written feature-major: out[j * ld + i] is feature j
 * of observation indices[i] (each feature's row holds the batch: the layout the csr kernels read).
 * Observations are taken GROUP at a time, one per vector lane, each feature of the group computed
 * for all of them at once and stored contiguously. Threads take ranges of features; a number does
 * not depend on who computes it.
 */
void sparse_rl_counter_noise_feature_major(uint64_t key, const uint64_t *indices, int64_t rows, int64_t size,
                                           int32_t kind, float *out, int64_t ld, int64_t threads)
{
    const int64_t pairs = (size + 1) / 2, groups = (rows + GROUP - 1) / GROUP;
    threads = threads_for(rows * size, threads);
    if (threads > pairs)
        threads = pairs < 1 ? 1 : pairs;
#if defined(_OPENMP)
#pragma omp parallel num_threads((int)threads) if (threads > 1)
#endif
    {
#if defined(_OPENMP)
        const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
#else
        const int64_t t = 0, n = 1;
#endif
        const int64_t p0 = pairs * t / n, p1 = pairs * (t + 1) / n;
        for (int64_t g = 0; g < groups; ++g) {
            uint64_t streams[GROUP] = {0};
            const int64_t i0 = g * GROUP, count = rows - i0 < GROUP ? rows - i0 : GROUP;
            for (int64_t i = 0; i < count; ++i)
                streams[i] = mix64(key + (indices[i0 + i] + 1u) * GOLDEN);
            feature_major_group(streams, count, p0, p1, size, kind, out + i0, ld);
        }
    }
}
