// One owner per directory: an exclusive flock on DIR/.lock, held for the owner's lifetime and
// released by the kernel when the process ends however it ends. The pid written into the file is
// information for the message a second owner gets, never the lock itself.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "ssmrl/io/file.hpp"

namespace ssmrl::io {

class DirectoryLock {
public:
  //! Takes the lock of `dir` (which must exist) or throws ssmrl::io::IoError naming `caller`, the
  //! directory and the pid that holds it.
  DirectoryLock(const char* caller, const std::filesystem::path& dir) : path_(dir / ".lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": cannot create the lock file '", path_.string(),
                                                    "': ", std::strerror(errno)));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      std::string holder;
      char buffer[32] = {};
      const ssize_t n = ::pread(fd_, buffer, sizeof buffer - 1, 0);
      if (n > 0) holder = std::string(buffer, static_cast<std::size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      ::close(fd_);
      fd_ = -1;
      if (error == EWOULDBLOCK) {
        SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", dir.string(), "' is in use by another process",
                                                      holder.empty() ? "" : " (pid " + holder + ")",
                                                      "; wait for it to finish or use another directory"));
      }
      SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": cannot lock '", path_.string(), "': ",
                                                    std::strerror(error)));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
      [[maybe_unused]] const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  DirectoryLock(DirectoryLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&&) = delete;
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock; the file stays (removing it would race)
  }

private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace ssmrl::io
