// WorkerGroup: a fixed set of threads that run one job together, the caller's thread taking part as
// worker 0. An exception in any worker, the caller's share included, is caught, every worker still
// finishes its share, and the first exception (by worker index) reaches the caller; the group stays
// usable and destructible. EnvBatch and the TRPO step's chunking share it.
#pragma once

#include <algorithm>
#include <barrier>
#include <cstddef>
#include <exception>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace ssmrl {

class WorkerGroup {
public:
  //! `threads` workers in all (at least 1); threads - 1 of them are started here and wait for jobs.
  explicit WorkerGroup(unsigned threads) : threads_(threads < 1 ? 1 : threads), errors_(threads_) {
    if (threads_ == 1) return;
    start_ = std::make_unique<std::barrier<>>(threads_);
    done_ = std::make_unique<std::barrier<>>(threads_);
    workers_.reserve(threads_ - 1);
    for (unsigned w = 1; w < threads_; ++w) {
      workers_.emplace_back([this, w] {
        for (;;) {
          start_->arrive_and_wait();
          if (stopping_) return;
          run_share(w);
          done_->arrive_and_wait();
        }
      });
    }
  }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  ~WorkerGroup() {
    if (workers_.empty()) return;
    stopping_ = true;
    start_->arrive_and_wait();
    for (auto& t : workers_) t.join();
  }

  [[nodiscard]] unsigned size() const noexcept { return threads_; }

  //! Runs job(w) for every worker w in [0, size()), w = 0 on the calling thread, and returns when all
  //! have finished; then rethrows the exception of the lowest-numbered worker that threw, if any.
  //! Allocates nothing unless a worker throws.
  template <class Job>
  void run(Job&& job) {
    job_context_ = &job;
    job_call_ = [](void* context, unsigned w) { (*static_cast<std::remove_reference_t<Job>*>(context))(w); };
    if (threads_ > 1) start_->arrive_and_wait();
    run_share(0);
    if (threads_ > 1) done_->arrive_and_wait();
    for (auto& e : errors_) {
      if (e) {
        const auto first = e;
        for (auto& other : errors_) other = nullptr;
        std::rethrow_exception(first);
      }
    }
  }

private:
  void run_share(unsigned w) noexcept {
    try {
      job_call_(job_context_, w);
    } catch (...) {
      errors_[w] = std::current_exception();
    }
  }

  unsigned threads_;
  std::vector<std::exception_ptr> errors_;
  std::vector<std::thread> workers_;
  std::unique_ptr<std::barrier<>> start_;
  std::unique_ptr<std::barrier<>> done_;
  void* job_context_ = nullptr;
  void (*job_call_)(void*, unsigned) = nullptr;
  bool stopping_ = false;
};

//! Runs fn(worker, begin, end) over [0, parts) split into `workers` contiguous chunks on a group of
//! that many threads (the first on the calling thread) and waits for all; the first exception is
//! rethrown here.
template <class Fn>
void for_chunks(std::size_t parts, std::size_t workers, Fn&& fn) {
  workers = std::max<std::size_t>(1, std::min(workers, parts));
  WorkerGroup group(static_cast<unsigned>(workers));
  group.run([&](unsigned w) { fn(std::size_t(w), parts * w / workers, parts * (w + 1) / workers); });
}

}  // namespace ssmrl
