/// @file controls.h
/// @brief The paper's control "methods" (App. F.2): maps that ignore the network.
///
/// - `random`: every value (each channel of each pixel, like a uniform random tensor shaped like
///   the input) drawn from U(0, 1), from the sample's own seed (lab::Rng), so a map is
///   reproducible by seed and independent of the batch it came in.
/// - `constant`: every value `value` (paper: 1.0).
/// Neither evaluates the network. Tested in test_gradient_methods.cpp: random is reproducible by
/// seed, differs across seeds, lies in [0, 1) with mean ≈ 1/2; constant is exactly the value.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class RandomMap final : public Method {
 public:
  struct Params {
    void validate() const {}
    static Params from_options(lab::Options& options);
    nlohmann::json to_json() const { return nlohmann::json::object(); }
  };
  explicit RandomMap(Params params) : params_(params) {}
  std::string name() const override { return "random"; }
  nlohmann::json params() const override { return params_.to_json(); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class ConstantMap final : public Method {
 public:
  struct Params {
    double value = 1.0;
    void validate() const;
    static Params from_options(lab::Options& options);
    nlohmann::json to_json() const { return {{"value", value}}; }
  };
  explicit ConstantMap(Params params) : params_(params) { params_.validate(); }
  std::string name() const override { return "constant"; }
  nlohmann::json params() const override { return params_.to_json(); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

}  // namespace attributions
