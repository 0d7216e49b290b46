// A dist::Communicator whose ranks are threads of one process, for tests of the distributed paths
// without MPI: every operation is a rendezvous of all ranks (a barrier around a shared buffer).
#pragma once

#include <algorithm>
#include <barrier>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ssmrl/dist/communicator.hpp>

namespace ssmrl::test {

class ThreadCommunicator {
public:
  struct Group {
    explicit Group(int ranks) : size(ranks), barrier(ranks) {}
    int size;
    std::barrier<> barrier;
    std::vector<double> numbers;
    std::string text;
  };
  //! `ranks` communicators of one group, rank r at index r; each is used by its own thread.
  static std::vector<ThreadCommunicator> group(int ranks) {
    auto shared = std::make_shared<Group>(ranks);
    std::vector<ThreadCommunicator> out;
    for (int r = 0; r < ranks; ++r) out.push_back(ThreadCommunicator(shared, r));
    return out;
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return group_->size; }

  template <class T>
  void allgather(std::span<T> data, std::span<const int> counts) const {
    std::size_t begin = 0;
    for (int r = 0; r < rank_; ++r) begin += static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
    const auto count = static_cast<std::size_t>(counts[static_cast<std::size_t>(rank_)]);
    if (rank_ == 0) group_->numbers.assign(data.size(), 0.0);
    group_->barrier.arrive_and_wait();
    std::copy(data.begin() + static_cast<std::ptrdiff_t>(begin),
              data.begin() + static_cast<std::ptrdiff_t>(begin + count),
              group_->numbers.begin() + static_cast<std::ptrdiff_t>(begin));
    group_->barrier.arrive_and_wait();
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<T>(group_->numbers[i]);
    group_->barrier.arrive_and_wait();
  }

  template <class T>
  void broadcast(std::span<T> data, int root) const {
    if (rank_ == root) group_->numbers.assign(data.begin(), data.end());
    group_->barrier.arrive_and_wait();
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<T>(group_->numbers[i]);
    group_->barrier.arrive_and_wait();
  }

  void broadcast(std::string& text, int root) const {
    if (rank_ == root) group_->text = text;
    group_->barrier.arrive_and_wait();
    text = group_->text;
    group_->barrier.arrive_and_wait();
  }

private:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  std::shared_ptr<Group> group_;
  int rank_ = 0;
};

}  // namespace ssmrl::test

template <>
inline constexpr bool ssmrl::dist::enable_communicator<ssmrl::test::ThreadCommunicator> = true;
