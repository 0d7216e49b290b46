// A policy and its experience buffer in one checkpoint file: saved atomically, loaded both or neither.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "ssmrl/adapt/experience_buffer.hpp"
#include "ssmrl/io/checkpoint.hpp"

namespace ssmrl::adapt {

//! Saves `model`'s parameters and `buffer` in one checkpoint file, atomically.
template <class Model, class Scalar>
void save_checkpoint(const std::filesystem::path& path, const Model& model, const ExperienceBuffer<Scalar>& buffer,
                     const std::map<std::string, std::string>& extra_metadata = {}) {
  auto file = io::checkpoint_file(model, extra_metadata);
  buffer.write_into(file);
  io::write_safetensors(path, file);
}

//! Loads what save_checkpoint() with a buffer wrote: both or, on any error, neither.
template <class Model, class Scalar>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, Model& model,
                                                   ExperienceBuffer<Scalar>& buffer) {
  const auto file = io::read_safetensors(path);
  Model next_model = model;
  ExperienceBuffer<Scalar> next_buffer = buffer;
  auto metadata = io::load_checkpoint(file, path.string(), next_model, {.other_prefixes = {"experience"}});
  next_buffer.read_from(file, path.string());
  model = std::move(next_model);
  buffer = std::move(next_buffer);
  return metadata;
}

}  // namespace ssmrl::adapt
