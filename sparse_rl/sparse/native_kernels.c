/*
 * Native CPU kernels of the csr backend (sparse_rl.sparse.native loads them through ctypes).
 *
 * Activations are feature-major: a matrix of `rows` x `batch` float32, row-major, so that a row
 * (one feature over the batch) is a contiguous run of `batch` numbers. A sparse matrix is CSR:
 * row pointers `crow` (rows + 1), column indices `col` and values `val` (nnz each).
 *
 * The batch is processed in tiles of 64 floats whose accumulators stay in vector registers
 * (8 AVX2 registers), so each nonzero costs 8 loads and 8 fused multiply-adds per tile; a batch
 * that is not a multiple of 64 takes one more pass for its remaining groups of 8, and one scalar
 * pass for its last few floats (batch 100 = 64 + 4 × 8 + 4: three passes over each row).
 */
#include <stdint.h>
#include <string.h>

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

/* y[r, b0 : b0 + 8 * CHUNKS] += sum_{k in [k0, k1)} val[k] * x[col[k], b0 : ...], with CHUNKS
 * accumulators of 8 floats in registers. Called with a constant CHUNKS (1 to 8), each call site is
 * specialised and fully unrolled by the compiler. */
static inline __attribute__((always_inline)) void tile(int chunks, int64_t k0, int64_t k1, const int64_t *col,
                                                       const float *val, const float *x, int64_t batch,
                                                       int64_t b0, float *yr)
{
    v8f acc[8];
    for (int c = 0; c < chunks; ++c)
        acc[c] = load8(yr + b0 + 8 * c);
    for (int64_t k = k0; k < k1; ++k) {
        const float w = val[k];
        const float *xr = x + col[k] * batch + b0;
        for (int c = 0; c < chunks; ++c)
            acc[c] += w * load8(xr + 8 * c);
    }
    for (int c = 0; c < chunks; ++c)
        store8(yr + b0 + 8 * c, acc[c]);
}

/* y[r, :] += sum_k val[k] * x[col[k], :] for every row r of the CSR matrix (crow, col, val).
 * The batch goes in tiles of 64 floats (8 accumulators), then one pass for the remaining whole
 * groups of 8 (1 to 7 accumulators), then one scalar pass for the last < 8 floats. */
void sparse_rl_spmm_acc(int64_t rows, const int64_t *crow, const int64_t *col, const float *val,
                        const float *x, int64_t batch, float *y)
{
    const int64_t full = batch - batch % 64, chunks = (batch % 64) / 8, tail = batch % 8;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t k0 = crow[r], k1 = crow[r + 1];
        if (k0 == k1)
            continue;
        float *yr = y + r * batch;
        for (int64_t b0 = 0; b0 < full; b0 += 64)
            tile(8, k0, k1, col, val, x, batch, b0, yr);
        switch (chunks) {
        case 1: tile(1, k0, k1, col, val, x, batch, full, yr); break;
        case 2: tile(2, k0, k1, col, val, x, batch, full, yr); break;
        case 3: tile(3, k0, k1, col, val, x, batch, full, yr); break;
        case 4: tile(4, k0, k1, col, val, x, batch, full, yr); break;
        case 5: tile(5, k0, k1, col, val, x, batch, full, yr); break;
        case 6: tile(6, k0, k1, col, val, x, batch, full, yr); break;
        case 7: tile(7, k0, k1, col, val, x, batch, full, yr); break;
        default: break;
        }
        if (tail > 0) {
            const int64_t b0 = batch - tail;
            float acc[8] = {0};
            for (int64_t k = k0; k < k1; ++k) {
                const float w = val[k];
                const float *xr = x + col[k] * batch + b0;
                for (int64_t i = 0; i < tail; ++i)
                    acc[i] += w * xr[i];
            }
            for (int64_t i = 0; i < tail; ++i)
                yr[b0 + i] += acc[i];
        }
    }
}

/* out[k] = <a[r, :], g[col[k], :]> for every nonzero k of row r of the CSR pattern (crow, col):
 * the gradient of a sparse weight sampled at its nonzeros only. */
void sparse_rl_sampled_dot(int64_t rows, const int64_t *crow, const int64_t *col, const float *a,
                           const float *g, int64_t batch, float *out)
{
    for (int64_t r = 0; r < rows; ++r) {
        const float *ar = a + r * batch;
        for (int64_t k = crow[r]; k < crow[r + 1]; ++k) {
            const float *gr = g + col[k] * batch;
            v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            int64_t b = 0;
            for (; b + 32 <= batch; b += 32) {
                s0 += load8(ar + b) * load8(gr + b);
                s1 += load8(ar + b + 8) * load8(gr + b + 8);
                s2 += load8(ar + b + 16) * load8(gr + b + 16);
                s3 += load8(ar + b + 24) * load8(gr + b + 24);
            }
            for (; b + 8 <= batch; b += 8)
                s0 += load8(ar + b) * load8(gr + b);
            float sum = sum8((s0 + s1) + (s2 + s3));
            for (; b < batch; ++b)
                sum += ar[b] * gr[b];
            out[k] = sum;
        }
    }
}
