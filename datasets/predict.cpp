#include "datasets/predict.h"

#include <fmt/format.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace datasets {

double Predictions::accuracy() const {
  if (labels.empty()) return 0.0;
  int64_t hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) hits += labels[i] == predicted[i];
  return static_cast<double>(hits) / static_cast<double>(labels.size());
}

namespace {

/// The network of `env` on `count` inputs given by `inputs(begin, end)`, `batch` at a time;
/// `label(i)` (when given) fills Predictions::labels.
Predictions run_network(const Environment& env, int64_t count, int64_t batch,
                        const std::function<lab::Tensor(int64_t, int64_t)>& inputs,
                        const std::function<int64_t(int64_t)>& label) {
  if (batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", batch);
  const lab::Network network = env.build_network();
  Predictions p;
  p.softmax = network.size() > 0 && network.layer(network.size() - 1).kind() == lab::LayerKind::kSoftmax;
  const size_t body = p.softmax ? network.size() - 1 : network.size();
  std::vector<lab::Tensor> logits, probabilities;
  for (int64_t begin = 0; begin < count; begin += batch) {
    const int64_t end = std::min(count, begin + batch);
    lab::Tensor z = network.forward_range(0, body, inputs(begin, end));
    if (p.softmax) probabilities.push_back(network.forward_range(body, network.size(), z));
    const lab::Tensor& out = p.softmax ? probabilities.back() : z;
    for (int64_t n = 0; n < end - begin; ++n) {
      if (label) p.labels.push_back(label(begin + n));
      p.predicted.push_back(env.predicted_label(out.sample(n)));
    }
    logits.push_back(std::move(z));
  }
  p.logits = lab::Tensor::concat(logits);
  if (p.softmax) p.probabilities = lab::Tensor::concat(probabilities);
  return p;
}

/// The logit/prob (or output) columns of one row.
std::string value_columns(const Predictions& predictions, int64_t i) {
  const int64_t k = predictions.logits.sample_numel();
  std::string row;
  for (int64_t j = 0; j < k; ++j) row += fmt::format(",{}", predictions.logits.sample(i)[j]);
  if (predictions.softmax)
    for (int64_t j = 0; j < k; ++j) row += fmt::format(",{}", predictions.probabilities.sample(i)[j]);
  return row;
}

std::string value_header(const Predictions& predictions) {
  const int64_t k = predictions.logits.sample_numel();
  std::string head;
  for (int64_t j = 0; j < k; ++j) head += fmt::format("{}{}", predictions.softmax ? ",logit_" : ",output_", j);
  if (predictions.softmax)
    for (int64_t j = 0; j < k; ++j) head += fmt::format(",prob_{}", j);
  return head;
}

}  // namespace

Predictions predict(const DataDir& data, int64_t batch) {
  return run_network(
      data.env(), data.size(), batch, [&](int64_t begin, int64_t end) { return data.inputs(begin, end); },
      [&](int64_t i) { return data.label(i); });
}

Predictions predict_inputs(const Environment& env, const lab::Tensor& x, int64_t batch) {
  const lab::Shape want = env.input_shape();
  LAB_CHECK(x.shape().size() == 4 && lab::Shape(x.shape().begin() + 1, x.shape().end()) == want,
            "inputs shaped {} for an input {}", lab::to_string(x.shape()), lab::to_string(want));
  const int64_t count = x.shape()[0];
  return run_network(
      env, count, batch,
      [&](int64_t begin, int64_t end) {
        lab::Tensor part({end - begin, want[0], want[1], want[2]});
        std::copy(x.sample(begin), x.sample(begin) + part.numel(), part.data());
        return part;
      },
      nullptr);
}

BatchLayout batch_layout(const lab::Shape& file_shape, const lab::Shape& input_shape, const std::string& file) {
  LAB_CHECK(input_shape.size() == 3, "input shape {}", lab::to_string(input_shape));
  const int64_t c = input_shape[0], h = input_shape[1], w = input_shape[2];
  const std::string expected =
      fmt::format("expected N×C×H×W [N, {}, {}, {}] or N×H×W×C [N, {}, {}, {}]{}", c, h, w, h, w, c,
                  c == 1 ? fmt::format(" or N×H×W [N, {}, {}]", h, w) : std::string());
  const lab::Shape& s = file_shape;
  if (s.empty() || s[0] < 1)
    lab::fail("{}: shape {} holds no images; {}", file, lab::to_string(s), expected);
  if (s.size() == 3 && c == 1 && s[1] == h && s[2] == w) return BatchLayout::kNHW;
  if (s.size() == 4) {
    const bool nchw = s[1] == c && s[2] == h && s[3] == w;
    const bool nhwc = s[1] == h && s[2] == w && s[3] == c;
    if (nchw && nhwc)
      lab::fail("{}: shape {} is ambiguous: it reads as N×C×H×W and as N×H×W×C (C = H = W = {}); transpose it to "
                "a layout that is not square in all three dimensions",
                file, lab::to_string(s), c);
    if (nchw) return BatchLayout::kNCHW;
    if (nhwc) return BatchLayout::kNHWC;
  }
  lab::fail("{}: shape {} does not fit the network input {}; {}", file, lab::to_string(s), lab::to_string(input_shape),
            expected);
}

lab::Tensor read_inputs_npy(const Environment& env, const std::filesystem::path& path) {
  const std::string file = path.string();
  const lab::NpyInfo info = lab::read_npy_info(path);
  const lab::Shape in = env.input_shape();
  const int64_t c = in[0], h = in[1], w = in[2];
  const BatchLayout layout = batch_layout(info.shape, in, file);
  const int64_t n = info.shape[0];
  lab::Tensor x({n, c, h, w});
  // Index of (image i, channel k, row y, column xx) in the file's layout.
  auto at = [&](int64_t i, int64_t k, int64_t y, int64_t xx) {
    return layout == BatchLayout::kNHWC ? ((i * h + y) * w + xx) * c + k : ((i * c + k) * h + y) * w + xx;
  };
  if (info.dtype == "<f4") {
    const lab::Tensor raw = lab::read_npy(path);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t xx = 0; xx < w; ++xx) {
            const float v = raw[at(i, k, y, xx)];
            if (!std::isfinite(v))
              lab::fail("{}: image {} has a non-finite value {} at channel {}, row {}, column {}", file, i, v, k, y, xx);
            x[((i * c + k) * h + y) * w + xx] = v;
          }
    return x;
  }
  lab::Shape shape;
  const std::vector<uint8_t> raw = lab::read_npy_u8(path, shape);
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat image(static_cast<int>(h), static_cast<int>(w), c == 3 ? CV_8UC3 : CV_8UC1);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx)
        for (int64_t k = 0; k < c; ++k)
          image.ptr<uint8_t>(static_cast<int>(y))[xx * c + k] = raw[static_cast<size_t>(at(i, k, y, xx))];
    lab::Tensor one;
    try {
      one = env.to_input(image);
    } catch (const lab::Error& e) {
      lab::fail("{}: image {}: {}", file, i, e.what());
    }
    std::copy(one.data(), one.data() + one.numel(), x.sample(i));
  }
  return x;
}

void write_input_predictions_csv(const Predictions& predictions, const std::filesystem::path& out) {
  const int64_t n = static_cast<int64_t>(predictions.predicted.size());
  lab::write_atomic(out, [&](std::ostream& os) {
    os << "index,predicted" << value_header(predictions) << '\n';
    for (int64_t i = 0; i < n; ++i)
      os << fmt::format("{},{}", i, predictions.predicted[static_cast<size_t>(i)]) << value_columns(predictions, i)
         << '\n';
  });
}

void write_predictions_csv(const DataDir& data, const Predictions& predictions, const std::filesystem::path& out) {
  const int64_t n = data.size();
  LAB_CHECK(static_cast<int64_t>(predictions.labels.size()) == n, "predictions for {} of {} samples",
            predictions.labels.size(), n);
  lab::write_atomic(out, [&](std::ostream& os) {
    os << "id,label,predicted" << value_header(predictions) << '\n';
    for (int64_t i = 0; i < n; ++i)
      os << fmt::format("{},{},{}", data.id(i), predictions.labels[static_cast<size_t>(i)],
                        predictions.predicted[static_cast<size_t>(i)])
         << value_columns(predictions, i) << '\n';
  });
}

}  // namespace datasets
