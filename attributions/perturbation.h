/// @file perturbation.h
/// @brief What the perturbation, surrogate and optimisation methods share: forward-only
/// evaluation of a long virtual batch of perturbed inputs in chunks (occlusion, LIME, KernelSHAP,
/// RISE), inputs with superpixels switched off, per-pixel maps from per-superpixel values,
/// portable random draws, and the optimisers of extremal perturbations (SGD) and IBA (Adam).
///
/// A perturbation method explains sample n by f_t on many perturbed copies of x_n. All copies of
/// all samples of a batch form one virtual batch (sample 0's copies, then sample 1's, ...), made
/// and evaluated chunk by chunk, never more than Context::batch inputs per network call; outputs
/// arrive in order, so whatever a method sums over them it sums in the same order for any chunk
/// size. Building a chunk's inputs (the work around the call) runs on TBB; the network call
/// itself runs alone on oneDNN's threads.
/// Tested through every perturbation method's chunk- and thread-invariance tests
/// (test_perturbation_*.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "attributions/common.h"
#include "attributions/segmentation.h"
#include "lab/nn/network.h"

namespace attributions {

/// ⌈a / b⌉ for a ≥ 0, b > 0: the cells or bands of size b that cover a length a (RISE's mask
/// grid, the extremal perturbation's mask grid and bands).
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Portable draws from a sample's stream (lab::Rng, lab/core/random.h): the algorithms are written out
/// rather than taken from <random>'s distributions, which each standard library implements its
/// own way, so the same seed gives the same map with any compiler.
class Draws {
 public:
  explicit Draws(std::mt19937_64 engine) : engine_(std::move(engine)) {}
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform integer in [0, n), n >= 1, unbiased (rejection of the last partial range).
  uint64_t below(uint64_t n);
  /// Bernoulli(p): uniform() < p.
  bool bernoulli(double p) { return uniform() < p; }
  /// Standard normal by the Box–Muller transform (one value per two uniforms).
  double normal();

 private:
  std::mt19937_64 engine_;
};

/// Adam (Kingma & Ba 2015) on a flat parameter vector, as torch.optim.Adam: with g the gradient,
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr · m̂ / (sqrt(v̂) + ε) with the bias-corrected
/// m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ). The optimiser of IBA (Schulz et al. 2020).
class Adam {
 public:
  Adam(size_t size, double lr, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8);
  /// One step of descent on `theta` along `grad` (both of the size given at construction).
  void step(std::vector<double>& theta, const std::vector<double>& grad);

 private:
  double lr_, beta1_, beta2_, epsilon_;
  std::vector<double> m_, v_;
  int64_t t_ = 0;
};

/// Stochastic gradient descent with momentum μ and dampening d, as torch.optim.SGD: the buffer
/// starts at the first gradient, then b ← μb + (1−d)g, and θ ← θ − lr·b. The optimiser of
/// extremal perturbations (Fong et al. 2019: μ = d = 0.9, lr = 0.01). Unlike Adam, its steps are
/// proportional to the gradient, so a parameter with a weak gradient barely moves.
class Sgd {
 public:
  Sgd(size_t size, double lr, double momentum, double dampening);
  void step(std::vector<double>& theta, const std::vector<double>& grad);

 private:
  double lr_, momentum_, dampening_;
  std::vector<double> buffer_;
  bool started_ = false;
};

/// Receives output[target] of inputs [begin, begin + outputs.size()) of the virtual batch.
using OutputsFn = std::function<void(int64_t begin, const std::vector<double>& outputs)>;

/// Forward passes over `count` inputs made by `inputs`, at most `chunk` per network call, handing
/// output[target(i)] of each to `consume` chunk by chunk, in order. Returns the evaluations spent
/// (one per input).
int64_t run_forward(const lab::Network& net, int64_t count, int64_t max_batch, const InputFn& inputs,
                    const TargetFn& target, const OutputsFn& consume);

/// Runs `body(i)` for i in [begin, end) on TBB workers (each i must write only its own data).
void parallel_items(int64_t begin, int64_t end, const std::function<void(int64_t)>& body);

/// A set of coalitions of one sample's superpixels: `count` rows of `features` bytes, 1 = the
/// superpixel keeps its pixels, 0 = it is replaced by the baseline.
struct Coalitions {
  int64_t features = 0;
  std::vector<uint8_t> z;  ///< count × features, row-major
  int64_t count() const { return features ? static_cast<int64_t>(z.size()) / features : 0; }
  const uint8_t* row(int64_t i) const { return z.data() + i * features; }
  void push(const std::vector<uint8_t>& row);
};

/// One C×H×W input: pixel p keeps x[p] where z[labels(p)] = 1 and takes baseline[p] elsewhere.
void fill_coalition(const float* x, const float* baseline, const cv::Mat& labels, const uint8_t* z,
                    int64_t channels, float* out);

/// The activation at which evaluate_coalitions assembles its inputs (0 = the network input): a
/// coalition input takes each pixel's values from x or from the baseline, so after the leading
/// pixel-wise layers it is, pixel by pixel, the activation of one or the other: lab::pixelwise_cut
/// (lab/nn/incremental.h).
size_t coalition_cut(const lab::Network& net);

/// f_t of every coalition of every sample: result[n][i] is output[target[n]] for x_n with
/// coalition i of coalitions[n]. One virtual batch over the whole batch (see the file comment)
/// holding each sample's distinct coalitions once: a row that repeats an earlier row of the same
/// sample takes its value (the same input, evaluated in another chunk), so with few superpixels
/// (2^M rows at most) far fewer inputs are evaluated than drawn. `evaluations` is
/// increased by the network evaluations spent: the distinct coalitions. x_n and the baseline go
/// through the layers before coalition_cut(net) once; each coalition is filled in at that
/// activation and only the layers after it run per coalition. Every value is computed by the
/// same layers on the same values as in a full pass of each coalition alone: on the lab's designed
/// networks (integer and dyadic weights) the outputs are bit-identical to those passes, on others
/// equal to float rounding (as an input's output in chunks of other sizes).
std::vector<std::vector<double>> evaluate_coalitions(const lab::Network& net, const lab::Tensor& x,
                                                     const lab::Tensor& baseline,
                                                     const std::vector<Segments>& segments,
                                                     const std::vector<Coalitions>& coalitions,
                                                     const std::vector<int64_t>& target, int64_t max_batch,
                                                     int64_t& evaluations);

/// N×H×W maps holding, at each pixel, the value of its superpixel: map[n](p) = values[n][labels(p)].
lab::Tensor superpixel_maps(const std::vector<Segments>& segments, const std::vector<std::vector<double>>& values);

}  // namespace attributions
