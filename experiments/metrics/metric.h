/// @file metric.h
/// @brief The one interface every evaluation metric implements, its typed outputs, and the
/// metric registry (paper Sections 4–5, App. F.3–F.5, G.3–G.5).
///
/// Structure after Quantus' `metrics/base.py`: the base class owns batching (splitting the
/// samples into batches of Context::batch), normalisation (channel reduction to one value per
/// pixel, and eq. 17 when a metric asks for it) and aggregation (one summary row per variant over
/// the samples). A metric implements evaluate_batch() on an already normalised batch and declares
/// its name, family, params() and its variants, each with a direction (higher or lower is
/// better — the rankings and Spearman correlations of rank.h need it).
///
/// Outputs are typed rows, never printed text: MetricRow {sample, variant, value} per sample and
/// variant, and CurvePoint {sample, variant, x, y} for metrics with curves (Insertion/Deletion:
/// x = fraction of pixels perturbed; Sensitivity-N: x = N). Reporters (CSV, Markdown, figures)
/// consume them; the `evaluate` command adds the method and metric columns.
///
/// Metrics (one registry line each, registry.cpp; outside code adds its own with add_metric()):
/// - "gt"                 ground-truth precision/recall/F1 × positive/negative/overall (gt.h)
/// - "faithfulness-test"  Definition 2.1 / eq. 2 at threshold γ (faithfulness.h)
/// - "insertion", "deletion"  App. G.4, and the modulo variant of App. F.4 (insertion_deletion.h)
/// - "sensitivity-n"      App. G.5, and the modulo variant of App. F.5 (sensitivity_n.h)
/// - "pixel-flipping", "reference-pixel-flipping"  the unified study (pixel_flipping.h,
///   reference_pixel_flipping.h)
/// - "average-drop", "increase-in-confidence", "average-gain"  (confidence_change.h)
/// - "monotonicity" (monotonicity.h), "max-sensitivity", "avg-sensitivity"
///   (max_avg_sensitivity.h: they re-explain inputs through Context::explain)
/// - "complexity", "effective-complexity", "sparseness" (complexity.h), "pointing-game"
///   (pointing_game.h)
/// - "soundness", "completeness"  Gao et al. 2024, Alg. 3/4, with exact values from the GT (soundness.h, completeness.h)
/// - "road"               Rong et al. 2022, noisy linear imputation, MoRF/LeRF (road.h); "invariant" (invariant.h)
///
/// Settings come from `-p key=value` into each metric's Params, declared once in its
/// `Params::schema()` (lab/core/schema.h): parsing, validation, the params() record and the
/// listing derive from it; defaults that depend on the data are resolved from MetricSetup when the
/// metric is made, so params() records the values used. A key that no chosen metric reads is
/// refused. Network evaluations, their batching and threading belong to the engine
/// (experiments/engine/); execution knobs (Context::unit, Context::batch) never change a
/// result. Tested generically over the registry in tests/experiments/test_metrics_registry.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/engine/context.h"
#include "lab/core/options.h"
#include "lab/core/schema.h"
#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace experiments {

/// Whether a larger value of a variant means a better attribution method.
enum class Direction { kHigherIsBetter, kLowerIsBetter };
/// "higher-is-better" or "lower-is-better".
std::string direction_name(Direction direction);

/// One output quantity of a metric (e.g. "f1-positive", "auc") and its direction.
struct Variant {
  std::string name;
  Direction direction = Direction::kHigherIsBetter;
};

/// One value of one variant for one sample. Aggregated rows (Metric::aggregate) use
/// sample = kAllSamples.
struct MetricRow {
  std::string sample;
  std::string variant;
  double value = 0.0;
};

/// One point of one curve of one sample.
struct CurvePoint {
  std::string sample;
  std::string variant;
  double x = 0.0;
  double y = 0.0;
};

/// The sample id of rows that summarise all samples.
inline constexpr const char* kAllSamples = "all";

/// Everything a metric produces for a batch (or, concatenated, for a data set).
struct MetricOutput {
  std::vector<MetricRow> rows;
  std::vector<CurvePoint> curves;
  void append(MetricOutput&& other);
};

/// One batch to score. All tensors share N; spatial size H×W is the input's.
struct Batch {
  std::vector<std::string> ids;    ///< sample ids (rows' `sample`)
  lab::Tensor x;                   ///< N×C×H×W inputs, network units
  /// N×H×W or N×C×H×W attribution maps; the base reduces channels by summation (as
  /// attributions::reduce_channels does) and applies the metric's normalisation.
  lab::Tensor attr;
  std::vector<int64_t> target;     ///< output unit explained, per sample
  lab::Tensor gt;                  ///< N×H×W pixel ground truth (signed: +1, −1, 0)
  lab::Tensor gt_smooth;           ///< N×H×W smooth ground truth; may be empty
  std::vector<uint64_t> seeds;     ///< per-sample seeds (random subsets, noise)

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  /// Copy of samples [begin, end).
  Batch slice(int64_t begin, int64_t end) const;
};

/// How the base prepares attribution maps before evaluate_batch().
enum class Normalisation {
  kNone,  ///< channel-summed map as given
  kEq17,  ///< eq. 17: positive part divided by its max, negative part by |min| (App. F.3)
};

/// Eq. 17 on each sample of an N×H×W map: a ≥ 0 → a / max⁺, a < 0 → a / |min⁻|; a part that is
/// absent (no positive or no negative value, or max⁺ = 0) is left as is. Result in [−1, 1].
lab::Tensor normalise_eq17(const lab::Tensor& attr);
/// N×C×H×W → N×H×W by summing channels; N×H×W is returned unchanged.
lab::Tensor pixel_map(const lab::Tensor& attr);

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  /// "ground-truth", "perturbation", "robustness", "complexity" or "axiom" (invariant.h).
  virtual std::string family() const = 0;
  /// Every parameter with its resolved value.
  virtual nlohmann::json params() const = 0;
  /// The variants this metric (with these params) writes, with their directions.
  virtual std::vector<Variant> variants() const = 0;
  virtual Normalisation normalisation() const { return Normalisation::kNone; }

  /// Scores every sample of `data`: units of context.unit samples, each normalised and passed
  /// to evaluate_batch(). Rows come in sample order; then one row per variant with
  /// sample = kAllSamples from aggregate(). Shapes that do not fit and maps holding NaN or Inf throw lab::Error.
  MetricOutput evaluate(const Context& context, const Batch& data) const;
  /// The same without the summary rows: for callers that score a data set in parts and call
  /// aggregate() once on all the rows.
  MetricOutput evaluate_samples(const Context& context, const Batch& data) const;
  /// Summary rows (sample = kAllSamples) from per-sample rows; by default the mean per variant.
  virtual std::vector<MetricRow> aggregate(const std::vector<MetricRow>& rows) const;
  /// Direction of a variant; an unknown variant throws lab::Error.
  Direction direction(const std::string& variant) const;

  /// The `metric` column of its result rows and curves: the experiment config's `label` of this
  /// entry (config.h), so that configurations of one metric stay apart; name() when none is set.
  std::string label() const { return label_.empty() ? name() : label_; }
  void set_label(std::string label) { label_ = std::move(label); }

 protected:
  /// Scores one batch whose attr is already N×H×W and normalised.
  virtual MetricOutput evaluate_batch(const Context& context, const Batch& batch) const = 0;

 private:
  std::string label_;
};

/// The base of a metric whose settings are a struct P with `static const lab::Schema<P>&
/// schema()`: it keeps them (checked against the schema when the metric is made), records them
/// in params(), and names P as the metric's `Params` (what metric_info reads with).
template <class P>
class MetricWith : public Metric {
 public:
  using Params = P;
  explicit MetricWith(P params) : params_(std::move(params)) { P::schema().validate(params_); }
  nlohmann::json params() const override { return P::schema().to_json(params_); }

 protected:
  P params_;
};

/// One registry entry: what `attrlab metrics` lists and how the metric is made.
struct MetricInfo {
  std::string name;
  std::string family;   ///< "ground-truth", "perturbation", "robustness", "complexity" or "axiom"
  std::string summary;  ///< one line, with the paper section it comes from
  std::string source;   ///< the paper (and section or equation) that defines the metric
  /// Every variant the metric can write (under any parameters), with its direction.
  std::vector<Variant> variants;
  std::vector<lab::ParamDoc> params;  ///< from the metric's Params::schema()
  /// Reads the metric's keys from `-p` options (marks them read; does not call finish()) and
  /// resolves the derived defaults from the setup.
  std::function<std::unique_ptr<Metric>(lab::Options&, const MetricSetup&)> make;
};

/// The registry entry of a metric class M whose nested `Params` has a `static const
/// lab::Schema<Params>& schema()` (and, when some defaults depend on the data, a
/// `void resolve(const MetricSetup&)` filling them): the metric is made by
/// `factory(Params)` from the parameters the schema reads, resolved.
template <class M, class Factory>
MetricInfo metric_info(std::string name, std::string family, std::string summary, std::string source,
                       std::vector<Variant> variants, Factory factory) {
  MetricInfo info;
  info.name = std::move(name);
  info.family = std::move(family);
  info.summary = std::move(summary);
  info.source = std::move(source);
  info.variants = std::move(variants);
  info.params = M::Params::schema().docs();
  info.make = [factory](lab::Options& options, const MetricSetup& setup) -> std::unique_ptr<Metric> {
    typename M::Params p = M::Params::schema().read(options);
    if constexpr (requires { p.resolve(setup); }) p.resolve(setup);
    return factory(std::move(p));
  };
  return info;
}

/// The same for a metric constructed as M(Params).
template <class M>
MetricInfo metric_info(std::string name, std::string family, std::string summary, std::string source,
                       std::vector<Variant> variants) {
  return metric_info<M>(std::move(name), std::move(family), std::move(summary), std::move(source), std::move(variants),
                        [](typename M::Params p) -> std::unique_ptr<Metric> { return std::make_unique<M>(std::move(p)); });
}

/// Every metric, in the order `attrlab metrics` lists them: the table of registry.cpp (one line
/// per metric), then the metrics added with add_metric().
const std::vector<MetricInfo>& registry();
/// Registers a metric defined outside the table (a name already taken throws lab::Error). Made
/// and listed like the others from then on; call it before scoring starts (not thread-safe).
void add_metric(MetricInfo info);
/// The named metric with `params` applied; unknown names (listing the known ones), unknown keys
/// and impossible values throw lab::Error.
std::unique_ptr<Metric> make_metric(const std::string& name, lab::Options& params, const MetricSetup& setup);
/// Several metrics sharing one set of `-p` options: each reads the keys it knows; a key that no
/// chosen metric knows is an error (listing the keys they accept). Repeated names are an error.
std::vector<std::unique_ptr<Metric>> make_metrics(const std::vector<std::string>& names, lab::Options& params,
                                                  const MetricSetup& setup);

}  // namespace experiments
