/// @file number_checker.h
/// @brief The neural number checker of App. C.1: I_{>i}(x) (eq. 6) and I_N(x) (eq. 7).
///
///   I_{>i}(x) = ReLU(ReLU(x − i) − ReLU(x − i − 1))          (eq. 6)
///   I_N(x)    = ReLU(I_{>N−1}(x) − I_{>N}(x))                 (eq. 7)
///
/// For integer x, I_{>i}(x) = 1 if x > i else 0, and I_N(x) = 1 if x = N else 0. For real x they
/// are the ramp clamp(x − i, 0, 1) and the hat max(0, 1 − |x − N|): what gradient methods see.
/// Layers, literally as written (Fig. 10, 11): I_{>i} is two affine layers (2 units, then 1);
/// I_N is three (4 units x−(N−1), x−N, x−N, x−N−1; then I_{>N−1}, I_{>N}; then I_N), each affine
/// layer followed by a ReLU.
///
/// A *bank* evaluates many checks side by side on a vector of channels, in parallel layers of equal
/// depth, optionally carrying some channels through unchanged (the colour detector checks the
/// three components of each colour; the modulo unit's f3 (eq. 10) outputs x_i next to I_N(x_i)).
/// Carried channels must be non-negative (a ReLU passes them unchanged).
/// Tested in test_number_checker.cpp: exhaustively on the integers −5..300 against x > i and
/// x = N, on the ramp and hat for real x, and banks against their single checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/schema.h"
#include "lab/nn/network.h"
#include "networks/model.h"

namespace networks {

/// One output of a checker bank.
struct CheckItem {
  enum class Kind {
    kCarry,    ///< the input channel itself (must be >= 0)
    kGreater,  ///< I_{>value}(channel), eq. 6
    kEqual,    ///< I_value(channel), eq. 7
  };
  Kind kind = Kind::kCarry;
  int64_t channel = 0;
  int64_t value = 0;
};

/// The affine stages of a bank on `in` channels whose outputs are `items`, in order. Depth is 3
/// if any item is kEqual, else 2 if any is kGreater, else 1 (each stage is followed by a ReLU).
/// `roles` names what the stages hold ({first, second, third}); unused entries are ignored.
std::vector<DenseStage> checker_bank(int64_t in, const std::vector<CheckItem>& items,
                                     const std::vector<std::string>& roles);

/// A standalone number checker on one number (network input N×1, output N×1).
struct NumberCheckerParams {
  /// "greater": I_{>value} (eq. 6); "equal": I_value (eq. 7).
  std::string kind = "equal";
  /// i or N; |value| <= 2^20 keeps every activation exact in float32.
  int64_t value = 5;
  /// The `-o` keys kind (equal|greater) and value (in [-2^20, 2^20]).
  static const lab::Schema<NumberCheckerParams>& schema();
};

/// Layers "checker.layers.K": Linear, ReLU, ... (2 Linear for "greater", 3 for "equal").
lab::Network build_number_checker(const NumberCheckerParams& params);

}  // namespace networks
