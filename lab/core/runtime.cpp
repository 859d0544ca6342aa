#include "lab/core/runtime.h"

#include <malloc.h>
#include <unistd.h>

#include <omp.h>
#include <tbb/global_control.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "lab/core/error.h"

namespace lab {

struct Runtime::TbbLimit {
  explicit TbbLimit(int n) : control(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(n)) {}
  tbb::global_control control;
};

Runtime::Runtime() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("ATTRLAB_THREADS")) {
    try {
      n = std::stoi(env);
    } catch (const std::exception&) {
      fail_parameter("ATTRLAB_THREADS={}: expected a positive integer", env);
    }
    if (n < 1) fail_parameter("ATTRLAB_THREADS={}: expected a positive integer", env);
  }
  set_threads(n < 1 ? 1 : n);
}

Runtime& Runtime::get() {
  static Runtime runtime;
  return runtime;
}

void Runtime::set_threads(int n) {
  if (n < 1) fail_parameter("--threads must be a positive integer, got {}", n);
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
