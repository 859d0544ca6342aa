/// @file sparse_program.h
/// @brief A run of sparse pointwise steps (1×1 convolutions with the ReLU, their weights mostly
/// zeros) as one program per strip of 64 pixels (128 with AVX-512): each output row of the last
/// step computed from the rows it reads, a row read once computed where it is read (in registers,
/// never stored), the others in a few strip-sized slots that stay in L1; in the bytes of the steps
/// computed one after the other by lab::pointwise_gemm.
///
/// Layer by layer, a tiled run stores every row of every step and reads it back: multi-color-sum's
/// detector (60, 30, 15, 5 and 6 channels of one to three nonzero weights per row) stores 116 rows
/// per pixel. On a core that stores one vector per cycle, that, the per-row loop and the rows'
/// bias adds and ReLUs on the two adding pipes bound it well below its multiply-adds' peak. A
/// program keeps the rows read once in registers (the detector's 60 + 12 of its 116) and runs
/// each row on the strip's pixels at once.
///
/// With AVX-512, each program runs as machine code emitted for it once (lab/nn/program_code.h):
/// one vector of 16 pixels at a time with every value in registers where they fit (no slots),
/// else strips of 128 and 64 pixels as above; the same operations in the same order, without the
/// per-row dispatch. The tiled runs take their programs from SparseProgram::shared, so a forward
/// does not build them again.
///
/// Every row is the chain pointwise_gemm gives it (lab::finite_row_chains): one fused
/// multiply-add chain from +0 over the nonzero weights in order, or the even and odd chains of the
/// rows left below its blocks, then + bias, then the ReLU as one vmaxps with +0. So each value is
/// the same bytes as the steps' (tests/lab/test_sparse_program.cpp compares them on random
/// programs and every shape of row).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "lab/nn/pointwise_gemm.h"

namespace lab {

/// Whether the tiled forward runs take SparsePrograms where they apply (default on): two or more
/// consecutive sparse 1×1 steps of a run (lab/nn/layers.cpp's attach_program). Off: every step
/// by pointwise_gemm (bench_runtime's "tiles-steps" mode; the same bytes).
bool sparse_programs();
void set_sparse_programs(bool on);

/// One step of a program: `out` rows of `in` inputs, its nonzero weights (a 1×1 convolution's
/// Conv2d::sparse(), not empty) and its bias (null: none); the ReLU follows every step. A grouped
/// convolution of one output per group (`groups` = out, pointwise_gemm on each group's one row):
/// its groups' weights as one product's chains, row g on group g's inputs.
struct SparseStep {
  int64_t in = 0, out = 0;
  const SparseChains* chains = nullptr;
  const float* bias = nullptr;
  int64_t groups = 1;
};

class ProgramCode;

class SparseProgram {
 public:
  /// The program of `steps` (each step's `in` the previous one's `out`), with the row shapes
  /// pointwise_gemm gives them now (finite_row_chains); null where a row has none of its shapes
  /// (kOther) or the steps' shapes do not chain. With AVX-512, its strips' machine code too
  /// (lab/nn/program_code.h).
  static std::unique_ptr<SparseProgram> build(const std::vector<SparseStep>& steps);

  /// build's program, shared: the same steps (the same shapes, weights and biases) under the same
  /// switches of pointwise_gemm.h give the program built the first time. The tiled runs are built
  /// anew by every forward; this keeps a program's building and code emission to once per
  /// process (a cache of the last 64 step sequences).
  static std::shared_ptr<const SparseProgram> shared(const std::vector<SparseStep>& steps);

  SparseProgram();
  ~SparseProgram();
  SparseProgram(const SparseProgram&) = delete;
  SparseProgram& operator=(const SparseProgram&) = delete;

  /// Whether a step can be one of a program's now: chains of its shape, and every row in one of
  /// the shapes a program computes (finite_row_chains not kOther).
  static bool takes(const SparseStep& step);

  /// Whether the program still gives pointwise_gemm's bytes: the row shapes it was built with are
  /// those of now (the switches of pointwise_gemm.h read again) and sparse_weights().
  bool current() const;

  /// y (the last step's out rows, row stride ldy) = the steps on x (the first step's in rows,
  /// row stride ldx) on `cols` columns, a multiple of 16. The caller knows every value of x
  /// finite and every step's output bounded by the largest float (pointwise_gemm's `finite`
  /// for each step, and no row's value overflows). ahead > 0: strip by strip, x's rows `ahead`
  /// columns further on are asked into the cache too (a tiled run's next tile, read from memory).
  void run(int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ahead = 0) const;

  /// Counts for tests and benchmarks: rows computed in registers where they are read, rows stored
  /// in slots (the last step's included), slots.
  int64_t inline_rows() const { return inline_rows_; }
  int64_t stored_rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t slots() const { return slots_; }
  /// The bytes of its machine code (0: none), and the columns of the code's strip: 16 where it
  /// runs by vectors, 128 by rows (0: no code).
  int64_t code_size() const;
  int64_t code_columns() const;

  struct Term {
    int32_t slot = 0;   // where the input is: an input row or an internal slot (below)
    int32_t kid = -1;   // ≥ 0: the input is the row kids_[kid], computed here
    float weight = 0.0f;
    int32_t parity = 0;  // even/odd rows: 0 even, 1 odd, 2 the last product of an odd depth
  };
  struct Row {
    RowChains shape = RowChains::kOne;
    int32_t first = 0, count = 0;  // its terms: terms_[first, first + count)
    int32_t evens = 0, odds = 0;   // even/odd rows: the first `evens` terms, then `odds`, then the last
    float bias = 0.0f;  // +0 where the step has none
    int32_t out = 0;  // its slot
  };

 private:
  std::vector<Row> rows_, kids_;  // rows_ in the order they run; kids_: computed where read
  std::vector<Term> terms_;
  std::array<bool, 3> switches_{};  // pointwise_gemm's kernel, edges, remainders, as built (current())
  int64_t inputs_ = 0, outputs_ = 0, slots_ = 0, inline_rows_ = 0;
  // Its machine code (program_code.h): by vectors, else by strips of 8 vectors of 16, then of 4.
  std::unique_ptr<ProgramCode> code_, code4_;
};

}  // namespace lab
