/// @file bench_cli.h
/// @brief The benchmarks' command lines (CLI11, as the attrlab command's in cli/): `--help` lists
/// every option with its default; an unknown flag, a missing value or a bad number is one line
/// `<program>: error: <flag>: <what was expected>` on stderr and exit code 1 (attrlab's code for
/// what the user typed, cli/main.cpp), before any work starts.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lab/core/error.h"
#include "lab/core/runtime.h"
#include "lab/core/schema.h"

namespace bench {

/// The exit code of a usage error, attrlab's (lab::ErrorKind::kUsage).
inline constexpr int kUsageExit = static_cast<int>(lab::ErrorKind::kUsage);

/// A benchmark's command line, named `program`: a repeated option keeps its last value, as the
/// benchmarks' hand-written parsers did (list options say otherwise), and --help shows each
/// option's default (the variable's value when the option is added).
struct App : CLI::App {
  App(std::string description, std::string program) : CLI::App(std::move(description), std::move(program)) {
    option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->always_capture_default();
  }
};

/// Parses the command line. Empty to go on; otherwise the exit code to return at once: 0 after
/// --help (printed on stdout), kUsageExit after a usage error (printed as one line on stderr).
inline std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !app.remaining().empty())
      what = app.remaining().front() + ": unknown argument (see --help)";
    else if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr)  // "<flag>: 1 required TYPE missing"
      what = what.substr(0, what.find(':')) + ": expected a value after it";
    else if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.ends_with(" is required"))
      what = what.substr(0, what.size() - 12) + ": required (see --help)";
    fmt::print(stderr, "{}: error: {}\n", app.get_name(), what);
    return kUsageExit;
  }
}

/// The integer `text` is, when it is one (decimal, all of it, as attrlab's key=value options read it) in min..max.
inline std::optional<int64_t> integer_in(const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  if (!lab::schema_detail::parse_integer(text, value) || value < min || value > max) return std::nullopt;
  return value;
}

/// What integer_in expects, for an error message.
inline std::string integer_expected(int64_t min, int64_t max) {
  if (max == std::numeric_limits<int>::max() || max == std::numeric_limits<int64_t>::max())
    return fmt::format("an integer of at least {}", min);
  return fmt::format("an integer in {}..{}", min, max);
}

/// A check of an integer option: min..max (max by default the largest int, so that the value fits
/// in an int option).
inline CLI::Validator integer(int64_t min, int64_t max = std::numeric_limits<int>::max()) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        if (integer_in(text, min, max)) return {};
        return fmt::format("expected {}, got '{}'", integer_expected(min, max), text);
      },
      "");
}

/// A check of a number of seconds: a finite number greater than 0.
inline CLI::Validator positive_seconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (lab::schema_detail::parse_number(text, value) && value > 0) return {};  // finite, all of it
        return fmt::format("expected a number of seconds greater than 0, got '{}'", text);
      },
      "");
}

/// A check of a thread count: lab::parse_threads's (1 to 4 × the cores).
inline CLI::Validator threads() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          (void)lab::parse_threads(text, "'" + text + "'");
          return {};
        } catch (const lab::Error& e) {
          return e.what();
        }
      },
      "");
}

/// A comma-separated list of integers of at least `min` ("1,32,64"; "" for none); a repeated
/// option replaces the list.
inline CLI::Option* add_integer_list(CLI::App& app, const std::string& name, std::vector<int64_t>& out,
                                     const std::string& description, int64_t min = 1) {
  std::string shown;
  for (const int64_t v : out) shown += (shown.empty() ? "" : ",") + std::to_string(v);
  const auto limit = std::numeric_limits<int64_t>::max();
  return app
      .add_option_function<std::string>(
          name,
          [&out, min, limit](const std::string& text) {
            out.clear();
            if (!text.empty())
              for (const std::string& item : lab::schema_detail::split_list(text)) out.push_back(*integer_in(item, min, limit));
          },
          description)
      ->type_name("LIST")
      ->default_str(shown)
      ->check(CLI::Validator(
          [min, limit](std::string& text) -> std::string {
            if (text.empty()) return {};
            for (const std::string& item : lab::schema_detail::split_list(text))
              if (!integer_in(item, min, limit))
                return fmt::format("expected a comma-separated list of integers, each at least {}, got '{}'", min,
                                   text);
            return {};
          },
          ""));
}

/// A comma-separated list of names ("a,b"); repeated options add to the list.
inline CLI::Option* add_name_list(CLI::App& app, const std::string& name, std::vector<std::string>& out,
                                  const std::string& description, const std::string& shown_default) {
  return app
      .add_option_function<std::vector<std::string>>(
          name,
          [&out](const std::vector<std::string>& values) {
            for (const std::string& value : values)
              for (std::string& item : lab::schema_detail::split_list(value)) out.push_back(std::move(item));
          },
          description)
      ->type_name("LIST")
      ->default_str(shown_default)
      ->allow_extra_args(false);
}

}  // namespace bench
