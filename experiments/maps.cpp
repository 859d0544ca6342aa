#include "experiments/maps.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "experiments/metrics/metric.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace experiments {

namespace fs = std::filesystem;

void check_made_for(const fs::path& json, const nlohmann::json& record, const datasets::DataDir& data) {
  if (!record.contains("data-manifest")) return;
  const nlohmann::json& made = record["data-manifest"];
  if (!made.is_object()) lab::fail("{}: \"data-manifest\" must be a JSON object", json.string());
  const auto differs = [&](const char* key, const nlohmann::json& ours) {
    if (!made.contains(key) || made[key] == ours) return;
    if (made[key].type() != ours.type() && !(made[key].is_number_integer() && ours.is_number_integer()))
      lab::fail("{}: data-manifest.{} = {}; expected a {} like the data's", json.string(), key, made[key].dump(),
                ours.type_name());
    lab::fail_parameter("{}: the maps were made for data with {} {}, but the data at {} have {} {}", json.string(), key,
                        made[key].dump(), data.path().string(), key, ours.dump());
  };
  differs("env", data.env().name());
  if (made.contains("fingerprint")) {
    differs("fingerprint", data.fingerprint());
  } else {
    differs("seed", data.seed());
    differs("count", data.size());
  }
}

std::optional<lab::Tensor> read_map_channels(const fs::path& file, const lab::Shape& input, std::string& reason,
                                             std::string* converted_from) {
  lab::Tensor t;
  try {
    t = lab::read_npy_as_float32(file, converted_from);
  } catch (const lab::Error& e) {
    reason = e.what();
    return std::nullopt;
  }
  const int64_t c = input[0], h = input[1], w = input[2];
  const lab::Shape& s = t.shape();
  const auto channels_ok = [&](int64_t k) { return k == 1 || k == c; };
  const bool plain = s == lab::Shape{h, w};
  const bool first = s.size() == 3 && channels_ok(s[0]) && s[1] == h && s[2] == w;
  const bool last = s.size() == 3 && s[0] == h && s[1] == w && channels_ok(s[2]);
  if (!plain && !first && !last) {
    reason = fmt::format("shape {}; expected [{}, {}], [C, {}, {}] or [{}, {}, C] with C = 1 or {}", lab::to_string(s),
                         h, w, h, w, h, w, c);
    return std::nullopt;
  }
  if (first && last) {
    reason = fmt::format("shape {} reads both as C×H×W and as H×W×C; write it as [{}, {}] or [C, {}, {}]",
                         lab::to_string(s), h, w, h, w);
    return std::nullopt;
  }
  if (!t.all_finite()) {
    reason = "holds NaN or Inf";
    return std::nullopt;
  }
  if (last) {  // H×W×C → C×H×W
    lab::Tensor moved({s[2], h, w});
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < s[2]; ++k) moved[(k * h + y) * w + x] = t[(y * w + x) * s[2] + k];
    t = std::move(moved);
  }
  if (t.shape().size() == 3 && t.shape()[0] == c) return t;
  lab::Tensor out({c, h, w}, 0.0f);  // one channel: channel 0
  std::copy(t.values().begin(), t.values().end(), out.values().begin());
  return out;
}

std::optional<lab::Tensor> read_map(const fs::path& file, const lab::Shape& input, std::string& reason,
                                    std::string* converted_from) {
  std::optional<lab::Tensor> t = read_map_channels(file, input, reason, converted_from);
  if (!t) return std::nullopt;
  return pixel_map(t->reshaped({1, input[0], input[1], input[2]})).reshaped({input[1], input[2]});
}

MapsFromFiles::MapsFromFiles(fs::path dir, const datasets::DataDir& data)
    : dir_(fs::absolute(std::move(dir)).lexically_normal()), input_(data.env().input_shape()) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) lab::fail("{}: no such maps directory", dir_.string());
  const fs::path json = dir_ / "maps.json";
  if (fs::exists(json)) {
    const nlohmann::json record = lab::read_json(json);
    check_made_for(json, record, data);
    fingerprinted_ = record.is_object() && record.contains("data-manifest") && record["data-manifest"].is_object() &&
                     record["data-manifest"].contains("fingerprint");
  }
  std::set<std::string> ids;
  for (int64_t i = 0; i < data.size(); ++i) ids.insert(data.id(i));
  int64_t others = 0;
  std::string first;
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".npy" || ids.count(p.stem().string()) > 0) continue;
    if (others++ == 0 || p.filename().string() < first) first = p.filename().string();
  }
  if (others > 0)
    lab::fail("{}: holds {} .npy file(s) that are not sample ids of the {} samples of {} (e.g. {}); expected exactly "
              "one map per sample, maps of other data are not scored",
              dir_.string(), others, data.size(), data.path().string(), first);
  for (int64_t i = 0; i < data.size(); ++i) {
    const fs::path file = dir_ / (data.id(i) + ".npy");
    std::string reason, from;
    if (!read_map_channels(file, input_, reason, &from)) lab::fail("{}: {}", file.string(), reason);
    if (!from.empty()) ++conversions_[from];
  }
}

nlohmann::json MapsFromFiles::params() const { return {{"maps", dir_.string()}}; }

attributions::Result MapsFromFiles::attribute(const attributions::Context&, const attributions::Batch& batch) const {
  LAB_CHECK(batch.ids.size() == static_cast<size_t>(batch.x.batch()), "MapsFromFiles needs the samples' ids");
  std::vector<lab::Tensor> maps;
  for (const std::string& id : batch.ids) {
    const fs::path file = dir_ / (id + ".npy");
    std::string reason;
    std::optional<lab::Tensor> map = read_map_channels(file, input_, reason);
    if (!map) lab::fail("{}: {}", file.string(), reason);
    maps.push_back(std::move(*map));
  }
  attributions::Result r;
  r.attr = lab::Tensor::stack(maps);
  return r;
}

}  // namespace experiments
