// Argument parsing shared by several commands (declared in commands.h).
#include <charconv>
#include <limits>
#include <string>

#include "cli/commands.h"
#include "lab/core/error.h"

namespace cli {

uint64_t parse_seed(const std::string& text) {
  uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    lab::fail_parameter("--seed {}: expected an integer in 0..{}", text, std::numeric_limits<uint64_t>::max());
  return seed;
}

}  // namespace cli
