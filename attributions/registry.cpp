// The method registry: one line per method, in the order `attrlab methods` lists them.
// Each method class provides `static MethodInfo info()` (method_info in common.h); a method
// added to attrlab adds its source file and one line to the table below, or registers itself
// from its own file with add_method().
#include <algorithm>
#include <mutex>

#include "attributions/common.h"
#include "attributions/controls.h"
#include "attributions/deeplift.h"
#include "attributions/extremal_perturbation.h"
#include "attributions/gradcam.h"
#include "attributions/gradient.h"
#include "attributions/iba.h"
#include "attributions/integrated_gradients.h"
#include "attributions/kernelshap.h"
#include "attributions/lime.h"
#include "attributions/map_edits.h"
#include "attributions/occlusion.h"
#include "attributions/rise.h"
#include "attributions/smoothgrad.h"
#include "attributions/method.h"
#include "lab/core/error.h"

namespace attributions {

namespace {

/// The entry with its family set (see MethodInfo::family).
MethodInfo in_family(std::string family, MethodInfo info) {
  info.family = std::move(family);
  return info;
}

std::vector<MethodInfo>& methods() {
  static std::vector<MethodInfo> table = {
      in_family("gradient", Saliency::info()),
      in_family("gradient", InputXGradient::info()),
      in_family("gradient", IntegratedGradients::info()),
      in_family("gradient", SmoothGrad::info()),
      in_family("propagation", ReluComposite::guided_backprop_info()),
      in_family("propagation", ReluComposite::deconvnet_info()),
      in_family("propagation", Lrp::info()),
      in_family("propagation", DeepLift::info()),
      in_family("propagation", DeepShap::info()),
      in_family("gradient", GradCam::gradcam_info()),
      in_family("gradient", GradCam::gradcam_plus_plus_info()),
      in_family("perturbation", Occlusion::info()),
      in_family("perturbation", Lime::info()),
      in_family("perturbation", KernelShap::info()),
      in_family("perturbation", Rise::info()),
      in_family("optimisation", ExtremalPerturbation::info()),
      in_family("optimisation", Iba::info()),
      in_family("control", RandomMap::info()),
      in_family("control", ConstantMap::info()),
      in_family("control", FakeCam::info()),
      in_family("control", GroundTruthMap::info()),
      in_family("control", PostProcessed::blurred_info()),
      in_family("control", PostProcessed::binarised_info()),
      in_family("control", EditedMap::info()),
      in_family("control", IsolatedMap::info()),
  };
  return table;
}

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

const std::vector<MethodInfo>& registry() { return methods(); }

void add_method(MethodInfo info) {
  if (!lab::is_key_spelling(info.name))
    lab::fail_parameter("add_method: method name '{}' must be lower-case words joined by '-'", info.name);
  for (const lab::ParamDoc& doc : info.params)
    if (!lab::is_key_spelling(doc.name))
      lab::fail_parameter("add_method: method {} has parameter '{}'; keys are lower-case words joined by '-'",
                          info.name, doc.name);
  if (!info.make) lab::fail_parameter("add_method: method {} has no factory", info.name);
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<MethodInfo>& table = methods();
  for (const MethodInfo& m : table)
    if (m.name == info.name) lab::fail_parameter("add_method: a method named {} is already registered", info.name);
  table.push_back(std::move(info));
}

std::unique_ptr<Method> make_method(const std::string& name, lab::Options& params) {
  const auto& table = registry();
  auto it = std::find_if(table.begin(), table.end(), [&](const MethodInfo& m) { return m.name == name; });
  if (it == table.end()) {
    std::string list;
    for (const MethodInfo& m : table) list += (list.empty() ? "" : ", ") + m.name;
    lab::fail_parameter("unknown method '{}'; known: {}", name, list);
  }
  std::unique_ptr<Method> method = it->make(params);
  params.finish(param_names(it->params));
  return method;
}

lab::Tensor reduce_channels(const lab::Tensor& attr) {
  if (attr.rank() != 4) lab::fail("attribution maps must be N×C×H×W, got {}", lab::to_string(attr.shape()));
  const int64_t n = attr.dim(0), c = attr.dim(1), plane = attr.dim(2) * attr.dim(3);
  lab::Tensor out({n, attr.dim(2), attr.dim(3)}, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < plane; ++j) out[i * plane + j] += attr[(i * c + k) * plane + j];
  return out;
}

}  // namespace attributions
