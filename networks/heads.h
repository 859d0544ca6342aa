/// @file heads.h
/// @brief The MLP heads after the accumulator: the identity MLP of Section 3.1 (multi-color-sum)
/// and the neural modulo unit of App. C.3 (single-color-modulo).
///
/// Identity MLP ("PREFIX.layers.K", K = 0..2): Linear(N_C → N_C, weight I, bias 0), ReLU,
/// Linear(N_C → N_C, weight logit_scale·I, bias 0). Its output is the logits, logit_scale times
/// the counts. It exists, as the paper says, to keep the usual "CNN then MLP head" architecture.
/// logit_scale must be a power of two (2^-20..2^4), so the logits stay exact in float32.
///
/// Modulo unit for modulus N and largest input U (eqs. 8–13), seven Linear layers each followed by
/// a ReLU ("PREFIX.layers.K", K = 0..13; K' = ⌈U/N⌉):
///   0  f1: 1 → K'+1            x, x − N, …, x − K'N                         (eq. 8)
///   2  f2: K'+1 → K'           x_j − x_{j+1}: N, …, N, x mod N, 0, …, 0      (eq. 9)
///   4  f3a: K' → 5K'           x_j carried; x_j−(N−1), x_j−N, x_j−N, x_j−N−1  (eqs. 10, 6)
///   6  f3b: 5K' → 3K'          x_j; I_{>N−1}(x_j), I_{>N}(x_j)               (eqs. 10, 6)
///   8  f3c: 3K' → 2K'          x_0, I_N(x_0), x_1, I_N(x_1), …                (eqs. 10, 7)
///   10 f4: 2K' → K'            x_j − N·I_N(x_j): 0 except x mod N            (eq. 11)
///   12 f5: K' → 1              Σ_j: x mod N                                  (eq. 12)
/// f3 is eq. 10 as layers: I_N is three layers deep (eq. 7), so f3 takes three. For integer
/// 0 <= x <= U the output is exactly x mod N (f1 needs entries up to K'N >= U, so the last
/// difference of eq. 9 already sees every count; the trailing x_{K'} is 0 for x <= U and has no
/// difference of its own). Inputs above U are outside the design (the output is then 0).
/// Parameters (weights and biases): 29K'² + 16K' + 3, e.g. 654,903 for N = 30, U = 4,500.
/// Tested in test_heads.cpp: every integer 0..U for several (N, U), the layer count and the
/// parameter formula, the identity head on random counts.
#pragma once

#include <cstdint>
#include <string>

#include "lab/nn/network.h"
#include "networks/model.h"

namespace networks {

/// Appends the identity MLP on N×classes inputs.
void append_identity_mlp(Model& model, const std::string& prefix, int64_t classes, double logit_scale);

/// Whether `logit_scale` is 2^e with -20 <= e <= 4 (which keeps the logits exact).
bool is_exact_logit_scale(double logit_scale);
/// What a logit scale must be, as the refusals say it.
inline constexpr const char* kLogitScaleExpected = "a power of two from 2^-20 to 16 (e.g. 0.00390625 = 2^-8)";
/// Throws lab::Error unless is_exact_logit_scale(logit_scale).
void require_logit_scale(double logit_scale);

struct ModuloParams {
  int64_t modulus = 30;     ///< N, 2..4096
  int64_t max_input = 4500;  ///< U >= 1, the largest input handled exactly; U <= 2^20
  void validate() const;
  /// K' = ⌈U/N⌉: entries of f2..f4.
  int64_t entries() const { return (max_input + modulus - 1) / modulus; }
};

/// Appends the modulo unit on N×1 inputs.
void append_modulo(Model& model, const std::string& prefix, const ModuloParams& params);

/// The unit alone ("modulo.layers.K"), input N×1, output N×1.
lab::Network build_modulo(const ModuloParams& params);

}  // namespace networks
