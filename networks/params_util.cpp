#include "networks/params_util.h"

#include <charconv>
#include <string>

#include "lab/core/error.h"

namespace networks {

uint64_t read_seed(lab::Options& options, uint64_t fallback) {
  const std::string* v = options.raw("seed");
  if (!v) return fallback;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || p != v->data() + v->size())
    lab::fail_parameter("{} seed={}: expected an integer in 0..18446744073709551615", options.flag(), *v);
  return out;
}

}  // namespace networks
