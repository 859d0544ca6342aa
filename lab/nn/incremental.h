/// @file incremental.h
/// @brief Network outputs of inputs that differ from a reference input in known local regions,
/// evaluated incrementally: a change of a few input pixels recomputes only the activations in
/// their receptive field, layer by layer. Two forms of the same engine: a path of cumulative
/// pixel perturbations (the engine behind full-resolution Insertion/Deletion curves, pixel
/// flipping and the modulo Sensitivity-N of App. F.5), and a batch of independent local changes
/// of one reference input (LocalChanges: Occlusion's sliding windows).
///
/// A PerturbationPath starts from an input and, step by step, sets some pixels (all channels)
/// to the values of a source image (or back to the start's values); steps accumulate. PathEvaluator::run returns the output of
/// layers [0, end) after every step.
///
/// How (exact, no approximation). The evaluator keeps every activation of the current input up
/// to the *spatial prefix* of the network (its leading Conv2d/ReLU layers). For each step it
/// propagates the changed rectangle: a Conv2d with kernel k, stride s, padding p changes the
/// output rows oy whose window [oy·s − p, oy·s − p + k) meets the changed input rows (same for
/// columns); a ReLU changes what changed. Steps are evaluated in chunks of consecutive steps.
/// Per chunk and layer, every step gets an output window of one fixed shape (the largest changed
/// rectangle of the chunk, moved inside the map when it would cross the border) that contains
/// its changed rectangle; for a Conv2d the input crop under that window is copied from the
/// running activation *after writing back the windows of the earlier steps of the chunk*, so it
/// holds exactly the state after this step; zero padding at the borders is copied as zeros and
/// the crops run through a padding-free copy of the layer in ONE batched oneDNN call (the fixed
/// crop shape reuses the cached primitive). The windows are then written back in step order:
/// a position covered by several windows ends with the value of the last step that changed it,
/// and positions outside every window did not change. After the spatial prefix (from the first
/// Flatten/Linear/Softmax), the remaining layers run in full on the chunk's activations as one
/// batch. A step whose change reaches the whole map degenerates to a full evaluation of that
/// layer, so every path is handled; only the cost varies.
///
/// Exactness: every output element is computed by the same layer on the same input values as
/// in a full forward pass. On the designed networks (integer and dyadic weights) the curves are
/// bit-identical to full recomputation; tests/experiments/test_metrics_incremental.cpp (paths)
/// and tests/attributions/test_perturbation_occlusion.cpp (local changes) check this on the
/// lab's networks, tests/lab/test_incremental.cpp agreement to float rounding on random networks
/// with padding, strides and groups (both forms, any chunking, a graph network's fall-back).
///
/// A step may write many pixels far apart (Insertion/Deletion with several pixels per step in
/// attribution order): only the state after the step is observed, so such a step is written pixel
/// by pixel — each pixel a sub-step with its own small windows, the layers after the prefix run
/// only after the last — when a cost model (multiply-adds and copied floats of the windows plus
/// a per-sub-step overhead) finds that cheaper than the step's bounding rectangle. A coarse curve
/// so never costs more than the one-pixel curve. A step whose rectangle is the whole map runs as
/// a full forward pass.
///
/// Paths start after the network's leading pixel-wise layers (pixelwise_cut below; e.g.
/// multi-color-sum's colour detector, its first 10 layers): the start and the source go through
/// those layers once, and a step writes its pixels' activations there (a pixel's activation at
/// the cut depends on that pixel's input values alone), so the windows begin at the first layer
/// that mixes pixels. Params::assemble_at_cut = false starts from the input (same results).
///
/// Independent local changes (run(const LocalChanges&)): variant v equals the reference except
/// inside its box. The reference's activations through the spatial prefix are computed once; a
/// variant's window at layer l+1 is computed from a crop of the reference's level-l activation
/// overlaid with the variant's own level-l window (at the input: the box, from `source`), so
/// every crop holds exactly the variant's input of that layer; the tail runs on the reference's
/// prefix output overlaid with the variant's last window. Variants are grouped by size class,
/// chunked like path steps, and a variant whose windows would cost at least a full evaluation of
/// the prefix (the cost model above) runs in a batched full forward pass instead. Crops and
/// overlays are built on TBB between the oneDNN calls (never concurrently with them).
///
/// Execution knobs (Params) bound the chunk length and memory and keep tiny layer calls on one
/// thread; they never change a result.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace lab {

/// A sequence of cumulative perturbations of one input.
struct PerturbationPath {
  lab::Tensor start;              ///< C×H×W (or 1×C×H×W): the input before the first step
  lab::Tensor source;             ///< same shape: a perturbed pixel takes all its channels from here
  std::vector<int64_t> order;     ///< pixel indices h·W + w, in perturbation order
  /// Step k (1-based) perturbs order[step_ends[k−2] .. step_ends[k−1]) (from 0 for k = 1);
  /// strictly increasing, the last ≤ order.size().
  std::vector<int64_t> step_ends;
  /// Optional, one flag per step: a step flagged 1 sets its pixels back to their `start` values
  /// instead (undoing earlier steps), so independent perturbations of one input can share a path.
  std::vector<uint8_t> restore;

  int64_t steps() const { return static_cast<int64_t>(step_ends.size()); }
};

/// Step ends for `pixels` pixels perturbed `per_step` at a time (the last step may be shorter).
std::vector<int64_t> uniform_steps(int64_t pixels, int64_t per_step);

/// Independent local changes of one input: variant v equals `reference` except inside
/// boxes[v], where it takes `source`'s values.
struct LocalChanges {
  /// Half-open box [c0, c1) × [y0, y1) × [x0, x1) of a C×H×W input (non-empty, inside it).
  struct Box {
    int64_t c0 = 0, c1 = 0, y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  };
  lab::Tensor reference;  ///< C×H×W (or 1×C×H×W)
  lab::Tensor source;     ///< same shape
  std::vector<Box> boxes;
  int64_t variants() const { return static_cast<int64_t>(boxes.size()); }
};

/// The activation after a network's leading pixel-wise layers at which perturbed inputs are
/// best assembled (0 = the network input): an input that takes each pixel's values from one of
/// two images has, through leading layers that compute every pixel from that pixel alone (ReLU,
/// BatchNorm, 1×1 Conv2d of stride 1 without padding; a chain), pixel by pixel the activation of
/// one image or the other there. Among the activations of that prefix the one is taken whose
/// filling (4 per channel) plus the remaining prefix's multiply-adds (per pixel) cost least; 0
/// when the input is not C×H×W or no layer qualifies. Multi-color-sum's colour detector (every
/// layer before the accumulator, >90% of a forward pass) is such a prefix. Used by
/// attributions::evaluate_coalitions, PathEvaluator and the metrics' subset evaluation.
size_t pixelwise_cut(const lab::Network& net);

/// Multiply-adds of layers [first, end) of a chain network for one input (a Conv2d or Linear:
/// its output values times the multiply-adds of each; any other layer: its output values). The
/// unit of PathEvaluator's cost model.
double layer_work(const lab::Network& net, size_t first, size_t end);

class PathEvaluator {
 public:
  struct Params {
    /// Most steps per chunk (≥ 1).
    int64_t max_batch = 256;
    /// Bound on the floats held per chunk by crops, windows and the tail batch (≥ 1).
    int64_t max_elements = int64_t{1} << 24;
    /// false: evaluate every step with a full forward pass (the reference way).
    bool incremental = true;
    /// Incremental only: a step whose pixels lie far apart runs pixel by pixel when the cost
    /// model finds that cheaper, a whole-map step as a full pass (false: every step as one
    /// rectangle of windows).
    bool split_steps = true;
    /// A layer call on fewer input floats than this runs on one OpenMP thread: for the tiny
    /// window batches, synchronising a thread team costs more than it saves (and much more on a
    /// loaded machine). 0 disables; the result does not depend on it.
    int64_t serial_below = int64_t{1} << 18;
    /// Incremental paths only: start after the network's leading pixel-wise layers
    /// (pixelwise_cut): the start and the source go through them once, and each step writes its
    /// pixels' activations there, so those layers never run per step (false: from the input).
    /// Local changes always start at the input (their boxes name input channels).
    bool assemble_at_cut = true;
    void validate() const;
  };

  /// Evaluates layers [0, end) of `net` (end ≤ net.size()); `net` must outlive the evaluator.
  PathEvaluator(const lab::Network& net, size_t end, Params params);
  PathEvaluator(const lab::Network& net, size_t end);
  ~PathEvaluator();

  /// What a run did (for benchmarks and tests; results never depend on it).
  struct Stats {
    int64_t sub_steps = 0;  ///< prefix evaluations: the steps, or their sub-steps when split
    /// Inputs evaluated with a full forward pass (every step or variant when not incremental;
    /// local changes: the variants the cost model sends to a full pass).
    int64_t full_passes = 0;
  };
  /// (steps + 1) × K outputs (each output flattened to K values): row 0 for the start input,
  /// row k after step k. A path that does not fit the network throws lab::Error.
  lab::Tensor run(const PerturbationPath& path, Stats* stats = nullptr) const;
  /// (1 + variants) × K outputs: row 0 for the reference, row 1 + v for variant v. Changes that
  /// do not fit the network throw lab::Error.
  lab::Tensor run(const LocalChanges& changes, Stats* stats = nullptr) const;
  /// Number of leading layers evaluated incrementally (Conv2d/ReLU before the first other layer).
  size_t spatial_layers() const { return spatial_; }
  /// The activation incremental paths start from (0: the input; see Params::assemble_at_cut).
  size_t path_cut() const { return cut_; }
  /// The cost model's work of one path step that changes one pixel (multiply-adds and copied
  /// floats of its windows, the per-sub-step overhead, and layer_work of the layers after the
  /// spatial prefix, which run for every step); +infinity when this evaluator runs full passes.
  double pixel_step_work() const;

 private:
  struct Chunk;
  lab::Tensor run_full(const PerturbationPath& path) const;
  lab::Tensor run_incremental(const PerturbationPath& path, Stats* stats) const;
  void run_local_full(const LocalChanges& changes, const std::vector<int64_t>& variants, lab::Tensor& out) const;
  lab::Tensor run_local_incremental(const LocalChanges& changes, Stats* stats) const;
  /// Spatial layer `l` on a batch of crops: the padding-free convolution, or the ReLU in place.
  lab::Tensor window_output(size_t l, lab::Tensor crops) const;
  const lab::Network& net_;
  size_t end_;
  Params params_;
  size_t spatial_ = 0;
  /// Per spatial layer: the padding-free copy of a Conv2d (null for ReLU).
  std::vector<std::shared_ptr<const lab::Conv2d>> crop_convs_;
  /// Paths from activation cut_ > 0: the layers [cut_, end) as a network of their own (the same
  /// layer objects) and the evaluator of its paths.
  size_t cut_ = 0;
  std::shared_ptr<const lab::Network> after_cut_;
  std::shared_ptr<const PathEvaluator> from_cut_;
};

}  // namespace lab
