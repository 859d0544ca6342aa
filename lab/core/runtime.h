/// @file runtime.h
/// @brief The one object that owns threading: oneDNN's OpenMP threads and TBB's workers.
///
/// Rule of the house: network evaluations run on the calling thread as whole batches, and
/// oneDNN spreads each primitive over `threads()` OpenMP threads. TBB parallelises only the
/// work *around* network calls (data generation, segmentation, per-sample metric arithmetic),
/// never a network call itself, so the two pools never nest or oversubscribe the cores.
/// Results never depend on the thread count (tested in test_determinism.cpp).
#pragma once

#include <memory>

#include <oneapi/dnnl/dnnl.hpp>

namespace lab {

class Runtime {
 public:
  /// The process-wide runtime. Thread count: ATTRLAB_THREADS if set, else all cores.
  static Runtime& get();

  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }

  /// Sets both pools to `n` threads (n >= 1).
  void set_threads(int n);
  int threads() const { return threads_; }

 private:
  Runtime();
  struct TbbLimit;
  dnnl::engine engine_;
  dnnl::stream stream_;
  int threads_ = 1;
  std::unique_ptr<TbbLimit> tbb_limit_;
};

/// Makes glibc take large blocks from the heap and keep freed memory for the next call.
/// Activations of large images are tens of MB per network call; by default glibc maps and unmaps
/// each such block, and the page faults of mapping it again cost more than the network math
/// (bench/bench_methods.cpp). Called once at the start of `attrlab` and of the benchmarks.
void keep_freed_memory();

}  // namespace lab
