/*
 * Native CPU kernels of the csr backend (sparse_rl.sparse.native loads them through ctypes).
 *
 * Activations are feature-major: a matrix of `rows` x `batch` float32, row-major, so that a row
 * (one feature over the batch) is a contiguous run of `batch` numbers. A sparse matrix is CSR:
 * row pointers `crow` (rows + 1), column indices `col` and values `val` (nnz each).
 *
 * The batch is processed in tiles of 64 floats whose accumulators stay in vector registers
 * (8 AVX2 registers), so each nonzero costs 8 loads and 8 fused multiply-adds per tile.
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

/* y[r, :] += sum_k val[k] * x[col[k], :] for every row r of the CSR matrix (crow, col, val).
 * The batch goes in tiles of 64 floats (8 accumulators), then of 8, then one by one. */
void sparse_rl_spmm_acc(int64_t rows, const int64_t *crow, const int64_t *col, const float *val,
                        const float *x, int64_t batch, float *y)
{
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t k0 = crow[r], k1 = crow[r + 1];
        if (k0 == k1)
            continue;
        float *yr = y + r * batch;
        int64_t b0 = 0;
        for (; b0 + 64 <= batch; b0 += 64) {
            v8f a0 = load8(yr + b0), a1 = load8(yr + b0 + 8), a2 = load8(yr + b0 + 16), a3 = load8(yr + b0 + 24);
            v8f a4 = load8(yr + b0 + 32), a5 = load8(yr + b0 + 40), a6 = load8(yr + b0 + 48), a7 = load8(yr + b0 + 56);
            for (int64_t k = k0; k < k1; ++k) {
                const float w = val[k];
                const float *xr = x + col[k] * batch + b0;
                a0 += w * load8(xr);
                a1 += w * load8(xr + 8);
                a2 += w * load8(xr + 16);
                a3 += w * load8(xr + 24);
                a4 += w * load8(xr + 32);
                a5 += w * load8(xr + 40);
                a6 += w * load8(xr + 48);
                a7 += w * load8(xr + 56);
            }
            store8(yr + b0, a0), store8(yr + b0 + 8, a1), store8(yr + b0 + 16, a2), store8(yr + b0 + 24, a3);
            store8(yr + b0 + 32, a4), store8(yr + b0 + 40, a5), store8(yr + b0 + 48, a6), store8(yr + b0 + 56, a7);
        }
        for (; b0 + 8 <= batch; b0 += 8) {
            v8f a = load8(yr + b0);
            for (int64_t k = k0; k < k1; ++k)
                a += val[k] * load8(x + col[k] * batch + b0);
            store8(yr + b0, a);
        }
        for (; b0 < batch; ++b0) {
            float a = yr[b0];
            for (int64_t k = k0; k < k1; ++k)
                a += val[k] * x[col[k] * batch + b0];
            yr[b0] = a;
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
