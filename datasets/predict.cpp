#include "datasets/predict.h"

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/io/files.h"

namespace datasets {

double Predictions::accuracy() const {
  if (labels.empty()) return 0.0;
  int64_t hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) hits += labels[i] == predicted[i];
  return static_cast<double>(hits) / static_cast<double>(labels.size());
}

Predictions predict(const DataDir& data, int64_t batch) {
  if (batch < 1) lab::fail_parameter("--batch must be at least 1, got {}", batch);
  const Environment& env = data.env();
  const lab::Network network = env.build_network();
  Predictions p;
  p.softmax = network.size() > 0 && network.layer(network.size() - 1).kind() == lab::LayerKind::kSoftmax;
  const size_t body = p.softmax ? network.size() - 1 : network.size();
  std::vector<lab::Tensor> logits, probabilities;
  for (int64_t begin = 0; begin < data.size(); begin += batch) {
    const int64_t end = std::min(data.size(), begin + batch);
    lab::Tensor z = network.forward_range(0, body, data.inputs(begin, end));
    if (p.softmax) probabilities.push_back(network.forward_range(body, network.size(), z));
    const lab::Tensor& out = p.softmax ? probabilities.back() : z;
    for (int64_t n = 0; n < end - begin; ++n) {
      p.labels.push_back(data.label(begin + n));
      p.predicted.push_back(env.predicted_label(out.sample(n)));
    }
    logits.push_back(std::move(z));
  }
  p.logits = lab::Tensor::concat(logits);
  if (p.softmax) p.probabilities = lab::Tensor::concat(probabilities);
  return p;
}

void write_predictions_csv(const DataDir& data, const Predictions& predictions, const std::filesystem::path& out) {
  const int64_t n = data.size();
  LAB_CHECK(static_cast<int64_t>(predictions.labels.size()) == n, "predictions for {} of {} samples",
            predictions.labels.size(), n);
  const int64_t k = predictions.logits.sample_numel();
  lab::write_atomic(out, [&](std::ostream& os) {
    os << "id,label,predicted";
    for (int64_t j = 0; j < k; ++j) os << (predictions.softmax ? ",logit_" : ",output_") << j;
    if (predictions.softmax)
      for (int64_t j = 0; j < k; ++j) os << ",prob_" << j;
    os << '\n';
    for (int64_t i = 0; i < n; ++i) {
      std::string row = fmt::format("{},{},{}", data.id(i), predictions.labels[static_cast<size_t>(i)],
                                    predictions.predicted[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < k; ++j) row += fmt::format(",{}", predictions.logits.sample(i)[j]);
      if (predictions.softmax)
        for (int64_t j = 0; j < k; ++j) row += fmt::format(",{}", predictions.probabilities.sample(i)[j]);
      os << row << '\n';
    }
  });
}

}  // namespace datasets
