# `cmake --install build [--prefix DIR]` (DIR defaults to CMAKE_INSTALL_PREFIX, /usr/local):
# - DIR/bin/attrlab, the command, and DIR/lib/libattrlab_cli.so, the module it loads
#   (cli/launcher.cpp);
# - DIR/lib/libattrlab_{lab,networks,datasets,attributions,experiments}.so, the shared libraries,
#   and libattrlab_ximgproc.so, the module attributions opens for two segmentations;
# - DIR/include/attrlab/<folder>/*.h, their headers (included as "attributions/method.h", as in
#   the tree);
# - DIR/lib/cmake/attrlab/, the CMake package: another project does `find_package(attrlab)` and
#   links `attrlab::attrlab` (every library, their include directory, C++20).
# `attrlab::attrlab` means the same for a plug-in (examples/plugin-method/) and for a program of
# its own: the shared libraries. A plug-in therefore carries no copy of attrlab; when attrlab (or
# the Python module) loads it, the dynamic loader binds its libattrlab_*.so to the ones already
# loaded (same soname), so there is one registry per process (attributions/plugin.h).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(attrlab_libraries attrlab_lab attrlab_networks attrlab_datasets attrlab_attributions attrlab_experiments)
add_library(attrlab_package INTERFACE)
target_link_libraries(attrlab_package INTERFACE ${attrlab_libraries})
target_compile_features(attrlab_package INTERFACE cxx_std_20)
set_target_properties(attrlab_package PROPERTIES EXPORT_NAME attrlab)
add_library(attrlab::attrlab ALIAS attrlab_package)

# Installed files find each other: the command its libraries in ../lib, the libraries each other.
set_target_properties(${attrlab_libraries} attrlab_cli PROPERTIES INSTALL_RPATH "$ORIGIN")
file(RELATIVE_PATH bin_to_lib "/${CMAKE_INSTALL_BINDIR}" "/${CMAKE_INSTALL_LIBDIR}")
set_target_properties(attrlab PROPERTIES INSTALL_RPATH "$ORIGIN/${bin_to_lib}")

install(TARGETS attrlab RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS attrlab_cli LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The ximgproc module sits beside libattrlab_attributions.so, where it is looked for
# (attributions/segmentation_ximgproc.h).
install(TARGETS attrlab_ximgproc LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS ${attrlab_libraries} attrlab_package EXPORT attrlab-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(folder lab networks datasets attributions experiments)
  install(DIRECTORY "${CMAKE_SOURCE_DIR}/${folder}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attrlab/${folder}
          FILES_MATCHING PATTERN "*.h" PATTERN "configs" EXCLUDE)
endforeach()

set(package_dir ${CMAKE_INSTALL_LIBDIR}/cmake/attrlab)
install(EXPORT attrlab-targets NAMESPACE attrlab:: DESTINATION ${package_dir})
configure_package_config_file("${CMAKE_SOURCE_DIR}/cmake/attrlab-config.cmake.in"
  "${CMAKE_BINARY_DIR}/attrlab-config.cmake" INSTALL_DESTINATION ${package_dir})
# A plug-in must match attrlab's version exactly (attributions/plugin.h), so the package does too.
write_basic_package_version_file("${CMAKE_BINARY_DIR}/attrlab-config-version.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY ExactVersion)
install(FILES "${CMAKE_BINARY_DIR}/attrlab-config.cmake" "${CMAKE_BINARY_DIR}/attrlab-config-version.cmake"
        DESTINATION ${package_dir})
