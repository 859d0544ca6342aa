/// @file map_edits.h
/// @brief Two more control "methods" for the metric studies: the soundness paper's Remove and
/// Introduce edits of another method's maps, and a content-free map whose top pixels are isolated.
///
/// - `edited` (`-p base=METHOD -p edit=remove|introduce -p scheme=constant|random|partial`,
///   METHOD's own `-p` keys alongside, wrapped as `blurred` wraps): Gao et al. 2024 (soundness and
///   completeness), Sec. 5.1–5.2, App. G.3 Table 3 (the edits behind their Table 1). METHOD's
///   channel-summed map S is first scaled to [0, 1] as the paper's maps are (it clamps attribution
///   to [0, 1]; App. G.1 clips negative attribution): a = max(S, 0) / max S (a = 0 when max S ≤ 0).
///   Then, per pixel, with d = `shift` (0.6):
///   | scheme   | remove                                             | introduce                                        |
///   |----------|----------------------------------------------------|--------------------------------------------------|
///   | constant | a − d                                              | a + d                                            |
///   | random   | a + u, u ~ U(−d, 0) per pixel                      | a + u, u ~ U(0, d) per pixel                     |
///   | partial  | pixels of ascending rank in [⌊r₀P⌋, ⌊r₁P⌋) set to 0 | pixels of ascending rank in [0, ⌊r₂P⌋) set to q  |
///   with r₀ = `remove-from` (0.6), r₁ = `remove-to` (0.8), r₂ = `introduce-to` (0.4), q the
///   `introduce-quantile`-th (0.8) quantile of a (numpy's linear interpolation), and the ascending
///   rank taken by value, ties in pixel order (stable). Values are not clipped: the metrics see a
///   constant Remove's negative part as the paper's evaluation does (soundness keeps the positive
///   part). The edited map is written to channel 0, the other channels 0, so the channel sum
///   every metric reads is the edited map. Random draws come from the sample's seed (lab::Rng), so
///   a map does not depend on its batch.
/// - `isolated`: a map that ignores the network and the input: channel 0 holds 1 − r/P, r the
///   pixel's rank in the ordered-dither (Bayer) order of the smallest 2^k × 2^k square covering
///   the image, other channels 0. Flipped most-relevant-first, every prefix of the order is spread
///   evenly over the image: the first quarter is the pixels with even row and column, none of
///   them 8-adjacent to another. It is the unified paper's "pixel isolation" (Sec. 6.2.3, App.
///   B.3) without any information about the pixels: the isolation half of the confound, beside
///   `random` (isolated and uninformed too, but irregular).
/// Only the wrapped method evaluates the network. Tested in tests/attributions/test_map_edits.cpp.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class EditedMap final : public Method {
 public:
  struct Params {
    std::string base = "saliency";
    std::string edit = "remove";
    std::string scheme = "constant";
    double shift = 0.6;
    double remove_from = 0.6;
    double remove_to = 0.8;
    double introduce_to = 0.4;
    double introduce_quantile = 0.8;
    static const lab::Schema<Params>& schema();
  };
  EditedMap(Params params, std::unique_ptr<Method> inner);
  std::string name() const override { return "edited"; }
  nlohmann::json params() const override;
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

  /// The edit of one scaled map `a` (P values in [0, 1]) in place; `uniform` gives U(0, 1) draws
  /// (used by scheme random only).
  static void apply(const Params& params, std::vector<float>& a, const std::function<double()>& uniform);

 private:
  Params params_;
  std::unique_ptr<Method> inner_;
};

class IsolatedMap final : public Method {
 public:
  struct Params {
    static const lab::Schema<Params>& schema();  ///< no parameters
  };
  explicit IsolatedMap(Params params) : params_(params) {}
  std::string name() const override { return "isolated"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

  /// Ordered-dither index of (row, col) in the 2^bits × 2^bits Bayer matrix (0 = first).
  static int64_t bayer_index(int64_t row, int64_t col, int bits);

 private:
  Params params_;
};

}  // namespace attributions
