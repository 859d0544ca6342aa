/// @file color_detector.h
/// @brief The CNN colour detector of Section 3.1 and App. C.4: 1×1 convolutions over RGB in
/// [0, 255] that output one channel per target colour and N_R redundant channels.
///
/// For a colour (R, G, B) and a pixel (r, g, b) (eq. 4 / 14):
///   C(r, g, b) = ReLU(I_R(r) + I_G(g) + I_B(b) − 2),
/// with the number checkers I_V of eq. 7 (networks/number_checker.h): 1 exactly on that colour,
/// 0 on every other integer colour. The redundant channels (eq. 5 / 15) are
///   R(r, g, b) = ReLU(1 − Σ_i C_i(r, g, b) − C_bg(r, g, b)),
/// where the sum runs over the N_C target colours *and* C_bg, a detector of the background colour.
/// Eq. 5 read literally (targets only) would fire on the background too; the paper's Fig. 15 and
/// App. C.4 define the background as in distribution ("OOD colors are any color other than our
/// target colors and the predefined background color"), so the detector recognises it and the
/// background never fires a redundant channel. C_bg is internal: it is not an output channel.
///
/// Layers ("PREFIX.layers.K", each conv 1×1 with bias, each followed by a ReLU; D = N_C + 1):
///   0 conv 3 → 12·D   x_k − (V−1), x_k − V, x_k − V, x_k − V − 1 per colour d and component k
///   2 conv 12·D → 6·D I_{>V−1}(x_k), I_{>V}(x_k)                                  (eq. 6)
///   4 conv 6·D → 3·D  I_V(x_k): component k of the pixel equals that of colour d    (eq. 7)
///   6 conv 3·D → D    C_d, d = targets then background                             (eq. 4)
///   8 conv D → N_C + N_R  C_1..C_{N_C} unchanged, then N_R copies of R              (eq. 5)
/// (odd K are the ReLUs). Output: (N_C + N_R) × H × W, every value 0 or 1 on integer images.
/// Tested in test_color_detector.cpp: every target colour fires exactly its channel, the
/// background fires nothing, every other colour (all colours within ±3 of each component of a
/// target or the background, and thousands of random colours) fires exactly the redundant channels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lab/nn/network.h"
#include "networks/model.h"
#include "networks/palette.h"

namespace networks {

struct ColorDetectorParams {
  std::vector<Rgb> targets;   ///< the N_C target colours, distinct, >= 1
  Rgb background{20, 20, 20};  ///< in distribution: fires nothing; not a target
  int64_t redundant = 2;       ///< N_R >= 0 (0..64)
  void validate() const;
};

/// Appends the detector's 10 layers under `prefix` to a model whose current output is 3×H×W RGB.
void append_color_detector(Model& model, const std::string& prefix, const ColorDetectorParams& params);

/// The detector alone on 3×size×size images ("detector.layers.K").
lab::Network build_color_detector(const ColorDetectorParams& params, int64_t size);

}  // namespace networks
