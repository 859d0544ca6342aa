#include "lab/nn/sparse_program.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <utility>

#include "lab/nn/pinned_ops.h"

namespace lab {

namespace {

// Internal slots (and so the rows stored at once) a program may use: the pointer table of a strip
// lives on the stack.
constexpr int64_t kMaxSlots = 256;

// A row of more nonzero weights is stored, not computed where it is read: a kid's weights stay in
// registers beside its reader's eight accumulators, and a long row stored costs one store per
// vector beside its many multiply-adds.
constexpr int64_t kMaxKidTerms = 3;

// A chain's step as pointwise_gemm's shapes take it: fused (the blocks', three rows') or a rounded
// product added (two rows').
template <bool kFused>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 chain_step(__m256 w, __m256 x, __m256 acc) {
  if constexpr (kFused) return _mm256_fmadd_ps(w, x, acc);
  else return _mm256_add_ps(acc, _mm256_mul_ps(w, x));
}

// v + bias, then the ReLU (pinned_ops.h's one vmaxps): pointwise_gemm's store. A row without a
// bias adds +0, which changes only a −0 (to +0), and the ReLU maps both zeros to +0: the same
// bytes.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 bias_relu(__m256 v, __m256 bias) {
  return pinned::relu(_mm256_add_ps(v, bias));
}

using Row = SparseProgram::Row;
using Term = SparseProgram::Term;

// a[v] += w · (the row `kid` on vector v of the strip), for V vectors (kFirst: a[v] = w · kid, the
// first step of a[v]'s chain): the kid's chain of N terms (1 to 3, its inputs in slots) per
// vector, never stored. Its first step a product, as chain_row's (below).
template <int V, int N, bool kFirst>
__attribute__((target("avx2,fma"), always_inline)) inline void kid_into(const Row& kid, const Term* terms,
                                                                        float* const* ptr, __m256 w, __m256* a) {
  __m256 kw[N];
  const float* xs[N];
  for (int u = 0; u < N; ++u) kw[u] = _mm256_broadcast_ss(&terms[u].weight), xs[u] = ptr[terms[u].slot];
  const __m256 kb = _mm256_broadcast_ss(&kid.bias);
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    __m256 c = _mm256_mul_ps(kw[0], _mm256_loadu_ps(xs[0] + 8 * v));
#pragma GCC unroll 4
    for (int u = 1; u < N; ++u) c = _mm256_fmadd_ps(kw[u], _mm256_loadu_ps(xs[u] + 8 * v), c);
    a[v] = kFirst ? _mm256_mul_ps(w, bias_relu(c, kb)) : _mm256_fmadd_ps(w, bias_relu(c, kb), a[v]);
  }
}

template <int V, bool kFirst>
__attribute__((target("avx2,fma"), always_inline)) inline void add_kid(const Row& kid, const Term* terms,
                                                                       float* const* ptr, __m256 w, __m256* a) {
  switch (kid.count) {
    case 1: return kid_into<V, 1, kFirst>(kid, terms + kid.first, ptr, w, a);
    case 2: return kid_into<V, 2, kFirst>(kid, terms + kid.first, ptr, w, a);
    default: return kid_into<V, 3, kFirst>(kid, terms + kid.first, ptr, w, a);
  }
}

// a[v] += the term's weight times its input (an input slot or a kid) on the strip's V vectors.
template <int V, bool kFirst>
__attribute__((target("avx2,fma"), always_inline)) inline void add_term(const Term& term, const Term* terms,
                                                                        const Row* kids, float* const* ptr,
                                                                        __m256* a) {
  const __m256 w = _mm256_broadcast_ss(&term.weight);
  if (term.kid >= 0) return add_kid<V, kFirst>(kids[term.kid], terms, ptr, w, a);
  const float* x = ptr[term.slot];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v)
    a[v] = kFirst ? _mm256_mul_ps(w, _mm256_loadu_ps(x + 8 * v)) : _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8 * v), a[v]);
}

// A row of one chain (RowChains::kOne) of N terms (N = 0: any count) on the strip's V vectors:
// its terms in order from +0, + bias, the ReLU, stored to its slot. The chain's first step is a
// product, not a fused multiply-add on +0: the two differ only where the product is −0 (the
// chain's value then a zero of the other sign, or the same), and the bias and the ReLU map every
// such pair to the same bytes (bias_relu). Every read comes before the
// stores (a row's slot may be one of its inputs').
template <int V, int N>
__attribute__((target("avx2,fma"), always_inline)) inline void chain_row(const Row& row, const Term* terms,
                                                                         const Row* kids, float* const* ptr) {
  __m256 a[V];
  if (N == 0 && row.count == 0)
    for (int v = 0; v < V; ++v) a[v] = _mm256_setzero_ps();
  else
    add_term<V, true>(terms[row.first], terms, kids, ptr, a);
  if constexpr (N > 0) {
#pragma GCC unroll 4
    for (int t = 1; t < N; ++t) add_term<V, false>(terms[row.first + t], terms, kids, ptr, a);
  } else {
    for (int32_t t = row.first + 1; t < row.first + row.count; ++t) add_term<V, false>(terms[t], terms, kids, ptr, a);
  }
  const __m256 b = _mm256_broadcast_ss(&row.bias);
  float* y = ptr[row.out];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) _mm256_storeu_ps(y + 8 * v, bias_relu(a[v], b));
}

template <int V>
__attribute__((target("avx2,fma"), always_inline)) inline void chain_row(const Row& row, const Term* terms,
                                                                         const Row* kids, float* const* ptr) {
  switch (row.count) {
    case 1: return chain_row<V, 1>(row, terms, kids, ptr);
    case 2: return chain_row<V, 2>(row, terms, kids, ptr);
    case 3: return chain_row<V, 3>(row, terms, kids, ptr);
    case 4: return chain_row<V, 4>(row, terms, kids, ptr);
    default: return chain_row<V, 0>(row, terms, kids, ptr);
  }
}

// A row of the even and odd chains (kEvenOddFused, kEvenOddRounded: pointwise_gemm's sparse_rows),
// its terms in input slots, the even inputs' first, then the odd ones', then the last product of
// an odd depth if any: e over the even ones and o over the odd ones from +0, e + o, then the last;
// + bias, the ReLU. Four vectors at a time, each part stored before the next is read (an
// element's value reads its own column alone).
template <int V, bool kFused>
__attribute__((target("avx2,fma"))) void even_odd_row(const Row& row, const Term* terms, float* const* ptr) {
  constexpr int kPart = V < 4 ? V : 4;
  const __m256 b = _mm256_broadcast_ss(&row.bias);
  const Term* even = terms + row.first;
  const Term* odd = even + row.evens;
  const Term* last = row.evens + row.odds < row.count ? odd + row.odds : nullptr;
  float* y = ptr[row.out];
  for (int h = 0; h < V; h += kPart) {
    __m256 e[kPart], o[kPart];
    for (int v = 0; v < kPart; ++v) e[v] = o[v] = _mm256_setzero_ps();
    for (int32_t t = 0; t < row.evens; ++t) {
      const __m256 w = _mm256_broadcast_ss(&even[t].weight);
      const float* x = ptr[even[t].slot] + 8 * h;
      for (int v = 0; v < kPart; ++v) e[v] = chain_step<kFused>(w, _mm256_loadu_ps(x + 8 * v), e[v]);
    }
    for (int32_t t = 0; t < row.odds; ++t) {
      const __m256 w = _mm256_broadcast_ss(&odd[t].weight);
      const float* x = ptr[odd[t].slot] + 8 * h;
      for (int v = 0; v < kPart; ++v) o[v] = chain_step<kFused>(w, _mm256_loadu_ps(x + 8 * v), o[v]);
    }
    for (int v = 0; v < kPart; ++v) e[v] = _mm256_add_ps(e[v], o[v]);
    if (last != nullptr) {
      const __m256 w = _mm256_broadcast_ss(&last->weight);
      const float* x = ptr[last->slot] + 8 * h;
      for (int v = 0; v < kPart; ++v) e[v] = chain_step<kFused>(w, _mm256_loadu_ps(x + 8 * v), e[v]);
    }
    for (int v = 0; v < kPart; ++v) _mm256_storeu_ps(y + 8 * (h + v), bias_relu(e[v], b));
  }
}

// Every row of the program on one strip of 8V columns (ptr: the slots' places on it).
template <int V>
__attribute__((target("avx2,fma"))) void run_strip(const std::vector<Row>& rows, const Term* terms, const Row* kids,
                                                   float* const* ptr) {
  for (const Row& row : rows) {
    if (row.shape == RowChains::kOne) chain_row<V>(row, terms, kids, ptr);
    else if (row.shape == RowChains::kEvenOddFused) even_odd_row<V, true>(row, terms, ptr);
    else even_odd_row<V, false>(row, terms, ptr);
  }
}

// The chains pointwise_gemm gives row i of the step (a grouped step's: its group's one row).
RowChains row_chains(const SparseStep& st, int64_t i) {
  return st.groups == 1 ? finite_row_chains(st.out, st.in, i) : finite_row_chains(1, st.in / st.groups, 0);
}

bool program_isa() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
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
  // pointwise_gemm runs its kernel only with AVX2 (finite_row_chains: kOther without), and so
  // does the program.
  if (steps.empty() || !program_isa()) return nullptr;
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
  return pr;
}

bool SparseProgram::current() const {
  return sparse_weights() && pointwise_kernel() == switches_[0] && pointwise_edges() == switches_[1] &&
         pointwise_remainders() == switches_[2];
}

void SparseProgram::run(int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ahead) const {
  thread_local std::vector<float> scratch;
  constexpr int64_t kStrip = 64;
  const size_t need = static_cast<size_t>(slots_ * kStrip);
  if (scratch.size() < need) scratch.resize(need);
  float* ptr[64 + 64 + kMaxSlots];
  for (int64_t s = 0; s < slots_; ++s) ptr[inputs_ + outputs_ + s] = scratch.data() + s * kStrip;
  auto place = [&](int64_t p) {
    for (int64_t c = 0; c < inputs_; ++c) ptr[c] = const_cast<float*>(x + c * ldx + p);
    for (int64_t r = 0; r < outputs_; ++r) ptr[inputs_ + r] = y + r * ldy + p;
  };
  int64_t p = 0;
  for (; p + kStrip <= cols; p += kStrip) {
    if (ahead > 0)
      for (int64_t c = 0; c < inputs_; ++c)
        for (int64_t l = 0; l < kStrip; l += 16)  // a cache line of 16 floats
          _mm_prefetch(reinterpret_cast<const char*>(x + c * ldx + p + ahead + l), _MM_HINT_T0);
    place(p), run_strip<8>(rows_, terms_.data(), kids_.data(), ptr);
  }
  for (; p < cols; p += 16) place(p), run_strip<2>(rows_, terms_.data(), kids_.data(), ptr);
}

}  // namespace lab
