#include "networks/model.h"

#include <fmt/format.h>

#include "lab/core/error.h"

namespace networks {

void Model::add(std::string name, std::shared_ptr<const lab::Layer> layer, std::string role) {
  network.add(std::move(name), std::move(layer));
  roles.push_back(std::move(role));
  LAB_CHECK(roles.size() == network.size());
}

void Model::add(std::string name, std::shared_ptr<const lab::Layer> layer, std::string role,
                const std::vector<std::string>& inputs) {
  network.add(std::move(name), std::move(layer), inputs);
  roles.push_back(std::move(role));
  LAB_CHECK(roles.size() == network.size());
}

DenseStage::DenseStage(int64_t in_, int64_t out_, std::string role_)
    : in(in_), out(out_), weight(static_cast<size_t>(in_ * out_), 0.0f), bias(static_cast<size_t>(out_), 0.0f),
      role(std::move(role_)) {
  LAB_CHECK(in_ > 0 && out_ > 0, "stage {}x{}", out_, in_);
}

std::string layer_name(const std::string& prefix, int64_t k) { return fmt::format("{}.layers.{}", prefix, k); }

int64_t append_stages(Model& model, const std::string& prefix, const std::vector<DenseStage>& stages,
                      StageForm form, int64_t first) {
  int64_t k = first;
  for (const DenseStage& s : stages) {
    std::shared_ptr<const lab::Layer> layer;
    lab::Tensor bias({s.out}, s.bias);
    if (form == StageForm::kLinear) {
      layer = std::make_shared<lab::Linear>(lab::Tensor({s.out, s.in}, s.weight), std::move(bias));
    } else {
      lab::Conv2dParams p{.in_channels = s.in, .out_channels = s.out};
      layer = std::make_shared<lab::Conv2d>(p, lab::Tensor({s.out, s.in, 1, 1}, s.weight), std::move(bias));
    }
    model.add(layer_name(prefix, k++), std::move(layer), s.role);
    model.add(layer_name(prefix, k++), std::make_shared<lab::ReLU>(), "ReLU of the above");
  }
  return k;
}

int64_t weight_layer_count(const lab::Network& net) {
  int64_t n = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::LayerKind kind = net.layer(i).kind();
    if (kind == lab::LayerKind::kConv2d || kind == lab::LayerKind::kLinear) ++n;
  }
  return n;
}

}  // namespace networks
