#include "lab/nn/program_code.h"

#include <atomic>
#include <cstring>
#include <map>
#include <unordered_map>

#include <xbyak/xbyak.h>

namespace lab {

namespace {

std::atomic<bool> program_code_set{true};

using Row = SparseProgram::Row;
using Term = SparseProgram::Term;
using Xbyak::Zmm;

// A program's code and its constants (every weight and bias, each once), called as f(iterations,
// rows, scratch, ahead bytes, constants): System V's rdi, rsi, rdx, rcx, r8. The constants move to
// r11, and r8 becomes the iteration's byte offset from column 0.
class CodeBase : public Xbyak::CodeGenerator {
 public:
  CodeBase() : Xbyak::CodeGenerator(4096, Xbyak::AutoGrow) {}
  std::vector<float> constants_;

 protected:
  // The offset of the constant v in constants_.
  int32_t constant(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const auto [it, added] = index_.try_emplace(bits, static_cast<int32_t>(constants_.size()));
    if (added) constants_.push_back(v);
    return 4 * it->second;
  }

  // The loop's head: constants to r11, +0 to zmm31, r8 = 0, no iteration: to `done`; each
  // iteration asks for each input row's columns `ahead` bytes further on, `lines` cache lines.
  void head(int64_t inputs, int lines, Xbyak::Label& loop, Xbyak::Label& done) {
    mov(r11, r8);
    vpxord(zmm31, zmm31, zmm31);
    xor_(r8, r8);
    test(rdi, rdi);
    jz(done, T_NEAR);
    L(loop);
    Xbyak::Label no_prefetch;
    test(rcx, rcx);
    jz(no_prefetch, T_NEAR);
    for (int64_t c = 0; c < inputs; ++c) {
      mov(rax, ptr[rsi + 8 * c]);
      add(rax, rcx);
      for (int l = 0; l < lines; ++l) prefetcht0(ptr[rax + r8 + 64 * l]);
    }
    L(no_prefetch);
  }

  // The loop's tail: the next iteration `bytes` further on.
  void tail(int bytes, Xbyak::Label& loop, Xbyak::Label& done) {
    add(r8, bytes);
    dec(rdi);
    jnz(loop, T_NEAR);
    L(done);
    vzeroupper();
    ret();
    ready(Xbyak::CodeArray::PROTECT_RE);
  }

 private:
  std::unordered_map<uint32_t, int32_t> index_;
};

// The code by rows (ProgramCode::emit with 4 or 8 vectors): each iteration a strip of V vectors,
// the rows in the program's order; rax, r9 and r10 hold row pointers. zmm0–7: a row's
// accumulators (even/odd rows: e in 0–3, o in 4–7), zmm8–15: a kid's value per vector (or a
// rounded product), zmm16: the term's weight, zmm17–19: the kid's, zmm20 its bias; a group of
// rows: row k's accumulators from zmm(k·V), then the rows' weights and the input vector, all
// below zmm28; zmm28 a row's bias, zmm31: +0. The rows, kids and terms are read while emitting
// only.
class Emitter : public CodeBase {
 public:
  Emitter(const std::vector<Row>& rows, const std::vector<Row>& kids, const std::vector<Term>& terms, int64_t inputs,
          int64_t outputs, int64_t slot_floats, int vectors)
      : kids_(kids),
        terms_(terms),
        io_(static_cast<int32_t>(inputs + outputs)),
        slot_bytes_(static_cast<int32_t>(4 * slot_floats)),
        v_(vectors) {
    Xbyak::Label loop, done;
    head(inputs, v_, loop, done);
    for (size_t i = 0; i < rows.size();) {
      const size_t group = group_size(rows, i);
      if (group > 1) {
        row_group(rows, i, group);
        i += group;
        continue;
      }
      const Row& row = rows[i++];
      if (row.shape == RowChains::kOne) one_row(row);
      else even_odd_row(row, row.shape == RowChains::kEvenOddFused);
    }
    tail(64 * v_, loop, done);
  }

 private:
  // Where slot `slot`'s vector v is: an input or output row through its pointer (loaded into
  // `reg` by load_row), an internal slot in the scratch.
  bool in_row(int32_t slot) const { return slot < io_; }
  void load_row(int32_t slot, const Xbyak::Reg64& reg) {
    if (in_row(slot)) mov(reg, ptr[rsi + 8 * slot]);
  }
  Xbyak::Address at(int32_t slot, const Xbyak::Reg64& reg, int v) {
    if (in_row(slot)) return ptr[reg + r8 + 64 * v];
    return ptr[rdx + (slot - io_) * slot_bytes_ + 64 * v];
  }

  // chain_row: a[v] from the first term's product, the other terms' fused multiply-adds, then
  // + bias (not where it is zero), the ReLU, stored. A kid's value, per vector, is its own chain
  // of one to three slot terms (the first a product, a weight 1's: the input itself), + its bias,
  // the ReLU. A first weight 1 multiplies nothing (the inputs are finite, the kids ReLUs).
  void one_row(const Row& row) {
    if (row.count == 0)
      for (int v = 0; v < v_; ++v) vpxord(Zmm(v), Zmm(v), Zmm(v));
    for (int32_t t = 0; t < row.count; ++t) {
      const Term& term = terms_[static_cast<size_t>(row.first + t)];
      const bool first = t == 0, unit = term.weight == 1.0f;
      if (!(first && unit)) vbroadcastss(zmm16, ptr[r11 + constant(term.weight)]);
      if (term.kid >= 0) {
        const Row& kid = kids_[static_cast<size_t>(term.kid)];
        const Term* kt = &terms_[static_cast<size_t>(kid.first)];
        const Xbyak::Reg64 regs[3] = {rax, r9, r10};
        for (int32_t u = 0; u < kid.count; ++u) {
          load_row(kt[u].slot, regs[u]);
          if (u > 0 || kt[0].weight != 1.0f) vbroadcastss(Zmm(17 + u), ptr[r11 + constant(kt[u].weight)]);
        }
        const bool bias = kid.bias != 0.0f;
        if (bias) vbroadcastss(zmm20, ptr[r11 + constant(kid.bias)]);
        for (int v = 0; v < v_; ++v) {
          // The kid's value straight into the accumulator where it is the row's first term, of weight 1.
          const Zmm c = first && unit ? Zmm(v) : Zmm(8 + v);
          if (kt[0].weight == 1.0f && kid.count == 1 && bias) {
            vaddps(c, zmm20, at(kt[0].slot, regs[0], v));  // bias + x: x + bias's bytes
          } else {
            if (kt[0].weight == 1.0f) vmovups(c, at(kt[0].slot, regs[0], v));
            else vmulps(c, zmm17, at(kt[0].slot, regs[0], v));
            for (int32_t u = 1; u < kid.count; ++u) vfmadd231ps(c, Zmm(17 + u), at(kt[u].slot, regs[u], v));
            if (bias) vaddps(c, c, zmm20);
          }
          vmaxps(c, c, zmm31);
          if (!first) vfmadd231ps(Zmm(v), zmm16, c);
          else if (!unit) vmulps(Zmm(v), zmm16, c);
        }
      } else {
        load_row(term.slot, rax);
        for (int v = 0; v < v_; ++v) {
          if (!first) vfmadd231ps(Zmm(v), zmm16, at(term.slot, rax, v));
          else if (unit) vmovups(Zmm(v), at(term.slot, rax, v));
          else vmulps(Zmm(v), zmm16, at(term.slot, rax, v));
        }
      }
    }
    store(row, 0, v_);
  }

  // Whether row r can be computed in a group with rows [first, r): one chain of slot terms only
  // (no kid), reading no output of the group's rows.
  bool groupable(const std::vector<Row>& rows, size_t first, size_t r) const {
    const Row& row = rows[r];
    if (row.shape != RowChains::kOne || row.count == 0) return false;
    for (int32_t t = 0; t < row.count; ++t) {
      const Term& term = terms_[static_cast<size_t>(row.first + t)];
      if (term.kid >= 0) return false;
      for (size_t q = first; q < r; ++q)
        if (term.slot == rows[q].out) return false;
    }
    return true;
  }

  // How many rows from `first` on row_group computes together (1: none).
  size_t group_size(const std::vector<Row>& rows, size_t first) const {
    const size_t most = static_cast<size_t>(28 / (v_ + 1));  // n·V accumulators, n weights, the input: below zmm28
    size_t n = 0;
    while (first + n < rows.size() && n < most && groupable(rows, first, first + n)) ++n;
    return n;
  }

  // Rows [first, first + n) (group_size), each its own chain_row, computed together: their terms
  // in an order that keeps each row's (at each step the input slot next in the most rows), each
  // input vector loaded once for every row whose next term reads it. Row k's accumulators are
  // zmm(k·V + v), then the rows' weights, then the input vector.
  void row_group(const std::vector<Row>& rows, size_t first, size_t n) {
    std::vector<int32_t> next(n, 0);
    const int weights = static_cast<int>(n) * v_;
    const Zmm x(weights + static_cast<int>(n));
    for (;;) {
      // The slot next in the most rows.
      int32_t slot = -1, best = 0;
      for (size_t k = 0; k < n; ++k) {
        const Row& row = rows[first + k];
        if (next[k] == row.count) continue;
        const int32_t s = terms_[static_cast<size_t>(row.first + next[k])].slot;
        int32_t count = 0;
        for (size_t q = 0; q < n; ++q) {
          const Row& other = rows[first + q];
          count += next[q] < other.count && terms_[static_cast<size_t>(other.first + next[q])].slot == s ? 1 : 0;
        }
        if (count > best) best = count, slot = s;
      }
      if (slot < 0) break;
      struct Use {
        size_t k;
        bool first, unit;
      };
      std::vector<Use> uses;
      for (size_t k = 0; k < n; ++k) {
        const Row& row = rows[first + k];
        if (next[k] == row.count || terms_[static_cast<size_t>(row.first + next[k])].slot != slot) continue;
        const Term& term = terms_[static_cast<size_t>(row.first + next[k])];
        const Use use{k, next[k] == 0, term.weight == 1.0f};
        if (!(use.first && use.unit))
          vbroadcastss(Zmm(weights + static_cast<int>(uses.size())), ptr[r11 + constant(term.weight)]);
        uses.push_back(use);
        ++next[k];
      }
      load_row(slot, rax);
      for (int v = 0; v < v_; ++v) {
        vmovups(x, at(slot, rax, v));
        for (size_t u = 0; u < uses.size(); ++u) {
          const Zmm a(static_cast<int>(uses[u].k) * v_ + v), w(weights + static_cast<int>(u));
          if (!uses[u].first) vfmadd231ps(a, w, x);
          else if (uses[u].unit) vmovaps(a, x);
          else vmulps(a, w, x);
        }
      }
    }
    for (size_t k = 0; k < n; ++k) store(rows[first + k], 0, v_, static_cast<int>(k) * v_);
  }

  // even_odd_row: per part of four vectors, e over the even terms and o over the odd ones from
  // +0 (fused: fused multiply-adds, else rounded products added), e + o, the last product, then
  // + bias, the ReLU, stored before the next part is read.
  void even_odd_row(const Row& row, bool fused) {
    const int part = v_ < 4 ? v_ : 4;
    const Term* even = &terms_[static_cast<size_t>(row.first)];
    const Term* odd = even + row.evens;
    const Term* last = row.evens + row.odds < row.count ? odd + row.odds : nullptr;
    auto step = [&](const Term& term, int acc, int h) {
      vbroadcastss(zmm16, ptr[r11 + constant(term.weight)]);
      load_row(term.slot, rax);
      for (int v = 0; v < part; ++v) {
        if (fused) {
          vfmadd231ps(Zmm(acc + v), zmm16, at(term.slot, rax, h + v));
        } else {
          vmulps(Zmm(8 + v), zmm16, at(term.slot, rax, h + v));
          vaddps(Zmm(acc + v), Zmm(acc + v), Zmm(8 + v));
        }
      }
    };
    for (int h = 0; h < v_; h += part) {
      for (int v = 0; v < part; ++v) vpxord(Zmm(v), Zmm(v), Zmm(v)), vpxord(Zmm(4 + v), Zmm(4 + v), Zmm(4 + v));
      for (int32_t t = 0; t < row.evens; ++t) step(even[t], 0, h);
      for (int32_t t = 0; t < row.odds; ++t) step(odd[t], 4, h);
      for (int v = 0; v < part; ++v) vaddps(Zmm(v), Zmm(v), Zmm(4 + v));
      if (last != nullptr) step(*last, 0, h);
      store(row, h, part);
    }
  }

  // Vectors [h, h + count) of the row's accumulators zmm0.. (+ bias where not zero, the ReLU)
  // into its slot.
  void store(const Row& row, int h, int count, int base = 0) {
    load_row(row.out, rax);
    const bool bias = row.bias != 0.0f;
    if (bias) vbroadcastss(zmm28, ptr[r11 + constant(row.bias)]);
    for (int v = 0; v < count; ++v) {
      const Zmm a(base + v);
      if (bias) vaddps(a, a, zmm28);
      vmaxps(a, a, zmm31);
      vmovups(at(row.out, rax, h + v), a);
    }
  }

  const std::vector<Row>& kids_;
  const std::vector<Term>& terms_;
  const int32_t io_;
  const int32_t slot_bytes_;
  const int v_;
};

// The code by vectors (ProgramCode::emit with 1 vector): each iteration one vector of 16 columns,
// the whole program on it in registers. The program's rows and kids become the nodes of a graph,
// equal ones (the same shape, bias and terms on the same nodes) once; each node's value is
// computed once per vector into a register, kept until its last reader, and stored only where it
// is an output row. So nothing goes through the slots. Values in zmm0–29 (30 of them at most live
// at once, else no code: ok() false), zmm30 a rounded product, zmm31 +0.
class VectorEmitter : public CodeBase {
 public:
  VectorEmitter(const std::vector<Row>& rows, const std::vector<Row>& kids, const std::vector<Term>& terms,
                int64_t inputs, int64_t outputs) {
    graph(rows, kids, terms, inputs, outputs);
    Xbyak::Label loop, done;
    head(inputs, 1, loop, done);
    for (size_t i = 0; i < nodes_.size() && ok_; ++i) compute(i);
    tail(64, loop, done);
    nodes_.clear();
    interned_.clear();
  }
  bool ok() const { return ok_; }

 private:
  struct Node {
    RowChains shape = RowChains::kOne;
    int32_t input = -1;  // ≥ 0: the program's input row
    std::vector<std::pair<float, int32_t>> terms;  // weight, node
    int32_t evens = 0, odds = 0;  // even/odd rows: as SparseProgram::Row's
    float bias = 0.0f;
    std::vector<int32_t> outputs;  // the output rows it is stored to
    int32_t readers = 0;           // terms reading it
  };

  // The node of these contents: an equal one made before, else a new one.
  int32_t intern(Node node) {
    std::vector<uint32_t> key;
    auto put = [&key](float f) {
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      key.push_back(bits);
    };
    key.push_back(static_cast<uint32_t>(node.shape));
    key.push_back(static_cast<uint32_t>(node.input));
    key.push_back(static_cast<uint32_t>(node.evens));
    key.push_back(static_cast<uint32_t>(node.odds));
    put(node.bias);
    for (const auto& [w, n] : node.terms) put(w), key.push_back(static_cast<uint32_t>(n));
    const auto [it, added] = interned_.try_emplace(std::move(key), static_cast<int32_t>(nodes_.size()));
    if (added) {
      for (const auto& term : node.terms) ++nodes_[static_cast<size_t>(term.second)].readers;
      nodes_.push_back(std::move(node));
    }
    return it->second;
  }

  // The graph of the rows in their order, each slot's node followed as the rows write it.
  void graph(const std::vector<Row>& rows, const std::vector<Row>& kids, const std::vector<Term>& terms,
             int64_t inputs, int64_t outputs) {
    std::unordered_map<int32_t, int32_t> slot;  // slot → its node now
    for (int32_t c = 0; c < inputs; ++c) slot[c] = intern(Node{.input = c});
    auto node_of = [&](const Row& row, auto&& term_node) {
      Node n{.shape = row.shape, .evens = row.evens, .odds = row.odds, .bias = row.bias};
      for (int32_t t = 0; t < row.count; ++t) {
        const Term& term = terms[static_cast<size_t>(row.first + t)];
        n.terms.emplace_back(term.weight, term_node(term));
      }
      return intern(std::move(n));
    };
    auto slot_node = [&](const Term& term) { return slot.at(term.slot); };
    for (const Row& row : rows) {
      const int32_t n = node_of(row, [&](const Term& term) {
        return term.kid >= 0 ? node_of(kids[static_cast<size_t>(term.kid)], slot_node) : slot_node(term);
      });
      slot[row.out] = n;
      if (row.out >= inputs && row.out < inputs + outputs) nodes_[static_cast<size_t>(n)].outputs.push_back(row.out);
    }
    left_.resize(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) left_[i] = nodes_[i].readers;
    reg_.assign(nodes_.size(), -1);
    for (int r = 29; r >= 0; --r) free_.push_back(r);
  }

  int take() {
    if (free_.empty()) {
      ok_ = false;
      return 0;
    }
    const int r = free_.back();
    free_.pop_back();
    return r;
  }

  // Node i's value on the iteration's vector: as the interpreter computes its row (chain_row,
  // even_odd_row; a kid's as kid_into), into a register of its own; its inputs' registers given
  // back after their last reader; stored to its output rows.
  void compute(size_t i) {
    const Node& n = nodes_[i];
    if (n.readers == 0 && n.outputs.empty()) return;
    const Zmm d(take());
    if (!ok_) return;
    auto value = [&](int32_t node) { return Zmm(reg_[static_cast<size_t>(node)]); };
    auto weight = [&](float w) { return ptr_b[r11 + constant(w)]; };
    if (n.input >= 0) {
      mov(rax, ptr[rsi + 8 * n.input]);
      vmovups(d, ptr[rax + r8]);
    } else if (n.shape == RowChains::kOne) {
      // The first term a product (weight 1: the value itself), the others fused multiply-adds,
      // then + bias; a lone term of weight 1 and its bias in one add (bias + x).
      const bool bias = n.bias != 0.0f;
      const bool lone = bias && n.terms.size() == 1 && n.terms[0].first == 1.0f;
      if (n.terms.empty()) vpxord(d, d, d);
      for (size_t t = 0; t < n.terms.size(); ++t) {
        const auto& [w, node] = n.terms[t];
        if (t > 0) vfmadd231ps(d, value(node), weight(w));
        else if (w != 1.0f) vmulps(d, value(node), weight(w));
        else if (lone) vaddps(d, value(node), weight(n.bias));
        else vmovaps(d, value(node));
      }
      if (bias && !lone) vaddps(d, d, weight(n.bias));
      vmaxps(d, d, zmm31);
    } else {
      // e over the even terms, o over the odd ones, from +0 (fused multiply-adds, or rounded
      // products added), e + o, the last product, + bias, the ReLU.
      const bool fused = n.shape == RowChains::kEvenOddFused;
      const Zmm o(take());
      if (!ok_) return;
      vpxord(d, d, d);
      vpxord(o, o, o);
      auto step = [&](const Zmm& acc, const std::pair<float, int32_t>& term) {
        if (fused) {
          vfmadd231ps(acc, value(term.second), weight(term.first));
        } else {
          vmulps(zmm30, value(term.second), weight(term.first));
          vaddps(acc, acc, zmm30);
        }
      };
      const auto count = static_cast<int32_t>(n.terms.size());
      for (int32_t t = 0; t < n.evens; ++t) step(d, n.terms[static_cast<size_t>(t)]);
      for (int32_t t = n.evens; t < n.evens + n.odds; ++t) step(o, n.terms[static_cast<size_t>(t)]);
      vaddps(d, d, o);
      free_.push_back(o.getIdx());
      if (n.evens + n.odds < count) step(d, n.terms.back());
      if (n.bias != 0.0f) vaddps(d, d, weight(n.bias));
      vmaxps(d, d, zmm31);
    }
    reg_[i] = d.getIdx();
    for (const auto& term : n.terms)
      if (--left_[static_cast<size_t>(term.second)] == 0) free_.push_back(reg_[static_cast<size_t>(term.second)]);
    for (const int32_t out : n.outputs) {
      mov(rax, ptr[rsi + 8 * out]);
      vmovups(ptr[rax + r8], d);
    }
    if (n.readers == 0) free_.push_back(d.getIdx());
  }

  std::vector<Node> nodes_;
  std::map<std::vector<uint32_t>, int32_t> interned_;
  std::vector<int32_t> left_;  // readers not yet computed
  std::vector<int> reg_, free_;
  bool ok_ = true;
};

bool has_avx512() { return __builtin_cpu_supports("avx512f"); }

}  // namespace

bool program_code() { return program_code_set.load(); }
void set_program_code(bool on) { program_code_set.store(on); }

using Entry = void (*)(int64_t, float* const*, float*, int64_t, const float*);

struct ProgramCode::Code {
  std::unique_ptr<CodeBase> emitter;
  Entry run = nullptr;
};

ProgramCode::~ProgramCode() = default;

std::unique_ptr<ProgramCode> ProgramCode::emit(const std::vector<Row>& rows, const std::vector<Row>& kids,
                                               const std::vector<Term>& terms, int64_t inputs, int64_t outputs,
                                               int64_t slot_floats, int vectors) {
  if (!has_avx512() || (vectors != 1 && vectors != 4 && vectors != 8)) return nullptr;
  std::unique_ptr<ProgramCode> pc(new ProgramCode);
  pc->code_ = std::make_unique<Code>();
  if (vectors == 1) {
    auto emitter = std::make_unique<VectorEmitter>(rows, kids, terms, inputs, outputs);
    if (!emitter->ok()) return nullptr;
    pc->code_->emitter = std::move(emitter);
  } else {
    pc->code_->emitter = std::make_unique<Emitter>(rows, kids, terms, inputs, outputs, slot_floats, vectors);
  }
  pc->columns_ = 16 * vectors;
  pc->code_->run = pc->code_->emitter->getCode<Entry>();
  return pc;
}

void ProgramCode::run(int64_t strips, float* const* rows, float* scratch, int64_t ahead) const {
  code_->run(strips, rows, scratch, 4 * ahead, code_->emitter->constants_.data());
}

int64_t ProgramCode::size() const { return static_cast<int64_t>(code_->emitter->getSize()); }

}  // namespace lab
