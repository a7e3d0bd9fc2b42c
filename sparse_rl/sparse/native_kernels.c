/*
 * Native CPU kernels of the csr backend (sparse_rl.sparse.native loads them through ctypes).
 *
 * Activations are feature-major: a matrix of `rows` x `batch` float32 whose rows (one feature over
 * the batch) are contiguous runs of `batch` numbers, `ldx` apart. A sparse matrix is CSR: row
 * pointers `crow`, column indices `col` and values `val` (nnz each).
 *
 * Both kernels split the inputs into column blocks, each a CSR matrix of its own, and sweep a block
 * one batch tile at a time: the tile of the block's inputs that the sweep reads (128 inputs x 64
 * floats = 32 KiB) then mostly stays in the L1 cache, where a sweep over all the batch reads from
 * L2. In the product, a tile's accumulators stay in vector registers (4 AVX-512 registers for 64
 * floats, or 8 AVX2 ones), so each nonzero costs 4 loads and 4 fused multiply-adds per tile (8 with
 * AVX2); a batch that is not a multiple of the tile takes one more pass for its remaining groups of
 * 16 and 8, and one scalar pass for its last few floats. A plain CSR product is the case of one
 * block (the input gradient Wᵀ g).
 *
 * Shared inputs: each kernel also takes several sparse matrices of the same shape that read the same
 * x (a critic's Q-networks' input layers, the `parts` of a call), each with its own pattern, values
 * and output. The sweep of a block's batch tile runs over every part's rows before moving on, so the
 * tile is loaded into the cache once for all of them; each part's output numbers get the operations
 * of a call of their own, in the same order.
 *
 * Threads (OpenMP, when the compiler has it): both kernels take a thread count and give each thread
 * a contiguous range of output rows (of all parts, one after the other), balanced by their nonzeros. A thread runs the one-thread loops
 * over its rows alone, so every output number is computed by the same operations in the same order
 * whatever the thread count: the results are bit-identical to one thread's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* Eight floats: GCC/Clang vector extensions, lowered to AVX on x86-64 and to NEON on ARM. Local
 * variables of this type stay in registers (a local float array would be spilled to the stack). */
typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v); /* an unaligned load */
    return v;
}

static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

static inline float sum8(v8f v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Sixteen floats: one AVX-512 register (two AVX2 registers, four NEON ones where there is none). */
typedef float v16f __attribute__((vector_size(64)));

static inline v16f load16(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, v16f v) { memcpy(p, &v, sizeof v); }

/* The product's tile: N16 accumulators of 16 floats (0 to 4) and N8 of 8 (0 or 1) over the batch
 * columns [b0, b0 + 16 N16 + 8 N8) of output row `yr`, for the nonzeros [k0, k1) of its row in a
 * block (int32 column indices within the block, `xb` the block's first input row). Every float of
 * the tile gets the same operations in the same order (y, then one fused multiply-add per nonzero)
 * whatever vector holds it, so the width of the vectors does not change a bit of the result. */
static inline __attribute__((always_inline)) void tile(int n16, int n8, int64_t k0, int64_t k1, const int32_t *col,
                                                       const float *val, const float *xb, int64_t ldx, int64_t b0,
                                                       float *yr)
{
#if defined(__AVX__) && !defined(__AVX512F__)
    /* Without AVX-512, GCC lowers a 16-float vector in pieces through the stack (~15x slower): hold
     * the tile in 8-float vectors instead, each float getting the same fused multiply-adds. */
    const int n = 2 * n16 + n8;
    v8f acc[8];
    for (int c = 0; c < n; ++c)
        acc[c] = load8(yr + b0 + 8 * c);
    for (int64_t k = k0; k < k1; ++k) {
        const float w = val[k];
        const float *xr = xb + (int64_t)col[k] * ldx + b0;
        for (int c = 0; c < n; ++c)
            acc[c] += w * load8(xr + 8 * c);
    }
    for (int c = 0; c < n; ++c)
        store8(yr + b0 + 8 * c, acc[c]);
#else
    v16f acc[4];
    v8f acc8 = {0};
    for (int c = 0; c < n16; ++c)
        acc[c] = load16(yr + b0 + 16 * c);
    if (n8)
        acc8 = load8(yr + b0 + 16 * n16);
    for (int64_t k = k0; k < k1; ++k) {
        const float w = val[k];
        const float *xr = xb + (int64_t)col[k] * ldx + b0;
        for (int c = 0; c < n16; ++c)
            acc[c] += w * load16(xr + 16 * c);
        if (n8)
            acc8 += w * load8(xr + 16 * n16);
    }
    for (int c = 0; c < n16; ++c)
        store16(yr + b0 + 16 * c, acc[c]);
    if (n8)
        store8(yr + b0 + 16 * n16, acc8);
#endif
}

/* 1 if this build runs its kernels on threads (OpenMP), else 0. */
int64_t sparse_rl_threaded(void)
{
#if defined(_OPENMP)
    return 1;
#else
    return 0;
#endif
}

/* One sweep of a block's rows [r0, r1) over the batch tile [b0, b0 + 8 * CHUNKS) (CHUNKS 1 to 8). */
static inline __attribute__((always_inline)) void sweep(int chunks, int64_t r0, int64_t r1, const int64_t *crow,
                                                        const int32_t *col, const float *val, const float *xb,
                                                        int64_t ldx, int64_t batch, int64_t b0, float *y)
{
    for (int64_t r = r0; r < r1; ++r)
        if (crow[r] < crow[r + 1])
            tile(chunks / 2, chunks % 2, crow[r], crow[r + 1], col, val, xb, ldx, b0, y + r * batch);
}

/* The batch's last `tail` floats (fewer than 8, from b0) of rows [r0, r1) of a block: for each, the
 * sum of its nonzeros' products (fused multiply-adds from zero, in order), then added to y. */
static void tail_rows(int64_t r0, int64_t r1, const int64_t *crow, const int32_t *col, const float *val,
                      const float *xb, int64_t ldx, int64_t batch, int64_t b0, int64_t tail, float *y)
{
    int64_t r = r0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    /* Four rows at a time, each in the lanes of its own vector (masked loads read only the tail):
     * four independent chains of fused multiply-adds instead of one, the same operations per float. */
    const __mmask8 lanes = (__mmask8)((1u << tail) - 1u);
    for (; r + 4 <= r1; r += 4) {
        __m256 acc[4];
        int64_t k[4], end[4], common = INT64_MAX;
        for (int q = 0; q < 4; ++q) {
            acc[q] = _mm256_setzero_ps();
            k[q] = crow[r + q];
            end[q] = crow[r + q + 1];
            if (end[q] - k[q] < common)
                common = end[q] - k[q];
        }
        for (int64_t j = 0; j < common; ++j)
            for (int q = 0; q < 4; ++q) {
                const int64_t at = k[q] + j;
                const __m256 x = _mm256_maskz_loadu_ps(lanes, xb + (int64_t)col[at] * ldx + b0);
                acc[q] = _mm256_fmadd_ps(_mm256_set1_ps(val[at]), x, acc[q]);
            }
        for (int q = 0; q < 4; ++q) {
            for (int64_t at = k[q] + common; at < end[q]; ++at) {
                const __m256 x = _mm256_maskz_loadu_ps(lanes, xb + (int64_t)col[at] * ldx + b0);
                acc[q] = _mm256_fmadd_ps(_mm256_set1_ps(val[at]), x, acc[q]);
            }
            float *yr = y + (r + q) * batch + b0;
            _mm256_mask_storeu_ps(yr, lanes, _mm256_add_ps(_mm256_maskz_loadu_ps(lanes, yr), acc[q]));
        }
    }
#endif
    for (; r < r1; ++r) {
        float acc[8] = {0};
        for (int64_t k = crow[r]; k < crow[r + 1]; ++k) {
            const float w = val[k];
            const float *xr = xb + (int64_t)col[k] * ldx + b0;
            for (int64_t i = 0; i < tail; ++i)
                acc[i] += w * xr[i];
        }
        for (int64_t i = 0; i < tail; ++i)
            y[r * batch + b0 + i] += acc[i];
    }
}

/* The most sparse matrices one call may take (its parts). */
#define MAX_PARTS 8

/* A kernel's arguments: `parts` sparse matrices of `rows` rows over the same feature-major x (the
 * product's val and out, or the sampled gradient's g and out, one per part). */
struct kernel_call {
    int64_t parts, blocks, width, rows, ldx, batch;
    const int64_t *crow[MAX_PARTS];
    const int32_t *col[MAX_PARTS];
    const float *val[MAX_PARTS], *g[MAX_PARTS];
    const float *x;
    float *out[MAX_PARTS];
};
typedef void (*rows_fn)(const struct kernel_call *call, int64_t r0, int64_t r1);

/* The rows of part p among the rows [r0, r1) of all parts, one after the other: [*p0, *p1). */
static inline int part_rows(const struct kernel_call *c, int64_t p, int64_t r0, int64_t r1, int64_t *p0, int64_t *p1)
{
    *p0 = r0 - p * c->rows < 0 ? 0 : r0 - p * c->rows;
    *p1 = r1 - p * c->rows > c->rows ? c->rows : r1 - p * c->rows;
    return *p0 < *p1;
}

/* Fill `call` for a shared-input call of `parts` sparse matrices over the same x: part p's crow[p],
 * col[p] and out[p], and its val[p] (the product) or g[p] (the sampled gradient): the other array is
 * NULL. Returns 0, leaving `call` as it was, unless 1 <= parts <= MAX_PARTS. Only copies pointers:
 * the kernels' arithmetic is that of a call per part. */
static int shared_call(struct kernel_call *call, int64_t parts, int64_t blocks, int64_t width, int64_t rows,
                       const int64_t *const *crow, const int32_t *const *col, const float *const *val,
                       const float *const *g, const float *x, int64_t ldx, int64_t batch, float *const *out)
{
    if (parts < 1 || parts > MAX_PARTS)
        return 0;
    const struct kernel_call empty = {parts, blocks, width, rows, ldx, batch, {NULL}, {NULL}, {NULL}, {NULL}, x,
                                     {NULL}};
    *call = empty;
    for (int64_t p = 0; p < parts; ++p) {
        call->crow[p] = crow[p];
        call->col[p] = col[p];
        call->val[p] = val != NULL ? val[p] : NULL;
        call->g[p] = g != NULL ? g[p] : NULL;
        call->out[p] = out[p];
    }
    return 1;
}

/* Rows [r0, r1) (of all parts) of sparse_rl_spmm_blocked, on one thread: block by block, batch tile
 * by batch tile, every part's rows of the block over the tile. */
static void spmm_call(const struct kernel_call *c, int64_t r0, int64_t r1)
{
    const int64_t batch = c->batch, full = batch - batch % 64, chunks = (batch % 64) / 8, tail = batch % 8;
    const int64_t ldx = c->ldx;
    int64_t q0, q1;
    for (int64_t b = 0; b < c->blocks; ++b) {
        const float *xb = c->x + b * c->width * ldx;
        for (int64_t b0 = 0; b0 < full; b0 += 64)
            for (int64_t p = 0; p < c->parts; ++p)
                if (part_rows(c, p, r0, r1, &q0, &q1))
                    sweep(8, q0, q1, c->crow[p] + b * c->rows, c->col[p], c->val[p], xb, ldx, batch, b0, c->out[p]);
        for (int64_t p = 0; p < c->parts; ++p) {
            if (!part_rows(c, p, r0, r1, &q0, &q1))
                continue;
            const int64_t *cb = c->crow[p] + b * c->rows;
            const int32_t *col = c->col[p];
            const float *val = c->val[p];
            float *y = c->out[p];
            switch (chunks) {
            case 1: sweep(1, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 2: sweep(2, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 3: sweep(3, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 4: sweep(4, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 5: sweep(5, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 6: sweep(6, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            case 7: sweep(7, q0, q1, cb, col, val, xb, ldx, batch, full, y); break;
            default: break;
            }
            if (tail > 0)
                tail_rows(q0, q1, cb, col, val, xb, ldx, batch, batch - tail, tail, y);
        }
    }
}

#if defined(_OPENMP)
/* Work below which a kernel call stays on one thread (nonzeros x batch: ~0.1 ms of one core), where
 * starting threads would cost more than it saves. */
#define MIN_WORK_PER_THREAD (1 << 18)

/* The threads to use for `work` multiply-adds when `threads` are allowed. */
static int64_t threads_for(int64_t threads, int64_t work, int64_t rows)
{
    int64_t useful = work / MIN_WORK_PER_THREAD;
    if (useful < threads)
        threads = useful;
    if (rows < threads)
        threads = rows;
    return threads < 1 ? 1 : threads;
}

/* The first row of thread t of n: rows [first_row(t), first_row(t + 1)) hold about 1/n of the
 * nonzeros of all blocks (each row also counts as one, for its fixed cost). `prefix` holds the
 * prefix sums of those counts (rows + 1 numbers, from row_prefix). */
static int64_t first_row(const int64_t *prefix, int64_t rows, int64_t t, int64_t n)
{
    if (t <= 0)
        return 0;
    if (t >= n)
        return rows;
    const int64_t goal = (int64_t)((double)prefix[rows] * (double)t / (double)n);
    int64_t lo = 0, hi = rows; /* the first r with prefix[r] >= goal */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (prefix[mid] < goal)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* prefix[r] = the nonzeros (plus one per row) of the rows [0, r) of all parts, one after the other,
 * over every block; NULL if out of memory. */
static int64_t *row_prefix(const struct kernel_call *c)
{
    int64_t *prefix = malloc((size_t)(c->parts * c->rows + 1) * sizeof *prefix);
    if (prefix == NULL)
        return NULL;
    prefix[0] = 0;
    for (int64_t p = 0; p < c->parts; ++p)
        for (int64_t r = 0; r < c->rows; ++r) {
            int64_t count = 1;
            for (int64_t b = 0; b < c->blocks; ++b)
                count += c->crow[p][b * c->rows + r + 1] - c->crow[p][b * c->rows + r];
            prefix[p * c->rows + r + 1] = prefix[p * c->rows + r] + count;
        }
    return prefix;
}

#endif

/* Run `fn` over the rows of all parts on up to `threads` threads, each a contiguous range of rows
 * balanced by nonzeros (one thread, a small call or a build without OpenMP: all rows at once). */
static void run_rows(rows_fn fn, const struct kernel_call *call, int64_t threads)
{
    const int64_t rows = call->parts * call->rows;
#if defined(_OPENMP)
    int64_t work = 0;
    for (int64_t p = 0; p < call->parts; ++p)
        work += call->crow[p][call->blocks * call->rows] * call->batch;
    const int64_t n = threads_for(threads, work, rows);
    int64_t *prefix = n > 1 ? row_prefix(call) : NULL;
    if (prefix != NULL) {
#pragma omp parallel num_threads((int)n)
        {
            const int64_t t = omp_get_thread_num(), m = omp_get_num_threads();
            const int64_t r0 = first_row(prefix, rows, t, m), r1 = first_row(prefix, rows, t + 1, m);
            if (r0 < r1)
                fn(call, r0, r1);
        }
        free(prefix);
        return;
    }
#else
    (void)threads;
#endif
    fn(call, 0, rows);
}

/* y[r, :] += sum_k val[k] * x[col[k], :] over `blocks` column blocks of `width` inputs (the last
 * one may be narrower): block b is the CSR matrix with row pointers crow[b * rows ... b * rows +
 * rows] (offsets into col and val, which hold the blocks one after the other, so that block b's
 * last pointer is block b + 1's first; crow has blocks * rows + 1 entries) and column indices
 * relative to the block's first input, b * width. On up to `threads` threads. */
void sparse_rl_spmm_blocked(int64_t blocks, int64_t width, int64_t rows, const int64_t *crow, const int32_t *col,
                            const float *val, const float *x, int64_t ldx, int64_t batch, float *y, int64_t threads)
{
    const struct kernel_call call = {1, blocks, width, rows, ldx, batch, {crow}, {col}, {val}, {NULL}, x, {y}};
    run_rows(spmm_call, &call, threads);
}

/* sparse_rl_spmm_blocked for `parts` (1 to MAX_PARTS) sparse matrices of the same shape and blocks
 * over the same x: part p has crow[p], col[p], val[p] and adds into y[p]. Each y[p] is bit-identical
 * to a call of sparse_rl_spmm_blocked with part p alone; each tile of x is swept for every part at
 * once. */
void sparse_rl_spmm_blocked_shared(int64_t parts, int64_t blocks, int64_t width, int64_t rows,
                                   const int64_t *const *crow, const int32_t *const *col, const float *const *val,
                                   const float *x, int64_t ldx, int64_t batch, float *const *y, int64_t threads)
{
    struct kernel_call call;
    if (shared_call(&call, parts, blocks, width, rows, crow, col, val, NULL, x, ldx, batch, y))
        run_rows(spmm_call, &call, threads);
}

/* The 8 horizontal sums of p[0..7], in order: a transposing reduction (AVX), or one by one. */
static inline v8f sums8(const v8f *p)
{
#if defined(__AVX__)
    const __m256 h01 = _mm256_hadd_ps((__m256)p[0], (__m256)p[1]), h23 = _mm256_hadd_ps((__m256)p[2], (__m256)p[3]);
    const __m256 h45 = _mm256_hadd_ps((__m256)p[4], (__m256)p[5]), h67 = _mm256_hadd_ps((__m256)p[6], (__m256)p[7]);
    const __m256 lo4 = _mm256_hadd_ps(h01, h23), hi4 = _mm256_hadd_ps(h45, h67);
    return (v8f)_mm256_add_ps(_mm256_permute2f128_ps(lo4, hi4, 0x20), _mm256_permute2f128_ps(lo4, hi4, 0x31));
#else
    v8f out;
    for (int j = 0; j < 8; ++j)
        out[j] = sum8(p[j]);
    return out;
#endif
}

/* out[k] += <g[r, b0 : b0 + 32], xb[col[k], same]> for the nonzeros k of row r of a block: the
 * tile of g's row stays in 4 registers while the row's nonzeros stream past, 8 at a time, whose
 * 8 partial sums are reduced together. */
static inline void dot_tile32(int64_t k0, int64_t k1, const int32_t *col, const float *xb, const float *gr,
                              int64_t ldx, int64_t b0, float *out)
{
    const v8f g0 = load8(gr + b0), g1 = load8(gr + b0 + 8), g2 = load8(gr + b0 + 16), g3 = load8(gr + b0 + 24);
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        v8f p[8];
        for (int j = 0; j < 8; ++j) {
            const float *xr = xb + (int64_t)col[k + j] * ldx + b0;
            p[j] = (g0 * load8(xr) + g1 * load8(xr + 8)) + (g2 * load8(xr + 16) + g3 * load8(xr + 24));
        }
        store8(out + k, load8(out + k) + sums8(p));
    }
    for (; k < k1; ++k) {
        const float *xr = xb + (int64_t)col[k] * ldx + b0;
        out[k] += sum8((g0 * load8(xr) + g1 * load8(xr + 8)) + (g2 * load8(xr + 16) + g3 * load8(xr + 24)));
    }
}

/* The same over a tile of 8 * CHUNKS floats (CHUNKS 1 to 3: what remains of a batch after its tiles
 * of 32), one nonzero at a time. */
static inline __attribute__((always_inline)) void dot_tile(int chunks, int64_t k0, int64_t k1, const int32_t *col,
                                                           const float *xb, const float *gr, int64_t ldx,
                                                           int64_t b0, float *out)
{
    v8f g[3];
    for (int c = 0; c < chunks; ++c)
        g[c] = load8(gr + b0 + 8 * c);
    for (int64_t k = k0; k < k1; ++k) {
        const float *xr = xb + (int64_t)col[k] * ldx + b0;
        v8f p = g[0] * load8(xr);
        for (int c = 1; c < chunks; ++c)
            p += g[c] * load8(xr + 8 * c);
        out[k] += sum8(p);
    }
}

static inline __attribute__((always_inline)) void dot_sweep(int chunks, int64_t r0, int64_t r1, const int64_t *crow,
                                                            const int32_t *col, const float *xb, int64_t ldx,
                                                            const float *g, int64_t batch, int64_t b0, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        if (crow[r] == crow[r + 1])
            continue;
        if (chunks == 4)
            dot_tile32(crow[r], crow[r + 1], col, xb, g + r * batch, ldx, b0, out);
        else
            dot_tile(chunks, crow[r], crow[r + 1], col, xb, g + r * batch, ldx, b0, out);
    }
}

/* Rows [r0, r1) (of all parts) of sparse_rl_sddmm_blocked, on one thread: block by block, batch tile
 * by batch tile, every part's rows of the block over the tile. */
static void sddmm_call(const struct kernel_call *c, int64_t r0, int64_t r1)
{
    const int64_t batch = c->batch, full = batch - batch % 32, chunks = (batch % 32) / 8, tail = batch % 8;
    const int64_t ldx = c->ldx;
    int64_t q0, q1;
    for (int64_t b = 0; b < c->blocks; ++b) {
        const float *xb = c->x + b * c->width * ldx;
        for (int64_t b0 = 0; b0 < full; b0 += 32)
            for (int64_t p = 0; p < c->parts; ++p)
                if (part_rows(c, p, r0, r1, &q0, &q1))
                    dot_sweep(4, q0, q1, c->crow[p] + b * c->rows, c->col[p], xb, ldx, c->g[p], batch, b0, c->out[p]);
        for (int64_t p = 0; p < c->parts; ++p) {
            if (!part_rows(c, p, r0, r1, &q0, &q1))
                continue;
            const int64_t *cb = c->crow[p] + b * c->rows;
            const int32_t *col = c->col[p];
            const float *g = c->g[p];
            float *out = c->out[p];
            switch (chunks) {
            case 1: dot_sweep(1, q0, q1, cb, col, xb, ldx, g, batch, full, out); break;
            case 2: dot_sweep(2, q0, q1, cb, col, xb, ldx, g, batch, full, out); break;
            case 3: dot_sweep(3, q0, q1, cb, col, xb, ldx, g, batch, full, out); break;
            default: break;
            }
            if (tail > 0) {
                const int64_t b0 = batch - tail;
                for (int64_t r = q0; r < q1; ++r) {
                    const float *gr = g + r * batch + b0;
                    for (int64_t k = cb[r]; k < cb[r + 1]; ++k) {
                        const float *xr = xb + (int64_t)col[k] * ldx + b0;
                        float sum = 0;
                        for (int64_t i = 0; i < tail; ++i)
                            sum += gr[i] * xr[i];
                        out[k] += sum;
                    }
                }
            }
        }
    }
}

/* out[k] = <g[r, :], x[b * width + col[k], :]> for every nonzero k (row r, block b) of the blocked
 * pattern of sparse_rl_spmm_blocked: the weight gradient g x^T sampled at the nonzeros, in blocked
 * order. `out` must hold zeros. On up to `threads` threads. */
void sparse_rl_sddmm_blocked(int64_t blocks, int64_t width, int64_t rows, const int64_t *crow, const int32_t *col,
                             const float *x, int64_t ldx, const float *g, int64_t batch, float *out, int64_t threads)
{
    const struct kernel_call call = {1, blocks, width, rows, ldx, batch, {crow}, {col}, {NULL}, {g}, x, {out}};
    run_rows(sddmm_call, &call, threads);
}

/* sparse_rl_sddmm_blocked for `parts` (1 to MAX_PARTS) patterns of the same shape and blocks over the
 * same x: part p has crow[p], col[p], its own g[p] and writes out[p]. Each out[p] is bit-identical to
 * a call of sparse_rl_sddmm_blocked with part p alone; each tile of x is swept for every part at once. */
void sparse_rl_sddmm_blocked_shared(int64_t parts, int64_t blocks, int64_t width, int64_t rows,
                                    const int64_t *const *crow, const int32_t *const *col, const float *x,
                                    int64_t ldx, const float *const *g, int64_t batch, float *const *out,
                                    int64_t threads)
{
    struct kernel_call call;
    if (shared_call(&call, parts, blocks, width, rows, crow, col, NULL, g, x, ldx, batch, out))
        run_rows(sddmm_call, &call, threads);
}
