# attrlab_warnings(target): the project's warning set, applied to our own targets only.
function(attrlab_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
    -Wnon-virtual-dtor -Wno-missing-field-initializers
    # GCC 12 false positive on std::string concatenation (GCC bug 105329).
    -Wno-restrict
    # No fused multiply-add contraction: kernels built for wider vector units at load time
    # (lab/nn/network.cpp) round exactly as the baseline build does.
    -ffp-contract=off)
endfunction()

# attrlab_library(NAME DIR DEPS...): a shared library of every .cpp under DIR (recursively),
# include root = the repository top (installed: include/attrlab), linked PUBLIC to DEPS.
# Shared, not static, so that a process holds exactly one copy of attrlab's registries and
# globals: the attrlab command, the Python module, a program linking attrlab::attrlab and every
# plug-in it loads all bind to the same libattrlab_*.so (cmake/Install.cmake, README "Writing a
# C++ plug-in").
function(attrlab_library name dir)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/${dir}/*.cpp")
  if(sources)
    add_library(${name} SHARED ${sources})
    target_include_directories(${name} PUBLIC "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>"
                                              "$<INSTALL_INTERFACE:include/attrlab>")
    target_link_libraries(${name} PUBLIC ${ARGN})
    attrlab_warnings(${name})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>"
                                                 "$<INSTALL_INTERFACE:include/attrlab>")
    target_link_libraries(${name} INTERFACE ${ARGN})
  endif()
endfunction()
