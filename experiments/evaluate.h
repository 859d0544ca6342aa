/// @file evaluate.h
/// @brief Scoring attribution maps of any origin against a data directory with chosen metrics:
/// `attrlab evaluate`. The maps are read and checked here; the scoring is the score stage of
/// pipeline.h, the one `attrlab run` uses, so the same maps, seed and metrics give the same rows.
///
/// Maps. Each MAPS directory holds one method's maps as MAPS/<id>.npy (float32, or float16/64
/// converted to float32; H×W, C×H×W or H×W×C with C = 1 or the input's channels, summed over
/// channels as in metric.h; a shape that reads both ways is refused), <id> being the data's
/// sample ids. MAPS/maps.json (written by `attrlab attribute` and `attrlab run`) is
/// optional for maps made by other tools; when present, its "label" (else its "method") names
/// the method, its
/// "samples" list says which ids are expected and each entry's "target" the explained output
/// unit, and its "data-manifest" must describe the data: the same environment and the same
/// fingerprint (data_dir.h; other data are refused, naming both), or, for records without a
/// fingerprint, the same seed and count. Without it the method is
/// named after the directory, every data sample with a file is scored, and the target is the
/// output unit of the sample's designed label. Two MAPS directories with the same method name
/// are told apart by their directory names.
///
/// Rejected maps (reported by file name, not scored; the rest is scored): a file that is not a
/// readable floating-point .npy (integer, complex, object dtypes), a shape other than H×W or C×H×W of the data, NaN or Inf values, an
/// expected id without a file, and a .npy file whose name is not a sample id of the data.
///
/// Outputs: the results and curves CSVs of `attrlab run` (table.h: model,sample,method,metric,
/// variant,value and model,sample,method,metric,variant,x,y; curves of more than 101 points
/// resampled as in pipeline.h), per method and metric the per-sample rows in data order, then the
/// metric's own "all" rows; and the record (RESULTS with extension .json): attrlab version, data
/// (path, env, seed, count), model, seed, every metric with resolved params and variant
/// directions, every method with its maps directory, maps.json parameters and counts of scored
/// and rejected maps, and the rejected files with reasons. All files are written atomically.
///
/// Resume (run_evaluate, as `attrlab run` resumes). The work unit is (method, `unit` consecutive
/// scored samples). While it works, the command keeps each finished unit in the unit directory
/// beside the results, RESULTS.units/ (unit_dir): request.json (what is evaluated: the data's
/// path and fingerprint, the maps directories, metrics, parameters, model, seed, limit, unit),
/// attrlab.lock (a second evaluate into the same RESULTS is refused), and units/<method>-<unit>
/// .rows.csv, .curves.csv and .done (written last, so an interrupted unit is simply redone).
/// When every file is written the unit directory is removed. A killed evaluate leaves the unit
/// directory and no temporary; `resume` keeps its finished units (after checking that
/// request.json is the same) and scores the rest, and the rows of kept units are read back, so
/// results, record and curves are byte-identical to those of an uninterrupted evaluation.
/// Tested in tests/experiments/test_evaluate.cpp and tests/cli/test_interrupt_resume.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/metrics/metric.h"
#include "experiments/table.h"

namespace experiments {

struct EvaluateRequest {
  std::filesystem::path data;                ///< data directory (datasets/data_dir.h)
  std::vector<std::filesystem::path> maps;   ///< one directory per method
  std::vector<std::string> metrics;          ///< registry names
  std::vector<std::string> params;           ///< `-p key=value` items, shared by all metrics
  std::string model;                         ///< the rows' model column; empty: the data's environment
  uint64_t seed = 0;                         ///< sample i is scored with sample_seed(seed, "metrics", i)
  int64_t limit = -1;                        ///< score only the first `limit` data samples; < 0: all
  int64_t unit = 16;                         ///< execution: samples per metric call
  int64_t batch = 256;                       ///< execution: perturbed inputs per network call
};

/// A map file that was not scored.
struct RejectedMap {
  std::string method;
  std::filesystem::path file;
  std::string reason;
};

struct Evaluation {
  std::vector<ResultRow> rows;
  std::vector<RejectedMap> rejected;
  nlohmann::json record;  ///< what the .json record holds
  /// Maps directories without the data's fingerprint (no maps.json, or one without it): matched
  /// to the data by sample ids and shapes only.
  std::vector<std::filesystem::path> unfingerprinted;
  /// Map files read converted to float32: directory, dtype ("float16", "float64"), file count.
  struct Conversion {
    std::filesystem::path dir;
    std::string dtype;
    int64_t files = 0;
  };
  std::vector<Conversion> conversions;
  /// With UnitFiles: the files of every unit (DIR/units/<method>-<unit>, without extension) in
  /// the order of the rows.
  std::vector<std::filesystem::path> units;
  /// Direction of each (metric, variant), for summaries.
  std::vector<std::pair<std::string, Variant>> variants;
};

/// Receives the curve points of each scored unit as they are produced.
using CurveSink = std::function<void(const std::vector<CurveRow>& points)>;
/// Called once before scoring with the number of units (≥ 0), then after every scored unit with
/// -1 and the unit's method, or -2 for a unit kept from an interrupted evaluation; may be empty.
using UnitObserver = std::function<void(int64_t units, const std::string& method)>;
constexpr int64_t kUnitScored = -1;
constexpr int64_t kUnitKept = -2;

/// Where evaluate_maps keeps its finished units (DIR/units/<method>-<unit>.rows.csv,
/// .curves.csv, .done) and reads back those an earlier process finished.
struct UnitFiles {
  std::filesystem::path dir;
  /// Called once, after every check and before the first unit is read or written.
  std::function<void()> prepare;
};

/// How run_evaluate treats the unit directory of an interrupted evaluation of the same RESULTS.
struct EvaluateResume {
  bool resume = false;  ///< keep its finished units (the request must be the same)
  bool force = false;   ///< start again, removing it
};

/// Scores every accepted map with every metric; curves go to `curves` (may be empty). Bad data,
/// unknown metrics or parameters throw lab::Error before anything is scored; bad maps are
/// collected in Evaluation::rejected.
Evaluation evaluate_maps(const EvaluateRequest& request, const CurveSink& curves,
                         const UnitObserver& progress = nullptr, const UnitFiles* units = nullptr);

/// The whole command: evaluates (keeping finished units in unit_dir(results), see "Resume"),
/// then writes `results` (and its .json record) and, if given, `curves`, each atomically, and
/// removes the unit directory. A unit directory of an earlier evaluation is refused (exit 1)
/// unless `how` says to resume or restart it. Returns the evaluation (rejected maps included).
Evaluation run_evaluate(const EvaluateRequest& request, const std::filesystem::path& results,
                        const std::optional<std::filesystem::path>& curves, const UnitObserver& progress = nullptr,
                        const EvaluateResume& how = {});

/// The .json record path of a results CSV: the same path with extension ".json".
std::filesystem::path record_path(const std::filesystem::path& results);
/// The unit directory of a results CSV: the same path with ".units" appended.
std::filesystem::path unit_dir(const std::filesystem::path& results);

}  // namespace experiments
