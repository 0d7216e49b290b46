// Communicators: how the processes of one job (MPI ranks, say) share the parts of a sum. Work is
// split into contiguous ranges of parts by rank; each rank computes its parts, an in-place allgather
// gives every rank all parts in order, and every rank sums them in that order, so the result is the
// single process's, bit for bit, whatever the number of ranks. SingleProcess is the default.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::dist {

template <class C>
inline constexpr bool enable_communicator = false;

//! A communicator of a fixed group of processes:
//!  - `enable_communicator<C>` is true;
//!  - `rank()` (0 to size() - 1) and `size()` (at least 1);
//!  - `allgather(data, counts)` for float and double: `data` holds size() blocks in rank order,
//!    block r counts[r] elements long; on return every rank holds every block (its own block is
//!    read in place, the others are overwritten); every rank calls it with the same counts;
//!  - `broadcast(data, root)` for float and double, and `broadcast(text, root)`: root's values to all.
template <class C>
concept Communicator = enable_communicator<C> && requires(const C& c, std::span<double> d, std::span<float> f,
                                                           std::span<const int> counts, std::string& text) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.allgather(d, counts);
  c.allgather(f, counts);
  c.broadcast(d, 0);
  c.broadcast(f, 0);
  c.broadcast(text, 0);
};

//! The one process there is: every operation leaves its data as it is.
struct SingleProcess {
  [[nodiscard]] static constexpr int rank() noexcept { return 0; }
  [[nodiscard]] static constexpr int size() noexcept { return 1; }
  template <class T>
  void allgather(std::span<T>, std::span<const int>) const noexcept {}
  template <class T>
  void broadcast(std::span<T>, int) const noexcept {}
  void broadcast(std::string&, int) const noexcept {}
};
template <>
inline constexpr bool enable_communicator<SingleProcess> = true;

//! A half-open range of part indices.
struct PartRange {
  std::size_t begin = 0;
  std::size_t end = 0;
  [[nodiscard]] std::size_t size() const noexcept { return end - begin; }
  [[nodiscard]] bool contains(std::size_t i) const noexcept { return i >= begin && i < end; }
};

//! The parts of `rank` among `size` ranks: contiguous, in rank order, sizes differing by at most one.
[[nodiscard]] inline PartRange share(std::size_t parts, int rank, int size) {
  SSMRL_REQUIRE(size >= 1 && rank >= 0 && rank < size, "dist::share: rank ", rank, " of ", size, " ranks");
  const auto r = static_cast<std::size_t>(rank);
  const auto n = static_cast<std::size_t>(size);
  return {parts * r / n, parts * (r + 1) / n};
}

template <Communicator C>
[[nodiscard]] PartRange share(std::size_t parts, const C& comm) {
  return share(parts, comm.rank(), comm.size());
}

//! The rank whose share() of `parts` parts among `size` ranks holds part `part`.
[[nodiscard]] inline int owner_of(std::size_t part, std::size_t parts, int size) {
  SSMRL_REQUIRE(part < parts && size >= 1, "dist::owner_of: part ", part, " of ", parts, " parts among ", size,
                " ranks");
  // share() gives rank r the parts [parts * r / size, parts * (r + 1) / size).
  const auto n = static_cast<std::size_t>(size);
  return static_cast<int>(((part + 1) * n - 1) / parts);
}

//! 52 bits of a hash of the values' bytes: exact in a double, so that ranks compare what they hold
//! with one gather of doubles.
template <class T>
[[nodiscard]] double value_hash(std::span<const T> values) {
  const std::string_view bytes(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  return static_cast<double>(std::hash<std::string_view>{}(bytes) & ((std::uint64_t{1} << 52) - 1));
}

//! Gathers `parts` parts of `stride` elements each, laid out in order in `all` (parts * stride
//! elements), shared among the ranks by share(): on return every rank holds every part.
template <Communicator C, class T>
void allgather_parts(const C& comm, std::span<T> all, std::size_t parts, std::size_t stride) {
  SSMRL_REQUIRE(all.size() == parts * stride, "dist::allgather_parts: ", all.size(), " elements for ", parts,
                " parts of ", stride);
  if (comm.size() == 1) return;
  std::vector<int> counts(static_cast<std::size_t>(comm.size()));
  for (int r = 0; r < comm.size(); ++r) {
    const auto block = share(parts, r, comm.size()).size() * stride;
    SSMRL_REQUIRE(block <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "dist::allgather_parts: rank ",
                  r, "'s block of ", block, " elements is more than one message can carry");
    counts[static_cast<std::size_t>(r)] = static_cast<int>(block);
  }
  comm.allgather(all, std::span<const int>(counts));
}

//! The largest of every rank's `value` (the same on all ranks).
template <Communicator C>
[[nodiscard]] double max_over_ranks(const C& comm, double value) {
  if (comm.size() == 1) return value;
  std::vector<double> all(static_cast<std::size_t>(comm.size()));
  all[static_cast<std::size_t>(comm.rank())] = value;
  allgather_parts(comm, std::span<double>(all), all.size(), 1);
  double out = all[0];
  for (const double v : all) out = v > out ? v : out;
  return out;
}

}  // namespace ssmrl::dist
