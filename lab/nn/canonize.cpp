#include "lab/nn/canonize.h"

#include "lab/core/error.h"

namespace lab {

namespace {

// The affine layer `layer` followed by the per-channel y = a z + b of `bn`, as one layer.
std::shared_ptr<const Layer> merged(const AffineLayer& layer, const BatchNorm& bn) {
  const Weights& w = layer.weights();
  const Weights& s = bn.weights();
  const int64_t out = w.weight.dim(0);
  LAB_CHECK(out == bn.channels(), "batch-norm of {} channels after {} outputs", bn.channels(), out);
  const int64_t per_out = w.weight.numel() / out;
  Tensor weight(w.weight.shape()), bias({out});
  for (int64_t o = 0; o < out; ++o) {
    const double a = s.weight[o];
    for (int64_t k = 0; k < per_out; ++k)
      weight[o * per_out + k] = static_cast<float>(a * static_cast<double>(w.weight[o * per_out + k]));
    const double c = w.bias.empty() ? 0.0 : static_cast<double>(w.bias[o]);
    bias[o] = static_cast<float>(a * c + static_cast<double>(s.bias[o]));
  }
  if (layer.kind() == LayerKind::kConv2d)
    return std::make_shared<Conv2d>(static_cast<const Conv2d&>(layer).params(), std::move(weight), std::move(bias));
  return std::make_shared<Linear>(std::move(weight), std::move(bias));
}

}  // namespace

Network merge_batch_norm(const Network& net) {
  const size_t n = net.size();
  // readers[a]: how many node inputs read acts[a].
  std::vector<int> readers(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t a : net.inputs(i)) ++readers[a];
  // fold[j]: node j (an affine layer) absorbs the batch-norm node fold[j]; folded[i]: node i is absorbed.
  std::vector<size_t> fold(n, n);
  std::vector<bool> folded(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (net.layer(i).kind() != LayerKind::kBatchNorm) continue;
    const size_t a = net.inputs(i)[0];
    if (a == 0 || readers[a] != 1) continue;
    const LayerKind k = net.layer(a - 1).kind();
    if (k != LayerKind::kConv2d && k != LayerKind::kLinear) continue;
    fold[a - 1] = i;
    folded[i] = true;
  }
  // name_of[a]: the name that now produces acts[a] ("input" for the input).
  std::vector<std::string> name_of(n + 1);
  name_of[0] = "input";
  for (size_t i = 0; i < n; ++i) name_of[i + 1] = net.name(i);
  for (size_t j = 0; j < n; ++j)
    if (fold[j] < n) name_of[fold[j] + 1] = net.name(j);
  Network out(net.input_shape());
  for (size_t i = 0; i < n; ++i) {
    if (folded[i]) continue;
    std::vector<std::string> inputs;
    for (size_t a : net.inputs(i)) inputs.push_back(name_of[a]);
    std::shared_ptr<const Layer> layer = net.layer_ptr(i);
    if (fold[i] < n)
      layer = merged(static_cast<const AffineLayer&>(net.layer(i)), static_cast<const BatchNorm&>(net.layer(fold[i])));
    out.add(net.name(i), std::move(layer), inputs);
  }
  return out;
}

}  // namespace lab
