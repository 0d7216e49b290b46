// Checkpoints of a model's named parameters: safetensors files whose metadata carries the model's
// configuration as JSON, and .npz export. Loading checks every name, shape and dtype (and the
// configuration) and applies nothing unless everything matches.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "ssmrl/io/npz.hpp"
#include "ssmrl/io/safetensors.hpp"
#include "ssmrl/io/named_tensors.hpp"
#include "ssmrl/nn.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"

namespace ssmrl::io {

inline constexpr const char* checkpoint_format = "ssmrl-checkpoint-1";

// ---- descriptions of models, for the metadata ----

inline const char* activation_name(nn::Activation a) {
  switch (a) {
    case nn::Activation::tanh: return "tanh";
    case nn::Activation::relu: return "relu";
    case nn::Activation::identity: break;
  }
  return "identity";
}

template <class S, class B>
nlohmann::ordered_json describe(const nn::DenseSsmCell<S, B>& c) {
  const auto& k = c.config();
  return {{"type", "DenseSsmCell"}, {"input", k.input}, {"state", k.state}, {"output", k.output},
          {"activation", activation_name(k.activation)}, {"readout_bias", k.readout_bias}};
}
template <class S, class B>
nlohmann::ordered_json describe(const nn::DiagSsmCell<S, B>& c) {
  const auto& k = c.config();
  return {{"type", "DiagSsmCell"}, {"input", k.input}, {"state", k.state}, {"output", k.output},
          {"activation", activation_name(k.activation)}, {"readout_bias", k.readout_bias}};
}
template <class S, class B>
nlohmann::ordered_json describe(const nn::MlpSsmCell<S, B>& c) {
  const auto& k = c.config();
  return {{"type", "MlpSsmCell"}, {"input", k.input}, {"state", k.state}, {"output", k.output}, {"hidden", k.hidden}};
}
template <class S, class B>
nlohmann::ordered_json describe(const nn::GruCell<S, B>& c) {
  return {{"type", "GruCell"}, {"input", c.config().input}, {"hidden", c.config().hidden}};
}
template <class S, class B>
nlohmann::ordered_json describe(const nn::LstmCell<S, B>& c) {
  return {{"type", "LstmCell"}, {"input", c.config().input}, {"hidden", c.config().hidden}};
}
template <class S, class B>
nlohmann::ordered_json describe(const nn::MlpCell<S, B>& c) {
  return {{"type", "MlpCell"}, {"input", c.config().input}, {"hidden", c.config().hidden},
          {"activation", activation_name(c.config().activation)}};
}
template <class S>
nlohmann::ordered_json describe(const nn::LayerNorm<S>& n) {
  return {{"type", "LayerNorm"}, {"features", n.features()}};
}
// What it is now: a LayerNorm, or none (its checkpoints are those of the policies with a fixed norm).
template <class S>
nlohmann::ordered_json describe(const nn::OptionalLayerNorm<S>& n) {
  if (n.enabled()) return {{"type", "LayerNorm"}, {"features", n.features()}};
  return {{"type", "none"}};
}
template <class S>
nlohmann::ordered_json describe(const nn::NoNorm<S>&) {
  return {{"type", "none"}};
}
template <class S>
nlohmann::ordered_json describe(const policy::CategoricalHead<S>& h) {
  return {{"type", "CategoricalHead"}, {"input", h.input_size()}, {"actions", h.num_actions()}};
}
template <class S, policy::GaussianStd kind>
nlohmann::ordered_json describe(const policy::GaussianHead<S, kind>& h) {
  return {{"type", "GaussianHead"},
          {"input", h.input_size()},
          {"actions", h.action_size()},
          {"log_std", kind == policy::GaussianStd::learned ? "learned" : "state_dependent"},
          {"squash", h.config().squash}};
}
template <class S>
nlohmann::ordered_json describe(const policy::ValueHead<S>&) {
  return {{"type", "ValueHead"}};
}
template <class S>
nlohmann::ordered_json describe(const policy::NoValueHead<S>&) {
  return {{"type", "none"}};
}
template <class C, class H, class N, class V>
nlohmann::ordered_json describe(const policy::RecurrentPolicy<C, H, N, V>& p) {
  return {{"type", "RecurrentPolicy"},
          {"scalar", dtype_name(dtype_of<typename C::scalar_type>())},
          {"cell", describe(p.cell())},
          {"norm", describe(p.norm())},
          {"head", describe(p.head())},
          {"value", describe(p.value_head())}};
}

// ---- checkpoints ----

//! The checkpoint file of `model` in memory: every parameter (but those with no elements, such as
//! a switched-off norm's), its description in the metadata ("format", "model") and any extra metadata.
template <class Model>
SafetensorsFile checkpoint_file(const Model& model, const std::map<std::string, std::string>& extra_metadata = {}) {
  using Scalar = typename Model::scalar_type;
  SafetensorsFile file;
  file.metadata = extra_metadata;
  file.metadata["format"] = checkpoint_format;
  file.metadata["model"] = describe(model).dump();
  nn::for_each_parameter(model.params(), [&](std::string_view name, const ad::Matrix<Scalar>& m) {
    if (m.size() > 0) file.tensors.push_back(to_tensor(std::string(name), m));
  });
  return file;
}

//! Saves every parameter of `model` (anything with params() and describe()) with its description
//! in the metadata ("format", "model") and any extra metadata; written atomically.
template <class Model>
void save_checkpoint(const std::filesystem::path& path, const Model& model,
                     const std::map<std::string, std::string>& extra_metadata = {}) {
  write_safetensors(path, checkpoint_file(model, extra_metadata));
}

struct LoadOptions {
  //! Require the file's "model" description to equal the model's, when the file has one.
  bool check_model = true;
  //! Tensors named PREFIX.* for these prefixes belong to something else (an experience buffer, say).
  std::vector<std::string> other_prefixes{};
  //! Refuse a parameter holding NaN or an infinity (a diverged run's checkpoint).
  bool require_finite = true;
};

//! Loads parameters saved by save_checkpoint() (or any safetensors file with the same names) into
//! `model`. Nothing is applied unless every parameter is present with its shape and dtype, no
//! tensor is left over, and the descriptions agree. Returns the file's metadata.
template <class Model>
std::map<std::string, std::string> load_checkpoint(const SafetensorsFile& file, const std::string& origin, Model& model,
                                                   LoadOptions options = {}) {
  using Scalar = typename Model::scalar_type;
  const char* fn = "io::load_checkpoint";
  if (options.check_model && file.metadata.count("model") == 1) {
    const auto expected = describe(model).dump();
    SSMRL_REQUIRE(file.metadata.at("model") == expected, fn, ": '", origin, "' holds a different model: ",
                  file.metadata.at("model"), ", this one is ", expected);
  }
  std::map<std::string, const Tensor*> by_name;
  for (const auto& t : file.tensors) by_name[t.name] = &t;
  auto params = model.params();
  std::set<std::string> used;
  nn::for_each_parameter(params, [&](std::string_view view, ad::Matrix<Scalar>& m) {
    const std::string name(view);
    const auto it = by_name.find(name);
    if (it == by_name.end() && m.size() == 0) return;  // nothing to read (checkpoint_file leaves it out)
    SSMRL_REQUIRE(it != by_name.end(), fn, ": '", origin, "' has no tensor ", name);
    const Tensor& t = *it->second;
    SSMRL_REQUIRE(t.dtype == dtype_of<Scalar>(), fn, ": '", origin, "': tensor ", name, " is ", dtype_name(t.dtype),
                  ", the model is ", dtype_name(dtype_of<Scalar>()));
    const bool as_vector = m.cols() == 1 && t.shape.size() == 1 && t.shape[0] == m.rows();
    const bool as_matrix = t.shape.size() == 2 && t.shape[0] == m.rows() && t.shape[1] == m.cols();
    SSMRL_REQUIRE(as_vector || as_matrix, fn, ": '", origin, "': tensor ", name, " has shape ", shape_text(t.shape),
                  ", the model's is [", m.rows(), ", ", m.cols(), "]");
    SSMRL_REQUIRE(t.bytes.size() == static_cast<std::size_t>(m.size()) * sizeof(Scalar), fn, ": '", origin,
                  "': tensor ", name, " has shape ", shape_text(t.shape), " but carries ", t.bytes.size(),
                  " bytes, not the ", static_cast<std::size_t>(m.size()) * sizeof(Scalar), " that shape needs");
    m = to_matrix<Scalar>(t, m.rows(), m.cols());
    SSMRL_REQUIRE(!options.require_finite || m.allFinite(), fn, ": '", origin, "': tensor ", name,
                  " holds NaN or infinite values");
    used.insert(name);
  });
  for (const auto& t : file.tensors) {
    bool other = false;
    for (const auto& prefix : options.other_prefixes) other = other || t.name.rfind(prefix + ".", 0) == 0;
    SSMRL_REQUIRE(other || used.count(t.name) == 1, fn, ": '", origin, "' has tensor ", t.name, ", which the model lacks");
  }
  model.set_params(std::move(params));
  return file.metadata;
}
template <class Model>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, Model& model,
                                                   LoadOptions options = {}) {
  return load_checkpoint(read_safetensors(path), path.string(), model, std::move(options));
}

//! Every parameter as NAME.npy in an .npz archive (numpy.load reads it), row-major, column vectors 1-D.
template <class Model>
void export_npz(const std::filesystem::path& path, const Model& model) {
  using Scalar = typename Model::scalar_type;
  std::vector<NpyArray<Scalar>> arrays;
  nn::for_each_parameter(model.params(), [&](std::string_view name, const ad::Matrix<Scalar>& m) {
    NpyArray<Scalar> a;
    a.name = std::string(name);
    a.shape = m.cols() == 1 ? std::vector<std::size_t>{std::size_t(m.rows())}
                            : std::vector<std::size_t>{std::size_t(m.rows()), std::size_t(m.cols())};
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = m;
    a.values.assign(row_major.data(), row_major.data() + row_major.size());
    arrays.push_back(std::move(a));
  });
  write_npz(path, arrays);
}

}  // namespace ssmrl::io
