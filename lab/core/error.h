/// @file error.h
/// @brief Errors for bad input (lab::Error) and always-on invariant checks (LAB_CHECK).
///
/// Bad user input (a file, a flag, a parameter) throws lab::Error whose message is one line
/// naming what was given and what was expected. A broken internal invariant is a bug: LAB_CHECK
/// prints file:line and aborts, in every build type (never stripped like assert()).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace lab {

/// What went wrong, for the CLI's exit code.
enum class ErrorKind {
  kParameter = 1,  ///< what the user typed: an unknown name, an impossible value (as a usage error)
  kUsage = 1,      ///< a command-line flag, value or path that cannot be used (e.g. an --out that is a device)
  kInput = 2,      ///< a missing or malformed file, a bad shape, NaN/Inf in data
};

/// One-line, user-facing error. The CLI prints what() and exits with the kind's code.
class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, ErrorKind kind = ErrorKind::kInput)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// Throws lab::Error(kInput) formatted with fmt.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), ErrorKind::kInput);
}

/// Throws lab::Error(kUsage) formatted with fmt.
template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), ErrorKind::kUsage);
}

/// Throws lab::Error(kParameter) formatted with fmt.
template <typename... Args>
[[noreturn]] void fail_parameter(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), ErrorKind::kParameter);
}

[[noreturn]] void check_failed(const char* file, int line, const char* condition, const std::string& note);

}  // namespace lab

/// Always-on invariant check: aborts with file:line and the condition. Not for user input.
#define LAB_CHECK(condition, ...)                                                              \
  do {                                                                                         \
    if (!(condition)) ::lab::check_failed(__FILE__, __LINE__, #condition, ::fmt::format("" __VA_ARGS__)); \
  } while (0)
