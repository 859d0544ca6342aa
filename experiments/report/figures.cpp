#include "experiments/report/figures.h"

#include <plplot/plstream.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <numeric>
#include <tuple>

#include <fmt/format.h>

#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace experiments {

namespace fs = std::filesystem;

namespace {

// cmap0 indices. 0 is the background (white), 1 the axes and text (near-black).
constexpr int kBackground = 0;
constexpr int kInk = 1;
constexpr int kGrid = 2;     // light grey guide lines
constexpr int kMid = 3;      // mid grey outlines
constexpr int kFill = 4;     // per-use fill colour (set with alpha before each fill)
constexpr int kSeries0 = 5;  // first of the 17 series colours (series_palette())
constexpr int kSeriesColors = 17;
constexpr int kColors = kSeries0 + kSeriesColors;
// PLplot's default character height grows with the page; the cairo devices draw at 72 dpi
// (0.3528 mm per pixel), so a fixed height in mm gives the same 13-pixel text on every figure.
constexpr double kCharMm = 13 * 0.3528;

// The diverging map's control points (ColorBrewer RdBu, 5 classes): −1 dark blue … +1 dark red.
constexpr double kStops[] = {0.0, 0.25, 0.5, 0.75, 1.0};
constexpr int kStopRgb[5][3] = {{5, 48, 97}, {67, 147, 195}, {255, 255, 255}, {214, 96, 77}, {103, 0, 31}};

/// PLplot reads '#' as the start of an escape sequence.
std::string plain(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

/// Pixel layout of one figure: converts top-left pixel boxes to PLplot's normalised viewport.
struct Canvas {
  plstream& pls;
  double width;
  double height;

  void viewport(double x0, double y0, double x1, double y1) const {
    pls.vpor(x0 / width, x1 / width, 1.0 - y1 / height, 1.0 - y0 / height);
  }
  /// Text at pixel (x, y) of the whole figure; angle in degrees (0 = horizontal, 90 = upwards).
  void text(double x, double y, const std::string& s, double just = 0.5, double angle = 0.0, double scale = 1.0,
            int color = kInk) const {
    pls.vpor(0.0, 1.0, 0.0, 1.0);
    pls.wind(0.0, width, 0.0, height);
    pls.schr(kCharMm, scale);
    const double a = angle * M_PI / 180.0;
    pls.col0(color);
    pls.ptex(x, height - y, std::cos(a), std::sin(a), just, plain(s).c_str());
    pls.schr(kCharMm, 1.0);
  }
};

/// Sets the house colours on a fresh stream.
void house_colors(plstream& pls) {
  pls.scmap0n(kColors);
  pls.scol0(kBackground, 255, 255, 255);
  pls.scol0(kInk, 34, 34, 34);
  pls.scol0(kGrid, 225, 225, 225);
  pls.scol0(kMid, 120, 120, 120);
  pls.scol0(kFill, 128, 128, 128);
  const auto& palette = series_palette();
  for (size_t i = 0; i < palette.size(); ++i)
    pls.scol0(kSeries0 + static_cast<int>(i), palette[i][0], palette[i][1], palette[i][2]);
}

void diverging_cmap1(plstream& pls) {
  PLFLT pos[5], r[5], g[5], b[5];
  for (int i = 0; i < 5; ++i) {
    pos[i] = kStops[i];
    r[i] = kStopRgb[i][0] / 255.0;
    g[i] = kStopRgb[i][1] / 255.0;
    b[i] = kStopRgb[i][2] / 255.0;
  }
  pls.scmap1n(256);
  pls.scmap1l(true, 5, pos, r, g, b);
}

/// Runs `draw` once per device (PNG, SVG) into STEM.png / STEM.svg via temporary files.
std::vector<fs::path> render(const fs::path& stem, int width, int height, const std::function<void(Canvas&)>& draw) {
  std::vector<fs::path> written;
  std::error_code ec;
  if (!stem.parent_path().empty()) fs::create_directories(stem.parent_path(), ec);
  for (const auto& [device, ext] : {std::pair{"pngcairo", ".png"}, std::pair{"svgcairo", ".svg"}}) {
    const fs::path final_path = fs::path(stem.string() + ext);
    const fs::path temp = lab::temp_path_beside(final_path);
    // Created empty under the interrupt's lock (lab::TempRegistration); PLplot then writes it.
    const lab::TempRegistration registration(temp, [&] { std::ofstream created(temp, std::ios::binary); });
    {
      plstream pls;
      pls.sdev(device);
      pls.sfnam(temp.c_str());
      pls.spage(0.0, 0.0, width, height, 0, 0);
      pls.scolbg(255, 255, 255);
      pls.init();
      house_colors(pls);
      pls.adv(0);
      pls.width(1.0);
      pls.schr(kCharMm, 1.0);
      pls.smaj(1.6, 1.0);
      pls.smin(0.9, 1.0);
      Canvas canvas{pls, static_cast<double>(width), static_cast<double>(height)};
      draw(canvas);
    }
    const bool empty = fs::file_size(temp, ec) == 0 || ec;
    if (!empty) fs::rename(temp, final_path, ec);
    if (empty || ec) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      if (empty) lab::fail("{}: PLplot ({}) wrote no file", final_path.string(), device);
      lab::fail("{}: cannot rename {}: {}", final_path.string(), temp.string(), ec.message());
    }
    written.push_back(final_path);
  }
  return written;
}

/// Draws an H×W grid of values with cmap1 over [zmin, zmax] into the current viewport.
void draw_values(plstream& pls, const std::vector<double>& values, int64_t h, int64_t w, double zmin, double zmax) {
  // plimage wants data[x][y] with y upwards: image row r goes to y = h − 1 − r.
  std::vector<PLFLT> buffer(static_cast<size_t>(w * h));
  std::vector<const PLFLT*> columns(static_cast<size_t>(w));
  for (int64_t x = 0; x < w; ++x) {
    for (int64_t r = 0; r < h; ++r) buffer[static_cast<size_t>(x * h + (h - 1 - r))] = values[static_cast<size_t>(r * w + x)];
    columns[static_cast<size_t>(x)] = buffer.data() + x * h;
  }
  pls.wind(0.0, static_cast<double>(w), 0.0, static_cast<double>(h));
  // plimagefr, not plimage: plimage rescales the colours to the data's own range, which would
  // paint a map of zeros and ones blue and red instead of white and red.
  pls.imagefr(columns.data(), static_cast<PLINT>(w), static_cast<PLINT>(h), 0.0, static_cast<double>(w), 0.0,
              static_cast<double>(h), zmin, zmax, zmin, zmax, nullptr, nullptr);
}

/// Draws an 8-bit image by loading its distinct colours into cmap1 (the designed images have a
/// handful; others are quantised to 6×6×6 levels first).
void draw_image(plstream& pls, const cv::Mat& image) {
  LAB_CHECK(image.type() == CV_8UC3 || image.type() == CV_8UC1, "draw_image: type {}", image.type());
  const int64_t h = image.rows, w = image.cols;
  auto pixel = [&](int64_t r, int64_t c) -> std::array<int, 3> {
    if (image.channels() == 1) {
      const int v = image.at<uint8_t>(static_cast<int>(r), static_cast<int>(c));
      return {v, v, v};
    }
    const cv::Vec3b p = image.at<cv::Vec3b>(static_cast<int>(r), static_cast<int>(c));
    return {p[0], p[1], p[2]};
  };
  std::map<std::array<int, 3>, int> index;
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) index.emplace(pixel(r, c), 0);
  const bool quantise = index.size() > 256;
  auto key = [&](std::array<int, 3> p) {
    if (quantise)
      for (int& v : p) v = static_cast<int>(std::lround(std::round(v / 51.0) * 51.0));
    return p;
  };
  if (quantise) {
    index.clear();
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) index.emplace(key(pixel(r, c)), 0);
  }
  std::vector<PLINT> rr, gg, bb;
  for (auto& [color, i] : index) {
    i = static_cast<int>(rr.size());
    rr.push_back(color[0]);
    gg.push_back(color[1]);
    bb.push_back(color[2]);
  }
  if (rr.size() == 1) {  // cmap1 needs two entries
    rr.push_back(rr[0]);
    gg.push_back(gg[0]);
    bb.push_back(bb[0]);
  }
  std::vector<double> values(static_cast<size_t>(h * w));
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) values[static_cast<size_t>(r * w + c)] = index.at(key(pixel(r, c)));
  pls.scmap1n(static_cast<PLINT>(rr.size()));
  pls.scmap1(rr.data(), gg.data(), bb.data(), static_cast<PLINT>(rr.size()));
  draw_values(pls, values, h, w, 0.0, static_cast<double>(rr.size() - 1));
}

void frame(plstream& pls, int color = kMid) {
  pls.col0(color);
  pls.box("bc", 0.0, 0, "bc", 0.0, 0);
}

/// Splits "LIME (quickshift)" into two lines at " (" when long.
std::vector<std::string> two_lines(const std::string& label, size_t max_chars) {
  if (label.size() <= max_chars) return {label};
  const size_t p = label.find(" (");
  if (p != std::string::npos) return {label.substr(0, p), label.substr(p + 1)};
  const size_t space = label.rfind(' ', max_chars);
  if (space != std::string::npos) return {label.substr(0, space), label.substr(space + 1)};
  return {label};
}

/// Series style i: colour i mod 17, solid line (the marker tells styles apart further).
void series_style(plstream& pls, size_t i) {
  pls.col0(kSeries0 + static_cast<int>(i % kSeriesColors));
  pls.lsty(1);
}

const std::string& series_marker(size_t i) { return series_markers()[i % series_markers().size()]; }

/// Draws style i's marker at world (x, y).
void draw_marker(plstream& pls, size_t i, double x, double y, double scale = 0.9) {
  series_style(pls, i);
  pls.schr(kCharMm, scale);
  PLFLT px = x, py = y;
  pls.string(1, &px, &py, series_marker(i).c_str());
  pls.schr(kCharMm, 1.0);
}

/// One marker of a scatter panel: style and world position.
struct ScatterPoint {
  size_t style;
  double x, y;
};

/// Draws a scatter panel's markers. Markers of different series that fall on the same spot would
/// hide each other (two methods with the same value), so each such group is drawn on a small circle
/// around the spot, with a thin grey spoke from the spot to each marker; markers of one series on
/// one spot are drawn once (they hide nothing), a lone marker stays where it is. `ux`, `uy`: world
/// units per pixel of the panel.
void draw_scatter(plstream& pls, const std::vector<ScatterPoint>& points, double ux, double uy) {
  constexpr double kSame = 3.0, kMarker = 11.0;  // pixels: "the same spot", a marker's width
  std::vector<bool> taken(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    if (taken[i]) continue;
    std::vector<size_t> members = {i};  // first point of each style on i's spot, in input order
    for (size_t j = i + 1; j < points.size(); ++j) {
      if (taken[j] || std::hypot((points[j].x - points[i].x) / ux, (points[j].y - points[i].y) / uy) >= kSame) continue;
      taken[j] = true;
      if (std::none_of(members.begin(), members.end(), [&](size_t m) { return points[m].style == points[j].style; }))
        members.push_back(j);
    }
    const ScatterPoint& spot = points[i];
    if (members.size() == 1) {
      draw_marker(pls, spot.style, spot.x, spot.y, 1.0);
      continue;
    }
    const double n = static_cast<double>(members.size());
    const double radius = std::max(kMarker, n * kMarker / (2.0 * std::numbers::pi));
    for (size_t k = 0; k < members.size(); ++k) {
      const double angle = std::numbers::pi / 2.0 + 2.0 * std::numbers::pi * static_cast<double>(k) / n;
      const double x = spot.x + radius * std::cos(angle) * ux, y = spot.y + radius * std::sin(angle) * uy;
      pls.col0(kMid);
      pls.width(0.6);
      pls.join(spot.x, spot.y, x, y);
      pls.width(1.0);
      draw_marker(pls, points[members[k]].style, x, y, 1.0);
    }
  }
}

/// "Nice" axis limits around [lo, hi].
std::pair<double, double> padded(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
  if (hi - lo < 1e-9) {
    const double m = std::max(std::abs(hi), 1.0) * 0.05;
    return {lo - m, hi + m};
  }
  const double pad = (hi - lo) * 0.05;
  return {lo - pad, hi + pad};
}

}  // namespace

const std::vector<std::array<int, 3>>& series_palette() {
  static const std::vector<std::array<int, 3>> palette = [] {
    // Okabe–Ito's yellow, faint on white, goes last. Tol's muted colours follow in the order that
    // keeps each as far (CIELAB ΔE) from the ones before it as possible, the pale sand last: the
    // eighth style (a full panel) is then indigo, not a rose beside Okabe–Ito's reddish purple.
    std::vector<std::array<int, 3>> p(okabe_ito().begin(), okabe_ito().end() - 1);
    const std::vector<std::array<int, 3>> muted = {{51, 34, 136},  {136, 34, 85},   {153, 153, 51},  {170, 68, 153}, {17, 119, 51},
                                                   {204, 102, 119}, {68, 170, 153}, {136, 204, 238}, {221, 204, 119}};
    p.insert(p.end(), muted.begin(), muted.end());
    p.push_back(okabe_ito().back());
    return p;
  }();
  return palette;
}

const std::vector<std::string>& series_markers() {
  static const std::vector<std::string> markers = {"●", "■", "▲", "◆", "▼", "★", "○", "□", "△", "◇", "▽", "☆"};
  return markers;
}

double row_scale(const std::vector<lab::Tensor>& maps) {
  std::vector<float> magnitudes;
  for (const lab::Tensor& m : maps)
    for (float v : m.values())
      if (std::isfinite(v) && v != 0.0f) magnitudes.push_back(std::abs(v));
  if (magnitudes.empty()) return 1.0;
  const size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(magnitudes.size())));
  std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(rank - 1), magnitudes.end());
  return magnitudes[rank - 1];
}

const std::vector<std::array<int, 3>>& okabe_ito() {
  static const std::vector<std::array<int, 3>> palette = {
      {0, 114, 178},   {213, 94, 0},    {0, 158, 115}, {204, 121, 167},
      {230, 159, 0},   {86, 180, 233},  {0, 0, 0},     {240, 228, 66}};
  return palette;
}

std::array<int, 3> diverging_color(double v) {
  const double p = std::clamp((v + 1.0) / 2.0, 0.0, 1.0);
  int k = 0;
  while (k < 3 && p > kStops[k + 1]) ++k;
  const double t = (p - kStops[k]) / (kStops[k + 1] - kStops[k]);
  std::array<int, 3> out{};
  for (int c = 0; c < 3; ++c)
    out[static_cast<size_t>(c)] = static_cast<int>(std::lround(kStopRgb[k][c] + t * (kStopRgb[k + 1][c] - kStopRgb[k][c])));
  return out;
}

lab::Tensor normalise_for_display(const lab::Tensor& map) {
  float max_pos = 0.0f, min_neg = 0.0f;
  for (float v : map.values()) {
    if (std::isfinite(v)) {
      max_pos = std::max(max_pos, v);
      min_neg = std::min(min_neg, v);
    }
  }
  lab::Tensor out = map;
  for (float& v : out.values()) {
    if (!std::isfinite(v)) v = 0.0f;
    else if (v > 0.0f) v = max_pos > 0.0f ? v / max_pos : 0.0f;
    else if (v < 0.0f) v = v / -min_neg;
  }
  return out;
}

std::vector<double> kernel_density(const std::vector<double>& values, const std::vector<double>& at) {
  const double n = static_cast<double>(values.size());
  std::vector<double> out(at.size(), 0.0);
  if (values.empty()) return out;
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0.0;
  for (double v : values) var += (v - mean) * (v - mean);
  const double sd = values.size() > 1 ? std::sqrt(var / (n - 1.0)) : 0.0;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  auto quantile = [&](double q) {
    const double pos = q * (n - 1.0);
    const size_t i = static_cast<size_t>(std::floor(pos));
    const size_t j = std::min(i + 1, sorted.size() - 1);
    return sorted[i] + (pos - static_cast<double>(i)) * (sorted[j] - sorted[i]);
  };
  const double iqr = quantile(0.75) - quantile(0.25);
  double spread = sd;
  if (iqr > 0.0) spread = std::min(sd, iqr / 1.34);
  double bandwidth = 0.9 * spread * std::pow(n, -0.2);
  if (!(bandwidth > 0.0)) bandwidth = std::max(std::abs(mean), 1.0) * 1e-3;
  const double norm = 1.0 / (n * bandwidth * std::sqrt(2.0 * M_PI));
  for (size_t k = 0; k < at.size(); ++k) {
    double s = 0.0;
    for (double v : values) {
      const double z = (at[k] - v) / bandwidth;
      s += std::exp(-0.5 * z * z);
    }
    out[k] = s * norm;
  }
  return out;
}

std::vector<fs::path> draw_map_grid(const MapGrid& grid, const fs::path& stem) {
  const bool per_row = grid.scale == MapGrid::Scale::kRow;
  const int columns = 2 + static_cast<int>(grid.methods.size());
  const int rows = static_cast<int>(grid.rows.size());
  LAB_CHECK(rows > 0, "map grid without rows");
  const int cell = 112, gap = 8, top = 48, header = 52, right = 16;
  // Room for the row labels: 84 px, or more for a label line longer than 9 characters.
  size_t label_chars = 0;
  for (const MapGridRow& row : grid.rows)
    for (const std::string& line : two_lines(row.label, 8)) label_chars = std::max(label_chars, line.size());
  const int left = std::max(84, 12 + 8 * static_cast<int>(label_chars));
  const int bar_column = per_row ? 96 : 0;  // the row's vertical colour bar and its labels
  const int bottom = per_row ? 66 : 92;
  const int width = std::max(left + columns * (cell + gap) + bar_column + right, 40 + 8 * static_cast<int>(grid.title.size()));
  const int height = top + header + rows * (cell + gap) + bottom;
  return render(stem, width, height, [&](Canvas& cv) {
    plstream& pls = cv.pls;
    cv.text(width / 2.0, 30, grid.title, 0.5, 0.0, 1.1);
    std::vector<std::string> titles = {"Input", "Ground truth"};
    titles.insert(titles.end(), grid.methods.begin(), grid.methods.end());
    for (int c = 0; c < columns; ++c) {
      const double x = left + c * (cell + gap) + cell / 2.0;
      const auto lines = two_lines(titles[static_cast<size_t>(c)], 14);
      for (size_t l = 0; l < lines.size(); ++l)
        cv.text(x, top + header - 11 - 14.0 * static_cast<double>(lines.size() - 1 - l), lines[l], 0.5, 0.0, 0.85);
    }
    for (int r = 0; r < rows; ++r) {
      const MapGridRow& row = grid.rows[static_cast<size_t>(r)];
      const double y0 = top + header + r * (cell + gap);
      const auto label_lines = two_lines(row.label, 8);
      for (size_t l = 0; l < label_lines.size(); ++l)
        cv.text(left - 8, y0 + cell / 2.0 + 14.0 * static_cast<double>(l), label_lines[l], 1.0, 0.0, 0.8);
      const double scale = per_row ? row_scale(row.maps) : 1.0;
      for (int c = 0; c < columns; ++c) {
        const double x0 = left + c * (cell + gap);
        cv.viewport(x0, y0, x0 + cell, y0 + cell);
        const int64_t h = row.input.rows, w = row.input.cols;
        if (c == 0) {
          draw_image(pls, row.input);
        } else {
          const lab::Tensor& raw = c == 1 ? row.gt : row.maps.at(static_cast<size_t>(c - 2));
          LAB_CHECK(raw.numel() == h * w, "map grid: map of {} values for a {}x{} image", raw.numel(), h, w);
          std::vector<double> shown(raw.values().begin(), raw.values().end());
          if (c > 1) {
            if (per_row) {
              // A map far below the row's scale (own scale < s/20) would show white: it is
              // magnified by a power of ten, printed in its cell.
              const double own = row_scale({raw});
              double gain = 1.0;
              if (own > 0.0 && own < scale / 20.0) gain = std::pow(10.0, std::round(std::log10(scale / own)));
              for (double& v : shown) v = std::isfinite(v) ? std::clamp(v * gain / scale, -1.0, 1.0) : 0.0;
              if (gain > 1.0) {
                diverging_cmap1(pls);
                draw_values(pls, shown, h, w, -1.0, 1.0);
                frame(pls);
                cv.text(x0 + cell - 4, y0 + 14, fmt::format("×{:g}", gain), 1.0, 0.0, 0.7);
                continue;
              }
            } else {
              const lab::Tensor normalised = normalise_for_display(raw);
              shown.assign(normalised.values().begin(), normalised.values().end());
            }
          }
          diverging_cmap1(pls);
          draw_values(pls, shown, h, w, -1.0, 1.0);
        }
        frame(pls);
      }
      if (per_row) {
        // The row's colour bar: −s at the bottom, +s at the top.
        const double bx = left + columns * (cell + gap) + 4, bw = 14;
        cv.viewport(bx, y0, bx + bw, y0 + cell);
        std::vector<double> ramp(2 * 256);
        for (size_t i = 0; i < 256; ++i)
          for (size_t j = 0; j < 2; ++j) ramp[i * 2 + j] = 1.0 - 2.0 * static_cast<double>(i) / 255.0;
        diverging_cmap1(pls);
        draw_values(pls, ramp, 256, 2, -1.0, 1.0);
        frame(pls, kInk);
        const std::string s_text = fmt::format("{:.2g}", scale);
        cv.text(bx + bw + 5, y0 + 9, "+" + s_text, 0.0, 0.0, 0.75);
        cv.text(bx + bw + 5, y0 + cell / 2.0 + 4, "0", 0.0, 0.0, 0.75);
        cv.text(bx + bw + 5, y0 + cell, "-" + s_text, 0.0, 0.0, 0.75);
      }
    }
    if (per_row) {
      cv.text(width / 2.0, height - bottom + 22, "Each row: one colour scale for all its maps", 0.5, 0.0, 0.75);
      cv.text(width / 2.0, height - bottom + 38, "(bar: ±99th percentile of |attribution|, saturated beyond)", 0.5, 0.0, 0.75);
      cv.text(width / 2.0, height - bottom + 54, "Ground truth: +1 red, −1 blue", 0.5, 0.0, 0.75);
      return;
    }
    // Colour bar: the scale of every map and of the ground truth.
    const double bar_w = std::min(360.0, width - 2.0 * left), bar_x = (width - bar_w) / 2.0;
    const double bar_y = height - bottom + 22;
    cv.viewport(bar_x, bar_y, bar_x + bar_w, bar_y + 14);
    std::vector<double> ramp(2 * 256);
    for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = -1.0 + 2.0 * static_cast<double>(i % 256) / 255.0;
    diverging_cmap1(pls);
    draw_values(pls, ramp, 2, 256, -1.0, 1.0);
    frame(pls, kInk);
    cv.text(bar_x, bar_y + 32, "-1 (negative)", 0.5, 0.0, 0.75);
    cv.text(bar_x + bar_w / 2.0, bar_y + 32, "0", 0.5, 0.0, 0.75);
    cv.text(bar_x + bar_w, bar_y + 32, "+1 (positive)", 0.5, 0.0, 0.75);
    cv.text(bar_x + bar_w / 2.0, bar_y + 50, "attribution after eq. 17 (positive part / max, negative part / |min|)",
            0.5, 0.0, 0.7);
  });
}

std::vector<fs::path> draw_violins(const ViolinFigure& figure, const fs::path& stem) {
  const int n_panels = static_cast<int>(figure.panels.size());
  LAB_CHECK(n_panels > 0, "violin figure without panels");
  const int cols = std::min(figure.columns, n_panels);
  const int rows = (n_panels + cols - 1) / cols;
  size_t groups = 0, longest = 0;
  for (const auto& p : figure.panels) {
    groups = std::max(groups, p.groups.size());
    for (const auto& g : p.groups) longest = std::max(longest, g.label.size());
  }
  const int panel_w = std::max(260, 20 + 28 * static_cast<int>(groups));
  const int panel_h = 230;
  const int label_h = 24 + 7 * static_cast<int>(longest);
  const int left = 60, top = 50, gap_x = 110, title_h = 26;
  const int cell_h = title_h + panel_h + label_h;
  const int width = left + cols * panel_w + (cols - 1) * gap_x + 70;
  const int height = top + rows * cell_h + 10;
  return render(stem, width, height, [&](Canvas& cv) {
    plstream& pls = cv.pls;
    cv.text(width / 2.0, 30, figure.title, 0.5, 0.0, 1.1);
    for (int k = 0; k < n_panels; ++k) {
      const ViolinPanel& panel = figure.panels[static_cast<size_t>(k)];
      const int r = k / cols, c = k % cols;
      const double x0 = left + c * (panel_w + gap_x), y0 = top + r * cell_h + title_h;
      const double m = static_cast<double>(panel.groups.size());
      double lo = 0.0, hi = 1.0;
      for (const auto& g : panel.groups)
        for (double v : g.values) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      const auto [ymin, ymax] = padded(lo, hi);
      cv.text(x0 + panel_w / 2.0, y0 - 8, panel.title, 0.5, 0.0, 0.9);
      cv.viewport(x0, y0, x0 + panel_w, y0 + panel_h);
      pls.wind(0.4, m + 0.6, ymin, ymax);
      // Tick spacing: 0.2 on fractions; on other ranges (percentages) the 1-2-5 step giving about 5 ticks.
      double step = 0.2;
      if (ymax - ymin > 2.0) {
        const double raw = (ymax - ymin) / 5.0, p10 = std::pow(10.0, std::floor(std::log10(raw)));
        step = raw / p10 < 1.5 ? p10 : raw / p10 < 3.5 ? 2.0 * p10 : raw / p10 < 7.5 ? 5.0 * p10 : 10.0 * p10;
      }
      pls.col0(kGrid);
      for (double y = std::ceil(ymin / step) * step; y <= ymax; y += step) pls.join(0.4, y, m + 0.6, y);
      if (panel.reference >= 0.0 && panel.reference >= ymin && panel.reference <= ymax) {
        pls.col0(kMid);
        pls.lsty(2);
        pls.join(0.4, panel.reference, m + 0.6, panel.reference);
        pls.lsty(1);
        // Labelled right of the panel, where no violin is drawn.
        const double y_px = y0 + panel_h * (1.0 - (panel.reference - ymin) / (ymax - ymin));
        cv.text(x0 + panel_w + 4, y_px + 4, fmt::format("γ = {:g}", panel.reference), 0.0, 0.0, 0.75);
        cv.viewport(x0, y0, x0 + panel_w, y0 + panel_h);
        pls.wind(0.4, m + 0.6, ymin, ymax);
      }
      for (size_t g = 0; g < panel.groups.size(); ++g) {
        const auto& values = panel.groups[g].values;
        if (values.empty()) continue;
        const double xc = static_cast<double>(g) + 1.0;
        const auto [vmin_it, vmax_it] = std::minmax_element(values.begin(), values.end());
        const double vmin = *vmin_it, vmax = *vmax_it;
        const double mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
        const int style = panel.groups[g].style >= 0 ? panel.groups[g].style : static_cast<int>(g);
        const auto& color = series_palette()[static_cast<size_t>(style) % series_palette().size()];
        if (vmax - vmin > 1e-9) {
          std::vector<double> at(81);
          for (size_t i = 0; i < at.size(); ++i) at[i] = vmin + (vmax - vmin) * static_cast<double>(i) / 80.0;
          const std::vector<double> density = kernel_density(values, at);
          const double peak = *std::max_element(density.begin(), density.end());
          std::vector<PLFLT> px, py;
          for (size_t i = 0; i < at.size(); ++i) {
            px.push_back(xc + 0.38 * density[i] / peak);
            py.push_back(at[i]);
          }
          for (size_t i = at.size(); i-- > 0;) {
            px.push_back(xc - 0.38 * density[i] / peak);
            py.push_back(at[i]);
          }
          pls.scol0a(kFill, color[0], color[1], color[2], 0.45);
          pls.col0(kFill);
          pls.fill(static_cast<PLINT>(px.size()), px.data(), py.data());
          pls.scol0a(kFill, color[0], color[1], color[2], 1.0);
          pls.col0(kFill);
          px.push_back(px.front());
          py.push_back(py.front());
          pls.line(static_cast<PLINT>(px.size()), px.data(), py.data());
        }
        pls.scol0a(kFill, color[0], color[1], color[2], 1.0);
        pls.col0(kInk);
        pls.join(xc, vmin, xc, vmax);
        pls.width(2.0);
        for (double y : {vmin, mean, vmax}) pls.join(xc - 0.16, y, xc + 0.16, y);
        pls.width(1.0);
      }
      pls.col0(kInk);
      pls.box("bc", 0.0, 0, "bcnstv", step, 2);
      pls.mtex("l", 3.8, 0.5, 0.5, plain(panel.y_label).c_str());
      pls.schr(kCharMm, 0.8);
      for (size_t g = 0; g < panel.groups.size(); ++g) {
        const double pos = (static_cast<double>(g) + 1.0 - 0.4) / (m + 0.2);
        pls.mtex("bv", 0.6, pos, 1.0, plain(panel.groups[g].label).c_str());
      }
      pls.schr(kCharMm, 1.0);
    }
  });
}

std::vector<fs::path> draw_curves(const CurveFigure& figure, const fs::path& stem) {
  const int n_panels = static_cast<int>(figure.panels.size());
  LAB_CHECK(n_panels > 0, "curve figure without panels");
  const int cols = std::min(figure.columns, n_panels);
  const int rows = (n_panels + cols - 1) / cols;
  // One style per label, the same in every panel: the series' own style, else the order of first
  // appearance. The legend lists the labels in style order.
  std::vector<std::pair<int, std::string>> legend;
  std::map<std::string, int> style_of;
  for (const auto& p : figure.panels)
    for (const auto& s : p.series)
      if (!style_of.count(s.label)) {
        const int style = s.style >= 0 ? s.style : static_cast<int>(style_of.size());
        style_of[s.label] = style;
        legend.push_back({style, s.label});
      }
  std::stable_sort(legend.begin(), legend.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Shared y ranges of the panels of one y_group.
  std::map<std::string, std::pair<double, double>> group_range;
  for (const auto& p : figure.panels) {
    if (p.y_group.empty()) continue;
    auto& [lo, hi] = group_range.try_emplace(p.y_group, INFINITY, -INFINITY).first->second;
    for (const auto& s : p.series)
      for (double y : s.y)
        if (std::isfinite(y)) {
          lo = std::min(lo, y);
          hi = std::max(hi, y);
        }
  }
  const int panel_w = cols > 2 ? 320 : 400, panel_h = 250, left = 96, top = 50, gap_x = 104, gap_y = 90, legend_w = 200;
  const int width = std::max(left + cols * panel_w + (cols - 1) * gap_x + 30 + legend_w,
                             40 + 9 * static_cast<int>(figure.title.size()));
  const int height = std::max(top + rows * (panel_h + gap_y) + 10, top + 40 + 22 * static_cast<int>(legend.size()));
  return render(stem, width, height, [&](Canvas& cv) {
    plstream& pls = cv.pls;
    cv.text(width / 2.0, 30, figure.title, 0.5, 0.0, 1.1);
    for (int k = 0; k < n_panels; ++k) {
      const CurvePanel& panel = figure.panels[static_cast<size_t>(k)];
      const int r = k / cols, c = k % cols;
      const double x0 = left + c * (panel_w + gap_x), y0 = top + 20 + r * (panel_h + gap_y);
      auto tx = [&](double x) { return panel.log_x ? std::log10(std::max(x, 1e-12)) : x; };
      double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
      for (const auto& s : panel.series)
        for (size_t i = 0; i < s.x.size(); ++i) {
          if (!std::isfinite(s.y[i])) continue;
          xlo = std::min(xlo, tx(s.x[i]));
          xhi = std::max(xhi, tx(s.x[i]));
          ylo = std::min(ylo, s.y[i]);
          yhi = std::max(yhi, s.y[i]);
        }
      if (!panel.y_group.empty()) std::tie(ylo, yhi) = group_range.at(panel.y_group);
      if (!(xhi > xlo)) {
        xlo = std::isfinite(xlo) ? xlo - 0.5 : 0.0;
        xhi = xlo + 1.0;
      }
      if (panel.points && !panel.diagonal) std::tie(xlo, xhi) = padded(xlo, xhi);  // markers inside the frame
      if (panel.diagonal) {  // one range on both axes, so that y = x is the diagonal
        xlo = ylo = std::min(xlo, ylo);
        xhi = yhi = std::max(xhi, yhi);
        std::tie(xlo, xhi) = padded(xlo, xhi);
      }
      auto [ymin, ymax] = padded(ylo, yhi);
      if (panel.points) {  // room inside the frame for markers spread around a shared spot (draw_scatter)
        const double px = 24.0;
        double grow_x = (xhi - xlo) * px / (panel_w - 2 * px), grow_y = (ymax - ymin) * px / (panel_h - 2 * px);
        if (panel.diagonal) grow_x = grow_y = std::max(grow_x, grow_y);  // the axes keep one range
        xlo -= grow_x;
        xhi += grow_x;
        ymin -= grow_y;
        ymax += grow_y;
      }
      cv.text(x0 + panel_w / 2.0, y0 - 8, panel.title, 0.5, 0.0, 0.9);
      cv.viewport(x0, y0, x0 + panel_w, y0 + panel_h);
      pls.wind(xlo, xhi, ymin, ymax);
      pls.col0(kGrid);
      pls.box("g", 0.0, 0, "g", 0.0, 0);
      if (panel.diagonal) {
        const double lo = std::max(xlo, ymin), hi = std::min(xhi, ymax);
        if (hi > lo) {
          pls.col0(kMid);
          pls.lsty(2);
          pls.join(lo, lo, hi, hi);
          pls.lsty(1);
        }
      }
      std::vector<ScatterPoint> scatter;
      for (size_t n = 0; n < panel.series.size(); ++n) {
        const Series& s = panel.series[n];
        const size_t style = static_cast<size_t>(style_of.at(s.label));
        std::vector<PLFLT> px, py;
        for (size_t i = 0; i < s.x.size(); ++i) {
          if (!std::isfinite(s.y[i])) continue;
          px.push_back(tx(s.x[i]));
          py.push_back(s.y[i]);
        }
        if (px.empty()) continue;
        if (panel.points) {
          for (size_t j = 0; j < px.size(); ++j) scatter.push_back({style, px[j], py[j]});
          continue;
        }
        series_style(pls, style);
        pls.width(1.6);
        pls.line(static_cast<PLINT>(px.size()), px.data(), py.data());
        pls.width(1.0);
        // Markers at 6 places along x, shifted per series so that coinciding lines still show
        // every method's marker.
        const double shift = static_cast<double>(n) / static_cast<double>(std::max<size_t>(panel.series.size(), 1));
        for (int m = 0; m < 6; ++m) {
          const double at = xlo + (xhi - xlo) * (static_cast<double>(m) + 0.15 + 0.7 * shift) / 6.0;
          const size_t j = static_cast<size_t>(std::lower_bound(px.begin(), px.end(), at) - px.begin());
          if (j >= px.size()) continue;
          draw_marker(pls, style, px[j], py[j]);
        }
      }
      draw_scatter(pls, scatter, (xhi - xlo) / panel_w, (ymax - ymin) / panel_h);
      // Fixed-point tick labels with as many decimals as the tick spacing needs (PLplot would
      // otherwise factor out a power of ten into a label that collides with the title).
      auto decimals_for = [](double range) {
        return std::clamp(static_cast<int>(-std::floor(std::log10(range / 5.0))), 0, 6);
      };
      const int decimals = decimals_for(ymax - ymin);
      pls.col0(kInk);
      pls.prec(1, panel.log_x ? 0 : decimals_for(xhi - xlo));
      pls.box(panel.log_x ? "bcnstl" : "bcnstf", 0.0, 0, "", 0.0, 0);
      pls.prec(1, decimals);
      pls.box("", 0.0, 0, "bcnstvf", 0.0, 0);
      pls.prec(0, 0);
      pls.mtex("b", 3.2, 0.5, 0.5, plain(panel.x_label).c_str());
      pls.mtex("l", 2.2 + 0.62 * (decimals + 2), 0.5, 0.5, plain(panel.y_label).c_str());
    }
    // One legend for all panels, right of them: line and marker per method.
    const double lx = width - legend_w - 10, ly = top + 30;
    cv.text(lx, ly - 4, "Method", 0.0, 0.0, 0.85);
    cv.viewport(0, 0, width, height);
    pls.wind(0.0, width, 0.0, height);
    for (size_t i = 0; i < legend.size(); ++i) {
      const size_t style = static_cast<size_t>(legend[i].first);
      const double y = height - (ly + 22.0 * static_cast<double>(i + 1));
      series_style(pls, style);
      pls.width(2.0);
      pls.join(lx, y, lx + 34, y);
      pls.width(1.0);
      draw_marker(pls, style, lx + 17, y);
      pls.col0(kInk);
      pls.schr(kCharMm, 0.8);
      pls.ptex(lx + 42, y - 4, 1.0, 0.0, 0.0, plain(legend[i].second).c_str());
      pls.schr(kCharMm, 1.0);
    }
  });
}

std::vector<fs::path> draw_heatmap(const Heatmap& figure, const fs::path& stem) {
  const int k = static_cast<int>(figure.labels.size());
  LAB_CHECK(k > 0, "heat map without labels");
  LAB_CHECK(static_cast<int>(figure.values.size()) == k, "heat map: {} rows for {} labels", figure.values.size(), k);
  for (const auto& row : figure.values)
    LAB_CHECK(static_cast<int>(row.size()) == k, "heat map: a row of {} values for {} labels", row.size(), k);
  size_t longest = 0;
  for (const std::string& l : figure.labels) longest = std::max(longest, l.size());
  const int cell = 60, char_w = 7;
  const int left = 24 + char_w * static_cast<int>(longest);
  const int slant = static_cast<int>(0.72 * char_w * static_cast<double>(longest));  // 45° labels' height and overhang
  const int top = 56 + slant;
  const int bar_area = 120;
  const int right = std::max(bar_area, slant - (k - 1) * cell / 2);
  const int bottom = figure.note.empty() ? 24 : 48;
  const int width = std::max({left + k * cell + right, 40 + 9 * static_cast<int>(figure.title.size()),
                              40 + 7 * static_cast<int>(figure.note.size())});
  const int height = top + k * cell + bottom;
  return render(stem, width, height, [&](Canvas& cv) {
    plstream& pls = cv.pls;
    cv.text(width / 2.0, 28, figure.title, 0.5, 0.0, 1.1);
    for (int c = 0; c < k; ++c)
      cv.text(left + c * cell + cell / 2.0, top - 8, figure.labels[static_cast<size_t>(c)], 0.0, 45.0, 0.85);
    for (int r = 0; r < k; ++r) {
      const double y0 = top + r * cell;
      cv.text(left - 8, y0 + cell / 2.0 + 4, figure.labels[static_cast<size_t>(r)], 1.0, 0.0, 0.85);
      for (int c = 0; c < k; ++c) {
        const double v = figure.values[static_cast<size_t>(r)][static_cast<size_t>(c)];
        const double x0 = left + c * cell;
        cv.viewport(x0, y0, x0 + cell, y0 + cell);
        diverging_cmap1(pls);
        // A 2×2 block of the one value: plimagefr draws nothing for a single point.
        const double shown = std::isfinite(v) ? std::clamp(v, -1.0, 1.0) : 0.0;
        draw_values(pls, {shown, shown, shown, shown}, 2, 2, -1.0, 1.0);
        frame(pls, kGrid);
        const bool dark = std::isfinite(v) && std::abs(v) > 0.55;
        cv.text(x0 + cell / 2.0, y0 + cell / 2.0 + 5, std::isfinite(v) ? fmt::format("{:.2f}", v) : "n/a", 0.5, 0.0,
                0.9, std::isfinite(v) ? (dark ? kBackground : kInk) : kMid);
      }
    }
    cv.viewport(left, top, left + k * cell, top + k * cell);
    pls.wind(0.0, 1.0, 0.0, 1.0);
    frame(pls, kInk);
    // The colour bar: +1 at the top, −1 at the bottom.
    const double bx = left + k * cell + 28, bw = 16, bh = std::max(160.0, k * cell * 0.8);
    const double by = top + (k * cell - bh) / 2.0;
    cv.viewport(bx, by, bx + bw, by + bh);
    std::vector<double> ramp(2 * 256);
    for (size_t i = 0; i < 256; ++i)
      for (size_t j = 0; j < 2; ++j) ramp[i * 2 + j] = 1.0 - 2.0 * static_cast<double>(i) / 255.0;
    diverging_cmap1(pls);
    draw_values(pls, ramp, 256, 2, -1.0, 1.0);
    frame(pls, kInk);
    for (double tick : {1.0, 0.5, 0.0, -0.5, -1.0})
      cv.text(bx + bw + 6, by + (1.0 - tick) / 2.0 * bh + 4, tick > 0 ? fmt::format("+{:g}", tick) : fmt::format("{:g}", tick),
              0.0, 0.0, 0.8);
    if (!figure.bar_label.empty()) cv.text(bx + bw / 2.0, by - 10, figure.bar_label, 0.5, 0.0, 0.8);
    if (!figure.note.empty()) cv.text(width / 2.0, height - 16, figure.note, 0.5, 0.0, 0.8);
  });
}

}  // namespace experiments
