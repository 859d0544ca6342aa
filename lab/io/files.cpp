#include "lab/io/files.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace lab {

namespace fs = std::filesystem;

namespace {

/// Creates the directory that will hold `path`, if missing.
void make_parent(const fs::path& path) {
  const fs::path parent = path.parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail("{}: cannot create directory {}: {}", path.string(), parent.string(), ec.message());
}

/// `path` without a trailing separator; an empty path is an error.
fs::path file_name_of(const fs::path& path, const char* what) {
  fs::path p = path;
  if (!p.has_filename()) p = p.parent_path();
  if (p.empty() || p.filename() == "." || p.filename() == "..")
    fail("'{}': expected the path of a {}", path.string(), what);
  return p;
}

}  // namespace

void write_atomic(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  if (!path.has_filename() || path.filename() == "." || path.filename() == "..")
    fail("'{}': expected the path of a file", path.string());
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (fs::is_directory(status)) fail("{}: is a directory, expected a file", path.string());
  // Only a regular file is ever replaced (lab/io/outputs.h); a device, FIFO or link is left alone.
  if (fs::exists(status) && !fs::is_regular_file(status))
    fail("{}: is {}; refusing to replace it with a file", path.string(), describe_file_type(path));
  make_parent(path);
  const fs::path temp = temp_path_beside(path);
  std::ofstream out;
  int open_errno = 0;
  const TempRegistration registration(temp, [&] {
    out.open(temp, std::ios::binary | std::ios::trunc);
    open_errno = errno;
  });
  try {
    if (!out) fail("{}: cannot create {}: {}", path.string(), temp.string(), std::strerror(open_errno));
    write(out);
    out.flush();
    if (!out) fail("{}: write failed: {}", path.string(), std::strerror(errno));
    out.close();
    if (!out) fail("{}: write failed on close: {}", path.string(), std::strerror(errno));
    fs::rename(temp, path, ec);
    if (ec) fail("{}: cannot rename {} to it: {}", path.string(), temp.filename().string(), ec.message());
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  write_atomic(path, [&](std::ostream& out) { out.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

std::string read_text(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("{}: is a directory, expected a file", path.string());
  check_input_file(path);  // a FIFO or a device would hang or never end
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading: {}", path.string(), std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("{}: read error: {}", path.string(), std::strerror(errno));
  return std::move(text).str();
}

nlohmann::json read_json(const fs::path& path) {
  const std::string text = read_text(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
}

void write_json(const fs::path& path, const nlohmann::json& value) {
  std::string text;
  try {
    text = value.dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    fail("{}: cannot write JSON: {}", path.string(), e.what());
  }
  write_text_atomic(path, text);
}

StagedDir::StagedDir(fs::path final_path) : final_(file_name_of(final_path, "directory")) {
  temp_ = final_.parent_path() / (final_.filename().string() + ".tmp-" + std::to_string(::getpid()));
  // Leftovers of earlier processes that died before committing (this pid's own is one of them).
  sweep_stale_temps(final_.parent_path().empty() ? fs::path(".") : final_.parent_path(), false,
                    final_.filename().string());
  std::error_code ec;
  fs::remove_all(temp_, ec);
  if (ec) fail("{}: cannot remove stale {}: {}", final_.string(), temp_.string(), ec.message());
  registration_ = std::make_unique<TempRegistration>(temp_, [&] { fs::create_directories(temp_, ec); });
  if (ec) fail("{}: cannot create {}: {}", final_.string(), temp_.string(), ec.message());
}

StagedDir::~StagedDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temp_, ec);
}

void StagedDir::commit() {
  LAB_CHECK(!committed_, "StagedDir {} committed twice", final_.string());
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(final_, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status))
      fail("{}: exists and is not a directory; refusing to replace it", final_.string());
    // Move the old directory aside first so that DIR is missing only between two renames.
    const fs::path old = final_.parent_path() / (final_.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    {
      // An interrupt waits for both renames: DIR is never left missing by one.
      const CleanupPause pause;
      fs::rename(final_, old, ec);
      if (ec) fail("{}: cannot move the old directory aside: {}", final_.string(), ec.message());
      fs::rename(temp_, final_, ec);
      if (ec) {
        std::error_code restore;
        fs::rename(old, final_, restore);
        fail("{}: cannot rename {} to it: {}", final_.string(), temp_.filename().string(), ec.message());
      }
      committed_ = true;
    }
    fs::remove_all(old, ec);
    if (ec) fail("{}: committed, but cannot remove the old directory {}: {}", final_.string(), old.string(),
                 ec.message());
    return;
  }
  fs::rename(temp_, final_, ec);
  if (ec) fail("{}: cannot rename {} to it: {}", final_.string(), temp_.filename().string(), ec.message());
  committed_ = true;
}

}  // namespace lab
