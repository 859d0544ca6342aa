#include "lab/core/error.h"

#include <cstdio>
#include <cstdlib>

namespace lab {

void check_failed(const char* file, int line, const char* condition, const std::string& note) {
  std::fprintf(stderr, "attrlab: internal check failed at %s:%d: %s%s%s\n", file, line, condition,
               note.empty() ? "" : ": ", note.c_str());
  std::abort();
}

}  // namespace lab
