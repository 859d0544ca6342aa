#include "experiments/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace experiments {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string render_progress(int64_t done, int64_t total, int64_t fresh, double seconds, const std::string& label,
                            int width) {
  const double fraction = total > 0 ? std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0) : 1.0;
  const int filled = static_cast<int>(std::floor(fraction * width));
  std::string bar = "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') + "]";
  const int digits = static_cast<int>(std::to_string(total).size());
  std::string text = fmt::format("{} {:>{}}/{} units", bar, done, digits, total);
  if (fresh > 0 && seconds > 0) {
    const double rate = static_cast<double>(fresh) / seconds;
    text += rate >= 1.0 ? fmt::format("  {:.2f} units/s", rate) : fmt::format("  {:.1f} s/unit", 1.0 / rate);
    text += "  ETA " + format_duration(static_cast<double>(total - done) / rate);
  } else {
    text += "  ETA --:--";
  }
  if (!label.empty()) text += "  " + label;
  return text;
}

Progress::Progress(int64_t total, bool enabled, std::FILE* out)
    : total_(total), enabled_(enabled), out_(out),
      start_(std::chrono::steady_clock::now()), last_draw_(start_ - std::chrono::seconds(1)) {
  tty_ = enabled_ && ::isatty(::fileno(out_)) == 1;
}

void Progress::skip(int64_t units) {
  done_ += units;
  draw(true);
}

void Progress::start(const std::string& label) {
  label_ = label;
  draw(false);
}

void Progress::advance() {
  ++done_;
  ++fresh_;
  draw(false);
}

void Progress::draw(bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    std::string text = render_progress(done_, total_, fresh_, seconds, label_);
    if (text.size() > 118) text.resize(118);
    std::fprintf(out_, "\r%-118s", text.c_str());
    std::fflush(out_);
    return;
  }
  // Plain lines: one per finished tenth; the last one is finish()'s, with the elapsed time.
  const int64_t tenth = total_ > 0 ? done_ * 10 / total_ : 10;
  if (tenth == last_tenth_ || tenth == 10 || (force && fresh_ == 0 && done_ > 0)) return;
  last_tenth_ = tenth;
  std::fprintf(out_, "%s\n", render_progress(done_, total_, fresh_, seconds, "").c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (!enabled_) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string text = render_progress(done_, total_, fresh_, seconds, "done in " + format_duration(seconds));
  if (tty_) std::fprintf(out_, "\r%-118s\n", text.c_str());
  else std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

}  // namespace experiments
