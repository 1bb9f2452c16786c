/* Compiled CPU helpers of the hard PAD path (pad_mm/ops/native.py builds
 * and loads this file, then checks it against torch ops before use).
 *
 * Tensors are float32 / int64, contiguous; the caller checks every shape
 * and range (no index here is trusted to come from outside). Loops are
 * split over OpenMP threads (nt of them, torch's count): both are
 * memory-bound copies, which torch's eager ops do in several passes
 * (a transpose, then a gather; a transpose, then a scatter), some on one
 * thread. */
#include <stdint.h>
#include <string.h>

/* Version of the calling convention below (native.py refuses others). */
int pad_hard_gather_abi(void) { return 1; }

/* taps[m, (i*k + j)*C + c] = x[n, c, ho*s + (i - r)*d, wo*s + (j - r)*d]
 * (0 where that lies outside the H x W plane), r = (k - 1) / 2, for the
 * output pixels q = pix[m] = n*Ho*Wo + ho*Wo + wo, m < M, at dilation
 * d = dil[m].
 * x [N, C, H, W]; pix, dil [M]; taps [M, k*k*C]. */
void pad_gather_taps(const float *x, int64_t C, int64_t H, int64_t W,
                     const int64_t *pix, const int64_t *dil, int64_t M,
                     int64_t Ho, int64_t Wo, int64_t k, int64_t s,
                     float *taps, int nt) {
  const int64_t CB = 32, MB = 64, kk = k * k, r = (k - 1) / 2;
  const int64_t ncb = (C + CB - 1) / CB, nmb = (M + MB - 1) / MB;
  const int64_t plane = H * W, P = Ho * Wo;
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2)
  for (int64_t mb = 0; mb < nmb; ++mb) {
    for (int64_t cb = 0; cb < ncb; ++cb) {
      const int64_t c0 = cb * CB, c1 = c0 + CB < C ? c0 + CB : C;
      const int64_t m1 = (mb + 1) * MB < M ? (mb + 1) * MB : M;
      for (int64_t m = mb * MB; m < m1; ++m) {
        const int64_t q = pix[m], n = q / P, p = q % P;
        const int64_t ho = p / Wo, wo = p % Wo, d = dil[m];
        const float *xn = x + n * C * plane;
        float *row = taps + m * kk * C;
        for (int64_t i = 0; i < k; ++i) {
          const int64_t hh = ho * s + (i - r) * d;
          for (int64_t j = 0; j < k; ++j) {
            const int64_t ww = wo * s + (j - r) * d;
            float *dst = row + (i * k + j) * C;
            if (hh < 0 || hh >= H || ww < 0 || ww >= W) {
              memset(dst + c0, 0, (size_t)(c1 - c0) * sizeof(float));
              continue;
            }
            const float *src = xn + hh * W + ww;
            for (int64_t c = c0; c < c1; ++c) dst[c] = src[c * plane];
          }
        }
      }
    }
  }
}

/* out[n, c, p] = rows[m, c] for q = pix[m] = n*P + p, m < M.
 * rows [M, C]; pix [M]; out [N, C, P]. */
void pad_scatter_rows(const float *rows, const int64_t *pix, int64_t M,
                      int64_t C, int64_t P, float *out, int nt) {
  const int64_t CB = 16, ncb = (C + CB - 1) / CB;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t cb = 0; cb < ncb; ++cb) {
    const int64_t c0 = cb * CB, c1 = c0 + CB < C ? c0 + CB : C;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t n = pix[m] / P, p = pix[m] % P;
      float *dst = out + n * C * P + p;
      const float *src = rows + m * C;
      for (int64_t c = c0; c < c1; ++c) dst[c * P] = src[c];
    }
  }
}
