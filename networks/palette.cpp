#include "networks/palette.h"

#include <fmt/format.h>

namespace networks {

std::string to_string(const Rgb& c) { return fmt::format("({}, {}, {})", c.r, c.g, c.b); }

lab::Codec<Rgb> rgb_codec() {
  lab::Codec<Rgb> codec;
  codec.type = lab::ParamType::kIntList;
  codec.parse = [](const std::string& text) -> std::optional<Rgb> {
    const std::vector<std::string> parts = lab::schema_detail::split_list(text);
    if (parts.size() != 3) return std::nullopt;
    int64_t v[3] = {};
    for (size_t i = 0; i < 3; ++i)
      if (!lab::schema_detail::parse_integer(parts[i], v[i]) || v[i] < 0 || v[i] > 255) return std::nullopt;
    return Rgb{static_cast<uint8_t>(v[0]), static_cast<uint8_t>(v[1]), static_cast<uint8_t>(v[2])};
  };
  codec.show = [](const Rgb& c) { return nlohmann::json::array({c.r, c.g, c.b}); };
  codec.expect = "three integers R,G,B in 0..255";
  return codec;
}

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
