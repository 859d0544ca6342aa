#include "lab/core/options.h"

#include <charconv>
#include <cmath>

#include "lab/core/error.h"

namespace lab {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  size_t b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

bool parse_double(const std::string& text, double& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  try {
    size_t used = 0;
    out = std::stod(t, &used);
    return used == t.size() && std::isfinite(out);
  } catch (const std::exception&) {
    return false;
  }
}

bool parse_int(const std::string& text, int64_t& out) {
  const std::string t = trim(text);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size() && !t.empty();
}

}  // namespace

Options Options::parse(const std::vector<std::string>& items, std::string flag) {
  Options o(std::move(flag));
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail_parameter("{} '{}': expected key=value", o.flag_, item);
    const std::string key = item.substr(0, eq);
    if (o.has(key)) fail_parameter("{} {} given twice", o.flag_, key);
    o.values_[key] = item.substr(eq + 1);
  }
  return o;
}

Options Options::from_json(const nlohmann::json& object, std::string flag) {
  Options o(std::move(flag));
  if (!object.is_object()) fail_parameter("{} settings must be a JSON object, got {}", o.flag_, object.dump());
  for (const auto& [key, value] : object.items()) {
    if (value.is_string()) {
      o.values_[key] = value.get<std::string>();
    } else if (value.is_array()) {
      std::string joined;
      for (size_t i = 0; i < value.size(); ++i) {
        joined += (i ? "," : "") + (value[i].is_string() ? value[i].get<std::string>() : value[i].dump());
      }
      o.values_[key] = joined;
    } else if (value.is_null()) {
      o.values_[key] = "auto";  // a default derived from other settings (lab::option_text)
    } else {
      o.values_[key] = value.dump();
    }
  }
  return o;
}

const std::string* Options::raw(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  read_.insert(key);
  return &it->second;
}

std::string Options::get_string(const std::string& key, const std::string& fallback) {
  const std::string* v = raw(key);
  return v ? *v : fallback;
}

std::string Options::get_choice(const std::string& key, const std::string& fallback,
                                const std::vector<std::string>& choices) {
  const std::string v = get_string(key, fallback);
  for (const std::string& c : choices)
    if (c == v) return v;
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i) list += (i ? "|" : "") + choices[i];
  fail_parameter("{} {}={}: expected one of {}", flag_, key, v, list);
}

int64_t Options::get_int(const std::string& key, int64_t fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  int64_t out = 0;
  if (!parse_int(*v, out)) fail_parameter("{} {}={}: expected an integer", flag_, key, *v);
  return out;
}

double Options::get_double(const std::string& key, double fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  double out = 0;
  if (!parse_double(*v, out)) fail_parameter("{} {}={}: expected a finite number", flag_, key, *v);
  return out;
}

bool Options::get_bool(const std::string& key, bool fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  if (*v == "on" || *v == "true" || *v == "yes" || *v == "1") return true;
  if (*v == "off" || *v == "false" || *v == "no" || *v == "0") return false;
  fail_parameter("{} {}={}: expected on or off", flag_, key, *v);
}

std::vector<double> Options::get_doubles(const std::string& key, const std::vector<double>& fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  std::vector<double> out;
  for (const std::string& part : split(*v, ',')) {
    double d = 0;
    if (!parse_double(part, d)) fail_parameter("{} {}={}: expected comma-separated numbers", flag_, key, *v);
    out.push_back(d);
  }
  return out;
}

std::vector<int64_t> Options::get_ints(const std::string& key, const std::vector<int64_t>& fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  std::vector<int64_t> out;
  for (const std::string& part : split(*v, ',')) {
    int64_t d = 0;
    if (!parse_int(part, d)) fail_parameter("{} {}={}: expected comma-separated integers", flag_, key, *v);
    out.push_back(d);
  }
  return out;
}

std::vector<std::string> Options::unread() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_)
    if (!read_.count(k)) out.push_back(k);
  return out;
}

void Options::finish(const std::vector<std::string>& known) const {
  const std::vector<std::string> left = unread();
  if (left.empty()) return;
  std::string list;
  for (size_t i = 0; i < known.size(); ++i) list += (i ? ", " : "") + known[i];
  // Keys are spelled with '-' between words (schema.h); the '_' spelling gets the right key.
  std::string hyphenated = left[0];
  for (char& c : hyphenated)
    if (c == '_') c = '-';
  for (const std::string& k : known)
    if (k == hyphenated && k != left[0])
      fail_parameter("unknown option {} {}={}: keys are spelled with '-', use {} {}", flag_, left[0],
                     values_.at(left[0]), flag_, k);
  fail_parameter("unknown option {} {}={}{}{}", flag_, left[0], values_.at(left[0]),
                 known.empty() ? "" : "; known: ", list);
}

void require(bool ok, const std::string& name, const std::string& what, const std::string& value) {
  if (!ok) fail_parameter("{} must be {}, got {}", name, what, value);
}

}  // namespace lab
