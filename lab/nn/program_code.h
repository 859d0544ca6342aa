/// @file program_code.h
/// @brief A SparseProgram's strips as machine code: its rows, in its order and with its operations,
/// emitted once (Xbyak, AVX-512) as straight-line code per strip, with every weight, bias, slot and
/// row shape fixed at emission instead of read and branched on per row and strip.
///
/// The interpreter (sparse_program_kernels.inc) walks the program's rows for every strip: per row
/// it tests the shape and the term count, per term whether it is a kid and its weight is 1, per
/// row and kid whether the bias is zero, and it loads each slot's pointer from a table. On
/// multi-color-sum's detector (116 rows of one to five terms) that bookkeeping is about a third of
/// its time: the code takes 0.63–0.77 of the interpreter's (one core, README "Sparse programs as
/// machine code"). The code does the same operations on the same operands in the same order, so
/// every value has the interpreter's bytes (tests/lab/test_sparse_program.cpp runs both on random
/// programs and every shape of row). Two differ in form only: a kid's x + bias is bias + x (one
/// vaddps with x from memory), and a row's first term of weight 1 multiplies nothing (1 · v is v:
/// the inputs are finite and a kid's value is a ReLU's), as the interpreter's kids already do.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lab/nn/sparse_program.h"

namespace lab {

/// Whether SparsePrograms run their strips of AVX-512 vectors as machine code (default on, where
/// the CPU has AVX-512 and lab::wide_kernels() is on). Off: by the interpreter (the same bytes).
bool program_code();
void set_program_code(bool on);

/// The machine code of one SparseProgram on strips of `vectors` (4 or 8) vectors of 16 floats.
class ProgramCode {
 public:
  /// The code of the program's rows, kids and terms (SparseProgram's), `inputs` input rows and
  /// `outputs` output rows, its internal slots `slot_floats` floats apart in the scratch; null
  /// where the CPU has no AVX-512 or the build has no Xbyak.
  static std::unique_ptr<ProgramCode> emit(const std::vector<SparseProgram::Row>& rows,
                                           const std::vector<SparseProgram::Row>& kids,
                                           const std::vector<SparseProgram::Term>& terms, int64_t inputs,
                                           int64_t outputs, int64_t slot_floats, int vectors);
  ~ProgramCode();
  ProgramCode(const ProgramCode&) = delete;
  ProgramCode& operator=(const ProgramCode&) = delete;

  /// The columns of one strip: 16 × vectors.
  int64_t columns() const { return columns_; }

  /// `strips` strips from column 0: rows[c] the input row c's first column (c < inputs), then
  /// the output rows' (rows[inputs + r]); scratch the internal slots. ahead > 0: each strip asks
  /// for its input rows' columns `ahead` floats further on too (SparseProgram::run's).
  void run(int64_t strips, float* const* rows, float* scratch, int64_t ahead) const;

  /// The code's bytes (for tests and benchmarks).
  int64_t size() const;

 private:
  ProgramCode() = default;
  struct Code;
  std::unique_ptr<Code> code_;
  int64_t columns_ = 0;
};

}  // namespace lab
