// The only way from a request to the filesystem: a plain name (a run, a checkpoint file) taken
// inside the served directory, and refused when it is anything else or leads outside it (`..`, an
// absolute path, a symlink pointing out).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ssmrl::cli::dashboard {

namespace fs = std::filesystem;

//! A request the server refuses: its HTTP status and the message the page shows.
struct Refusal : std::runtime_error {
  Refusal(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

//! Letters, digits, '.', '_' and '-', not starting with '.', at most 100 characters.
inline bool plain_name(const std::string& name) {
  if (name.empty() || name.size() > 100 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

//! `name` (what: "run", "checkpoint") inside `root` (a canonical directory), resolved; a path that
//! does not exist yet is returned as it will be.
inline fs::path confined(const fs::path& root, const std::string& name, const char* what) {
  if (!plain_name(name)) {
    throw Refusal(400, std::string("ssmrl serve: the ") + what + " name '" + name +
                           "' is not a plain name (letters, digits, '.', '_', '-'; no '/', no leading '.')");
  }
  std::error_code ec;
  const auto resolved = fs::weakly_canonical(root / name, ec);
  if (ec) throw Refusal(400, std::string("ssmrl serve: the ") + what + " '" + name + "': " + ec.message());
  const auto relative = resolved.lexically_relative(root);
  if (relative.empty() || *relative.begin() == ".." || relative.is_absolute() || relative == ".") {
    throw Refusal(403, std::string("ssmrl serve: the ") + what + " '" + name + "' leads to '" + resolved.string() +
                           "', outside the served directory '" + root.string() + "'");
  }
  return resolved;
}

}  // namespace ssmrl::cli::dashboard
