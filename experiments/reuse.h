/// @file reuse.h
/// @brief `attrlab run --reuse RUN_DIR`: maps an earlier run already computed are taken from its
/// files instead of being computed again.
///
/// A method of this run on one of its models has the same maps as a method of the earlier run on
/// one of its models when everything a map depends on is equal: the attrlab version, the data
/// (the two data directories' manifest.json: environment, every option of it — hence the network
/// —, seed, count, fingerprint of the images), the method's registry name, its label (the seed of
/// each sample is derived from it), its resolved parameters (defaults included), the target mode,
/// the run seed and the number of reference inputs. Model labels may differ: the
/// `faithfulness-test` model "multi-color-sum" is `unseen-data-effect`'s "with-ude".
/// A work unit is taken when the earlier run finished the unit of the same images (its .done,
/// written last) and kept its maps; its maps.json entries must equal the ones this run would
/// write (ids, labels, targets), else the unit is computed. So an earlier run still in progress
/// can be reused as far as it got. Rows, curves, costs, maps and report are then byte-identical
/// to a run that computed every map (tested): metrics, including those that re-explain perturbed
/// inputs, run as before.
/// Tested in tests/experiments/test_experiments_run.cpp ("--reuse").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/config.h"
#include "lab/core/tensor.h"

namespace experiments {

/// Where an earlier run keeps one (model, method)'s maps and unit files.
struct ReuseSource {
  std::filesystem::path run;  ///< the earlier RUN_DIR
  std::string model;          ///< its model label
  std::string method;         ///< its method label
  std::string slug;           ///< its method's directory name
  int64_t unit = 0;           ///< its images per unit
};

/// One unit's maps taken from an earlier run.
struct ReusedUnit {
  lab::Tensor attr;                 ///< N×C×H×W
  nlohmann::json samples;           ///< the earlier run's maps.json entries of these samples
  int64_t evaluations = 0;          ///< the network evaluations the earlier run spent on them
};

/// The earlier runs named by --reuse.
class MapReuse {
 public:
  /// Reads each RUN_DIR's config.json; a directory without one (or unreadable) is refused in one
  /// line naming --reuse.
  explicit MapReuse(const std::vector<std::filesystem::path>& runs);

  /// The first earlier (model, method) with the same maps as `method` on `model` of `e`, whose
  /// data directory's manifest is `manifest`; none when no earlier run matches.
  std::optional<ReuseSource> find(const Experiment& e, const ModelSpec& model, const MethodSpec& method,
                                  const nlohmann::json& manifest) const;

  /// The maps of images [begin, end) from `source`, when the earlier run finished exactly that
  /// unit and kept its maps (AttributeStage::reuse checks them against this run's samples).
  static std::optional<ReusedUnit> unit(const ReuseSource& source, int64_t begin, int64_t end);

 private:
  struct Run {
    std::filesystem::path dir;
    Experiment experiment;
    nlohmann::json version;
    std::vector<nlohmann::json> manifests;   ///< per model: its data directory's manifest.json
    std::vector<nlohmann::json> identities;  ///< per method: what its maps depend on
  };
  std::vector<Run> runs_;
};

}  // namespace experiments
