// The dashboard's child processes: `ssmrl` itself, run with arguments the server built (never a
// shell), its output captured through a pipe. A child starts with default signal handling and none
// of the server's descriptors (its listening socket would outlive it in a daemon otherwise).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ssmrl::cli::dashboard {

//! A started child: its pid and the read end of the pipe holding its stdout and stderr.
struct Spawned {
  pid_t pid = -1;
  int output = -1;
};

//! Starts `argv` (argv[0] a path) with stdout and stderr into one pipe and stdin from /dev/null.
inline Spawned spawn(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("ssmrl serve: pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (error != 0) {
    ::close(pipe_fds[0]);
    throw std::runtime_error("ssmrl serve: cannot start '" + argv[0] + "': " + std::strerror(error));
  }
  return {pid, pipe_fds[0]};
}

//! Reads what is ready in `fd` into `out`, keeping its last `keep` bytes; false at end of file.
inline bool read_available(int fd, std::string& out, std::size_t keep, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return true;
  char buffer[4096];
  const auto n = ::read(fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  out.append(buffer, static_cast<std::size_t>(n));
  if (out.size() > keep) out.erase(0, out.size() - keep);
  return true;
}

//! The exit status as a shell reports it: the code, or 128 + the signal.
inline int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

struct Finished {
  int status = -1;     //!< as exit_status() gives it; -1: killed at the time limit
  std::string output;  //!< stdout and stderr together
};

//! Runs `argv` to its end, killing it after `limit`.
inline Finished run_to_end(const std::vector<std::string>& argv, std::chrono::seconds limit,
                           std::size_t keep = 4 << 20) {
  const auto child = spawn(argv);
  Finished done;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool timed_out = false;
  while (read_available(child.output, done.output, keep, 200)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child.pid, SIGKILL);
      timed_out = true;
      break;
    }
  }
  ::close(child.output);
  int wait_status = 0;
  while (::waitpid(child.pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  done.status = timed_out ? -1 : exit_status(wait_status);
  return done;
}

//! A long-running child (a training run): its output collected by a thread of its own until it
//! ends; status and output may be read at any time.
class Job {
public:
  explicit Job(const std::vector<std::string>& argv) : child_(spawn(argv)) {
    reader_ = std::thread([this] { collect(); });
  }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job() {
    if (running()) signal(SIGKILL);
    reader_.join();
  }

  [[nodiscard]] pid_t pid() const { return child_.pid; }
  [[nodiscard]] bool running() const {
    std::lock_guard lock(mutex_);
    return !status_;
  }
  //! The exit status once it ended.
  [[nodiscard]] std::optional<int> status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  [[nodiscard]] std::string output() const {
    std::lock_guard lock(mutex_);
    return output_;
  }
  void signal(int number) const {
    std::lock_guard lock(mutex_);
    if (!status_) ::kill(child_.pid, number);
  }
  //! Waits for its end up to `limit`; whether it ended.
  bool wait_for(std::chrono::milliseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (running()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

private:
  void collect() {
    std::string chunk;
    for (;;) {
      chunk.clear();
      const bool open = read_available(child_.output, chunk, 1 << 20, 200);
      {
        std::lock_guard lock(mutex_);
        output_ += chunk;
        if (output_.size() > (1 << 16)) output_.erase(0, output_.size() - (1 << 16));
      }
      if (!open) break;
    }
    ::close(child_.output);
    int wait_status = 0;
    while (::waitpid(child_.pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mutex_);
    status_ = exit_status(wait_status);
  }

  Spawned child_;
  mutable std::mutex mutex_;
  std::string output_;
  std::optional<int> status_;
  std::thread reader_;
};

}  // namespace ssmrl::cli::dashboard
