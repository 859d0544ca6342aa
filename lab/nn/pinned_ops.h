/// @file pinned_ops.h
/// @brief AVX2 and AVX-512 operations whose operands' places in the instruction are pinned by inline
/// assembly, for the kernels of lab/nn (pointwise_gemm.cpp, patch_kernel.cpp,
/// linear_product.cpp). Where two different NaNs meet, which one x86 returns depends on their
/// places in the instruction, and a max returns its second source where either value is NaN or
/// both are zero; the compiler treats these operations as commutative and may swap the places.
/// Included by those files only.
#pragma once

#include <immintrin.h>

#include <cstdint>

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

/// The vector operations of the kernels compiled once per instruction set (sparse_program.cpp,
/// patch_kernel.cpp: their .inc files take one of these as X), on 8 floats (AVX2) and 16
/// (AVX-512): fma and add where the operands' places do not matter (finite values), fma_acc,
/// add_acc and relu pinned as above. Every operation acts lane by lane, so both give the same
/// bytes.
struct Ymm {
  using T = __m256;
  static constexpr int kLanes = 8;
#define LAB_YMM __attribute__((target("avx2,fma"), always_inline)) static inline
  LAB_YMM T load(const float* p) { return _mm256_loadu_ps(p); }
  LAB_YMM void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  LAB_YMM T set1(const float* p) { return _mm256_broadcast_ss(p); }
  LAB_YMM T zero() { return _mm256_setzero_ps(); }
  LAB_YMM T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  LAB_YMM T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  LAB_YMM T add(T a, T b) { return _mm256_add_ps(a, b); }
  LAB_YMM T fma_acc(T acc, T a, T b) { return pinned::fma_acc(acc, a, b); }
  LAB_YMM T add_acc(T acc, T b) { return pinned::add_acc(acc, b); }
  LAB_YMM T relu(T v) { return pinned::relu(v); }
  // acc + x·w[0], the weight broadcast: fma_acc(acc, w, x) (the weight in the second source).
  LAB_YMM T fma_acc_w(T acc, T x, const float* w) { return pinned::fma_acc(acc, set1(w), x); }
  // x·w[0] and acc + b[0], b broadcast.
  LAB_YMM T mul_w(T x, const float* w) { return mul(set1(w), x); }
  LAB_YMM T add_acc_w(T acc, const float* b) { return pinned::add_acc(acc, set1(b)); }
  // The bits !(v <= 0) (v > 0 or NaN) of the 16 values lo, hi (lane j of lo: bit j; of hi: bit
  // 8 + j): a ReLU's signs as add_pointwise_sign_trace_run keeps them.
  LAB_YMM uint32_t positive_bits(T lo, T hi) {
    const T zero = _mm256_setzero_ps();
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(lo, zero, _CMP_NLE_UQ))) |
           static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(hi, zero, _CMP_NLE_UQ))) << 8;
  }
#undef LAB_YMM
};

struct Zmm {
  using T = __m512;
  static constexpr int kLanes = 16;
#define LAB_ZMM __attribute__((target("avx512f"), always_inline)) static inline
  LAB_ZMM T load(const float* p) { return _mm512_loadu_ps(p); }
  LAB_ZMM void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  LAB_ZMM T set1(const float* p) { return _mm512_set1_ps(*p); }
  LAB_ZMM T zero() { return _mm512_setzero_ps(); }
  LAB_ZMM T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  LAB_ZMM T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  LAB_ZMM T add(T a, T b) { return _mm512_add_ps(a, b); }
  LAB_ZMM T fma_acc(T acc, T a, T b) { return pinned::fma_acc(acc, a, b); }
  LAB_ZMM T add_acc(T acc, T b) { return pinned::add_acc(acc, b); }
  LAB_ZMM T relu(T v) { return pinned::relu(v); }
  // The same three with the weight or bias an embedded broadcast, the instruction's memory operand
  // (its third source: x·w, where Ymm's fma_acc_w multiplies w·x; the same value, and the same NaN
  // unless both are NaN, for a finite weight never). On AMD's Zen 4 a broadcast from memory into a
  // 512-bit register is an operation of the vector pipes: one per weight took a third of the
  // fused patch kernel's time (45 against 38 cycles per 16 pixels with them embedded).
  LAB_ZMM T fma_acc_w(T acc, T x, const float* w) {
    __asm__("vfmadd231ps %[w]%{1to16%}, %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "m"(*w));
    return acc;
  }
  LAB_ZMM T mul_w(T x, const float* w) {
    T r;
    __asm__("vmulps %[w]%{1to16%}, %[x], %[r]" : [r] "=v"(r) : [x] "v"(x), [w] "m"(*w));
    return r;
  }
  LAB_ZMM T add_acc_w(T acc, const float* b) {
    __asm__("vaddps %[b]%{1to16%}, %[acc], %[acc]" : [acc] "+v"(acc) : [b] "m"(*b));
    return acc;
  }
#undef LAB_ZMM
};

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
