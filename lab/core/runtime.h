/// @file runtime.h
/// @brief The one object that owns threading: oneDNN's OpenMP threads and TBB's workers.
///
/// Rule of the house: network evaluations run on the calling thread as whole batches, and
/// oneDNN spreads each primitive over `threads()` OpenMP threads. TBB parallelises only the
/// work *around* network calls (data generation, segmentation, per-sample metric arithmetic),
/// never a network call itself, so the two pools never nest or oversubscribe the cores.
/// One exception, decided by the perturbation engine alone (experiments/engine/perturbation.h,
/// for_samples): the independent samples of a unit may run concurrently on TBB workers when
/// their network calls are small, each worker's calls on ONE OpenMP thread (OmpThreads below),
/// so the cores still carry one thread each. Network calls may therefore come from several
/// threads at once: each thread has its own stream and its own scratch memory for the
/// primitives (lab/nn/layers.cpp), and the primitive cache is locked.
/// Results never depend on the thread count (tested in tests/lab/test_network.cpp and, for every
/// method, in tests/attributions/test_method_table.cpp; the concurrent samples in
/// tests/experiments/test_metrics_incremental.cpp).
#pragma once

#include <memory>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

namespace lab {

class Runtime {
 public:
  /// The process-wide runtime. Thread count: ATTRLAB_THREADS if set, else all cores.
  ///
  /// oneDNN's instruction set is held to AVX2 (dnnl_set_max_cpu_isa, before oneDNN generates any
  /// code) unless ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA is set. The runtime's own kernels
  /// (pointwise_gemm.h, patch_kernel.h) reproduce the bytes of oneDNN's AVX2 kernels and run only
  /// where those are oneDNN's; on a machine with AVX-512, oneDNN would otherwise run its AVX-512
  /// kernels, in other summation orders, and every product would go through dnnl_sgemm. Held, an
  /// AVX-512 machine computes the same bytes as an AVX2 one, and with the runtime's kernels. In a
  /// process where oneDNN had generated code before the runtime was made (PyTorch shares Debian's
  /// libdnnl), holding it fails and changes nothing: onednn_isa_hold_failed().
  static Runtime& get();
  bool onednn_isa_hold_failed() const { return isa_hold_failed_; }

  dnnl::engine& engine() { return engine_; }
  /// The calling thread's stream (in order; one per thread, so that threads never share one).
  dnnl::stream& stream();

  /// Sets both pools to `n` threads, 1 <= n <= max_threads() (more end in the OpenMP runtime's
  /// crash, never in speed); outside that throws lab::Error(kUsage).
  void set_threads(int n);
  int threads() const { return threads_; }

 private:
  Runtime();
  struct TbbLimit;
  bool isa_hold_failed_;  // first: oneDNN is held before the engine is made
  dnnl::engine engine_;
  int threads_ = 1;
  std::unique_ptr<TbbLimit> tbb_limit_;
};

/// Runs its scope's network calls on the calling thread with `threads` OpenMP threads (when
/// `active` and fewer than the thread's current count), then restores the count. The setting is
/// the calling thread's own: other threads keep theirs.
class OmpThreads {
 public:
  OmpThreads(bool active, int threads);
  ~OmpThreads();
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
  bool active_;
};

/// The largest thread count accepted: 4 × the cores.
int max_threads();
/// A thread count as typed (`--threads 8`, `ATTRLAB_THREADS=8`); anything but an integer in
/// 1..max_threads() throws lab::Error(kUsage) naming `source` (the flag or variable and value).
int parse_threads(const std::string& text, const std::string& source);

/// Sets up the process for long runs of batched network calls; called first thing in `main` of
/// `attrlab` and of the benchmarks. Two settings:
/// - glibc takes large blocks from the heap and keeps freed memory for the next call.
///   Activations of large images are tens of MB per network call; by default glibc maps and
///   unmaps each such block, and the page faults of mapping it again cost more than the network
///   math (bench/bench_methods.cpp).
/// - oneDNN's OpenMP workers stop spinning soon after a parallel region. By default libgomp
///   spins for 300 000 rounds before it sleeps, so the worker keeps a core busy while TBB does
///   the work that follows every network call (masks, blending, gradients of the mask), and the
///   two pools oversubscribe the cores: extremal perturbation, which alternates the two every
///   iteration, ran 15% slower (bench/bench_perturbation.cpp). libgomp reads GOMP_SPINCOUNT only
///   when it is loaded: unless it or OMP_WAIT_POLICY is set, sets GOMP_SPINCOUNT=10000 and runs
///   the program again (execv /proc/self/exe; on failure goes on). The attrlab executable (cli/
///   launcher.cpp) and Python package set it before libgomp loads, so never re-run; benchmarks do.
void prepare_process(char** argv);

}  // namespace lab
