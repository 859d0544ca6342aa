/// @file config.h
/// @brief Declarative experiment definitions: JSON files that extend a base file, command-line
/// `-o key=value` overrides (dotted keys), and the resolved configuration written into every run.
///
/// An experiment file is a JSON object. `"extends": "NAME"` names a shipped definition (or a
/// file path, relative to the extending file) whose object is merged under this one: objects
/// merge key by key, every other value (arrays included) is replaced whole. The shipped
/// definitions live in experiments/configs/*.json and are compiled into the binary, so
/// `attrlab run NAME` works from any directory; `base.json` holds the defaults all others extend.
///
/// Resolved keys (every key is lower-case words joined by '-'):
/// - The scalar settings, declared once in Settings::schema() (name, type, default, range,
///   help; `attrlab run --list` prints them): `name`, `description`, `seed` (data, per-sample
///   method and metric seeds derive from it, seeds()), `count`, `size` (applied to every model's
///   environment option `size`), `unit` (images per work unit: the resumable piece of a run, one
///   method call and the bound on memory), `batch` (the largest number of inputs per network
///   call), `reference`, `target`, `save-maps`. Neither `unit` nor `batch` changes a result.
/// - `select`: method labels to run (empty: all); `models-select`: model labels (empty: all).
/// - `models`: [{label, env, options}], each an environment (datasets/environment.h).
/// - `methods`: [{label, name, params, models?}], each an attribution method with its `-p`
///   parameters; `models` restricts it to some model labels.
/// - `metrics`: [{name, label?, params, models?}], each a metric with its `-p` parameters. `label`
///   (lower-case words joined by '-') names the entry in results rows, curves and studies instead
///   of `name`, so one metric can be listed under several configurations ("deletion-blur"); labels
///   (a name when no label is given) are unique, and a label is never another metric's name.
/// - `report`: {studies: [...]} read by experiments/report (report.h); every study's kind, keys,
///   models, methods and metrics are checked by finalize(), their variants by check_experiment().
/// - `paper-scale`: {dotted key: value}, the overrides `attrlab run --paper-scale` applies before
///   the user's `-o` (the paper's 224×224 images, more of them, full optimisation budgets).
/// - `plugins`: [path], C++ plug-ins (attributions/plugin.h) whose methods the config may name;
///   a path is relative to the file that lists it (given with `-o plugins=...`, to the working
///   directory). check_experiment() loads them.
///
/// Overrides. `-o key=value` sets the value at a dotted path: object members by name, array
/// elements by index or by their `label` ("methods.IG*.params.steps=16"). The value is read
/// with the type of the value it replaces (a string stays a string, a number must parse as a
/// number, an array takes a JSON array or a comma list); new keys are accepted only inside the
/// free-form `options` and `params` objects. Anything else is refused naming the key.
/// Tested in tests/experiments/test_experiments_config.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/schema.h"

namespace attributions {
class Method;
}
namespace datasets {
class Environment;
}

namespace experiments {

class Metric;

/// The scalar settings of an experiment; the member initializers are the defaults.
struct Settings {
  std::string name;
  std::string description;
  int64_t seed = 0;
  int64_t count = 16;
  int64_t size = 64;
  int64_t unit = 4;
  int64_t batch = 64;
  int64_t reference = 16;
  std::string target = "label";
  bool save_maps = true;

  static const lab::Schema<Settings>& schema();
};

/// A shipped experiment definition.
struct ShippedConfig {
  std::string name;
  std::string description;
  nlohmann::json raw;  ///< the file as written (before `extends` is resolved)
};

/// Every shipped definition, sorted by name (base included).
const std::vector<ShippedConfig>& shipped_configs();
/// The shipped definitions a user runs (every one but `base`).
std::vector<const ShippedConfig*> runnable_configs();

/// A definition merged with what it extends (recursively; a cycle is an error).
/// `name_or_path`: a shipped name, or the path of a JSON file.
nlohmann::json load_config(const std::string& name_or_path);
/// Same for an in-memory object; relative `extends` paths are taken from `base_dir`.
nlohmann::json resolve_extends(const nlohmann::json& config, const std::filesystem::path& base_dir,
                               const std::string& origin);

/// Deep merge: members of `over` replace those of `under`; objects merge recursively.
nlohmann::json merge(const nlohmann::json& under, const nlohmann::json& over);

/// Applies "key=value" items (see the file comment); throws lab::Error naming a bad item.
void apply_overrides(nlohmann::json& config, const std::vector<std::string>& items);

/// Checks every key and value (the report's studies included), applies `size` to each model and
/// `select`, and returns the resolved configuration (what the run uses and writes as
/// RUN_DIR/config.json). Reads no file and builds nothing: it answers at once.
nlohmann::json finalize(const nlohmann::json& config);

/// One model of a resolved config.
struct ModelSpec {
  std::string label;
  std::string env;
  nlohmann::json options;
};

/// One method of a resolved config.
struct MethodSpec {
  std::string label;  ///< as shown in tables ("IG*")
  std::string slug;   ///< directory-safe ("ig-star")
  std::string name;   ///< registry name ("integrated-gradients"); empty for an outside method
  /// An outside method's maps: DIR/<model label>/<id>.npy, or DIR/<id>.npy in a one-model
  /// experiment (maps.h); empty for a registered method.
  std::string maps;
  nlohmann::json params;
  std::vector<std::string> models;  ///< empty: every model
  bool runs_on(const std::string& model) const;
};

/// One metric of a resolved config.
struct MetricSpec {
  std::string name;   ///< registry name ("deletion")
  std::string label;  ///< the `metric` column of its rows ("deletion-blur"); the name when none is given
  nlohmann::json params;
  std::vector<std::string> models;
  bool runs_on(const std::string& model) const;
};

/// The typed view of a resolved config: its settings, then the lists.
struct Experiment : Settings {
  std::vector<ModelSpec> models;
  std::vector<MethodSpec> methods;
  std::vector<MetricSpec> metrics;
  nlohmann::json report;
  std::vector<std::string> plugins;  ///< plug-in paths (absolute when read from a file)
  nlohmann::json resolved;  ///< the whole resolved config

  /// Reads a finalize()d config.
  static Experiment from_json(const nlohmann::json& resolved);
};

/// Loads the experiment's plug-ins, builds every environment, method and metric of `experiment`
/// and checks each report study's metric variants, so a bad name or parameter is refused before a
/// run writes anything.
void check_experiment(const Experiment& experiment);

/// The environment of a model, with its options.
std::unique_ptr<datasets::Environment> make_model_environment(const ModelSpec& model);
/// The method of a spec, with its parameters.
std::unique_ptr<attributions::Method> make_spec_method(const MethodSpec& method);
/// The metrics that run on `model`, in config order, with their parameters.
std::vector<std::unique_ptr<Metric>> make_model_metrics(const Experiment& experiment, const ModelSpec& model);

/// "IG*" -> "ig-star", "LIME (slic)" -> "lime-slic": lower case, '*' spelled "star", every
/// other run of non-alphanumerics one '-'.
std::string slugify(const std::string& label);

/// The data seed of every model: the run seed itself (`attrlab generate --seed` gives the same
/// images), shared by all models of a run so their comparisons are paired.
uint64_t data_seed(const Experiment& experiment);
/// The seed of (method label, sample index): SplitMix64 of the run seed, the label's FNV-1a
/// hash and the index, so a sample's map does not depend on which unit it ran in.
uint64_t sample_seed(uint64_t seed, const std::string& label, int64_t index);
/// {"seed", "data", "methods": {label: seed of sample 0}} as written into config.json.
nlohmann::json seeds_record(const Experiment& experiment);

}  // namespace experiments
