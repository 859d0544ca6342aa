#include "lab/nn/incremental.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include <tbb/parallel_for.h>

#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"

namespace lab {

std::vector<int64_t> uniform_steps(int64_t pixels, int64_t per_step) {
  LAB_CHECK(pixels >= 0 && per_step >= 1, "pixels {} per_step {}", pixels, per_step);
  std::vector<int64_t> ends;
  for (int64_t e = per_step; e < pixels + per_step; e += per_step) ends.push_back(std::min(e, pixels));
  return ends;
}

void PathEvaluator::Params::validate() const {
  lab::require(max_batch >= 1, "max_batch", ">= 1", std::to_string(max_batch));
  lab::require(max_elements >= 1, "max_elements", ">= 1", std::to_string(max_elements));
  lab::require(serial_below >= 0, "serial_below", ">= 0", std::to_string(serial_below));
}

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/// Half-open rectangle [y0, y1) × [x0, x1) of one activation map.
struct Rect {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  bool empty() const { return y0 >= y1 || x0 >= x1; }
  int64_t height() const { return empty() ? 0 : y1 - y0; }
  int64_t width() const { return empty() ? 0 : x1 - x0; }
};

/// C×H×W of one activation level.
struct Dims {
  int64_t c = 0, h = 0, w = 0;
  int64_t numel() const { return c * h * w; }
};

/// What a spatial layer does to positions: stride/kernel/padding (1/1/0 for ReLU).
struct Geometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool conv = false;
  int64_t macs = 0;  ///< multiply-adds per output element (in_channels / groups · kh · kw)
};

/// Output positions of a layer whose window meets the changed input rows [a, b).
void propagate_axis(int64_t a, int64_t b, int64_t k, int64_t s, int64_t p, int64_t out_size, int64_t& lo,
                    int64_t& hi) {
  lo = std::max<int64_t>(0, floor_div(a + p - k, s) + 1);
  hi = std::min<int64_t>(out_size, ceil_div(b + p, s));
}

Rect propagate(const Rect& in, const Geometry& g, const Dims& out) {
  if (in.empty()) return {};
  Rect r;
  propagate_axis(in.y0, in.y1, g.kh, g.sh, g.ph, out.h, r.y0, r.y1);
  propagate_axis(in.x0, in.x1, g.kw, g.sw, g.pw, out.w, r.x0, r.x1);
  return r.empty() ? Rect{} : r;
}

}  // namespace

namespace {

/// Copies the ch×cw crop at (cy, cx) of every channel of the level-`d` map `src` into `dst`
/// (zero-initialised); rows and columns outside the map stay 0 (padding).
void copy_crop(const float* src, const Dims& d, int64_t cy, int64_t cx, int64_t ch, int64_t cw, float* dst) {
  const int64_t ya = std::max<int64_t>(0, -cy), yb = std::min(ch, d.h - cy);
  const int64_t xa = std::max<int64_t>(0, -cx), xb = std::min(cw, d.w - cx);
  if (ya >= yb || xa >= xb) return;
  for (int64_t c = 0; c < d.c; ++c)
    for (int64_t y = ya; y < yb; ++y)
      std::memcpy(dst + (c * ch + y) * cw + xa, src + (c * d.h + cy + y) * d.w + cx + xa,
                  static_cast<size_t>(xb - xa) * sizeof(float));
}

}  // namespace

struct PathEvaluator::Chunk {
  /// Output windows of one spatial layer for the steps of a chunk.
  struct Windows {
    int64_t h = 1, w = 1;              // fixed window shape
    std::vector<int64_t> y, x;         // top-left per step
    lab::Tensor out;                   // T×C×h×w: the layer's output inside each window
  };
};

PathEvaluator::PathEvaluator(const lab::Network& net, size_t end) : PathEvaluator(net, end, Params{}) {}

PathEvaluator::PathEvaluator(const lab::Network& net, size_t end, Params params)
    : net_(net), end_(end), params_(params) {
  params_.validate();
  LAB_CHECK(end <= net.size(), "end {} beyond {} layers", end, net.size());
  if (net.input_shape().size() != 3 || !net.is_chain()) return;
  if (params_.incremental && params_.assemble_at_cut) {
    const size_t cut = pixelwise_cut(net);
    if (cut > 0 && cut < end_) {
      const lab::Shape at = net.shape_after(cut - 1, 1);
      auto tail = std::make_shared<lab::Network>(lab::Shape(at.begin() + 1, at.end()));
      for (size_t l = cut; l < end_; ++l) tail->add(net.name(l), net.layer_ptr(l));
      Params inner = params_;
      inner.assemble_at_cut = false;
      cut_ = cut;
      from_cut_ = std::make_shared<const PathEvaluator>(*tail, end_ - cut, inner);
      after_cut_ = std::move(tail);
    }
  }
  while (spatial_ < end_) {
    const lab::Layer& layer = net.layer(spatial_);
    if (layer.kind() == lab::LayerKind::kConv2d) {
      const auto& conv = static_cast<const lab::Conv2d&>(layer);
      lab::Conv2dParams p = conv.params();
      p.pad_h = 0;
      p.pad_w = 0;
      crop_convs_.push_back(std::make_shared<lab::Conv2d>(p, conv.weights().weight, conv.weights().bias));
    } else if (layer.kind() == lab::LayerKind::kReLU) {
      crop_convs_.push_back(nullptr);
    } else {
      break;
    }
    ++spatial_;
  }
}

PathEvaluator::~PathEvaluator() = default;

lab::Tensor PathEvaluator::window_output(size_t l, lab::Tensor crops) const {
  if (crop_convs_[l]) {
    const lab::OmpThreads serial(crops.numel() < params_.serial_below, 1);
    return crop_convs_[l]->forward(crops);
  }
  for (float& v : crops.values()) v = std::max(v, 0.0f);
  return crops;
}

namespace {

void check_path(const lab::Network& net, const PerturbationPath& path, lab::Shape& image) {
  image = net.input_shape();
  if (image.size() != 3) lab::fail("perturbation paths need a network on C×H×W images, got input {}", lab::to_string(image));
  for (const lab::Tensor* t : {&path.start, &path.source}) {
    lab::Shape s = t->shape();
    if (s.size() == 4 && s[0] == 1) s.erase(s.begin());
    if (s != image)
      lab::fail("perturbation image of shape {} does not match the network input {}", lab::to_string(t->shape()),
                lab::to_string(image));
  }
  const int64_t hw = image[1] * image[2];
  for (int64_t p : path.order)
    if (p < 0 || p >= hw) lab::fail("pixel index {} outside the {}×{} image", p, image[1], image[2]);
  if (!path.restore.empty() && path.restore.size() != path.step_ends.size())
    lab::fail("{} restore flags for {} steps", path.restore.size(), path.step_ends.size());
  int64_t previous = 0;
  for (int64_t e : path.step_ends) {
    if (e <= previous || e > static_cast<int64_t>(path.order.size()))
      lab::fail("step ends must increase strictly within the {} ordered pixels, got {} after {}", path.order.size(), e,
                previous);
    previous = e;
  }
}

/// Pixels order[begin, end) of step k of a path-like sequence of steps.
int64_t step_begin(const std::vector<int64_t>& ends, int64_t k) { return k == 0 ? 0 : ends[static_cast<size_t>(k - 1)]; }

/// Writes the pixels order[begin, end) from `source` (or `start`, for a restore step) into the
/// C×H×W `state`.
void apply_pixels(const PerturbationPath& path, const std::vector<int64_t>& order, int64_t begin, int64_t end,
                  bool restore, int64_t channels, int64_t hw, float* state) {
  const float* src = restore ? path.start.data() : path.source.data();
  for (int64_t i = begin; i < end; ++i) {
    const int64_t p = order[static_cast<size_t>(i)];
    for (int64_t c = 0; c < channels; ++c) state[c * hw + p] = src[c * hw + p];
  }
}

/// Writes the pixels of step `k` (0-based) of the path into the C×H×W `state`.
void apply_step(const PerturbationPath& path, int64_t k, int64_t channels, int64_t hw, float* state) {
  const bool restore = !path.restore.empty() && path.restore[static_cast<size_t>(k)] != 0;
  apply_pixels(path, path.order, step_begin(path.step_ends, k), path.step_ends[static_cast<size_t>(k)], restore,
               channels, hw, state);
}

/// The sub-steps the incremental evaluation runs: each step of the path as one sub-step, or one
/// sub-step per pixel (see run_incremental). Only the last sub-step of
/// a step is "emitted" (its output is a row of the result); the state after it is the step's.
struct Plan {
  std::vector<int64_t> order;     ///< the path's pixels, grouped by sub-step
  std::vector<int64_t> ends;      ///< sub-step k covers order[ends[k−1], ends[k])
  std::vector<uint8_t> restore;   ///< per sub-step: the restore flag of its step
  std::vector<uint8_t> emit;      ///< per sub-step: 1 for the last sub-step of a step
  int64_t steps() const { return static_cast<int64_t>(ends.size()); }
};

/// Bookkeeping of one sub-step (the pixel writes, window placement and write-back), in the cost
/// model's units (multiply-adds or copied floats): a guess that only moves the choice between
/// few large sub-steps and many small ones; it never changes a result.
/// Measured on the 224×224 designed networks: a one-pixel sub-step costs about 1/1300–1/1800 of
/// a full evaluation of the prefix, mostly per-step bookkeeping rather than arithmetic.
constexpr double kSubStepOverhead = 65536.0;

/// Dimensions of every level of the spatial prefix (level 0 the input) and geometry of its layers.
void describe_prefix(const lab::Network& net, size_t spatial,
                     const std::vector<std::shared_ptr<const lab::Conv2d>>& crop_convs, const lab::Shape& image,
                     std::vector<Dims>& dims, std::vector<Geometry>& geo) {
  dims.assign(spatial + 1, Dims{});
  geo.assign(spatial, Geometry{});
  dims[0] = {image[0], image[1], image[2]};
  for (size_t l = 0; l < spatial; ++l) {
    const lab::Shape s = net.shape_after(l, 1);
    dims[l + 1] = {s[1], s[2], s[3]};
    if (crop_convs[l]) {
      const lab::Conv2dParams& p = static_cast<const lab::Conv2d&>(net.layer(l)).params();
      geo[l] = {p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, true,
                p.in_channels / p.groups * p.kernel_h * p.kernel_w};
    }
  }
}

/// The cost model: the work of one sub-step whose input change is the rectangle `in` —
/// multiply-adds of the window convolutions plus the floats copied into their crops.
double prefix_work(const Rect& in, const std::vector<Dims>& dims, const std::vector<Geometry>& geo) {
  double work = kSubStepOverhead;
  Rect r = in;
  for (size_t l = 0; l < geo.size() && !r.empty(); ++l) {
    const Geometry& g = geo[l];
    const Rect o = g.conv ? propagate(r, g, dims[l + 1]) : r;
    if (o.empty()) break;
    const double out = static_cast<double>(dims[l + 1].c * o.height() * o.width());
    if (g.conv)
      work += static_cast<double>(dims[l].c * ((o.height() - 1) * g.sh + g.kh) * ((o.width() - 1) * g.sw + g.kw)) +
              out * static_cast<double>(g.macs);
    else
      work += out;
    r = o;
  }
  return work;
}

}  // namespace

namespace {

/// Whether node l reads only node l − 1's output (the input for l = 0) and computes each pixel's
/// values from that pixel's values alone (lab::is_per_pixel).
bool pointwise(const lab::Network& net, size_t l) {
  return net.inputs(l) == std::vector<size_t>{l} && lab::is_per_pixel(net.layer(l));
}

}  // namespace

size_t pixelwise_cut(const lab::Network& net) {
  if (net.input_shape().size() != 3) return 0;
  size_t prefix = 0;
  while (prefix < net.size() && pointwise(net, prefix)) ++prefix;
  // Per pixel: a value filled in costs about as much as 4 multiply-adds of a 1×1 conv.
  const auto channels = [&](size_t act) { return act == 0 ? net.input_shape()[0] : net.shape_after(act - 1)[1]; };
  size_t best = 0;
  int64_t best_cost = 0;
  for (size_t act = 0; act <= std::min(prefix, net.size() - 1); ++act) {
    int64_t cost = 4 * channels(act);
    for (size_t l = act; l < prefix; ++l)
      if (net.layer(l).kind() == lab::LayerKind::kConv2d) {
        const lab::Conv2dParams& p = static_cast<const lab::Conv2d&>(net.layer(l)).params();
        cost += p.in_channels / p.groups * p.out_channels;
      }
    if (act == 0 || cost <= best_cost) {  // ties: the later activation, fewer layers per coalition
      best = act;
      best_cost = cost;
    }
  }
  return net.is_cut(best) ? best : 0;
}

double layer_work(const lab::Network& net, size_t first, size_t end) {
  double work = 0.0;
  for (size_t l = first; l < end; ++l) {
    const lab::Shape s = net.shape_after(l, 1);
    double out = 1.0;
    for (int64_t d : s) out *= static_cast<double>(d);
    const lab::Layer& layer = net.layer(l);
    if (layer.kind() == lab::LayerKind::kConv2d) {
      const lab::Conv2dParams& p = static_cast<const lab::Conv2d&>(layer).params();
      work += out * static_cast<double>(p.in_channels / p.groups * p.kernel_h * p.kernel_w);
    } else if (layer.kind() == lab::LayerKind::kLinear) {
      const lab::Shape in = l == 0 ? net.input_shape() : net.shape_after(l - 1, 1);
      double fan_in = 1.0;
      for (size_t d = l == 0 ? 0 : 1; d < in.size(); ++d) fan_in *= static_cast<double>(in[d]);
      work += out * fan_in;
    } else {
      work += out;
    }
  }
  return work;
}

double PathEvaluator::pixel_step_work() const {
  if (from_cut_) return from_cut_->pixel_step_work();
  if (!params_.incremental || spatial_ == 0) return std::numeric_limits<double>::infinity();
  std::vector<Dims> dims;
  std::vector<Geometry> geo;
  describe_prefix(net_, spatial_, crop_convs_, net_.input_shape(), dims, geo);
  return prefix_work({0, 1, 0, 1}, dims, geo) + layer_work(net_, spatial_, end_);
}

namespace {

lab::Tensor flatten_rows(lab::Tensor t) {
  const int64_t n = t.dim(0);
  t.reshape({n, t.numel() / n});
  return t;
}

}  // namespace

lab::Tensor PathEvaluator::run(const PerturbationPath& path, Stats* stats) const {
  if (from_cut_) {
    // The same path between the start's and the source's activations at the cut: a pixel's
    // activation there is its start's or its source's, whatever the other pixels hold.
    lab::Shape image;
    check_path(net_, path, image);
    PerturbationPath at_cut = path;
    const lab::Shape one{1, image[0], image[1], image[2]};
    at_cut.start = net_.forward_range(0, cut_, path.start.reshaped(one));
    at_cut.source = net_.forward_range(0, cut_, path.source.reshaped(one));
    return from_cut_->run(at_cut, stats);
  }
  if (params_.incremental) return run_incremental(path, stats);
  if (stats) *stats = {.sub_steps = path.steps(), .full_passes = path.steps()};
  return run_full(path);
}

lab::Tensor PathEvaluator::run_full(const PerturbationPath& path) const {
  lab::Shape image;
  check_path(net_, path, image);
  const int64_t c = image[0], hw = image[1] * image[2], per = c * hw;
  const int64_t rows = path.steps() + 1;
  const int64_t chunk = std::max<int64_t>(1, std::min(params_.max_batch, params_.max_elements / per));
  std::vector<float> state(path.start.values());
  std::vector<lab::Tensor> parts;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    lab::Tensor batch({n, image[0], image[1], image[2]});
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = r0 + i;
      if (row > 0) apply_step(path, row - 1, c, hw, state.data());
      std::memcpy(batch.sample(i), state.data(), static_cast<size_t>(per) * sizeof(float));
    }
    parts.push_back(flatten_rows(net_.forward_range(0, end_, batch)));
  }
  return lab::Tensor::concat(parts);
}

lab::Tensor PathEvaluator::run_incremental(const PerturbationPath& path, Stats* stats) const {
  lab::Shape image;
  check_path(net_, path, image);
  const size_t levels = spatial_ + 1;
  std::vector<Dims> dims;
  std::vector<Geometry> geo;
  describe_prefix(net_, spatial_, crop_convs_, image, dims, geo);
  auto window_work = [&](const Rect& in) { return prefix_work(in, dims, geo); };
  const int64_t steps = path.steps();
  const int64_t height = dims[0].h, width = dims[0].w;

  // Split steps into sub-steps. A step's pixels may be written in any order (only the state after
  // the step is observed), so a step whose pixels lie far apart — e.g. 1/64 of a map's pixels in
  // attribution order — runs as one sub-step per pixel when the cost model finds that cheaper
  // than the step's bounding rectangle: that is the one-pixel-per-step path without its tail
  // evaluations, so a coarse curve never costs more than the fine one. A step whose rectangle is
  // the whole map runs as a full forward pass (see below).
  Plan plan;
  plan.order.reserve(path.order.size());
  const double pixel_work = window_work({0, 1, 0, 1});
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t begin = step_begin(path.step_ends, k), end = path.step_ends[static_cast<size_t>(k)];
    const uint8_t restore = !path.restore.empty() && path.restore[static_cast<size_t>(k)] != 0;
    bool by_pixel = false;
    if (params_.split_steps && end - begin > 1) {
      Rect box{height, 0, width, 0};
      for (int64_t i = begin; i < end; ++i) {
        const int64_t p = path.order[static_cast<size_t>(i)], y = p / width, x = p % width;
        box = {std::min(box.y0, y), std::max(box.y1, y + 1), std::min(box.x0, x), std::max(box.x1, x + 1)};
      }
      by_pixel = static_cast<double>(end - begin) * pixel_work < window_work(box);
    }
    plan.order.insert(plan.order.end(), path.order.begin() + begin, path.order.begin() + end);
    for (int64_t i = by_pixel ? begin + 1 : end; i <= end; ++i) {
      plan.ends.push_back(static_cast<int64_t>(plan.order.size()) - (end - i));
      plan.restore.push_back(restore);
      plan.emit.push_back(i == end);
    }
  }

  if (stats) *stats = {.sub_steps = plan.steps(), .full_passes = 0};

  // Running activations of the current input, levels 0..spatial_ (each 1×C×H×W).
  std::vector<lab::Tensor> acts(levels);
  acts[0] = path.start.reshaped({1, dims[0].c, dims[0].h, dims[0].w});
  for (size_t l = 0; l < spatial_; ++l) acts[l + 1] = net_.layer(l).forward(acts[l]);
  const lab::Tensor first = flatten_rows(net_.forward_range(spatial_, end_, acts[spatial_]));
  const int64_t k_out = first.dim(1);
  lab::Tensor out({steps + 1, k_out});
  std::copy(first.data(), first.data() + k_out, out.data());

  const int64_t hw0 = dims[0].h * dims[0].w;
  const Dims& tail_dims = dims[spatial_];
  std::vector<std::vector<Rect>> rects;  // per chunk sub-step: rectangle changed at each level

  // Changed rectangle of a sub-step at every level.
  auto step_rects = [&](int64_t k) {
    std::vector<Rect> r(levels);
    const int64_t begin = step_begin(plan.ends, k), end = plan.ends[static_cast<size_t>(k)];
    Rect& in = r[0];
    in = {dims[0].h, 0, dims[0].w, 0};
    for (int64_t i = begin; i < end; ++i) {
      const int64_t p = plan.order[static_cast<size_t>(i)];
      const int64_t y = p / dims[0].w, x = p % dims[0].w;
      in.y0 = std::min(in.y0, y);
      in.y1 = std::max(in.y1, y + 1);
      in.x0 = std::min(in.x0, x);
      in.x1 = std::max(in.x1, x + 1);
    }
    for (size_t l = 0; l < spatial_; ++l) r[l + 1] = geo[l].conv ? propagate(r[l], geo[l], dims[l + 1]) : r[l];
    return r;
  };
  // Size class of a sub-step: ⌈log2⌉ of its input rectangle's longer side, or kWholeMap when it
  // changes the whole map. A chunk holds one class, so its fixed window shape is never far larger
  // than a sub-step's own change; a whole-map chunk runs as full forward passes.
  constexpr int kWholeMap = 1000;
  auto size_class = [&](const Rect& in) {
    if (in.height() == height && in.width() == width) return kWholeMap;
    return static_cast<int>(
        std::bit_width(static_cast<uint64_t>(std::max<int64_t>(1, std::max(in.height(), in.width())) - 1)));
  };
  // Floats held by a chunk of `t` sub-steps (`emitted` of them emitted) with window shapes `wh`,
  // `ww` per output level.
  auto chunk_cost = [&](int64_t t, int64_t emitted, const std::vector<int64_t>& wh, const std::vector<int64_t>& ww,
                        int cls) {
    if (cls == kWholeMap) return emitted * dims[0].numel();  // as run_full
    int64_t per_step = 0;
    for (size_t l = 0; l < spatial_; ++l) {
      const int64_t ch = geo[l].conv ? (wh[l + 1] - 1) * geo[l].sh + geo[l].kh : wh[l + 1];
      const int64_t cw = geo[l].conv ? (ww[l + 1] - 1) * geo[l].sw + geo[l].kw : ww[l + 1];
      per_step += dims[l].c * ch * cw + dims[l + 1].c * wh[l + 1] * ww[l + 1];
    }
    return t * per_step + emitted * tail_dims.numel();
  };

  std::vector<Chunk::Windows> win(levels);
  const int64_t sub_steps = plan.steps();
  int64_t row = 1;  // next row of `out`
  for (int64_t t0 = 0; t0 < sub_steps;) {
    // Grow the chunk while it fits the bounds and its sub-steps share a size class.
    rects.clear();
    std::vector<int64_t> wh(levels, 1), ww(levels, 1);
    int64_t emitted = 0;
    int chunk_class = -1;
    while (t0 + static_cast<int64_t>(rects.size()) < sub_steps &&
           static_cast<int64_t>(rects.size()) < params_.max_batch) {
      const int64_t k = t0 + static_cast<int64_t>(rects.size());
      std::vector<Rect> r = step_rects(k);
      const int cls = size_class(r[0]);
      if (!rects.empty() && params_.split_steps && cls != chunk_class) break;
      std::vector<int64_t> nh = wh, nw = ww;
      for (size_t m = 1; m < levels; ++m) {
        nh[m] = std::max(nh[m], r[m].height());
        nw[m] = std::max(nw[m], r[m].width());
      }
      const int64_t e = emitted + plan.emit[static_cast<size_t>(k)];
      if (!rects.empty() && chunk_cost(static_cast<int64_t>(rects.size()) + 1, e, nh, nw, cls) > params_.max_elements)
        break;
      wh = std::move(nh);
      ww = std::move(nw);
      emitted = e;
      chunk_class = cls;
      rects.push_back(std::move(r));
    }
    const int64_t t = static_cast<int64_t>(rects.size());

    if (params_.split_steps && chunk_class == kWholeMap) {
      // Steps that change the whole map: full forward passes of the emitted states, then the
      // running activations recomputed once for the state after the chunk.
      lab::Tensor batch({emitted, dims[0].c, dims[0].h, dims[0].w});
      for (int64_t k = t0, j = 0; k < t0 + t; ++k) {
        apply_pixels(path, plan.order, step_begin(plan.ends, k), plan.ends[static_cast<size_t>(k)],
                     plan.restore[static_cast<size_t>(k)] != 0, dims[0].c, hw0, acts[0].data());
        if (plan.emit[static_cast<size_t>(k)] != 0)
          std::memcpy(batch.sample(j++), acts[0].data(), static_cast<size_t>(dims[0].numel()) * sizeof(float));
      }
      if (emitted > 0) {
        const lab::Tensor y = flatten_rows(net_.forward_range(0, end_, batch));
        LAB_CHECK(y.dim(1) == k_out, "output {} vs {}", y.dim(1), k_out);
        std::copy(y.data(), y.data() + emitted * k_out, out.data() + row * k_out);
        row += emitted;
        if (stats) stats->full_passes += emitted;
      }
      for (size_t l = 0; l < spatial_; ++l) acts[l + 1] = net_.layer(l).forward(acts[l]);
      t0 += t;
      continue;
    }

    // Window placement: fixed shape per level, moved inside the map, containing the rectangle.
    for (size_t m = 1; m < levels; ++m) {
      Chunk::Windows& w = win[m];
      w.h = wh[m];
      w.w = ww[m];
      w.y.assign(static_cast<size_t>(t), 0);
      w.x.assign(static_cast<size_t>(t), 0);
      for (int64_t i = 0; i < t; ++i) {
        const Rect& r = rects[static_cast<size_t>(i)][m];
        if (r.empty()) continue;
        w.y[static_cast<size_t>(i)] = std::min(r.y0, dims[m].h - w.h);
        w.x[static_cast<size_t>(i)] = std::min(r.x0, dims[m].w - w.w);
      }
    }

    // Brings level m up to the state after chunk step i (writes that step's change).
    auto write_back = [&](size_t m, int64_t i) {
      float* dst = acts[m].data();
      if (m == 0) {
        const int64_t k = t0 + i;
        apply_pixels(path, plan.order, step_begin(plan.ends, k), plan.ends[static_cast<size_t>(k)],
                     plan.restore[static_cast<size_t>(k)] != 0, dims[0].c, hw0, dst);
        return;
      }
      const Chunk::Windows& w = win[m];
      const Dims& d = dims[m];
      const float* src = w.out.sample(i);
      const int64_t y0 = w.y[static_cast<size_t>(i)], x0 = w.x[static_cast<size_t>(i)];
      for (int64_t c = 0; c < d.c; ++c)
        for (int64_t y = 0; y < w.h; ++y)
          std::memcpy(dst + (c * d.h + y0 + y) * d.w + x0, src + (c * w.h + y) * w.w,
                      static_cast<size_t>(w.w) * sizeof(float));
    };

    for (size_t l = 0; l < spatial_; ++l) {
      Chunk::Windows& w = win[l + 1];
      if (!geo[l].conv && l > 0) {
        // A ReLU after a spatial layer: its windows are the previous layer's (same rectangles).
        for (int64_t i = 0; i < t; ++i) write_back(l, i);
        w.out = win[l].out;
        for (float& v : w.out.values()) v = std::max(v, 0.0f);
        continue;
      }
      const Geometry& g = geo[l];
      const Dims& d = dims[l];
      const int64_t ch = g.conv ? (w.h - 1) * g.sh + g.kh : w.h;
      const int64_t cw = g.conv ? (w.w - 1) * g.sw + g.kw : w.w;
      lab::Tensor crops({t, d.c, ch, cw}, 0.0f);
      for (int64_t i = 0; i < t; ++i) {
        write_back(l, i);
        const int64_t cy = w.y[static_cast<size_t>(i)] * g.sh - g.ph;
        const int64_t cx = w.x[static_cast<size_t>(i)] * g.sw - g.pw;
        copy_crop(acts[l].data(), d, cy, cx, ch, cw, crops.sample(i));
      }
      w.out = window_output(l, std::move(crops));
      LAB_CHECK(w.out.shape() == (lab::Shape{t, dims[l + 1].c, w.h, w.w}), "window of layer {}: {}", l,
                lab::to_string(w.out.shape()));
    }

    // The rest of the network on the full activations at the end of the prefix, for the chunk's
    // emitted sub-steps.
    lab::Tensor tail({emitted, tail_dims.c, tail_dims.h, tail_dims.w});
    for (int64_t i = 0, j = 0; i < t; ++i) {
      write_back(spatial_, i);
      if (plan.emit[static_cast<size_t>(t0 + i)] == 0) continue;
      std::memcpy(tail.sample(j++), acts[spatial_].data(), static_cast<size_t>(tail_dims.numel()) * sizeof(float));
    }
    if (emitted > 0) {
      lab::Tensor y;
      {
        const lab::OmpThreads serial(tail.numel() < params_.serial_below, 1);
        y = flatten_rows(net_.forward_range(spatial_, end_, tail));
      }
      LAB_CHECK(y.dim(1) == k_out, "tail output {} vs {}", y.dim(1), k_out);
      std::copy(y.data(), y.data() + emitted * k_out, out.data() + row * k_out);
      row += emitted;
    }
    t0 += t;
  }
  LAB_CHECK(row == steps + 1, "{} rows for {} steps", row, steps + 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Independent local changes of one reference input.

namespace {

void check_changes(const lab::Network& net, const LocalChanges& changes, lab::Shape& image) {
  image = net.input_shape();
  if (image.size() != 3) lab::fail("local changes need a network on C×H×W images, got input {}", lab::to_string(image));
  for (const lab::Tensor* t : {&changes.reference, &changes.source}) {
    lab::Shape s = t->shape();
    if (s.size() == 4 && s[0] == 1) s.erase(s.begin());
    if (s != image)
      lab::fail("local-change image of shape {} does not match the network input {}", lab::to_string(t->shape()),
                lab::to_string(image));
  }
  for (const LocalChanges::Box& b : changes.boxes)
    if (b.c0 < 0 || b.c1 > image[0] || b.c0 >= b.c1 || b.y0 < 0 || b.y1 > image[1] || b.y0 >= b.y1 || b.x0 < 0 ||
        b.x1 > image[2] || b.x0 >= b.x1)
      lab::fail("local-change box [{},{})×[{},{})×[{},{}) is empty or outside the {} input", b.c0, b.c1, b.y0, b.y1,
                b.x0, b.x1, lab::to_string(image));
}

/// Writes `source` inside `box` into the C×H×W `dst` (the input with the change).
void apply_box(const LocalChanges::Box& box, const float* source, const Dims& d, float* dst) {
  for (int64_t c = box.c0; c < box.c1; ++c)
    for (int64_t y = box.y0; y < box.y1; ++y) {
      const int64_t o = (c * d.h + y) * d.w + box.x0;
      std::memcpy(dst + o, source + o, static_cast<size_t>(box.x1 - box.x0) * sizeof(float));
    }
}

/// Runs body(i) for i in [0, n) on TBB workers when `parallel` (each i writes only its own data).
template <class Body>
void for_items(int64_t n, bool parallel, const Body& body) {
  if (!parallel || n < 2) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  tbb::parallel_for(int64_t{0}, n, [&](int64_t i) { body(i); });
}

/// Copy work (floats) above which crops and overlays are built on TBB workers.
constexpr int64_t kParallelCopy = int64_t{1} << 15;

}  // namespace

lab::Tensor PathEvaluator::run(const LocalChanges& changes, Stats* stats) const {
  lab::Shape image;
  check_changes(net_, changes, image);
  if (params_.incremental && spatial_ > 0) return run_local_incremental(changes, stats);
  std::vector<int64_t> all(static_cast<size_t>(changes.variants()));
  for (size_t v = 0; v < all.size(); ++v) all[v] = static_cast<int64_t>(v);
  const lab::Tensor first =
      flatten_rows(net_.forward_range(0, end_, changes.reference.reshaped({1, image[0], image[1], image[2]})));
  lab::Tensor out({changes.variants() + 1, first.dim(1)});
  std::copy(first.data(), first.data() + first.dim(1), out.data());
  run_local_full(changes, all, out);
  if (stats) *stats = {.sub_steps = 0, .full_passes = changes.variants()};
  return out;
}

void PathEvaluator::run_local_full(const LocalChanges& changes, const std::vector<int64_t>& variants,
                                   lab::Tensor& out) const {
  const lab::Shape image = net_.input_shape();
  const Dims d{image[0], image[1], image[2]};
  const int64_t per = d.numel(), k_out = out.dim(1), count = static_cast<int64_t>(variants.size());
  const int64_t chunk = std::max<int64_t>(1, std::min(params_.max_batch, params_.max_elements / per));
  for (int64_t i0 = 0; i0 < count; i0 += chunk) {
    const int64_t n = std::min(chunk, count - i0);
    lab::Tensor batch({n, d.c, d.h, d.w});
    for_items(n, n * per >= kParallelCopy, [&](int64_t i) {
      float* dst = batch.sample(i);
      std::memcpy(dst, changes.reference.data(), static_cast<size_t>(per) * sizeof(float));
      apply_box(changes.boxes[static_cast<size_t>(variants[static_cast<size_t>(i0 + i)])], changes.source.data(), d,
                dst);
    });
    const lab::Tensor y = flatten_rows(net_.forward_range(0, end_, batch));
    LAB_CHECK(y.dim(1) == k_out, "output {} vs {}", y.dim(1), k_out);
    for (int64_t i = 0; i < n; ++i)
      std::copy(y.data() + i * k_out, y.data() + (i + 1) * k_out,
                out.data() + (1 + variants[static_cast<size_t>(i0 + i)]) * k_out);
  }
}

lab::Tensor PathEvaluator::run_local_incremental(const LocalChanges& changes, Stats* stats) const {
  const lab::Shape image = net_.input_shape();
  const size_t levels = spatial_ + 1;
  std::vector<Dims> dims;
  std::vector<Geometry> geo;
  describe_prefix(net_, spatial_, crop_convs_, image, dims, geo);
  const Dims& tail_dims = dims[spatial_];

  // The reference's activations through the prefix, and its output (row 0).
  std::vector<lab::Tensor> acts(levels);
  acts[0] = changes.reference.reshaped({1, dims[0].c, dims[0].h, dims[0].w});
  for (size_t l = 0; l < spatial_; ++l) acts[l + 1] = net_.layer(l).forward(acts[l]);
  const lab::Tensor first = flatten_rows(net_.forward_range(spatial_, end_, acts[spatial_]));
  const int64_t k_out = first.dim(1);
  lab::Tensor out({changes.variants() + 1, k_out});
  std::copy(first.data(), first.data() + k_out, out.data());

  // The cost model decides per variant: windows, or a full pass when they cost at least as much.
  const Rect whole{0, dims[0].h, 0, dims[0].w};
  const double full_work = prefix_work(whole, dims, geo);
  auto input_rect = [&](const LocalChanges::Box& b) { return Rect{b.y0, b.y1, b.x0, b.x1}; };
  auto size_class = [&](const Rect& in) {
    return static_cast<int>(std::bit_width(static_cast<uint64_t>(std::max(in.height(), in.width()) - 1)));
  };
  std::vector<int64_t> full, local;
  for (int64_t v = 0; v < changes.variants(); ++v) {
    const Rect r = input_rect(changes.boxes[static_cast<size_t>(v)]);
    (prefix_work(r, dims, geo) < full_work ? local : full).push_back(v);
  }
  // Variants of one size class share a chunk (so its fixed window shape stays tight); the order
  // within a class is kept.
  std::stable_sort(local.begin(), local.end(), [&](int64_t a, int64_t b) {
    return size_class(input_rect(changes.boxes[static_cast<size_t>(a)])) <
           size_class(input_rect(changes.boxes[static_cast<size_t>(b)]));
  });
  if (!full.empty()) run_local_full(changes, full, out);
  if (stats) *stats = {.sub_steps = static_cast<int64_t>(local.size()), .full_passes = static_cast<int64_t>(full.size())};

  auto level_rects = [&](int64_t v) {
    std::vector<Rect> r(levels);
    r[0] = input_rect(changes.boxes[static_cast<size_t>(v)]);
    for (size_t l = 0; l < spatial_; ++l) r[l + 1] = geo[l].conv ? propagate(r[l], geo[l], dims[l + 1]) : r[l];
    return r;
  };
  // Floats held per variant of a chunk with window shapes `wh`, `ww` per level.
  auto variant_cost = [&](const std::vector<int64_t>& wh, const std::vector<int64_t>& ww) {
    int64_t per = tail_dims.numel();
    for (size_t l = 0; l < spatial_; ++l) {
      const int64_t ch = geo[l].conv ? (wh[l + 1] - 1) * geo[l].sh + geo[l].kh : wh[l + 1];
      const int64_t cw = geo[l].conv ? (ww[l + 1] - 1) * geo[l].sw + geo[l].kw : ww[l + 1];
      per += dims[l].c * ch * cw + dims[l + 1].c * wh[l + 1] * ww[l + 1];
    }
    return per;
  };

  std::vector<Chunk::Windows> win(levels);
  std::vector<std::vector<Rect>> rects;
  const int64_t count = static_cast<int64_t>(local.size());
  for (int64_t i0 = 0; i0 < count;) {
    rects.clear();
    std::vector<int64_t> wh(levels, 1), ww(levels, 1);
    int chunk_class = -1;
    while (i0 + static_cast<int64_t>(rects.size()) < count && static_cast<int64_t>(rects.size()) < params_.max_batch) {
      const int64_t v = local[static_cast<size_t>(i0) + rects.size()];
      std::vector<Rect> r = level_rects(v);
      const int cls = size_class(r[0]);
      if (!rects.empty() && cls != chunk_class) break;
      std::vector<int64_t> nh = wh, nw = ww;
      for (size_t m = 1; m < levels; ++m) {
        nh[m] = std::max(nh[m], r[m].height());
        nw[m] = std::max(nw[m], r[m].width());
      }
      if (!rects.empty() && (static_cast<int64_t>(rects.size()) + 1) * variant_cost(nh, nw) > params_.max_elements)
        break;
      wh = std::move(nh);
      ww = std::move(nw);
      chunk_class = cls;
      rects.push_back(std::move(r));
    }
    const int64_t t = static_cast<int64_t>(rects.size());
    const LocalChanges::Box* boxes = changes.boxes.data();
    const int64_t* ids = local.data() + i0;

    // Window placement: fixed shape per level, moved inside the map, containing the rectangle (a
    // change that reaches no position of a level keeps the window at the origin: its values are
    // computed exactly all the same).
    for (size_t m = 1; m < levels; ++m) {
      Chunk::Windows& w = win[m];
      w.h = wh[m];
      w.w = ww[m];
      w.y.assign(static_cast<size_t>(t), 0);
      w.x.assign(static_cast<size_t>(t), 0);
      for (int64_t i = 0; i < t; ++i) {
        const Rect& r = rects[static_cast<size_t>(i)][m];
        if (r.empty()) continue;
        w.y[static_cast<size_t>(i)] = std::min(r.y0, dims[m].h - w.h);
        w.x[static_cast<size_t>(i)] = std::min(r.x0, dims[m].w - w.w);
      }
    }

    // Overlays variant i's change at level m onto `dst`, a region of level m of `rh`×`rw`
    // positions at (ry, rx) in level-m coordinates (all channels): at the input its box from
    // `source`, deeper its window.
    auto overlay = [&](size_t m, int64_t i, int64_t ry, int64_t rx, int64_t rh, int64_t rw, float* dst) {
      const Dims& d = dims[m];
      if (m == 0) {
        const LocalChanges::Box& b = boxes[ids[i]];
        const int64_t ya = std::max(b.y0, ry), yb = std::min(b.y1, ry + rh);
        const int64_t xa = std::max(b.x0, rx), xb = std::min(b.x1, rx + rw);
        if (ya >= yb || xa >= xb) return;
        const float* src = changes.source.data();
        for (int64_t c = b.c0; c < b.c1; ++c)
          for (int64_t y = ya; y < yb; ++y)
            std::memcpy(dst + (c * rh + y - ry) * rw + xa - rx, src + (c * d.h + y) * d.w + xa,
                        static_cast<size_t>(xb - xa) * sizeof(float));
        return;
      }
      const Chunk::Windows& w = win[m];
      const int64_t wy = w.y[static_cast<size_t>(i)], wx = w.x[static_cast<size_t>(i)];
      const int64_t ya = std::max(wy, ry), yb = std::min(wy + w.h, ry + rh);
      const int64_t xa = std::max(wx, rx), xb = std::min(wx + w.w, rx + rw);
      if (ya >= yb || xa >= xb) return;
      const float* src = w.out.sample(i);
      for (int64_t c = 0; c < d.c; ++c)
        for (int64_t y = ya; y < yb; ++y)
          std::memcpy(dst + (c * rh + y - ry) * rw + xa - rx, src + (c * w.h + y - wy) * w.w + xa - wx,
                      static_cast<size_t>(xb - xa) * sizeof(float));
    };

    for (size_t l = 0; l < spatial_; ++l) {
      Chunk::Windows& w = win[l + 1];
      if (!geo[l].conv && l > 0) {
        // A ReLU after a spatial layer: its windows are the previous layer's (same rectangles).
        w.out = win[l].out;
        for (float& v : w.out.values()) v = std::max(v, 0.0f);
        continue;
      }
      const Geometry& g = geo[l];
      const Dims& d = dims[l];
      const int64_t ch = g.conv ? (w.h - 1) * g.sh + g.kh : w.h;
      const int64_t cw = g.conv ? (w.w - 1) * g.sw + g.kw : w.w;
      lab::Tensor crops({t, d.c, ch, cw}, 0.0f);
      for_items(t, crops.numel() >= kParallelCopy, [&](int64_t i) {
        const int64_t cy = w.y[static_cast<size_t>(i)] * g.sh - g.ph;
        const int64_t cx = w.x[static_cast<size_t>(i)] * g.sw - g.pw;
        float* dst = crops.sample(i);
        copy_crop(acts[l].data(), d, cy, cx, ch, cw, dst);
        overlay(l, i, cy, cx, ch, cw, dst);
      });
      w.out = window_output(l, std::move(crops));
      LAB_CHECK(w.out.shape() == (lab::Shape{t, dims[l + 1].c, w.h, w.w}), "window of layer {}: {}", l,
                lab::to_string(w.out.shape()));
    }

    // The rest of the network on the reference's prefix output with each variant's last window.
    lab::Tensor tail({t, tail_dims.c, tail_dims.h, tail_dims.w});
    for_items(t, tail.numel() >= kParallelCopy, [&](int64_t i) {
      float* dst = tail.sample(i);
      std::memcpy(dst, acts[spatial_].data(), static_cast<size_t>(tail_dims.numel()) * sizeof(float));
      overlay(spatial_, i, 0, 0, tail_dims.h, tail_dims.w, dst);
    });
    lab::Tensor y;
    {
      const lab::OmpThreads serial(tail.numel() < params_.serial_below, 1);
      y = flatten_rows(net_.forward_range(spatial_, end_, tail));
    }
    LAB_CHECK(y.dim(1) == k_out, "tail output {} vs {}", y.dim(1), k_out);
    for (int64_t i = 0; i < t; ++i)
      std::copy(y.data() + i * k_out, y.data() + (i + 1) * k_out, out.data() + (1 + ids[i]) * k_out);
    i0 += t;
  }
  return out;
}

}  // namespace lab
