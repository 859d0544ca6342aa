#include "networks/summary.h"

#include <algorithm>
#include <array>
#include <vector>

#include <fmt/format.h>

namespace networks {

namespace {

// The paper's Table 1 counts for its designed single-color-modulo model.
constexpr int64_t kTable1Layers = 17;
constexpr int64_t kTable1Parameters = 675033;

std::string sample_shape(const lab::Shape& batch_shape) {
  std::string s;
  for (size_t i = 1; i < batch_shape.size(); ++i) s += (i > 1 ? "×" : "") + std::to_string(batch_shape[i]);
  return s;
}

// Display width of a UTF-8 string (code points; our text has no wide characters).
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string pad(const std::string& s, size_t w, bool right = false) {
  const size_t n = width(s);
  const std::string fill(n < w ? w - n : 0, ' ');
  return right ? fill + s : s + fill;
}

}  // namespace

std::string group_digits(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string format_summary(const ModelInfo& info, double build_seconds) {
  const lab::Network& net = info.model.network;
  using Row = std::array<std::string, 7>;
  std::vector<Row> rows;
  rows.push_back({"#", "name", "kind", "output", "params", "settings", "holds"});
  for (size_t i = 0; i < net.size(); ++i) {
    const lab::Layer& layer = net.layer(i);
    rows.push_back({std::to_string(i), net.name(i), lab::kind_name(layer.kind()), sample_shape(net.shape_after(i)),
                    group_digits(layer.parameter_count()), layer.describe(), info.model.roles.at(i)});
  }
  std::array<size_t, 7> w{};
  for (const Row& r : rows)
    for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], width(r[c]));

  std::string out = fmt::format("model {} {}\ninput {}\n\n", info.env, info.params.dump(),
                                sample_shape([&] {
                                  lab::Shape s{1};
                                  for (int64_t d : net.input_shape()) s.push_back(d);
                                  return s;
                                }()));
  for (const Row& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      const bool numeric = c == 0 || c == 4;
      line += (c ? "  " : "") + (c + 1 == r.size() ? r[c] : pad(r[c], w[c], numeric));
    }
    out += line + "\n";
  }
  const int64_t weight_layers = weight_layer_count(net);
  out += fmt::format("\nlayers: {} conv + linear (as the paper's Table 1 counts them), {} in all\n", weight_layers,
                     net.size());
  out += fmt::format("parameters: {}\n", group_digits(net.parameter_count()));
  if (info.env == "single-color-modulo")
    out += fmt::format("paper, Table 1 (single-color-modulo): {} layers, {} parameters\n", kTable1Layers,
                       group_digits(kTable1Parameters));
  out += "paper's method layers (App. F.2, G.2):";
  for (const auto& [method, layer] : info.paper_layers) {
    std::string where = "absent: this accumulator is too shallow";
    for (size_t i = 0; i < net.size(); ++i)
      if (net.name(i) == layer) where = sample_shape(net.shape_after(i));
    out += fmt::format("{} {} at {} ({})", method == info.paper_layers.begin()->first ? "" : ";", method, layer, where);
  }
  out += fmt::format("\nbuilt in {:.1f} ms\n", build_seconds * 1e3);
  return out;
}

}  // namespace networks
