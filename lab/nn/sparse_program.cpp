#include "lab/nn/sparse_program.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "lab/nn/pinned_ops.h"
#include "lab/nn/program_code.h"

namespace lab {

namespace {

// Internal slots (and so the rows stored at once) a program may use: the pointer table of a strip
// lives on the stack.
constexpr int64_t kMaxSlots = 256;

// A slot's floats: the widest strip (8 vectors of 16).
constexpr int64_t kSlot = 128;

// A row of more nonzero weights is stored, not computed where it is read: a kid's weights stay in
// registers beside its reader's eight accumulators, and a long row stored costs one store per
// vector beside its many multiply-adds.
constexpr int64_t kMaxKidTerms = 3;

using Row = SparseProgram::Row;
using Term = SparseProgram::Term;

namespace ymm {
using X = pinned::Ymm;
#define LAB_KERNEL __attribute__((target("avx2,fma")))
#define LAB_KERNEL_INLINE __attribute__((target("avx2,fma"), always_inline)) inline
#include "lab/nn/sparse_program_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace ymm

namespace zmm {
using X = pinned::Zmm;
#define LAB_KERNEL __attribute__((target("avx512f")))
#define LAB_KERNEL_INLINE __attribute__((target("avx512f"), always_inline)) inline
#include "lab/nn/sparse_program_kernels.inc"
#undef LAB_KERNEL
#undef LAB_KERNEL_INLINE
}  // namespace zmm

// The chains pointwise_gemm gives row i of the step (a grouped step's: its group's one row).
RowChains row_chains(const SparseStep& st, int64_t i) {
  return st.groups == 1 ? finite_row_chains(st.out, st.in, i) : finite_row_chains(1, st.in / st.groups, 0);
}

std::atomic<bool> programs_set{true};

}  // namespace

bool sparse_programs() { return programs_set.load(); }

void set_sparse_programs(bool on) { programs_set.store(on); }

bool SparseProgram::takes(const SparseStep& st) {
  if (st.chains == nullptr || st.chains->empty() || st.chains->chains != st.out || st.chains->depth != st.in ||
      (st.groups != 1 && st.groups != st.out) || st.in % st.groups != 0)
    return false;
  for (int64_t i = 0; i < st.out; ++i)
    if (row_chains(st, i) == RowChains::kOther) return false;
  return true;
}

std::unique_ptr<SparseProgram> SparseProgram::build(const std::vector<SparseStep>& steps) {
  // pointwise_gemm runs its kernel only with AVX2 (finite_row_chains: kOther without, so takes()
  // refuses every step), and so does the program.
  if (steps.empty()) return nullptr;
  auto pr = std::make_unique<SparseProgram>();
  const size_t n = steps.size();
  // shape[l][i]: step l's row i's chains; uses[l][j]: the rows that read step l's input j;
  // reader[l][i]: a row of step l + 1 that reads step l's row i.
  std::vector<std::vector<RowChains>> shape(n);
  std::vector<std::vector<int64_t>> uses(n);
  std::vector<std::vector<int32_t>> reader(n);
  for (size_t l = 0; l < n; ++l) {
    const SparseStep& st = steps[l];
    if (!takes(st) || (l > 0 && st.in != steps[l - 1].out)) return nullptr;
    for (int64_t i = 0; i < st.out; ++i) shape[l].push_back(row_chains(st, i));
    uses[l].assign(static_cast<size_t>(st.in), 0);
  }
  // finite_row_chains reads these three switches alone.
  pr->switches_ = {pointwise_kernel(), pointwise_edges(), pointwise_remainders()};
  pr->inputs_ = steps.front().in;
  pr->outputs_ = steps.back().out;
  for (size_t l = 0; l < n; ++l) {
    reader[l].assign(static_cast<size_t>(steps[l].out), -1);
    const SparseChains& s = *steps[l].chains;
    for (int64_t i = 0; i < steps[l].out; ++i)
      for (int64_t q = s.start[static_cast<size_t>(i)]; q < s.start[static_cast<size_t>(i) + 1]; ++q) {
        const auto j = static_cast<size_t>(s.index[static_cast<size_t>(q)]);
        ++uses[l][j];
        if (l > 0) reader[l - 1][j] = static_cast<int32_t>(i);
      }
  }
  // kid[l][i]: step l's row i is computed where it is read: read by one row, of one chain, of one
  // chain itself, and its inputs not computed so (stored rows or the program's input).
  std::vector<std::vector<char>> kid(n);
  for (size_t l = 0; l < n; ++l) {
    kid[l].assign(static_cast<size_t>(steps[l].out), 0);
    if (l + 1 == n) continue;
    for (int64_t i = 0; i < steps[l].out; ++i) {
      const auto r = static_cast<size_t>(i);
      bool inputs_stored = true;
      const SparseChains& s = *steps[l].chains;
      if (l > 0)
        for (int64_t q = s.start[r]; q < s.start[r + 1]; ++q)
          inputs_stored = inputs_stored && !kid[l - 1][static_cast<size_t>(s.index[static_cast<size_t>(q)])];
      const int64_t terms = s.start[r + 1] - s.start[r];
      kid[l][r] = terms >= 1 && terms <= kMaxKidTerms && uses[l + 1][r] == 1 && shape[l][r] == RowChains::kOne &&
                  inputs_stored &&
                  shape[l + 1][static_cast<size_t>(reader[l][r])] == RowChains::kOne;
    }
  }
  // The rows in the order they run: depth first from the outputs, each stored row's slot taken
  // when it is computed and given back after its last read.
  std::vector<std::vector<int32_t>> slot(n);
  std::vector<std::vector<int64_t>> left(n);
  for (size_t l = 0; l < n; ++l) {
    slot[l].assign(static_cast<size_t>(steps[l].out), -1);
    left[l] = l + 1 < n ? uses[l + 1] : std::vector<int64_t>(static_cast<size_t>(steps[l].out), 0);
  }
  std::vector<int32_t> free_slots;
  const auto base = static_cast<int32_t>(pr->inputs_ + pr->outputs_);
  auto release = [&](size_t l, size_t j) {
    if (--left[l][j] == 0) free_slots.push_back(slot[l][j]);
  };
  // The terms of step l's row i (slots of its inputs, kids built), appended to terms_.
  std::function<int32_t(size_t, size_t)> compute;
  auto row_terms = [&](size_t l, size_t i, Row& row) {
    const SparseChains& s = *steps[l].chains;
    const int64_t pairs = s.depth / 2 * 2;
    std::vector<Term> ts;
    // The slots this row reads, its kids' included, are given back once all its terms are built:
    // a slot given back earlier could take a value computed for a later term before the row runs.
    std::vector<std::pair<size_t, size_t>> later;
    for (int64_t q = s.start[i]; q < s.start[i + 1]; ++q) {
      const int32_t j = s.index[static_cast<size_t>(q)];
      Term t{.slot = 0, .kid = -1, .weight = s.value[static_cast<size_t>(q)],
             .parity = j >= pairs ? 2 : j % 2};
      if (l == 0) {
        t.slot = j;
      } else if (kid[l - 1][static_cast<size_t>(j)]) {
        Row k{.shape = RowChains::kOne};
        const SparseChains& ks = *steps[l - 1].chains;
        std::vector<Term> kts;
        for (int64_t u = ks.start[static_cast<size_t>(j)]; u < ks.start[static_cast<size_t>(j) + 1]; ++u) {
          const int32_t ju = ks.index[static_cast<size_t>(u)];
          kts.push_back(Term{.slot = l - 1 == 0 ? ju : compute(l - 2, static_cast<size_t>(ju)),
                             .kid = -1, .weight = ks.value[static_cast<size_t>(u)], .parity = 0});
        }
        if (l - 1 > 0)
          for (int64_t u = ks.start[static_cast<size_t>(j)]; u < ks.start[static_cast<size_t>(j) + 1]; ++u)
            later.emplace_back(l - 2, static_cast<size_t>(ks.index[static_cast<size_t>(u)]));
        k.first = static_cast<int32_t>(pr->terms_.size());
        k.count = static_cast<int32_t>(kts.size());
        pr->terms_.insert(pr->terms_.end(), kts.begin(), kts.end());
        k.bias = steps[l - 1].bias != nullptr ? steps[l - 1].bias[j] : 0.0f;  // none: +0 (bias_relu)
        t.kid = static_cast<int32_t>(pr->kids_.size());
        pr->kids_.push_back(k);
        ++pr->inline_rows_;
      } else {
        t.slot = compute(l - 1, static_cast<size_t>(j));
      }
      ts.push_back(t);
    }
    if (l > 0)
      for (int64_t q = s.start[i]; q < s.start[i + 1]; ++q) {
        const auto j = static_cast<size_t>(s.index[static_cast<size_t>(q)]);
        if (!kid[l - 1][j]) later.emplace_back(l - 1, j);
      }
    for (const auto& [lj, j] : later) release(lj, j);
    if (row.shape != RowChains::kOne) {
      // even_odd_row's order: the even inputs', the odd inputs', the last (each in order of j).
      std::stable_sort(ts.begin(), ts.end(), [](const Term& p, const Term& q) { return p.parity < q.parity; });
      for (const Term& t : ts) {
        if (t.parity == 0) ++row.evens;
        else if (t.parity == 1) ++row.odds;
      }
    }
    row.first = static_cast<int32_t>(pr->terms_.size());
    row.count = static_cast<int32_t>(ts.size());
    pr->terms_.insert(pr->terms_.end(), ts.begin(), ts.end());
  };
  compute = [&](size_t l, size_t i) -> int32_t {
    if (slot[l][i] >= 0) return slot[l][i];
    Row row{.shape = shape[l][i]};
    row_terms(l, i, row);
    row.bias = steps[l].bias != nullptr ? steps[l].bias[i] : 0.0f;  // none: +0 (bias_relu)
    if (l + 1 == n) {
      row.out = static_cast<int32_t>(pr->inputs_) + static_cast<int32_t>(i);
    } else if (!free_slots.empty()) {
      row.out = free_slots.back();
      free_slots.pop_back();
    } else {
      row.out = base + static_cast<int32_t>(pr->slots_++);
    }
    slot[l][i] = row.out;
    pr->rows_.push_back(row);
    return row.out;
  };
  for (int64_t i = 0; i < steps.back().out; ++i) compute(n - 1, static_cast<size_t>(i));
  // Rows no output reads (never computed by the outputs' rows) change nothing: skipped.
  if (pr->slots_ > kMaxSlots) return nullptr;
  pr->code_ = ProgramCode::emit(pr->rows_, pr->kids_, pr->terms_, pr->inputs_, pr->outputs_, kSlot, 1);
  if (!pr->code_) {
    pr->code_ = ProgramCode::emit(pr->rows_, pr->kids_, pr->terms_, pr->inputs_, pr->outputs_, kSlot, 8);
    pr->code4_ = ProgramCode::emit(pr->rows_, pr->kids_, pr->terms_, pr->inputs_, pr->outputs_, kSlot, 4);
  }
  return pr;
}

SparseProgram::SparseProgram() = default;
SparseProgram::~SparseProgram() = default;

int64_t SparseProgram::code_columns() const { return code_ ? code_->columns() : 0; }

int64_t SparseProgram::code_size() const {
  return (code_ ? code_->size() : 0) + (code4_ ? code4_->size() : 0);
}

std::shared_ptr<const SparseProgram> SparseProgram::shared(const std::vector<SparseStep>& steps) {
  // The key: the switches build reads, then each step's shape, chains and bias, as bytes.
  std::string key;
  auto put = [&key](const void* p, size_t bytes) { key.append(static_cast<const char*>(p), bytes); };
  const bool switches[3] = {pointwise_kernel(), pointwise_edges(), pointwise_remainders()};
  put(switches, sizeof switches);
  for (const SparseStep& st : steps) {
    const int64_t shape[4] = {st.in, st.out, st.groups, st.chains != nullptr ? st.chains->chains : -1};
    put(shape, sizeof shape);
    if (st.chains != nullptr) {
      const SparseChains& c = *st.chains;
      const int64_t sizes[3] = {c.depth, static_cast<int64_t>(c.start.size()), static_cast<int64_t>(c.index.size())};
      put(sizes, sizeof sizes);
      put(c.start.data(), c.start.size() * sizeof(int64_t));
      put(c.index.data(), c.index.size() * sizeof(int32_t));
      put(c.value.data(), c.value.size() * sizeof(float));
    }
    const char has_bias = st.bias != nullptr;
    put(&has_bias, 1);
    if (st.bias != nullptr) put(st.bias, static_cast<size_t>(st.out) * sizeof(float));
  }
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const SparseProgram>> cache;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
  }
  std::shared_ptr<const SparseProgram> program = build(steps);
  const std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 64) cache.clear();
  return cache.try_emplace(std::move(key), std::move(program)).first->second;
}

bool SparseProgram::current() const {
  return sparse_weights() && pointwise_kernel() == switches_[0] && pointwise_edges() == switches_[1] &&
         pointwise_remainders() == switches_[2];
}

void SparseProgram::run(int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ahead) const {
  // Strips of 64 pixels (eight vectors of 8) with AVX2, of 128 (eight of 16) with AVX-512, then
  // what is left: 64 (four of 16), then 16 at a time.
  const bool wide = wide_kernels();
  const int64_t strip = wide ? 128 : 64;
  thread_local std::vector<float> scratch;
  const size_t need = static_cast<size_t>(slots_ * kSlot);
  if (scratch.size() < need) scratch.resize(need);
  float* ptr[64 + 64 + kMaxSlots];
  for (int64_t s = 0; s < slots_; ++s) ptr[inputs_ + outputs_ + s] = scratch.data() + s * kSlot;
  // The slots' places on the strip from column p, and the input rows `ahead` further on asked for.
  auto place = [&](int64_t p, int64_t width) {
    for (int64_t c = 0; c < inputs_; ++c) {
      ptr[c] = const_cast<float*>(x + c * ldx + p);
      if (ahead > 0)
        for (int64_t l = 0; l < width; l += 16)  // a cache line of 16 floats
          _mm_prefetch(reinterpret_cast<const char*>(x + c * ldx + p + ahead + l), _MM_HINT_T0);
    }
    for (int64_t r = 0; r < outputs_; ++r) ptr[inputs_ + r] = y + r * ldy + p;
  };
  const Term* terms = terms_.data();
  const Row* kids = kids_.data();
  int64_t p = 0;
  if (wide && code_ && program_code()) {
    // The machine code on its strips (of 16 or 128 columns), then a last one of 64.
    float* rows[64 + 64];
    for (int64_t c = 0; c < inputs_; ++c) rows[c] = const_cast<float*>(x + c * ldx);
    for (int64_t r = 0; r < outputs_; ++r) rows[inputs_ + r] = y + r * ldy;
    const int64_t columns = code_->columns();
    code_->run(cols / columns, rows, scratch.data(), ahead);
    p = cols / columns * columns;
    if (code4_ && p + 64 <= cols) {
      for (int64_t c = 0; c < inputs_; ++c) rows[c] += p;
      for (int64_t r = 0; r < outputs_; ++r) rows[inputs_ + r] += p;
      code4_->run(1, rows, scratch.data(), ahead);
      p += 64;
    }
  }
  for (; p + strip <= cols; p += strip) {
    place(p, strip);
    if (wide) zmm::run_strip<8>(rows_, terms, kids, ptr);
    else ymm::run_strip<8>(rows_, terms, kids, ptr);
  }
  if (wide && p + 64 <= cols) {
    place(p, 64);
    zmm::run_strip<4>(rows_, terms, kids, ptr);
    p += 64;
  }
  for (; p < cols; p += 16) {
    place(p, 0);
    if (wide) zmm::run_strip<1>(rows_, terms, kids, ptr);
    else ymm::run_strip<2>(rows_, terms, kids, ptr);
  }
}

}  // namespace lab
