// .npz export: a zip archive (stored, uncompressed) of .npy arrays that numpy.load reads. The
// arrays themselves are written by xtensor's .npy writer.
#pragma once

#include <xtensor/xadapt.hpp>
#include <xtensor/xnpy.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ssmrl/io/file.hpp"

namespace ssmrl::io {

//! One array for an .npz archive: its name (without ".npy") and values, row-major.
template <class Scalar>
struct NpyArray {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<Scalar> values;
};

namespace detail {

inline std::uint32_t crc32(const std::string& bytes) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xFFFFFFFFU;
  for (const char ch : bytes) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xFFU] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFU;
}

inline void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>(v >> 8));
}
inline void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// A zip archive of stored (uncompressed) entries.
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out;
  std::string central;
  for (const auto& entry : entries) {
    const std::string& name = entry.first;  // a plain reference: lambdas capture it (clang < 16 cannot capture bindings)
    const std::string& data = entry.second;
    SSMRL_REQUIRE(data.size() < 0xFFFFFFFFULL && out.size() < 0xFFFFFFFFULL, "io::write_npz: entry ", name,
                  " is too large for a zip archive without zip64");
    const auto offset = static_cast<std::uint32_t>(out.size());
    const auto crc = crc32(data);
    const auto size = static_cast<std::uint32_t>(data.size());
    auto header = [&](std::string& h, bool is_central) {
      put32(h, is_central ? 0x02014b50U : 0x04034b50U);
      if (is_central) put16(h, 20);  // made by
      put16(h, 20);                  // needed to extract
      put16(h, 0);                   // flags
      put16(h, 0);                   // stored
      put16(h, 0);                   // time
      put16(h, 0x21);                // date: 1980-01-01
      put32(h, crc);
      put32(h, size);
      put32(h, size);
      put16(h, static_cast<std::uint16_t>(name.size()));
      put16(h, 0);  // extra
      if (is_central) {
        put16(h, 0);  // comment
        put16(h, 0);  // disk
        put16(h, 0);  // internal attributes
        put32(h, 0);  // external attributes
        put32(h, offset);
      }
      h += name;
    };
    header(out, false);
    out += data;
    header(central, true);
  }
  const auto central_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put32(out, 0x06054b50U);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint16_t>(entries.size()));
  put16(out, static_cast<std::uint16_t>(entries.size()));
  put32(out, static_cast<std::uint32_t>(central.size()));
  put32(out, central_offset);
  put16(out, 0);
  return out;
}

}  // namespace detail

//! Writes the arrays as NAME.npy entries of an .npz archive, atomically.
template <class Scalar>
void write_npz(const std::filesystem::path& path, const std::vector<NpyArray<Scalar>>& arrays) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& a : arrays) {
    std::size_t count = 1;
    for (auto s : a.shape) count *= s;
    SSMRL_REQUIRE(count == a.values.size(), "io::write_npz: array ", a.name, " has ", a.values.size(),
                  " values for its shape");
    entries.emplace_back(a.name + ".npy", xt::dump_npy(xt::adapt(a.values, a.shape)));
  }
  write_file_atomically("io::write_npz", path, detail::zip_stored(entries));
}

}  // namespace ssmrl::io
