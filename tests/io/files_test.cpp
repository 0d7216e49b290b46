// Files: the durability rule of atomic writes (watched and broken through the injectable file
// calls), the strict CSV reader, reads of things that are not files, and the run-directory lock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/io/csv.hpp>
#include <ssmrl/io/file.hpp>
#include <ssmrl/io/lock.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/errors.hpp"

using namespace ssmrl;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("ssmrl_files_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::size_t file_count(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

// A record of the file calls, in order, with the path or descriptor each acted on; and which call
// (by name, counting from 1) is to fail.
struct CallLog {
  std::vector<std::string> events;
  std::map<int, std::string> open_paths;
  std::string fail_call;
  int fail_on = 0;
  int seen = 0;
};
CallLog* active_log = nullptr;

bool should_fail(const std::string& call) {
  if (active_log->fail_call != call) return false;
  return ++active_log->seen == active_log->fail_on;
}

io::FileCalls recording_calls() {
  io::FileCalls calls;
  calls.open = [](const char* path, int flags, mode_t mode) {
    const int fd = ::open(path, flags, mode);
    active_log->open_paths[fd] = fs::path(path).filename().string();
    active_log->events.push_back("open " + active_log->open_paths[fd] + ((flags & O_DIRECTORY) != 0 ? " (dir)" : ""));
    return fd;
  };
  calls.write = [](int fd, const void* data, std::size_t size) -> ssize_t {
    active_log->events.push_back("write " + active_log->open_paths[fd]);
    if (should_fail("write")) {
      errno = ENOSPC;
      return -1;
    }
    // Short writes: at most 3 bytes a call, so that the loop must go on.
    return ::write(fd, data, std::min<std::size_t>(size, 3));
  };
  calls.fsync = [](int fd) {
    active_log->events.push_back("fsync " + active_log->open_paths[fd]);
    if (should_fail("fsync")) {
      errno = EIO;
      return -1;
    }
    return ::fsync(fd);
  };
  calls.close = [](int fd) {
    active_log->events.push_back("close " + active_log->open_paths[fd]);
    const int result = ::close(fd);
    if (should_fail("close")) {
      errno = EIO;
      return -1;
    }
    return result;
  };
  calls.rename = [](const char* from, const char* to) {
    active_log->events.push_back("rename " + fs::path(from).filename().string() + " " + fs::path(to).filename().string());
    if (should_fail("rename")) {
      errno = EXDEV;
      return -1;
    }
    return ::rename(from, to);
  };
  calls.unlink = [](const char* path) {
    active_log->events.push_back("unlink " + fs::path(path).filename().string());
    return ::unlink(path);
  };
  return calls;
}

bool is_tmp_of(const std::string& name, const std::string& target) {
  return name.rfind(target + ".tmp-", 0) == 0 && io::is_temporary_file(name);
}

}  // namespace

TEST_CASE("an atomic write fsyncs the temporary file before the rename and the directory after it") {
  const auto dir = scratch_dir("order");
  CallLog log;
  active_log = &log;
  {
    io::ScopedFileCalls scope(recording_calls());
    io::write_file_atomically("test", dir / "data.bin", std::string(10, 'x'));
  }
  active_log = nullptr;
  CHECK(io::read_file("test", dir / "data.bin") == std::string(10, 'x'));
  CHECK(file_count(dir) == 1);
  // open tmp, 4 short writes, fsync tmp, close tmp, rename tmp -> data.bin, open dir, fsync dir, close dir
  REQUIRE(log.events.size() == 11);
  const auto tmp = log.events[0].substr(5);
  CHECK(is_tmp_of(tmp, "data.bin"));
  for (int i = 1; i <= 4; ++i) CHECK(log.events[i] == "write " + tmp);
  CHECK(log.events[5] == "fsync " + tmp);
  CHECK(log.events[6] == "close " + tmp);
  CHECK(log.events[7] == "rename " + tmp + " data.bin");
  const auto dir_name = dir.filename().string();
  CHECK(log.events[8] == "open " + dir_name + " (dir)");
  CHECK(log.events[9] == "fsync " + dir_name);
  CHECK(log.events[10] == "close " + dir_name);
}

TEST_CASE("a failing write, fsync, close or rename leaves the old file intact and no temporary file") {
  const auto dir = scratch_dir("faults");
  const auto target = dir / "latest.safetensors";
  spit(target, "old contents");
  struct Fault {
    std::string call;
    int on;
    std::string message;
  };
  for (const Fault& f : {Fault{"write", 1, "writing"}, Fault{"write", 3, "writing"}, Fault{"fsync", 1, "fsync of"},
                         Fault{"close", 1, "closing"}, Fault{"rename", 1, "renaming"}}) {
    CAPTURE(f.call);
    CAPTURE(f.on);
    CallLog log;
    log.fail_call = f.call;
    log.fail_on = f.on;
    active_log = &log;
    std::string message;
    {
      io::ScopedFileCalls scope(recording_calls());
      message = test::message_of<io::IoError>([&] { io::write_file_atomically("io::write_safetensors", target, "new contents"); });
    }
    active_log = nullptr;
    CHECK(message.find("io::write_safetensors: " + f.message + " '") == 0);
    CHECK(message.find("latest.safetensors' is left as it was") != std::string::npos);
    CHECK(io::read_file("test", target) == "old contents");
    CHECK(file_count(dir) == 1);
    CHECK(log.events.back().rfind("unlink", 0) == 0);
    // Nothing was renamed over the target unless the rename itself was what failed.
    for (const auto& e : log.events) CHECK((e.rfind("rename", 0) != 0 || f.call == "rename"));
  }
  // The real calls again: a write into a directory that does not exist fails cleanly too.
  CHECK(test::message_of<io::IoError>([&] { io::write_file_atomically("test", dir / "no" / "file", "x"); })
            .find("test: creating '") == 0);
}

TEST_CASE("a durable append writes the whole text in short writes, then fsyncs; failures name the call") {
  const auto dir = scratch_dir("append");
  const auto log_path = dir / "history.jsonl";
  spit(log_path, "first\n");
  CallLog log;
  active_log = &log;
  {
    io::ScopedFileCalls scope(recording_calls());
    io::append_durably("test", log_path, "second line\n");  // 12 bytes: 4 writes of at most 3
  }
  active_log = nullptr;
  CHECK(io::read_file("test", log_path) == "first\nsecond line\n");
  REQUIRE(log.events.size() == 7);
  CHECK(log.events[0] == "open history.jsonl");
  for (int i = 1; i <= 4; ++i) CHECK(log.events[i] == "write history.jsonl");
  CHECK(log.events[5] == "fsync history.jsonl");
  CHECK(log.events[6] == "close history.jsonl");
  for (const std::string call : {"write", "fsync", "close"}) {
    CAPTURE(call);
    CallLog failing;
    failing.fail_call = call;
    failing.fail_on = call == "write" ? 2 : 1;  // the second write: the first bytes are already in
    active_log = &failing;
    std::string message;
    {
      io::ScopedFileCalls scope(recording_calls());
      message = test::message_of<io::IoError>(
          [&] { io::append_durably("rsi::History::append", log_path, "{\"cycle\": 2}\n"); });
    }
    active_log = nullptr;
    CHECK(message.find("rsi::History::append: ") == 0);
    CHECK(message.find("history.jsonl' failed") != std::string::npos);
    // A failed write or fsync is cut back off; a failed close comes after the fsync.
    if (call != "close") CHECK(io::read_file("test", log_path) == "first\nsecond line\n");
  }
  CHECK(test::message_of<io::IoError>([&] { io::append_durably("test", dir / "missing.jsonl", "x\n"); })
            .find("test: opening '") == 0);
}

TEST_CASE("temporary files of interrupted writes are recognised and removed, nothing else") {
  const auto dir = scratch_dir("temporaries");
  spit(dir / "latest.safetensors.tmp-12345", "torn");
  spit(dir / "train.csv.tmp-9", "torn");
  spit(dir / "latest.safetensors", "kept");
  spit(dir / "notes.tmp-abc", "kept: not digits");
  spit(dir / ".tmp-1", "kept: no target name");
  CHECK(io::remove_temporary_files(dir) == 2);
  CHECK(file_count(dir) == 3);
  CHECK(fs::exists(dir / "latest.safetensors"));
}

TEST_CASE("reading a directory, a missing file or a device is refused naming the caller and the path") {
  const auto dir = scratch_dir("reads");
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::read_file("ssmrl eval", dir); }) ==
        "ssmrl eval: '" + dir.string() + "' is a directory, not a file");
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::read_file("f", dir / "missing"); }).find("f: cannot open '") == 0);
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::read_file("f", "/dev/null"); })
            .find("is not a regular file") != std::string::npos);
}

TEST_CASE("a CSV table round-trips exactly, NaN included, and rejects a file with other columns") {
  const auto dir = scratch_dir("csv");
  io::CsvTable table({"iteration", "return"});
  table.add_row({0, -41.399999999999999});
  table.add_row({1, 1.0 / 3.0});
  table.add_row({2, std::numeric_limits<double>::quiet_NaN()});
  table.write(dir / "log.csv");
  const auto back = io::CsvTable::read(dir / "log.csv", {"iteration", "return"});
  REQUIRE(back.rows().size() == 3);
  CHECK(back.rows()[0] == table.rows()[0]);
  CHECK(back.rows()[1] == table.rows()[1]);
  CHECK(std::isnan(back.rows()[2][1]));
  const auto wrong = test::message_of<InvalidArgument>([&] { (void)io::CsvTable::read(dir / "log.csv", {"iteration", "loss"}); });
  CHECK(wrong.find("has columns 'iteration,return', expected 'iteration,loss'") != std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { table.add_row({1}); }).find("1 values for 2 columns") != std::string::npos);
  const auto header_only = io::CsvTable({"a"});
  header_only.write(dir / "empty.csv");
  CHECK(io::CsvTable::read(dir / "empty.csv", {"a"}).rows().empty());
}

TEST_CASE("the CSV reader rejects ragged rows, partial numbers and torn lines, naming file, line and column") {
  const std::vector<std::string> columns{"a", "b"};
  auto error = [&](const std::string& text) {
    return test::message_of<InvalidArgument>([&] { (void)io::CsvTable::parse(text, "train.csv", columns); });
  };
  CHECK(error("a,b\n1,2,3\n4\n5,6\n") == "io::CsvTable::read: 'train.csv' line 2 column 3: more than the 2 values of the header");
  CHECK(error("a,b\n4\n5,6\n") == "io::CsvTable::read: 'train.csv' line 2 has 1 values, the header names 2");
  CHECK(error("a,b\n1,7x\n") == "io::CsvTable::read: 'train.csv' line 2 column 2 (b): '7x' is not a number");
  CHECK(error("a,b\n1,2\n,3\n") == "io::CsvTable::read: 'train.csv' line 3 column 1 (a): '' is not a number");
  CHECK(error("a,b\n1,2\n\n") == "io::CsvTable::read: 'train.csv' line 3 column 1 (a): '' is not a number");
  CHECK(error("a,b\n1, 2\n").find("' 2' is not a number") != std::string::npos);
  CHECK(error("a,b\n1,1e999\n").find("'1e999' is not a number in the range of a double") != std::string::npos);
  CHECK(error("a,b\n1,2\n3,4") == "io::CsvTable::read: 'train.csv' line 3: the last line has no newline (a torn write?)");
  CHECK(error("").find("is empty") != std::string::npos);
  CHECK(error("a,b,c\n1,2,3\n").find("has columns 'a,b,c', expected 'a,b'") != std::string::npos);
  const auto ok = io::CsvTable::parse("a,b\r\n1,-2.5e3\r\nnan,inf\n", "x", columns);
  REQUIRE(ok.rows().size() == 2);
  CHECK(ok.rows()[0] == std::vector<double>{1, -2500});
  CHECK(std::isinf(ok.rows()[1][1]));
}

TEST_CASE("a directory lock admits one owner; the next one is told who holds it") {
  const auto dir = scratch_dir("lock");
  {
    io::DirectoryLock first("ssmrl train", dir);
    // flock locks belong to open files: a second open in this process conflicts as another process would.
    const auto message = test::message_of<io::IoError>([&] { io::DirectoryLock second("ssmrl train", dir); });
    CHECK(message == "ssmrl train: '" + dir.string() + "' is in use by another process (pid " +
                         std::to_string(::getpid()) + "); wait for it to finish or use another directory");
    // A child process sees the lock too.
    const pid_t child = ::fork();
    if (child == 0) {
      try {
        io::DirectoryLock third("child", dir);
      } catch (const io::IoError&) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WEXITSTATUS(status) == 3);
  }
  // Released with its owner.
  io::DirectoryLock again("ssmrl train", dir);
}
