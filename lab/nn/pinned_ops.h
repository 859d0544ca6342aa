/// @file pinned_ops.h
/// @brief AVX2 and AVX-512 operations whose operands' places in the instruction are pinned by inline
/// assembly, for the kernels of lab/nn (pointwise_gemm.cpp, patch_kernel.cpp,
/// linear_product.cpp). Where two different NaNs meet, which one x86 returns depends on their
/// places in the instruction, and a max returns its second source where either value is NaN or
/// both are zero; the compiler treats these operations as commutative and may swap the places.
/// Included by those files only.
#pragma once

#include <immintrin.h>

namespace lab::pinned {

/// acc + a·b by one fused multiply-add, vfmadd231ps with the accumulator as destination.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 fma_acc(__m256 acc, __m256 a, __m256 b) {
  __asm__("vfmadd231ps %[b], %[a], %[acc]" : [acc] "+x"(acc) : [a] "x"(a), [b] "x"(b));
  return acc;
}

/// acc + b with the accumulator as the first source.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 add_acc(__m256 acc, __m256 b) {
  __asm__("vaddps %[b], %[acc], %[acc]" : [acc] "+x"(acc) : [b] "x"(b));
  return acc;
}

/// The ReLU v > 0 ? v : +0 (NaN and −0 to +0) as one vmaxps with +0 as its second source, which
/// x86 returns where v is NaN or both are zero: one instruction instead of a compare and a mask.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 relu(__m256 v) {
  __asm__("vmaxps %[zero], %[v], %[v]" : [v] "+x"(v) : [zero] "x"(_mm256_setzero_ps()));
  return v;
}

/// The same three on 16 floats (AVX-512).
__attribute__((target("avx512f"), always_inline)) inline __m512 fma_acc(__m512 acc, __m512 a, __m512 b) {
  __asm__("vfmadd231ps %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

__attribute__((target("avx512f"), always_inline)) inline __m512 add_acc(__m512 acc, __m512 b) {
  __asm__("vaddps %[b], %[acc], %[acc]" : [acc] "+v"(acc) : [b] "v"(b));
  return acc;
}

__attribute__((target("avx512f"), always_inline)) inline __m512 relu(__m512 v) {
  __asm__("vmaxps %[zero], %[v], %[v]" : [v] "+v"(v) : [zero] "v"(_mm512_setzero_ps()));
  return v;
}

/// The scalar forms (the low lane), for the sparse chains of linear_product.cpp.
__attribute__((target("avx2,fma"), always_inline)) inline __m128 fma_acc_ss(__m128 acc, __m128 a, __m128 b) {
  __asm__("vfmadd231ss %[b], %[a], %[acc]" : [acc] "+x"(acc) : [a] "x"(a), [b] "x"(b));
  return acc;
}

__attribute__((target("avx2,fma"), always_inline)) inline __m128 add_acc_ss(__m128 acc, __m128 b) {
  __asm__("vaddss %[b], %[acc], %[acc]" : [acc] "+x"(acc) : [b] "x"(b));
  return acc;
}

__attribute__((target("avx2,fma"), always_inline)) inline __m128 relu_ss(__m128 v) {
  __asm__("vmaxss %[zero], %[v], %[v]" : [v] "+x"(v) : [zero] "x"(_mm_setzero_ps()));
  return v;
}

}  // namespace lab::pinned
