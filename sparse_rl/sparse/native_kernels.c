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
 * L2. In the product, a tile's accumulators stay in vector registers (8 AVX2 registers for 64
 * floats), so each nonzero costs 8 loads and 8 fused multiply-adds per tile; a batch that is not a
 * multiple of the tile takes one more pass for its remaining groups of 8, and one scalar pass for
 * its last few floats. A plain CSR product is the case of one block (the input gradient Wᵀ g).
 */
#include <stdint.h>
#include <string.h>
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

/* The blocked kernels: CHUNKS accumulators of 8 floats (1 to 8), int32 column indices within a
 * block, `xb` the block's first input row. */
static inline __attribute__((always_inline)) void tile32(int chunks, int64_t k0, int64_t k1, const int32_t *col,
                                                         const float *val, const float *xb, int64_t ldx,
                                                         int64_t b0, float *yr)
{
    v8f acc[8];
    for (int c = 0; c < chunks; ++c)
        acc[c] = load8(yr + b0 + 8 * c);
    for (int64_t k = k0; k < k1; ++k) {
        const float w = val[k];
        const float *xr = xb + (int64_t)col[k] * ldx + b0;
        for (int c = 0; c < chunks; ++c)
            acc[c] += w * load8(xr + 8 * c);
    }
    for (int c = 0; c < chunks; ++c)
        store8(yr + b0 + 8 * c, acc[c]);
}

/* One sweep of a block's rows over the batch tile [b0, b0 + 8 * CHUNKS). */
static inline __attribute__((always_inline)) void sweep(int chunks, int64_t rows, const int64_t *crow,
                                                        const int32_t *col, const float *val, const float *xb,
                                                        int64_t ldx, int64_t batch, int64_t b0, float *y)
{
    for (int64_t r = 0; r < rows; ++r)
        if (crow[r] < crow[r + 1])
            tile32(chunks, crow[r], crow[r + 1], col, val, xb, ldx, b0, y + r * batch);
}

/* y[r, :] += sum_k val[k] * x[col[k], :] over `blocks` column blocks of `width` inputs (the last
 * one may be narrower): block b is the CSR matrix with row pointers crow[b * rows ... b * rows +
 * rows] (offsets into col and val, which hold the blocks one after the other, so that block b's
 * last pointer is block b + 1's first; crow has blocks * rows + 1 entries) and column indices
 * relative to the block's first input, b * width. */
void sparse_rl_spmm_blocked(int64_t blocks, int64_t width, int64_t rows, const int64_t *crow, const int32_t *col,
                            const float *val, const float *x, int64_t ldx, int64_t batch, float *y)
{
    const int64_t full = batch - batch % 64, chunks = (batch % 64) / 8, tail = batch % 8;
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t *cb = crow + b * rows;
        const float *xb = x + b * width * ldx;
        for (int64_t b0 = 0; b0 < full; b0 += 64)
            sweep(8, rows, cb, col, val, xb, ldx, batch, b0, y);
        switch (chunks) {
        case 1: sweep(1, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 2: sweep(2, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 3: sweep(3, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 4: sweep(4, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 5: sweep(5, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 6: sweep(6, rows, cb, col, val, xb, ldx, batch, full, y); break;
        case 7: sweep(7, rows, cb, col, val, xb, ldx, batch, full, y); break;
        default: break;
        }
        if (tail > 0) {
            const int64_t b0 = batch - tail;
            for (int64_t r = 0; r < rows; ++r) {
                float acc[8] = {0};
                for (int64_t k = cb[r]; k < cb[r + 1]; ++k) {
                    const float w = val[k];
                    const float *xr = xb + (int64_t)col[k] * ldx + b0;
                    for (int64_t i = 0; i < tail; ++i)
                        acc[i] += w * xr[i];
                }
                for (int64_t i = 0; i < tail; ++i)
                    y[r * batch + b0 + i] += acc[i];
            }
        }
    }
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

static inline __attribute__((always_inline)) void dot_sweep(int chunks, int64_t rows, const int64_t *crow,
                                                            const int32_t *col, const float *xb, int64_t ldx,
                                                            const float *g, int64_t batch, int64_t b0, float *out)
{
    for (int64_t r = 0; r < rows; ++r) {
        if (crow[r] == crow[r + 1])
            continue;
        if (chunks == 4)
            dot_tile32(crow[r], crow[r + 1], col, xb, g + r * batch, ldx, b0, out);
        else
            dot_tile(chunks, crow[r], crow[r + 1], col, xb, g + r * batch, ldx, b0, out);
    }
}

/* out[k] = <g[r, :], x[b * width + col[k], :]> for every nonzero k (row r, block b) of the blocked
 * pattern of sparse_rl_spmm_blocked: the weight gradient g x^T sampled at the nonzeros, in blocked
 * order. `out` must hold zeros. */
void sparse_rl_sddmm_blocked(int64_t blocks, int64_t width, int64_t rows, const int64_t *crow, const int32_t *col,
                             const float *x, int64_t ldx, const float *g, int64_t batch, float *out)
{
    const int64_t full = batch - batch % 32, chunks = (batch % 32) / 8, tail = batch % 8;
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t *cb = crow + b * rows;
        const float *xb = x + b * width * ldx;
        for (int64_t b0 = 0; b0 < full; b0 += 32)
            dot_sweep(4, rows, cb, col, xb, ldx, g, batch, b0, out);
        switch (chunks) {
        case 1: dot_sweep(1, rows, cb, col, xb, ldx, g, batch, full, out); break;
        case 2: dot_sweep(2, rows, cb, col, xb, ldx, g, batch, full, out); break;
        case 3: dot_sweep(3, rows, cb, col, xb, ldx, g, batch, full, out); break;
        default: break;
        }
        if (tail > 0) {
            const int64_t b0 = batch - tail;
            for (int64_t r = 0; r < rows; ++r) {
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
