/// @file occlusion.h
/// @brief Occlusion (Zeiler & Fergus 2014; paper App. B.1.4, F.2, G.2): slide a window over the
/// input, replace it by a baseline, and credit every feature in the window with the drop of the
/// explained output.
///
/// For every window position P (a box of `window` = (c, h, w) features, moved by `strides`
/// = (sc, sh, sw) along channels, rows and columns) the occluded input x^P equals the baseline b
/// inside P and x elsewhere, and
///   Δ_P = f_t(x) − f_t(x^P),      attr_i = Σ_{P ∋ i} Δ_P / |{P ∋ i}|,
/// i.e. overlapping windows are averaged. Window positions follow Captum's layout: along a
/// dimension of size D the windows start at k·s for k = 0 … ⌈(D − w)/s⌉, i.e. ⌈(D − w)/s⌉ + 1
/// windows (21 per axis at 64×64 with 5/3), and a last window that reaches past the border is
/// clipped there, so every feature is covered (strides longer than the window are refused, as in
/// Captum). The map has a value per input element (channel, row, column), as Captum's.
///
/// Parameters (App. F.2 / G.2):
/// - `window`, `strides`: three positive integers each, or `auto` = (C, 5, 5) and (C, 3, 3) for an
///   input of C channels: (3,5,5)/(3,3,3) on RGB (multi-color-sum) and (1,5,5)/(1,3,3) on gray
///   (modulo), the paper's settings.
/// - `baseline`: zero (default, "Occlusion"), background (the task's true background,
///   "Occlusion*", Section 4.3), R,G,B, or a file (common.h).
/// - `output`: logit (default: the layer before the softmax, as Zeiler & Fergus measure it,
///   App. G.2) or probability.
/// Cost: 1 + (number of windows) evaluations per sample. Each occluded input differs from x_n only
/// inside its window, so on a chain network the evaluations run on the incremental engine
/// (lab/nn/incremental.h, LocalChanges): the activations of x_n are computed once and each window
/// recomputes only its receptive field through the leading Conv2d/ReLU layers, batched over
/// window positions in chunks holding no more floats than Context::batch full inputs; a window
/// whose receptive field costs as much as a full pass, and every window on a graph network (or a
/// network without leading convolutions), runs as full forward passes in chunks of
/// Context::batch inputs, all samples' windows in one virtual batch (the reference way,
/// set_incremental(false)). Both give the same map up to the order in which a window's
/// convolution sums (bit-identical on the designed networks at 64×64; see the README).
/// Tested in test_perturbation_occlusion.cpp: on a linear model f = w·x + β the map equals the
/// closed form attr_i = (1/n_i) Σ_{P ∋ i} Σ_{j ∈ P} w_j (x_j − b_j) for several window/stride
/// shapes (including clipped border windows) and for `auto`; the window counts equal Captum's
/// ⌈(D − w)/s⌉ + 1 and every pixel of a ground-truth patch at the border is covered; a spy network sees exactly the expected
/// occluded inputs, never more than `chunk` at a time; Occlusion* on multi-color-sum equals the
/// designed closed form (each window's drop = logit_scale × its winning pixels); the map does not
/// depend on the chunk size or the thread count; the incremental map equals the full-forward one
/// (strides that do not divide the size, RGB and gray, a graph network that falls back).
#pragma once

#include <optional>
#include <vector>

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class Occlusion final : public Method {
 public:
  struct Params {
    std::optional<std::vector<int64_t>> window;   ///< (c, h, w); nullopt = auto (C, 5, 5)
    std::optional<std::vector<int64_t>> strides;  ///< (c, h, w); nullopt = auto (C, 3, 3)
    Baseline baseline;                            ///< zero by default
    Output output = Output::kLogit;
    static const lab::Schema<Params>& schema();
  };
  explicit Occlusion(Params params);
  std::string name() const override { return "occlusion"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

  /// The window and strides used on inputs of `channels` channels (resolving `auto`).
  std::vector<int64_t> window_for(int64_t channels) const;
  std::vector<int64_t> strides_for(int64_t channels) const;
  /// Windows per dimension (channel, row, column) on inputs of `sample_shape`: ⌈(D − w)/s⌉ + 1.
  /// Throws lab::Error if the window does not fit or a stride exceeds the window.
  static std::vector<int64_t> window_counts(const std::vector<int64_t>& window, const std::vector<int64_t>& strides,
                                            const lab::Shape& sample_shape);
  /// Execution only (not a parameter): false evaluates every window with a full forward pass,
  /// the reference the incremental engine is compared with in tests and benchmarks.
  void set_incremental(bool incremental) { incremental_ = incremental; }

 private:
  Params params_;
  bool incremental_ = true;
};

}  // namespace attributions
