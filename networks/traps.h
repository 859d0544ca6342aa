/// @file traps.h
/// @brief The trap zoo's networks: small hand-weighted graphs, each built around one construct on
/// which attribution implementations are known to go wrong (a residual sum, a ReLU module applied
/// twice, max-pooling with ties, batch-norm, saturation, an AND of two pixels, a region mask).
///
/// Every trap reads a gray image N×1×S×S whose pixels are 0 (black) or 1 (white) and outputs
/// N×1: an integer score, exactly, for every such image. Weights are integers or powers of two,
/// so float32 computes every designed value exactly. x is the input, p a pixel, Σ_p a sum over
/// the S×S pixels, [·] the ReLU. Designs (score(x) on binary images; the exact contribution of
/// each pixel is stated as the environment's ground truth in datasets/traps.h):
/// - residual: two blocks y = f(h) + h with an identity skip path (Add nodes), no biases (so
///     relevance is conserved exactly): block1: h1 = [3x] + x = 4x (the sum splits 3 : 1),
///     block2: h2 = [−h1] + h1 = h1 (a dead branch: everything flows through the skip path);
///     score = Σ_p h2_p / 4 = Σ_p x_p (the white pixels). An LRP that sends a sum's relevance
///     to every summand in full (instead of in proportion) returns twice the relevance here.
/// - reused-relu: one ReLU object R applied at two nodes, to different inputs:
///     a = R(x), b = R(2a − 1) (= x on binary pixels); score = Σ_p b_p (the white pixels).
/// - max-pool: detector d = [x], 2×2 max-pooling with stride 2, score = Σ over cells of
///     max(d in the cell) = the 2×2 cells holding at least one white pixel. White pixels of one
///     cell tie; the backward routes the cell's gradient to the first of them (lab/nn/layers.h).
/// - batch-norm: c = 1·x (1×1 conv), bn1 = BatchNorm(γ 4, β 0, μ 1/2, σ² 4 − 2⁻¹⁰, eps 2⁻¹⁰) =
///     2c − 1, r = [bn1] (= x on binary), s = 2·Σ_p r_p, bn2 = BatchNorm(γ 1, β 0, μ 0,
///     σ² 4 − 2⁻¹⁰, eps 2⁻¹⁰) = s/2; score = the white pixels. Canonized (lab::merge_batch_norm):
///     conv weight 2, bias −1; sum weight 1, bias 0.
/// - saturation: g = [2x] − [2x − 1] (= min(2x, 1) on [0, 1]), score = Σ_p g_p = the white
///     pixels; at every binary image the gradient of the score is exactly 0 (2 − 2 at white,
///     ReLU'(0) = 0 at black), while each white pixel adds 1.
/// - interaction: pairs q_j = [x_{2j} + x_{2j+1} − 1] of horizontally adjacent pixels (columns
///     2j, 2j+1; a 1×2 conv of stride 1×2), score = Σ q = the pairs whose two pixels are both
///     white (an AND: either pixel alone changes nothing).
/// - position: d = [x], score = Σ_{p in the left half (column < S/2)} d_p: a white pixel counts
///     only in the left half.
/// Layer names are "<stage>" as listed; trap_paper_layers() names the last spatial map (the
/// GradCAM and IBA layer). Tested in tests/networks/test_traps.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lab/core/schema.h"
#include "networks/model.h"

namespace networks {

struct TrapParams {
  int64_t size = 32;  ///< image side S, even, 4..256

  /// The `-o` key size with range and help; its check refuses an odd size.
  static const lab::Schema<TrapParams>& schema();
};

/// The trap names, in the order the zoo lists them.
const std::vector<std::string>& trap_names();
/// The model of trap `name` (one of trap_names(); another throws lab::Error).
Model make_trap(const std::string& name, const TrapParams& params);
/// The layer GradCAM and IBA attach to: {"gradcam": L, "iba": L}.
std::map<std::string, std::string> trap_paper_layers(const std::string& name);

}  // namespace networks
