// .npz archives: written as a zip archive of stored (uncompressed) .npy arrays that numpy.load
// reads; read back, strictly, from archives of stored float32/float64 arrays (numpy.savez).
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ssmrl/io/file.hpp"
#include "ssmrl/io/tensor.hpp"

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

// The .npy encoding of a little-endian, row-major array (format version 1.0).
template <class Scalar>
std::string npy_bytes(const std::vector<std::size_t>& shape, const std::vector<Scalar>& values) {
  std::string dims;  // Python's tuple: "", "n," or "a, b"
  for (std::size_t i = 0; i < shape.size(); ++i) dims += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string header = std::string("{'descr': '<") + (sizeof(Scalar) == 4 ? "f4" : "f8") +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');  // the data starts 64-byte aligned
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(Scalar));
  return out;
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
    entries.emplace_back(a.name + ".npy", detail::npy_bytes(a.shape, a.values));
  }
  write_file_atomically("io::write_npz", path, detail::zip_stored(entries));
}

namespace detail {

inline std::uint32_t get16(const std::string& b, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8;
}
inline std::uint32_t get32(const std::string& b, std::size_t at) { return get16(b, at) | get16(b, at + 2) << 16; }

// One .npy array as a Tensor (row-major, little-endian float32 or float64).
inline Tensor decode_npy(const std::string& bytes, const std::string& name, const std::string& origin) {
  const char* fn = "io::read_npz";
  SSMRL_REQUIRE(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, fn, ": '", origin, "': entry ", name,
                " is not a .npy array");
  const int major = static_cast<unsigned char>(bytes[6]);
  SSMRL_REQUIRE(major >= 1 && major <= 3, fn, ": '", origin, "': entry ", name, " has .npy version ", major);
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  SSMRL_REQUIRE(bytes.size() >= 8 + length_bytes, fn, ": '", origin, "': entry ", name, " is truncated");
  const std::size_t header_length = major == 1 ? get16(bytes, 8) : get32(bytes, 8);
  const std::size_t data_start = 8 + length_bytes + header_length;
  SSMRL_REQUIRE(header_length <= bytes.size() - 8 - length_bytes, fn, ": '", origin, "': entry ", name,
                " declares a ", header_length, "-byte header in ", bytes.size(), " bytes");
  const std::string_view header(bytes.data() + 8 + length_bytes, header_length);
  auto value_of = [&](std::string_view key) {
    const auto at = header.find(key);
    SSMRL_REQUIRE(at != std::string_view::npos, fn, ": '", origin, "': entry ", name, " has no ", key, " in its header");
    auto rest = header.substr(at + key.size());
    const auto colon = rest.find(':');
    SSMRL_REQUIRE(colon != std::string_view::npos, fn, ": '", origin, "': entry ", name, ": malformed header");
    rest = rest.substr(colon + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return rest;
  };
  const auto descr = value_of("'descr'");
  Tensor t;
  t.name = name;
  if (descr.substr(0, 5) == "'<f4'") t.dtype = DType::f32;
  else if (descr.substr(0, 5) == "'<f8'") t.dtype = DType::f64;
  else SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(fn, ": '", origin, "': entry ", name, " has dtype ",
                                                                      descr.substr(0, descr.find(',')),
                                                                      "; only little-endian float32 and float64 are read"));
  const auto order = value_of("'fortran_order'");
  SSMRL_REQUIRE(order.substr(0, 5) == "False" || order.substr(0, 4) == "True", fn, ": '", origin, "': entry ", name,
                ": fortran_order is neither True nor False");
  const bool fortran = order.substr(0, 4) == "True";
  auto dims = value_of("'shape'");
  SSMRL_REQUIRE(!dims.empty() && dims.front() == '(' && dims.find(')') != std::string_view::npos, fn, ": '", origin,
                "': entry ", name, ": the shape is not a tuple");
  dims = dims.substr(1, dims.find(')') - 1);
  while (!dims.empty()) {
    while (!dims.empty() && (dims.front() == ' ' || dims.front() == ',')) dims.remove_prefix(1);
    if (dims.empty()) break;
    std::int64_t d = 0;
    const auto [end, error] = std::from_chars(dims.data(), dims.data() + dims.size(), d);
    SSMRL_REQUIRE(error == std::errc{} && d >= 0 && t.shape.size() < 32, fn, ": '", origin, "': entry ", name,
                  ": the shape holds '", dims, "', not dimensions");
    t.shape.push_back(d);
    SSMRL_REQUIRE(t.element_count_fits(), fn, ": '", origin, "': entry ", name, " has shape ", shape_text(t.shape),
                  ", more than 2^59 elements");
    dims.remove_prefix(static_cast<std::size_t>(end - dims.data()));
  }
  const auto size = static_cast<std::uint64_t>(t.byte_size());
  SSMRL_REQUIRE(bytes.size() - data_start == size, fn, ": '", origin, "': entry ", name, " has shape ",
                shape_text(t.shape), " and ", bytes.size() - data_start, " bytes of data, not ", size);
  t.bytes = bytes.substr(data_start);
  if (fortran && t.shape.size() > 1) {  // column-major: reorder to row-major
    const std::size_t item = dtype_size(t.dtype);
    const auto count = static_cast<std::size_t>(t.element_count());
    std::string row_major(t.bytes.size(), '\0');
    std::vector<std::size_t> index(t.shape.size(), 0);
    for (std::size_t k = 0; k < count; ++k) {  // k walks the column-major order
      std::size_t flat = 0;
      for (std::size_t d = 0; d < t.shape.size(); ++d) flat = flat * static_cast<std::size_t>(t.shape[d]) + index[d];
      std::memcpy(&row_major[flat * item], &t.bytes[k * item], item);
      for (std::size_t d = 0; d < t.shape.size() && ++index[d] == static_cast<std::size_t>(t.shape[d]); ++d) index[d] = 0;
    }
    t.bytes = std::move(row_major);
  }
  return t;
}

}  // namespace detail

//! The arrays of an .npz archive's bytes, named without ".npy", as row-major Tensors. Only stored
//! (uncompressed) entries of little-endian float32/float64 arrays are read (numpy.savez writes
//! those; numpy.savez_compressed does not); anything else throws ssmrl::InvalidArgument.
inline std::vector<Tensor> decode_npz(const std::string& bytes, const std::string& origin = "<memory>") {
  const char* fn = "io::read_npz";
  using detail::get16;
  using detail::get32;
  // The end of central directory record: 22 bytes and a comment of up to 65535.
  SSMRL_REQUIRE(bytes.size() >= 22, fn, ": '", origin, "' has ", bytes.size(), " bytes, too short for a zip archive");
  std::size_t end = std::string::npos;
  for (std::size_t at = bytes.size() - 22 + 1; at-- > 0 && bytes.size() - at <= 22 + 65535;) {
    if (get32(bytes, at) == 0x06054b50U && at + 22 + get16(bytes, at + 20) == bytes.size()) {
      end = at;
      break;
    }
  }
  SSMRL_REQUIRE(end != std::string::npos, fn, ": '", origin, "' is not a zip archive (no end of central directory)");
  const std::size_t entries = get16(bytes, end + 10);
  const std::size_t directory_size = get32(bytes, end + 12);
  const std::size_t directory = get32(bytes, end + 16);
  SSMRL_REQUIRE(directory <= end && directory_size <= end - directory, fn, ": '", origin,
                "': the central directory lies outside the archive (zip64 archives are not read)");
  std::vector<Tensor> out;
  std::size_t at = directory;
  for (std::size_t e = 0; e < entries; ++e) {
    SSMRL_REQUIRE(at + 46 <= end && get32(bytes, at) == 0x02014b50U, fn, ": '", origin, "': central directory entry ", e,
                  " is malformed");
    const auto method = get16(bytes, at + 10);
    const std::size_t compressed = get32(bytes, at + 20);
    const std::size_t size = get32(bytes, at + 24);
    const std::size_t name_length = get16(bytes, at + 28);
    const std::size_t skip = name_length + get16(bytes, at + 30) + get16(bytes, at + 32);
    const std::size_t local = get32(bytes, at + 42);
    SSMRL_REQUIRE(at + 46 + skip <= end, fn, ": '", origin, "': central directory entry ", e, " is truncated");
    const std::string name = bytes.substr(at + 46, name_length);
    SSMRL_REQUIRE(size != 0xFFFFFFFFU && local != 0xFFFFFFFFU, fn, ": '", origin, "': entry ", name,
                  " needs zip64, which is not read");
    SSMRL_REQUIRE(method == 0 && compressed == size, fn, ": '", origin, "': entry ", name,
                  " is compressed (method ", method, "); save with numpy.savez, not savez_compressed");
    SSMRL_REQUIRE(local + 30 <= directory && get32(bytes, local) == 0x04034b50U, fn, ": '", origin, "': entry ", name,
                  " has no local header at offset ", local);
    const std::size_t data = local + 30 + get16(bytes, local + 26) + get16(bytes, local + 28);
    SSMRL_REQUIRE(data <= directory && size <= directory - data, fn, ": '", origin, "': entry ", name,
                  " runs past the archive's data");
    const std::string stored = bytes.substr(data, size);
    SSMRL_REQUIRE(detail::crc32(stored) == get32(bytes, at + 16), fn, ": '", origin, "': entry ", name,
                  " fails its CRC-32 check");
    SSMRL_REQUIRE(name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0, fn, ": '", origin, "': entry ",
                  name, " is not a .npy array");
    out.push_back(detail::decode_npy(stored, name.substr(0, name.size() - 4), origin));
    at += 46 + skip;
  }
  return out;
}
inline std::vector<Tensor> read_npz(const std::filesystem::path& path) {
  return decode_npz(read_file("io::read_npz", path), path.string());
}

}  // namespace ssmrl::io
