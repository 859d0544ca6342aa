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
    static const lab::Schema<Params>& schema();  ///< no parameters
  };
  explicit RandomMap(Params params) : params_(params) {}
  std::string name() const override { return "random"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class ConstantMap final : public Method {
 public:
  struct Params {
    double value = 1.0;
    static const lab::Schema<Params>& schema();
  };
  explicit ConstantMap(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "constant"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

}  // namespace attributions
