# Unity builds and cold code: the two ways the cold build (README "The cold build") spends less
# CPU on the main job's libraries.
#
# Unity builds. Most of a library unit's CPU time went to code every unit generates again at -O3:
# the instantiations of nlohmann/json, fmt, std::function and lab::Schema that the units share,
# and Eigen's solvers in both LIME and KernelSHAP. A unity unit includes several .cpp files and
# generates them once. The flags do not change, and -ffp-contract=off without -ffast-math
# (cmake/Warnings.cmake) means that inlining across the former units cannot change a result:
# the outputs are byte-identical (README "The cold build"). The batch sizes follow the units' CPU
# seconds measured one by one: batches of 15–40 s, none so large that one core idles long at the
# end.
#
# Under ccache as the compiler launcher (a developer's incremental build) the default is off:
# an edit then recompiles its own file, not its whole batch. -DATTRLAB_UNITY_BUILD=ON|OFF
# decides either way (the default is cmake/Precompile.cmake's, included before).
option(ATTRLAB_UNITY_BUILD
  "Compile each library's units in unity batches (off by default under ccache)"
  ${ATTRLAB_COLD_BUILD_DEFAULT})

# attrlab_unity(TARGET BATCH_SIZE): unity batches of BATCH_SIZE units (0: one batch) for TARGET
# when ATTRLAB_UNITY_BUILD is on.
function(attrlab_unity target batch)
  if(ATTRLAB_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${batch})
  endif()
endfunction()

# Cold code at -O1. The units that parse options and configs, write reports and files, bind the
# Python module, make the command line or build the designed networks and data (none of them an
# inner loop of a network, a method or a metric) took over a third of the main job's build at
# -O3; -O1 compiles them in about 0.75 of -O2's CPU time (README "The cold build") and gives the
# same results: without -ffast-math, and with -ffp-contract=off (cmake/Warnings.cmake), no
# optimisation level changes floating-point arithmetic.
set(ATTRLAB_COLD_LEVEL -O1)
#
# attrlab_cold(TARGET source...): compiles these sources of the library TARGET (paths relative
# to the current source directory) as cold code, into an object library TARGET_cold whose objects
# TARGET links, with TARGET's include directories, definitions, dependencies and warnings. Call it
# after TARGET's last target_link_libraries. Under unity builds they are one batch, in the order
# given (a source whose external headers must come after the others' goes last).
function(attrlab_cold target)
  get_target_property(sources ${target} SOURCES)
  get_target_property(libraries ${target} LINK_LIBRARIES)
  set(cold ${target}_cold)
  set(cold_sources)
  foreach(source IN LISTS ARGN)
    set(path "${CMAKE_CURRENT_SOURCE_DIR}/${source}")
    list(FIND sources "${path}" found)
    if(found EQUAL -1)
      message(FATAL_ERROR "attrlab_cold(${target}): ${source} is not one of its sources")
    endif()
    list(REMOVE_ITEM sources "${path}")
    list(APPEND cold_sources "${path}")
  endforeach()
  set_property(TARGET ${target} PROPERTY SOURCES ${sources})
  add_library(${cold} OBJECT ${cold_sources})
  target_include_directories(${cold} PRIVATE "${CMAKE_SOURCE_DIR}")
  target_link_libraries(${cold} PRIVATE ${libraries})
  target_compile_definitions(${cold} PRIVATE $<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>)
  attrlab_warnings(${cold})
  # After CMAKE_CXX_FLAGS_RELEASE's -O3 on the command line: the last -O counts. Other build
  # types keep their own level (Debug's -O0, RelWithDebInfo's -O2).
  attrlab_cold_level(${cold})
  target_sources(${target} PRIVATE $<TARGET_OBJECTS:${cold}>)
  attrlab_unity(${cold} 0)
endfunction()

# attrlab_cold_level(TARGET): compiles TARGET's units as cold code (Release builds only; other
# build types keep their own level).
function(attrlab_cold_level target)
  target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:${ATTRLAB_COLD_LEVEL}>)
endfunction()
