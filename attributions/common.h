/// @file common.h
/// @brief What every attribution method shares: the explained output, baselines, chunked
/// forward+backward passes, seeds, upsampling of coarse maps, and the Params convention.
///
/// - Output. A method explains either the network's output as is ("probability": after the final
///   softmax when the network has one, App. G.2) or the logits ("logit": the same network without
///   its final lab::Softmax; Zeiler & Fergus 2014 measure occlusion there, App. G.2). A network
///   without a final softmax (the modulo regressor) is the same network under both.
/// - Baseline (reference input) `-p baseline=`: `zero`, `background` (Context::background per
///   channel: the task's true baseline, "IG*"/"Occlusion*" in Section 4.3), `R,G,B` (one value per
///   input channel, or one value for all, in network input units), or a file: a .npy of shape
///   C×H×W (network units) or a .png read through Context::to_input.
/// - run_backprop(): forward+backward of output[target] for a long virtual batch of inputs made
///   chunk by chunk, never more than Context::batch inputs per network call, consumed in order
///   (so per-sample sums are accumulated in a fixed order whatever the chunk size).
/// - Seeds: sample n of a batch draws from lab::Rng(batch.seeds[n], stream), so its map depends
///   on its own seed only, never on which batch it came in or on the thread count.
/// - Params convention: each method has a `Params` struct whose member initializers are the
///   defaults, and `static const lab::Schema<Params>& schema()` declaring every parameter once
///   (type, range or choices, help, source); `params()` is `Params::schema().to_json(params_)`,
///   the constructor runs `Params::schema().validate(params_)`, and method_info<M>() turns the
///   class into its registry entry. Parameters several methods share are declared once here
///   (output_param, baseline_param, layer_param) and added with `lab::Schema::with`.
/// Tested in test_common.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "lab/core/options.h"
#include "lab/core/random.h"
#include "lab/core/schema.h"
#include "lab/nn/network.h"

namespace attributions {

// ---------------------------------------------------------------------------------------------
// Which output is explained

enum class Output {
  kProbability,  ///< the network output as is (after the final softmax, if any)
  kLogit,        ///< the network without its final softmax
};

/// True if the last layer is a lab::Softmax.
bool ends_with_softmax(const lab::Network& net);
/// The network whose output is explained: `net` for kProbability; for kLogit, `net` without its
/// final softmax (unchanged if it has none). Layers are shared with `net`, so this is cheap and
/// the result stays valid after `net` is gone.
lab::Network explained_network(const lab::Network& net, Output output);

// ---------------------------------------------------------------------------------------------
// Baselines

/// A reference input, as given by `-p baseline=` (see the file comment).
struct Baseline {
  enum class Kind { kZero, kBackground, kValues, kFile };
  Kind kind = Kind::kZero;
  std::vector<double> values;  ///< kValues: one per input channel, or a single one for all
  std::string path;            ///< kFile: a .npy (C×H×W, network units) or .png file

  /// Parses the text of `-p KEY=TEXT`; anything else throws lab::Error naming key and text.
  static Baseline parse(const std::string& text, const std::string& key = "baseline");
  /// The text parse() reads back: "zero", "background", "20,20,20", or the path.
  std::string to_string() const;
  /// The baseline as a 1×C×H×W tensor for inputs of one-sample shape C×H×W. A background of the
  /// wrong length, a value list of the wrong length, or a file of another shape throws lab::Error.
  lab::Tensor resolve(const Context& context, const lab::Shape& sample_shape) const;
};

// ---------------------------------------------------------------------------------------------
// Forward + backward in chunks

/// Makes inputs [begin, end) of a long virtual batch, as an (end − begin)×C×H×W tensor.
using InputFn = std::function<lab::Tensor(int64_t begin, int64_t end)>;
/// The output unit explained for input i of the virtual batch.
using TargetFn = std::function<int64_t(int64_t i)>;
/// Receives inputs [begin, begin + signal.batch()): their trace (for the plain gradient and rules that read only
/// signs, lab::reads_only_signs, lab::trace_for_gradient's, keeping the output and to_layer's) and the backward signal (shaped like the input, or like to_layer's output).
using ConsumeFn = std::function<void(int64_t begin, const lab::Trace& trace, const lab::Tensor& signal)>;

/// How a signal is carried back from output[target].
struct Backprop {
  const lab::Network* net = nullptr;          ///< the explained network
  const lab::PreparedRules* rules = nullptr;  ///< prepared for *net; nullptr = the plain gradient
  std::optional<size_t> to_layer;             ///< stop at this layer's output; empty = the input
  /// Seed = one-hot × output[target] (LRP: the relevance to distribute is the output value);
  /// otherwise the one-hot itself (∂ output[target] / ∂ ·).
  bool seed_with_output = false;
  /// For the rescale rule (DeepLIFT): a trace of one reference input shared by every input...
  const lab::Trace* reference = nullptr;
  /// ...or references made per chunk, one per input, like InputFn (this one wins when set).
  InputFn reference_inputs;
  /// Called with each chunk's reference trace when reference_inputs is set (e.g. to read f(x')).
  std::function<void(int64_t begin, const lab::Trace& reference)> on_reference;
};

/// Runs trace + backward over `count` inputs, at most `chunk` per network call, calling `consume`
/// on consecutive chunks in order. Returns the network evaluations spent (2 per input, plus 1 per
/// reference input traced). Each chunk's activations and gradient go to lab::recycle after
/// `consume` (what it keeps, it moves out): the next chunk, or the next call of the same shapes
/// (an optimisation's next iteration, the next image's call), takes the blocks back instead of
/// zero-filling and faulting in fresh ones.
int64_t run_backprop(const Backprop& backprop, int64_t count, int64_t max_batch, const InputFn& inputs,
                     const TargetFn& target, const ConsumeFn& consume);

/// One batch through run_backprop(): the whole backward signal and output[target] per input.
struct Signal {
  lab::Tensor signal;
  std::vector<double> output;
  int64_t evaluations = 0;
};
Signal backprop_batch(const Backprop& backprop, const lab::Tensor& x, const std::vector<int64_t>& target,
                      int64_t max_batch);

/// The largest chunk whose traces (every activation of a forward pass, the input included) fit in
/// `bytes`, clamped to 1..256: a default for Context::batch that bounds memory at any image size.
int64_t batch_for_memory(const lab::Network& net, int64_t bytes);
/// Bytes of one input's traces: every activation of a forward pass, the input included (float32).
int64_t trace_bytes(const lab::Network& net);
/// Refuses (lab::Error(kUsage), lab::check_memory) network calls of `max_batch` inputs whose
/// traces, kept for the backward pass and its gradients (twice the traces), exceed the available
/// memory; `flag` names the setting ("--batch 100000").
void check_batch_memory(const lab::Network& net, int64_t max_batch, const std::string& flag);

/// output[target] per sample of a batch, evaluated in chunks (1 evaluation per input).
std::vector<double> output_at(const lab::Network& net, const lab::Tensor& x, const TargetFn& target, int64_t max_batch);

/// A seed shaped like `output`: sample n holds scale_n at unit target(begin + n), zero elsewhere,
/// with scale_n = 1, or output[n][target] when `times_output`.
lab::Tensor one_hot(const lab::Tensor& output, const TargetFn& target, int64_t begin, bool times_output = false);

// ---------------------------------------------------------------------------------------------
// Checks and seeds

/// Throws lab::Error unless the context has a network, x is N×(input shape) with N ≥ 1, there is
/// one target per sample within the output units, and (when `needs_seeds`) one seed per sample.
void check_batch(const Context& context, const Batch& batch, bool needs_seeds = false);


// ---------------------------------------------------------------------------------------------
// Maps at a hidden layer's resolution

/// Bilinear resize (OpenCV cv::resize, INTER_LINEAR: half-pixel centres, edges clamped) of
/// N×h×w maps to N×height×width.
lab::Tensor upsample_bilinear(const lab::Tensor& maps, int64_t height, int64_t width);
/// N×H×W pixel maps to N×C×H×W attributions in which every channel holds map / C, so that the
/// channel sum (reduce_channels) gives back the map exactly up to rounding. This is how methods
/// that produce one value per pixel (GradCAM, region methods) fill the input's channels.
lab::Tensor spread_over_channels(const lab::Tensor& maps, int64_t channels);

// ---------------------------------------------------------------------------------------------
// The Params convention

/// The `output` choices, for `.choice("output", &Params::output, output_choices(), ...)`.
const std::vector<std::pair<Output, std::string>>& output_choices();
/// How a Baseline is read from `-p baseline=TEXT` and recorded (Baseline::parse, to_string()).
const lab::Codec<Baseline>& baseline_codec();

/// The registry entry of a method class M whose nested `Params` has a `static const
/// lab::Schema<Params>& schema()`; the method is made by `factory(Params)` from the parameters
/// the schema reads (checked, then consumed from the options).
template <class M, class Factory>
MethodInfo method_info(std::string name, std::string summary, Factory factory) {
  MethodInfo info;
  info.name = std::move(name);
  info.summary = std::move(summary);
  info.params = M::Params::schema().docs();
  info.make = [factory](lab::Options& options) -> std::unique_ptr<Method> {
    return factory(M::Params::schema().read(options));
  };
  return info;
}

/// The same for a method constructed as M(Params).
template <class M>
MethodInfo method_info(std::string name, std::string summary) {
  return method_info<M>(std::move(name), std::move(summary),
                        [](typename M::Params p) -> std::unique_ptr<Method> { return std::make_unique<M>(std::move(p)); });
}

/// `-p output=probability|logit` (see Output). The default is the member's initializer;
/// `source` says where it comes from (e.g. "App. G.2: after the softmax").
template <class P>
auto output_param(Output P::*member, std::string source) {
  return [member, source = std::move(source)](lab::Schema<P>& s) {
    s.choice("output", member, output_choices(),
             {.help = "explained output: probability (after the final softmax, if any) | logit (before it)",
              .source = source});
  };
}

/// `-p baseline=zero|background|R,G,B|file.npy|file.png` (see Baseline); `help` says what the
/// baseline is to the method.
template <class P>
auto baseline_param(Baseline P::*member, std::string help, std::string source = "") {
  return [member, help = std::move(help), source = std::move(source)](lab::Schema<P>& s) {
    s.custom("baseline", member, baseline_codec(),
             {.help = help + ": zero | background (the task's true background) | R,G,B | file.npy | file.png",
              .source = source});
  };
}

/// `-p layer=NAME`: the hidden layer a method works at; empty = Context::layers[hook], which the
/// environments set to the paper's layer (`paper`, e.g. "accumulator.layers.5").
template <class P>
auto layer_param(std::string P::*member, std::string what, std::string hook, std::string paper) {
  return [member, what = std::move(what), hook = std::move(hook), paper = std::move(paper)](lab::Schema<P>& s) {
    s.field("layer", member,
            {.help = what + "; empty = the environment's " + hook + " layer (multi-color-sum: " + paper + ")",
             .source = "App. F.2, G.2"});
  };
}

}  // namespace attributions
