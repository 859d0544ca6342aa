#include "experiments/config.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>

#include "attributions/method.h"
#include "attributions/plugin.h"
#include "datasets/environment.h"
#include "experiments/metrics/metric.h"
#include "experiments/report/report.h"
#include "lab/core/error.h"
#include "lab/core/hash.h"
#include "lab/io/files.h"

namespace experiments {

/// Written by CMake from experiments/configs/*.json (experiments/CMakeLists.txt): name → text.
const std::vector<std::pair<std::string, std::string>>& embedded_config_texts();

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// The keys besides the scalar settings (Settings::schema()).
const std::vector<std::string> kListKeys = {"select", "models-select", "models", "methods", "metrics", "report",
                                            "paper-scale", "plugins"};

/// Every top-level key, "extends" first.
const std::vector<std::string>& top_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k = {"extends"};
    for (const std::string& name : Settings::schema().names()) k.push_back(name);
    k.insert(k.end(), kListKeys.begin(), kListKeys.end());
    return k;
  }();
  return keys;
}

/// The value of every top-level key that a definition leaves out (the types -o reads values as).
const json& defaults() {
  static const json d = [] {
    json out = Settings::schema().to_json(Settings{});
    out.erase("name");
    const json lists = json::parse(R"({"select": [], "models-select": [], "models": [], "methods": [],
                                       "metrics": [], "report": {}, "paper-scale": {}, "plugins": []})");
    out.update(lists);
    return out;
  }();
  return d;
}

/// "unknown KEY 'k'; known: ..." with the hyphenated hint for an underscore spelling.
[[noreturn]] void fail_unknown(const std::string& what, const std::string& key, const std::vector<std::string>& known) {
  std::string hint;
  std::string hyphenated = key;
  std::replace(hyphenated.begin(), hyphenated.end(), '_', '-');
  if (hyphenated != key && std::find(known.begin(), known.end(), hyphenated) != known.end())
    hint = fmt::format(" (keys are spelled with '-': '{}')", hyphenated);
  lab::fail_parameter("unknown {} '{}'{}; known: {}", what, key, hint, fmt::join(known, ", "));
}

json parse_text(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    lab::fail("{}: not valid JSON: {}", origin, e.what());
  }
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t p = s.find(',', start);
    std::string part = s.substr(start, p == std::string::npos ? std::string::npos : p - start);
    if (!part.empty()) out.push_back(part);
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

/// A scalar string read as the JSON value it spells, if it spells one.
bool parse_json_value(const std::string& text, json& out) {
  try {
    out = json::parse(text);
    return true;
  } catch (const json::parse_error&) {
    return false;
  }
}

/// The value `text` given for `key`, typed like `current` (see config.h).
json typed_value(const std::string& key, const std::string& text, const json* current) {
  json parsed;
  const bool is_json = parse_json_value(text, parsed);
  if (current == nullptr || current->is_null()) return is_json ? parsed : json(text);
  if (current->is_string()) return text;
  if (current->is_boolean()) {
    if (text == "true" || text == "on" || text == "yes" || text == "1") return true;
    if (text == "false" || text == "off" || text == "no" || text == "0") return false;
    lab::fail_parameter("-o {}={}: expected true or false", key, text);
  }
  if (current->is_number_integer() || current->is_number_unsigned()) {
    if (!is_json || !parsed.is_number_integer())
      lab::fail_parameter("-o {}={}: expected an integer", key, text);
    return parsed;
  }
  if (current->is_number()) {
    if (!is_json || !parsed.is_number()) lab::fail_parameter("-o {}={}: expected a number", key, text);
    return parsed;
  }
  if (current->is_array()) {
    if (is_json && parsed.is_array()) return parsed;
    json items = json::array();
    for (const std::string& part : split_commas(text)) {
      json item;
      items.push_back(parse_json_value(part, item) && !item.is_string() ? item : json(part));
    }
    return items;
  }
  if (!is_json || !parsed.is_object()) lab::fail_parameter("-o {}={}: expected a JSON object", key, text);
  return parsed;
}

void check_type(const json& config, const std::string& key, bool ok, const char* expected) {
  if (!ok) lab::fail_parameter("experiment key '{}' must be {}, got {}", key, expected, config.at(key).dump());
}

/// The members of `config` that are scalar settings (Settings::schema()).
json scalar_settings(const json& config) {
  json scalars = json::object();
  for (const std::string& key : Settings::schema().names())
    if (config.contains(key)) {
      if (config.at(key).is_object() || config.at(key).is_array() || config.at(key).is_null())
        lab::fail_parameter("experiment key '{}' must be a single value, got {}", key, config.at(key).dump());
      scalars[key] = config.at(key);
    }
  return scalars;
}

std::vector<std::string> without_extends() { return {top_keys().begin() + 1, top_keys().end()}; }

std::vector<std::string> string_list(const json& value, const std::string& key) {
  std::vector<std::string> out;
  if (!value.is_array()) lab::fail_parameter("experiment key '{}' must be a list of strings, got {}", key, value.dump());
  for (const json& item : value) {
    if (!item.is_string())
      lab::fail_parameter("experiment key '{}' must be a list of strings, got {}", key, value.dump());
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

const lab::Schema<Settings>& Settings::schema() {
  static const auto s =
      lab::Schema<Settings>()
          .field("name", &Settings::name, {.help = "the experiment's name, in the report (default: its file's name)"})
          .field("description", &Settings::description, {.help = "one paragraph, in the report"})
          .field("seed", &Settings::seed,
                 {.range = lab::at_least(0), .help = "the one seed: data, per-sample method and metric seeds derive from it"})
          .field("count", &Settings::count, {.range = lab::at_least(1), .help = "images per model"})
          .field("size", &Settings::size, {.range = lab::at_least(8), .help = "image side, given to every model's environment"})
          .field("unit", &Settings::unit,
                 {.range = lab::at_least(1),
                  .help = "images per work unit: the resumable piece of a run, one method call (execution only)"})
          .field("batch", &Settings::batch,
                 {.range = lab::at_least(1), .help = "largest number of inputs per network call (execution only)"})
          .field("reference", &Settings::reference,
                 {.range = lab::at_least(2),
                  .help = "the first min(reference, count) images are the methods' reference inputs"})
          .field("target", &Settings::target,
                 {.choices = {"label", "predicted"}, .help = "the output explained and scored"})
          .field("save-maps", &Settings::save_maps,
                 {.help = "keep every map as RUN_DIR/maps/<model>/<method>/<id>.npy (the attribute layout)"})
          .check([](const Settings& p, const std::string& flag) {
            if (p.name.empty()) lab::fail_value(flag, "name", p.name, "a non-empty string");
          });
  return s;
}

const std::vector<ShippedConfig>& shipped_configs() {
  static const std::vector<ShippedConfig> configs = [] {
    std::vector<ShippedConfig> out;
    for (const auto& [name, text] : embedded_config_texts()) {
      ShippedConfig c;
      c.name = name;
      c.raw = parse_text(text, "experiments/configs/" + name + ".json");
      c.description = c.raw.value("description", "");
      out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
  }();
  return configs;
}

std::vector<const ShippedConfig*> runnable_configs() {
  std::vector<const ShippedConfig*> out;
  for (const ShippedConfig& c : shipped_configs())
    if (c.name != "base") out.push_back(&c);
  return out;
}

json merge(const json& under, const json& over) {
  if (!under.is_object() || !over.is_object()) return over;
  json out = under;
  for (const auto& [key, value] : over.items()) {
    out[key] = out.contains(key) ? merge(out[key], value) : value;
  }
  return out;
}

namespace {

// A definition's "plugins" are paths relative to its own file: made absolute here, before the
// definition is merged with others.
json with_absolute_plugins(json config, const fs::path& base_dir) {
  if (config.contains("plugins") && config.at("plugins").is_array())
    for (json& p : config.at("plugins"))
      if (p.is_string()) p = (base_dir / p.get<std::string>()).lexically_normal().string();
  return config;
}

json resolve_recursive(const json& input, const fs::path& base_dir, const std::string& origin,
                       std::set<std::string>& seen) {
  if (!input.is_object()) lab::fail("{}: an experiment definition must be a JSON object", origin);
  const json config = with_absolute_plugins(input, fs::absolute(base_dir));
  // A file is known by its resolved path, so "./a.json" and "a.json" are one config.
  std::error_code ec;
  const bool shipped_origin = origin.rfind("experiments/configs/", 0) == 0;
  const std::string key = shipped_origin ? origin : fs::weakly_canonical(fs::absolute(origin), ec).string();
  if (!seen.insert(key).second) lab::fail("{}: 'extends' forms a cycle (it reaches {} again)", origin, origin);
  if (!config.contains("extends")) return config;
  const json& parent_ref = config.at("extends");
  if (!parent_ref.is_string()) lab::fail("{}: 'extends' must be a name or a path, got {}", origin, parent_ref.dump());
  const std::string parent = parent_ref.get<std::string>();
  json parent_config;
  std::string parent_origin;
  fs::path parent_dir = base_dir;
  const auto& shipped = shipped_configs();
  const auto it = std::find_if(shipped.begin(), shipped.end(), [&](const auto& c) { return c.name == parent; });
  const fs::path as_path = base_dir / parent;
  if (it != shipped.end() && !fs::is_regular_file(as_path)) {
    parent_config = it->raw;
    parent_origin = "experiments/configs/" + parent + ".json";
  } else if (fs::is_regular_file(as_path)) {
    parent_config = lab::read_json(as_path);
    parent_origin = as_path.string();
    parent_dir = as_path.parent_path();
  } else {
    std::vector<std::string> names;
    for (const auto& c : shipped) names.push_back(c.name);
    lab::fail("{}: extends '{}', which is neither a shipped experiment ({}) nor a file", origin, parent,
              fmt::join(names, ", "));
  }
  json resolved_parent = resolve_recursive(parent_config, parent_dir, parent_origin, seen);
  json own = config;
  own.erase("extends");
  return merge(resolved_parent, own);
}

}  // namespace

json resolve_extends(const json& config, const fs::path& base_dir, const std::string& origin) {
  std::set<std::string> seen;
  return resolve_recursive(config, base_dir, origin, seen);
}

json load_config(const std::string& name_or_path) {
  const auto& shipped = shipped_configs();
  const auto it = std::find_if(shipped.begin(), shipped.end(), [&](const auto& c) { return c.name == name_or_path; });
  if (it != shipped.end() && !fs::is_regular_file(name_or_path)) {
    json config = resolve_extends(it->raw, fs::current_path(), "experiments/configs/" + it->name + ".json");
    if (!config.contains("name")) config["name"] = it->name;
    return config;
  }
  if (fs::is_regular_file(name_or_path)) {
    const fs::path path = fs::absolute(name_or_path);
    json config = resolve_extends(lab::read_json(path), path.parent_path(), name_or_path);
    if (!config.contains("name") || config.at("name") == json("base"))
      config["name"] = fs::path(name_or_path).stem().string();
    return config;
  }
  std::vector<std::string> names;
  for (const ShippedConfig* c : runnable_configs()) names.push_back(c->name);
  lab::fail_parameter("experiment '{}' is neither a shipped experiment ({}) nor a file", name_or_path, fmt::join(names, ", "));
}

void apply_overrides(json& config, const std::vector<std::string>& items) {
  std::set<std::string> given;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) lab::fail_parameter("-o '{}': expected key=value", item);
    const std::string key = item.substr(0, eq);
    const std::string text = item.substr(eq + 1);
    if (!given.insert(key).second) lab::fail_parameter("-o {} given twice", key);

    std::vector<std::string> path;
    size_t start = 0;
    while (true) {
      const size_t p = key.find('.', start);
      path.push_back(key.substr(start, p == std::string::npos ? std::string::npos : p - start));
      if (p == std::string::npos) break;
      start = p + 1;
    }
    if (path[0] == "extends" || std::find(top_keys().begin(), top_keys().end(), path[0]) == top_keys().end())
      fail_unknown("experiment key", path[0], without_extends());

    json* node = &config;
    bool free_form = false;  // inside an "options"/"params" object, new keys are allowed
    for (size_t i = 0; i < path.size(); ++i) {
      const std::string& part = path[i];
      const bool last = i + 1 == path.size();
      if (node->is_array()) {
        json* next = nullptr;
        for (json& element : *node) {
          if (element.is_object() && element.value("label", "") == part) next = &element;
        }
        if (next == nullptr && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
          const size_t index = std::stoul(part);
          if (index < node->size()) next = &(*node)[index];
        }
        if (next == nullptr) {
          std::vector<std::string> labels;
          for (const json& element : *node)
            if (element.is_object() && element.contains("label")) labels.push_back(element.value("label", ""));
          lab::fail_parameter("-o {}: no element '{}' in the list (labels: {}; or an index below {})", key, part,
                              fmt::join(labels, ", "), node->size());
        }
        if (last) {
          *next = typed_value(key, text, next);
          break;
        }
        node = next;
        continue;
      }
      if (!node->is_object())
        lab::fail_parameter("-o {}: '{}' is inside a value that is not an object or a list", key, part);
      if (i == 0 && !node->contains(part) && defaults().contains(part)) (*node)[part] = defaults().at(part);
      if (!node->contains(part)) {
        const bool settings = part == "options" || part == "params";  // may be absent from an entry
        if (!free_form && !settings && i > 0) lab::fail_parameter("-o {}: unknown key '{}'", key, part);
        if (last) {
          (*node)[part] = typed_value(key, text, nullptr);
          break;
        }
        (*node)[part] = json::object();
      }
      if (last) {
        (*node)[part] = typed_value(key, text, &(*node)[part]);
        break;
      }
      free_form = part == "options" || part == "params";
      node = &(*node)[part];
    }
  }
}

json finalize(const json& input) {
  json config = merge(defaults(), input);
  config.erase("extends");
  for (const auto& [key, value] : config.items()) {
    if (std::find(top_keys().begin(), top_keys().end(), key) == top_keys().end())
      fail_unknown("experiment key", key, without_extends());
  }
  // The scalar settings: read, checked and written back typed by their schema.
  const Settings settings = Settings::schema().from_json(scalar_settings(config), "experiment");
  const json typed = Settings::schema().to_json(settings);
  for (const auto& [key, value] : typed.items()) config[key] = value;
  check_type(config, "report", config["report"].is_object(), "an object");
  check_type(config, "paper-scale", config["paper-scale"].is_object(), "an object of dotted keys and values");
  string_list(config["plugins"], "plugins");

  // Models: each gets the run's size.
  json models = json::array();
  std::set<std::string> model_labels;
  const std::vector<std::string> models_select = string_list(config["models-select"], "models-select");
  for (const json& m : config["models"]) {
    if (!m.is_object() || !m.contains("label") || !m["label"].is_string() || !m.contains("env") || !m["env"].is_string())
      lab::fail_parameter("each experiment model must be {{\"label\": ..., \"env\": ..., \"options\": {{...}}}}, got {}",
                          m.dump());
    for (const auto& [key, value] : m.items()) {
      if (key != "label" && key != "env" && key != "options")
        lab::fail_parameter("experiment model '{}': unknown key '{}'; known: label, env, options", m.value("label", ""), key);
    }
    json model = m;
    if (!model.contains("options")) model["options"] = json::object();
    if (!model["options"].is_object())
      lab::fail_parameter("experiment model '{}': options must be an object", model.value("label", ""));
    if (model["options"].contains("size") && model["options"]["size"] != config["size"])
      lab::fail_parameter("experiment model '{}': options.size = {} would be ignored; the image size of every model "
                          "is the experiment's size ({}): set size instead",
                          model.value("label", ""), model["options"]["size"].dump(), config["size"].dump());
    model["options"]["size"] = config["size"];
    const std::string label = model["label"];
    if (!model_labels.insert(label).second) lab::fail_parameter("experiment model label '{}' given twice", label);
    if (!models_select.empty() && std::find(models_select.begin(), models_select.end(), label) == models_select.end())
      continue;
    models.push_back(model);
  }
  for (const std::string& s : models_select) {
    if (!model_labels.count(s))
      lab::fail_parameter("models-select: no model '{}'; models: {}", s,
                          fmt::join(model_labels, ", "));
  }
  if (models.empty()) lab::fail_parameter("experiment '{}' has no model", config["name"].get<std::string>());
  config["models"] = models;

  // Methods, restricted to `select`.
  const std::vector<std::string> select = string_list(config["select"], "select");
  json methods = json::array();
  std::set<std::string> labels, slugs;
  for (const json& given : config["methods"]) {
    json m = given;
    if (m.is_object() && m.contains("maps")) {
      // An outside method: {"name" or "label": ..., "maps": DIR, "models"?}.
      if (!m["maps"].is_string() || m["maps"].get<std::string>().empty())
        lab::fail_parameter("experiment method {}: \"maps\" must name a directory", m.dump());
      if (m.contains("label") == m.contains("name") || !m.value("label", m.value("name", json())).is_string())
        lab::fail_parameter("an outside experiment method is {{\"name\": ..., \"maps\": DIR}} (or \"label\" for "
                            "\"name\"), got {}",
                            m.dump());
      for (const auto& [key, value] : m.items())
        if (key != "label" && key != "name" && key != "maps" && key != "models")
          lab::fail_parameter("outside experiment method {}: unknown key '{}'; known: name, maps, models", m.dump(), key);
      if (m.contains("name")) {
        m["label"] = m["name"];
        m.erase("name");
      }
    } else {
      if (!m.is_object() || !m.contains("label") || !m["label"].is_string() || !m.contains("name") ||
          !m["name"].is_string())
        lab::fail_parameter(
            "each experiment method must be {{\"label\": ..., \"name\": ..., \"params\": {{...}}}} or, made "
            "outside, {{\"name\": ..., \"maps\": DIR}}, got {}",
            m.dump());
      for (const auto& [key, value] : m.items()) {
        if (key != "label" && key != "name" && key != "params" && key != "models")
          lab::fail_parameter("experiment method '{}': unknown key '{}'; known: label, name, params, models (or maps)",
                              m.value("label", ""), key);
      }
    }
    json method = m;
    if (!method.contains("params")) method["params"] = json::object();
    if (!method["params"].is_object())
      lab::fail_parameter("experiment method '{}': params must be an object", method.value("label", ""));
    if (!method.contains("models")) method["models"] = json::array();
    for (const std::string& model : string_list(method["models"], "methods." + method.value("label", "") + ".models")) {
      if (!model_labels.count(model))
        lab::fail_parameter("experiment method '{}': no model '{}'", method.value("label", ""), model);
    }
    const std::string label = method["label"];
    if (!labels.insert(label).second) lab::fail_parameter("experiment method label '{}' given twice", label);
    if (!slugs.insert(slugify(label)).second)
      lab::fail_parameter("experiment method label '{}' clashes with another as a directory name ('{}')", label,
                          slugify(label));
    if (!select.empty() && std::find(select.begin(), select.end(), label) == select.end()) continue;
    methods.push_back(method);
  }
  for (const std::string& s : select) {
    if (!labels.count(s))
      lab::fail_parameter("select: no method '{}'; methods: {}", s,
                          fmt::join(labels, ", "));
  }
  if (methods.empty()) lab::fail_parameter("experiment '{}' has no method", config["name"].get<std::string>());
  config["methods"] = methods;
  const std::vector<std::string> all_methods(labels.begin(), labels.end());

  // Metrics: each is known by its label (its name when it has none): the `metric` column of its
  // rows, what studies name. Labels are unique and never another metric's name, so two
  // configurations of one metric stay apart and no row is taken for another metric's.
  json metrics = json::array();
  std::set<std::string> metric_names;
  std::map<std::string, std::vector<std::string>> models_of_label;
  std::set<std::string> registered = {"method"};  // "method": the rows of the methods' completeness gaps
  for (const MetricInfo& info : registry()) registered.insert(info.name);
  for (const json& m : config["metrics"]) {
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string())
      lab::fail_parameter("each experiment metric must be {{\"name\": ..., \"params\": {{...}}}}, got {}", m.dump());
    for (const auto& [key, value] : m.items()) {
      if (key != "name" && key != "label" && key != "params" && key != "models")
        lab::fail_parameter("experiment metric '{}': unknown key '{}'; known: name, label, params, models",
                            m.value("name", ""), key);
    }
    const std::string name = m["name"];
    if (m.contains("label")) {
      const json& label = m["label"];
      const bool word = label.is_string() && lab::is_key_spelling(label.get<std::string>()) &&
                        label.get<std::string>().find('.') == std::string::npos;
      if (!word)
        lab::fail_parameter("experiment metric '{}': label = {}; expected lower-case words joined by '-' "
                            "(e.g. \"{}-blur\")",
                            name, label.dump(), name);
      if (label.get<std::string>() != name && registered.count(label.get<std::string>()))
        lab::fail_parameter("experiment metric '{}': label '{}' is the name of another metric; choose a label no "
                            "metric is named",
                            name, label.get<std::string>());
    }
    json metric = m;
    const std::string label = metric.value("label", name);
    if (!metric.contains("params")) metric["params"] = json::object();
    if (!metric.contains("models")) metric["models"] = json::array();
    for (const std::string& model : string_list(metric["models"], "metrics." + label + ".models")) {
      if (!model_labels.count(model))
        lab::fail_parameter("experiment metric '{}': no model '{}'", label, model);
    }
    // One label may be given twice only for disjoint sets of models (each entry then scores its
    // own models, and every model's rows still have one configuration per label).
    const std::vector<std::string> on = string_list(metric["models"], "metrics." + label + ".models");
    std::vector<std::string>& taken = models_of_label[label];
    const bool clash = !metric_names.insert(label).second &&
                       (on.empty() || taken.empty() ||
                        std::any_of(on.begin(), on.end(), [&](const std::string& x) {
                          return std::find(taken.begin(), taken.end(), x) != taken.end();
                        }));
    if (clash)
      lab::fail_parameter("experiment metric label '{}' given twice for one model; give each configuration of a "
                          "metric its own \"label\"",
                          label);
    taken.insert(taken.end(), on.begin(), on.end());
    metrics.push_back(metric);
  }
  config["metrics"] = metrics;
  check_studies(config["report"], std::vector<std::string>(model_labels.begin(), model_labels.end()), all_methods,
                std::vector<std::string>(metric_names.begin(), metric_names.end()));
  return config;
}

bool MethodSpec::runs_on(const std::string& model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

bool MetricSpec::runs_on(const std::string& model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

Experiment Experiment::from_json(const json& resolved) {
  Experiment e;
  e.resolved = resolved;
  static_cast<Settings&>(e) = Settings::schema().from_json(scalar_settings(resolved), "experiment");
  for (const json& m : resolved.at("models")) e.models.push_back({m.at("label"), m.at("env"), m.at("options")});
  for (const json& m : resolved.at("methods")) {
    MethodSpec s{m.at("label"), slugify(m.at("label")), m.value("name", ""), m.value("maps", ""), m.at("params"),
                 m.at("models").get<std::vector<std::string>>()};
    e.methods.push_back(std::move(s));
  }
  for (const json& m : resolved.at("metrics"))
    e.metrics.push_back({m.at("name"), m.value("label", m.at("name").get<std::string>()), m.at("params"),
                         m.at("models").get<std::vector<std::string>>()});
  e.report = resolved.at("report");
  e.plugins = resolved.value("plugins", std::vector<std::string>{});
  return e;
}

std::unique_ptr<datasets::Environment> make_model_environment(const ModelSpec& model) {
  lab::Options options = lab::Options::from_json(model.options, "-o models." + model.label + ".options");
  return datasets::make_environment(model.env, options);
}

std::unique_ptr<attributions::Method> make_spec_method(const MethodSpec& method) {
  lab::Options params = lab::Options::from_json(method.params, "-p methods." + method.label + ".params");
  return attributions::make_method(method.name, params);
}

std::vector<std::unique_ptr<Metric>> make_model_metrics(const Experiment& experiment, const ModelSpec& model) {
  std::vector<std::unique_ptr<Metric>> out;
  const MetricSetup setup = MetricSetup::of(*make_model_environment(model));
  for (const MetricSpec& ms : experiment.metrics) {
    if (!ms.runs_on(model.label)) continue;
    lab::Options params = lab::Options::from_json(ms.params, "-p metrics." + ms.label + ".params");
    out.push_back(make_metric(ms.name, params, setup));
    params.finish();
    if (ms.label != ms.name) out.back()->set_label(ms.label);
  }
  return out;
}

void check_experiment(const Experiment& experiment) {
  std::map<std::string, std::map<std::string, std::vector<std::string>>> variants;  // model → metric → variants
  for (const std::string& plugin : experiment.plugins) attributions::load_plugin(plugin);
  for (const ModelSpec& model : experiment.models) {
    make_model_environment(model);
    for (const auto& metric : make_model_metrics(experiment, model))
      for (const Variant& v : metric->variants()) variants[model.label][metric->label()].push_back(v.name);
  }
  for (const MethodSpec& method : experiment.methods)
    if (method.maps.empty()) make_spec_method(method);  // outside maps are checked with the data (run.cpp)
  check_study_variants(experiment.report, variants);
}

std::string slugify(const std::string& label) {
  std::string out;
  bool dash = false;
  for (unsigned char c : label) {
    std::string piece;
    if (std::isalnum(c)) {
      piece = std::string(1, static_cast<char>(std::tolower(c)));
    } else if (c == '*') {
      piece = "star";
      if (!out.empty()) dash = true;
    } else {
      dash = !out.empty();
      continue;
    }
    if (dash) out += '-';
    dash = false;
    out += piece;
  }
  return out.empty() ? "method" : out;
}

uint64_t data_seed(const Experiment& experiment) { return static_cast<uint64_t>(experiment.seed); }

uint64_t sample_seed(uint64_t seed, const std::string& label, int64_t index) {
  return lab::splitmix64(lab::splitmix64(seed ^ lab::fnv1a(label)) + static_cast<uint64_t>(index));
}

json seeds_record(const Experiment& experiment) {
  json methods = json::object();
  for (const MethodSpec& m : experiment.methods) methods[m.label] = sample_seed(experiment.seed, m.label, 0);
  return {{"seed", experiment.seed},
          {"data", data_seed(experiment)},
          {"per-sample", "seed of (method label, sample index) = splitmix64(splitmix64(seed ^ fnv1a(label)) + index)"},
          {"methods-sample0", methods}};
}

}  // namespace experiments
