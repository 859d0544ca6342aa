#include "lab/nn/linear_product.h"

#include <cstddef>
#include <vector>

#include "lab/nn/pointwise_gemm.h"

namespace lab {

void linear_rows(int64_t n, int64_t in, int64_t out, const float* x, const float* w, const float* bias, float* y) {
  // chain_gemm's right operand is in×out: wᵀ, copied (a Linear layer's weights are small).
  std::vector<float> wt(static_cast<size_t>(in * out));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < in; ++j) wt[static_cast<size_t>(j * out + o)] = w[o * in + j];
  chain_gemm(n, out, in, x, in, wt.data(), out, y, out, nullptr, false);
  if (bias)
    for (int64_t p = 0; p < n; ++p)
      for (int64_t o = 0; o < out; ++o) y[p * out + o] += bias[o];
}

void linear_rows_transpose(int64_t n, int64_t in, int64_t out, const float* s, const float* w, float* c) {
  chain_gemm(n, in, out, s, out, w, in, c, in, nullptr, false);
}

}  // namespace lab
