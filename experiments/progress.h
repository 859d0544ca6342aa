/// @file progress.h
/// @brief A progress bar on stderr for long runs: units done of total, rate, time left.
///
/// On a terminal the bar is redrawn in place (carriage return) at most ten times a second; when
/// stderr is not a terminal (a log file, CI) one plain line is printed per finished tenth of the
/// work, so logs stay short. Units skipped because a resumed run had finished them count as done
/// but not towards the rate. A disabled bar prints nothing (`--quiet`). Rendering is a pure
/// function (render_progress) so it is tested without a terminal (tests/experiments/test_report_tables.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace experiments {

/// The bar's text for `done` of `total` units, `fresh` of them done in `seconds` by this process
/// (the rate), `label` describing the current unit. Example:
/// "[#########...........]  12/30 units  0.85 units/s  ETA 0:21  IG*: 000008-000011".
std::string render_progress(int64_t done, int64_t total, int64_t fresh, double seconds, const std::string& label,
                            int width = 20);
/// "1:02:03" or "2:03"; "--:--" for a negative or non-finite value.
std::string format_duration(double seconds);

class Progress {
 public:
  /// `enabled` false prints nothing. `out` is stderr unless a test passes a file.
  Progress(int64_t total, bool enabled, std::FILE* out = stderr);
  /// Counts units finished before this process started (resume).
  void skip(int64_t units);
  /// Names the unit being computed now (shown at the end of the bar).
  void start(const std::string& label);
  /// One more unit finished.
  void advance();
  /// Prints the final line (with the elapsed time) and a newline.
  void finish();

 private:
  void draw(bool force);
  int64_t total_;
  bool enabled_;
  std::FILE* out_;
  bool tty_ = false;
  int64_t done_ = 0;
  int64_t fresh_ = 0;
  int64_t last_tenth_ = -1;
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace experiments
