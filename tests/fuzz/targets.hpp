// The fuzz targets: every reader of outside bytes, each as a function of the bytes that returns
// normally when the input is accepted or refused with ssmrl::InvalidArgument. Anything else (another
// exception, a crash, a sanitizer report) is a defect. libFuzzer drives them (fuzz_main.cpp, clang);
// the regression test runs every kept input through them with any compiler.
#pragma once

#include <ssmrl/adapt/experience_buffer.hpp>
#include <ssmrl/control/override_file.hpp>
#include <ssmrl/io/checkpoint.hpp>
#include <ssmrl/io/csv.hpp>
#include <ssmrl/io/npz.hpp>
#include <ssmrl/io/safetensors.hpp>
#include <ssmrl/policy/recurrent_policy.hpp>
#include <ssmrl/rsi/history.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace ssmrl::fuzz {

// The policy of the navigation2d configuration, whose shipped checkpoint seeds the corpus.
using NavigationPolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
inline NavigationPolicy navigation_policy() {
  return {nn::MlpCell<float>({.input = 2, .hidden = {64, 64}}), policy::GaussianHead<float>({.input = 64, .actions = 2}),
          {}, {}, 1};
}

// A small policy and buffer: the buffer seed is a checkpoint of exactly these (see regression_test.cpp).
using SmallPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::CategoricalHead<float>>;
inline SmallPolicy small_policy() {
  return {
      nn::DiagSsmCell<float>({.input = 4, .state = 3, .output = 4}), policy::CategoricalHead<float>(4, 2), {}, {}, 1};
}
inline constexpr ad::Index small_state_size = 3;
inline adapt::ExperienceBufferOptions small_buffer_options() {
  return {.capacity = 4, .segment_length = 3, .mode = adapt::BufferMode::ring, .seed = 1};
}

template <class Fn>
int refusing_invalid(Fn&& fn) {
  try {
    fn();
  } catch (const InvalidArgument&) {
    // refused with a message: the reader did its job
  }
  return 0;
}

//! Safetensors decoding; an accepted file re-encodes and decodes to the same tensors.
inline int fuzz_safetensors(const std::uint8_t* data, std::size_t size) {
  return refusing_invalid([&] {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    const auto file = io::decode_safetensors(bytes, "fuzz");
    const auto again = io::decode_safetensors(io::encode_safetensors(file), "fuzz-again");
    if (again.tensors.size() != file.tensors.size() || again.metadata != file.metadata) __builtin_trap();
    for (std::size_t i = 0; i < file.tensors.size(); ++i) {
      if (again.tensors[i].bytes != file.tensors[i].bytes || again.tensors[i].shape != file.tensors[i].shape) {
        __builtin_trap();
      }
    }
  });
}

//! Checkpoint loading into the navigation policy: all or nothing.
inline int fuzz_checkpoint(const std::uint8_t* data, std::size_t size) {
  static const NavigationPolicy initial = navigation_policy();
  NavigationPolicy policy = initial;
  try {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    const auto file = io::decode_safetensors(bytes, "fuzz");
    io::load_checkpoint(file, "fuzz", policy);
    if (!nn::flatten<float>(policy.params()).allFinite()) __builtin_trap();  // require_finite held
  } catch (const InvalidArgument&) {
    // a refused load changes nothing
    if (nn::flatten<float>(policy.params()) != nn::flatten<float>(initial.params())) __builtin_trap();
  }
  return 0;
}

//! A checkpoint with an experience buffer: both or neither.
inline int fuzz_experience_buffer(const std::uint8_t* data, std::size_t size) {
  static const SmallPolicy initial = small_policy();
  SmallPolicy policy = initial;
  adapt::ExperienceBuffer<float> buffer(4, 1, small_state_size, small_buffer_options());
  try {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    const auto file = io::decode_safetensors(bytes, "fuzz");
    buffer.read_from(file, "fuzz");
    if (buffer.size() > 0) (void)buffer.sample(2);  // what was read is usable
    io::load_checkpoint(file, "fuzz", policy, {.other_prefixes = {"experience"}});
  } catch (const InvalidArgument&) {
  }
  return 0;
}

//! The CSV reader, with the columns of the input's own header when it names valid ones (so that the
//! rows are explored), else with fixed ones.
inline int fuzz_csv(const std::uint8_t* data, std::size_t size) {
  return refusing_invalid([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> columns{"update", "env_steps", "mean_return_last_100"};
    const auto end = text.find('\n');
    if (end != std::string::npos && end > 0 && end < 256) {
      std::vector<std::string> header;
      std::size_t at = 0;
      for (;;) {
        const auto comma = text.find(',', at);
        const auto stop = comma == std::string::npos || comma > end ? end : comma;
        header.push_back(text.substr(at, stop - at));
        if (stop == end) break;
        at = stop + 1;
      }
      bool valid = true;
      for (const auto& c : header) valid = valid && !c.empty() && c.find_first_of(",\"\n") == std::string::npos;
      if (valid) columns = header;
    }
    const auto table = io::CsvTable::parse(text, "fuzz", columns);
    for (const auto& row : table.rows()) {
      if (row.size() != columns.size()) __builtin_trap();
    }
    // What was read writes back and reads again to the same numbers.
    const auto again = io::CsvTable::parse(table.text(), "fuzz-again", columns);
    if (again.rows().size() != table.rows().size()) __builtin_trap();
  });
}

//! The .npz reader; an accepted archive re-encodes and decodes to the same arrays.
inline int fuzz_npz(const std::uint8_t* data, std::size_t size) {
  return refusing_invalid([&] {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    const auto tensors = io::decode_npz(bytes, "fuzz");
    std::vector<std::pair<std::string, std::string>> entries;
    for (const auto& t : tensors) {
      std::vector<std::size_t> shape(t.shape.begin(), t.shape.end());
      if (t.dtype == io::DType::f32) {
        std::vector<float> values(t.bytes.size() / 4);
        if (!values.empty()) std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
        entries.emplace_back(t.name + ".npy", io::detail::npy_bytes(shape, values));
      } else {
        std::vector<double> values(t.bytes.size() / 8);
        if (!values.empty()) std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
        entries.emplace_back(t.name + ".npy", io::detail::npy_bytes(shape, values));
      }
    }
    const auto again = io::decode_npz(io::detail::zip_stored(entries), "fuzz-again");
    if (again.size() != tensors.size()) __builtin_trap();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (again[i].bytes != tensors[i].bytes || again[i].shape != tensors[i].shape || again[i].name != tensors[i].name) {
        __builtin_trap();
      }
    }
  });
}

//! The override file's parser against a schema with a knob of each type; an accepted file writes
//! back and parses to the same values, each a value of its knob.
inline int fuzz_override(const std::uint8_t* data, std::size_t size) {
  static const control::KnobSchema schema(
      {control::real_knob("lr", 3e-4, 1e-6, 1.0, true, ""), control::integer_knob("epochs", 4, 1, 50, ""),
       control::boolean_knob("decay", true, ""),
       control::choice_knob("fisher", "at_adapted", {"at_adapted", "through_adaptation"}, "")});
  return refusing_invalid([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto changes = control::parse_knob_changes(text, schema, "fuzz");
    if (!schema.problems(changes).empty()) __builtin_trap();
    if (control::parse_knob_changes(control::knob_changes_json(changes), schema, "fuzz-again") != changes)
      __builtin_trap();
  });
}

//! A self-improvement history file: opened, its cycles are 0, 1, ... in order, a torn last line
//! is cut off, and opening it again gives the same records with nothing torn.
inline int fuzz_history(const std::uint8_t* data, std::size_t size) {
  static const auto path =
      std::filesystem::temp_directory_path() / ("ssmrl_fuzz_history_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  return refusing_invalid([&] {
    const rsi::History history(path);
    for (std::size_t i = 0; i < history.records().size(); ++i) {
      if (history.records()[i]["cycle"].get<long>() != static_cast<long>(i)) __builtin_trap();
    }
    const rsi::History again(path);
    if (again.had_torn_line() || again.records() != history.records()) __builtin_trap();
  });
}

struct Target {
  const char* name;
  int (*run)(const std::uint8_t*, std::size_t);
};
inline const std::vector<Target>& targets() {
  static const std::vector<Target> all{{"safetensors", fuzz_safetensors},
                                       {"checkpoint", fuzz_checkpoint},
                                       {"experience_buffer", fuzz_experience_buffer},
                                       {"csv", fuzz_csv},
                                       {"npz", fuzz_npz},
                                       {"override", fuzz_override},
                                       {"history", fuzz_history}};
  return all;
}

}  // namespace ssmrl::fuzz
