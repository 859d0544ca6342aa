/// @file single_color_modulo.h
/// @brief The single-color-modulo model (paper App. D, E, F): the number of white pixels of a
/// grayscale image, modulo N.
///
/// CNN accumulator → flatten → modulo unit. Input N×1×size×size, white = 1.0, black = 0.0 (the
/// F.1 images scaled back from 255). Output N×1: exactly (number of white pixels) mod N for every
/// image with at most U = max_input() white pixels.
///
/// Layers (default options: size 224, modulus 30, non-uniform accumulator, U = 4,500):
///   accumulator.layers.0..19  five non-uniform blocks, schedule 2, 2, 2, 4, 7, 8 kernels each;
///                             block s is layers 4s..4s+3 (k×k conv, ReLU, 1×1 conv, ReLU)
///     accumulator.layers.5    block 2's 8 kernel maps after ReLU, 56×56 (the paper's GradCAM layer)
///     accumulator.layers.11   block 3's output: white pixels per 8×8 window, 28×28 (IBA layer)
///     accumulator.layers.19   1×1×1: the number of white pixels
///   flatten                   N×1
///   modulo.layers.0..13       the modulo unit (networks/heads.h), f1..f5, 7 linear layers
/// That is 10 conv + 7 linear = 17 layers, as in the paper's Table 1 and App. E, and 655,559
/// parameters (Table 1: 675,033; the paper states neither U nor the kernels per block, and its
/// count is reproduced by ⌈U/N⌉ ≈ 150–152, i.e. U ≈ 4,500).
/// With accumulator=uniform, one all-ones conv per prime factor (224: six, layers 0..11; layers.11
/// is then the 1×1 total count, so the paper's IBA layer is spatial only with the default).
///
/// Default accumulator: nonuniform, because App. E's "10 CNN layers" for a 224 input can only be
/// two-layer blocks (224 has six prime factors; ten kernel = stride convs cannot all reduce).
///
/// max-count (U, default 4,500). The modulo unit's linear layers have 29⌈U/N⌉² parameters: the
/// paper's count implies U ≈ 4,500 at N = 30 ("U ... can be scaled according to available
/// computation resources", App. C.3), while U = 224² would take 81 million. U is capped at size²
/// (an image has no more pixels), so at sizes up to 67 every image is exact; max-count=0 asks for
/// U = size² explicitly. Images with more than U white pixels are outside the design (the F.1
/// images, four Bézier patches of Bernoulli(0.5) pixels, stay far below it unless their patches
/// are very large): generators must keep their white counts <= max_input().
/// Tested in test_single_color_modulo.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "lab/core/schema.h"
#include "lab/nn/network.h"
#include "networks/accumulator.h"
#include "networks/model.h"

namespace networks {

struct SingleColorModuloParams {
  int64_t size = 224;                      ///< image side; see accumulator.h for accepted sizes
  int64_t modulus = 30;                    ///< N, 2..4096
  std::string accumulator = "nonuniform";  ///< "nonuniform" (Fig. 13, default) or "uniform" (Fig. 12)
  uint64_t seed = 0;                       ///< non-uniform weights
  int64_t max_count = 4500;                ///< U: largest white count handled; 0 = size*size
  int64_t kernels = 8;                     ///< non-uniform kernels per block, 2..64

  /// The `-o` keys size, modulus, accumulator, seed, max-count, kernels, with their ranges, help
  /// and source; its checks refuse a size the accumulator refuses and a U beyond 2^20.
  static const lab::Schema<SingleColorModuloParams>& schema();
  /// The U the model is built with: size² if max_count is 0, else min(max_count, size²).
  int64_t max_input() const;
  /// The accumulator these settings build.
  AccumulatorParams accumulator_params() const;
};

Model make_single_color_modulo(const SingleColorModuloParams& params);
lab::Network build_single_color_modulo(const SingleColorModuloParams& params);

/// The layers the paper's methods attach to (App. F.2): {"gradcam": "accumulator.layers.5",
/// "iba": "accumulator.layers.11"}.
std::map<std::string, std::string> single_color_modulo_paper_layers();

}  // namespace networks
