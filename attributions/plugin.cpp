#include "attributions/plugin.h"

#include <dlfcn.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "lab/core/error.h"
#include "lab/io/outputs.h"

namespace attributions {

namespace {

namespace fs = std::filesystem;

using AbiFn = const char* (*)();
using RegisterFn = void (*)(PluginRegistry*);

// Every plug-in loaded so far, by its dlopen handle (one per file, whatever the path spelling),
// with the methods it registered. Plug-ins stay loaded until the process ends: their methods'
// code lives in them.
std::map<void*, std::vector<std::string>>& loaded() {
  static std::map<void*, std::vector<std::string>> handles;
  return handles;
}

std::mutex& load_mutex() {
  static std::mutex mutex;
  return mutex;
}

// dlerror() without the path it starts with (the message names the path already).
std::string dl_error(const std::string& path) {
  const char* e = dlerror();
  std::string text = e ? e : "unknown error";
  if (text.rfind(path + ": ", 0) == 0) text = text.substr(path.size() + 2);
  return text;
}

}  // namespace

void PluginRegistry::add_method(MethodInfo info) {
  const std::string name = info.name;
  attributions::add_method(std::move(info));
  methods_.push_back(name);
}

std::string plugin_abi() { return ATTRLAB_PLUGIN_ABI; }

std::vector<std::string> load_plugin(const std::string& path) {
  if (!fs::is_regular_file(path))
    lab::fail("{}: no plug-in file ({}); expected a shared library built with ATTRLAB_PLUGIN", path,
              lab::describe_file_type(path));
  // An absolute path, so that dlopen never searches the library path for a bare file name.
  const std::string file = fs::absolute(path).string();
  std::lock_guard<std::mutex> lock(load_mutex());
  dlerror();
  // RTLD_LAZY: a plug-in built against another attrlab still opens (its calls bind when made),
  // so the version check below can name both versions before anything of it runs.
  void* handle = dlopen(file.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!handle) lab::fail("{}: not a loadable plug-in: {}", path, dl_error(file));
  if (const auto it = loaded().find(handle); it != loaded().end()) {
    dlclose(handle);  // the count dlopen just added; the first load keeps it open
    return it->second;
  }
  const auto abi = reinterpret_cast<AbiFn>(dlsym(handle, "attrlab_plugin_abi"));
  const auto add = reinterpret_cast<RegisterFn>(dlsym(handle, "attrlab_plugin_register"));
  if (!abi || !add) {
    dlclose(handle);
    lab::fail("{}: not an attrlab plug-in (no entry point {}; a plug-in defines them with ATTRLAB_PLUGIN)", path,
              abi ? "attrlab_plugin_register" : "attrlab_plugin_abi");
  }
  const std::string theirs = abi();
  if (theirs != plugin_abi()) {
    dlclose(handle);
    lab::fail("{}: built against attrlab {}, this is {}", path, theirs, plugin_abi());
  }
  PluginRegistry registry;
  try {
    add(&registry);
  } catch (const lab::Error& e) {
    lab::fail("{}: {}", path, e.what());
  } catch (const std::exception& e) {
    lab::fail("{}: registration failed: {}", path, e.what());
  }
  loaded()[handle] = registry.methods();
  return registry.methods();
}

}  // namespace attributions
