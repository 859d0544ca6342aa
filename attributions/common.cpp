#include "attributions/common.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "lab/core/error.h"
#include "lab/core/hash.h"
#include "lab/core/storage.h"
#include "lab/io/image.h"
#include "lab/io/npy.h"
#include "lab/io/outputs.h"
#include "lab/nn/gradient_trace.h"

namespace attributions {

bool ends_with_softmax(const lab::Network& net) {
  return net.size() > 0 && net.layer(net.size() - 1).kind() == lab::LayerKind::kSoftmax;
}

lab::Network explained_network(const lab::Network& net, Output output) {
  if (output == Output::kProbability || !ends_with_softmax(net)) return net;
  if (net.size() < 2) lab::fail_parameter("output=logit: the network is a lone softmax, it has no logits");
  // The truncated network aliases the layers of a shared copy of `net`, which keeps them alive.
  auto owner = std::make_shared<const lab::Network>(net);
  lab::Network out(net.input_shape());
  for (size_t i = 0; i + 1 < owner->size(); ++i)
    out.add(owner->name(i), std::shared_ptr<const lab::Layer>(owner, &owner->layer(i)));
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

bool parse_number_list(const std::string& text, std::vector<double>& out) {
  lab::Options o("-p");
  o.set("v", text);
  try {
    out = o.get_doubles("v", {});
  } catch (const lab::Error&) {
    return false;
  }
  return !out.empty();
}

}  // namespace

Baseline Baseline::parse(const std::string& text, const std::string& key) {
  Baseline b;
  if (text == "zero") return b;
  if (text == "background") {
    b.kind = Kind::kBackground;
    return b;
  }
  if (parse_number_list(text, b.values)) {
    b.kind = Kind::kValues;
    return b;
  }
  const std::filesystem::path path(text);
  const std::string ext = path.extension().string();
  if (ext != ".npy" && ext != ".png")
    lab::fail_parameter("-p {}={}: expected zero, background, comma-separated values (R,G,B) or a .npy/.png file",
                        key, text);
  if (!std::filesystem::is_regular_file(path))
    lab::fail_parameter("-p {}={}: no such baseline file", key, text);
  b.kind = Kind::kFile;
  b.path = text;
  return b;
}

std::string Baseline::to_string() const {
  switch (kind) {
    case Kind::kZero: return "zero";
    case Kind::kBackground: return "background";
    case Kind::kValues: {
      std::string s;
      for (size_t i = 0; i < values.size(); ++i) s += (i ? "," : "") + fmt::format("{}", values[i]);
      return s;
    }
    case Kind::kFile: return path;
  }
  return "zero";
}

lab::Tensor Baseline::resolve(const Context& context, const lab::Shape& sample_shape) const {
  lab::Shape shape{1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  lab::Tensor out(shape, 0.0f);
  if (kind == Kind::kZero) return out;
  if (sample_shape.size() != 3)
    lab::fail_parameter("baseline={} needs C×H×W inputs, got inputs of shape {}", to_string(),
                        lab::to_string(sample_shape));
  const int64_t channels = sample_shape[0];
  const int64_t plane = sample_shape[1] * sample_shape[2];
  auto fill = [&](const std::vector<double>& per_channel, const std::string& what) {
    if (static_cast<int64_t>(per_channel.size()) != channels && per_channel.size() != 1)
      lab::fail_parameter("baseline={}: {} has {} values, the input has {} channels", to_string(), what,
                          per_channel.size(), channels);
    for (int64_t c = 0; c < channels; ++c) {
      const float v = static_cast<float>(per_channel.size() == 1 ? per_channel[0] : per_channel[static_cast<size_t>(c)]);
      std::fill(out.data() + c * plane, out.data() + (c + 1) * plane, v);
    }
  };
  switch (kind) {
    case Kind::kZero: break;
    case Kind::kBackground: {
      if (context.background.empty())
        lab::fail_parameter("baseline=background: the task's background is not known here (no environment)");
      std::vector<double> bg(context.background.begin(), context.background.end());
      fill(bg, "the background");
      break;
    }
    case Kind::kValues: fill(values, "the list"); break;
    case Kind::kFile: {
      lab::Tensor t;
      if (std::filesystem::path(path).extension() == ".npy") {
        t = lab::read_npy(path);
      } else {
        if (!context.to_input)
          lab::fail_parameter("baseline={}: PNG baselines need the environment's input conversion; give a .npy", path);
        t = context.to_input(lab::read_png(path, static_cast<int>(channels)));
      }
      if (t.rank() == 4 && t.dim(0) == 1) t.reshape(t.sample_shape());
      if (t.shape() != sample_shape)
        lab::fail("baseline file {} has shape {}, expected {}", path, lab::to_string(t.shape()),
                  lab::to_string(sample_shape));
      if (!t.all_finite()) lab::fail("baseline file {} holds NaN or Inf", path);
      std::copy(t.values().begin(), t.values().end(), out.values().begin());
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

lab::Tensor one_hot(const lab::Tensor& output, const TargetFn& target, int64_t begin, bool times_output) {
  lab::Tensor seed(output.shape(), 0.0f);
  const int64_t k = output.sample_numel();
  for (int64_t n = 0; n < output.batch(); ++n) {
    const int64_t t = target(begin + n);
    LAB_CHECK(t >= 0 && t < k, "target {} outside {} output units", t, k);
    seed[n * k + t] = times_output ? output[n * k + t] : 1.0f;
  }
  return seed;
}

int64_t run_backprop(const Backprop& backprop, int64_t count, int64_t max_batch, const InputFn& inputs,
                     const TargetFn& target, const ConsumeFn& consume) {
  LAB_CHECK(backprop.net != nullptr, "run_backprop without a network");
  LAB_CHECK(max_batch >= 1, "batch {}", max_batch);
  int64_t evaluations = 0;
  for (int64_t begin = 0; begin < count; begin += max_batch) {
    const int64_t end = std::min(count, begin + max_batch);
    lab::Tensor in = inputs(begin, end);
    // A backward that reads only the ReLUs' signs (the plain gradient; rules such as guided and
    // deconv, lab::reads_only_signs) needs no activation inside a pointwise run
    // (lab/nn/gradient_trace.h); the consumers read the output and to_layer's output (GradCAM),
    // which the trace keeps. LRP and rescale read the activations: the full trace.
    const bool signs = !backprop.reference_inputs && (!backprop.rules || lab::reads_only_signs(*backprop.rules));
    lab::Trace trace = signs ? lab::trace_for_gradient(*backprop.net, in,
                                                       backprop.to_layer ? std::vector<size_t>{*backprop.to_layer}
                                                                         : std::vector<size_t>{})
                             : backprop.net->trace(in);
    lab::recycle(in);  // the trace holds its copy; the gradient, or the next chunk's inputs, take the block
    LAB_CHECK(trace.input().batch() == end - begin, "input function made {} inputs for [{}, {})",
              trace.input().batch(), begin, end);
    const lab::Tensor seed = one_hot(trace.output(), target, begin, backprop.seed_with_output);
    lab::Tensor signal;
    if (backprop.reference_inputs) {
      const lab::Trace reference = backprop.net->trace(backprop.reference_inputs(begin, end));
      evaluations += reference.input().batch();
      if (backprop.on_reference) backprop.on_reference(begin, reference);
      signal = backprop.net->backward(trace, seed, *backprop.rules, backprop.to_layer, &reference);
    } else if (backprop.rules) {
      signal = backprop.net->backward(trace, seed, *backprop.rules, backprop.to_layer, backprop.reference);
    } else {
      signal = backprop.net->gradient(trace, seed, backprop.to_layer);
    }
    evaluations += 2 * (end - begin);
    consume(begin, trace, signal);
    lab::recycle(trace.acts);  // the next chunk's or call's inputs, activations and gradient take these blocks
    lab::recycle(signal);
  }
  return evaluations;
}

Signal backprop_batch(const Backprop& backprop, const lab::Tensor& x, const std::vector<int64_t>& target,
                      int64_t max_batch) {
  Signal out;
  out.output.resize(static_cast<size_t>(x.batch()));
  std::vector<lab::Tensor> parts;
  auto target_of = [&](int64_t i) { return target[static_cast<size_t>(i)]; };
  out.evaluations = run_backprop(
      backprop, x.batch(), max_batch, [&](int64_t b, int64_t e) { return x.slice(b, e); }, target_of,
      [&](int64_t begin, const lab::Trace& trace, const lab::Tensor& signal) {
        const lab::Tensor& y = trace.output();
        for (int64_t n = 0; n < y.batch(); ++n)
          out.output[static_cast<size_t>(begin + n)] = y.sample(n)[target_of(begin + n)];
        parts.push_back(signal);
      });
  out.signal = parts.size() == 1 ? std::move(parts.front()) : lab::Tensor::concat(parts);
  return out;
}

int64_t trace_bytes(const lab::Network& net) {
  int64_t per_sample = lab::numel(net.input_shape());
  for (size_t i = 0; i < net.size(); ++i) per_sample += lab::numel(net.shape_after(i, 1));
  return per_sample * static_cast<int64_t>(sizeof(float));
}

int64_t batch_for_memory(const lab::Network& net, int64_t bytes) {
  return std::clamp<int64_t>(bytes / std::max<int64_t>(trace_bytes(net), 1), 1, 256);
}

void check_batch_memory(const lab::Network& net, int64_t max_batch, const std::string& flag) {
  const double bytes = 2.0 * static_cast<double>(max_batch) * static_cast<double>(trace_bytes(net));
  lab::check_memory(bytes >= 1.8e19 ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(bytes),
                    fmt::format("{}: network calls of {} inputs of {} floats of traces each", flag, max_batch,
                                trace_bytes(net) / static_cast<int64_t>(sizeof(float))));
}

std::vector<double> output_at(const lab::Network& net, const lab::Tensor& x, const TargetFn& target, int64_t max_batch) {
  std::vector<double> out(static_cast<size_t>(x.batch()));
  for (int64_t begin = 0; begin < x.batch(); begin += max_batch) {
    const int64_t end = std::min(x.batch(), begin + max_batch);
    const lab::Tensor y = net.forward(x.slice(begin, end));
    for (int64_t n = 0; n < y.batch(); ++n) out[static_cast<size_t>(begin + n)] = y.sample(n)[target(begin + n)];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

void check_batch(const Context& context, const Batch& batch, bool needs_seeds) {
  if (!context.net) lab::fail_parameter("attribution context has no network");
  const lab::Network& net = *context.net;
  lab::Shape expected{batch.x.rank() ? batch.x.dim(0) : 0};
  expected.insert(expected.end(), net.input_shape().begin(), net.input_shape().end());
  if (batch.x.shape() != expected || batch.x.dim(0) < 1)
    lab::fail("inputs of shape {} do not fit the network's input {} (need N ≥ 1)", lab::to_string(batch.x.shape()),
              lab::to_string(expected));
  const int64_t n = batch.x.batch();
  if (static_cast<int64_t>(batch.target.size()) != n)
    lab::fail("{} targets for {} inputs", batch.target.size(), n);
  const int64_t units = lab::numel(net.output_shape(1));
  for (int64_t t : batch.target)
    if (t < 0 || t >= units) lab::fail_parameter("target {} is not an output unit of the network (0..{})", t, units - 1);
  if (needs_seeds && static_cast<int64_t>(batch.seeds.size()) != n)
    lab::fail("{} seeds for {} inputs: this method draws random numbers and needs one seed per sample",
              batch.seeds.size(), n);
}

// ---------------------------------------------------------------------------------------------

lab::Tensor upsample_bilinear(const lab::Tensor& maps, int64_t height, int64_t width) {
  LAB_CHECK(maps.rank() == 3, "upsample_bilinear expects N×h×w maps, got {}", lab::to_string(maps.shape()));
  const int64_t n = maps.dim(0), h = maps.dim(1), w = maps.dim(2);
  lab::Tensor out = lab::uninitialized({n, height, width});
  for (int64_t i = 0; i < n; ++i) {
    const cv::Mat src(static_cast<int>(h), static_cast<int>(w), CV_32F, const_cast<float*>(maps.sample(i)));
    cv::Mat dst(static_cast<int>(height), static_cast<int>(width), CV_32F, out.sample(i));
    if (h == height && w == width) {
      src.copyTo(dst);
    } else {
      cv::resize(src, dst, dst.size(), 0, 0, cv::INTER_LINEAR);
    }
    LAB_CHECK(dst.data == reinterpret_cast<uchar*>(out.sample(i)), "cv::resize reallocated its output");
  }
  return out;
}

lab::Tensor spread_over_channels(const lab::Tensor& maps, int64_t channels) {
  LAB_CHECK(maps.rank() == 3 && channels >= 1, "spread_over_channels: maps {}", lab::to_string(maps.shape()));
  const int64_t n = maps.dim(0), plane = maps.dim(1) * maps.dim(2);
  lab::Tensor out = lab::uninitialized({n, channels, maps.dim(1), maps.dim(2)});
  const float share = 1.0f / static_cast<float>(channels);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t j = 0; j < plane; ++j) out[(i * channels + c) * plane + j] = maps[i * plane + j] * share;
  return out;
}

// ---------------------------------------------------------------------------------------------

const std::vector<std::pair<Output, std::string>>& output_choices() {
  static const std::vector<std::pair<Output, std::string>> choices = {{Output::kProbability, "probability"},
                                                                      {Output::kLogit, "logit"}};
  return choices;
}

const lab::Codec<Baseline>& baseline_codec() {
  static const lab::Codec<Baseline> codec{
      .type = lab::ParamType::kString,
      .parse = [](const std::string& text) -> std::optional<Baseline> {
        try {
          return Baseline::parse(text);
        } catch (const lab::Error&) {
          return std::nullopt;
        }
      },
      .show = [](const Baseline& b) -> nlohmann::json { return b.to_string(); },
      .expect = "zero, background, comma-separated values (R,G,B) or a .npy/.png file"};
  return codec;
}

}  // namespace attributions
