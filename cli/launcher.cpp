// The attrlab executable. It links nothing of attrlab: it sets libgomp's spin count in its own
// environment, then loads the command (libattrlab_cli.so, the other files of cli/) and with it
// oneDNN and libgomp, and runs it.
//
// libgomp reads GOMP_SPINCOUNT once, when it is initialised; in an executable that links it (even
// through oneDNN) that happens before main, and glibc's own initialisation resets the environment
// after the executable's pre-initialisers, so no code of the executable can set the variable in
// time. Loading the rest of the program here instead costs nothing extra (the same libraries,
// loaded once) and spares the second execution of the whole program that lab::prepare_process
// falls back to (lab/core/runtime.h explains the setting; a value set by the user, or
// OMP_WAIT_POLICY, is kept).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") == nullptr && std::getenv("OMP_WAIT_POLICY") == nullptr)
    setenv("GOMP_SPINCOUNT", "10000", 1);
  // Found through the executable's run path: the build directory, or ../lib once installed.
  // RTLD_GLOBAL: the command's libraries serve the plug-ins it loads, as if linked here.
  void* command = dlopen("libattrlab_cli.so", RTLD_LAZY | RTLD_GLOBAL);
  if (command == nullptr) {
    const char* e = dlerror();
    const std::string first = e ? e : "unknown error";
    // The same places by hand, relative to this executable (ATTRLAB_CLI_DIRS, cli/CMakeLists.txt):
    // a sanitizer's dlopen interceptor makes the search above use the wrong run path.
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      std::string dir(self, static_cast<size_t>(n));
      dir.erase(dir.rfind('/') + 1);
      std::string dirs = ATTRLAB_CLI_DIRS;
      for (size_t begin = 0; command == nullptr && begin <= dirs.size();) {
        const size_t end = std::min(dirs.find(':', begin), dirs.size());
        command = dlopen((dir + dirs.substr(begin, end - begin) + "/libattrlab_cli.so").c_str(), RTLD_LAZY | RTLD_GLOBAL);
        begin = end + 1;
      }
    }
    if (command == nullptr) {
      std::fprintf(stderr, "attrlab: internal error: cannot load the command: %s\n", first.c_str());
      return 4;
    }
  }
  using Main = int (*)(int, char**);
  const Main attrlab_main = reinterpret_cast<Main>(dlsym(command, "attrlab_main"));
  if (attrlab_main == nullptr) {
    std::fprintf(stderr, "attrlab: internal error: libattrlab_cli.so has no attrlab_main\n");
    return 4;
  }
  return attrlab_main(argc, argv);
}
