/// @file program_code.h
/// @brief A SparseProgram as machine code (Xbyak, AVX-512), emitted once per program with every
/// weight, bias, slot and row shape fixed, in one of two forms:
/// - by vectors, where every value live at once fits in 30 registers (multi-color-sum's detector):
///   the whole program on one vector of 16 columns at a time. Its rows and kids are the nodes of a
///   graph, equal ones (the same shape, bias and terms on the same nodes: the detector's x − V,
///   computed for two of its rows, and the rows of a colour component two colours share) once;
///   each value stays in a register until its last reader and only the output rows are stored;
/// - by rows, else (a patch run's head of 24 inputs): strips of 8 vectors (then one of 4), the
///   rows in the program's order as the interpreter runs them; up to 3 consecutive rows (5 on the
///   strip of 4) that read slots only (no kid) and none of each other's outputs together, each
///   input vector loaded once for every row whose next term reads it.
///
/// The interpreter (sparse_program_kernels.inc) walks the program's rows for every strip: per row
/// it tests the shape and the term count, per term whether it is a kid and its weight is 1, per
/// row and kid whether the bias is zero, and it loads each slot's pointer from a table; and it
/// stores every row it does not compute where it is read. On multi-color-sum's detector the code
/// by vectors takes 0.39–0.43 of its time, on its first patch run's head the code by rows 0.62
/// (one core; README "Sparse programs as machine code").
///
/// Both compute each row's value as the interpreter does (its chain, bias and ReLU, the same
/// operations on the same operands in the same order), so every value has the same bytes
/// (tests/lab/test_sparse_program.cpp runs the code and the interpreter on random programs and
/// every shape of row). Two differ in form only: a kid's x + bias is bias + x (one vaddps with x
/// from memory or a register), and a row's first term of weight 1 multiplies nothing (1 · v is
/// v: the inputs are finite and a kid's value is a ReLU's), as the interpreter's kids already do.
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

/// The machine code of one SparseProgram on strips of `vectors` vectors of 16 floats: 1, by
/// vectors; 4 or 8, by rows.
class ProgramCode {
 public:
  /// The code of the program's rows, kids and terms (SparseProgram's), `inputs` input rows and
  /// `outputs` output rows, its internal slots `slot_floats` floats apart in the scratch; null
  /// where the CPU has no AVX-512, or by vectors where its live values do not fit in registers.
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
