// Whole-file reads and durable atomic writes. The rule for every file the library writes for later
// reading: write a temporary file beside it, fsync it, close it (checking the result), rename it over
// the target, fsync the directory. A failure at any step before the rename removes the temporary
// file and leaves the old file as it was; a crash at any point leaves the old file or the new one.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>

#include "ssmrl/core/error.hpp"

namespace ssmrl::io {

//! The system calls that file writes go through. Tests replace them (ScopedFileCalls) to watch
//! their order and to make any one fail; nothing else should.
struct FileCalls {
  int (*open)(const char* path, int flags, mode_t mode) = [](const char* p, int f, mode_t m) { return ::open(p, f, m); };
  ssize_t (*write)(int fd, const void* data, std::size_t size) = [](int fd, const void* d, std::size_t n) {
    return ::write(fd, d, n);
  };
  int (*fsync)(int fd) = [](int fd) { return ::fsync(fd); };
  int (*close)(int fd) = [](int fd) { return ::close(fd); };
  int (*rename)(const char* from, const char* to) = [](const char* f, const char* t) { return ::rename(f, t); };
  int (*unlink)(const char* path) = [](const char* p) { return ::unlink(p); };
};

namespace detail {
inline FileCalls& active_file_calls() {
  static FileCalls calls;
  return calls;
}
inline std::string errno_text(int error) { return std::strerror(error); }
}  // namespace detail

//! Installs `calls` for its lifetime and restores the previous ones after (not thread-safe: for tests).
class ScopedFileCalls {
public:
  explicit ScopedFileCalls(const FileCalls& calls) : saved_(detail::active_file_calls()) {
    detail::active_file_calls() = calls;
  }
  ScopedFileCalls(const ScopedFileCalls&) = delete;
  ScopedFileCalls& operator=(const ScopedFileCalls&) = delete;
  ~ScopedFileCalls() { detail::active_file_calls() = saved_; }

private:
  FileCalls saved_;
};

//! Raised when the operating system refuses a read or write; the message names the call and path.
class IoError : public InvalidArgument {
public:
  using InvalidArgument::InvalidArgument;
};

//! Reads at most this many bytes from one file (checkpoints, logs); larger files are refused.
inline constexpr std::uint64_t max_file_bytes = std::uint64_t(1) << 34;  // 16 GiB

//! The bytes of a regular file; throws ssmrl::io::IoError naming the caller and the path.
inline std::string read_file(const char* caller, const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": cannot open '", path.string(), "' for reading: ",
                                                  detail::errno_text(error)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  SSMRL_REQUIRE(::fstat(fd, &info) == 0, caller, ": cannot stat '", path.string(), "'");
  if (!S_ISREG(info.st_mode)) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", path.string(), "' is ",
                                                  S_ISDIR(info.st_mode) ? "a directory, not a file" : "not a regular file"));
  }
  if (static_cast<std::uint64_t>(info.st_size) > max_file_bytes) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", path.string(), "' has ", info.st_size,
                                                  " bytes, more than the ", max_file_bytes, " this reader accepts"));
  }
  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(info.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": error while reading '", path.string(), "': ",
                                                    detail::errno_text(error)));
    }
    if (got == 0) break;
    if (bytes.size() + static_cast<std::size_t>(got) > max_file_bytes) {
      SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", path.string(), "' grew beyond ", max_file_bytes,
                                                    " bytes while being read"));
    }
    bytes.append(buffer, static_cast<std::size_t>(got));
  }
  return bytes;
}

//! The marker in the names of temporary files: TARGET.tmp-RANDOM.
inline constexpr std::string_view temporary_marker = ".tmp-";

//! Writes `bytes` to `path` atomically and durably (see the rule at the top of this file). Throws
//! ssmrl::io::IoError naming the caller, the call that failed and the path; the old file stays.
inline void write_file_atomically(const char* caller, const std::filesystem::path& path, const std::string& bytes) {
  const FileCalls& calls = detail::active_file_calls();
  std::random_device entropy;
  const std::string tmp = path.string() + std::string(temporary_marker) + std::to_string(entropy());
  auto fail = [&](const char* what, const std::string& which, int error) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": ", what, " '", which, "' failed: ",
                                                  detail::errno_text(error), "; '", path.string(),
                                                  "' is left as it was"));
  };
  const int fd = calls.open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("creating", tmp, errno);
  auto abandon = [&](const char* what, int error, bool close_it) {
    if (close_it) calls.close(fd);
    calls.unlink(tmp.c_str());
    fail(what, tmp, error);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = calls.write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abandon("writing", n < 0 ? errno : EIO, true);
    done += static_cast<std::size_t>(n);
  }
  if (calls.fsync(fd) != 0) abandon("fsync of", errno, true);
  if (calls.close(fd) != 0) abandon("closing", errno, false);
  if (calls.rename(tmp.c_str(), path.c_str()) != 0) abandon("renaming", errno, false);
  // The rename is durable only once the directory that holds the name is.
  const auto parent = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const int dir = calls.open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dir < 0) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", path.string(), "' was replaced, but opening its "
                                                  "directory to make that durable failed: ", detail::errno_text(errno)));
  }
  const int synced = calls.fsync(dir);
  const int error = errno;
  calls.close(dir);
  if (synced != 0) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": '", path.string(), "' was replaced, but the fsync of "
                                                  "its directory failed: ", detail::errno_text(error)));
  }
}

//! Appends `text` to the existing file `path` and fsyncs it (for logs written a whole line at a
//! time: a crash leaves at most a torn last line, which their readers ignore). A failed write or
//! fsync cuts the file back to its old length. Throws ssmrl::io::IoError naming the caller, the
//! call that failed and the path.
inline void append_durably(const char* caller, const std::filesystem::path& path, const std::string& text) {
  const FileCalls& calls = detail::active_file_calls();
  auto fail = [&](const char* what, int error) {
    SSMRL_THROW(IoError, ::ssmrl::detail::message(caller, ": ", what, " '", path.string(), "' failed: ",
                                                  detail::errno_text(error)));
  };
  const int fd = calls.open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, 0);
  if (fd < 0) fail("opening", errno);
  // A failed append is cut back off, so that the next one does not follow a fragment.
  const off_t size = ::lseek(fd, 0, SEEK_END);
  auto abandon = [&](const char* what, int error) {
    if (size >= 0) (void)::ftruncate(fd, size);
    calls.close(fd);
    fail(what, error);
  };
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = calls.write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abandon("appending to", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (calls.fsync(fd) != 0) abandon("fsync of", errno);
  if (calls.close(fd) != 0) fail("closing", errno);
}

//! True for the names write_file_atomically() gives its temporary files.
inline bool is_temporary_file(const std::filesystem::path& path) {
  const auto name = path.filename().string();
  const auto at = name.rfind(temporary_marker);
  if (at == std::string::npos || at == 0) return false;
  const auto digits = name.substr(at + temporary_marker.size());
  return !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
}

//! Removes the temporary files that interrupted writes left in `dir` (call it while owning the
//! directory); returns how many.
inline std::size_t remove_temporary_files(const std::filesystem::path& dir) {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_temporary_file(entry.path()) && std::filesystem::remove(entry.path(), ec)) {
      ++removed;
    }
  }
  return removed;
}

}  // namespace ssmrl::io
