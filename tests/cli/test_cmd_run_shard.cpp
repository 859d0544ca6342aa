// End to end: a run cut into shards (`run --shard K/N`) and joined (`merge`), and a run shared
// among 4 MPI ranks (`mpirun -n 4 attrlab run --mpi`), give a run directory byte-identical to a
// 1-process run: results.csv, curves.csv, costs.csv, config.json, tables, figures, report, data
// and maps (all but the .done markers, which hold timings, and maps.json, which names its run
// directory). Interrupted shards continue with --resume; merge refuses shards of other configs,
// seeds or versions, and missing or duplicate units, in one line naming the directory, exit 2,
// writing nothing; bad --shard values exit 1.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/io/files.h"
#include "run_cli.h"
#include "tests/scratch.h"

using clitest::run;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A small unseen-data-effect: 2 models × 3 methods × 2 units of 2 images = 12 units, every
// metric (GT, Insertion, Deletion, Sensitivity-N) and the full report.
const std::string kStudy =
    "unseen-data-effect -o count=4 -o size=32 -o unit=2 -o select=IG,GuidedBP,GradCAM -o methods.IG.params.steps=4 "
    "-o metrics.3.params.subsets=4 -o metrics.3.params.points=3 --quiet";

const fs::path& scratch() {
  static const testdir::Scratch dir("shard");
  return dir.dir;
}

/// The 1-process run every other run is compared with (made once).
const fs::path& single_run() {
  static const fs::path out = [] {
    const fs::path dir = scratch() / "single";
    const auto ran = run("run " + kStudy + " --out " + dir.string());
    INFO(ran.err);
    REQUIRE(ran.code == 0);
    return dir;
  }();
  return out;
}

/// Every file of `dir` below it, but the lock, the .done markers and maps.json.
std::set<std::string> compared_files(const fs::path& dir) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const fs::path p = entry.path();
    if (p.filename() == "attrlab.lock" || p.extension() == ".done" || p.filename() == "maps.json") continue;
    files.insert(fs::relative(p, dir).string());
  }
  return files;
}

/// The files of `b` that differ from `a`'s (or exist in only one of them).
std::vector<std::string> differences(const fs::path& a, const fs::path& b) {
  const std::set<std::string> fa = compared_files(a), fb = compared_files(b);
  std::vector<std::string> diff;
  std::set_symmetric_difference(fa.begin(), fa.end(), fb.begin(), fb.end(), std::back_inserter(diff));
  for (const std::string& f : fa)
    if (fb.count(f) && lab::read_text(a / f) != lab::read_text(b / f)) diff.push_back(f);
  return diff;
}

/// The .done markers below `dir`, as paths relative to it.
std::set<std::string> done_units(const fs::path& dir) {
  std::set<std::string> units;
  if (!fs::exists(dir / "units")) return units;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "units"))
    if (entry.path().extension() == ".done") units.insert(fs::relative(entry.path(), dir).string());
  return units;
}

size_t lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

/// Runs the three shards of kStudy into DIR/shard-K.
void run_shards(const fs::path& dir) {
  for (int k = 0; k < 3; ++k) {
    const auto ran = run("run " + kStudy + " --shard " + std::to_string(k) + "/3 --out " +
                         (dir / ("shard-" + std::to_string(k))).string());
    INFO(ran.err);
    REQUIRE(ran.code == 0);
    CHECK(ran.out.find("shard " + std::to_string(k) + "/3: 4 units") != std::string::npos);
  }
}

std::string shard_dirs(const fs::path& dir, const std::vector<int>& shards) {
  std::string text;
  for (const int k : shards) text += " " + (dir / ("shard-" + std::to_string(k))).string();
  return text;
}

}  // namespace

TEST_CASE("3 shards joined by merge are byte-identical to a 1-process run") {
  const fs::path& single = single_run();
  const fs::path dir = scratch() / "three";
  run_shards(dir);

  // A shard holds config.json (with its shard), the data, its own units and maps, no results.
  const fs::path shard1 = dir / "shard-1";
  CHECK(lab::read_json(shard1 / "config.json").at("shard") == json{{"index", 1}, {"count", 3}});
  CHECK_FALSE(fs::exists(shard1 / "results.csv"));
  CHECK_FALSE(fs::exists(shard1 / "report.md"));
  CHECK(fs::exists(shard1 / "data" / "with-ude" / "manifest.json"));
  // Round-robin over the units in results order (with-ude, then without-ude; GradCAM, GuidedBP,
  // IG; 2 units each): shard 1 holds units 1, 4, 7 and 10.
  const std::set<std::string> expected = {"units/with-ude/gradcam/00001.done", "units/with-ude/ig/00000.done",
                                          "units/without-ude/gradcam/00001.done", "units/without-ude/ig/00000.done"};
  CHECK(done_units(shard1) == expected);
  std::set<std::string> all;
  for (int k = 0; k < 3; ++k)
    for (const std::string& u : done_units(dir / ("shard-" + std::to_string(k)))) CHECK(all.insert(u).second);
  CHECK(all == done_units(single));

  const fs::path merged = dir / "merged";
  const auto joined = run("merge" + shard_dirs(dir, {0, 1, 2}) + " --out " + merged.string());
  INFO(joined.err);
  REQUIRE(joined.code == 0);
  CHECK(joined.out.find("merge: 12 units from 3 directories") != std::string::npos);
  const std::set<std::string> files = compared_files(merged);
  for (const char* f : {"results.csv", "curves.csv", "costs.csv", "config.json", "report.md", "report.html",
                        "tables/study1-spearman.md", "tables/study1-spearman.csv"})
    CHECK_MESSAGE(files.count(f) == 1, f);
  CHECK(lab::read_text(merged / "results.csv").size() > 1000);
  CHECK(differences(single, merged) == std::vector<std::string>{});
  CHECK_FALSE(lab::read_json(merged / "config.json").contains("shard"));
  // The merged run is a run like any other: its report rebuilds to the same bytes.
  const std::string report = lab::read_text(merged / "report.md");
  REQUIRE(run("run --rebuild --out " + merged.string()).code == 0);
  CHECK(lab::read_text(merged / "report.md") == report);
}

TEST_CASE("an interrupted shard continues with --resume; merge names it until it is done") {
  const fs::path& single = single_run();
  const fs::path dir = scratch() / "interrupted";
  run_shards(dir);
  // Shard 2 was killed before two of its units finished (their .done marker is written last).
  const fs::path shard2 = dir / "shard-2";
  fs::remove(shard2 / "units/with-ude/guidedbp/00000.done");
  fs::remove(shard2 / "units/without-ude/ig/00001.done");
  fs::remove(shard2 / "units/without-ude/ig/00001.rows.csv");

  const fs::path merged = dir / "merged";
  const auto refused = run("merge" + shard_dirs(dir, {0, 1, 2}) + " --out " + merged.string());
  CHECK(refused.code == 2);
  CHECK(lines(refused.err) == 1);
  CHECK(refused.err.find(shard2.string() + ": shard 2/3 has not finished unit 'with-ude / GuidedBP: images 0-1' (2 of its 4 "
                         "units done); continue it with --shard 2/3 --resume") != std::string::npos);
  CHECK_FALSE(fs::exists(merged));

  // The shard's directory is continued only as that shard.
  const auto whole = run("run " + kStudy + " --resume --out " + shard2.string());
  CHECK(whole.code == 1);
  CHECK(whole.err == "attrlab: error: --out " + shard2.string() + ": holds shard 2/3; continue it with --shard 2/3 --resume\n");
  const auto other = run("run " + kStudy + " --shard 1/3 --resume --out " + shard2.string());
  CHECK(other.code == 1);
  CHECK(other.err.find("holds shard 2/3") != std::string::npos);
  const auto fresh = run("run " + kStudy + " --shard 2/3 --out " + shard2.string());
  CHECK(fresh.code == 1);
  CHECK(fresh.err.find("pass --resume") != std::string::npos);

  // --resume recomputes the two units, and the merge is byte-identical.
  const auto resumed = run("run " + kStudy + " --shard 2/3 --resume --out " + shard2.string());
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(resumed.out.find("shard 2/3: 4 units (2 kept from the earlier run)") != std::string::npos);
  const auto joined = run("merge" + shard_dirs(dir, {0, 1, 2}) + " --out " + merged.string());
  INFO(joined.err);
  REQUIRE(joined.code == 0);
  CHECK(differences(single, merged) == std::vector<std::string>{});
}

TEST_CASE("merge refuses other configs, seeds, versions, missing or duplicate units in one line, writing nothing") {
  const fs::path dir = scratch() / "refused";
  run_shards(dir);
  const fs::path out = dir / "merged";
  // A copy of shard 0 whose config.json is edited by `edit`.
  const auto edited_copy = [&](const std::string& name, const std::function<void(json&)>& edit) {
    const fs::path copy = dir / name;
    fs::copy(dir / "shard-0", copy, fs::copy_options::recursive);
    json record = lab::read_json(copy / "config.json");
    edit(record);
    lab::write_json(copy / "config.json", record);
    return copy;
  };
  const fs::path other_count = edited_copy("count", [](json& r) { r["config"]["count"] = 6; });
  const fs::path other_seeds = edited_copy("seeds", [](json& r) { r["seeds"]["seed"] = 7; });
  const fs::path other_version = edited_copy("version", [](json& r) { r["attrlab-version"] = "0.0.1"; });
  const fs::path again = edited_copy("again", [](json&) {});
  const fs::path unsharded = edited_copy("unsharded", [](json& r) { r.erase("shard"); });
  const std::string s0 = (dir / "shard-0").string(), s1 = (dir / "shard-1").string(), s2 = (dir / "shard-2").string();

  struct Case {
    std::string dirs, message;
  };
  const std::vector<Case> cases = {
      {s0 + " " + s1 + " " + other_count.string(),
       other_count.string() + ": another configuration than " + s0 + " (first difference at 'count')"},
      {s0 + " " + s1 + " " + other_seeds.string(), other_seeds.string() + ": other seeds than " + s0},
      {s0 + " " + s1 + " " + other_version.string(), other_version.string() + ": made by attrlab 0.0.1, " + s0 + " by attrlab "},
      {s0 + " " + s1, s0 + ": no directory holds unit 'with-ude / GuidedBP: images 0-1' (shard 2/3 is missing)"},
      {s0 + " " + s1 + " " + s2 + " " + again.string(), again.string() + ": shard 0/3 again (also " + s0 + ")"},
      {s0 + " " + s1 + " " + s2 + " " + unsharded.string(),
       unsharded.string() + ": unit 'with-ude / GradCAM: images 0-1' is also in " + s0},
      {s0 + " " + s1 + " " + s2 + " " + s1, s1 + ": given twice (also as " + s1 + ")"},
      {s0 + " " + s1 + " " + (dir / "nothing").string(), (dir / "nothing").string() + ": is"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.dirs);
    const auto refused = run("merge " + c.dirs + " --out " + out.string());
    CHECK(refused.code == 2);
    CHECK(lines(refused.err) == 1);
    CHECK(refused.err.rfind("attrlab: error: " + c.message, 0) == 0);
    CHECK_FALSE(fs::exists(out));
  }
  // An --out that holds files is a usage error; the shards are read but nothing is written.
  const auto taken = run("merge " + s0 + " " + s1 + " " + s2 + " --out " + s0);
  CHECK(taken.code == 1);
  CHECK(taken.err.find("--out " + s0 + ": the directory exists and holds files") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "shard-0" / "results.csv"));
  // And the shards as given merge.
  CHECK(run("merge " + s0 + " " + s1 + " " + s2 + " --out " + out.string()).code == 0);
}

TEST_CASE("--shard takes K/N with 0 <= K < N; anything else exits 1 in one line") {
  for (const char* bad : {"3/2", "0/0", "abc", "2/2", "1/", "/3", "-1/3", "+1/3", "1/3/4", "1.5/3", ""}) {
    CAPTURE(bad);
    const fs::path out = scratch() / "bad-shard";
    const auto refused = run("run " + kStudy + " --shard '" + bad + "' --out " + out.string());
    CHECK(refused.code == 1);
    CHECK(refused.err == "attrlab: error: --shard " + std::string(bad) +
                             ": expected K/N, shard K of N counted from 0 (0 <= K < N, e.g. 0/4 ... 3/4)\n");
    CHECK_FALSE(fs::exists(out));
  }
  const auto both = run("run " + kStudy + " --shard 0/2 --mpi --out " + (scratch() / "both").string());
  CHECK(both.code == 1);
  CHECK(lines(both.err) == 1);
  CHECK(both.err.find("--shard and --mpi exclude each other") != std::string::npos);
}

TEST_CASE("the Slurm job-array script is valid shell") {
  const char* source = std::getenv("ATTRLAB_SOURCE_DIR");
  REQUIRE(source != nullptr);
  const fs::path script = fs::path(source) / "scripts" / "slurm-array.sh";
  REQUIRE(fs::exists(script));
  CHECK(std::system(("bash -n " + script.string()).c_str()) == 0);
  // Without Slurm it is the submitter, and refuses a bad shard count before calling sbatch.
  CHECK(WEXITSTATUS(std::system(("env -u SLURM_JOB_ID bash " + script.string() + " study /tmp 0 2>/dev/null").c_str())) == 1);
}

#ifdef ATTRLAB_MPIEXEC
TEST_CASE("4 MPI ranks on 2 cores give a run byte-identical to a 1-process run; --resume works under MPI") {
  const fs::path& single = single_run();
  const fs::path out = scratch() / "mpi";
  // One thread per rank (ATTRLAB_THREADS), no core binding, more ranks than cores; root needs
  // --allow-run-as-root.
  // Under scripts/sanitize.sh the ranks run without leak checking (every other check stays on):
  // Open MPI's MCA components, unloaded at MPI_Finalize, leave allocations that LeakSanitizer
  // reports from `<unknown module>`, which no suppression can name.
  std::string asan_env;
  if (const char* asan = std::getenv("ASAN_OPTIONS")) {
    std::string options = asan;
    if (const size_t at = options.find("detect_leaks=1"); at != std::string::npos) {
      options.replace(at, 14, "detect_leaks=0");
      asan_env = "ASAN_OPTIONS='" + options + "' ";
    }
  }
  const std::string mpirun = asan_env + std::string(ATTRLAB_MPIEXEC) +
                             " --allow-run-as-root --oversubscribe --bind-to none -n 4 -x ATTRLAB_THREADS=1 -x "
                             "OMP_NUM_THREADS=1 " +
                             clitest::binary() + " run " + kStudy + " --mpi";
  const fs::path log = scratch() / "mpi.log";
  REQUIRE(std::system((mpirun + " --out " + out.string() + " >" + log.string() + " 2>&1").c_str()) == 0);
  INFO(lab::read_text(log));
  CHECK(lab::read_text(log).find("run: 12 units (0 kept from the earlier run)") != std::string::npos);
  CHECK(differences(single, out) == std::vector<std::string>{});
  // Every rank computed its share (unit i on rank i % 4); only rank 0 wrote the run directory.
  std::set<int> ranks;
  for (const std::string& done : done_units(out)) ranks.insert(lab::read_json(out / done).at("rank").get<int>());
  CHECK(ranks == std::set<int>{0, 1, 2, 3});
  CHECK(lab::read_json(out / "units/with-ude/guidedbp/00001.done").at("rank") == 3);

  // Continued under MPI after losing units: the same bytes again.
  for (const char* unit : {"units/with-ude/ig/00000.done", "units/without-ude/gradcam/00001.done"}) fs::remove(out / unit);
  REQUIRE(std::system((mpirun + " --resume --out " + out.string() + " >" + log.string() + " 2>&1").c_str()) == 0);
  CHECK(lab::read_text(log).find("run: 12 units (10 kept from the earlier run)") != std::string::npos);
  CHECK(differences(single, out) == std::vector<std::string>{});

  // Refused on rank 0 (a finished run without --resume): one line of attrlab's, every rank ends.
  // The job's exit code is rank 0's (1, a usage error): the other ranks end with 0.
  const int refused = std::system((mpirun + " --out " + out.string() + " >" + log.string() + " 2>&1").c_str());
  CHECK(WIFEXITED(refused));
  CHECK(WEXITSTATUS(refused) == 1);
  const std::string text = lab::read_text(log);
  size_t errors = 0;
  for (size_t at = text.find("attrlab: error: "); at != std::string::npos; at = text.find("attrlab: error: ", at + 1)) ++errors;
  CHECK(errors == 1);
  CHECK(text.find("attrlab: error: --out " + out.string() + ": already holds a run") != std::string::npos);
  CHECK(differences(single, out) == std::vector<std::string>{});
}
#else
TEST_CASE("without MPI, --mpi is refused in one line") {
  const auto refused = run("run " + kStudy + " --mpi --out " + (scratch() / "mpi").string());
  CHECK(refused.code == 1);
  CHECK(refused.err.find("--mpi: this attrlab was built without MPI") != std::string::npos);
}
#endif
