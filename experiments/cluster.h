/// @file cluster.h
/// @brief The few MPI calls `attrlab run --mpi` needs (run.h), behind one class so that the rest
/// of the lab never sees mpi.h. Built with MPI only when CMake finds it (ATTRLAB_MPI); without
/// it available() is false and constructing a Session throws lab::Error(kUsage).
///
/// Protocol of a run: rank 0 prepares RUN_DIR and broadcasts the outcome and which units are
/// already done; every rank computes the units i with i % size == rank; ranks > 0 send each
/// finished unit's files to rank 0 (non-blocking, so they go on with their next unit while rank 0
/// computes), rank 0 polls for them between its own units and writes them, then writes the
/// report. Only rank 0 writes RUN_DIR.
/// Tested in tests/cli/test_cmd_run_shard.cpp (4 ranks against a 1-process run, byte for byte).
#pragma once

#include <memory>
#include <string>

namespace experiments::cluster {

/// True when this attrlab was built with MPI.
bool available();

/// MPI_Init_thread (funneled: only the calling thread talks to MPI) on construction,
/// MPI_Finalize on destruction.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank 0's `bytes` to every rank (collective).
  void broadcast(std::string& bytes);
  /// Sends `bytes` to rank 0 without waiting for it to be received (the buffer is kept).
  void send(std::string bytes);
  /// Rank 0: a message that has arrived, if any (never waits).
  bool poll(std::string& bytes);
  /// Rank 0: the next message (waits for it).
  std::string receive();
  /// Waits until every message sent has been received.
  void flush();
  /// Ends every rank of the job with `code` (after an error on one of them).
  [[noreturn]] void abort(int code);

 private:
  struct Pending;
  int rank_ = 0;
  int size_ = 1;
  std::unique_ptr<Pending> pending_;
};

}  // namespace experiments::cluster
