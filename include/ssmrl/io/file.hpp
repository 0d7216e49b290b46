// Whole-file reads and atomic writes: a file is either written completely or left as it was.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::io {

//! The bytes of a file; throws ssmrl::InvalidArgument naming the caller and the path.
inline std::string read_file(const char* caller, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  SSMRL_REQUIRE(in.good(), caller, ": cannot open '", path.string(), "' for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SSMRL_REQUIRE(!in.bad(), caller, ": error while reading '", path.string(), "'");
  return bytes;
}

//! Writes to a temporary file beside `path`, then renames it over `path`.
inline void write_file_atomically(const char* caller, const std::filesystem::path& path, const std::string& bytes) {
  std::random_device entropy;
  const auto tmp = path.string() + ".tmp-" + std::to_string(entropy());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    SSMRL_REQUIRE(out.good(), caller, ": cannot open '", tmp, "' for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(tmp.c_str());
      SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(caller, ": error while writing '", tmp, "'"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    SSMRL_THROW(::ssmrl::InvalidArgument,
                ::ssmrl::detail::message(caller, ": cannot move '", tmp, "' to '", path.string(), "': ", ec.message()));
  }
}

}  // namespace ssmrl::io
