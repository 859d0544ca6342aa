// The compiled half of `import attrlab` (the extension module attrlab._attrlab): thin bindings
// over the libraries, numpy in and numpy out. The Python package (python/attrlab/__init__.py)
// builds the public API on top: keyword parameters, Python-written methods, result tables.
//
// Every lab::Error becomes attrlab.Error (a ValueError) carrying the message the command line
// prints after "attrlab: error: ". Arrays are checked here (dtype, rank) before they reach the
// libraries, whose own checks (shapes, targets, parameter values) then speak as they do on the
// command line. Compute runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fmt/format.h>
#include <malloc.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "attributions/common.h"
#include "attributions/method.h"
#include "attributions/plugin.h"
#include "datasets/data_dir.h"
#include "datasets/export.h"
#include "datasets/environment.h"
#include "experiments/config.h"
#include "experiments/metrics/metric.h"
#include "experiments/pipeline.h"
#include "experiments/run.h"
#include "lab/core/error.h"
#include "lab/core/options.h"
#include "lab/core/runtime.h"
#include "lab/core/schema.h"
#include "lab/io/files.h"
#include "lab/nn/network.h"
#include "lab/nn/rules.h"
#include "networks/registry.h"
#include "networks/summary.h"

namespace py = pybind11;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bytes of activations one network call may hold (as the attribute stage's default).
constexpr int64_t kBatchMemory = int64_t{1} << 30;

// ---------------------------------------------------------------------------------------------
// numpy ↔ lab::Tensor

std::string shape_text(const py::array& a) {
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  return lab::to_string(shape);
}

// A float32 array of rank `ranks` (any of them), every value finite, as a tensor; anything else
// is refused naming `what`.
lab::Tensor to_tensor(const py::handle& object, const std::string& what, std::vector<int> ranks, const char* layout) {
  if (!py::isinstance<py::array>(object))
    lab::fail("{}: expected a numpy float32 array {}, got {}", what, layout, std::string(py::str(py::type::of(object).attr("__name__"))));
  const auto a = py::reinterpret_borrow<py::array>(object);
  if (a.dtype().kind() != 'f' || a.dtype().itemsize() != 4)
    lab::fail("{}: dtype {}, expected float32 {} (convert with .astype(numpy.float32))", what, std::string(py::str(a.dtype())),
              layout);
  if (std::find(ranks.begin(), ranks.end(), static_cast<int>(a.ndim())) == ranks.end())
    lab::fail("{}: shape {}, expected {}", what, shape_text(a), layout);
  const auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  lab::Shape shape(c.shape(), c.shape() + c.ndim());
  lab::Tensor t(shape);
  if (t.numel() > 0) std::memcpy(t.data(), c.data(), static_cast<size_t>(t.numel()) * sizeof(float));
  if (!t.all_finite()) lab::fail("{}: holds NaN or Inf", what);
  return t;
}

py::array_t<float> to_array(const lab::Tensor& t) {
  py::array_t<float> a(std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()));
  if (t.numel() > 0) std::memcpy(a.mutable_data(), t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
  return a;
}

// Settings given as {key: text} (the package spells keyword values as the command line does).
lab::Options to_options(const std::map<std::string, std::string>& items, const std::string& flag) {
  lab::Options options(flag);
  for (const auto& [key, value] : items) options.set(key, value);
  return options;
}

// ---------------------------------------------------------------------------------------------
// Environments, data, models

struct Env {
  std::shared_ptr<const datasets::Environment> env;
};

// A private temporary directory, removed with its last owner.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "attrlab-python-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) lab::fail("cannot create a temporary directory {}", pattern);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A data set: a data directory, either read from disk or generated into a private temporary
// directory by the same writer as `attrlab generate` (so write_data copies its exact bytes).
struct Data {
  std::shared_ptr<TempDir> temp;
  std::shared_ptr<const datasets::DataDir> dir;
};

struct Model {
  std::shared_ptr<const datasets::Environment> env;
  std::shared_ptr<const lab::Network> net;
};

Env make_env(const std::string& name, const std::map<std::string, std::string>& options) {
  lab::Options o = to_options(options, "-o");
  return {datasets::make_environment(name, o)};
}

Data open_data(const std::string& path) {
  Data d;
  d.dir = std::make_shared<const datasets::DataDir>(datasets::DataDir::open(path));
  return d;
}

Data generate(const Env& e, int64_t count, uint64_t seed) {
  if (count < 1) lab::fail_parameter("count must be at least 1, got {}", count);
  Data d;
  {
    py::gil_scoped_release release;
    d.temp = std::make_shared<TempDir>();
    datasets::write_data_dir(*e.env, count, seed, d.temp->path / "data");
    d.dir = std::make_shared<const datasets::DataDir>(datasets::DataDir::open(d.temp->path / "data"));
  }
  return d;
}

void write_data(const Data& d, const std::string& out) {
  py::gil_scoped_release release;
  lab::StagedDir staged(out);
  fs::copy(d.dir->path(), staged.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  staged.commit();
}

Env data_env(const Data& d) { return {std::shared_ptr<const datasets::Environment>(d.dir, &d.dir->env())}; }

py::array_t<uint8_t> data_images(const Data& d) {
  const datasets::DataDir& dir = *d.dir;
  const int64_t n = dir.size(), side = dir.env().image_size();
  py::array_t<uint8_t> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(side), static_cast<py::ssize_t>(side),
                            py::ssize_t{3}});
  uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) {
      const cv::Mat image = dir.image(i);
      for (int64_t y = 0; y < side; ++y)
        for (int64_t x = 0; x < side; ++x) {
          uint8_t* px = dst + ((i * side + y) * side + x) * 3;
          if (image.channels() == 3) {
            const cv::Vec3b v = image.at<cv::Vec3b>(static_cast<int>(y), static_cast<int>(x));
            px[0] = v[0], px[1] = v[1], px[2] = v[2];
          } else {
            px[0] = px[1] = px[2] = image.at<uint8_t>(static_cast<int>(y), static_cast<int>(x));
          }
        }
    }
  }
  return out;
}

py::array_t<uint8_t> data_patches(const Data& d) {
  const datasets::DataDir& dir = *d.dir;
  const int64_t n = dir.size(), side = dir.env().image_size();
  py::array_t<uint8_t> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(side), static_cast<py::ssize_t>(side)});
  uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) {
      const cv::Mat p = dir.patches(i);
      for (int64_t y = 0; y < side; ++y)
        std::memcpy(dst + (i * side + y) * side, p.ptr<uint8_t>(static_cast<int>(y)), static_cast<size_t>(side));
    }
  }
  return out;
}

py::array_t<float> data_gt(const Data& d, bool smooth) {
  lab::Tensor t;
  {
    py::gil_scoped_release release;
    std::vector<lab::Tensor> maps;
    for (int64_t i = 0; i < d.dir->size(); ++i) maps.push_back(d.dir->gt(i, smooth));
    t = lab::Tensor::stack(maps);
  }
  return to_array(t);
}

py::array_t<float> data_inputs(const Data& d) {
  lab::Tensor t;
  {
    py::gil_scoped_release release;
    t = d.dir->inputs(0, d.dir->size());
  }
  return to_array(t);
}

// The output unit that explains each sample's designed label.
std::vector<int64_t> data_targets(const Data& d) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < d.dir->size(); ++i) out.push_back(d.dir->env().target_output(d.dir->label(i)));
  return out;
}

Model env_model(const Env& e) {
  py::gil_scoped_release release;
  return {e.env, std::make_shared<const lab::Network>(e.env->build_network())};
}

attributions::Output parse_output(const std::string& output) {
  if (output == "probability") return attributions::Output::kProbability;
  if (output == "logit") return attributions::Output::kLogit;
  lab::fail_parameter("output={}: must be one of probability|logit", output);
}

std::optional<size_t> layer_index(const lab::Network& net, const std::string& layer) {
  if (layer.empty()) return std::nullopt;
  return net.index_of(layer);
}

// Checks x and the targets as every method does (attributions::check_batch).
void check_inputs(const lab::Network& net, const lab::Tensor& x, const std::vector<int64_t>& target) {
  attributions::Context context;
  context.net = &net;
  attributions::Batch batch;
  batch.x = x;
  batch.target = target;
  attributions::check_batch(context, batch);
}

void check_shape(const lab::Network& net, const lab::Tensor& x) {
  check_inputs(net, x, std::vector<int64_t>(static_cast<size_t>(x.rank() ? x.dim(0) : 0), 0));
}

// Logits (the input of a final softmax, or the outputs of a network without one) and, after a
// final softmax, the probabilities (else left empty): one pass, the softmax applied to the logits.
void forward_pass(const lab::Network& net, const lab::Tensor& x, lab::Tensor& logits, lab::Tensor& probabilities) {
  if (attributions::ends_with_softmax(net)) {
    logits = net.forward_range(0, net.size() - 1, x);
    probabilities = net.forward_range(net.size() - 1, net.size(), logits);
  } else {
    logits = net.forward(x);
    probabilities = lab::Tensor();
  }
}

// (logits, probabilities) of the whole network, or the outputs of one layer.
py::object model_forward(const Model& m, const py::object& x_object, const std::string& layer) {
  const lab::Tensor x = to_tensor(x_object, "x", {4}, "N×C×H×W (the network input)");
  check_shape(*m.net, x);
  if (!layer.empty()) {
    const size_t index = m.net->index_of(layer);
    lab::Tensor out;
    {
      py::gil_scoped_release release;
      out = m.net->forward_range(0, index + 1, x);
    }
    return to_array(out);
  }
  lab::Tensor logits, probabilities;
  {
    py::gil_scoped_release release;
    forward_pass(*m.net, x, logits, probabilities);
  }
  return py::make_tuple(to_array(logits),
                        probabilities.empty() ? py::object(py::none()) : py::object(to_array(probabilities)));
}

// Median seconds of the C++ work of model_forward (no numpy conversion) over `runs` calls after
// one warm-up: what bench/bench_python.py compares the Python call with.
double forward_seconds(const Model& m, const py::object& x_object, int64_t runs) {
  const lab::Tensor x = to_tensor(x_object, "x", {4}, "N×C×H×W (the network input)");
  check_shape(*m.net, x);
  py::gil_scoped_release release;
  std::vector<double> times;
  lab::Tensor logits, probabilities;
  forward_pass(*m.net, x, logits, probabilities);
  for (int64_t r = 0; r < std::max<int64_t>(runs, 1); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    forward_pass(*m.net, x, logits, probabilities);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The backward signal of output[target] under a rule composite (`gradient`: the plain gradient).
py::array_t<float> model_backward(const Model& m, const py::object& x_object, const std::vector<int64_t>& target,
                                  const std::string& rule, const std::string& output, const std::string& layer,
                                  bool times_output, double epsilon, double alpha, double beta,
                                  const py::object& reference_object) {
  const lab::Tensor x = to_tensor(x_object, "x", {4}, "N×C×H×W (the network input)");
  const lab::Network net = attributions::explained_network(*m.net, parse_output(output));
  check_inputs(net, x, target);
  lab::CompositeParams params{.epsilon = epsilon, .alpha = alpha, .beta = beta};
  params.validate();
  const lab::Composite composite = lab::make_composite(rule, params);
  const std::optional<size_t> to_layer = layer_index(net, layer);
  lab::Tensor reference;
  if (!reference_object.is_none()) {
    reference = to_tensor(reference_object, "reference", {3, 4}, "C×H×W or 1×C×H×W (one reference input)");
    if (reference.rank() == 3) reference.reshape(lab::Shape{1, reference.dim(0), reference.dim(1), reference.dim(2)});
    check_shape(net, reference);
    if (reference.batch() != 1) lab::fail("reference: shape {}, expected one input", lab::to_string(reference.shape()));
  }
  lab::Tensor signal;
  {
    py::gil_scoped_release release;
    const lab::PreparedRules rules = lab::prepare(net, composite);
    if (rules.needs_reference && reference.empty())
      lab::fail_parameter("rule {} needs a reference input (reference=)", rule);
    lab::Trace reference_trace;
    attributions::Backprop bp{.net = &net, .to_layer = to_layer, .seed_with_output = times_output};
    if (rule != "gradient") bp.rules = &rules;
    if (rules.needs_reference) {
      reference_trace = net.trace(reference);
      bp.reference = &reference_trace;
    }
    signal = attributions::backprop_batch(bp, x, target, attributions::batch_for_memory(net, kBatchMemory)).signal;
  }
  return to_array(signal);
}

std::string model_summary(const Model& m) {
  lab::Options options = lab::Options::from_json(m.env->options(), "-o");
  const auto start = std::chrono::steady_clock::now();
  const networks::ModelInfo info = networks::make_model(m.env->name(), options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return networks::format_summary(info, seconds);
}

std::vector<std::string> model_layers(const Model& m) {
  std::vector<std::string> out;
  for (size_t i = 0; i < m.net->size(); ++i) out.push_back(m.net->name(i));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Methods

py::dict attribution_result(attributions::Result&& r, const std::vector<int64_t>& target,
                            const attributions::Method& method, const std::string& label) {
  py::dict out;
  out["maps"] = to_array(r.attr);
  out["target"] = target;
  out["params"] = method.params().dump();
  out["label"] = label;
  out["evaluations"] = r.evaluations;
  if (!r.convergence_delta.empty()) out["convergence_delta"] = r.convergence_delta;
  else out["convergence_delta"] = py::none();
  return out;
}

// Samples of a data set, through the attribute stage exactly as `attrlab attribute` runs them.
py::dict attribute_data(const Model& m, const Data& d, const std::string& name,
                        const std::map<std::string, std::string>& params, const std::string& target, uint64_t seed,
                        const std::string& label, int64_t reference, int64_t batch, int64_t unit) {
  if (reference < 0) lab::fail_parameter("reference must be at least 0, got {}", reference);
  if (batch < 0) lab::fail_parameter("batch must be at least 1 (or 0 for automatic), got {}", batch);
  if (unit < 1) lab::fail_parameter("unit must be at least 1, got {}", unit);
  lab::Options options = to_options(params, "-p");
  const std::unique_ptr<attributions::Method> method = attributions::make_method(name, options);
  experiments::AttributeSetup setup;
  setup.label = label;
  setup.target = experiments::TargetMode::parse(target, lab::numel(m.net->output_shape(1)), "target");
  setup.seed = seed;
  setup.reference = reference;
  setup.batch = batch;
  attributions::Result all;
  std::vector<int64_t> targets;
  std::string stage_label;
  {
    py::gil_scoped_release release;
    const experiments::AttributeStage stage(*d.dir, *m.net, *method, setup);
    stage_label = stage.label();
    std::vector<lab::Tensor> parts;
    for (int64_t begin = 0; begin < d.dir->size(); begin += unit) {
      const int64_t end = std::min(d.dir->size(), begin + unit);
      experiments::AttributedUnit u = stage.run(begin, end);
      parts.push_back(std::move(u.result.attr));
      all.evaluations += u.result.evaluations;
      all.convergence_delta.insert(all.convergence_delta.end(), u.result.convergence_delta.begin(),
                                   u.result.convergence_delta.end());
      targets.insert(targets.end(), u.batch.target.begin(), u.batch.target.end());
    }
    all.attr = lab::Tensor::concat(parts);
  }
  return attribution_result(std::move(all), targets, *method, stage_label);
}

// Inputs given in memory: the same method context as the attribute stage's, the reference inputs
// given (default: the first min(16, N) inputs, as the stage takes the data's first samples), and
// input i explained with seed sample_seed(seed, label, i).
py::dict attribute_inputs(const Model& m, const py::object& x_object, const std::vector<int64_t>& target,
                          const std::string& name, const std::map<std::string, std::string>& params, uint64_t seed,
                          const std::string& label, const py::object& reference_object, int64_t batch) {
  if (batch < 0) lab::fail_parameter("batch must be at least 1 (or 0 for automatic), got {}", batch);
  const lab::Tensor x = to_tensor(x_object, "x", {4}, "N×C×H×W (the network input)");
  lab::Options options = to_options(params, "-p");
  const std::unique_ptr<attributions::Method> method = attributions::make_method(name, options);
  check_inputs(*m.net, x, target);
  lab::Tensor reference;
  if (reference_object.is_none()) {
    reference = x.slice(0, std::min<int64_t>(16, x.batch()));
  } else {
    reference = to_tensor(reference_object, "reference", {4}, "K×C×H×W (reference inputs)");
    if (reference.batch() > 0) check_shape(*m.net, reference);
  }
  const std::string used = label.empty() ? method->name() : label;
  attributions::Result r;
  {
    py::gil_scoped_release release;
    const attributions::Context context =
        experiments::method_context(*m.env, *m.net, reference.batch() > 0 ? reference : lab::Tensor(), batch);
    attributions::Batch b;
    b.x = x;
    b.target = target;
    for (int64_t i = 0; i < x.batch(); ++i) b.seeds.push_back(experiments::sample_seed(seed, used, i));
    r = method->attribute(context, b);
  }
  if (r.attr.shape() != x.shape())
    lab::fail("method '{}' returned maps of shape {} for inputs {}", used, lab::to_string(r.attr.shape()),
              lab::to_string(x.shape()));
  if (!r.attr.all_finite()) lab::fail("method '{}' returned NaN or Inf", used);
  return attribution_result(std::move(r), target, *method, used);
}

// ---------------------------------------------------------------------------------------------
// Metrics

// One method's maps to score.
struct Entry {
  std::string method;
  py::object maps;
  std::vector<int64_t> target;
  std::vector<double> convergence_delta;  ///< empty: none reported
};

// Scores every entry with the score stage: per-sample rows, aggregate rows and curves as columns.
py::dict score(const Model& m, const Data& d, const std::vector<Entry>& entries, const std::vector<std::string>& names,
               const std::map<std::string, std::string>& params, uint64_t seed, int64_t unit, int64_t batch) {
  if (unit < 1) lab::fail_parameter("unit must be at least 1, got {}", unit);
  if (batch < 1) lab::fail_parameter("batch must be at least 1, got {}", batch);
  if (names.empty()) lab::fail_parameter("metrics: give at least one metric");
  const datasets::DataDir& data = *d.dir;
  lab::Options options = to_options(params, "-p");
  std::vector<std::unique_ptr<experiments::Metric>> metrics =
      experiments::make_metrics(names, options, experiments::MetricSetup::of(data.env()));
  const int64_t n = data.size();
  std::vector<std::pair<std::string, lab::Tensor>> maps;
  for (const Entry& e : entries) {
    lab::Tensor attr = to_tensor(e.maps, "maps of " + e.method, {3, 4}, "N×H×W or N×C×H×W");
    if (attr.batch() != n)
      lab::fail("maps of {}: shape {} holds {} samples, the data {}", e.method, lab::to_string(attr.shape()), attr.batch(), n);
    if (!attr.all_finite()) lab::fail("maps of {}: NaN or Inf", e.method);
    if (static_cast<int64_t>(e.target.size()) != n) lab::fail("{} targets for {} samples", e.target.size(), n);
    maps.emplace_back(e.method, std::move(attr));
  }
  const std::string model = data.env().name();
  std::vector<experiments::ResultRow> rows, aggregates;
  std::vector<experiments::CurveRow> curves;
  std::map<std::pair<std::string, std::string>, std::string> directions;
  {
    py::gil_scoped_release release;
    const experiments::ScoreStage stage(data, *m.net, std::move(metrics), seed, unit, batch);
    for (size_t k = 0; k < maps.size(); ++k) {
      const Entry& e = entries[k];
      std::vector<experiments::ResultRow> mine;
      for (size_t i = 0; i < e.convergence_delta.size(); ++i)
        mine.push_back({model, data.id(static_cast<int64_t>(i)), e.method, "method", "completeness-gap", e.convergence_delta[i]});
      for (int64_t begin = 0; begin < n; begin += unit) {
        const int64_t end = std::min(n, begin + unit);
        const std::vector<int64_t> target(e.target.begin() + begin, e.target.begin() + end);
        experiments::Scores s = stage.score(model, e.method, begin, end, maps[k].second.slice(begin, end), target);
        mine.insert(mine.end(), s.rows.begin(), s.rows.end());
        curves.insert(curves.end(), s.curves.begin(), s.curves.end());
      }
      const std::vector<experiments::ResultRow> summary = stage.aggregate(model, e.method, mine);
      rows.insert(rows.end(), mine.begin(), mine.end());
      aggregates.insert(aggregates.end(), summary.begin(), summary.end());
    }
    for (const auto& metric : stage.metrics())
      for (const experiments::Variant& v : metric->variants())
        directions[{metric->name(), v.name}] = experiments::direction_name(v.direction);
  }
  directions[{"method", "completeness-gap"}] = experiments::direction_name(experiments::Direction::kLowerIsBetter);

  auto row_columns = [](const std::vector<experiments::ResultRow>& table, bool with_sample) {
    py::dict c;
    std::vector<std::string> sample, method, metric, variant;
    std::vector<double> value;
    for (const auto& r : table) {
      sample.push_back(r.sample);
      method.push_back(r.method);
      metric.push_back(r.metric);
      variant.push_back(r.variant);
      value.push_back(r.value);
    }
    if (with_sample) c["sample"] = sample;
    c["method"] = method;
    c["metric"] = metric;
    c["variant"] = variant;
    c["value"] = value;
    return c;
  };
  py::dict out;
  out["scores"] = row_columns(rows, true);
  out["aggregates"] = row_columns(aggregates, false);
  py::dict c;
  std::vector<std::string> sample, method, metric, variant;
  std::vector<double> x, y;
  for (const auto& r : curves) {
    sample.push_back(r.sample);
    method.push_back(r.method);
    metric.push_back(r.metric);
    variant.push_back(r.variant);
    x.push_back(r.x);
    y.push_back(r.y);
  }
  c["sample"] = sample;
  c["method"] = method;
  c["metric"] = metric;
  c["variant"] = variant;
  c["x"] = x;
  c["y"] = y;
  out["curves"] = c;
  py::dict dirs;
  for (const auto& [key, direction] : directions) dirs[py::make_tuple(key.first, key.second)] = direction;
  out["directions"] = dirs;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Listings, as `attrlab envs|methods|metrics --json` print them

std::string environments_json() {
  json out = json::array();
  for (const auto& e : datasets::environments())
    out.push_back({{"name", e.name}, {"summary", e.summary}, {"source", e.source}, {"params", lab::docs_json(e.params)}});
  return out.dump();
}

std::string methods_json() {
  json out = json::array();
  for (const auto& m : attributions::registry())
    out.push_back({{"name", m.name}, {"family", m.family}, {"summary", m.summary}, {"params", lab::docs_json(m.params)}});
  return out.dump();
}

std::string metrics_json() {
  json out = json::array();
  for (const auto& m : experiments::registry()) {
    json variants = json::array();
    for (const auto& v : m.variants) variants.push_back({{"name", v.name}, {"direction", experiments::direction_name(v.direction)}});
    out.push_back({{"name", m.name},
                   {"family", m.family},
                   {"summary", m.summary},
                   {"source", m.source},
                   {"variants", variants},
                   {"params", lab::docs_json(m.params)}});
  }
  return out.dump();
}

}  // namespace

/// `attrlab run EXPERIMENT -o ITEMS... --out OUT` with outside methods appended to the
/// experiment's methods as {"name": label, "maps": dir} (README, "Methods from outside the lab").
/// Returns the summary and the resolved configuration (JSON text).
py::dict run_experiment(const std::string& experiment, const std::vector<std::string>& overrides,
                        const std::vector<std::pair<std::string, std::string>>& outside, const std::string& out,
                        const std::string& stage, bool resume, bool force, bool quiet) {
  nlohmann::json config = experiments::load_config(experiment);
  experiments::apply_overrides(config, overrides);
  if (!outside.empty()) {
    nlohmann::json& methods = config["methods"];
    if (methods.is_null()) methods = nlohmann::json::array();
    if (!methods.is_array()) lab::fail_parameter("{}: methods must be a list", experiment);
    for (const auto& [label, dir] : outside) methods.push_back({{"name", label}, {"maps", dir}});
  }
  const nlohmann::json resolved = experiments::finalize(config);
  experiments::RunOptions options;
  options.out = out;
  options.resume = resume;
  options.force = force;
  options.quiet = quiet;
  options.source = experiment;
  options.overrides = overrides;
  options.stage = stage;
  experiments::RunSummary summary;
  {
    py::gil_scoped_release release;
    summary = experiments::run_experiment(resolved, options);
  }
  std::vector<std::string> data;
  for (const std::filesystem::path& d : summary.data) data.push_back(d.string());
  py::dict result;
  result["config"] = resolved.dump();
  result["data"] = data;
  result["units"] = summary.units;
  result["skipped"] = summary.skipped;
  result["results"] = summary.results.string();
  result["report_md"] = summary.report_md.string();
  result["report_html"] = summary.report_html.string();
  return result;
}

PYBIND11_MODULE(_attrlab, m) {
  m.doc() = "attrlab's libraries for Python (use the package `attrlab`, not this module)";
  m.attr("__version__") = ATTRLAB_VERSION;
  // The heap settings lab::prepare_process gives the attrlab command (lab/core/runtime.h): glibc
  // keeps freed blocks for the next network call instead of unmapping them, whose page faults
  // otherwise cost more than the network math on large images. (Its other setting, libgomp's
  // spin count, is set by the package before this module loads libgomp.)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // The runtime made now, so that it holds oneDNN to AVX2 (lab/core/runtime.h) before PyTorch,
  // which shares Debian's libdnnl, generates code with it; if PyTorch already did, say so.
  if (lab::Runtime::get().onednn_isa_hold_failed())
    PyErr_WarnEx(PyExc_RuntimeWarning,
                 "attrlab: oneDNN generated code in this process before attrlab was imported (PyTorch shares it), "
                 "so it could not be held to AVX2: on a machine with AVX-512 attrlab's own kernels stay off and "
                 "results may differ from the attrlab command's in the last bits; import attrlab before running "
                 "PyTorch, or set ONEDNN_MAX_CPU_ISA=AVX2",
                 1);
  static py::exception<lab::Error> error(m, "Error", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lab::Error& e) {
      error(e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  m.def("environments_json", &environments_json);
  m.def("methods_json", &methods_json);
  m.def("metrics_json", &metrics_json);
  m.def("composite_names", &lab::composite_names);
  m.def("load_plugin", &attributions::load_plugin, py::arg("path"));
  m.def("sample_seed", &experiments::sample_seed, py::arg("seed"), py::arg("label"), py::arg("index"));

  py::class_<Env>(m, "Env")
      .def(py::init(&make_env), py::arg("name"), py::arg("options"))
      .def_property_readonly("name", [](const Env& e) { return e.env->name(); })
      .def("options_json", [](const Env& e) { return e.env->options().dump(); })
      .def_property_readonly("input_shape", [](const Env& e) { return e.env->input_shape(); })
      .def_property_readonly("num_classes", [](const Env& e) { return e.env->num_classes(); })
      .def_property_readonly("background", [](const Env& e) { return e.env->background(); })
      .def_property_readonly("default_layers", [](const Env& e) { return e.env->default_layers(); })
      .def("target_output", [](const Env& e, int64_t label) { return e.env->target_output(label); })
      .def("generate", &generate, py::arg("count"), py::arg("seed"))
      .def("model", &env_model);

  py::class_<Data>(m, "Data")
      .def_static("open", &open_data, py::arg("path"))
      .def("write", &write_data, py::arg("path"))
      .def_property_readonly("size", [](const Data& d) { return d.dir->size(); })
      .def_property_readonly("seed", [](const Data& d) { return d.dir->seed(); })
      .def_property_readonly("path", [](const Data& d) -> py::object {
        if (d.temp) return py::none();
        return py::str(d.dir->path().string());
      })
      .def("manifest_json", [](const Data& d) { return d.dir->manifest().dump(); })
      .def("env", &data_env)
      .def("ids", [](const Data& d) {
        std::vector<std::string> ids;
        for (int64_t i = 0; i < d.dir->size(); ++i) ids.push_back(d.dir->id(i));
        return ids;
      })
      .def("labels", [](const Data& d) {
        std::vector<int64_t> labels;
        for (int64_t i = 0; i < d.dir->size(); ++i) labels.push_back(d.dir->label(i));
        return labels;
      })
      .def("targets", &data_targets)
      .def("inputs", &data_inputs)
      .def("images", &data_images)
      .def("gt", &data_gt, py::arg("smooth"))
      .def("patches", &data_patches);

  py::class_<Model>(m, "Model")
      .def("env", [](const Model& mo) { return Env{mo.env}; })
      .def("forward", &model_forward, py::arg("x"), py::arg("layer") = "")
      .def("backward", &model_backward, py::arg("x"), py::arg("target"), py::arg("rule"), py::arg("output"),
           py::arg("layer"), py::arg("times_output"), py::arg("epsilon"), py::arg("alpha"), py::arg("beta"),
           py::arg("reference"))
      .def("predict", [](const Model& mo, const py::object& x_object) {
        const lab::Tensor x = to_tensor(x_object, "x", {4}, "N×C×H×W (the network input)");
        check_shape(*mo.net, x);
        std::vector<int64_t> labels;
        {
          py::gil_scoped_release release;
          const lab::Tensor y = mo.net->forward(x);
          for (int64_t k = 0; k < y.batch(); ++k) labels.push_back(mo.env->predicted_label(y.sample(k)));
        }
        return labels;
      }, py::arg("x"))
      .def("layers", &model_layers)
      .def("layer_shape", [](const Model& mo, const std::string& layer) { return mo.net->shape_after(mo.net->index_of(layer), 1); })
      .def_property_readonly("input_shape", [](const Model& mo) { return mo.net->input_shape(); })
      .def_property_readonly("outputs", [](const Model& mo) { return lab::numel(mo.net->output_shape(1)); })
      .def_property_readonly("softmax", [](const Model& mo) { return attributions::ends_with_softmax(*mo.net); })
      .def("summary", &model_summary)
      .def("export", [](const Model& mo, const std::string& format, const std::string& path) {
        const datasets::ExportFormat f = datasets::export_format(format);
        py::gil_scoped_release release;
        datasets::export_network(*mo.env, f, path);
      }, py::arg("format"), py::arg("path"));

  m.def("forward_seconds", &forward_seconds, py::arg("model"), py::arg("x"), py::arg("runs"));
  m.def("attribute_data", &attribute_data);
  m.def("attribute_inputs", &attribute_inputs);

  py::class_<Entry>(m, "Entry")
      .def(py::init([](std::string method, py::object maps, std::vector<int64_t> target, std::vector<double> delta) {
        return Entry{std::move(method), std::move(maps), std::move(target), std::move(delta)};
      }));
  m.def("score", &score);
  m.def("run_experiment", &run_experiment);
}
