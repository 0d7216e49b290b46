// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor
// name to its dtype, shape and data_offsets (plus an optional "__metadata__" map of strings), then
// the tensors' bytes, row-major and little-endian.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ssmrl/io/file.hpp"
#include "ssmrl/io/tensor.hpp"

namespace ssmrl::io {

//! Headers longer than this are refused (the safetensors format's own limit is 100 MB).
inline constexpr std::uint64_t max_safetensors_header = 100'000'000;


//! Serialises tensors and metadata; tensors are laid out in the order given.
inline std::string encode_safetensors(const SafetensorsFile& file) {
  nlohmann::ordered_json header;
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t offset = 0;
  for (const auto& t : file.tensors) {
    SSMRL_REQUIRE(t.name != "__metadata__" && !t.name.empty(), "io::encode_safetensors: invalid tensor name '", t.name, "'");
    SSMRL_REQUIRE(static_cast<std::int64_t>(t.bytes.size()) == t.byte_size(),
                  "io::encode_safetensors: tensor ", t.name, " has ", t.bytes.size(), " bytes for ", t.element_count(),
                  " elements of ", dtype_name(t.dtype));
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string out(8, '\0');
  const std::uint64_t length = json.size();
  std::memcpy(out.data(), &length, 8);
  out += json;
  for (const auto& t : file.tensors) out += t.bytes;
  return out;
}

//! Parses and validates a whole file's bytes; any inconsistency throws ssmrl::InvalidArgument.
inline SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& origin = "<memory>") {
  const char* fn = "io::read_safetensors";
  SSMRL_REQUIRE(bytes.size() >= 8, fn, ": '", origin, "' has ", bytes.size(), " bytes, too short for a header length");
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  SSMRL_REQUIRE(header_length <= max_safetensors_header, fn, ": '", origin, "' declares a ", header_length,
                "-byte header, more than the format's limit of ", max_safetensors_header, " bytes");
  SSMRL_REQUIRE(header_length <= bytes.size() - 8, fn, ": '", origin, "' declares a ", header_length,
                "-byte header but holds only ", bytes.size() - 8, " bytes after the length (truncated or not safetensors)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_length));
  } catch (const nlohmann::json::exception& e) {
    SSMRL_THROW(::ssmrl::InvalidArgument,
                ::ssmrl::detail::message(fn, ": '", origin, "': the header is not valid JSON (", e.what(), ")"));
  }
  SSMRL_REQUIRE(header.is_object(), fn, ": '", origin, "': the header is not a JSON object");
  const std::uint64_t data_size = bytes.size() - 8 - header_length;
  const char* data = bytes.data() + 8 + header_length;
  SafetensorsFile out;
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::size_t>> order;  // begin, end, index
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      SSMRL_REQUIRE(it->is_object(), fn, ": '", origin, "': __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        SSMRL_REQUIRE(m->is_string(), fn, ": '", origin, "': metadata '", m.key(), "' is not a string");
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& entry = *it;
    SSMRL_REQUIRE(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                      entry.contains("data_offsets"),
                  fn, ": '", origin, "': tensor '", it.key(), "' lacks dtype, shape or data_offsets");
    Tensor t;
    t.name = it.key();
    const auto dtype = entry["dtype"].is_string() ? entry["dtype"].get<std::string>() : std::string("?");
    SSMRL_REQUIRE(dtype == "F32" || dtype == "F64", fn, ": '", origin, "': tensor '", t.name, "' has dtype ", dtype,
                  "; F32 and F64 are supported");
    t.dtype = dtype == "F32" ? DType::f32 : DType::f64;
    SSMRL_REQUIRE(entry["shape"].is_array(), fn, ": '", origin, "': tensor '", t.name, "' has no shape array");
    std::uint64_t elements = 1;  // checked against the data section as it grows, so it cannot wrap
    for (const auto& s : entry["shape"]) {
      SSMRL_REQUIRE(s.is_number_unsigned(), fn, ": '", origin, "': tensor '", t.name, "' has dimension ", s.dump(),
                    "; dimensions are integers of at least 0");
      const auto d = s.get<std::uint64_t>();
      SSMRL_REQUIRE(d == 0 || elements <= data_size / d, fn, ": '", origin, "': tensor '", t.name, "' has shape ",
                    entry["shape"].dump(), ", more elements than the ", data_size, "-byte data section holds");
      elements *= d;
      t.shape.push_back(static_cast<std::int64_t>(d));
    }
    const auto& offsets = entry["data_offsets"];
    SSMRL_REQUIRE(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                      offsets[1].is_number_unsigned(),
                  fn, ": '", origin, "': tensor '", t.name, "' has malformed data_offsets");
    const auto begin = offsets[0].get<std::uint64_t>();
    const auto end = offsets[1].get<std::uint64_t>();
    SSMRL_REQUIRE(begin <= end && end <= data_size, fn, ": '", origin, "': tensor '", t.name, "' spans bytes [", begin,
                  ", ", end, ") of a ", data_size, "-byte data section (truncated?)");
    SSMRL_REQUIRE(elements <= data_size / dtype_size(t.dtype) && end - begin == elements * dtype_size(t.dtype), fn,
                  ": '", origin, "': tensor '", t.name, "' has ", end - begin, " bytes for shape ",
                  entry["shape"].dump(), " of ", dtype, " (", elements, " elements)");
    t.bytes.assign(data + begin, data + end);
    order.emplace_back(begin, end, out.tensors.size());
    out.tensors.push_back(std::move(t));
  }
  // The format's rule (as its reference implementation checks it): sorted by offset, the tensors
  // tile the data section, with no bytes before, between or after them, and none shared.
  std::sort(order.begin(), order.end());
  std::vector<Tensor> sorted;
  std::uint64_t covered = 0;
  for (const auto& [begin, end, index] : order) {
    Tensor& t = out.tensors[index];
    SSMRL_REQUIRE(begin == covered, fn, ": '", origin, "': tensor '", t.name, "' starts at byte ", begin,
                  " of the data section, not at ", covered, " where the one before it ends (",
                  begin < covered ? "overlapping" : "a gap", ")");
    covered += t.bytes.size();
    sorted.push_back(std::move(t));
  }
  SSMRL_REQUIRE(covered == data_size, fn, ": '", origin, "': the tensors cover ", covered, " bytes of a ", data_size,
                "-byte data section");
  out.tensors = std::move(sorted);
  return out;
}

inline SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  return decode_safetensors(read_file("io::read_safetensors", path), path.string());
}

//! Written atomically: a failed write leaves any existing file as it was.
inline void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& file) {
  write_file_atomically("io::write_safetensors", path, encode_safetensors(file));
}

}  // namespace ssmrl::io
