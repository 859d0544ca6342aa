/// @file accumulator.h
/// @brief The CNN accumulator of App. C.2: convolutions with kernel = stride that sum each
/// counted channel over the whole image, down to 1×1.
///
/// Kernel schedule. size×size is reduced to 1×1 by stages whose kernel k_s equals their stride,
/// with Π k_s = size: the prime factors of size, ascending (224 → 2, 2, 2, 2, 2, 7). The
/// non-uniform accumulator merges the two smallest factors until at most five stages remain
/// (224 → 2, 2, 2, 4, 7; 32 → 2, 2, 2, 2, 2; 64 → 2, 2, 2, 2, 4): five two-layer blocks are the
/// paper's "10 CNN layers" (App. E), which with the modulo unit's 7 linear layers make Table 1's
/// 17. A size is refused (lab::Error) if it is below 2, above 512, or has a prime factor above 13
/// (a 17×17 or larger kernel is no plausible CNN layer), e.g. 17, 34 or 226.
///
/// Uniform (Fig. 12). One conv per stage, all weights 1, no bias, followed by a ReLU.
///
/// Non-uniform (Fig. 13). One two-layer block per stage: a k×k conv with M kernels per counted
/// channel (weights w_ij, kernel i, position j), a ReLU, a 1×1 conv with weights m_i, a ReLU. The
/// block sums its window exactly because Σ_i w_ij·m_i = 1 for every j. Weights are drawn from
/// `seed`: m_i ∈ {1/2, 1, 2} uniformly, and for every j the 64 units of 1 are cut at M − 1
/// uniform points into n_1j..n_Mj >= 0 (Σ_i n_ij = 64), w_ij = n_ij / (64·m_i). The first M − 1
/// shares are drawn and the last is what remains, as in App. C.2 ("randomly set some of the
/// weights, then calculate other weights").
///
/// Exactness in float32. Inputs are 0/1 maps, so every stage input is an integer count c_j <= size².
/// A first-layer output is (Σ_j n_ij c_j) / (64·m_i); every partial sum is an integer at most
/// 64·size² <= 2^24 over the same power of two, so float32 represents it exactly in any summation
/// order; the 1×1 layer multiplies by m_i (a power of two) and adds integers over 64. Every
/// weight is >= 0, so no ReLU ever clips a designed value: the output is the exact count.
///
/// Unseen-data effect (Section 3.1). With `ude`, the `extra_channels` (the detector's redundant
/// channels R) feed the first conv with random weights, so a pixel of an unseen colour moves the
/// counts. For counted channel c and first-stage kernel position j, one unseen pixel (alone in its
/// window) changes count c by s_cj·a_cj·ude_strength, with a random sign s_cj (at least one colour
/// positive at every j, so an unseen pixel always raises some count) and a_cj ∈ {1/4, 1/2, 3/4, 1};
/// the change is spread over the M kernels and the redundant channels like the designed weights
/// (v = s·a·ude_strength·n/(64·m_i), Σ_{i,r} n = 64). Negative changes are clipped by the ReLUs
/// where the window holds too few designed pixels, so the response to unseen colours is not
/// additive: the unpredictable behaviour the paper wants. Without `ude` those weights are 0 (the
/// channels are present but not wired in). On images of target and background colours only,
/// R = 0 everywhere and the output is exactly the counts either way.
///
/// Layers ("PREFIX.layers.K"): uniform: conv(2s), ReLU(2s+1); non-uniform block s: conv k×k (4s),
/// ReLU (4s+1), conv 1×1 (4s+2), ReLU (4s+3). Output C×1×1: the count of each counted channel.
/// Tested in test_accumulator.cpp (schedules, refused sizes, Σ_i w_ij m_i = 1, exact sums of random
/// maps, seeds, the unseen-data wiring).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "networks/model.h"

namespace networks {

struct AccumulatorParams {
  std::string kind = "nonuniform";  ///< "uniform" (Fig. 12) or "nonuniform" (Fig. 13)
  int64_t size = 224;               ///< input side; see the schedule above
  int64_t channels = 1;             ///< counted channels (N_C or 1), >= 1
  int64_t extra_channels = 0;       ///< redundant channels after them (N_R), >= 0
  bool ude = false;                 ///< wire the extra channels in (needs extra_channels >= 1)
  double ude_strength = 0.0625;     ///< largest count change of one unseen pixel, (0, 1024]
  int64_t kernels = 8;              ///< M: kernels per counted channel in a block's first conv, 2..64
  uint64_t seed = 0;                ///< non-uniform and unseen-data weights
  void validate() const;
};

/// Units of 1 split among a non-uniform block's kernels: weights are multiples of 1/(64·m_i).
inline constexpr int64_t kWeightUnits = 64;

/// Kernel sizes (= strides) of the stages, first to last; throws lab::Error for a refused size.
std::vector<int64_t> kernel_schedule(const std::string& kind, int64_t size);

/// Appends the accumulator to a model whose output is (channels + extra_channels)×size×size.
void append_accumulator(Model& model, const std::string& prefix, const AccumulatorParams& params);

/// The accumulator alone ("accumulator.layers.K"), input (channels + extra_channels)×size×size.
lab::Network build_accumulator(const AccumulatorParams& params);

}  // namespace networks
