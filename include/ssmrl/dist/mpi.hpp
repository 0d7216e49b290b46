// The MPI communicator (target ssmrl::mpi): the Communicator of dist/communicator.hpp over an MPI
// communicator, MPI_COMM_WORLD by default. A process where MPI was never initialised (a program run
// without mpirun) is a group of one. Only the calling thread talks to MPI (MPI_THREAD_FUNNELED).
#pragma once

// The C API only: not MPI-2's C++ bindings, which MPI-3 removed.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ssmrl/dist/communicator.hpp"

namespace ssmrl::dist {

namespace detail {
template <class T>
MPI_Datatype mpi_type() {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>, "dist::MpiCommunicator: float or double");
  if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else return MPI_FLOAT;
}

inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  SSMRL_THROW(std::runtime_error, ::ssmrl::detail::message("dist::MpiCommunicator: ", what, " failed: ",
                                                             std::string(text, static_cast<std::size_t>(length))));
}
}  // namespace detail

//! True when MPI has been initialised and not yet finalised.
[[nodiscard]] inline bool mpi_active() {
  int initialised = 0;
  int finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised != 0 && finalised == 0;
}

//! True when a launcher started this process (Open MPI's mpirun, or a PMI/PMIx launcher such as
//! Slurm's srun): then MPI should be initialised; a plain run need not start MPI at all.
[[nodiscard]] inline bool launched_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

//! MPI for the lifetime of the object: initialised (funnelled) on construction where it is not yet,
//! finalised on destruction by the object that initialised it.
class MpiEnvironment {
public:
  MpiEnvironment(int& argc, char**& argv) {
    if (mpi_active()) return;
    int provided = 0;
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owner_ = true;
    // Errors come back as codes, for messages that name the call, rather than ending the job silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
  ~MpiEnvironment() {
    if (owner_ && mpi_active()) MPI_Finalize();
  }

private:
  bool owner_ = false;
};

//! Ends every process of the job: `message` to stderr (prefixed by the rank), then MPI_Abort. A rank
//! that fails calls this instead of returning, so that no other rank waits for it forever.
[[noreturn]] inline void abort_job(const std::string& message, int status = 1) {
  int rank = 0;
  if (mpi_active()) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, status);
  std::exit(status);
}

class MpiCommunicator {
public:
  //! The ranks of `comm`; without an active MPI, a group of one.
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    if (!mpi_active()) return;
    detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  template <class T>
  void allgather(std::span<T> data, std::span<const int> counts) const {
    if (size_ == 1) return;
    SSMRL_REQUIRE(counts.size() == static_cast<std::size_t>(size_), "dist::MpiCommunicator::allgather: ",
                  counts.size(), " counts for ", size_, " ranks");
    std::vector<int> displacements(counts.size());
    std::size_t total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      SSMRL_REQUIRE(counts[r] >= 0 && total <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
                    "dist::MpiCommunicator::allgather: count ", counts[r], " of rank ", r, " at offset ", total);
      displacements[r] = static_cast<int>(total);
      total += static_cast<std::size_t>(counts[r]);
    }
    SSMRL_REQUIRE(total == data.size(), "dist::MpiCommunicator::allgather: the counts add up to ", total,
                  ", the data has ", data.size(), " elements");
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data(), counts.data(),
                                 displacements.data(), detail::mpi_type<T>(), comm_),
                  "MPI_Allgatherv");
  }

  template <class T>
  void broadcast(std::span<T> data, int root) const {
    if (size_ == 1) return;
    SSMRL_REQUIRE(data.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
                  "dist::MpiCommunicator::broadcast: ", data.size(), " elements are more than one message carries");
    detail::check(MPI_Bcast(data.data(), static_cast<int>(data.size()), detail::mpi_type<T>(), root, comm_),
                  "MPI_Bcast");
  }

  void broadcast(std::string& text, int root) const {
    if (size_ == 1) return;
    unsigned long long length = text.size();
    detail::check(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, comm_), "MPI_Bcast");
    SSMRL_REQUIRE(length <= static_cast<unsigned long long>(std::numeric_limits<int>::max()),
                  "dist::MpiCommunicator::broadcast: a text of ", length, " bytes is more than one message carries");
    text.resize(static_cast<std::size_t>(length));
    detail::check(MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, root, comm_), "MPI_Bcast");
  }

private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};
template <>
inline constexpr bool enable_communicator<MpiCommunicator> = true;

}  // namespace ssmrl::dist
