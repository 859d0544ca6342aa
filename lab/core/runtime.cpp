#include "lab/core/runtime.h"

#include <malloc.h>
#include <unistd.h>

#include <omp.h>
#include <tbb/global_control.h>

#include <charconv>
#include <cstdlib>
#include <string>
#include <thread>

#include "lab/core/error.h"

namespace lab {

struct Runtime::TbbLimit {
  explicit TbbLimit(int n) : control(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(n)) {}
  tbb::global_control control;
};

namespace {

int cores() {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  return n < 1 ? 1 : n;
}

// oneDNN held to AVX2 (see runtime.h), before anything of it is generated; true if that failed
// where it mattered (oneDNN above AVX2).
bool hold_onednn_isa_failed() {
  if (std::getenv("ONEDNN_MAX_CPU_ISA") != nullptr || std::getenv("DNNL_MAX_CPU_ISA") != nullptr) return false;
  // Fails (and changes nothing) when oneDNN already generated code in this process: then it keeps
  // its ISA, and the kernels that reproduce its AVX2 bytes stay off (pointwise_kernel()).
  if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) == dnnl_success) return false;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         dnnl_get_effective_cpu_isa() != dnnl_cpu_isa_avx2;
}

}  // namespace

int max_threads() { return 4 * cores(); }

int parse_threads(const std::string& text, const std::string& source) {
  int n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size() || n < 1)
    fail_usage("{}: expected a positive integer (threads), at most {} (4 × the {} cores)", source, max_threads(),
               cores());
  if (ec == std::errc::result_out_of_range || n > max_threads())
    fail_usage("{}: too many threads; at most {} (4 × the {} cores)", source, max_threads(), cores());
  return n;
}

Runtime::Runtime() : isa_hold_failed_(hold_onednn_isa_failed()), engine_(dnnl::engine::kind::cpu, 0) {
  int n = cores();
  if (const char* env = std::getenv("ATTRLAB_THREADS")) n = parse_threads(env, std::string("ATTRLAB_THREADS=") + env);
  set_threads(n);
}

Runtime& Runtime::get() {
  static Runtime runtime;
  return runtime;
}

dnnl::stream& Runtime::stream() {
  thread_local dnnl::stream stream(engine_);
  return stream;
}

OmpThreads::OmpThreads(bool active, int threads)
    : saved_(omp_get_max_threads()), active_(active && threads < saved_) {
  if (active_) omp_set_num_threads(threads);
}

OmpThreads::~OmpThreads() {
  if (active_) omp_set_num_threads(saved_);
}

void Runtime::set_threads(int n) {
  if (n < 1 || n > max_threads())
    fail_usage("--threads {}: expected a positive integer, at most {} (4 × the {} cores)", n, max_threads(), cores());
  threads_ = n;
  omp_set_num_threads(n);
  tbb_limit_.reset();
  tbb_limit_ = std::make_unique<TbbLimit>(n);
}

void prepare_process(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") == nullptr && std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: go on with the default
  }
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace lab
