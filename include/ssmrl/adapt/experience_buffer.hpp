// A fixed-capacity buffer of experience for replay during adaptation: segments of `segment_length`
// consecutive steps of one environment (1 for transitions; longer, with the recurrent state at their
// start, for recurrent policies), kept as a ring (the newest replace the oldest) or as a reservoir
// (a uniform sample of everything added), sampled uniformly, seeded.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ssmrl/io/tensor.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::adapt {

enum class BufferMode { ring, reservoir };

struct ExperienceBufferOptions {
  std::size_t capacity = 1024;      //!< segments
  ad::Index segment_length = 16;    //!< steps per segment
  BufferMode mode = BufferMode::ring;
  std::uint64_t seed = 1;
};

template <class Scalar>
class ExperienceBuffer {
public:
  //! Sizes are fixed here: observation, action and recurrent-state sizes.
  ExperienceBuffer(ad::Index observation_size, ad::Index action_size, ad::Index state_size, ExperienceBufferOptions options = {})
      : options_(options), obs_size_(observation_size), act_size_(action_size), state_size_(state_size), rng_(options.seed) {
    SSMRL_REQUIRE(options.capacity > 0 && options.segment_length > 0 && observation_size > 0 && action_size > 0 &&
                      state_size >= 0,
                  "adapt::ExperienceBuffer: capacity ", options.capacity, ", segment_length ", options.segment_length,
                  ", observation size ", observation_size, ", action size ", action_size,
                  " must be positive and state size ", state_size, " not negative");
    const auto cols = static_cast<ad::Index>(options.capacity) * options.segment_length;
    observations_.setZero(obs_size_, cols);
    actions_.setZero(act_size_, cols);
    rewards_.setZero(1, cols);
    terminated_.setZero(1, cols);
    truncated_.setZero(1, cols);
    log_probs_.setZero(1, cols);
    keep_.setOnes(1, cols);
    states_.setZero(state_size_, static_cast<ad::Index>(options.capacity));
  }

  //! Bytes of storage: capacity x (segment_length x (observation + action + 5) + state) scalars,
  //! and capacity x segment_length x action more once it holds samples apart from actions (a
  //! squashing policy's, see rl::TrajectoryBatch::samples).
  [[nodiscard]] std::size_t bytes() const noexcept {
    return sizeof(Scalar) * static_cast<std::size_t>(observations_.size() + actions_.size() + samples_.size() +
                                                     5 * rewards_.size() + states_.size());
  }
  //! Whether the buffer keeps samples apart from actions (set by the first add() or read_from()).
  [[nodiscard]] bool holds_samples() const noexcept { return samples_.size() > 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return options_.capacity; }
  [[nodiscard]] std::size_t segments_seen() const noexcept { return seen_; }
  [[nodiscard]] const ExperienceBufferOptions& options() const noexcept { return options_; }

  //! Adds every whole segment of every environment of `t` (steps beyond the last whole segment are
  //! dropped). A segment's recurrent state is the one at its start where the batch knows it (the
  //! first segment of each environment), else zero, as after a reset.
  void add(const rl::TrajectoryBatch<Scalar>& t) {
    SSMRL_REQUIRE(t.observations.rows() == obs_size_ && t.actions.rows() == act_size_, "adapt::ExperienceBuffer::add: ",
                  "trajectories of ", t.observations.rows(), " observations and ", t.actions.rows(),
                  " actions, the buffer holds ", obs_size_, " and ", act_size_);
    // Segments keep no McRecord: replayed, they would be evaluated as noop, not as the steps taken.
    SSMRL_REQUIRE(t.mc.empty(), "adapt::ExperienceBuffer::add: the trajectories record MC actions (",
                  t.mc.choices.cols(), " MC choices), which the buffer's segments cannot keep");
    const bool with_samples = t.samples.size() > 0;
    SSMRL_REQUIRE(size_ == 0 || with_samples == holds_samples(), "adapt::ExperienceBuffer::add: the trajectories ",
                  with_samples ? "record" : "do not record", " samples apart from their actions and the buffer's ",
                  holds_samples() ? "do" : "do not");
    if (with_samples && !holds_samples()) samples_.setZero(act_size_, actions_.cols());
    if (!with_samples && size_ == 0) samples_.resize(0, 0);
    const ad::Index length = options_.segment_length;
    for (ad::Index i = 0; i < t.envs; ++i) {
      for (ad::Index s = 0; s + length <= t.steps; s += length) {
        ++seen_;
        std::size_t slot = 0;
        if (size_ < options_.capacity) {
          slot = size_++;
        } else if (options_.mode == BufferMode::ring) {
          slot = next_;
        } else {
          std::uniform_int_distribution<std::size_t> pick(0, seen_ - 1);
          slot = pick(rng_);
          if (slot >= options_.capacity) continue;
        }
        next_ = (slot + 1) % options_.capacity;
        for (ad::Index k = 0; k < length; ++k) {
          const auto from = (s + k) * t.envs + i;
          const auto to = static_cast<ad::Index>(slot) * length + k;
          observations_.col(to) = t.observations.col(from);
          actions_.col(to) = t.actions.col(from);
          if (with_samples) samples_.col(to) = t.samples.col(from);
          rewards_(0, to) = t.rewards(0, from);
          terminated_(0, to) = t.terminated(0, from);
          truncated_(0, to) = t.truncated(0, from);
          log_probs_(0, to) = t.log_probs.size() ? t.log_probs(0, from) : Scalar(0);
          keep_(0, to) = k == 0 ? Scalar(1) : t.keep(0, from);
        }
        if (state_size_ > 0) {
          states_.col(static_cast<ad::Index>(slot)) =
              s == 0 && t.initial_state.rows() == state_size_ ? ad::Matrix<Scalar>(t.initial_state.col(i))
                                                              : ad::Matrix<Scalar>::Zero(state_size_, 1);
        }
      }
    }
  }

  //! `count` segments drawn uniformly with replacement, as a batch of `count` environments.
  rl::TrajectoryBatch<Scalar> sample(ad::Index count) {
    SSMRL_REQUIRE(count > 0 && size_ > 0, "adapt::ExperienceBuffer::sample: count ", count,
                  " must be positive and the buffer not empty (size ", size_, ")");
    const ad::Index length = options_.segment_length;
    auto out = rl::sized_trajectory_batch<Scalar>(obs_size_, act_size_, count, length);
    out.initial_state.setZero(state_size_, count);
    if (holds_samples()) out.samples.resize(act_size_, out.columns());
    std::uniform_int_distribution<std::size_t> pick(0, size_ - 1);
    for (ad::Index j = 0; j < count; ++j) {
      const auto slot = static_cast<ad::Index>(pick(rng_));
      for (ad::Index k = 0; k < length; ++k) {
        const auto from = slot * length + k;
        const auto to = k * count + j;
        out.observations.col(to) = observations_.col(from);
        out.actions.col(to) = actions_.col(from);
        if (holds_samples()) out.samples.col(to) = samples_.col(from);
        out.rewards(0, to) = rewards_(0, from);
        out.terminated(0, to) = terminated_(0, from);
        // A segment ends where the stored data ends: its last step counts as truncated.
        out.truncated(0, to) = k + 1 == length && terminated_(0, from) == 0 ? Scalar(1) : truncated_(0, from);
        out.log_probs(0, to) = log_probs_(0, from);
        out.keep(0, to) = keep_(0, from);
      }
      if (state_size_ > 0) out.initial_state.col(j) = states_.col(slot);
    }
    return out;
  }

  //! The buffer as tensors named PREFIX.* and metadata ssmrl.buffer.*, for a checkpoint file.
  void write_into(io::SafetensorsFile& file, const std::string& prefix = "experience") const {
    const auto n = static_cast<ad::Index>(size_) * options_.segment_length;
    auto add = [&](const std::string& name, const ad::Matrix<Scalar>& m) {
      file.tensors.push_back(io::to_tensor(prefix + "." + name, ad::Matrix<Scalar>(m)));
    };
    add("observations", observations_.leftCols(n));
    add("actions", actions_.leftCols(n));
    if (holds_samples()) add("samples", samples_.leftCols(n));
    add("rewards", rewards_.leftCols(n));
    add("terminated", terminated_.leftCols(n));
    add("truncated", truncated_.leftCols(n));
    add("log_probs", log_probs_.leftCols(n));
    add("keep", keep_.leftCols(n));
    add("states", states_.leftCols(static_cast<ad::Index>(size_)));
    file.metadata["ssmrl.buffer.size"] = std::to_string(size_);
    file.metadata["ssmrl.buffer.seen"] = std::to_string(seen_);
    file.metadata["ssmrl.buffer.next"] = std::to_string(next_);
    file.metadata["ssmrl.buffer.capacity"] = std::to_string(options_.capacity);
    file.metadata["ssmrl.buffer.segment_length"] = std::to_string(options_.segment_length);
  }

  //! Restores what write_into() stored; nothing changes unless every tensor is there with its shape.
  void read_from(const io::SafetensorsFile& file, const std::string& origin, const std::string& prefix = "experience") {
    const char* fn = "adapt::ExperienceBuffer::read_from";
    auto meta = [&](const std::string& key) {
      const auto it = file.metadata.find("ssmrl.buffer." + key);
      SSMRL_REQUIRE(it != file.metadata.end(), fn, ": '", origin, "' has no ssmrl.buffer.", key, " metadata");
      std::uint64_t value = 0;
      const auto& text = it->second;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      SSMRL_REQUIRE(error == std::errc{} && end == text.data() + text.size() && value <= (std::uint64_t(1) << 62), fn,
                    ": '", origin, "': metadata ssmrl.buffer.", key, " is '", text, "', not a count");
      return value;
    };
    SSMRL_REQUIRE(meta("capacity") == options_.capacity && static_cast<ad::Index>(meta("segment_length")) == options_.segment_length,
                  fn, ": '", origin, "' holds a buffer of capacity ", meta("capacity"), " and segments of ",
                  meta("segment_length"), ", this one has ", options_.capacity, " and ", options_.segment_length);
    const auto size = static_cast<std::size_t>(meta("size"));
    const auto seen = static_cast<std::size_t>(meta("seen"));
    const auto next = static_cast<std::size_t>(meta("next"));
    SSMRL_REQUIRE(size <= options_.capacity && seen >= size && next < options_.capacity, fn, ": '", origin, "': size ",
                  size, ", segments seen ", seen, " and next slot ", next, " do not fit a buffer of capacity ",
                  options_.capacity, " (size <= capacity, seen >= size, next < capacity)");
    const auto n = static_cast<ad::Index>(size) * options_.segment_length;
    auto has = [&](const std::string& name) {
      return std::any_of(file.tensors.begin(), file.tensors.end(),
                         [&](const io::Tensor& t) { return t.name == prefix + "." + name; });
    };
    auto find = [&](const std::string& name, ad::Index rows, ad::Index cols) {
      for (const auto& t : file.tensors) {
        if (t.name != prefix + "." + name) continue;
        const bool vector = cols == 1 && t.shape.size() == 1 && t.shape[0] == rows;
        SSMRL_REQUIRE(t.dtype == io::dtype_of<Scalar>() &&
                          (vector || (t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols)),
                      fn, ": '", origin, "': tensor ", t.name, " has shape ", io::shape_text(t.shape), ", expected [",
                      rows, ", ", cols, "]");
        auto m = io::to_matrix<Scalar>(t, rows, cols);
        SSMRL_REQUIRE(m.allFinite(), fn, ": '", origin, "': tensor ", t.name, " holds NaN or infinite values");
        return m;
      }
      SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(fn, ": '", origin, "' has no tensor ", prefix, ".", name));
    };
    // Everything is read before anything is assigned.
    auto obs = find("observations", obs_size_, n);
    auto act = find("actions", act_size_, n);
    const bool with_samples = has("samples");
    auto samples = with_samples ? find("samples", act_size_, n) : ad::Matrix<Scalar>();
    auto rew = find("rewards", 1, n);
    auto ter = find("terminated", 1, n);
    auto tru = find("truncated", 1, n);
    auto lp = find("log_probs", 1, n);
    auto keep = find("keep", 1, n);
    auto states = find("states", state_size_, static_cast<ad::Index>(size));
    for (const auto* flags : {&ter, &tru, &keep}) {
      SSMRL_REQUIRE((flags->array() == Scalar(0) || flags->array() == Scalar(1)).all(), fn, ": '", origin,
                    "': the terminated, truncated and keep flags must be 0 or 1");
    }
    observations_.leftCols(n) = obs;
    actions_.leftCols(n) = act;
    if (with_samples) {
      samples_.setZero(act_size_, actions_.cols());
      samples_.leftCols(n) = samples;
    } else {
      samples_.resize(0, 0);
    }
    rewards_.leftCols(n) = rew;
    terminated_.leftCols(n) = ter;
    truncated_.leftCols(n) = tru;
    log_probs_.leftCols(n) = lp;
    keep_.leftCols(n) = keep;
    states_.leftCols(static_cast<ad::Index>(size)) = states;
    size_ = size;
    seen_ = seen;
    next_ = next;
  }

private:
  ExperienceBufferOptions options_;
  ad::Index obs_size_;
  ad::Index act_size_;
  ad::Index state_size_;
  std::mt19937_64 rng_;
  ad::Matrix<Scalar> observations_, actions_, samples_, rewards_, terminated_, truncated_, log_probs_, keep_, states_;
  std::size_t size_ = 0;
  std::size_t seen_ = 0;
  std::size_t next_ = 0;
};

}  // namespace ssmrl::adapt
