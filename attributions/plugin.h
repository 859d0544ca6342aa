/// @file plugin.h
/// @brief Attribution methods from outside attrlab's tree: a plug-in is one shared library,
/// built against the installed CMake package (`find_package(attrlab)`, `attrlab::attrlab`), that
/// registers its methods with one ATTRLAB_PLUGIN block:
///
///     #include "attributions/plugin.h"
///     ATTRLAB_PLUGIN(registry) { registry.add_method(MyMethod::info()); }
///
/// The block defines two exported `extern "C"` entry points: `attrlab_plugin_abi()`, the text
/// of ATTRLAB_PLUGIN_ABI as the plug-in was compiled, and `attrlab_plugin_register(registry)`,
/// the block's body. load_plugin() opens the library, compares the plug-in's ABI text with its
/// own before it calls anything else of the plug-in, then registers its methods; they are made
/// and listed like the built-in ones (`attrlab --plugin lib.so methods`, `attribute`, `run`, a
/// study config's `"plugins"`, `attrlab.load_plugin()` in Python).
///
/// One copy of attrlab per process: attrlab's libraries are shared (libattrlab_*.so), and a
/// plug-in links them rather than carrying a copy, so the registry a plug-in adds to is the one
/// the attrlab command (or the Python module) reads; the dynamic loader binds the plug-in's
/// libattrlab_*.so to the already loaded ones by their soname.
/// Tested in tests/plugin/test_plugin.cpp (examples/plugin-method/ built from an installed
/// package).
#pragma once

#include <string>
#include <vector>

#include "attributions/method.h"

#define ATTRLAB_PLUGIN_STR2(x) #x
#define ATTRLAB_PLUGIN_STR(x) ATTRLAB_PLUGIN_STR2(x)

// The standard library a plug-in's C++ types come from: its name, the compiler major version of
// its headers and, for libstdc++, the std::string/std::list ABI (_GLIBCXX_USE_CXX11_ABI).
#if defined(_GLIBCXX_RELEASE)
#define ATTRLAB_PLUGIN_STDLIB \
  "libstdc++ " ATTRLAB_PLUGIN_STR(_GLIBCXX_RELEASE) ", cxx11-abi " ATTRLAB_PLUGIN_STR(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define ATTRLAB_PLUGIN_STDLIB "libc++ " ATTRLAB_PLUGIN_STR(_LIBCPP_VERSION)
#else
#define ATTRLAB_PLUGIN_STDLIB "unknown standard library"
#endif

/// What a plug-in must share with the attrlab that loads it: attrlab's version (the compile
/// definition ATTRLAB_VERSION of the package it was built against), the standard library and the
/// C++ standard. Two different texts refuse the plug-in.
#define ATTRLAB_PLUGIN_ABI \
  ATTRLAB_VERSION " (" ATTRLAB_PLUGIN_STDLIB ", C++ " ATTRLAB_PLUGIN_STR(__cplusplus) ")"

namespace attributions {

/// What a plug-in's ATTRLAB_PLUGIN block registers with.
class PluginRegistry {
 public:
  /// Adds a method, as attributions::add_method() does (same checks: spelling, unique name).
  void add_method(MethodInfo info);
  /// The names registered by this plug-in so far.
  const std::vector<std::string>& methods() const { return methods_; }

 private:
  std::vector<std::string> methods_;
};

/// ATTRLAB_PLUGIN_ABI as attrlab itself was compiled.
std::string plugin_abi();

/// Loads the plug-in at `path` (relative to the working directory) and registers its methods;
/// returns their names. A library loaded before (same file) is not registered twice. One-line
/// lab::Error (a bad input file, exit 2) when `path` is no file, cannot be opened as a shared
/// library, lacks the entry points, was built against another attrlab ("PATH: built against
/// attrlab X, this is Y"), or registers a method that cannot be added.
std::vector<std::string> load_plugin(const std::string& path);

}  // namespace attributions

/// Defines a plug-in's entry points; the block that follows is its registration, given
/// `attributions::PluginRegistry& NAME`. Use once per shared library.
#define ATTRLAB_PLUGIN(registry)                                                                       \
  static void attrlab_plugin_body(::attributions::PluginRegistry& registry);                           \
  extern "C" __attribute__((visibility("default"))) const char* attrlab_plugin_abi() {                 \
    return ATTRLAB_PLUGIN_ABI;                                                                         \
  }                                                                                                    \
  extern "C" __attribute__((visibility("default"))) void attrlab_plugin_register(                      \
      ::attributions::PluginRegistry* registry) {                                                      \
    attrlab_plugin_body(*registry);                                                                    \
  }                                                                                                    \
  static void attrlab_plugin_body(::attributions::PluginRegistry& registry)
