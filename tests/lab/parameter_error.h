/// @file parameter_error.h
/// @brief The message of the parameter error a call throws, for the option and schema tests.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "lab/core/error.h"

namespace {

/// The message of the lab::Error `call` throws (kind checked), or "" if it throws none.
inline std::string parameter_error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const lab::Error& e) {
    CHECK(e.kind() == lab::ErrorKind::kParameter);
    return e.what();
  }
  return "";
}

}  // namespace
