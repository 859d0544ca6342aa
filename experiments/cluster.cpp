#include "experiments/cluster.h"

#include <cstdlib>
#include <limits>
#include <list>

#include "lab/core/error.h"

#ifdef ATTRLAB_MPI
#include <mpi.h>
#endif

namespace experiments::cluster {

#ifdef ATTRLAB_MPI

namespace {

constexpr int kTag = 21;

void check(int status, const char* call) {
  if (status != MPI_SUCCESS) LAB_CHECK(false, "{} failed with MPI error {}", call, status);
}

int message_size(const std::string& bytes) {
  LAB_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()), "an MPI message of {} bytes",
            bytes.size());
  return static_cast<int>(bytes.size());
}

}  // namespace

/// Messages sent and not yet known to be received, with their buffers.
struct Session::Pending {
  std::list<std::pair<std::string, MPI_Request>> sends;
};

bool available() { return true; }

Session::Session() : pending_(std::make_unique<Pending>()) {
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

Session::~Session() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Session::broadcast(std::string& bytes) {
  int size = rank_ == 0 ? message_size(bytes) : 0;
  check(MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  bytes.resize(static_cast<size_t>(size));
  check(MPI_Bcast(bytes.data(), size, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

void Session::send(std::string bytes) {
  // Completed sends free their buffers first.
  for (auto it = pending_->sends.begin(); it != pending_->sends.end();) {
    int done = 0;
    check(MPI_Test(&it->second, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? pending_->sends.erase(it) : std::next(it);
  }
  auto& [buffer, request] = pending_->sends.emplace_back(std::move(bytes), MPI_REQUEST_NULL);
  check(MPI_Isend(buffer.data(), message_size(buffer), MPI_CHAR, 0, kTag, MPI_COMM_WORLD, &request), "MPI_Isend");
}

namespace {

std::string receive_probed(const MPI_Status& status) {
  int size = 0;
  check(MPI_Get_count(&status, MPI_CHAR, &size), "MPI_Get_count");
  std::string bytes(static_cast<size_t>(size), '\0');
  check(MPI_Recv(bytes.data(), size, MPI_CHAR, status.MPI_SOURCE, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  return bytes;
}

}  // namespace

bool Session::poll(std::string& bytes) {
  int arrived = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, kTag, MPI_COMM_WORLD, &arrived, &status), "MPI_Iprobe");
  if (!arrived) return false;
  bytes = receive_probed(status);
  return true;
}

std::string Session::receive() {
  MPI_Status status;
  check(MPI_Probe(MPI_ANY_SOURCE, kTag, MPI_COMM_WORLD, &status), "MPI_Probe");
  return receive_probed(status);
}

void Session::flush() {
  for (auto& [buffer, request] : pending_->sends) check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
  pending_->sends.clear();
}

void Session::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

#else

struct Session::Pending {};

bool available() { return false; }

Session::Session() {
  lab::fail_usage("--mpi: this attrlab was built without MPI; install openmpi-bin and libopenmpi-dev (scripts/setup.sh) "
                  "and build again");
}
Session::~Session() = default;
void Session::broadcast(std::string&) {}
void Session::send(std::string) {}
bool Session::poll(std::string&) { return false; }
std::string Session::receive() { return {}; }
void Session::flush() {}
void Session::abort(int code) { std::_Exit(code); }

#endif

}  // namespace experiments::cluster
