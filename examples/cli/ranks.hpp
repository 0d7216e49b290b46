// The ranks of the MPI job that `ssmrl` runs in: one, without mpirun or in a build without MPI.
// `ssmrl train` splits each meta-batch's tasks over them (a dist::Communicator) and rank 0 alone
// writes; the MPI calls live in ranks.cpp, so that no other translation unit includes <mpi.h>.
#pragma once

#include <span>
#include <string>

#include <ssmrl/dist/communicator.hpp>

namespace ssmrl::cli {

class Ranks {
public:
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  //! The rank that writes files and prints (rank 0).
  [[nodiscard]] bool writer() const noexcept { return rank_ == 0; }
  void allgather(std::span<double> data, std::span<const int> counts) const;
  void allgather(std::span<float> data, std::span<const int> counts) const;
  void broadcast(std::span<double> data, int root) const;
  void broadcast(std::span<float> data, int root) const;
  void broadcast(std::string& text, int root) const;

private:
  friend class RanksSession;
  int rank_ = 0;
  int size_ = 1;
};

//! The job's ranks (a group of one before RanksSession starts MPI).
[[nodiscard]] const Ranks& ranks();

//! MPI for main's lifetime, started only when an MPI launcher (mpirun) started the program.
class RanksSession {
public:
  RanksSession(int& argc, char**& argv);
  RanksSession(const RanksSession&) = delete;
  RanksSession& operator=(const RanksSession&) = delete;
  ~RanksSession();
};

//! Ends a job of several ranks with `message` (rank-prefixed) so that no rank waits for the failed
//! one; with one rank, prints `message` and returns `status`.
int fail_ranks(const std::string& message, int status);

//! Refuses, on every rank that differs, a command line other than rank 0's: all ranks must train
//! the same run.
void check_same_command_line(int argc, char** argv);

}  // namespace ssmrl::cli

template <>
inline constexpr bool ssmrl::dist::enable_communicator<ssmrl::cli::Ranks> = true;
