#include "networks/palette.h"

#include <fmt/format.h>

namespace networks {

std::string to_string(const Rgb& c) { return fmt::format("({}, {}, {})", c.r, c.g, c.b); }

const std::vector<Rgb>& palette() {
  static const std::vector<Rgb> colors = {
      {230, 25, 75},   {60, 180, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48}, {145, 30, 180},
      {70, 240, 240},  {240, 50, 230}, {210, 245, 60}, {250, 190, 212}, {0, 128, 128},  {170, 110, 40},
  };
  return colors;
}

const std::vector<std::string>& palette_names() {
  static const std::vector<std::string> names = {"red",     "green", "yellow", "blue", "orange", "purple",
                                                 "cyan",    "magenta", "lime", "pink", "teal",   "brown"};
  return names;
}

}  // namespace networks
