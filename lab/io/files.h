/// @file files.h
/// @brief Files written whole or not at all, and readers that name the file in every error.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace lab {

class TempRegistration;

/// Writes via `write` into a temporary file beside `path`, then renames it over `path`.
/// On any exception the temporary file is removed and `path` is untouched.
void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);
/// Same with a ready string.
void write_text_atomic(const std::filesystem::path& path, const std::string& text);
/// Whole file as bytes; a missing/unreadable file throws lab::Error naming it.
std::string read_text(const std::filesystem::path& path);

/// Parses a JSON file; a missing file or a syntax error throws lab::Error naming the file.
nlohmann::json read_json(const std::filesystem::path& path);
/// Pretty-printed (2 spaces), newline-terminated, atomic.
void write_json(const std::filesystem::path& path, const nlohmann::json& value);

/// A directory that appears under its final name only when complete: files are written into a
/// temporary sibling ("DIR.tmp-PID"), and commit() renames it to DIR (replacing an old DIR).
/// Destroyed without commit(), the temporary directory is removed; it is registered for removal
/// on SIGINT/SIGTERM too, and stale temporaries of DIR left by dead processes are swept first
/// (lab/io/outputs.h). The caller checks DIR with check_output_dir() before any work.
class StagedDir {
 public:
  explicit StagedDir(std::filesystem::path final_path);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;
  /// Where to write now.
  const std::filesystem::path& path() const { return temp_; }
  const std::filesystem::path& final_path() const { return final_; }
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path temp_;
  std::unique_ptr<TempRegistration> registration_;
  bool committed_ = false;
};

}  // namespace lab
