#include "experiments/reuse.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <memory>

#include "attributions/method.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace experiments {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Everything a map depends on besides the data: registry name, label (the per-sample seeds),
/// resolved parameters, target mode, run seed, reference inputs. Empty when the method cannot be
/// built here (an outside method's maps, a plug-in that is not loaded).
json method_identity(const Experiment& e, const MethodSpec& method) {
  if (!method.maps.empty()) return {};
  std::unique_ptr<attributions::Method> built;
  try {
    built = make_spec_method(method);
  } catch (const std::exception&) {
    return {};
  }
  return {{"name", method.name},
          {"label", method.label},
          {"params", built->params()},
          {"target", e.target},
          {"seed", e.seed},
          {"reference", std::min(e.reference, e.count)}};
}

json read_manifest(const fs::path& data_dir) {
  std::error_code ec;
  const fs::path path = data_dir / "manifest.json";
  if (!fs::is_regular_file(path, ec)) return {};
  try {
    return lab::read_json(path);
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace

MapReuse::MapReuse(const std::vector<fs::path>& runs) {
  for (const fs::path& dir : runs) {
    std::error_code ec;
    const fs::path config = dir / "config.json";
    if (!fs::is_regular_file(config, ec))
      lab::fail_parameter("--reuse {}: expected a run directory of attrlab (with config.json)", dir.string());
    json record;
    try {
      record = lab::read_json(config);
      Run run{dir, Experiment::from_json(record.at("config")), record.at("attrlab-version"), {}, {}};
      for (const ModelSpec& model : run.experiment.models)
        run.manifests.push_back(read_manifest(dir / "data" / model.label));
      for (const MethodSpec& method : run.experiment.methods)
        run.identities.push_back(method_identity(run.experiment, method));
      runs_.push_back(std::move(run));
    } catch (const lab::Error&) {
      throw;
    } catch (const std::exception& err) {
      lab::fail_parameter("--reuse {}: config.json is not a run's configuration ({})", dir.string(), err.what());
    }
  }
}

std::optional<ReuseSource> MapReuse::find(const Experiment& e, const ModelSpec& model, const MethodSpec& method,
                                          const json& manifest) const {
  const json wanted = method_identity(e, method);
  if (wanted.is_null() || manifest.is_null()) return std::nullopt;
  for (const Run& run : runs_) {
    if (run.version != json(ATTRLAB_VERSION) || !run.experiment.save_maps) continue;
    for (size_t m = 0; m < run.experiment.models.size(); ++m) {
      const ModelSpec& theirs = run.experiment.models[m];
      if (theirs.env != model.env || run.manifests[m] != manifest) continue;
      for (size_t k = 0; k < run.experiment.methods.size(); ++k) {
        const MethodSpec& candidate = run.experiment.methods[k];
        if (candidate.runs_on(theirs.label) && run.identities[k] == wanted)
          return ReuseSource{run.dir, theirs.label, candidate.label, candidate.slug, run.experiment.unit};
      }
    }
  }
  return std::nullopt;
}

std::optional<ReusedUnit> MapReuse::unit(const ReuseSource& source, int64_t begin, int64_t end) {
  if (source.unit <= 0 || begin % source.unit != 0) return std::nullopt;
  const fs::path done_path =
      source.run / "units" / source.model / source.slug / fmt::format("{:05}.done", begin / source.unit);
  const fs::path maps = source.run / "maps" / source.model / source.slug;
  std::error_code ec;
  if (!fs::is_regular_file(done_path, ec)) return std::nullopt;
  try {
    const json done = lab::read_json(done_path);
    if (done.value("begin", int64_t{-1}) != begin || done.value("end", int64_t{-1}) != end ||
        done.value("method", std::string()) != source.method)
      return std::nullopt;
    ReusedUnit u;
    u.samples = done.at("samples");
    u.evaluations = done.at("evaluations").get<int64_t>();
    if (!u.samples.is_array() || static_cast<int64_t>(u.samples.size()) != end - begin) return std::nullopt;
    std::vector<lab::Tensor> attr;
    for (const json& s : u.samples) {
      const fs::path file = maps / s.at("map").get<std::string>();
      if (!fs::is_regular_file(file, ec)) return std::nullopt;
      attr.push_back(lab::read_npy(file));
    }
    u.attr = lab::Tensor::stack(attr);
    return u;
  } catch (const std::exception&) {
    // A unit file being written or damaged: this unit is computed instead.
    return std::nullopt;
  }
}

}  // namespace experiments
