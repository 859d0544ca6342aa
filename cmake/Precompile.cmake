# Precompiled headers: the external headers that nearly every unit of a target parses (the
# standard library, fmt and nlohmann/json in all; OpenCV's core where the target's headers expose
# cv::Mat; doctest in the test suites) are parsed once per target into a GCC .gch that each of its
# units loads instead. A unit that includes nothing but them took 4.1 CPU seconds at -O3 and takes
# 1.2 with the .gch; over the units of the main job's libraries the median saving is 1.5 s a unit
# (README "The cold build"). Only PRIVATE: nothing reaches the installed package or a
# plug-in's build. The flags are unchanged; so is the code of everything but some string-building
# functions (parameter schemas, messages), which GCC inlines a little differently.
#
# ccache (4.7) does not cache a unit that uses a precompiled header unless its sloppiness includes
# pch_defines,time_macros, so under ccache as the compiler launcher (whose cache already makes
# rebuilds cheap) the default is off; -DATTRLAB_PRECOMPILE_HEADERS=ON|OFF decides either way.
# ATTRLAB_COLD_BUILD_DEFAULT (off under ccache) is also the default of the unity builds
# (cmake/Unity.cmake).
if(CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache")
  set(ATTRLAB_COLD_BUILD_DEFAULT OFF)
else()
  set(ATTRLAB_COLD_BUILD_DEFAULT ON)
endif()
option(ATTRLAB_PRECOMPILE_HEADERS
  "Precompile the heavy external headers once per target (off by default under ccache)"
  ${ATTRLAB_COLD_BUILD_DEFAULT})

# What every target's units include (directly or through lab/core/options.h, lab/core/error.h).
set(ATTRLAB_PCH_COMMON
  <algorithm> <array> <cmath> <cstddef> <cstdint> <cstring> <filesystem> <fstream> <functional>
  <limits> <map> <memory> <mutex> <numeric> <optional> <set> <sstream> <stdexcept> <string>
  <string_view> <tuple> <unordered_map> <utility> <vector>
  <fmt/format.h> <nlohmann/json.hpp>)

# attrlab_precompile(TARGET [HEADER...]): precompile ATTRLAB_PCH_COMMON and the HEADERs for
# TARGET's units. Worth it only for targets of several units: one .gch costs about two units.
function(attrlab_precompile target)
  if(ATTRLAB_PRECOMPILE_HEADERS)
    target_precompile_headers(${target} PRIVATE ${ATTRLAB_PCH_COMMON} ${ARGN})
  endif()
endfunction()
