/// @file options.h
/// @brief `key=value` settings from the command line (`-o` for environments and experiments,
/// `-p` for methods and metrics), read into a component's `Params` struct.
///
/// Every component reads the keys it knows with the typed getters below, then calls finish(),
/// which refuses any key that nobody read ("unknown option -o foo=1; known: a, b"). Values that
/// do not parse name the flag, the key, the value and the expected form. Tested in test_options.cpp.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lab {

class Options {
 public:
  /// `flag` is how the user wrote these settings ("-o" or "-p"), used in messages.
  explicit Options(std::string flag = "-o") : flag_(std::move(flag)) {}
  /// Parses "key=value" items; a repeated key or an item without '=' is an error.
  static Options parse(const std::vector<std::string>& items, std::string flag);
  /// Settings from a JSON object (numbers, strings, booleans; arrays become comma lists).
  static Options from_json(const nlohmann::json& object, std::string flag);

  void set(const std::string& key, std::string value) { values_[key] = std::move(value); }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  const std::string& flag() const { return flag_; }
  /// The raw string of a key, if given (marks it read).
  const std::string* raw(const std::string& key);

  std::string get_string(const std::string& key, const std::string& fallback);
  /// One of `choices`, else an error listing them.
  std::string get_choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& choices);
  int64_t get_int(const std::string& key, int64_t fallback);
  double get_double(const std::string& key, double fallback);
  /// on/off, true/false, yes/no, 1/0.
  bool get_bool(const std::string& key, bool fallback);
  /// Comma-separated numbers ("3,5,5").
  std::vector<double> get_doubles(const std::string& key, const std::vector<double>& fallback);
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& fallback);

  /// Throws lab::Error if a key was given that no getter read. `known` lists the accepted keys.
  void finish(const std::vector<std::string>& known = {}) const;
  /// Keys that were given but not (yet) read.
  std::vector<std::string> unread() const;
  const std::map<std::string, std::string>& items() const { return values_; }

 private:
  std::string flag_;
  std::map<std::string, std::string> values_;
  std::set<std::string> read_;
};

/// Throws lab::Error(kParameter) "NAME must be WHAT, got VALUE" unless `ok`.
void require(bool ok, const std::string& name, const std::string& what, const std::string& value);

}  // namespace lab
