// Named parameter structs: a model's parameters are a struct template over the field type
// (matrices to hold them, tape variables to differentiate them), with names and nesting.
//
// A parameter struct `P<T>` provides
//   static constexpr std::array<std::string_view, N> names;   // one per field
//   auto fields();  auto fields() const;                       // std::tie of the fields
//   template <class U> using rebind = P<U>;
// Fields are T or nested parameter structs; names of nested fields are joined with '.'.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::nn {

namespace detail {
template <class P>
concept ParameterStruct = requires(P& p) {
  P::names;
  p.fields();
};

template <class T>
inline constexpr bool is_vector = false;
template <class T, class A>
inline constexpr bool is_vector<std::vector<T, A>> = true;

template <class P, class F>
void for_each_field(P& p, F&& f, std::string_view prefix);

template <class Field, class F>
void visit_field(Field& field, std::string_view name, F& f, std::string_view prefix) {
  std::string full(prefix);
  if (!full.empty()) full += '.';
  full += name;
  if constexpr (ParameterStruct<std::remove_const_t<Field>>) {
    for_each_field(field, f, full);
  } else if constexpr (is_vector<std::remove_const_t<Field>>) {
    for (std::size_t i = 0; i < field.size(); ++i) visit_field(field[i], std::to_string(i), f, full);
  } else {
    f(std::string_view(full), field);
  }
}

template <class P, class F>
void for_each_field(P& p, F&& f, std::string_view prefix) {
  using Plain = std::remove_const_t<P>;
  auto fields = p.fields();
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (visit_field(std::get<I>(fields), Plain::names[I], f, prefix), ...);
  }(std::make_index_sequence<std::tuple_size_v<decltype(fields)>>{});
}
}  // namespace detail

//! Calls f(name, field) for every leaf field in declaration order, nested names joined by '.'.
template <class P, class F>
void for_each_parameter(P& params, F&& f, std::string_view prefix = {}) {
  detail::for_each_field(params, f, prefix);
}

//! A parameter struct of another field type: each leaf becomes f(leaf).
template <class U, class P, class F>
auto transform_parameters(const P& params, F&& f) {
  using Out = typename P::template rebind<U>;
  auto fields = params.fields();
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto convert = [&](const auto& field) {
      using Field = std::remove_cvref_t<decltype(field)>;
      if constexpr (detail::ParameterStruct<Field>) {
        return transform_parameters<U>(field, f);
      } else if constexpr (detail::is_vector<Field>) {
        using Element = decltype(transform_parameters<U>(field[0], f));
        std::vector<Element> out;
        out.reserve(field.size());
        for (const auto& e : field) out.push_back(transform_parameters<U>(e, f));
        return out;
      } else {
        return static_cast<U>(f(field));
      }
    };
    (void)convert;  // unused for structs without fields
    return Out{convert(std::get<I>(fields))...};
  }(std::make_index_sequence<std::tuple_size_v<decltype(fields)>>{});
}

//! Every parameter as a variable of `tape`.
template <class Scalar, class P>
auto on_tape(ad::Tape<Scalar>& tape, const P& params) {
  return transform_parameters<ad::Var<Scalar>>(params, [&](const ad::Matrix<Scalar>& m) { return tape.variable(m); });
}

//! The values of variables, as matrices (for instance adapted parameters after MAML's inner loop).
template <class Scalar, class P>
auto values_of(const P& vars) {
  return transform_parameters<ad::Matrix<Scalar>>(vars, [](const ad::Var<Scalar>& v) { return ad::Matrix<Scalar>(v.value()); });
}

//! The gradients of variables after a backward pass, as matrices.
template <class Scalar, class P>
auto gradients_of(const P& vars) {
  return transform_parameters<ad::Matrix<Scalar>>(vars, [](const ad::Var<Scalar>& v) { return ad::Matrix<Scalar>(v.grad()); });
}

//! Leaves in declaration order (variables for grad(), matrices for optimisers).
template <class T, class P>
std::vector<T> to_list(const P& params) {
  std::vector<T> out;
  for_each_parameter(params, [&](std::string_view, const T& v) { out.push_back(v); });
  return out;
}
//! A parameter struct shaped like `like`, filled from leaves in declaration order.
template <class T, class P>
auto from_list(const P& like, const std::vector<T>& list) {
  std::size_t i = 0;
  std::size_t count = 0;
  for_each_parameter(like, [&](std::string_view, const auto&) { ++count; });
  SSMRL_REQUIRE(list.size() == count, "nn::from_list: ", list.size(), " values for ", count, " parameters");
  return transform_parameters<T>(like, [&](const auto&) { return list[i++]; });
}

//! Names in declaration order.
template <class P>
std::vector<std::string> parameter_names(const P& params) {
  std::vector<std::string> out;
  for_each_parameter(params, [&](std::string_view name, const auto&) { out.emplace_back(name); });
  return out;
}

//! Glob match with '*' (any run of characters, '.' included) and '?' (one character).
inline bool glob_match(std::string_view pattern, std::string_view name) {
  std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

//! A named reference to one parameter matrix of a model.
template <class Scalar>
struct NamedParameter {
  std::string name;
  ad::Matrix<Scalar>* value;
};

//! The parameters whose names match any of `include` (all when empty) and none of `exclude`.
template <class Scalar, class P>
std::vector<NamedParameter<Scalar>> select_parameters(P& params, const std::vector<std::string>& include = {},
                                                      const std::vector<std::string>& exclude = {}) {
  std::vector<NamedParameter<Scalar>> out;
  for_each_parameter(params, [&](std::string_view name, ad::Matrix<Scalar>& m) {
    bool keep = include.empty();
    for (const auto& pattern : include) keep = keep || glob_match(pattern, name);
    for (const auto& pattern : exclude) keep = keep && !glob_match(pattern, name);
    if (keep) out.push_back({std::string(name), &m});
  });
  return out;
}

//! Total number of scalars.
template <class P>
ad::Index parameter_count(const P& params) {
  ad::Index total = 0;
  for_each_parameter(params, [&](std::string_view, const auto& m) { total += m.size(); });
  return total;
}

//! All parameters in one vector, in declaration order, each column-major.
template <class Scalar, class P>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> flatten(const P& params) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(parameter_count(params));
  ad::Index offset = 0;
  for_each_parameter(params, [&](std::string_view, const ad::Matrix<Scalar>& m) {
    out.segment(offset, m.size()) = m.reshaped();
    offset += m.size();
  });
  return out;
}

//! The inverse of flatten(); a vector of the wrong length changes nothing.
template <class Scalar, class P>
void unflatten(P& params, const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& flat) {
  const ad::Index count = parameter_count(params);
  SSMRL_REQUIRE(flat.size() == count, "nn::unflatten: vector has ", flat.size(), " entries, the parameters ", count);
  ad::Index offset = 0;
  for_each_parameter(params, [&](std::string_view, ad::Matrix<Scalar>& m) {
    m.reshaped() = flat.segment(offset, m.size());
    offset += m.size();
  });
}

}  // namespace ssmrl::nn
