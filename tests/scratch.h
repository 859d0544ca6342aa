/// @file scratch.h
/// @brief For every test suite: a fresh directory under the system temp dir, unique per process
/// and per instance, removed at scope exit; and the temporaries attrlab may leave behind.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace testdir {

struct Scratch {
  std::filesystem::path dir;
  /// DIR = <temp>/attrlab-test-<stem>-<pid>-<n>.
  explicit Scratch(const std::string& stem) {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          ("attrlab-test-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

/// Every path below `dir` whose name marks a temporary ("*.tmp", "*.tmp-PID", "*.old-PID").
inline std::vector<std::string> temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.ends_with(".tmp") || name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos)
      found.push_back(it->path().string());
  }
  return found;
}

/// The same, one per line: "" when there are none, and the names in a failed CHECK otherwise.
inline std::string temporaries_text(const std::filesystem::path& dir) {
  std::string text;
  for (const std::string& path : temporaries(dir)) text += path + "\n";
  return text;
}

}  // namespace testdir
