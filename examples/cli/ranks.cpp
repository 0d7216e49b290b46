// The job's ranks over MPI (SSMRL_CLI_MPI, where CMake found an MPI), else a group of one.
#include "ranks.hpp"

#include <cstdio>
#include <memory>
#include <vector>

#ifdef SSMRL_CLI_MPI
#include <ssmrl/dist/mpi.hpp>
#endif

namespace ssmrl::cli {

namespace {
Ranks world;
#ifdef SSMRL_CLI_MPI
std::unique_ptr<dist::MpiEnvironment> environment;
std::unique_ptr<dist::MpiCommunicator> communicator;
#endif
}  // namespace

const Ranks& ranks() { return world; }

#ifdef SSMRL_CLI_MPI
RanksSession::RanksSession(int& argc, char**& argv) {
  if (!dist::launched_by_mpi_launcher()) return;
  environment = std::make_unique<dist::MpiEnvironment>(argc, argv);
  communicator = std::make_unique<dist::MpiCommunicator>();
  world.rank_ = communicator->rank();
  world.size_ = communicator->size();
}
RanksSession::~RanksSession() {
  communicator.reset();
  environment.reset();
}
void Ranks::allgather(std::span<double> data, std::span<const int> counts) const {
  if (communicator) communicator->allgather(data, counts);
}
void Ranks::allgather(std::span<float> data, std::span<const int> counts) const {
  if (communicator) communicator->allgather(data, counts);
}
void Ranks::broadcast(std::span<double> data, int root) const {
  if (communicator) communicator->broadcast(data, root);
}
void Ranks::broadcast(std::span<float> data, int root) const {
  if (communicator) communicator->broadcast(data, root);
}
void Ranks::broadcast(std::string& text, int root) const {
  if (communicator) communicator->broadcast(text, root);
}
int fail_ranks(const std::string& message, int status) {
  if (world.size() > 1) dist::abort_job(message, status);
  std::fprintf(stderr, "%s\n", message.c_str());
  return status;
}
#else
RanksSession::RanksSession(int&, char**&) {}
RanksSession::~RanksSession() = default;
void Ranks::allgather(std::span<double>, std::span<const int>) const {}
void Ranks::allgather(std::span<float>, std::span<const int>) const {}
void Ranks::broadcast(std::span<double>, int) const {}
void Ranks::broadcast(std::span<float>, int) const {}
void Ranks::broadcast(std::string&, int) const {}
int fail_ranks(const std::string& message, int status) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return status;
}
#endif

void check_same_command_line(int argc, char** argv) {
  if (world.size() == 1) return;
  std::string mine;
  for (int i = 1; i < argc; ++i) mine += std::string(argv[i]) + '\0';
  std::string first = mine;
  world.broadcast(first, 0);
  // Every rank learns which differ, so that all refuse before any starts work.
  std::vector<double> differs(static_cast<std::size_t>(world.size()));
  differs[static_cast<std::size_t>(world.rank())] = first == mine ? 0.0 : 1.0;
  dist::allgather_parts(world, std::span<double>(differs), differs.size(), 1);
  std::string which;
  for (std::size_t r = 0; r < differs.size(); ++r) {
    if (differs[r] != 0) which += (which.empty() ? "" : ", ") + std::to_string(r);
  }
  SSMRL_REQUIRE(which.empty(), "ssmrl: the command line of rank ", which, " differs from rank 0's; every rank of an ",
                "mpirun job must run the same command");
}

}  // namespace ssmrl::cli
