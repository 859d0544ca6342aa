#include "experiments/report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "experiments/meta_evaluation.h"
#include "experiments/metrics/invariant.h"
#include "experiments/rank.h"
#include "experiments/report/figures.h"
#include "experiments/report/html.h"
#include "lab/core/error.h"
#include "lab/io/files.h"
#include "lab/io/npy.h"

namespace experiments {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// One piece of a report section, rendered to Markdown and HTML alike.
struct Block {
  enum class Kind { kParagraph, kTable, kFigure };
  Kind kind = Kind::kParagraph;
  std::string text;    ///< paragraph text, or a figure's caption
  Table table;         ///< kTable
  fs::path figure;     ///< kFigure: the PNG, relative to the run directory
};

struct Section {
  std::string title;
  std::vector<Block> blocks;
};

/// Index of the rows for quick lookups.
class Rows {
 public:
  explicit Rows(const std::vector<ResultRow>& rows) {
    for (const ResultRow& r : rows) {
      const std::string key = r.model + '\x1f' + r.method + '\x1f' + r.metric + '\x1f' + r.variant;
      if (r.sample == kAllSamples) {
        summary_[key] = r.value;
      } else {
        samples_[key].push_back(r.value);
        by_sample_[key][r.sample] = r.value;
      }
    }
  }
  /// The summary ("all") value, NaN if absent.
  double mean(const std::string& model, const std::string& method, const std::string& metric,
              const std::string& variant) const {
    const auto it = summary_.find(key(model, method, metric, variant));
    return it == summary_.end() ? kNaN : it->second;
  }
  std::vector<double> values(const std::string& model, const std::string& method, const std::string& metric,
                             const std::string& variant) const {
    const auto it = samples_.find(key(model, method, metric, variant));
    return it == samples_.end() ? std::vector<double>{} : it->second;
  }
  /// Sample id → value (no "all" row).
  const std::map<std::string, double>& by_sample(const std::string& model, const std::string& method,
                                                 const std::string& metric, const std::string& variant) const {
    static const std::map<std::string, double> kNone;
    const auto it = by_sample_.find(key(model, method, metric, variant));
    return it == by_sample_.end() ? kNone : it->second;
  }

 private:
  static std::string key(const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
    return a + '\x1f' + b + '\x1f' + c + '\x1f' + d;
  }
  std::map<std::string, double> summary_;
  std::map<std::string, std::vector<double>> samples_;
  std::map<std::string, std::map<std::string, double>> by_sample_;
};

/// The bootstrap over images behind every interval of the report: resamples and confidence.
constexpr int kBootstrapResamples = 1000;
constexpr double kBootstrapLevel = 0.95;

std::string interval_text(const BootstrapInterval& b) {
  return fmt::format("[{}, {}]", fixed(b.lo, 2), fixed(b.hi, 2));
}

/// A metric variant as a study names it.
struct Measure {
  std::string metric;
  std::string variant;
  std::string label;
};

Measure measure_of(const json& j) {
  return {j.at("metric").get<std::string>(), j.at("variant").get<std::string>(),
          j.value("label", j.at("metric").get<std::string>())};
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ",
                 const std::string& last = " and ") {
  if (items.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? last : sep;
    out += items[i];
  }
  return out;
}

std::string rank_text(double r) {
  if (std::isnan(r)) return "n/a";
  return std::abs(r - std::round(r)) < 1e-9 ? fmt::format("{}", static_cast<int64_t>(std::llround(r)))
                                            : fmt::format("{:.1f}", r);
}

class ReportBuilder {
 public:
  explicit ReportBuilder(const ReportInputs& in) : in_(in), e_(in.experiment), rows_(in.rows) {}

  ReportFiles build() {
    // The data files: one line per typed row, numbers as exact_number().
    std::string results = result_csv_header(), curves = curve_csv_header();
    for (const ResultRow& r : in_.rows) results += to_csv_line(r);
    for (const CurveRow& c : in_.curves) curves += to_csv_line(c);
    std::string costs = "\"model\",\"method\",\"first\",\"last\",\"evaluations\"\n";
    for (const CostRow& c : in_.costs)
      costs += fmt::format("{},{},{},{},{}\n", csv_quote(c.model), csv_quote(c.method), c.first, c.last, c.evaluations);
    files_.results = in_.run_dir / "results.csv";
    files_.curves = in_.run_dir / "curves.csv";
    lab::write_text_atomic(files_.results, results);
    lab::write_text_atomic(files_.curves, curves);
    lab::write_text_atomic(in_.run_dir / "costs.csv", costs);

    std::vector<Section> sections;
    const json studies = e_.report.value("studies", json::array());
    int index = 0;
    for (const json& study : studies) {
      ++index;
      const std::string kind = study.at("kind");
      Section s;
      s.title = study.value("title", kind);
      if (!has_model(study)) continue;  // its model was left out (models_select)
      if (kind == "faithfulness") faithfulness(study, index, s);
      else if (kind == "rankings") rankings(study, index, s);
      else if (kind == "spearman") spearman_study(study, index, s);
      else if (kind == "auc") auc(study, index, s);
      else if (kind == "coherency") coherency(study, index, s);
      else if (kind == "trap-zoo") trap_zoo(study, index, s);
      else if (kind == "soundness-completeness") soundness_completeness(study, index, s);
      else if (kind == "unified-metrics") unified_metrics(study, index, s);
      else if (kind == "false-sense") false_sense(study, index, s);
      else lab::fail_parameter("report study '{}': unknown kind '{}'; known: faithfulness, rankings, spearman, auc, coherency, trap-zoo, soundness-completeness, unified-metrics, false-sense",
                               s.title, kind);
      sections.push_back(std::move(s));
    }
    sections.push_back(settings_section());
    files_.markdown = in_.run_dir / "report.md";
    files_.html = in_.run_dir / "report.html";
    const std::string markdown_text = markdown(sections);
    lab::write_text_atomic(files_.markdown, markdown_text);
    lab::write_text_atomic(files_.html, html(sections, markdown_text));
    return files_;
  }

 private:
  // ---- helpers ------------------------------------------------------------------------------

  bool has_model(const json& study) const {
    std::vector<std::string> needed;
    if (study.contains("model")) needed.push_back(study.at("model"));
    for (const json& r : study.value("rows", json::array()))
      if (r.is_object() && r.contains("model")) needed.push_back(r.at("model"));
    for (const std::string& m : needed)
      if (!find_model(m)) return false;
    return true;
  }

  const ModelSpec* find_model(const std::string& label) const {
    for (const ModelSpec& m : e_.models)
      if (m.label == label) return &m;
    return nullptr;
  }

  /// Method labels of a study on a model: `methods` if given (those that ran), else all that ran.
  std::vector<std::string> methods_of(const json& study, const std::string& model) const {
    std::vector<std::string> ran;
    for (const MethodSpec& m : e_.methods)
      if (m.runs_on(model)) ran.push_back(m.label);
    if (!study.contains("methods")) return ran;
    std::vector<std::string> out;
    for (const json& m : study.at("methods"))
      if (std::find(ran.begin(), ran.end(), m.get<std::string>()) != ran.end()) out.push_back(m);
    return out;
  }

  Direction direction(const Measure& m) const {
    const auto it = in_.directions.find(m.metric + "/" + m.variant);
    return it == in_.directions.end() ? Direction::kHigherIsBetter : it->second;
  }

  /// A method label's family (attributions::MethodInfo::family); "other" for an outside method.
  std::string family_of(const std::string& label) const {
    for (const MethodSpec& m : e_.methods)
      if (m.label == label)
        for (const attributions::MethodInfo& info : attributions::registry())
          if (info.name == m.name && !info.family.empty()) return info.family;
    return "other";
  }

  /// `methods` grouped by family, families in the order of kFamilies, methods in their order.
  std::vector<std::pair<std::string, std::vector<std::string>>> by_family(const std::vector<std::string>& methods) const {
    static const std::vector<std::string> kFamilies = {"gradient", "propagation", "perturbation", "optimisation", "control", "other"};
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const std::string& family : kFamilies) {
      std::vector<std::string> members;
      for (const std::string& m : methods)
        if (family_of(m) == family) members.push_back(m);
      if (!members.empty()) out.push_back({family, members});
    }
    return out;
  }

  /// A method's series style: its position in the experiment, the same in every figure.
  int style_of(const std::string& label) const {
    for (size_t i = 0; i < e_.methods.size(); ++i)
      if (e_.methods[i].label == label) return static_cast<int>(i);
    return static_cast<int>(e_.methods.size());
  }

  std::string model_text(const std::string& model) const {
    const ModelSpec* spec = find_model(model);
    const std::string images = fmt::format("{} images of {}×{}", e_.count, e_.size, e_.size);
    if (spec == nullptr || spec->env == model) return fmt::format("{} ({})", model, images);
    return fmt::format("{} ({}, {})", model, spec->env, images);
  }

  void add_table(Section& s, Table t) {
    lab::write_text_atomic(in_.run_dir / "tables" / (t.id + ".csv"), to_csv(t));
    lab::write_text_atomic(in_.run_dir / "tables" / (t.id + ".md"), to_markdown(t));
    files_.tables.push_back(t);
    Block b;
    b.kind = Block::Kind::kTable;
    b.table = std::move(t);
    s.blocks.push_back(std::move(b));
  }

  void add_figure(Section& s, const std::vector<fs::path>& written, const std::string& caption) {
    files_.figures.insert(files_.figures.end(), written.begin(), written.end());
    Block b;
    b.kind = Block::Kind::kFigure;
    b.text = caption;
    b.figure = fs::relative(written.front(), in_.run_dir);
    s.blocks.push_back(std::move(b));
  }

  void add_paragraph(Section& s, std::string text) {
    Block b;
    b.text = std::move(text);
    s.blocks.insert(s.blocks.begin(), std::move(b));
  }

  /// Mean curve over samples of (model, method, metric, variant), by x.
  Series mean_curve(const std::string& model, const std::string& method, const std::string& metric,
                    const std::string& variant) const {
    std::map<double, std::pair<double, int64_t>> by_x;
    for (const CurveRow& c : in_.curves) {
      if (c.model != model || c.method != method || c.metric != metric || c.variant != variant) continue;
      auto& [sum, n] = by_x[c.x];
      sum += c.y;
      ++n;
    }
    Series s;
    s.label = method;
    for (const auto& [x, acc] : by_x) {
      s.x.push_back(x);
      s.y.push_back(acc.first / static_cast<double>(acc.second));
    }
    return s;
  }

  /// Whether the curves of `m` run over pixel counts N (x beyond 1, drawn on a log scale) rather
  /// than over the fraction of pixels perturbed: read from the curves, not from the metric's name.
  bool counts_x(const Measure& m) const {
    for (const CurveRow& c : in_.curves)
      if (c.metric == m.metric && c.variant == m.variant && c.x > 1.0) return true;
    return false;
  }

  /// Panels of mean curves for every measure among `measures` on `model` that has curves, as
  /// small multiples: one panel per (measure, method family), at most 8 lines each (a family of
  /// more is split), titled "label — family"; panels of one measure share their y range.
  std::vector<CurvePanel> curve_panels(const std::string& model, const std::vector<std::string>& methods,
                                       const std::vector<Measure>& measures, const std::string& suffix) const {
    std::vector<CurvePanel> panels;
    for (const auto& [family, members] : by_family(methods)) {
      for (size_t part = 0; part * 8 < members.size(); ++part) {
        const std::vector<std::string> chunk(members.begin() + static_cast<std::ptrdiff_t>(part * 8),
                                             members.begin() + static_cast<std::ptrdiff_t>(std::min(members.size(), part * 8 + 8)));
        for (const Measure& m : measures) {
          CurvePanel p;
          const bool counts = counts_x(m);
          const bool modulo = m.variant.find("modulo") != std::string::npos;
          p.title = m.label + suffix + " — " + family + (members.size() > 8 ? fmt::format(" ({})", part + 1) : "");
          p.y_group = m.label + suffix;
          p.log_x = counts;
          p.x_label = counts ? "N (pixels perturbed, log scale)" : "fraction of pixels perturbed";
          p.y_label = counts ? "correlation" : (modulo ? "correct steps / GT pixels" : "target probability");
          for (const std::string& method : chunk) {
            Series s = mean_curve(model, method, m.metric, m.variant);
            s.style = style_of(method);
            if (!s.x.empty()) p.series.push_back(std::move(s));
          }
          if (!p.series.empty()) panels.push_back(std::move(p));
        }
      }
    }
    return panels;
  }

  /// One map grid per method family: rows are the first `rows` images, each row with the input,
  /// its ground truth and the family's maps on one common scale with its colour bar.
  void map_grid(Section& s, const std::string& model, const std::vector<std::string>& methods, int64_t rows,
                const std::string& stem) {
    if (rows <= 0) return;
    if (!e_.save_maps) {
      Block b;
      b.text = "(No map grid: the run did not keep its maps, save-maps = false.)";
      s.blocks.push_back(b);
      return;
    }
    const datasets::DataDir data = datasets::DataDir::open(in_.run_dir / "data" / model);
    for (const auto& [family, members] : by_family(methods)) {
      MapGrid grid;
      grid.title = fmt::format("{}: {} methods", model, family);
      grid.scale = MapGrid::Scale::kRow;
      grid.methods = members;
      for (int64_t i = 0; i < std::min<int64_t>(rows, data.size()); ++i) {
        MapGridRow row;
        row.label = fmt::format("{} (label {})", data.id(i), data.label(i));
        row.input = data.image(i);
        row.gt = data.gt(i, false);
        for (const std::string& method : members) {
          const lab::Tensor map = in_.map(model, method, i);
          lab::Tensor batched = map.reshaped({1, map.dim(0), map.dim(1), map.dim(2)});
          row.maps.push_back(attributions::reduce_channels(batched).reshaped({map.dim(1), map.dim(2)}));
        }
        grid.rows.push_back(std::move(row));
      }
      add_figure(s, draw_map_grid(grid, in_.run_dir / "figures" / (stem + "-" + family)),
                 fmt::format("{}{} methods on the first {} images of {}: input, ground truth (red +1, blue −1) and each "
                             "method's map (channels summed), every map of a row on that row's common symmetric scale "
                             "(colour bar: ±99th percentile of the row's non-zero |attribution|; larger values saturate; a map "
                             "far below it is magnified by the power of ten printed in its cell).",
                             static_cast<char>(std::toupper(static_cast<unsigned char>(family[0]))), family.substr(1),
                             grid.rows.size(), model));
    }
  }

  // ---- studies -----------------------------------------------------------------------------

  /// The trap zoo (README, "The trap zoo"; metric invariant, invariant.h): a table method × trap
  /// whose cell is green when the method's promised identity held on every image of the trap, red
  /// when it broke on some, grey when the method promises none, each with the mean GT F1; a table
  /// of the largest relative violation per cell; one figure, a row per trap (its first image:
  /// input, ground truth, every method's map).
  void trap_zoo(const json& study, int index, Section& s) {
    const std::string metric = study.at("metric");
    const json& reference = study.at("reference");
    const std::string ref_metric = reference.at("metric"), ref_variant = reference.at("variant");
    const std::string ref_label = reference.value("label", ref_variant);
    std::vector<std::string> traps, trap_labels;
    for (const json& r : study.at("rows")) {
      traps.push_back(r.at("model"));
      trap_labels.push_back(r.value("label", r.at("model").get<std::string>()));
    }
    const std::vector<std::string> methods = methods_of(study, traps.front());
    auto promise = [&](const std::string& label) {
      for (const MethodSpec& m : e_.methods)
        if (m.label == label) return Invariant::promise_of(m.name);
      return std::string("none");
    };

    Table t;
    t.id = fmt::format("study{}-trap-zoo", index);
    t.title = s.title;
    t.columns = {"Method", "Promise"};
    t.columns.insert(t.columns.end(), trap_labels.begin(), trap_labels.end());
    t.align = {Align::kLeft, Align::kLeft};
    Table v;
    v.id = fmt::format("study{}-trap-zoo-violations", index);
    v.title = "Largest relative violation |S − Δ| / max(|f(x)|, |f(x')|) over the images (allowed: tolerance + IG's quadrature bound)";
    v.columns = t.columns;
    v.align = t.align;
    std::vector<std::string> kept, broken;  // "method on trap"
    int64_t promised = 0, holds = 0;
    for (const std::string& method : methods) {
      const std::string p = promise(method);
      std::vector<std::string> row = {method, p == "none" ? "—" : p}, vrow = row, classes = {"", ""};
      bool all_kept = p != "none";
      for (size_t k = 0; k < traps.size(); ++k) {
        const double f1 = rows_.mean(traps[k], method, ref_metric, ref_variant);
        const std::vector<double> pass = rows_.values(traps[k], method, metric, "pass");
        const std::vector<double> viol = rows_.values(traps[k], method, metric, "violation");
        const std::vector<double> allowed = rows_.values(traps[k], method, metric, "allowed");
        const std::string f1_text = "F1 " + fixed(f1, 2);
        if (pass.empty()) {
          row.push_back("n/a · " + f1_text);
          vrow.push_back("n/a");
          classes.push_back("na");
          continue;
        }
        ++promised;
        int64_t failed = 0;
        for (double x : pass) failed += x < 0.5;
        const double worst = *std::max_element(viol.begin(), viol.end());
        const double bound = *std::max_element(allowed.begin(), allowed.end());
        vrow.push_back(fmt::format("{:.1e} (≤ {:.1e})", worst, bound));
        if (failed == 0) {
          ++holds;
          row.push_back("✓ " + f1_text);
          classes.push_back("pass");
        } else {
          all_kept = false;
          row.push_back(fmt::format("✗ {}/{} · {}", failed, pass.size(), f1_text));
          classes.push_back("fail");
          broken.push_back(fmt::format("{} on {} ({}/{} images, violation up to {})", method, trap_labels[k], failed,
                                       pass.size(), fixed(worst, 2)));
        }
      }
      if (all_kept) kept.push_back(method);
      t.add(row);
      v.add(vrow);
      t.cell_classes.push_back(classes);
    }
    t.caption = fmt::format(
        "Per method and trap: ✓ (green) the identity the method promises held on every one of the {} images, within "
        "the tolerance of metric {} (plus, for IG, the error bound of its quadrature); ✗ (red) it broke on the images "
        "counted (images broken / images); n/a (grey) the method promises no such identity. F1 = {}, the mean over the "
        "images against the exact per-pixel ground truth.",
        e_.count, metric, ref_label);
    add_table(s, std::move(t));
    add_table(s, std::move(v));

    std::string text = fmt::format(
        "Every method on the {} traps ({} images of {}×{} each). Of the {} (method, trap) cells with a promise, {} "
        "keep it on every image. ",
        traps.size(), e_.count, e_.size, e_.size, promised, holds);
    text += kept.empty() ? "No method keeps its promise on every trap. "
                         : fmt::format("Kept on every trap: {}. ", join(kept));
    text += broken.empty() ? "No promise breaks on any trap: the runtime avoids the traps."
                           : fmt::format("Broken: {}.", join(broken, "; ", "; "));
    add_paragraph(s, text);

    // One map per cell: a row per trap (its first image), a column per method.
    if (!e_.save_maps || study.value("grid-rows", int64_t{0}) < 1) return;
    MapGrid grid;
    grid.title = "The trap zoo: each trap's first image and every method's map";
    grid.scale = MapGrid::Scale::kEq17;
    grid.methods = methods;
    for (size_t k = 0; k < traps.size(); ++k) {
      const datasets::DataDir data = datasets::DataDir::open(in_.run_dir / "data" / traps[k]);
      MapGridRow row;
      row.label = fmt::format("{} (score {})", trap_labels[k], data.label(0));
      row.input = data.image(0);
      row.gt = data.gt(0, false);
      for (const std::string& method : methods) {
        const lab::Tensor map = in_.map(traps[k], method, 0);
        lab::Tensor batched = map.reshaped({1, map.dim(0), map.dim(1), map.dim(2)});
        row.maps.push_back(attributions::reduce_channels(batched).reshaped({map.dim(1), map.dim(2)}));
      }
      grid.rows.push_back(std::move(row));
    }
    add_figure(s, draw_map_grid(grid, in_.run_dir / "figures" / fmt::format("study{}-trap-zoo-maps", index)),
               "One map per (trap, method): each trap's first image (its score), its exact ground truth (each pixel's "
               "contribution) and every method's map (channels summed), each normalised by eq. 17 (positive part over "
               "its maximum, negative part over |minimum|: red +1, white 0, blue −1), so the figure shows where each "
               "map puts its mass; the magnitudes are the table's.");
  }

  void faithfulness(const json& study, int index, Section& s) {
    const std::string model = study.at("model");
    const std::string gt_metric = study.at("metric");  // precision-, recall-, f1-<kind>[-smooth] variants
    const std::vector<std::string> methods = methods_of(study, model);
    const std::vector<std::string> kinds = study.value("kinds", std::vector<std::string>{"positive", "negative", "overall"});
    const std::vector<double> gammas = study.value("gammas", std::vector<double>{0.5, 0.6});
    const std::vector<std::string> smooth = study.value("smooth", std::vector<std::string>{});
    auto is_smooth = [&](const std::string& method, const std::string& kind) {
      return kind == "positive" && std::find(smooth.begin(), smooth.end(), method) != smooth.end();
    };
    auto variant = [&](const std::string& q, const std::string& method, const std::string& kind) {
      return q + "-" + kind + (is_smooth(method, kind) ? "-smooth" : "");
    };
    auto mean = [&](const std::string& q, const std::string& method, const std::string& kind) {
      return rows_.mean(model, method, gt_metric, variant(q, method, kind));
    };
    const std::string stem = fmt::format("study{}-{}", index, model);

    // P/R/F1 table.
    Table prf;
    prf.id = stem + "-precision-recall-f1";
    prf.title = fmt::format("Ground-truth precision / recall / F1 on {} (mean over images)", model);
    prf.columns = {"Method"};
    for (const std::string& k : kinds)
      for (const char* q : {"Precision", "Recall", "F1"}) prf.columns.push_back(fmt::format("{} ({})", q, k));
    prf.align_labels(1);
    for (const std::string& method : methods) {
      std::vector<std::string> row = {method + (is_smooth(method, "positive") ? " †" : "")};
      for (const std::string& k : kinds)
        for (const char* q : {"precision", "recall", "f1"}) row.push_back(fixed(mean(q, method, k), 2));
      prf.add(row);
    }
    prf.caption = "Soft precision Σ|a·g|/Σ|a| and recall Σ|a·g|/Σ|g| of eq.-17-normalised maps (Section 4); "
                  "positive attribution against positive GT, negative against negative GT, |a| against the overall GT.";
    if (!smooth.empty()) prf.caption += " † positive kind judged on the smooth (per-patch) ground truth, as the paper's Fig. 8.";

    // Pass/fail table.
    const json paper = study.value("paper", json::array());
    Table test;
    test.id = stem + "-faithfulness-test";
    test.title = fmt::format("Faithfulness test on {}: pass when mean F1 ≥ γ (Definition 2.1)", model);
    test.columns = {"Method"};
    for (const std::string& k : kinds) {
      test.columns.push_back(fmt::format("F1 ({})", k));
      for (double g : gammas) test.columns.push_back(fmt::format("γ={} ({})", fixed(g, 1), k));
    }
    test.columns.push_back("Paper's verdicts (agree?)");
    test.align_labels(1);
    test.align.back() = Align::kLeft;
    int agree = 0, stated = 0;
    std::vector<std::string> disagreements;
    for (const std::string& method : methods) {
      std::vector<std::string> row = {method};
      for (const std::string& k : kinds) {
        const double f1 = mean("f1", method, k);
        row.push_back(fixed(f1, 2));
        for (double g : gammas) row.push_back(std::isnan(f1) ? "n/a" : f1 >= g ? "pass" : "fail");
      }
      std::vector<std::string> verdicts;
      for (const json& p : paper) {
        if (p.at("method") != method) continue;
        const std::string kind = p.at("kind");
        const double g = p.at("gamma");
        const double f1 = mean("f1", method, kind);
        if (std::isnan(f1)) continue;
        const std::string ours = f1 >= g ? "pass" : "fail";
        const bool same = ours == p.at("verdict").get<std::string>();
        ++stated;
        agree += same ? 1 : 0;
        if (!same)
          disagreements.push_back(fmt::format("{} on {} GT at γ = {} (paper: {}, ours: {}, F1 = {})", method, kind,
                                              fixed(g, 1), p.at("verdict").get<std::string>(), ours, fixed(f1, 2)));
        verdicts.push_back(fmt::format("{} γ={}: {} ({})", kind, fixed(g, 1), p.at("verdict").get<std::string>(),
                                       same ? "yes" : "no"));
      }
      row.push_back(verdicts.empty() ? "—" : join(verdicts, "; ", "; "));
      test.add(row);
    }
    test.caption = "A method fails the test at γ when its mean F1 falls below γ (eq. 2). The last column lists the "
                   "verdicts the paper states in Section 4 / App. F–G and whether ours agree.";

    // The paragraph.
    std::string text = fmt::format("On {}. ", model_text(model));
    std::vector<std::string> parts;
    for (double g : gammas) {
      std::vector<std::string> per_kind;
      for (const std::string& k : kinds) {
        std::vector<std::string> passing;
        for (const std::string& method : methods)
          if (mean("f1", method, k) >= g) passing.push_back(method);
        per_kind.push_back(fmt::format("{}/{} methods pass on {} GT{}", passing.size(), methods.size(), k,
                                       passing.empty() ? "" : " (" + join(passing) + ")"));
      }
      parts.push_back(fmt::format("At γ = {}, {}.", fixed(g, 1), join(per_kind, "; ", "; ")));
    }
    text += join(parts, " ", " ");
    for (const json& pair : study.value("pairs", json::array())) {
      const std::string a = pair.at(0), b = pair.at(1);
      if (std::find(methods.begin(), methods.end(), a) == methods.end() ||
          std::find(methods.begin(), methods.end(), b) == methods.end())
        continue;
      const std::string k = std::find(kinds.begin(), kinds.end(), "overall") != kinds.end() ? "overall" : kinds.front();
      text += fmt::format(" {} reaches {} GT precision {} and F1 {} against {} and {} for {}{}.", b, k,
                          fixed(mean("precision", b, k), 2), fixed(mean("f1", b, k), 2),
                          fixed(mean("precision", a, k), 2), fixed(mean("f1", a, k), 2), a,
                          mean("precision", b, k) > mean("precision", a, k) ? " (the true baseline raises precision, as in the paper's Fig. 7)"
                                                                              : " (the paper's Fig. 7 finds the opposite: the true baseline raises precision)");
    }
    if (study.contains("group")) {
      const json& group = study.at("group");
      std::vector<std::string> members;
      std::string best;
      double best_f1 = -1.0;
      const std::string k = std::find(kinds.begin(), kinds.end(), "overall") != kinds.end() ? "overall" : kinds.front();
      for (const json& m : group.at("methods")) {
        const std::string method = m;
        if (std::find(methods.begin(), methods.end(), method) == methods.end()) continue;
        const double f1 = mean("f1", method, k);
        members.push_back(fmt::format("{} {}", method, fixed(f1, 2)));
        if (f1 > best_f1) {
          best_f1 = f1;
          best = method;
        }
      }
      if (!members.empty())
        text += fmt::format(" {} ({} GT F1): {}; the best is {}.", group.value("label", "Group"), k, join(members), best);
    }
    if (stated > 0) {
      text += fmt::format(" Of the {} verdicts the paper states for these methods, we agree with {}", stated, agree);
      text += disagreements.empty() ? "." : fmt::format("; we differ on {}.", join(disagreements, "; ", "; "));
    }
    add_paragraph(s, text);
    add_table(s, prf);
    add_table(s, test);

    // Violins: one row of P/R/F1 per kind.
    ViolinFigure violins;
    violins.title = fmt::format("Ground-truth precision, recall and F1 per method ({})", model);
    for (const std::string& k : kinds)
      for (const auto& [q, name] : {std::pair{"precision", "Precision"}, std::pair{"recall", "Recall"}, std::pair{"f1", "F1"}}) {
        ViolinPanel panel;
        panel.title = fmt::format("{} ({} GT)", name, k);
        panel.y_label = fmt::format("{} (fraction)", q == std::string("f1") ? "F1" : q);
        if (std::string(q) == "f1") panel.reference = gammas.empty() ? -1.0 : gammas.front();
        for (const std::string& method : methods)
          panel.groups.push_back({method, rows_.values(model, method, gt_metric, variant(q, method, k)), style_of(method)});
        violins.panels.push_back(std::move(panel));
      }
    add_figure(s, draw_violins(violins, in_.run_dir / "figures" / (stem + "-violins")),
               "Per-image precision, recall and F1 (violins: kernel density; bars: maximum, mean, minimum; "
               "dashed: γ), as in the paper's Fig. 17 and 23.");
    map_grid(s, model, methods, study.value("grid-rows", int64_t{0}), stem + "-maps");
  }

  /// Per-image values of each measure in `measures` for `methods` on `model`, over the images
  /// every (method, measure) has a value for, in sample order: [measure][method][image]. Methods
  /// without any value are left out of `kept` (their indices into `methods`).
  std::vector<std::vector<std::vector<double>>> per_image(const std::string& model, const std::vector<std::string>& methods,
                                                          const std::vector<Measure>& measures, std::vector<size_t>& kept) const {
    kept.clear();
    std::set<std::string> common;
    bool first = true;
    for (size_t i = 0; i < methods.size(); ++i) {
      bool has = true;
      for (const Measure& m : measures) has = has && !rows_.by_sample(model, methods[i], m.metric, m.variant).empty();
      if (!has) continue;
      kept.push_back(i);
      for (const Measure& m : measures) {
        std::set<std::string> ids;
        for (const auto& [id, v] : rows_.by_sample(model, methods[i], m.metric, m.variant))
          if (!std::isnan(v)) ids.insert(id);
        if (first) common = ids;
        else {
          std::set<std::string> both;
          std::set_intersection(common.begin(), common.end(), ids.begin(), ids.end(), std::inserter(both, both.end()));
          common = std::move(both);
        }
        first = false;
      }
    }
    std::vector<std::vector<std::vector<double>>> out(measures.size());
    for (size_t k = 0; k < measures.size(); ++k)
      for (size_t i : kept) {
        const auto& values = rows_.by_sample(model, methods[i], measures[k].metric, measures[k].variant);
        std::vector<double> row;
        for (const std::string& id : common) row.push_back(values.at(id));
        out[k].push_back(std::move(row));
      }
    return out;
  }

  /// Spearman's ρ between the ranking of the methods by their mean `reference` and by their mean
  /// `compare` over the images, with its bootstrap interval over images (per_image() layout for
  /// one measure each). When `fixed_ranks` is given it is the second ranking (the paper's).
  BootstrapInterval rho_interval(const std::vector<std::vector<double>>& reference, Direction reference_direction,
                                 const std::vector<std::vector<double>>* compare, Direction compare_direction,
                                 const std::vector<double>* fixed_ranks) const {
    const int64_t images = reference.empty() ? 0 : static_cast<int64_t>(reference.front().size());
    if (reference.size() < 2 || images < 1) return {kNaN, kNaN, kNaN, 0, kBootstrapLevel};
    return bootstrap(
        images,
        [&](const std::vector<int64_t>& idx) {
          const std::vector<double> a = ranking(resampled_means(reference, idx), reference_direction);
          if (fixed_ranks != nullptr) return spearman(a, *fixed_ranks);
          return spearman(a, ranking(resampled_means(*compare, idx), compare_direction));
        },
        kBootstrapResamples, static_cast<uint64_t>(e_.seed), kBootstrapLevel);
  }

  /// Our ranking of `methods` under `m` on `model` (NaN values get NaN ranks and are left out).
  std::vector<double> ranks_of(const std::string& model, const std::vector<std::string>& methods, const Measure& m) const {
    std::vector<double> values, ranks(methods.size(), kNaN);
    std::vector<size_t> present;
    for (size_t i = 0; i < methods.size(); ++i) {
      const double v = rows_.mean(model, methods[i], m.metric, m.variant);
      if (!std::isnan(v)) {
        values.push_back(v);
        present.push_back(i);
      }
    }
    if (values.empty()) return ranks;
    const std::vector<double> r = ranking(values, direction(m));
    for (size_t j = 0; j < present.size(); ++j) ranks[present[j]] = r[j];
    return ranks;
  }

  /// Spearman ρ between two rank vectors over the entries both have; NaN with fewer than 2.
  static double rho(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> x, y;
    for (size_t i = 0; i < a.size(); ++i)
      if (!std::isnan(a[i]) && !std::isnan(b[i])) {
        x.push_back(a[i]);
        y.push_back(b[i]);
      }
    return x.size() < 2 ? kNaN : spearman(x, y);
  }

  void rankings(const json& study, int index, Section& s) {
    const std::string model = study.at("model");
    const std::vector<std::string> methods = methods_of(study, model);
    const Measure reference = measure_of(study.at("reference"));
    std::vector<Measure> compare;
    for (const json& c : study.at("compare")) compare.push_back(measure_of(c));
    const json paper = study.value("paper", json::object());
    const json paper_ranks = paper.value("ranks", json::object());
    const std::vector<double> paper_rho = paper.value("correlation", std::vector<double>{});
    const std::string stem = fmt::format("study{}-{}", index, model);

    std::vector<Measure> all = {reference};
    all.insert(all.end(), compare.begin(), compare.end());
    std::vector<std::vector<double>> ours;
    for (const Measure& m : all) ours.push_back(ranks_of(model, methods, m));

    Table values;
    values.id = stem + "-values";
    values.title = fmt::format("Mean scores on {}", model);
    values.columns = {"Method"};
    for (const Measure& m : all)
      values.columns.push_back(fmt::format("{} ({})", m.label, direction(m) == Direction::kHigherIsBetter ? "↑" : "↓"));
    values.align_labels(1);
    for (const std::string& method : methods) {
      std::vector<std::string> row = {method};
      for (const Measure& m : all) row.push_back(fixed(rows_.mean(model, method, m.metric, m.variant), 4));
      values.add(row);
    }
    values.caption = "Mean over images of each metric (↑ higher is better, ↓ lower is better); the rankings below "
                     "order the methods by these values.";

    Table table;
    table.id = stem + "-rankings";
    table.title = fmt::format("Rankings of attribution methods on {} (1 = best), ours and the paper's", model);
    table.columns = {"Method"};
    for (const Measure& m : all) {
      table.columns.push_back(m.label + " (ours)");
      table.columns.push_back(m.label + " (paper)");
    }
    table.align_labels(1);
    std::vector<std::vector<double>> theirs(all.size(), std::vector<double>(methods.size(), kNaN));
    for (size_t i = 0; i < methods.size(); ++i) {
      std::vector<std::string> row = {methods[i]};
      for (size_t k = 0; k < all.size(); ++k) {
        if (paper_ranks.contains(methods[i])) theirs[k][i] = paper_ranks.at(methods[i]).at(k);
        row.push_back(rank_text(ours[k][i]));
        row.push_back(rank_text(theirs[k][i]));
      }
      table.add(row);
    }
    std::vector<double> our_rho;
    std::vector<std::string> rho_row = {"Spearman ρ vs " + reference.label}, diff_row = {"difference (ours − paper)"};
    rho_row.push_back("—");
    rho_row.push_back("—");
    diff_row.push_back("");
    diff_row.push_back("");
    for (size_t k = 0; k < compare.size(); ++k) {
      const double r = rho(ours[0], ours[k + 1]);
      our_rho.push_back(r);
      const double p = k < paper_rho.size() ? paper_rho[k] : kNaN;
      rho_row.push_back(fixed(r, 2));
      rho_row.push_back(fixed(p, 2));
      diff_row.push_back(std::isnan(p) ? "" : signed_fixed(r - p, 2));
      diff_row.push_back("");
    }
    table.add(rho_row);
    table.add(diff_row);
    table.caption = fmt::format("Ranks follow each metric's direction; ties share the average rank. ρ is Spearman's "
                                "rank correlation with the {} ranking over these {} methods.{}",
                                reference.label, methods.size(),
                                paper.contains("note") ? " " + paper.at("note").get<std::string>() : std::string());

    // Paragraph.
    std::vector<size_t> order(methods.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const double ra = std::isnan(ours[0][a]) ? 1e9 : ours[0][a], rb = std::isnan(ours[0][b]) ? 1e9 : ours[0][b];
      return ra < rb || (ra == rb && a < b);
    });
    std::vector<std::string> top;
    for (size_t j = 0; j < std::min<size_t>(3, order.size()); ++j)
      top.push_back(fmt::format("{} ({})", methods[order[j]], fixed(rows_.mean(model, methods[order[j]], reference.metric, reference.variant), 2)));
    std::string text = fmt::format("On {}, ranked by {}, the best methods are {}. ", model_text(model), reference.label, join(top));
    std::vector<std::string> rhos;
    for (size_t k = 0; k < compare.size(); ++k) {
      const double p = k < paper_rho.size() ? paper_rho[k] : kNaN;
      rhos.push_back(fmt::format("{} ρ = {}{}", compare[k].label, fixed(our_rho[k], 2),
                                 std::isnan(p) ? "" : fmt::format(" (paper {}, difference {})", fixed(p, 2), signed_fixed(our_rho[k] - p, 2))));
    }
    text += "Against this ground-truth ranking: " + join(rhos, "; ", "; ") + ". ";
    // The largest disagreement between the reference ranking and each compared ranking.
    for (size_t k = 0; k < compare.size(); ++k) {
      double worst = -1.0;
      size_t at = 0;
      for (size_t i = 0; i < methods.size(); ++i) {
        const double d = std::abs(ours[0][i] - ours[k + 1][i]);
        if (!std::isnan(d) && d > worst) {
          worst = d;
          at = i;
        }
      }
      if (worst > 0.0 && k == 0)
        text += fmt::format("The largest disagreement is {}: rank {} by {} but {} by {}. ", methods[at], rank_text(ours[0][at]),
                            reference.label, rank_text(ours[k + 1][at]), compare[k].label);
    }
    // Agreement with the paper's ranking, per metric, with its bootstrap interval over images.
    Table agreement;
    if (!paper_ranks.empty()) {
      std::vector<size_t> kept;
      const auto per = per_image(model, methods, all, kept);
      agreement.id = stem + "-agreement";
      agreement.title = fmt::format("Agreement of our rankings with the paper's on {}", model);
      agreement.columns = {"Metric", "Spearman ρ, ours vs paper", "95% bootstrap interval", "Methods", "Images"};
      agreement.align = {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight};
      std::vector<std::string> parts;
      for (size_t k = 0; k < all.size(); ++k) {
        std::vector<std::vector<double>> values_k;
        std::vector<double> paper_k;
        for (size_t j = 0; j < kept.size(); ++j)
          if (!std::isnan(theirs[k][kept[j]])) {
            values_k.push_back(per[k][j]);
            paper_k.push_back(theirs[k][kept[j]]);
          }
        const BootstrapInterval b = rho_interval(values_k, direction(all[k]), nullptr, direction(all[k]), &paper_k);
        const size_t images = values_k.empty() ? 0 : values_k.front().size();
        agreement.add({all[k].label, fixed(b.value, 2), std::isnan(b.lo) ? "n/a" : interval_text(b),
                       fmt::format("{}", values_k.size()), fmt::format("{}", images)});
        parts.push_back(fmt::format("{} {} {}", all[k].label, fixed(b.value, 2), std::isnan(b.lo) ? "" : interval_text(b)));
      }
      agreement.caption = fmt::format(
          "Spearman's ρ between our ranking of the methods (by their mean over images) and the paper's ranking, per "
          "metric; the interval is the 95% percentile bootstrap over images ({} resamples of the images with "
          "replacement, the methods re-ranked on each, seeded with the run's seed {}). An interval that excludes 0 "
          "means the agreement (or disagreement) is not an accident of these images.",
          kBootstrapResamples, e_.seed);
      text += "Spearman ρ between our ranking and the paper's, per metric, with 95% bootstrap intervals over images: " +
              join(parts) + ".";
    }
    table.footer_rows = 2;
    add_paragraph(s, text);
    add_table(s, values);
    add_table(s, table);
    if (!agreement.columns.empty()) add_table(s, agreement);

    std::vector<Measure> paths, sens;
    for (const Measure& m : compare) (counts_x(m) ? sens : paths).push_back(m);
    std::vector<CurvePanel> panels = curve_panels(model, methods, paths, "");
    if (!panels.empty()) {
      CurveFigure f{fmt::format("Insertion and Deletion on {} (mean over images)", model), 2, panels};
      const bool modulo_curves = paths.front().variant.find("modulo") != std::string::npos;
      add_figure(s, draw_curves(f, in_.run_dir / "figures" / (stem + "-insertion-deletion")),
                 modulo_curves ? "Mean modulo Insertion and Deletion curves per method: correct steps over the ground-truth "
                                 "pixels against the fraction of pixels inserted or deleted (App. F.4)."
                               : "Mean Insertion and Deletion curves per method: probability of the target class against the "
                                 "fraction of pixels inserted into a blank canvas or deleted (the paper's Fig. 9).");
    }
    panels = curve_panels(model, methods, sens, "");
    if (!panels.empty()) {
      CurveFigure f{fmt::format("Sensitivity-N on {} (mean over images)", model), 2, panels};
      add_figure(s, draw_curves(f, in_.run_dir / "figures" / (stem + "-sensitivity-n")),
                 "Mean Sensitivity-N curves: Pearson's ρ between the output change and the summed attribution of N "
                 "perturbed pixels (modulo task: correct steps), per method against N (the paper's Fig. 18, 20, 21).");
    }
    map_grid(s, model, methods, study.value("grid-rows", int64_t{0}), stem + "-maps");
  }

  void spearman_study(const json& study, int index, Section& s) {
    const Measure reference = measure_of(study.at("reference"));
    std::vector<Measure> compare;
    for (const json& c : study.at("compare")) compare.push_back(measure_of(c));
    const json paper = study.value("paper", json::object());
    Table table;
    table.id = fmt::format("study{}-spearman", index);
    table.title = study.value("table-title", "Spearman's rank correlation with the ground-truth ranking, ours and the paper's");
    table.columns = {study.value("row-header", "Model")};
    for (const Measure& m : compare)
      for (const char* w : {"ours", "95% interval", "paper", "diff."}) table.columns.push_back(fmt::format("{} ({})", m.label, w));
    table.align_labels(1);
    std::vector<std::vector<double>> our(study.at("rows").size());
    std::vector<std::string> row_labels, inside, outside;
    std::vector<std::vector<CurvePanel>> model_panels;
    for (size_t r = 0; r < study.at("rows").size(); ++r) {
      const json& spec = study.at("rows").at(r);
      const std::string model = spec.at("model"), label = spec.at("label");
      row_labels.push_back(label);
      const std::vector<std::string> methods = methods_of(study, model);
      const std::vector<double> ref = ranks_of(model, methods, reference);
      std::vector<std::string> row = {label};
      const std::vector<double> p = paper.value(label, std::vector<double>{});
      std::vector<Measure> measured = {reference};
      measured.insert(measured.end(), compare.begin(), compare.end());
      std::vector<size_t> kept;
      const auto per = per_image(model, methods, measured, kept);
      for (size_t k = 0; k < compare.size(); ++k) {
        const double v = rho(ref, ranks_of(model, methods, compare[k]));
        our[r].push_back(v);
        const double pk = k < p.size() ? p[k] : kNaN;
        const BootstrapInterval b = rho_interval(per[0], direction(reference), &per[k + 1], direction(compare[k]), nullptr);
        row.push_back(fixed(v, 2));
        row.push_back(std::isnan(b.lo) ? "n/a" : interval_text(b));
        if (!std::isnan(pk) && !std::isnan(b.lo))
          (pk >= b.lo && pk <= b.hi ? inside : outside)
              .push_back(fmt::format("{} {} (paper {}, ours {} {})", label, compare[k].label, fixed(pk, 2), fixed(v, 2),
                                     interval_text(b)));
        row.push_back(fixed(pk, 2));
        row.push_back(std::isnan(pk) ? "" : signed_fixed(v - pk, 2));
      }
      table.add(row);
      // The curves the study names (`curves`: labels of its compared measures) for each row.
      std::vector<Measure> drawn;
      for (const json& wanted : study.value("curves", json::array()))
        for (const Measure& m : compare)
          if (m.label == wanted) drawn.push_back(m);
      model_panels.push_back(curve_panels(model, methods, drawn, " (" + model + ")"));
      for (CurvePanel& p2 : model_panels.back()) p2.y_group = p2.y_group.substr(0, p2.y_group.find(" ("));
    }
    // Families as rows, the models side by side.
    std::vector<CurvePanel> panels;
    for (size_t i = 0;; ++i) {
      bool any = false;
      for (const auto& list : model_panels)
        if (i < list.size()) {
          panels.push_back(list[i]);
          any = true;
        }
      if (!any) break;
    }
    table.caption = fmt::format("Spearman's ρ between each metric's ranking of the methods and their {} ranking (the "
                                "paper's Table 2). The interval is the 95% percentile bootstrap over images ({} "
                                "resamples of the images with replacement, both rankings recomputed from the "
                                "resampled means, seeded with the run's seed {}).",
                                reference.label, kBootstrapResamples, e_.seed);
    std::string text = "Spearman's ρ with the ground-truth ranking: ";
    std::vector<std::string> per_row;
    for (size_t r = 0; r < our.size(); ++r) {
      std::vector<std::string> vals;
      for (size_t k = 0; k < compare.size(); ++k) vals.push_back(fmt::format("{} {}", compare[k].label, fixed(our[r][k], 2)));
      per_row.push_back(fmt::format("{}: {}", row_labels[r], join(vals)));
    }
    text += join(per_row, "; ", "; ") + ".";
    if (our.size() == 2 && study.value("claim", std::string()) == "first-lower") {
      std::vector<std::string> holds, fails;
      for (size_t k = 0; k < compare.size(); ++k) {
        const std::string d = fmt::format("{} (Δρ = {})", compare[k].label, signed_fixed(our[0][k] - our[1][k], 2));
        (our[0][k] < our[1][k] ? holds : fails).push_back(d);
      }
      text += fmt::format(" The paper finds every perturbation metric less consistent with the ground truth in the "
                          "'{}' setting than in '{}' (Δρ = ρ({}) − ρ({}) < 0). ",
                          row_labels[0], row_labels[1], row_labels[0], row_labels[1]);
      if (fails.empty()) text += fmt::format("Here that holds for all of them: {}.", join(holds));
      else if (holds.empty()) text += fmt::format("Here it holds for none of them: {}.", join(fails));
      else text += fmt::format("Here it holds for {}, but not for {}.", join(holds), join(fails));
    }
    if (!inside.empty() || !outside.empty())
      text += fmt::format(" The paper's value lies inside our 95% bootstrap interval for {} of {} entries{}.", inside.size(),
                          inside.size() + outside.size(), outside.empty() ? "" : "; outside it for " + join(outside, "; ", "; "));
    add_paragraph(s, text);
    add_table(s, table);
    if (!panels.empty()) {
      CurveFigure f{"Insertion with and without the unseen-data effect (mean over images)",
                    static_cast<int>(std::max<size_t>(1, model_panels.size())), panels};
      add_figure(s, draw_curves(f, in_.run_dir / "figures" / fmt::format("study{}-insertion", index)),
                 "Mean Insertion curves in both settings (the paper's Fig. 9).");
    }
  }

  MetricVariant variant_of(const Measure& m) const { return {m.label, m.metric, m.variant, direction(m)}; }

  /// Meta-evaluation of the metrics (meta_evaluation.h): internal consistency of each metric's
  /// configurations, the inter-metric reliability matrix per model (CSV tables and a heat map),
  /// and each metric's agreement with the ground-truth ranking of the methods.
  void coherency(const json& study, int index, Section& s) {
    const Measure reference = measure_of(study.at("reference"));
    std::vector<MetricVariant> measures;
    for (const json& c : study.at("compare")) measures.push_back(variant_of(measure_of(c)));
    const std::string stem = fmt::format("study{}", index);
    std::vector<std::string> models;
    for (const json& r : study.at("rows")) models.push_back(r.at("model"));
    std::vector<std::string> findings;

    // Internal consistency.
    Table ic;
    ic.id = stem + "-internal-consistency";
    ic.title = "Internal consistency: Spearman's ρ across images between configurations of one metric";
    ic.columns = {"Model", "Metric", "Configuration A", "Configuration B", "ρ (mean over methods)", "Methods"};
    ic.align = {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight};
    ic.caption = "Per method, Spearman's ρ between the per-image scores of two configurations (each turned "
                 "higher-is-better), then the mean over the methods where it is defined (a configuration constant "
                 "over the images has none); the paper's Table 1.";
    std::vector<std::string> ic_text;
    for (const std::string& model : models) {
      const std::vector<std::string> methods = methods_of(study, model);
      for (const json& group : study.value("consistency", json::array())) {
        std::vector<MetricVariant> configs;
        for (const json& c : group.at("configs")) configs.push_back(variant_of(measure_of(c)));
        const CorrelationMatrix m = internal_consistency(in_.rows, model, methods, configs);
        double lowest = kNaN;
        std::string lowest_pair;
        for (size_t i = 0; i < configs.size(); ++i)
          for (size_t j = i + 1; j < configs.size(); ++j) {
            ic.add({model, group.at("label"), m.measures[i], m.measures[j], fixed(m.mean[i][j], 2),
                    std::to_string(m.count[i][j])});
            if (std::isfinite(m.mean[i][j]) && !(m.mean[i][j] >= lowest)) {
              lowest = m.mean[i][j];
              lowest_pair = m.measures[i] + " vs " + m.measures[j];
            }
          }
        if (!lowest_pair.empty())
          ic_text.push_back(fmt::format("{} on {}: lowest ρ {} ({})", group.at("label").get<std::string>(), model,
                                        fixed(lowest, 2), lowest_pair));
      }
    }
    if (!ic_text.empty()) findings.push_back("Internal consistency — " + join(ic_text, "; ", "; ") + ".");

    // Inter-metric reliability, one matrix per model.
    std::vector<std::pair<Table, Table>> reliability_tables;
    std::vector<std::pair<std::vector<fs::path>, std::string>> figures;
    for (size_t r = 0; r < models.size(); ++r) {
      const std::string& model = models[r];
      const std::vector<std::string> methods = methods_of(study, model);
      const CorrelationMatrix m = reliability(in_.rows, model, methods, measures);
      const std::string id = fmt::format("{}-reliability-{}", stem, slugify(model));
      Table square = correlation_square_table(m, id, fmt::format("Inter-metric reliability on {} (mean over methods)", model));
      square.caption = "Per method, Spearman's ρ between the per-image scores of two metrics (the point-biserial r when "
                       "exactly one is binary), both turned higher-is-better, then the mean over methods: +1 = the two "
                       "metrics order the images alike, −1 = opposite notions of a good explanation (the paper's Table 2). "
                       "Every method's value is in tables/" + id + "-per-method.csv.";
      Table lines = correlation_long_table(m, id + "-per-method", fmt::format("Inter-metric reliability on {}, per method", model));
      lines.caption = "Every method and pair: the coefficient used, its value (nan: undefined, a score constant over the "
                      "images) and the images both metrics scored; the \"mean\" lines count the methods averaged.";
      reliability_tables.push_back({square, lines});
      Heatmap h;
      h.title = fmt::format("Inter-metric reliability on {} (mean over {} methods)", model, methods.size());
      h.labels = m.measures;
      h.values = m.mean;
      for (size_t i = 0; i < h.values.size(); ++i) h.values[i][i] = m.count[i][i] > 0 ? 1.0 : kNaN;
      h.bar_label = "ρ";
      h.note = "Spearman's ρ (point-biserial r for a binary metric), both metrics oriented higher-is-better";
      figures.push_back({draw_heatmap(h, in_.run_dir / "figures" / id),
                         fmt::format("Inter-metric reliability on {}: red = two metrics agree on which explanation of an "
                                     "image is better, blue = they disagree.", model)});
      double best = kNaN, worst = kNaN;
      std::string best_pair, worst_pair;
      for (size_t i = 0; i < m.measures.size(); ++i)
        for (size_t j = i + 1; j < m.measures.size(); ++j) {
          const double v = m.mean[i][j];
          if (!std::isfinite(v)) continue;
          if (!(v <= best)) best = v, best_pair = m.measures[i] + " & " + m.measures[j];
          if (!(v >= worst)) worst = v, worst_pair = m.measures[i] + " & " + m.measures[j];
        }
      if (!best_pair.empty())
        findings.push_back(fmt::format("Reliability on {}: the most coherent pair is {} (ρ {}), the least {} (ρ {}).", model,
                                       best_pair, fixed(best, 2), worst_pair, fixed(worst, 2)));
    }

    // Agreement with the truth.
    Table ag;
    ag.id = stem + "-agreement-with-truth";
    ag.title = fmt::format("Agreement with the truth: Spearman's ρ between each metric's ranking of the methods and the {} ranking",
                           reference.label);
    ag.columns = {"Metric"};
    for (const std::string& model : models) {
      ag.columns.push_back(model + " ρ");
      ag.columns.push_back(model + " 95% interval");
      ag.columns.push_back(model + " methods");
    }
    ag.align_labels(1);
    std::vector<TruthAgreement> truth;
    for (const std::string& model : models)
      truth.push_back(agreement_with_truth(in_.rows, model, methods_of(study, model), measures, variant_of(reference),
                                           kBootstrapResamples, static_cast<uint64_t>(e_.seed), kBootstrapLevel));
    for (size_t k = 0; k < measures.size(); ++k) {
      std::vector<std::string> row = {measures[k].name()};
      for (const TruthAgreement& t : truth) {
        const Agreement& a = t.measures[k];
        row.push_back(fixed(a.rho.value, 2));
        row.push_back(std::isnan(a.rho.lo) ? "n/a" : interval_text(a.rho));
        row.push_back(std::to_string(a.methods));
      }
      ag.add(row);
    }
    ag.caption = fmt::format("Methods ranked by their mean score over the images (rank 1 = best in the metric's direction), "
                             "ρ against their ranking by {} (over the methods the metric scores: a complexity metric has no "
                             "value for an all-zero map); the interval is the 95% percentile bootstrap over images "
                             "({} resamples, both rankings recomputed from the resampled means, seed {}).",
                             reference.label, kBootstrapResamples, e_.seed);
    for (const TruthAgreement& t : truth) {
      std::vector<std::string> agree, oppose, unsure, undefined;
      for (const Agreement& a : t.measures) {
        const std::string d = fmt::format("{} ({})", a.measure, fixed(a.rho.value, 2));
        if (std::isnan(a.rho.lo)) undefined.push_back(a.measure);
        else (a.rho.lo > 0.0 ? agree : a.rho.hi < 0.0 ? oppose : unsure).push_back(d);
      }
      findings.push_back(fmt::format("Against the truth on {} ({} methods): ranking like {} with the whole interval above 0: "
                                     "{}; below 0: {}; interval containing 0: {}{}.",
                                     t.model, t.methods.size(), reference.label, join(agree), join(oppose), join(unsure),
                                     undefined.empty() ? "" : "; undefined (fewer than 2 methods scored): " + join(undefined)));
    }
    add_paragraph(s, "The coherency paper judges metrics only by each other: whether configurations of one metric agree "
                     "(internal consistency) and whether two metrics agree on which explanation is better (inter-metric "
                     "reliability). With the designed ground truth we can also ask whether a metric ranks the methods as "
                     "the truth does. " + join(findings, " ", " "));
    if (!ic.rows.empty()) add_table(s, ic);
    for (size_t r = 0; r < reliability_tables.size(); ++r) {
      add_table(s, reliability_tables[r].first);
      add_figure(s, figures[r].first, figures[r].second);
      // Per method and pair: too long to read in the report, kept as a data file.
      const Table& lines = reliability_tables[r].second;
      lab::write_text_atomic(in_.run_dir / "tables" / (lines.id + ".csv"), to_csv(lines));
    }
    add_table(s, ag);
  }

  void auc(const json& study, int index, Section& s) {
    const std::string model = study.at("model");
    const std::vector<std::string> methods = methods_of(study, model);
    std::vector<Measure> compare;
    for (const json& c : study.at("compare")) compare.push_back(measure_of(c));
    const json paper = study.value("paper", json::object());
    const std::string stem = fmt::format("study{}-{}", index, model);
    Table table;
    table.id = stem + "-auc";
    table.title = fmt::format("Insertion/Deletion AUC on {}, ours and the paper's", model);
    table.columns = {"Method"};
    for (const Measure& m : compare)
      for (const char* w : {"ours", "paper", "diff."})
        table.columns.push_back(fmt::format("{} {} ({})", m.label, direction(m) == Direction::kHigherIsBetter ? "↑" : "↓", w));
    table.align_labels(1);
    std::vector<std::string> text_parts;
    for (const std::string& method : methods) {
      std::vector<std::string> row = {method};
      for (size_t k = 0; k < compare.size(); ++k) {
        const double v = rows_.mean(model, method, compare[k].metric, compare[k].variant);
        const double p = paper.contains(method) ? paper.at(method).at(k).get<double>() : kNaN;
        row.push_back(fixed(v, 4));
        row.push_back(fixed(p, 4));
        row.push_back(std::isnan(p) ? "" : signed_fixed(v - p, 4));
      }
      table.add(row);
    }
    table.caption = "Mean AUC over images of the modulo Insertion/Deletion of App. F.4 (one pixel per step; a step is "
                    "correct when the predicted label changes; normalised by the ground-truth pixels).";
    for (size_t k = 0; k < compare.size(); ++k) {
      const Measure& m = compare[k];
      std::vector<std::pair<double, std::string>> v;
      for (const std::string& method : methods) {
        const double x = rows_.mean(model, method, m.metric, m.variant);
        if (!std::isnan(x)) v.push_back({x, method});
      }
      if (v.empty()) continue;
      const bool higher = direction(m) == Direction::kHigherIsBetter;
      const double best = higher ? std::max_element(v.begin(), v.end())->first : std::min_element(v.begin(), v.end())->first;
      std::vector<std::string> tied;
      for (const auto& [x, method] : v)
        if (std::abs(x - best) <= 5e-4) tied.push_back(method);
      std::vector<std::string> paper_best;
      if (!paper.empty()) {
        double pb = higher ? -1e9 : 1e9;
        for (const auto& [method, vals] : paper.items()) {
          const double x = vals.at(k).get<double>();
          pb = higher ? std::max(pb, x) : std::min(pb, x);
        }
        for (const auto& [method, vals] : paper.items())
          if (std::abs(vals.at(k).get<double>() - pb) <= 5e-4) paper_best.push_back(method);
      }
      text_parts.push_back(fmt::format("the best {} is {} ({}){}", m.label, fixed(best, 4), join(tied),
                                       paper_best.empty() ? "" : fmt::format(", where the paper's best are {}", join(paper_best))));
    }
    std::string text = fmt::format("On {}, {}. ", model_text(model), join(text_parts, "; ", "; "));
    double sum_abs = 0.0;
    int n = 0;
    for (const std::string& method : methods)
      for (size_t k = 0; k < compare.size(); ++k) {
        const double v = rows_.mean(model, method, compare[k].metric, compare[k].variant);
        if (paper.contains(method) && !std::isnan(v)) {
          sum_abs += std::abs(v - paper.at(method).at(k).get<double>());
          ++n;
        }
      }
    if (n > 0) text += fmt::format("The mean absolute difference from the paper's {} values is {}. ", n, fixed(sum_abs / n, 4));
    // The optimum of the modulo curves (App. F.4): every ground-truth pixel ranked first gives
    // Insertion AUC 1 − G/(2P) and Deletion AUC G/(2P), G the white pixels, P = H·W.
    bool modulo = false;
    for (const Measure& m : compare) modulo = modulo || m.variant.find("modulo") != std::string::npos;
    if (modulo) {
      const datasets::DataDir data = datasets::DataDir::open(in_.run_dir / "data" / model);
      double share = 0.0;
      for (int64_t i = 0; i < data.size(); ++i)
        share += static_cast<double>(data.counts(i).at(0)) / static_cast<double>(e_.size * e_.size);
      share /= static_cast<double>(std::max<int64_t>(1, data.size()));
      text += fmt::format("On these images the optimum (all ground-truth pixels ranked first) is Insertion {} and "
                          "Deletion {} on average (1 − G/2P and G/2P, with white pixels G a fraction {} of the image); "
                          "the paper's optimum at 224×224 is 0.9754 / 0.0246, so absolute AUCs are comparable only "
                          "relative to each optimum.",
                          fixed(1.0 - share / 2.0, 4), fixed(share / 2.0, 4), fixed(share, 3));
    }
    add_paragraph(s, text);
    add_table(s, table);
    std::vector<CurvePanel> panels = curve_panels(model, methods, compare, "");
    if (!panels.empty()) {
      CurveFigure f{fmt::format("Insertion and Deletion (modulo variant) on {}", model), 2, panels};
      add_figure(s, draw_curves(f, in_.run_dir / "figures" / (stem + "-insertion-deletion")),
                 "Mean modulo Insertion/Deletion curves (App. F.4).");
    }
  }

  Section settings_section() const {
    Section s;
    s.title = "Methods and settings";
    Table t;
    t.id = "methods";
    t.title = "";
    // Network evaluations per image, from the work units' costs.
    std::map<std::pair<std::string, std::string>, std::pair<double, double>> cost;
    for (const CostRow& c : in_.costs) {
      auto& [evaluations, images] = cost[{c.model, c.method}];
      evaluations += static_cast<double>(c.evaluations);
      images += static_cast<double>(c.last - c.first + 1);
    }
    t.columns = {"Label", "Method", "Parameters", "Network evaluations per image"};
    for (const MethodSpec& m : e_.methods) {
      std::vector<std::string> per_model;
      for (const ModelSpec& model : e_.models) {
        const auto it = cost.find({model.label, m.label});
        if (it == cost.end() || it->second.second <= 0) continue;
        per_model.push_back((e_.models.size() > 1 ? model.label + ": " : std::string()) +
                            fmt::format("{:.0f}", it->second.first / it->second.second));
      }
      t.add({m.label, m.name, m.params.empty() ? "defaults" : m.params.dump(), join(per_model, ", ", ", ")});
    }
    Block p;
    p.text = fmt::format("attrlab {}; seed {}; {} images per model at {}×{}; targets: the {}. Metrics: {}. The fully "
                         "resolved configuration with every seed is in config.json; every method's resolved parameters "
                         "are in maps/<model>/<method>/maps.json.",
                         ATTRLAB_VERSION, e_.seed, e_.count, e_.size, e_.size, e_.target == "label" ? "designed labels" : "predicted labels",
                         [&] {
                           std::vector<std::string> names;
                           for (const MetricSpec& m : e_.metrics)
                             names.push_back((m.label == m.name ? m.name : m.label + " (" + m.name + ")") +
                                             (m.params.empty() ? "" : " " + m.params.dump()));
                           return join(names, ", ", ", ");
                         }());
    s.blocks.push_back(p);
    Block b;
    b.kind = Block::Kind::kTable;
    b.table = t;
    s.blocks.push_back(b);
    return s;
  }

  // ---- the metric papers' studies, judged by the truth ---------------------------------------

  /// The measure under `key` of a study.
  static Measure measure_at(const json& study, const char* key) { return measure_of(study.at(key)); }

  /// Per-image values of (model, method, measure), by sample id (NaN values left out).
  std::map<std::string, double> image_values(const std::string& model, const std::string& method, const Measure& m) const {
    std::map<std::string, double> out;
    for (const auto& [id, v] : rows_.by_sample(model, method, m.metric, m.variant))
      if (!std::isnan(v)) out[id] = v;
    return out;
  }

  /// Whether score a is strictly better than b under `m`'s direction.
  bool better(const Measure& m, double a, double b) const {
    return direction(m) == Direction::kHigherIsBetter ? a > b : a < b;
  }

  /// The share of the images both have where `a` scores strictly better than `b` under `m`, and
  /// the number of those images.
  std::pair<double, int64_t> share_better(const std::string& model, const std::string& a, const std::string& b,
                                          const Measure& m) const {
    const auto va = image_values(model, a, m), vb = image_values(model, b, m);
    int64_t wins = 0, n = 0;
    for (const auto& [id, x] : va) {
      const auto it = vb.find(id);
      if (it == vb.end()) continue;
      ++n;
      wins += better(m, x, it->second) ? 1 : 0;
    }
    return {n == 0 ? kNaN : static_cast<double>(wins) / static_cast<double>(n), n};
  }

  static std::string percent_text(double share) {
    return std::isnan(share) ? "n/a" : fmt::format("{}%", static_cast<int64_t>(std::llround(100.0 * share)));
  }

  /// Symmetric Hausdorff distance between two curves as point sets in (x, y).
  static double hausdorff(const Series& a, const Series& b) {
    if (a.x.empty() || b.x.empty()) return kNaN;
    auto directed = [](const Series& p, const Series& q) {
      double worst = 0.0;
      for (size_t i = 0; i < p.x.size(); ++i) {
        double best = INFINITY;
        for (size_t j = 0; j < q.x.size(); ++j) best = std::min(best, std::hypot(p.x[i] - q.x[j], p.y[i] - q.y[j]));
        worst = std::max(worst, best);
      }
      return worst;
    };
    return std::max(directed(a, b), directed(b, a));
  }

  /// The area under a mean curve from its first x up to `x_end` (trapezoid, the last segment
  /// cut by linear interpolation).
  static double area_until(const Series& s, double x_end) {
    double area = 0.0;
    for (size_t i = 1; i < s.x.size(); ++i) {
      if (s.x[i - 1] >= x_end) break;
      const double x1 = std::min(s.x[i], x_end);
      const double y1 = s.x[i] <= x_end ? s.y[i]
                                        : s.y[i - 1] + (s.y[i] - s.y[i - 1]) * (x1 - s.x[i - 1]) / (s.x[i] - s.x[i - 1]);
      area += 0.5 * (s.y[i - 1] + y1) * (x1 - s.x[i - 1]);
    }
    return area;
  }

  static double mean_of(const std::vector<double>& v) {
    double sum = 0.0;
    int64_t n = 0;
    for (double x : v)
      if (!std::isnan(x)) {
        sum += x;
        ++n;
      }
    return n == 0 ? kNaN : sum / static_cast<double>(n);
  }

  static double sd_of(const std::vector<double>& v) {
    const double m = mean_of(v);
    double sum = 0.0;
    int64_t n = 0;
    for (double x : v)
      if (!std::isnan(x)) {
        sum += (x - m) * (x - m);
        ++n;
      }
    return n < 2 ? 0.0 : std::sqrt(sum / static_cast<double>(n - 1));
  }

  /// Soundness and completeness (Gao et al. 2024): the estimators against the exact values per
  /// (method, image) on each row's model, and the Remove / Introduce edits' minimal Hausdorff
  /// distances (their Table 1) beside what the exact values say the edits changed.
  void soundness_completeness(const json& study, int index, Section& s) {
    const double tolerance = study.value("tolerance", 0.05);
    const std::vector<std::pair<Measure, Measure>> pairs = {
        {measure_at(study, "soundness"), measure_at(study, "soundness-exact")},
        {measure_at(study, "completeness"), measure_at(study, "completeness-exact")}};
    const std::string stem = fmt::format("study{}", index);
    std::string text;

    // (1) Estimators against the exact values.
    Table est;
    est.id = stem + "-estimators";
    est.title = "Estimators against the exact values from the designed ground truth (mean over images)";
    est.columns = {"Model", "Assumption 4.10", "Method"};
    for (const auto& [e, x] : pairs) {
      est.columns.push_back(e.label);
      est.columns.push_back(x.label);
      est.columns.push_back(fmt::format("|{} − exact|", e.label));
    }
    est.align_labels(3);
    Table summary;
    summary.id = stem + "-estimator-error";
    summary.title = fmt::format("Estimator error per model over every (method, image) pair (tolerance {})", fixed(tolerance, 2));
    summary.columns = {"Model", "Assumption 4.10", "Measure", "pairs", "mean |estimate − exact|",
                       fmt::format("within {}", fixed(tolerance, 2)), "ρ (method ranking)"};
    summary.align_labels(3);
    CurveFigure scatter;
    scatter.title = "Per-image estimate against the exact value (dashed: estimate = exact)";
    scatter.columns = 2;
    std::vector<std::string> findings;
    double holds_mae = kNaN, fails_mae = kNaN;
    for (const json& row : study.at("rows")) {
      const std::string model = row.at("model"), assumption = row.value("assumption", "");
      const std::vector<std::string> methods = methods_of(study, model);
      for (const auto& [e, x] : pairs) {
        std::vector<double> errors, mean_est, mean_exact;
        CurvePanel panel;
        panel.title = fmt::format("{} — {} (assumption {})", e.label, model, assumption);
        panel.x_label = x.label;
        panel.y_label = e.label;
        panel.points = true;
        panel.diagonal = true;
        for (const std::string& method : methods) {
          const auto ve = image_values(model, method, e), vx = image_values(model, method, x);
          Series points;
          points.label = method;
          points.style = style_of(method);
          for (const auto& [id, a] : ve) {
            const auto it = vx.find(id);
            if (it == vx.end()) continue;
            errors.push_back(std::abs(a - it->second));
            points.x.push_back(it->second);
            points.y.push_back(a);
          }
          mean_est.push_back(rows_.mean(model, method, e.metric, e.variant));
          mean_exact.push_back(rows_.mean(model, method, x.metric, x.variant));
          if (!points.x.empty()) panel.series.push_back(std::move(points));
        }
        if (!panel.series.empty()) scatter.panels.push_back(std::move(panel));
        int64_t within = 0;
        for (double d : errors) within += d <= tolerance ? 1 : 0;
        const double mae = mean_of(errors);
        const double share = errors.empty() ? kNaN : static_cast<double>(within) / static_cast<double>(errors.size());
        const double r = rho(ranking(mean_est, Direction::kHigherIsBetter), ranking(mean_exact, Direction::kHigherIsBetter));
        if (assumption == "holds") holds_mae = std::isnan(holds_mae) ? mae : std::max(holds_mae, mae);
        if (assumption == "fails") fails_mae = std::isnan(fails_mae) ? mae : std::max(fails_mae, mae);
        summary.add({model, assumption, e.label, fmt::format("{}", errors.size()), fixed(mae, 3), percent_text(share), fixed(r, 2)});
        findings.push_back(fmt::format("on {} (assumption {}) the {} estimate is off the exact value by {} on average and "
                                       "within {} on {} of {} (method, image) pairs, ranking the methods at ρ = {} with the exact ranking",
                                       model, assumption, e.label, fixed(mae, 3), fixed(tolerance, 2), percent_text(share),
                                       errors.size(), fixed(r, 2)));
      }
      for (const std::string& method : methods) {
        std::vector<std::string> cells = {model, assumption, method};
        for (const auto& [e, x] : pairs) {
          const auto ve = image_values(model, method, e), vx = image_values(model, method, x);
          std::vector<double> d;
          for (const auto& [id, a] : ve)
            if (vx.count(id)) d.push_back(std::abs(a - vx.at(id)));
          cells.push_back(fixed(rows_.mean(model, method, e.metric, e.variant), 3));
          cells.push_back(fixed(rows_.mean(model, method, x.metric, x.variant), 3));
          cells.push_back(fixed(mean_of(d), 3));
        }
        est.add(cells);
      }
    }
    est.caption = "Soundness: Alg. 3's estimate (mean q_i over the schedule) and the exact |A_inc ∩ I|_η / |A_inc|_η at the "
                  "same steps; completeness: Alg. 4's Δs normalised by the whole image's Δs, and the exact |A_t ∩ I|_φ / |I|_φ "
                  "at the same thresholds (soundness.h, completeness.h).";
    summary.caption = "ρ: Spearman's rank correlation between the methods ranked by the mean estimate and by the mean exact value.";
    // The claim, from the error table: the estimators track the exact values where the
    // assumption holds and not where it fails.
    text += "The paper's claim (Theorems 4.11 and 4.12, Sec. 4.2–4.3): under Assumption 4.10 (\"if ρ(f(F1)) < ρ(f(F2)) "
            "then |I∩F1|φ < |I∩F2|φ\"), Alg. 3 measures soundness and Alg. 4 orders maps by completeness. ";
    for (const json& row : study.at("rows"))
      text += fmt::format("On {} the assumption {}: {} ", row.at("model").get<std::string>(), row.value("assumption", ""),
                          row.value("why", ""));
    text += "Measured: " + join(findings, "; ", "; ") + ". ";
    text += fmt::format("When the truth is known, the claim {}: the largest mean error is {} where the assumption holds "
                        "against {} where it fails.",
                        !std::isnan(holds_mae) && !std::isnan(fails_mae) && holds_mae <= tolerance && fails_mae > tolerance
                            ? "holds, and only under its assumption"
                        : !std::isnan(holds_mae) && holds_mae <= tolerance ? "holds where the assumption holds"
                                                                          : "does not hold on our networks",
                        fixed(holds_mae, 3), fixed(fails_mae, 3));

    // (2) The edits: minimal Hausdorff distances per measure (Table 1) and the exact changes.
    if (study.contains("edits")) {
      const std::string model = study.at("edits-model");
      std::vector<Measure> curves;
      for (const json& c : study.at("edit-curves")) curves.push_back(measure_of(c));
      const json paper = study.value("paper", json::object());
      std::map<std::string, std::vector<double>> distances;  // by measure label
      Table edits;
      edits.id = stem + "-edits-hausdorff";
      edits.title = fmt::format("Minimal Hausdorff distance between the scaled mean curves of the original, Remove and Introduce maps on {} (Table 1)", model);
      edits.columns = {"Original", "Scheme"};
      for (const Measure& m : curves) edits.columns.push_back(m.label);
      edits.align_labels(2);
      Table truth;
      truth.id = stem + "-edits-truth";
      truth.title = fmt::format("What each edit changed, by the exact values and by the metrics (edited − original, mean over images, {})", model);
      truth.columns = {"Edit", pairs[0].second.label, pairs[1].second.label, pairs[0].first.label, pairs[1].first.label};
      for (const Measure& m : curves)
        if (m.metric != pairs[0].first.metric && m.metric != pairs[1].first.metric) truth.columns.push_back(m.label);
      truth.align_labels(1);
      CurveFigure figure;
      figure.title = fmt::format("Mean curves of original, Remove (R) and Introduce (I) maps on {}", model);
      figure.columns = static_cast<int>(curves.size());
      std::map<std::string, std::vector<const json*>> by_original;
      std::vector<std::string> originals;
      for (const json& e : study.at("edits")) {
        const std::string o = e.at("original");
        if (!by_original.count(o)) originals.push_back(o);
        by_original[o].push_back(&e);
      }
      int remove_lowers_completeness = 0, remove_keeps_soundness = 0, introduce_lowers_soundness = 0, n_edits = 0;
      std::map<std::string, std::pair<double, double>> y_range;
      for (const Measure& m : curves) {
        double lo = INFINITY, hi = -INFINITY;
        for (const json& e : study.at("edits"))
          for (const char* key : {"original", "remove", "introduce"})
            for (double y : mean_curve(model, e.at(key), m.metric, m.variant).y) {
              lo = std::min(lo, y);
              hi = std::max(hi, y);
            }
        y_range[m.label] = {lo, hi};
      }
      for (const std::string& original : originals) {
        for (const Measure& m : curves) {
          CurvePanel panel;
          panel.title = fmt::format("{} — {}", m.label, original);
          panel.y_group = m.label;
          panel.x_label = counts_x(m) ? "N" : (m.metric == pairs[1].first.metric ? "attribution threshold t" : m.metric == pairs[0].first.metric ? "kept fraction" : "fraction of pixels removed");
          panel.y_label = m.label;
          auto add = [&](const std::string& label) {
            Series c = mean_curve(model, label, m.metric, m.variant);
            c.style = style_of(label);
            if (!c.x.empty()) panel.series.push_back(std::move(c));
          };
          add(original);
          for (const json* e : by_original[original]) {
            add(e->at("remove"));
            add(e->at("introduce"));
          }
          if (!panel.series.empty()) figure.panels.push_back(std::move(panel));
        }
        for (const json* e : by_original[original]) {
          const std::string scheme = e->value("scheme", ""), rem = e->at("remove"), intro = e->at("introduce");
          std::vector<std::string> cells = {original, scheme};
          for (const Measure& m : curves) {
            // y scaled to [0, 1] over every curve of the edits under this measure, so that the
            // distances of measures in different units (a probability near 1/4, a logit
            // difference, a ratio) compare.
            const auto [lo, hi] = y_range[m.label];
            auto scaled = [&, lo = lo, hi = hi](Series c) {
              for (double& y : c.y) y = hi > lo ? (y - lo) / (hi - lo) : 0.0;
              return c;
            };
            const Series a = scaled(mean_curve(model, original, m.metric, m.variant)),
                         r = scaled(mean_curve(model, rem, m.metric, m.variant)),
                         i = scaled(mean_curve(model, intro, m.metric, m.variant));
            const double d = std::min({hausdorff(a, r), hausdorff(a, i), hausdorff(r, i)});
            distances[m.label].push_back(d);
            cells.push_back(fixed(d, 3));
          }
          edits.add(cells);
          for (const auto& [label, edited] : {std::pair{std::string("Remove"), rem}, std::pair{std::string("Introduce"), intro}}) {
            std::vector<std::string> row = {fmt::format("{} ({}, {})", original, label, scheme)};
            auto delta = [&](const Measure& m) {
              return rows_.mean(model, edited, m.metric, m.variant) - rows_.mean(model, original, m.metric, m.variant);
            };
            const double ds = delta(pairs[0].second), dc = delta(pairs[1].second);
            row.push_back(signed_fixed(ds, 3));
            row.push_back(signed_fixed(dc, 3));
            row.push_back(signed_fixed(delta(pairs[0].first), 3));
            row.push_back(signed_fixed(delta(pairs[1].first), 3));
            for (const Measure& m : curves)
              if (m.metric != pairs[0].first.metric && m.metric != pairs[1].first.metric) {
                // The row value of the curve's metric (its mean over the curve).
                row.push_back(signed_fixed(delta(m), 3));
              }
            truth.add(row);
            if (label == "Remove") {
              ++n_edits;
              remove_lowers_completeness += dc < -1e-9 ? 1 : 0;
              remove_keeps_soundness += ds > -0.01 ? 1 : 0;
            } else {
              introduce_lowers_soundness += ds < -1e-9 ? 1 : 0;
            }
          }
        }
      }
      std::vector<std::string> mean_row = {"mean ± sd", ""}, paper_row = {"paper (Table 1)", ""};
      std::vector<std::string> parts;
      double value_based = INFINITY, order_based = -INFINITY;
      for (const Measure& m : curves) {
        const double mu = mean_of(distances[m.label]);
        mean_row.push_back(fmt::format("{} ± {}", fixed(mu, 3), fixed(sd_of(distances[m.label]), 3)));
        const double p = paper.contains(m.label) ? paper.at(m.label).get<double>() : kNaN;
        paper_row.push_back(fixed(p, 3));
        parts.push_back(fmt::format("{} {} (paper {})", m.label, fixed(mu, 3), fixed(p, 3)));
        if (m.metric == pairs[0].first.metric || m.metric == pairs[1].first.metric) value_based = std::min(value_based, mu);
        else order_based = std::max(order_based, mu);
      }
      edits.add(mean_row);
      edits.add(paper_row);
      edits.footer_rows = 2;
      edits.caption = "Per original map and edit scheme (App. G.3 Table 3), the smallest of the three Hausdorff distances "
                      "between the mean curves of original, Remove and Introduce (curves as point sets in (x, y), x in [0, 1], "
                      "y scaled to [0, 1] over all the edits' curves of the metric, so that metrics in different units "
                      "compare; the paper's curves are accuracies, already in [0, 1]); near 0 means the metric cannot tell "
                      "two of them apart. Mean ± sd over the rows, as the paper averages over schemes and methods.";
      truth.caption = "Exact columns: what the edit did to the map's true soundness and completeness. A metric detects an "
                      "edit when its value moves; ROAD and Deletion rows are their mean over the curve (lower is better).";
      text += fmt::format(" The edits (Sec. 5.2, Table 1: \"the Hausdorff distances for Completeness and Soundness metrics are "
                          "significantly greater than zero ... the order-based metrics, ROAD and Deletion, demonstrate overlaps\"): "
                          "mean minimal Hausdorff distance {}. When the truth is known the claim {}: the smallest distance of "
                          "the value-based metrics is {} against the largest of the order-based ones {}. By the exact values, "
                          "Remove lowered the true completeness in {} of {} edits and kept the true soundness (within 0.01) in {}; "
                          "Introduce lowered the true soundness in {} of {}.",
                          join(parts, "; ", "; "), value_based > order_based ? "holds" : "does not hold", fixed(value_based, 3),
                          fixed(order_based, 3), remove_lowers_completeness, n_edits, remove_keeps_soundness,
                          introduce_lowers_soundness, n_edits);
      add_paragraph(s, text);
      add_table(s, summary);
      add_table(s, est);
      if (!scatter.panels.empty())
        add_figure(s, draw_curves(scatter, in_.run_dir / "figures" / (stem + "-estimate-vs-exact")),
                   "Each point one (method, image): the estimator's value against the exact value from the ground truth; on "
                   "the dashed line the estimate is exact.");
      add_table(s, edits);
      add_table(s, truth);
      if (!figure.panels.empty())
        add_figure(s, draw_curves(figure, in_.run_dir / "figures" / (stem + "-edits")),
                   "Mean curves of each original map (row) and its Remove / Introduce edits under each metric (column), as "
                   "the paper's Fig. 7; panels of one metric share the y range.");
      return;
    }
    add_paragraph(s, text);
    add_table(s, summary);
    add_table(s, est);
    if (!scatter.panels.empty())
      add_figure(s, draw_curves(scatter, in_.run_dir / "figures" / (stem + "-estimate-vs-exact")),
                 "Each point one (method, image): the estimator's value against the exact value; on the dashed line the estimate is exact.");
  }

  /// The unified paper's Sec. 5 and 6.2: pixel flipping against reference pixel flipping, the
  /// pixel-isolation confound (content-free isolated masks against a good map) and the Pointing
  /// Game against the ground truth, on each row's model.
  void unified_metrics(const json& study, int index, Section& s) {
    const Measure pf = measure_at(study, "pixel-flipping"), rpf = measure_at(study, "reference-pixel-flipping"),
                  pg = measure_at(study, "pointing-game"), reference = measure_at(study, "reference");
    const std::string good = study.at("good");
    const std::vector<std::string> isolated = study.at("isolated").get<std::vector<std::string>>();
    const double pg_hit = study.value("pointing-hit", 0.9), f1_low = study.value("f1-low", 0.5);
    const std::string stem = fmt::format("study{}", index);
    std::vector<std::string> confound, reference_text, pointing, fastest;
    bool isolation_claim = false, reference_claim = true, pointing_claim = false;

    Table iso;
    iso.id = stem + "-isolation";
    iso.title = fmt::format("The pixel-isolation confound: content-free isolated masks against {} under {}", good, pf.label);
    iso.columns = {"Model", "Mask", fmt::format("{} ({})", pf.label, direction(pf) == Direction::kHigherIsBetter ? "↑" : "↓"),
                   fmt::format("{} of {}", pf.label, good), fmt::format("beats {} on", good), reference.label,
                   fmt::format("{} of {}", reference.label, good)};
    iso.align_labels(2);
    Table refs;
    refs.id = stem + "-reference-pixel-flipping";
    refs.title = "Pixel flipping in the method's order against reference pixel flipping (a random n of its top N)";
    refs.columns = {"Model", "Method", "area, own order on [0, N/P]", "area, reference order on [0, N/P]", "reference faster",
                    fmt::format("{} ({})", pf.label, direction(pf) == Direction::kHigherIsBetter ? "↑" : "↓"), reference.label};
    refs.align_labels(2);
    Table points;
    points.id = stem + "-pointing-game";
    points.title = fmt::format("{} against {}", pg.label, reference.label);
    points.columns = {"Model", "Method", pg.label, reference.label};
    points.align_labels(2);
    CurveFigure curves;
    curves.title = "Mean pixel-flipping curves: each method's order and the reference order (random n of its top N)";
    curves.columns = 2;
    CurveFigure scatter;
    scatter.title = fmt::format("{} against {} (one point per method)", pg.label, reference.label);
    scatter.columns = 2;

    for (const json& row : study.at("rows")) {
      const std::string model = row.at("model");
      const std::vector<std::string> methods = methods_of(study, model);
      // Isolation confound.
      const double good_pf = rows_.mean(model, good, pf.metric, pf.variant), good_f1 = rows_.mean(model, good, reference.metric, reference.variant);
      for (const std::string& mask : isolated) {
        const auto [share, n] = share_better(model, mask, good, pf);
        const double v = rows_.mean(model, mask, pf.metric, pf.variant);
        iso.add({model, mask, fixed(v, 4), fixed(good_pf, 4), fmt::format("{} of {} images", percent_text(share), n),
                 fixed(rows_.mean(model, mask, reference.metric, reference.variant), 2), fixed(good_f1, 2)});
        isolation_claim = isolation_claim || share > 0.5;
        confound.push_back(fmt::format("on {} the {} mask beats {} under {} on {} of {} images ({} {} against {}) while its "
                                       "{} is {} against {}",
                                       model, mask, good, pf.label, percent_text(share), n, pf.label, fixed(v, 4),
                                       fixed(good_pf, 4), reference.label,
                                       fixed(rows_.mean(model, mask, reference.metric, reference.variant), 2), fixed(good_f1, 2)));
      }
      {
        std::string best;
        double best_v = kNaN;
        for (const std::string& method : methods) {
          const double v = rows_.mean(model, method, pf.metric, pf.variant);
          if (!std::isnan(v) && (std::isnan(best_v) || better(pf, v, best_v))) {
            best_v = v;
            best = method;
          }
        }
        fastest.push_back(fmt::format("on {} the fastest decay is {}'s ({} {}{})", model, best, pf.label, fixed(best_v, 4),
                                      best == good ? "" : fmt::format(", {} {}", good, fixed(good_pf, 4))));
      }
      // Reference pixel flipping against the method's own order, over the same x range.
      std::vector<std::string> group(methods.begin(), methods.end());
      int faster = 0, compared = 0;
      for (const std::string& method : methods) {
        const Series own = mean_curve(model, method, pf.metric, pf.variant), ref = mean_curve(model, method, rpf.metric, rpf.variant);
        if (own.x.empty() || ref.x.empty()) continue;
        const double end = ref.x.back();
        const double a_own = area_until(own, end), a_ref = area_until(ref, end);
        const bool ref_faster = a_ref < a_own;
        ++compared;
        faster += ref_faster ? 1 : 0;
        refs.add({model, method, fixed(a_own, 5), fixed(a_ref, 5), ref_faster ? "yes" : "no", fixed(rows_.mean(model, method, pf.metric, pf.variant), 4),
                  fixed(rows_.mean(model, method, reference.metric, reference.variant), 2)});
      }
      reference_claim = reference_claim && compared > 0 && faster == compared;
      reference_text.push_back(fmt::format("on {} the reference order decays faster than the method's own order for {} of {} methods",
                                           model, faster, compared));
      // Curves: a panel per (order, chunk of at most 8 methods).
      for (size_t part = 0; part * 8 < methods.size(); ++part) {
        const std::vector<std::string> chunk(methods.begin() + static_cast<std::ptrdiff_t>(part * 8),
                                             methods.begin() + static_cast<std::ptrdiff_t>(std::min(methods.size(), part * 8 + 8)));
        for (const Measure& m : {pf, rpf}) {
          CurvePanel p;
          p.title = fmt::format("{} — {}{}", m.label, model, methods.size() > 8 ? fmt::format(" ({})", part + 1) : "");
          p.y_group = model;
          p.x_label = "fraction of pixels flipped";
          p.y_label = "target logit";
          for (const std::string& method : chunk) {
            Series c = mean_curve(model, method, m.metric, m.variant);
            c.style = style_of(method);
            if (!c.x.empty()) p.series.push_back(std::move(c));
          }
          if (!p.series.empty()) curves.panels.push_back(std::move(p));
        }
      }
      // Pointing game against the truth.
      std::vector<double> hits, f1s;
      std::vector<std::string> fooled;
      CurvePanel sp;
      sp.title = model;
      sp.x_label = reference.label;
      sp.y_label = pg.label + " (hit rate)";
      sp.points = true;
      for (const std::string& method : methods) {
        const double h = rows_.mean(model, method, pg.metric, pg.variant), f = rows_.mean(model, method, reference.metric, reference.variant);
        points.add({model, method, fixed(h, 2), fixed(f, 2)});
        hits.push_back(h);
        f1s.push_back(f);
        if (h >= pg_hit && f < f1_low) fooled.push_back(fmt::format("{} (hit rate {}, {} {})", method, fixed(h, 2), reference.label, fixed(f, 2)));
        Series pt;
        pt.label = method;
        pt.style = style_of(method);
        pt.x = {f};
        pt.y = {h};
        if (!std::isnan(h) && !std::isnan(f)) sp.series.push_back(std::move(pt));
      }
      if (!sp.series.empty()) scatter.panels.push_back(std::move(sp));
      const double r = rho(ranking(hits, Direction::kHigherIsBetter), ranking(f1s, Direction::kHigherIsBetter));
      pointing_claim = pointing_claim || !fooled.empty() || r < 0.5;
      pointing.push_back(fmt::format("on {} its method ranking agrees with the {} ranking at ρ = {}, and {} method(s) hit at "
                                     "least {} of the time with {} below {}{}",
                                     model, reference.label, fixed(r, 2), fooled.size(), fixed(pg_hit, 2), reference.label,
                                     fixed(f1_low, 2), fooled.empty() ? "" : ": " + join(fooled)));
    }
    std::string text =
        "The paper's claims. Sec. 6.2.3 (Fig. 4): \"random masking has a quite fast decay compared with explanation-based "
        "masking\", and methods whose masked pixels are isolated outperform those whose pixels adjoin. Fig. 6: \"all referenced "
        "masking results outperform these two ingredients\" (a random n of the method's top N decays faster than the method's "
        "own order). Sec. 5 (Table 3): the Pointing Game measures plausibility, not faithfulness, so a faithful map can score "
        "low and a high score says little. ";
    text += "Measured: " + join(confound, "; ", "; ") + ". ";
    text += fmt::format("When the truth is known the isolation claim {}: {}. ",
                        isolation_claim ? "holds (an isolated mask beats the good map on most images)" : "does not hold",
                        join(fastest, "; ", "; "));
    text += "Reference pixel flipping: " + join(reference_text, "; ", "; ") +
            fmt::format("; the Fig. 6 claim {}. ", reference_claim ? "holds" : "does not hold for every method");
    text += "Pointing Game: " + join(pointing, "; ", "; ") +
            fmt::format("; the claim that it does not measure faithfulness {}.", pointing_claim ? "holds" : "is not borne out here");
    add_paragraph(s, text);
    add_table(s, iso);
    add_table(s, refs);
    if (!curves.panels.empty())
      add_figure(s, draw_curves(curves, in_.run_dir / "figures" / (stem + "-pixel-flipping")),
                 "Mean target logit while pixels are flipped to zero: left in each method's order (most relevant first), right "
                 "in the reference order (a random n of its top N, n = 0 … N); panels of one model share the y range.");
    add_table(s, points);
    if (!scatter.panels.empty())
      add_figure(s, draw_curves(scatter, in_.run_dir / "figures" / (stem + "-pointing-game")),
                 fmt::format("Each method's {} hit rate against its {} (one point per method).", pg.label, reference.label));
  }

  /// The false-sense paper's Sec. 5.2 (Table 1): uninformed maps (Fake-CAM, random) against real
  /// methods under the fidelity metrics and under the ground truth.
  void false_sense(const json& study, int index, Section& s) {
    const Measure reference = measure_at(study, "reference");
    std::vector<Measure> compare;
    for (const json& c : study.at("compare")) compare.push_back(measure_of(c));
    const std::vector<std::string> uninformed = study.at("uninformed").get<std::vector<std::string>>();
    const std::string versus = study.at("versus");
    const std::string stem = fmt::format("study{}", index);
    std::vector<std::string> parts, holds_under, fails_under;
    Table scores;
    scores.id = stem + "-scores";
    scores.title = "Mean scores and ranks (1 = best) of real and uninformed maps";
    scores.columns = {"Model", "Method"};
    std::vector<Measure> all = compare;
    all.push_back(reference);
    for (const Measure& m : all) {
      scores.columns.push_back(fmt::format("{} ({})", m.label, direction(m) == Direction::kHigherIsBetter ? "↑" : "↓"));
      scores.columns.push_back("rank");
    }
    scores.align_labels(2);
    Table wins;
    wins.id = stem + "-uninformed-wins";
    wins.title = fmt::format("Share of images on which an uninformed map scores strictly better than {}", versus);
    wins.columns = {"Model", "Uninformed map"};
    for (const Measure& m : all) wins.columns.push_back(m.label);
    wins.align_labels(2);
    ViolinFigure violins;
    violins.title = "Per-image scores of real and uninformed maps";
    violins.columns = 3;
    const size_t top = study.value("top", size_t{2});
    for (const json& row : study.at("rows")) {
      const std::string model = row.at("model");
      const std::vector<std::string> methods = methods_of(study, model);
      std::vector<std::vector<double>> ranks;
      for (const Measure& m : all) ranks.push_back(ranks_of(model, methods, m));
      for (size_t i = 0; i < methods.size(); ++i) {
        std::vector<std::string> cells = {model, methods[i]};
        for (size_t k = 0; k < all.size(); ++k) {
          cells.push_back(fixed(rows_.mean(model, methods[i], all[k].metric, all[k].variant), 3));
          cells.push_back(rank_text(ranks[k][i]));
        }
        scores.add(cells);
      }
      for (const std::string& u : uninformed) {
        std::vector<std::string> cells = {model, u};
        for (const Measure& m : all) {
          const auto [share, n] = share_better(model, u, versus, m);
          cells.push_back(fmt::format("{} of {}", percent_text(share), n));
        }
        wins.add(cells);
      }
      // The claim is about the first uninformed map (Fake-CAM): its rank under each metric.
      const std::string fake = uninformed.front();
      const auto it = std::find(methods.begin(), methods.end(), fake);
      if (it == methods.end()) continue;
      const size_t fi = static_cast<size_t>(it - methods.begin());
      const double fake_f1 = rows_.mean(model, fake, reference.metric, reference.variant),
                   versus_f1 = rows_.mean(model, versus, reference.metric, reference.variant);
      for (size_t k = 0; k < compare.size(); ++k) {
        const auto [share, n] = share_better(model, fake, versus, compare[k]);
        const double r = ranks[k][fi];
        const bool fooled = !std::isnan(r) && r <= static_cast<double>(top);
        (fooled ? holds_under : fails_under).push_back(fmt::format("{} on {}", compare[k].label, model));
        parts.push_back(fmt::format("on {}, {} ranks {} of {} under {} and beats {} on {} of {} images, but scores {} {} against {}'s {}",
                                    model, fake, rank_text(r), methods.size(), compare[k].label, versus, percent_text(share), n,
                                    reference.label, fixed(fake_f1, 3), versus, fixed(versus_f1, 3)));
      }
      parts.push_back(fmt::format("under {} itself {} ranks {} of {}", reference.label, fake, rank_text(ranks.back()[fi]), methods.size()));
      for (const Measure& m : all) {
        ViolinPanel panel;
        panel.title = fmt::format("{} — {}", m.label, model);
        panel.y_label = direction(m) == Direction::kHigherIsBetter ? "higher is better" : "lower is better";  // the title names the metric
        for (const std::string& method : methods)
          panel.groups.push_back({method, rows_.values(model, method, m.metric, m.variant), style_of(method)});
        violins.panels.push_back(std::move(panel));
      }
    }
    std::string text = fmt::format(
        "The paper's claim (Sec. 5.2, Table 1): \"Fake-CAM ranks in the top two for AI/AD/Monotonicity\", an entirely "
        "uninformed map scored as one of the best by fidelity metrics, while AG and Insertion are not fooled. Measured: {}. "
        "When the truth is known, the uninformed map is in the top {} under {} and not under {}; ",
        join(parts, "; ", "; "), top, join(holds_under), join(fails_under));
    text += holds_under.empty() ? "the claim does not hold on our networks."
                                : fmt::format("the claim holds under {}, which reward a map the ground truth scores as uninformed.",
                                              join(holds_under));
    add_paragraph(s, text);
    add_table(s, scores);
    add_table(s, wins);
    if (!violins.panels.empty())
      add_figure(s, draw_violins(violins, in_.run_dir / "figures" / (stem + "-scores")),
                 "Per-image scores (violins: kernel density; bars: maximum, mean, minimum) of each method under each fidelity "
                 "metric and under the ground truth.");
  }


  // ---- rendering ---------------------------------------------------------------------------

  /// The description, then how the run was made (from config.json).
  std::string header_text() const {
    std::string out = markdown_escape(e_.description);
    if (in_.record.is_object()) {
      const json& record = in_.record;
      std::string command = "attrlab run " + record.value("source", e_.name);
      for (const json& o : record.value("overrides", json::array())) command += " -o " + o.get<std::string>();
      out += fmt::format(" This run: `{}` (attrlab {}, seed {}, {} images of {}×{} per model).", command,
                         record.value("attrlab-version", std::string(ATTRLAB_VERSION)), e_.seed, e_.count, e_.size, e_.size);
    }
    return out;
  }

  /// CommonMark: generated text is escaped (markdown_escape), so labels such as "IG*" show as
  /// typed; a figure is an image paragraph followed by its caption paragraph (html.h makes the
  /// pair a numbered <figure>).
  std::string markdown(const std::vector<Section>& sections) const {
    std::string out = fmt::format("# Report: {}\n\n{}\n\n", markdown_escape(e_.name), header_text());
    for (const Section& s : sections) {
      out += "## " + markdown_escape(s.title) + "\n\n";
      for (const Block& b : s.blocks) {
        switch (b.kind) {
          case Block::Kind::kParagraph: out += markdown_escape(b.text) + "\n\n"; break;
          case Block::Kind::kTable: out += to_markdown(b.table) + "\n"; break;
          case Block::Kind::kFigure:
            out += fmt::format("![{}]({})\n\n{} ([SVG]({}))\n\n", markdown_escape(b.figure.stem().string()),
                               b.figure.generic_string(), markdown_escape(b.text),
                               fs::path(b.figure).replace_extension(".svg").generic_string());
            break;
        }
      }
    }
    return out;
  }

  /// report.md rendered by cmark-gfm (html.h), figures inlined, summary rows in <tfoot>.
  std::string html(const std::vector<Section>& sections, const std::string& markdown_text) const {
    HtmlPage page;
    page.title = "Report: " + e_.name;
    page.base = in_.run_dir;
    for (const Section& s : sections)
      for (const Block& b : s.blocks)
        if (b.kind == Block::Kind::kTable) {
          page.footer_rows.push_back(b.table.footer_rows);
          page.cell_classes.push_back(b.table.cell_classes);
        }
    return markdown_to_html(markdown_text, page);
  }

  const ReportInputs& in_;
  const Experiment& e_;
  Rows rows_;
  ReportFiles files_;
};

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

ReportFiles write_report(const ReportInputs& inputs) { return ReportBuilder(inputs).build(); }

const std::vector<std::pair<std::string, std::vector<std::string>>>& study_kinds() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"faithfulness", {"model", "metric", "methods", "kinds", "gammas", "smooth", "pairs", "group", "paper", "grid-rows"}},
      {"rankings", {"model", "reference", "compare", "methods", "paper", "grid-rows"}},
      {"spearman", {"rows", "reference", "compare", "methods", "paper", "table-title", "row-header", "claim", "curves"}},
      {"auc", {"model", "compare", "methods", "paper"}},
      {"coherency", {"rows", "reference", "compare", "consistency", "methods"}},
      {"trap-zoo", {"rows", "metric", "reference", "methods", "grid-rows"}},
      {"soundness-completeness", {"rows", "soundness", "soundness-exact", "completeness", "completeness-exact", "methods",
                                  "tolerance", "edits-model", "edits", "edit-curves", "paper"}},
      {"unified-metrics", {"rows", "pixel-flipping", "reference-pixel-flipping", "pointing-game", "reference", "good",
                           "isolated", "methods", "pointing-hit", "f1-low"}},
      {"false-sense", {"rows", "compare", "reference", "uninformed", "versus", "methods", "top"}},
  };
  return kinds;
}

namespace {

std::string list_text(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

/// Every metric measure ({"metric", "variant", "label"?}) a study names.
std::vector<const json*> measures_of(const json& study) {
  std::vector<const json*> out;
  if (study.contains("reference")) out.push_back(&study.at("reference"));
  if (study.contains("compare") && study.at("compare").is_array())
    for (const json& c : study.at("compare")) out.push_back(&c);
  for (const char* key : {"soundness", "soundness-exact", "completeness", "completeness-exact", "pixel-flipping",
                          "reference-pixel-flipping", "pointing-game"})
    if (study.contains(key)) out.push_back(&study.at(key));
  if (study.contains("edit-curves") && study.at("edit-curves").is_array())
    for (const json& c : study.at("edit-curves")) out.push_back(&c);
  if (study.contains("consistency") && study.at("consistency").is_array())
    for (const json& group : study.at("consistency"))
      if (group.is_object() && group.contains("configs") && group.at("configs").is_array())
        for (const json& c : group.at("configs")) out.push_back(&c);
  return out;
}

/// The models a study reads.
std::vector<std::string> models_of(const json& study) {
  std::vector<std::string> out;
  if (study.contains("model") && study.at("model").is_string()) out.push_back(study.at("model"));
  if (study.contains("edits-model") && study.at("edits-model").is_string()) out.push_back(study.at("edits-model"));
  if (study.contains("rows") && study.at("rows").is_array())
    for (const json& r : study.at("rows"))
      if (r.is_object() && r.contains("model") && r.at("model").is_string()) out.push_back(r.at("model"));
  return out;
}

}  // namespace

void check_studies(const json& report, const std::vector<std::string>& models, const std::vector<std::string>& methods,
                   const std::vector<std::string>& metrics) {
  for (const auto& [key, value] : report.items())
    if (key != "studies") lab::fail_parameter("report: unknown key '{}'; known: studies", key);
  if (!report.contains("studies")) return;
  if (!report.at("studies").is_array()) lab::fail_parameter("report.studies must be a list, got {}", report.at("studies").dump());
  std::vector<std::string> kind_names;
  for (const auto& [kind, keys] : study_kinds()) kind_names.push_back(kind);
  int index = 0;
  for (const json& study : report.at("studies")) {
    ++index;
    if (!study.is_object() || !study.contains("kind") || !study.at("kind").is_string())
      lab::fail_parameter("report study {}: expected {{\"kind\": ..., \"title\": ..., ...}}, got {}", index, study.dump());
    const std::string kind = study.at("kind");
    const std::string name = fmt::format("report study {} ('{}')", index, study.value("title", kind));
    const auto it = std::find_if(study_kinds().begin(), study_kinds().end(), [&](const auto& k) { return k.first == kind; });
    if (it == study_kinds().end()) lab::fail_parameter("{}: unknown kind '{}'; known: {}", name, kind, list_text(kind_names));
    std::vector<std::string> keys = {"kind", "title"};
    keys.insert(keys.end(), it->second.begin(), it->second.end());
    for (const auto& [key, value] : study.items())
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        lab::fail_parameter("{}: unknown key '{}'; known: {}", name, key, list_text(keys));
    for (const std::string& model : models_of(study))
      if (std::find(models.begin(), models.end(), model) == models.end())
        lab::fail_parameter("{}: no model '{}'; models: {}", name, model, list_text(models));
    // Method labels: `methods`, `smooth`, `pairs`, `group.methods`, the paper's verdicts and ranks.
    std::vector<std::string> named;
    auto add_labels = [&](const json& list) {
      if (!list.is_array()) return;
      for (const json& m : list)
        if (m.is_string()) named.push_back(m);
    };
    add_labels(study.value("methods", json::array()));
    add_labels(study.value("smooth", json::array()));
    for (const json& pair : study.value("pairs", json::array())) add_labels(pair);
    if (study.contains("group") && study.at("group").is_object()) add_labels(study.at("group").value("methods", json::array()));
    add_labels(study.value("isolated", json::array()));
    add_labels(study.value("uninformed", json::array()));
    for (const char* key : {"good", "versus"})
      if (study.contains(key) && study.at(key).is_string()) named.push_back(study.at(key));
    for (const json& e : study.value("edits", json::array()))
      if (e.is_object())
        for (const char* key : {"original", "remove", "introduce"})
          if (e.contains(key) && e.at(key).is_string()) named.push_back(e.at(key));
    const json paper = study.value("paper", json());
    if (kind == "faithfulness" && paper.is_array())
      for (const json& p : paper)
        if (p.is_object() && p.contains("method") && p.at("method").is_string()) named.push_back(p.at("method"));
    for (const std::string& m : named)
      if (std::find(methods.begin(), methods.end(), m) == methods.end())
        lab::fail_parameter("{}: no method '{}'; methods: {}", name, m, list_text(methods));
    if (kind == "coherency") {
      for (const char* key : {"rows", "reference", "compare"})
        if (!study.contains(key)) lab::fail_parameter("{}: needs \"{}\"", name, key);
      for (const json& group : study.value("consistency", json::array()))
        if (!group.is_object() || !group.contains("label") || !group.at("label").is_string() || !group.contains("configs") ||
            !group.at("configs").is_array() || group.at("configs").size() < 2 || group.size() != 2)
          lab::fail_parameter("{}: each consistency group must be {{\"label\": ..., \"configs\": [two or more measures]}}, got {}",
                              name, group.dump());
    }
    if (kind == "faithfulness" && (!study.contains("metric") || !study.at("metric").is_string()))
      lab::fail_parameter("{}: needs \"metric\", the ground-truth metric it reads", name);
    std::vector<std::string> registered;
    for (const MetricInfo& info : registry()) registered.push_back(info.name);
    auto check_metric = [&](const std::string& metric) {
      // An experiment metric's label (config.h) names it as well as a registry name does.
      if (std::find(metrics.begin(), metrics.end(), metric) != metrics.end()) return;
      if (std::find(registered.begin(), registered.end(), metric) == registered.end())
        lab::fail_parameter("{}: unknown metric '{}'; known: {}", name, metric, list_text(registered));
      if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end())
        lab::fail_parameter("{}: metric '{}' is not among the experiment's metrics ({})", name, metric, list_text(metrics));
    };
    if (study.contains("metric")) check_metric(study.at("metric"));
    for (const json* m : measures_of(study)) {
      if (!m->is_object() || !m->contains("metric") || !m->at("metric").is_string() || !m->contains("variant") ||
          !m->at("variant").is_string())
        lab::fail_parameter("{}: each measure must be {{\"metric\": ..., \"variant\": ..., \"label\": ...}}, got {}", name,
                            m->dump());
      for (const auto& [key, value] : m->items())
        if (key != "metric" && key != "variant" && key != "label")
          lab::fail_parameter("{}: measure {}: unknown key '{}'; known: metric, variant, label", name, m->dump(), key);
      check_metric(m->at("metric"));
    }
    for (const json& label : study.value("curves", json::array())) {
      bool found = false;
      for (const json* m : measures_of(study)) found = found || m->value("label", m->value("metric", "")) == label;
      if (!found) lab::fail_parameter("{}: curves names {}, which is not the label of a compared measure", name, label.dump());
    }
  }
}

void check_study_variants(const json& report,
                          const std::map<std::string, std::map<std::string, std::vector<std::string>>>& variants) {
  int index = 0;
  for (const json& study : report.value("studies", json::array())) {
    ++index;
    const std::string name = fmt::format("report study {} ('{}')", index, study.value("title", study.value("kind", "")));
    for (const std::string& model : models_of(study)) {
      const auto by_model = variants.find(model);
      if (by_model == variants.end()) continue;  // left out by models-select
      for (const json* m : measures_of(study)) {
        // The edits' curves are read on the edits' model only.
        bool edit_curve = false;
        if (study.contains("edit-curves") && study.at("edit-curves").is_array())
          for (const json& c : study.at("edit-curves")) edit_curve = edit_curve || &c == m;
        if (edit_curve && study.value("edits-model", model) != model) continue;
        const std::string metric = m->at("metric"), variant = m->at("variant");
        const auto by_metric = by_model->second.find(metric);
        if (by_metric == by_model->second.end())
          lab::fail_parameter("{}: metric '{}' does not run on model '{}'", name, metric, model);
        const std::vector<std::string>& known = by_metric->second;
        if (std::find(known.begin(), known.end(), variant) == known.end())
          lab::fail_parameter("{}: metric '{}' on model '{}' has no variant '{}'; variants: {}", name, metric, model, variant,
                              list_text(known));
      }
    }
  }
}

int64_t grid_rows(const json& report) {
  int64_t rows = 0;
  for (const json& study : report.value("studies", json::array())) rows = std::max(rows, study.value("grid-rows", int64_t{0}));
  return rows;
}

ReportFiles rebuild_report(const fs::path& run_dir) {
  const fs::path config_path = run_dir / "config.json";
  if (!fs::exists(config_path)) lab::fail("{}: no config.json; not a run directory", run_dir.string());
  const json record = lab::read_json(config_path);
  if (!record.contains("config")) lab::fail("{}: no \"config\" member", config_path.string());
  ReportInputs in{Experiment::from_json(record.at("config")), run_dir, {}, {}, {}, {}, record, {}};
  const Experiment& e = in.experiment;
  in.rows = parse_result_csv(lab::read_text(run_dir / "results.csv"), (run_dir / "results.csv").string());
  in.curves = parse_curve_csv(lab::read_text(run_dir / "curves.csv"), (run_dir / "curves.csv").string());
  const fs::path costs_path = run_dir / "costs.csv";
  std::istringstream lines(lab::read_text(costs_path));
  std::string line;
  std::getline(lines, line);
  for (size_t n = 2; std::getline(lines, line); ++n) {
    const std::vector<std::string> f = csv_split(line);
    try {
      if (f.size() != 5) throw std::invalid_argument("fields");
      in.costs.push_back({f[0], f[1], std::stoll(f[2]), std::stoll(f[3]), std::stoll(f[4])});
    } catch (const std::exception&) {
      lab::fail("{}:{}: expected model,method,first,last,evaluations, got '{}'", costs_path.string(), n, line);
    }
  }
  for (const ModelSpec& model : e.models)
    for (const auto& metric : make_model_metrics(e, model))
      for (const Variant& v : metric->variants()) in.directions[metric->label() + "/" + v.name] = v.direction;
  in.map = [&e, run_dir](const std::string& model, const std::string& method, int64_t index) {
    const datasets::DataDir data = datasets::DataDir::open(run_dir / "data" / model);
    std::string slug;
    for (const MethodSpec& m : e.methods)
      if (m.label == method) slug = m.slug;
    return lab::read_npy(run_dir / "maps" / model / slug / (data.id(index) + ".npy"));
  };
  return write_report(in);
}

}  // namespace experiments
