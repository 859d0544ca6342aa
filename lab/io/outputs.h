/// @file outputs.h
/// @brief What attrlab may write, replace or delete, decided in one place.
///
/// The rule (README, "Safety"): attrlab never deletes or replaces anything it did not create,
/// except a regular file the user names as an output, and a directory it recognises as its own
/// (a data, maps or run directory) when the user asks for it (--force, or --resume for a run).
/// Every command checks its output paths here before any work, so a refusal leaves everything
/// untouched. Inputs are read only from regular files (a FIFO or a device would hang or never
/// end). Temporary files and directories are registered while they exist: on SIGINT, SIGTERM or
/// SIGHUP they are removed before the process ends, and those left by a process that died
/// (its PID no longer alive) are swept by the next command writing to the same place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lab {

/// A path as the user gave it, with the flag or key that named it ("--out", "--curves").
struct NamedPath {
  std::string flag;
  std::filesystem::path path;
};

/// An output file: missing (its parent is created later), or an existing regular file, which
/// will be replaced. Anything else — a directory, a device, a FIFO, a socket, a symbolic link —
/// is refused with lab::Error(kUsage) "FLAG PATH: is a ...; expected ...". Accepted, the
/// temporaries of that file left by dead processes are swept.
void check_output_file(const NamedPath& out);

/// A directory output that replaces its old version when complete (lab::StagedDir): missing,
/// an empty directory, or — with `force` — a directory holding `marker` (a file attrlab writes
/// into every directory of this kind, e.g. "manifest.json"). Anything else is refused with
/// lab::Error(kUsage) naming the flag, the path and what would make it acceptable. Accepted, the
/// temporaries of that directory left by dead processes are swept.
void check_output_dir(const NamedPath& out, std::string_view marker, bool force);

/// Refuses (lab::Error(kUsage)) an output that is the same path as another output, or that is an
/// input, contains one (replacing it would destroy the input) or lies inside an input directory
/// (it could overwrite an input file). Paths are compared after resolving symbolic links and "..".
void check_distinct(const std::vector<NamedPath>& outputs, const std::vector<NamedPath>& inputs);

/// An input file: it must exist and be a regular file (or a symbolic link to one); a directory,
/// FIFO, device or socket throws lab::Error(kInput) "PATH: is a ...; expected a regular file".
void check_input_file(const std::filesystem::path& path);

/// "a directory", "a FIFO", "a character device", ... for messages; "missing" when absent.
std::string describe_file_type(const std::filesystem::path& path);

/// Registers a temporary path (file or directory) for removal if the process is interrupted;
/// the destructor unregisters it.
///
/// The path must be created under the lock that the interrupt's cleanup takes (by `create`, or by
/// the one-argument form followed by a CleanupPause around the creation). Otherwise an interrupt
/// that arrives between the registration and the creation removes nothing, the path is created
/// just after, and it outlives the process.
class TempRegistration {
 public:
  /// Registers `path` only; create it under a CleanupPause.
  explicit TempRegistration(std::filesystem::path path);
  /// Registers `path` and runs `create`, which makes it, in one step that an interrupt cannot split.
  TempRegistration(std::filesystem::path path, const std::function<void()>& create);
  ~TempRegistration();
  TempRegistration(const TempRegistration&) = delete;
  TempRegistration& operator=(const TempRegistration&) = delete;

 private:
  std::filesystem::path path_;
};

/// While alive, an interrupt waits before removing temporaries: around the creation of a
/// registered path (see TempRegistration), and around the few renames that replace a directory
/// (lab::StagedDir::commit), which must happen all or not at all. Create no TempRegistration
/// while holding one.
class CleanupPause {
 public:
  CleanupPause();
  ~CleanupPause();
  CleanupPause(const CleanupPause&) = delete;
  CleanupPause& operator=(const CleanupPause&) = delete;
};

/// Blocks SIGINT, SIGTERM and SIGHUP in every thread and starts a thread that waits for them:
/// on one it removes every registered temporary path, then ends the process by that signal.
/// Call first in main(), before any other thread exists (threads inherit the signal mask).
void install_interrupt_cleanup();

/// The temporary name of `path` for one writer: "NAME.PID-N.tmp" beside it.
std::filesystem::path temp_path_beside(const std::filesystem::path& path);

/// Removes, in `dir` (and its subdirectories when `recursive`), the temporaries of processes
/// that are no longer alive: files "NAME.PID-N.tmp" and directories "NAME.tmp-PID" /
/// "NAME.old-PID" (an old directory whose NAME is missing — its process was killed between the
/// two renames of a replacement — is renamed back to NAME instead). When `only` is given, only the temporaries of that file or directory name.
/// Returns how many were removed. Errors are ignored (a sweep never fails a command).
int sweep_stale_temps(const std::filesystem::path& dir, bool recursive, std::string_view only = {});

/// An exclusive lock on a directory (flock on DIR/attrlab.lock), held until destroyed or the
/// process ends. A second holder is refused with lab::Error(kUsage) naming `flag` and the
/// directory.
class DirLock {
 public:
  DirLock(const std::filesystem::path& dir, std::string_view flag);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  /// The lock file's name inside the directory.
  static constexpr const char* kFileName = "attrlab.lock";

 private:
  int fd_ = -1;
};

/// An exclusive lock on an output path that need not exist yet (a directory that appears only
/// when complete, lab::StagedDir): flock on "NAME.attrlab.lock" beside it, created (with missing
/// parent directories) by the constructor and removed when the lock is released — also, as a
/// registered temporary, on SIGINT/SIGTERM. A second holder is refused with lab::Error(kUsage)
/// naming the flag and the path.
class PathLock {
 public:
  explicit PathLock(const NamedPath& out);
  ~PathLock();
  PathLock(const PathLock&) = delete;
  PathLock& operator=(const PathLock&) = delete;
  /// The lock file of `path`.
  static std::filesystem::path file_of(const std::filesystem::path& path);

 private:
  std::filesystem::path file_;
  std::unique_ptr<TempRegistration> registration_;
  int fd_ = -1;
};

/// Right before a command writes the directory `out` (lab::StagedDir): takes its PathLock, so that
/// a second command writing the same --out at once exits 1 naming it, then checks it again with
/// check_output_dir (another command may have completed it since the first check).
[[nodiscard]] std::unique_ptr<PathLock> lock_output_dir(const NamedPath& out, std::string_view marker, bool force);

/// MemAvailable of /proc/meminfo in bytes, or 0 when unknown.
uint64_t available_memory();

/// Refuses (lab::Error(kUsage)) work whose estimated memory `bytes` (described by `what`, e.g.
/// "--count 1000000 × 3×224×224 float32 images") exceeds the available memory; the message names
/// the estimate and the limit. ATTRLAB_MEMORY_LIMIT (bytes) overrides the limit (tests).
void check_memory(uint64_t bytes, std::string_view what);

}  // namespace lab
