/// @file run.h
/// @brief Runs an experiment (config.h) end to end into RUN_DIR: data, maps, metric rows, tables,
/// figures and the report — resumable, deterministic, with bounded memory.
///
/// Layout of RUN_DIR:
///   config.json                  {"attrlab-version", "source", "overrides", "seeds", "config"}:
///                                the resolved configuration and every seed
///   data/<model>/                the model's data directory (datasets/data_dir.h)
///   maps/<model>/<method>/       <id>.npy (float32 C×H×W) and maps.json: the `attribute` layout
///   units/<model>/<method>/<unit>.rows.csv, .curves.csv, .done   one finished work unit (.done
///                                records its network evaluations and the seconds spent per step;
///                                under --mpi, the rank that computed it; with --reuse, "maps-from"
///                                when the maps came from an earlier run, reuse.h)
///   results.csv                  model,sample,method,metric,variant,value (per sample, then one
///                                "all" row per variant from the metric's own aggregation)
///   curves.csv                   model,sample,method,metric,variant,x,y (curves of more than 101
///                                points are resampled linearly onto 101 evenly spaced x)
///   costs.csv                    network evaluations per unit
///   tables/*.csv, tables/*.md    the report's tables; figures/*.png, *.svg; report.md, report.html
///
/// Work unit = (model, method, `unit` consecutive images). A unit goes through the attribute stage
/// (pipeline.h: the method's maps in one call, network calls of at most `batch` inputs, the same
/// stage as `attrlab attribute`), saves the maps, goes through the score stage (every metric of
/// the model) and writes its rows; the `.done` marker is written last, so an interrupted unit is
/// simply redone. Before anything is written, check_experiment() builds every environment,
/// method and metric and checks the report's studies, so a bad name fails at once; outside
/// methods' maps are checked against the data once it exists, and a run refused then (maps of
/// other data) removes the RUN_DIR it created.
/// `--resume` keeps finished units (after checking that RUN_DIR/config.json holds the same
/// resolved config) and recomputes the rest; the rows of the units computed in this process stay
/// in memory (those kept from an earlier run are read from their unit files) and flow, in config
/// order, to the reporters (report.h) that write results.csv, curves.csv, costs.csv, the tables,
/// figures and reports, so the same config and seed give byte-identical results.csv and curves.csv
/// whether the run was interrupted or not, and whatever the thread count. Memory holds one
/// unit's images and maps at a time. Network calls run on the calling thread; TBB is used only
/// around them (saving maps, resampling curves).
///
/// Rows are ordered by model, method (config order) and sample; within a sample, as the metrics
/// wrote them. Extra rows beside the metrics': for methods with completeness, metric "method",
/// variant "completeness-gap" (Σ attribution − (f(x) − f(baseline))). The network evaluations
/// each unit's method spent are in costs.csv (model,method,first,last,evaluations): a cost that
/// depends on how images are grouped, so it stays out of results.csv.
/// Shards (--shard K/N, merge_runs) and MPI ranks (--mpi, cluster.h) split the units round-robin
/// by index; joined, they give the same files as one process.
/// Tested in tests/experiments/test_experiments_run.cpp (tiny runs of every shipped experiment,
/// resume, determinism) and tests/cli/test_cmd_run_shard.cpp (3 shards + merge and 4 MPI ranks
/// against a 1-process run, byte for byte; merge's refusals).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace experiments {

struct RunOptions {
  std::filesystem::path out;            ///< RUN_DIR
  bool resume = false;                  ///< keep finished units of an earlier run in RUN_DIR
  bool force = false;                   ///< start an earlier run in RUN_DIR again, removing its files
  bool quiet = false;                   ///< no progress bar
  std::string source;                   ///< how the experiment was named (shipped name or path)
  std::vector<std::string> overrides;   ///< the -o items, as given
  /// "all", or "data": stop once config.json and the data directories are written, so that an
  /// outside tool can explain them; a later --resume with the same config does the rest.
  std::string stage = "all";
  /// --shard K/N (shard_count > 0): only the units i with i % N == K (units in results.csv
  /// order: model, method, images), round-robin so that every shard gets a share of every model
  /// and method and their costs balance. RUN_DIR then holds config.json (with "shard": {"index",
  /// "count"}), data/, the maps and units/ files of those units, and no results or report:
  /// merge_runs() joins the shards. --resume continues a shard like a run.
  int64_t shard_index = 0;
  int64_t shard_count = 0;
  /// Under mpirun: rank K of N computes the units i with i % N == K and sends their files to
  /// rank 0, which alone writes RUN_DIR (cluster.h). --resume works as without it.
  bool mpi = false;
  /// --reuse: earlier run directories whose maps of the same method, data and settings are
  /// taken instead of computed, unit by unit (reuse.h); the results are the same.
  std::vector<std::filesystem::path> reuse;
};

struct RunSummary {
  int64_t units = 0;    ///< work units of the experiment
  int64_t skipped = 0;  ///< units kept from an earlier run (--resume)
  std::filesystem::path results;
  std::filesystem::path report_md;
  std::filesystem::path report_html;
  std::vector<std::filesystem::path> data;  ///< the data directories, one per model
  int64_t computed = 0;  ///< units this process computed
  int64_t reused = 0;    ///< of those, units whose maps came from an earlier run (--reuse)
  bool shard = false;    ///< a shard (--shard): no results or report yet
  bool worker = false;   ///< an MPI rank other than 0: it wrote nothing
};

/// "K/N" (0 <= K < N, decimal digits only) → {K, N}; anything else is refused naming --shard.
std::pair<int64_t, int64_t> parse_shard(const std::string& text);

/// `attrlab merge`: joins the run directories of the shards of one run into `options.out` (a
/// new directory), which then holds what one process would have written: results.csv,
/// curves.csv, costs.csv, tables, figures and report byte-identical to a 1-process run's (the
/// maps.json records name their own run directory). The shards must share attrlab version,
/// configuration and seeds, and hold every unit exactly once; otherwise one lab::Error(kInput)
/// names the directory and nothing is written. The data are copied from the first shard.
RunSummary merge_runs(const std::vector<std::filesystem::path>& dirs, const RunOptions& options);

/// Runs the finalize()d configuration `resolved` (config.h) as described above.
RunSummary run_experiment(const nlohmann::json& resolved, const RunOptions& options);

}  // namespace experiments
