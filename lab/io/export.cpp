#include "lab/io/export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <vector>

#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"
#include "lab/io/npz.h"

namespace lab {

namespace {

// IR version 7 is the one that introduced opset 13 (ONNX 1.8); readers of that age load it.
constexpr int64_t kOnnxIrVersion = 7;

bool ends_in_softmax(const Network& network) {
  return network.size() > 0 && network.layer(network.size() - 1).kind() == LayerKind::kSoftmax;
}

// A network ending in a softmax exports its logits too, so the softmax must read the node before it.
void require_exportable(const Network& network) {
  if (network.size() == 0) fail("cannot export an empty network");
  const size_t last = network.size() - 1;
  if (network.layer(last).kind() == LayerKind::kSoftmax && network.inputs(last) != std::vector<size_t>{last})
    fail("cannot export '{}': a final softmax must read the node before it (its logits)", network.name(last));
}

// The name of the first node that applies the same layer object as node i (itself if none).
const std::string& first_user(const Network& network, size_t i) {
  for (size_t j = 0; j < i; ++j)
    if (network.layer_ptr(j) == network.layer_ptr(i)) return network.name(j);
  return network.name(i);
}

void add_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

std::string metadata_value(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void add_initializer(onnx::GraphProto& graph, const std::string& name, const Tensor& t) {
  onnx::TensorProto* init = graph.add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : t.shape()) init->add_dims(d);
  // raw_data is little-endian float32, the runtime's own layout (npy.cpp asserts little-endian).
  init->set_raw_data(std::string(reinterpret_cast<const char*>(t.data()), t.values().size() * sizeof(float)));
}

void add_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

/// A float tensor type batch × dims... with a symbolic batch dimension.
void set_batch_type(onnx::ValueInfoProto& info, const std::string& name, const Shape& sample_shape) {
  info.set_name(name);
  onnx::TypeProto_Tensor* t = info.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : sample_shape) shape->add_dim()->set_dim_value(d);
}

onnx::ModelProto onnx_model(const Network& network, const nlohmann::json& metadata) {
  require_exportable(network);
  onnx::ModelProto model;
  model.set_ir_version(kOnnxIrVersion);
  model.set_producer_name("attrlab");
  model.set_producer_version(ATTRLAB_VERSION);
  model.set_doc_string("A hand-weighted attrlab network, exported layer by layer (lab/io/export.h).");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  if (metadata.is_object())
    for (const auto& [key, value] : metadata.items()) {
      onnx::StringStringEntryProto* p = model.add_metadata_props();
      p->set_key(key);
      p->set_value(metadata_value(value));
    }

  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(metadata.contains("env") ? metadata_value(metadata["env"]) : "attrlab");
  set_batch_type(*graph.add_input(), "input", network.input_shape());

  const bool softmax = ends_in_softmax(network);
  const size_t last = network.size() - 1;
  const size_t body_last = softmax ? last - 1 : last;
  const Shape out_shape = network.output_shape(1);
  const Shape sample_out(out_shape.begin() + 1, out_shape.end());
  auto tensor_name = [&](size_t i) -> std::string {
    if (softmax && i == last) return "probabilities";
    if (softmax && i == body_last) return "logits";
    if (!softmax && i == last) return "outputs";
    return network.name(i);
  };

  for (size_t i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    const std::string& name = network.name(i);
    const std::string y = tensor_name(i);
    onnx::NodeProto& node = *graph.add_node();
    node.set_name(name);
    for (size_t a : network.inputs(i)) node.add_input(a == 0 ? std::string("input") : tensor_name(a - 1));
    switch (layer.kind()) {
      case LayerKind::kConv2d: {
        const auto& conv = static_cast<const Conv2d&>(layer);
        const Conv2dParams& p = conv.params();
        node.set_op_type("Conv");
        node.add_input(name + ".weight");
        add_initializer(graph, name + ".weight", conv.weights().weight);
        if (conv.weights().bias.numel() > 0) {
          node.add_input(name + ".bias");
          add_initializer(graph, name + ".bias", conv.weights().bias);
        }
        add_ints(node, "kernel_shape", {p.kernel_h, p.kernel_w});
        add_ints(node, "strides", {p.stride_h, p.stride_w});
        add_ints(node, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
        add_ints(node, "dilations", {1, 1});
        add_int(node, "group", p.groups);
        break;
      }
      case LayerKind::kLinear: {
        const auto& linear = static_cast<const Linear&>(layer);
        node.set_op_type("Gemm");
        node.add_input(name + ".weight");
        add_initializer(graph, name + ".weight", linear.weights().weight);
        if (linear.weights().bias.numel() > 0) {
          node.add_input(name + ".bias");
          add_initializer(graph, name + ".bias", linear.weights().bias);
        }
        add_int(node, "transB", 1);
        break;
      }
      case LayerKind::kReLU:
        node.set_op_type("Relu");
        break;
      case LayerKind::kSoftmax:
        node.set_op_type("Softmax");
        add_int(node, "axis", 1);
        break;
      case LayerKind::kFlatten:
        node.set_op_type("Flatten");
        add_int(node, "axis", 1);
        break;
      case LayerKind::kMaxPool2d: {
        const MaxPool2dParams& p = static_cast<const MaxPool2d&>(layer).params();
        node.set_op_type("MaxPool");
        add_ints(node, "kernel_shape", {p.kernel_h, p.kernel_w});
        add_ints(node, "strides", {p.stride_h, p.stride_w});
        add_ints(node, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
        break;
      }
      case LayerKind::kBatchNorm: {
        const auto& bn = static_cast<const BatchNorm&>(layer);
        node.set_op_type("BatchNormalization");
        for (const auto& [suffix, t] : {std::pair<const char*, const Tensor*>{".weight", &bn.gamma()}, {".bias", &bn.beta()},
                                        {".running_mean", &bn.mean()}, {".running_var", &bn.var()}}) {
          node.add_input(name + suffix);
          add_initializer(graph, name + suffix, *t);
        }
        add_float(node, "epsilon", static_cast<float>(bn.eps()));
        break;
      }
      case LayerKind::kAdd:
        node.set_op_type(network.inputs(i).size() == 2 ? "Add" : "Sum");
        break;
      case LayerKind::kConcat:
        node.set_op_type("Concat");
        add_int(node, "axis", 1);
        break;
      case LayerKind::kMultiply:
        node.set_op_type("Mul");
        break;
    }
    node.add_output(y);
  }
  if (softmax) {
    set_batch_type(*graph.add_output(), "logits", sample_out);
    set_batch_type(*graph.add_output(), "probabilities", sample_out);
  } else {
    set_batch_type(*graph.add_output(), "outputs", sample_out);
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    LAB_CHECK(false, "the exported ONNX model fails onnx::checker: {}", e.what());
  }
  return model;
}

nlohmann::json layer_json(const Network& network, size_t i) {
  const Layer& layer = network.layer(i);
  const std::string& name = network.name(i);
  nlohmann::json j = {{"name", name}, {"kind", kind_name(layer.kind())}};
  // Graph networks only (a chain's record is unchanged): the nodes read, "input" for the input,
  // and the first node applying the same layer object, whose module the loader reuses.
  if (!network.is_chain()) {
    nlohmann::json inputs = nlohmann::json::array();
    for (size_t a : network.inputs(i)) inputs.push_back(a == 0 ? std::string("input") : network.name(a - 1));
    j["inputs"] = std::move(inputs);
  }
  if (first_user(network, i) != name) j["shares"] = first_user(network, i);
  switch (layer.kind()) {
    case LayerKind::kConv2d: {
      const auto& conv = static_cast<const Conv2d&>(layer);
      const Conv2dParams& p = conv.params();
      j["in-channels"] = p.in_channels;
      j["out-channels"] = p.out_channels;
      j["kernel"] = {p.kernel_h, p.kernel_w};
      j["stride"] = {p.stride_h, p.stride_w};
      j["padding"] = {p.pad_h, p.pad_w};
      j["groups"] = p.groups;
      j["bias"] = conv.weights().bias.numel() > 0;
      break;
    }
    case LayerKind::kLinear: {
      const auto& linear = static_cast<const Linear&>(layer);
      j["in-features"] = linear.in_features();
      j["out-features"] = linear.out_features();
      j["bias"] = linear.weights().bias.numel() > 0;
      break;
    }
    case LayerKind::kSoftmax:
      j["dim"] = 1;
      break;
    case LayerKind::kFlatten:
      j["start-dim"] = 1;
      break;
    case LayerKind::kMaxPool2d: {
      const MaxPool2dParams& p = static_cast<const MaxPool2d&>(layer).params();
      j["kernel"] = {p.kernel_h, p.kernel_w};
      j["stride"] = {p.stride_h, p.stride_w};
      j["padding"] = {p.pad_h, p.pad_w};
      break;
    }
    case LayerKind::kBatchNorm: {
      const auto& bn = static_cast<const BatchNorm&>(layer);
      j["channels"] = bn.channels();
      j["eps"] = bn.eps();
      break;
    }
    case LayerKind::kConcat:
      j["dim"] = 1;
      break;
    case LayerKind::kReLU:
    case LayerKind::kAdd:
    case LayerKind::kMultiply:
      break;
  }
  return j;
}

}  // namespace

std::string onnx_model_bytes(const Network& network, const nlohmann::json& metadata) {
  const onnx::ModelProto model = onnx_model(network, metadata);
  std::string bytes;
  // Protobuf maps serialize in hash order; the model has none, so the bytes are deterministic.
  LAB_CHECK(model.SerializeToString(&bytes), "serializing the ONNX model failed");
  return bytes;
}

void export_onnx(const Network& network, const std::filesystem::path& path, const nlohmann::json& metadata) {
  write_text_atomic(path, onnx_model_bytes(network, metadata));
}

void check_onnx(const std::filesystem::path& path) {
  const std::string bytes = read_text(path);
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) fail("{}: not an ONNX model (protobuf parse failed)", path.string());
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    std::string message = e.what();
    for (char& c : message)
      if (c == '\n') c = ' ';
    fail("{}: onnx::checker: {}", path.string(), message);
  }
}

nlohmann::json architecture_json(const Network& network, const nlohmann::json& metadata) {
  require_exportable(network);
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < network.size(); ++i) layers.push_back(layer_json(network, i));
  return {{"format", "attrlab-network"},
          {"version", 1},
          {"attrlab-version", ATTRLAB_VERSION},
          {"input-shape", network.input_shape()},
          {"output", ends_in_softmax(network) ? "probabilities" : "outputs"},
          {"metadata", metadata.is_object() ? metadata : nlohmann::json::object()},
          {"layers", std::move(layers)}};
}

void export_torch(const Network& network, const std::filesystem::path& path, const nlohmann::json& metadata) {
  std::vector<NpzMember> members;
  members.push_back({"architecture.json", architecture_json(network, metadata).dump(2) + "\n"});
  for (size_t i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    if (layer.kind() == LayerKind::kBatchNorm) {
      const auto& bn = static_cast<const BatchNorm&>(layer);
      members.push_back({network.name(i) + ".weight.npy", npy_bytes(bn.gamma())});
      members.push_back({network.name(i) + ".bias.npy", npy_bytes(bn.beta())});
      members.push_back({network.name(i) + ".running_mean.npy", npy_bytes(bn.mean())});
      members.push_back({network.name(i) + ".running_var.npy", npy_bytes(bn.var())});
      continue;
    }
    if (layer.kind() != LayerKind::kConv2d && layer.kind() != LayerKind::kLinear) continue;
    const Weights& w = static_cast<const AffineLayer&>(layer).weights();
    members.push_back({network.name(i) + ".weight.npy", npy_bytes(w.weight)});
    if (w.bias.numel() > 0) members.push_back({network.name(i) + ".bias.npy", npy_bytes(w.bias)});
  }
  write_npz(path, members);
}

}  // namespace lab
