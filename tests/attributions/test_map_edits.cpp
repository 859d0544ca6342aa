// The soundness paper's Remove / Introduce edits (method `edited`) and the isolated-pixel control
// (method `isolated`) of attributions/map_edits.h.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "attributions/map_edits.h"
#include "attributions/method.h"
#include "gradient_fixtures.h"
#include "lab/core/error.h"

using namespace attributions;

namespace {

Result run(const std::string& name, const std::vector<std::string>& p, const Context& context, const Batch& batch) {
  lab::Options options = lab::Options::parse(p, "-p");
  return make_method(name, options)->attribute(context, batch);
}

/// A 1×3×8×8 batch whose ground truth is +1 on the first 10 pixels of row 2 onward, −1 on 4 pixels.
Batch gt_batch() {
  Batch batch;
  batch.x = fixtures::uniform_inputs({1, 3, 8, 8}, 3);
  batch.target = {0};
  batch.seeds = {11};
  batch.gt = lab::Tensor({1, 8, 8}, 0.0f);
  for (int64_t p = 16; p < 26; ++p) batch.gt[p] = 1.0f;
  for (int64_t p = 40; p < 44; ++p) batch.gt[p] = -1.0f;
  return batch;
}

}  // namespace

TEST_CASE("edited partial remove of the ground-truth map zeroes exactly the pixels of ascending rank [0.6P, 0.8P)") {
  const lab::Network net = fixtures::linear_model(3, 8, 2);
  const Context context{.net = &net};
  // A map whose ranks are known: every pixel distinct, so the window is exact.
  Batch batch = gt_batch();
  for (int64_t p = 0; p < 64; ++p) batch.gt[p] = static_cast<float>((p * 37) % 64) / 63.0f;  // a permutation of 0..63 over 63
  const Result r = run("edited", {"base=ground-truth", "edit=remove", "scheme=partial"}, context, batch);
  // P = 64: ranks [38, 51) (⌊0.6·64⌋ = 38, ⌊0.8·64⌋ = 51) are the values 38/63 … 50/63.
  int64_t zeroed = 0;
  for (int64_t p = 0; p < 64; ++p) {
    const int64_t rank = (p * 37) % 64;
    const float a = static_cast<float>(rank) / 63.0f;
    if (rank >= 38 && rank < 51) {
      CHECK(r.attr[p] == 0.0f);
      ++zeroed;
    } else {
      CHECK(r.attr[p] == doctest::Approx(a).epsilon(1e-6));
    }
  }
  CHECK(zeroed == 13);
  for (int64_t p = 64; p < 192; ++p) CHECK(r.attr[p] == 0.0f);  // channels 1, 2
}

TEST_CASE("edited on the ground-truth map: remove lowers only predictive pixels, introduce raises only the others") {
  const lab::Network net = fixtures::linear_model(3, 8, 2);
  const Context context{.net = &net};
  const Batch batch = gt_batch();
  // Constant: a ∓ 0.6 everywhere, a = max(gt, 0).
  const Result removed = run("edited", {"base=ground-truth", "edit=remove", "scheme=constant"}, context, batch);
  const Result introduced = run("edited", {"base=ground-truth", "edit=introduce", "scheme=constant"}, context, batch);
  for (int64_t p = 0; p < 64; ++p) {
    const float a = std::max(batch.gt[p], 0.0f);
    CHECK(removed.attr[p] == doctest::Approx(a - 0.6f));
    CHECK(introduced.attr[p] == doctest::Approx(a + 0.6f));
  }
  // Random: remove stays within (a − 0.6, a], introduce within [a, a + 0.6); seeded per sample.
  const Result rr = run("edited", {"base=ground-truth", "edit=remove", "scheme=random"}, context, batch);
  const Result ri = run("edited", {"base=ground-truth", "edit=introduce", "scheme=random"}, context, batch);
  std::set<float> shifts;
  for (int64_t p = 0; p < 64; ++p) {
    const float a = std::max(batch.gt[p], 0.0f);
    CHECK(rr.attr[p] <= a);
    CHECK(rr.attr[p] >= a - 0.6f);
    CHECK(ri.attr[p] >= a);
    CHECK(ri.attr[p] <= a + 0.6f);
    shifts.insert(ri.attr[p] - a);
  }
  CHECK(shifts.size() > 50);  // per-pixel draws, not one shift
  CHECK(run("edited", {"base=ground-truth", "edit=introduce", "scheme=random"}, context, batch).attr.values() == ri.attr.values());
  // Partial introduce: the 25 lowest-ranked pixels (⌊0.4·64⌋; ties in pixel order: the −1 pixels
  // map to 0 like the background) take q of a. a holds 54 zeros (ranks 0–53) and 10 ones, so the
  // default q_0.8 (position 50.4) is 0 and changes nothing, while q_0.85 lies at position
  // 0.85·63 = 53.55, between a 0 and a 1: q = 0.55.
  CHECK(run("edited", {"base=ground-truth", "edit=introduce", "scheme=partial"}, context, batch).attr.values() ==
        run("edited", {"base=ground-truth", "edit=remove", "scheme=partial", "remove-from=0", "remove-to=0"}, context, batch)
            .attr.values());
  const Result pi = run("edited", {"base=ground-truth", "edit=introduce", "scheme=partial", "introduce-quantile=0.85"},
                        context, batch);
  int64_t raised = 0;
  for (int64_t p = 0; p < 64; ++p) {
    const float a = std::max(batch.gt[p], 0.0f);
    if (pi.attr[p] != a) {
      CHECK(a == 0.0f);
      CHECK(pi.attr[p] == doctest::Approx(0.55f));
      ++raised;
    }
  }
  CHECK(raised == 25);
  // Refusals: wrapping itself, an empty window the wrong way round, an unknown scheme.
  lab::Options self = lab::Options::parse({"base=edited"}, "-p");
  CHECK_THROWS_AS(make_method("edited", self), lab::Error);
  lab::Options window = lab::Options::parse({"base=random", "remove-from=0.9", "remove-to=0.8"}, "-p");
  CHECK_THROWS_WITH_AS(make_method("edited", window), doctest::Contains("remove-from"), lab::Error);
  lab::Options scheme = lab::Options::parse({"base=random", "scheme=shuffle"}, "-p");
  CHECK_THROWS_WITH_AS(make_method("edited", scheme), doctest::Contains("scheme"), lab::Error);
  // The record nests the base's parameters.
  lab::Options options = lab::Options::parse({"base=random", "edit=introduce"}, "-p");
  const auto m = make_method("edited", options);
  CHECK(m->params()["edit"] == "introduce");
  CHECK(m->params()["base-params"].is_object());
}

TEST_CASE("isolated: ordered-dither ranks; the first quarter of the flip order is the even-row, even-column pixels") {
  CHECK(IsolatedMap::bayer_index(0, 0, 1) == 0);
  CHECK(IsolatedMap::bayer_index(0, 1, 1) == 2);
  CHECK(IsolatedMap::bayer_index(1, 0, 1) == 3);
  CHECK(IsolatedMap::bayer_index(1, 1, 1) == 1);
  const lab::Network net = fixtures::linear_model(3, 8, 2);
  const Context context{.net = &net};
  const Batch batch = gt_batch();
  const Result r = run("isolated", {}, context, batch);
  std::vector<std::pair<float, int64_t>> ranked;
  std::set<float> values;
  for (int64_t p = 0; p < 64; ++p) {
    ranked.push_back({r.attr[p], p});
    values.insert(r.attr[p]);
  }
  CHECK(values.size() == 64);  // a strict order
  std::sort(ranked.rbegin(), ranked.rend());
  CHECK(ranked.front().first == 1.0f);
  for (size_t k = 0; k < 16; ++k) {
    const int64_t p = ranked[k].second;
    CHECK((p / 8) % 2 == 0);
    CHECK((p % 8) % 2 == 0);
  }
  // The next quarter: odd row and odd column (D(1, 1) = 1), diagonal to the first.
  for (size_t k = 16; k < 32; ++k) {
    const int64_t p = ranked[k].second;
    CHECK((p / 8) % 2 == 1);
    CHECK((p % 8) % 2 == 1);
  }
  for (int64_t p = 64; p < 192; ++p) CHECK(r.attr[p] == 0.0f);
  CHECK(r.evaluations == 0);
}
