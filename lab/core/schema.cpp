#include "lab/core/schema.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace lab {

const char* type_name(ParamType type) {
  switch (type) {
    case ParamType::kInt: return "int";
    case ParamType::kFloat: return "float";
    case ParamType::kBool: return "bool";
    case ParamType::kEnum: return "enum";
    case ParamType::kString: return "string";
    case ParamType::kPath: return "path";
    case ParamType::kIntList: return "int-list";
    case ParamType::kFloatList: return "float-list";
    case ParamType::kStringList: return "string-list";
  }
  return "string";
}

bool Range::contains(double value) const {
  if (min && (min_open ? !(value > *min) : !(value >= *min))) return false;
  if (max && (max_open ? !(value < *max) : !(value <= *max))) return false;
  return true;
}

namespace {

std::string number_text(double v) { return fmt::format("{}", v); }

}  // namespace

std::string Range::describe() const {
  if (min && max)
    return fmt::format("in {}{}, {}{}", min_open ? "(" : "[", number_text(*min), number_text(*max), max_open ? ")" : "]");
  if (min) return fmt::format("{} {}", min_open ? ">" : "≥", number_text(*min));
  if (max) return fmt::format("{} {}", max_open ? "<" : "≤", number_text(*max));
  return "";
}

nlohmann::json Range::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  if (min) {
    out["min"] = *min;
    out["min-open"] = min_open;
  }
  if (max) {
    out["max"] = *max;
    out["max-open"] = max_open;
  }
  return out;
}

Range at_least(double min) { return Range{.min = min}; }
Range above(double min) { return Range{.min = min, .min_open = true}; }
Range at_most(double max) { return Range{.max = max}; }
Range between(double min, double max) { return Range{.min = min, .max = max}; }

std::string option_text(const nlohmann::json& value) {
  if (value.is_null()) return "auto";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "on" : "off";
  if (value.is_number_float()) return number_text(value.get<double>());
  if (value.is_array()) {
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) out += (i ? "," : "") + option_text(value[i]);
    return out;
  }
  return value.dump();
}

nlohmann::json ParamDoc::to_json() const {
  nlohmann::json out = {{"name", name}, {"type", type_name(type)}, {"default", default_value}};
  if (default_value.is_null() && !info.derived.empty()) out["derived"] = info.derived;
  const nlohmann::json range = info.range.to_json();
  for (const auto& [key, value] : range.items()) out[key] = value;
  if (!info.choices.empty()) out["choices"] = info.choices;
  out["help"] = info.help;
  if (!info.source.empty()) out["source"] = info.source;
  return out;
}

std::string ParamDoc::default_text() const { return option_text(default_value); }

std::string ParamDoc::expected() const {
  const std::string range = info.range.describe();
  const std::string ranged = range.empty() ? "" : " " + range;
  std::string choices;
  for (size_t i = 0; i < info.choices.size(); ++i) choices += (i ? "|" : "") + info.choices[i];
  std::string what;
  switch (type) {
    case ParamType::kInt: what = "an integer" + ranged; break;
    case ParamType::kFloat: what = "a finite number" + ranged; break;
    case ParamType::kBool: what = "on or off"; break;
    case ParamType::kEnum: what = "one of " + choices; break;
    case ParamType::kString: what = "a string"; break;
    case ParamType::kPath: what = "a path"; break;
    case ParamType::kIntList: what = "comma-separated integers" + (range.empty() ? "" : ", each " + range); break;
    case ParamType::kFloatList: what = "comma-separated finite numbers" + (range.empty() ? "" : ", each " + range); break;
    case ParamType::kStringList:
      what = choices.empty() ? "a comma-separated list" : "a comma-separated list of " + choices;
      break;
  }
  if (!info.expect.empty()) what = info.expect;
  if (!info.derived.empty()) what += " (or auto: " + info.derived + ")";
  return what;
}

void fail_value(const std::string& flag, const std::string& name, const std::string& text, const std::string& what) {
  fail_parameter("{}{}{}={}: must be {}", flag, flag.empty() ? "" : " ", name, text, what);
}

bool is_key_spelling(const std::string& key) {
  if (key.empty()) return false;
  char previous = '-';
  for (char c : key) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!word && c != '-' && c != '.') return false;
    if (!word && (previous == '-' || previous == '.')) return false;
    previous = c;
  }
  return previous != '-' && previous != '.';
}

Codec<uint64_t> seed_codec() {
  Codec<uint64_t> codec;
  codec.type = ParamType::kInt;
  codec.parse = [](const std::string& text) -> std::optional<uint64_t> {
    uint64_t value = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
    return value;
  };
  codec.show = [](const uint64_t& value) { return nlohmann::json(value); };
  codec.expect = "an integer in 0..18446744073709551615";
  return codec;
}

std::vector<std::string> param_names(const std::vector<ParamDoc>& docs) {
  std::vector<std::string> out;
  for (const ParamDoc& d : docs) out.push_back(d.name);
  return out;
}

nlohmann::json docs_json(const std::vector<ParamDoc>& docs) {
  nlohmann::json out = nlohmann::json::array();
  for (const ParamDoc& d : docs) out.push_back(d.to_json());
  return out;
}

namespace schema_detail {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  const size_t b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

bool parse_integer(const std::string& text, int64_t& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size();
}

bool parse_number(const std::string& text, double& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size() && std::isfinite(out);
}

bool parse_boolean(const std::string& text, bool& out) {
  const std::string t = trim(text);
  if (t == "on" || t == "true" || t == "yes" || t == "1") {
    out = true;
    return true;
  }
  if (t == "off" || t == "false" || t == "no" || t == "0") {
    out = false;
    return true;
  }
  return false;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t p = text.find(',', start);
    out.push_back(trim(text.substr(start, p == std::string::npos ? std::string::npos : p - start)));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

void add_field(std::vector<SchemaField>& fields, SchemaField f) {
  LAB_CHECK(is_key_spelling(f.doc.name), "parameter key '{}' must be lower-case words joined by '-'", f.doc.name);
  for (const SchemaField& g : fields) LAB_CHECK(g.doc.name != f.doc.name, "parameter '{}' declared twice", f.doc.name);
  fields.push_back(std::move(f));
}

namespace {

void* member_of(void* p, const SchemaField& f) { return static_cast<char*>(p) + f.offset; }
const void* member_of(const void* p, const SchemaField& f) { return static_cast<const char*>(p) + f.offset; }

}  // namespace

void read_fields(const std::vector<SchemaField>& fields, Options& options, void* p) {
  for (const SchemaField& f : fields) {
    const std::string* text = options.raw(f.doc.name);
    if (text && !f.access->set(member_of(p, f), *text)) fail_value(options.flag(), f.doc.name, *text, f.doc.expected());
  }
}

void validate_fields(const std::vector<SchemaField>& fields, const void* p, const std::string& flag) {
  for (const SchemaField& f : fields) {
    const nlohmann::json value = f.access->get(member_of(p, f));
    if (value.is_null()) continue;
    const std::string text = option_text(value);
    if (!f.access->set(nullptr, text)) fail_value(flag, f.doc.name, text, f.doc.expected());
  }
}

nlohmann::json fields_json(const std::vector<SchemaField>& fields, const void* p) {
  nlohmann::json out = nlohmann::json::object();
  for (const SchemaField& f : fields) out[f.doc.name] = f.access->get(member_of(p, f));
  return out;
}

std::vector<ParamDoc> fields_docs(const std::vector<SchemaField>& fields, const void* defaults) {
  std::vector<ParamDoc> out;
  for (const SchemaField& f : fields) {
    ParamDoc d = f.doc;
    d.default_value = f.access->get(member_of(defaults, f));
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::string> field_names(const std::vector<SchemaField>& fields) {
  std::vector<std::string> out;
  for (const SchemaField& f : fields) out.push_back(f.doc.name);
  return out;
}

}  // namespace schema_detail

}  // namespace lab
