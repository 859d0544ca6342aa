# Every dependency is a Debian 12 package; scripts/setup.sh installs them.
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
# Debian's dnnl-config.cmake also demands OpenCL (its GPU runtime), which the CPU engine we use
# does not need: import the library directly and check its version from the header.
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
file(STRINGS "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h" _dnnl_major REGEX "define DNNL_VERSION_MAJOR")
if(NOT _dnnl_major MATCHES " 2$")
  message(FATAL_ERROR "attrlab needs oneDNN 2.x (the v2 API); found: ${_dnnl_major}")
endif()
add_library(DNNL::dnnl UNKNOWN IMPORTED)
set_target_properties(DNNL::dnnl PROPERTIES
  IMPORTED_LOCATION "${DNNL_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${DNNL_INCLUDE_DIR}")
find_package(OpenCV 4.6 REQUIRED COMPONENTS core imgproc imgcodecs ximgproc dnn)
find_package(PNG REQUIRED)  # lab/io/image.cpp decodes with its own error handlers
find_package(fmt 9 REQUIRED)
find_package(TBB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenMP REQUIRED)
find_package(doctest REQUIRED)
# Xbyak (header only; lab/nn/program_code.cpp emits the sparse programs' machine code with it).
find_package(xbyak REQUIRED)

# VLFeat ships no CMake or pkg-config file.
find_path(VLFEAT_INCLUDE_DIR vl/generic.h REQUIRED)
find_library(VLFEAT_LIBRARY NAMES vl REQUIRED)
add_library(vlfeat::vl UNKNOWN IMPORTED)
set_target_properties(vlfeat::vl PROPERTIES
  IMPORTED_LOCATION "${VLFEAT_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${VLFEAT_INCLUDE_DIR}")

# PLplot (figures) ships pkg-config files.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PLPLOT REQUIRED IMPORTED_TARGET plplot-c++)

# ONNX export (lab/io/export.cpp): Debian's libonnx-dev, whose targets need protobuf's.
find_package(Protobuf REQUIRED)
find_package(ONNX 1.12 REQUIRED)

# MPI (attrlab run --mpi; experiments/cluster.h): optional, built only when found. Debian's
# openmpi-bin and libopenmpi-dev, which scripts/setup.sh installs.
find_package(MPI COMPONENTS CXX)

# cmark-gfm (report.md → report.html, GitHub tables): Debian's libcmark-gfm-dev and
# libcmark-gfm-extensions-dev; the pkg-config file links both libraries.
pkg_check_modules(CMARK_GFM REQUIRED IMPORTED_TARGET libcmark-gfm)
find_path(CMARK_GFM_EXTENSIONS_INCLUDE_DIR cmark-gfm-core-extensions.h REQUIRED)
find_library(CMARK_GFM_EXTENSIONS_LIBRARY NAMES cmark-gfm-extensions REQUIRED)
