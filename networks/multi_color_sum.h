/// @file multi_color_sum.h
/// @brief The multi-color-sum model (paper Section 3 and App. G): which of N_C target colours
/// covers the most pixels of an RGB image.
///
/// colour detector → CNN accumulator → flatten → identity MLP → softmax over N_C classes.
/// Input N×3×size×size, RGB values 0..255. For an image of target colours on the background,
/// the layer before the softmax ("mlp.layers.2") outputs exactly logit-scale × (number of pixels of
/// colour c) for every class c = 0..N_C−1 (colour palette()[c]), and "softmax" outputs their softmax.
///
/// Layers (default options: size 224, 4 colours, 2 redundant channels, non-uniform accumulator
/// with schedule 2, 2, 2, 4, 7 and 8 kernels per colour):
///   detector.layers.0..9      colour detector (networks/color_detector.h): 6×224×224 out,
///                             4 target channels C_c then 2 redundant channels R
///   accumulator.layers.0..19  five non-uniform blocks (networks/accumulator.h); block s is
///                             layers 4s..4s+3: k×k conv (32 = 4·8 kernels), ReLU, 1×1 conv, ReLU
///     accumulator.layers.5    block 2's 32 kernel maps after ReLU, 56×56 (the paper's GradCAM layer)
///     accumulator.layers.7    block 2's output: per-colour counts in 4×4 windows, 56×56 (IBA layer)
///     accumulator.layers.19   4×1×1: the per-colour counts
///   flatten                   N×4
///   mlp.layers.0..2           identity MLP (networks/heads.h); layers.2 = the logits
///   softmax                   class probabilities
/// With accumulator=uniform the accumulator is one all-ones conv + ReLU per prime factor of size
/// (224: six, layers 0..11); layers.5 is then the 28×28 map of counts in 8×8 windows and
/// layers.7 the 14×14 map of counts in 16×16 windows. describe_layers() gives the table for any
/// options.
///
/// logit-scale (default 2^-8). With logits equal to raw counts, margins between colours are
/// hundreds of pixels at 224×224, float32 softmax rounds the winner to exactly 1 and every
/// gradient taken after the softmax (GuidedBP, GradCAM, IG of App. G.2) is exactly 0 or
/// denormal noise. Float32 softmax saturates once the scaled lead of the winner exceeds about 17;
/// at 2^-8 that takes a lead of about 4,400 pixels (8.8% of a 224×224 image, more than a solid
/// 66×66 patch), while a lead of 100 pixels still moves the winner's probability visibly. A power
/// of two keeps the logits exact; labels and ground truth do not depend on it.
///
/// ude-strength (default 1/16). The paper gives no magnitude. One unseen pixel changes a colour's
/// count by at most 1/16 of a pixel (networks/accumulator.h): small next to the designed +1 per
/// target pixel. A whole (0, 0, 0) canvas at 224×224 (the paper's IG and DeepSHAP baseline, and
/// every point of an IG path from it before the colours are reached) gives the colours spurious
/// counts of 15, 0, 116 and 1,960 pixels (seed 0; at most 1,960 over seeds 0–2): of the order of
/// one patch's count, so the effect shows on the background and in perturbation curves, without
/// drowning the designed counts of in-distribution images. At 1/4 the canvas counts reach 7,840
/// and dominate every curve that passes through the baseline.
/// Tested in test_multi_color_sum.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/schema.h"
#include "lab/nn/network.h"
#include "networks/accumulator.h"
#include "networks/model.h"
#include "networks/palette.h"

namespace networks {

struct MultiColorSumParams {
  int64_t size = 224;                     ///< image side; see accumulator.h for accepted sizes
  int64_t colors = 4;                     ///< N_C target colours: palette()[0..N_C), 2..12
  Rgb background{20, 20, 20};             ///< the in-distribution background, not a target
  int64_t redundant = 2;                  ///< N_R redundant channels (Fig. 15), 0..64
  bool ude = true;                        ///< unseen-data effect: wire R into the accumulator
  double ude_strength = 0.0625;           ///< largest count change of one unseen pixel, (0, 1024]
  std::string accumulator = "nonuniform";  ///< "nonuniform" (Fig. 13) or "uniform" (Fig. 12)
  uint64_t seed = 0;                      ///< non-uniform and unseen-data weights
  double logit_scale = 0.00390625;        ///< 2^-8: logits = logit_scale × counts
  int64_t kernels = 8;                    ///< non-uniform kernels per colour and block, 2..64

  /// The `-o` keys size, colors, background (R,G,B), redundant, ude, ude-strength, accumulator,
  /// seed, logit-scale, kernels, with their ranges, help and source; its checks refuse (naming the
  /// key) a background that is a target colour, a size the accumulator refuses, a logit-scale that
  /// is not a power of two, ude without redundant channels.
  static const lab::Schema<MultiColorSumParams>& schema();
  /// palette()[0..colors).
  std::vector<Rgb> target_colors() const;
  /// The accumulator these settings build.
  AccumulatorParams accumulator_params() const;
};

/// The model with a role per layer.
Model make_multi_color_sum(const MultiColorSumParams& params);
lab::Network build_multi_color_sum(const MultiColorSumParams& params);

/// The layers the paper's methods attach to (App. G.2): {"gradcam": "accumulator.layers.5",
/// "iba": "accumulator.layers.7"}.
std::map<std::string, std::string> multi_color_sum_paper_layers();

}  // namespace networks
