/// @file palette.h
/// @brief The target colours of the multi-color-sum environment (paper Section 3, App. G.1).
///
/// The paper fixes the background at (20, 20, 20) and draws one patch per target colour; it does
/// not list its colours. Ours are the first entries of a widely used list of clearly distinct
/// colours (Trubetskoy's "20 simple distinct colours"): red, green, yellow, blue, orange, purple,
/// cyan, magenta, lime, pink, teal, brown. None is the background (20, 20, 20) or the all-zero
/// baseline (0, 0, 0), and no two share all three components, so each colour detector (eq. 4)
/// fires on exactly one of them. The multi-color-sum model with `colors` = N_C uses the first
/// N_C entries, in this order; class c is palette()[c]. Tested in test_color_detector.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lab/core/schema.h"

namespace networks {

/// An 8-bit RGB colour.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

/// "(230, 25, 75)".
std::string to_string(const Rgb& c);

/// `-o background=R,G,B`: three integers in 0..255, recorded as [R, G, B].
lab::Codec<Rgb> rgb_codec();

/// The target colours, in class order (12 entries).
const std::vector<Rgb>& palette();
/// Their names ("red", "green", ...), aligned with palette().
const std::vector<std::string>& palette_names();

}  // namespace networks
