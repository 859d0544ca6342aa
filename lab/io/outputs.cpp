#include "lab/io/outputs.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "lab/core/error.h"

namespace lab {

namespace fs = std::filesystem;

namespace {

std::string describe_status(const fs::file_status& status) {
  switch (status.type()) {
    case fs::file_type::not_found:
    case fs::file_type::none:
      return "missing";
    case fs::file_type::regular:
      return "a regular file";
    case fs::file_type::directory:
      return "a directory";
    case fs::file_type::symlink:
      return "a symbolic link";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

/// The nearest existing ancestor of `path` must be a directory, or the output cannot be created.
void check_creatable(const NamedPath& out) {
  fs::path p = fs::absolute(out.path).parent_path();
  std::error_code ec;
  while (!p.empty() && !fs::exists(fs::symlink_status(p, ec))) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  const fs::file_status status = fs::status(p, ec);
  if (fs::exists(status) && !fs::is_directory(status))
    fail_usage("{} {}: {} is {}, so nothing can be created below it", out.flag, out.path.string(), p.string(),
               describe_status(status));
}

/// Absolute, with symbolic links and ".." resolved as far as the path exists.
fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) p = fs::absolute(path).lexically_normal();
  // "dir/" and "dir" are the same path.
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p;
}

/// True when `inner` is `outer` or lies below it.
bool within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

/// Temporary paths alive in this process. Never destroyed: the interrupt thread may use it while
/// the process exits.
struct TempPaths {
  std::mutex mutex;
  std::vector<fs::path> paths;
};

TempPaths& temp_paths() {
  static TempPaths* paths = new TempPaths;
  return *paths;
}

bool process_alive(long pid) {
  if (pid <= 0) return true;  // not ours to judge
  if (pid == static_cast<long>(::getpid())) return true;
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;
}

std::string human_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024 * 1024) return fmt::format("{:.1f} TiB", b / (1024.0 * 1024 * 1024 * 1024));
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024));
  return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
}

}  // namespace

std::string describe_file_type(const fs::path& path) {
  std::error_code ec;
  return describe_status(fs::symlink_status(path, ec));
}

void check_output_file(const NamedPath& out) {
  const fs::path& p = out.path;
  if (p.empty() || !p.has_filename() || p.filename() == "." || p.filename() == "..")
    fail_usage("{} '{}': expected the path of a file", out.flag, p.string());
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(p, ec);
  const fs::path parent = fs::absolute(p).parent_path();
  if (!fs::exists(status)) {
    check_creatable(out);
    sweep_stale_temps(parent, false, p.filename().string());
    return;
  }
  if (fs::is_regular_file(status)) {
    sweep_stale_temps(parent, false, p.filename().string());
    return;
  }
  std::string what = describe_status(status);
  if (fs::is_symlink(status)) what += fmt::format(" (to {})", describe_status(fs::status(p, ec)));
  fail_usage("{} {}: is {}; expected a new path or a regular file to replace", out.flag, p.string(), what);
}

void check_output_dir(const NamedPath& out, std::string_view marker, bool force) {
  fs::path p = out.path;
  if (!p.has_filename()) p = p.parent_path();  // "DIR/"
  if (p.empty() || p.filename() == "." || p.filename() == "..")
    fail_usage("{} '{}': expected the path of a directory to create", out.flag, out.path.string());
  sweep_stale_temps(fs::absolute(p).parent_path(), false, p.filename().string());
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(p, ec);
  if (!fs::exists(status)) {
    check_creatable(out);
    return;
  }
  if (fs::is_symlink(status))
    fail_usage("{} {}: is a symbolic link (to {}); name the directory itself", out.flag, p.string(),
               describe_status(fs::status(p, ec)));
  if (!fs::is_directory(status))
    fail_usage("{} {}: is {}; expected a new path or a directory attrlab wrote", out.flag, p.string(),
               describe_status(status));
  if (fs::is_empty(p, ec) && !ec) return;
  if (!fs::is_regular_file(fs::symlink_status(p / marker, ec)))
    fail_usage("{} {}: is a directory that attrlab did not write (it has files but no {}); refusing to replace it, "
               "choose a new path",
               out.flag, p.string(), marker);
  if (!force)
    fail_usage("{} {}: already exists; pass --force to replace it, or choose a new path", out.flag, p.string());
}

void check_distinct(const std::vector<NamedPath>& outputs, const std::vector<NamedPath>& inputs) {
  std::vector<fs::path> outs, ins;
  for (const NamedPath& o : outputs) outs.push_back(resolved(o.path));
  for (const NamedPath& i : inputs) ins.push_back(resolved(i.path));
  for (size_t a = 0; a < outputs.size(); ++a) {
    for (size_t b = 0; b < a; ++b)
      if (outs[a] == outs[b])
        fail_usage("{} {}: is also the output {} {}; each output needs its own path", outputs[a].flag,
                   outputs[a].path.string(), outputs[b].flag, outputs[b].path.string());
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (outs[a] == ins[k])
        fail_usage("{} {}: is the input {} {}; writing it would destroy the input", outputs[a].flag,
                   outputs[a].path.string(), inputs[k].flag, inputs[k].path.string());
      if (within(ins[k], outs[a]))
        fail_usage("{} {}: contains the input {} {}; writing it would destroy the input", outputs[a].flag,
                   outputs[a].path.string(), inputs[k].flag, inputs[k].path.string());
      if (within(outs[a], ins[k]))
        fail_usage("{} {}: lies inside the input {} {}; choose a path outside it", outputs[a].flag,
                   outputs[a].path.string(), inputs[k].flag, inputs[k].path.string());
    }
  }
}

void check_input_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail("{}: no such file", path.string());
  if (fs::is_regular_file(status)) return;
  fail("{}: is {}; expected a regular file", path.string(), describe_status(status));
}

TempRegistration::TempRegistration(fs::path path) : path_(std::move(path)) {
  TempPaths& t = temp_paths();
  const std::lock_guard<std::mutex> lock(t.mutex);
  t.paths.push_back(path_);
}

TempRegistration::TempRegistration(fs::path path, const std::function<void()>& create) : path_(std::move(path)) {
  TempPaths& t = temp_paths();
  const std::lock_guard<std::mutex> lock(t.mutex);
  t.paths.push_back(path_);
  try {
    create();
  } catch (...) {
    t.paths.pop_back();  // no destructor runs for a constructor that throws
    throw;
  }
}

TempRegistration::~TempRegistration() {
  TempPaths& t = temp_paths();
  const std::lock_guard<std::mutex> lock(t.mutex);
  for (auto it = t.paths.end(); it != t.paths.begin();) {
    --it;
    if (*it == path_) {
      t.paths.erase(it);
      break;
    }
  }
}

CleanupPause::CleanupPause() { temp_paths().mutex.lock(); }

CleanupPause::~CleanupPause() { temp_paths().mutex.unlock(); }

void install_interrupt_cleanup() {
  static sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return;
  std::thread([] {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    TempPaths& t = temp_paths();
    t.mutex.lock();  // kept: no temporary is registered (so none created) from now on
    // A writer already past its registration may still create a file inside a temporary
    // directory while it is being removed; a second and third pass remove what appeared.
    for (int pass = 0; pass < 3; ++pass) {
      bool left = false;
      for (const fs::path& p : t.paths) {
        std::error_code ec;
        fs::remove_all(p, ec);
        left = left || fs::exists(fs::symlink_status(p, ec));
      }
      if (!left) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // End by the signal itself, so that the parent sees how the process ended.
    std::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    ::raise(sig);
    ::_exit(128 + sig);
  }).detach();
}

fs::path temp_path_beside(const fs::path& path) {
  static std::atomic<uint64_t> counter{0};
  return path.parent_path() /
         (path.filename().string() + "." + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".tmp");
}

int sweep_stale_temps(const fs::path& dir, bool recursive, std::string_view only) {
  static const std::regex file_re(R"((.+)\.([0-9]+)-[0-9]+\.tmp)");
  static const std::regex dir_re(R"((.+)\.(?:tmp|old)-([0-9]+))");
  std::vector<fs::path> stale;
  auto consider = [&](const fs::directory_entry& entry) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    std::error_code ec;
    const bool is_dir = entry.is_directory(ec) && !entry.is_symlink(ec);
    const bool is_file = entry.is_regular_file(ec) && !entry.is_symlink(ec);
    if (!((is_file && std::regex_match(name, m, file_re)) || (is_dir && std::regex_match(name, m, dir_re)))) return;
    if (!only.empty() && m[1].str() != only) return;
    const long pid = std::strtol(m[2].str().c_str(), nullptr, 10);
    if (!process_alive(pid)) stale.push_back(entry.path());
  };
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return 0;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      consider(*it);
    }
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      consider(*it);
  }
  int removed = 0;
  for (const fs::path& p : stale) {
    std::error_code rec;
    const std::string name = p.filename().string();
    const size_t old = name.rfind(".old-");
    if (old != std::string::npos && fs::is_directory(fs::symlink_status(p, rec))) {
      const fs::path original = p.parent_path() / name.substr(0, old);
      if (!fs::exists(fs::symlink_status(original, rec))) {
        fs::rename(p, original, rec);
        if (!rec) ++removed;
        continue;
      }
    }
    if (fs::remove_all(p, rec) > 0 && !rec) ++removed;
  }
  return removed;
}

DirLock::DirLock(const fs::path& dir, std::string_view flag) {
  const fs::path file = dir / kFileName;
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_usage("{} {}: cannot create the lock file {}: {}", flag, dir.string(), file.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      fail_usage("{} {}: another attrlab command is writing into it (it holds {}); wait for it to end or choose "
                 "another {}",
                 flag, dir.string(), file.string(), flag);
    fail_usage("{} {}: cannot lock {}: {}", flag, dir.string(), file.string(), std::strerror(err));
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

fs::path PathLock::file_of(const fs::path& path) {
  fs::path p = path;
  if (!p.has_filename()) p = p.parent_path();  // "DIR/"
  return p.parent_path() / (p.filename().string() + ".attrlab.lock");
}

PathLock::PathLock(const NamedPath& out) : file_(file_of(out.path)) {
  std::error_code ec;
  if (!file_.parent_path().empty()) fs::create_directories(file_.parent_path(), ec);
  if (ec) fail_usage("{} {}: cannot create {}: {}", out.flag, out.path.string(), file_.parent_path().string(), ec.message());
  registration_ = std::make_unique<TempRegistration>(file_);
  // The holder removes the file when done: a lock taken on a file that was removed meanwhile
  // locks nothing, so it is taken again on the file now there.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int open_errno = 0;
    {
      const CleanupPause pause;  // created under the interrupt's lock (TempRegistration)
      fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      open_errno = errno;
    }
    if (fd_ < 0)
      fail_usage("{} {}: cannot create the lock file {}: {}", out.flag, out.path.string(), file_.string(),
                 std::strerror(open_errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      registration_.reset();  // the file is the other command's
      if (err == EWOULDBLOCK)
        fail_usage("{} {}: another attrlab command is writing it (it holds {}); wait for it to end or choose another {}",
                   out.flag, out.path.string(), file_.string(), out.flag);
      fail_usage("{} {}: cannot lock {}: {}", out.flag, out.path.string(), file_.string(), std::strerror(err));
    }
    struct stat held {}, named {};
    if (::fstat(fd_, &held) == 0 && ::stat(file_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev)
      return;
    ::close(fd_);
    fd_ = -1;
  }
  fail_usage("{} {}: cannot take the lock {} (it keeps being replaced)", out.flag, out.path.string(), file_.string());
}

PathLock::~PathLock() {
  if (fd_ < 0) return;
  ::unlink(file_.c_str());  // while held: no other command holds a lock on this file
  ::close(fd_);
}

std::unique_ptr<PathLock> lock_output_dir(const NamedPath& out, std::string_view marker, bool force) {
  auto lock = std::make_unique<PathLock>(out);
  check_output_dir(out, marker, force);
  return lock;
}

uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

void check_memory(uint64_t bytes, std::string_view what) {
  uint64_t limit = 0;
  std::string source = "available (MemAvailable in /proc/meminfo)";
  if (const char* env = std::getenv("ATTRLAB_MEMORY_LIMIT")) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (env[0] == '\0' || *end != '\0' || errno != 0 || env[0] == '-')
      fail_usage("ATTRLAB_MEMORY_LIMIT={}: expected a number of bytes", env);
    limit = v;
    source = "allowed by ATTRLAB_MEMORY_LIMIT";
  } else {
    limit = available_memory();
  }
  if (limit == 0 || bytes <= limit) return;
  fail_usage("{}: needs about {} of memory, more than the {} {}", what, human_bytes(bytes), human_bytes(limit), source);
}

}  // namespace lab
