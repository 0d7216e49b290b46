// The device tape: reverse-mode autodiff whose values and adjoints live in a device's memory.
//
// ad::Tape holds host Eigen matrices; a port of it would copy to and from the GPU at every
// operation. This tape allocates every value and adjoint from an arena of device memory that it
// keeps between passes (clear() forgets the nodes, not the memory), runs each operation's forward
// and backward as device programs (matrix products through the device's gemm, cuBLAS on a GPU;
// the rest lanes.hpp), and crosses to the host only where the caller asks: constants uploaded,
// a loss or gradients downloaded. Operations are those of the diagonal-SSM policies (policy.hpp);
// parameters are device buffers of the caller's, whose gradients backward() adds to.
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "ssmrl/core/error.hpp"
#include "ssmrl/cuda/lanes.hpp"

namespace ssmrl::cuda {

using Index = lanes::Index;

template <class S>
struct Tensor {
  Index rows = 0;
  Index cols = 0;
  S* value = nullptr;
  S* grad = nullptr;  //!< null where nothing on the tape needs the gradient
  [[nodiscard]] Index size() const noexcept { return rows * cols; }
  [[nodiscard]] bool requires_grad() const noexcept { return grad != nullptr; }
};

//! Device memory handed out in order and taken back all at once; blocks are kept for reuse.
template <class Device>
class Arena {
public:
  explicit Arena(Device& device, std::size_t block_bytes) : device_(&device), block_bytes_(block_bytes) {}
  Arena(Arena&& other) noexcept
      : device_(other.device_),
        block_bytes_(other.block_bytes_),
        blocks_(std::exchange(other.blocks_, {})),
        current_(std::exchange(other.current_, 0)),
        used_(std::exchange(other.used_, 0)) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena& operator=(Arena&&) = delete;
  ~Arena() {
    for (const auto& b : blocks_) device_->release(b.data);
  }

  [[nodiscard]] void* allocate(std::size_t bytes) {
    bytes = (bytes + 255) / 256 * 256;
    while (current_ < blocks_.size() && blocks_[current_].size - used_ < bytes) {
      ++current_;
      used_ = 0;
    }
    if (current_ == blocks_.size()) {
      const std::size_t size = bytes > block_bytes_ ? bytes : block_bytes_;
      blocks_.push_back({static_cast<char*>(device_->allocate_bytes(size)), size});
      used_ = 0;
    }
    void* p = blocks_[current_].data + used_;
    used_ += bytes;
    return p;
  }
  void reset() noexcept {
    current_ = 0;
    used_ = 0;
  }
  [[nodiscard]] std::size_t reserved_bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& b : blocks_) total += b.size;
    return total;
  }

private:
  struct Block {
    char* data;
    std::size_t size;
  };
  Device* device_;
  std::size_t block_bytes_;
  std::vector<Block> blocks_;
  std::size_t current_ = 0;
  std::size_t used_ = 0;
};

//! A device buffer of n numbers, owned: plain device memory (no managed memory), released on
//! destruction.
template <class S, class Device>
class Buffer {
public:
  Buffer() = default;
  Buffer(Device& device, Index n) : device_(&device), size_(n) {
    SSMRL_REQUIRE(n >= 0, "cuda::Buffer: size ", n, " is negative");
    data_ = static_cast<S*>(device.allocate_bytes(sizeof(S) * static_cast<std::size_t>(n > 0 ? n : 1)));
    device.zero(data_, static_cast<std::size_t>(n));
  }
  Buffer(Buffer&& other) noexcept
      : device_(std::exchange(other.device_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      device_ = std::exchange(other.device_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  [[nodiscard]] S* data() const noexcept { return data_; }
  [[nodiscard]] Index size() const noexcept { return size_; }
  //! Copies n = size() numbers from the host.
  void upload(const S* host, Index n) {
    SSMRL_REQUIRE(n == size_, "cuda::Buffer::upload: ", n, " numbers for a buffer of ", size_);
    device_->upload(data_, host, static_cast<std::size_t>(n));
  }
  void download(S* host, Index n) const {
    SSMRL_REQUIRE(n == size_, "cuda::Buffer::download: ", n, " numbers from a buffer of ", size_);
    device_->download(host, data_, static_cast<std::size_t>(n));
  }

private:
  void reset() noexcept {
    if (data_ != nullptr) device_->release(data_);
    data_ = nullptr;
    size_ = 0;
  }
  Device* device_ = nullptr;
  S* data_ = nullptr;
  Index size_ = 0;
};

template <class S, class Device>
class Tape {
public:
  using tensor_type = Tensor<S>;

  explicit Tape(Device& device, std::size_t block_bytes = std::size_t(64) << 20)
      : device_(&device), arena_(device, block_bytes) {}
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  [[nodiscard]] Device& device() noexcept { return *device_; }

  //! Forgets every node and reuses their memory; tensors from before are invalid.
  void clear() noexcept {
    backward_.clear();
    arena_.reset();
  }
  [[nodiscard]] std::size_t reserved_bytes() const noexcept { return arena_.reserved_bytes(); }

  //! Device scratch memory that lives until clear().
  template <class T = S>
  [[nodiscard]] T* scratch(Index n) {
    return static_cast<T*>(arena_.allocate(sizeof(T) * static_cast<std::size_t>(n > 0 ? n : 1)));
  }

  //! A leaf over the caller's device buffers; `grad` (or null) receives the gradient, added to.
  [[nodiscard]] Tensor<S> parameter(S* value, S* grad, Index rows, Index cols) { return {rows, cols, value, grad}; }

  //! A leaf holding a copy of host data (rows x cols, column-major), without gradient.
  [[nodiscard]] Tensor<S> constant(const S* host, Index rows, Index cols) {
    Tensor<S> t{rows, cols, scratch(rows * cols), nullptr};
    device_->upload(t.value, host, static_cast<std::size_t>(t.size()));
    return t;
  }

  //! a (m x k) times b (k x n).
  [[nodiscard]] Tensor<S> matmul(const Tensor<S>& a, const Tensor<S>& b) {
    SSMRL_REQUIRE(a.cols == b.rows, "cuda::Tape::matmul: a is ", a.rows, "x", a.cols, ", b is ", b.rows, "x", b.cols);
    auto out = make(a.rows, b.cols, a.requires_grad() || b.requires_grad());
    device_->gemm(false, false, a.rows, b.cols, a.cols, S(1), a.value, a.rows, b.value, b.rows, S(0), out.value,
                  out.rows);
    if (out.requires_grad()) {
      backward_.push_back([this, a, b, out] {
        if (a.requires_grad()) {
          device_->gemm(false, true, a.rows, a.cols, b.cols, S(1), out.grad, out.rows, b.value, b.rows, S(1), a.grad,
                        a.rows);
        }
        if (b.requires_grad()) {
          device_->gemm(true, false, b.rows, b.cols, a.rows, S(1), a.value, a.rows, out.grad, out.rows, S(1), b.grad,
                        b.rows);
        }
      });
    }
    return out;
  }

  [[nodiscard]] Tensor<S> add(const Tensor<S>& a, const Tensor<S>& b) {
    SSMRL_REQUIRE(a.rows == b.rows && a.cols == b.cols, "cuda::Tape::add: a is ", a.rows, "x", a.cols, ", b is ",
                  b.rows, "x", b.cols);
    auto out = make(a.rows, a.cols, a.requires_grad() || b.requires_grad());
    device_->copy(out.value, a.value, static_cast<std::size_t>(a.size()));
    device_->run(lanes::AddInto<S>{b.value, out.value}, a.size());
    if (out.requires_grad()) {
      backward_.push_back([this, a, b, out] {
        if (a.requires_grad()) device_->run(lanes::AddInto<S>{out.grad, a.grad}, a.size());
        if (b.requires_grad()) device_->run(lanes::AddInto<S>{out.grad, b.grad}, b.size());
      });
    }
    return out;
  }

  //! x + bias, the column bias (rows x 1) added to every column.
  [[nodiscard]] Tensor<S> add_bias(const Tensor<S>& x, const Tensor<S>& bias) {
    SSMRL_REQUIRE(bias.rows == x.rows && bias.cols == 1, "cuda::Tape::add_bias: bias is ", bias.rows, "x", bias.cols,
                  ", expected ", x.rows, "x1");
    auto out = make(x.rows, x.cols, x.requires_grad() || bias.requires_grad());
    device_->run(lanes::AddBias<S>{x.value, bias.value, out.value, x.rows}, x.size());
    if (out.requires_grad()) {
      backward_.push_back([this, x, bias, out] {
        if (x.requires_grad()) device_->run(lanes::AddInto<S>{out.grad, x.grad}, x.size());
        if (bias.requires_grad())
          row_sum(lanes::MatrixTerm<S>{out.grad, out.rows}, out.rows, out.cols, bias.grad, S(1), nullptr, true);
      });
    }
    return out;
  }

  [[nodiscard]] Tensor<S> tanh(const Tensor<S>& x) {
    auto out = make(x.rows, x.cols, x.requires_grad());
    device_->run(lanes::Tanh<S>{x.value, out.value}, x.size());
    if (out.requires_grad()) {
      backward_.push_back([this, x, out] {
        device_->run(lanes::TanhBackward<S>{out.value, out.grad, x.grad}, x.size());
      });
    }
    return out;
  }

  //! The zero-order hold of the diagonal SSM: (abar (state x 1), bbar (state x input)).
  [[nodiscard]] std::pair<Tensor<S>, Tensor<S>> zoh(const Tensor<S>& log_a, const Tensor<S>& log_dt,
                                                    const Tensor<S>& B) {
    SSMRL_REQUIRE(log_a.cols == 1 && log_dt.rows == log_a.rows && log_dt.cols == 1 && B.rows == log_a.rows,
                  "cuda::Tape::zoh: log_a is ", log_a.rows, "x", log_a.cols, ", log_dt ", log_dt.rows, "x", log_dt.cols,
                  ", B ", B.rows, "x", B.cols, "; expected state x 1, state x 1, state x input");
    const bool grad = log_a.requires_grad() || log_dt.requires_grad() || B.requires_grad();
    SSMRL_REQUIRE(!grad || (log_a.requires_grad() && log_dt.requires_grad()),
                  "cuda::Tape::zoh: log_a and log_dt take gradients together");
    auto a_bar = make(log_a.rows, 1, grad);
    auto b_bar = make(B.rows, B.cols, grad);
    device_->run(lanes::ZohForward<S>{log_a.value, log_dt.value, B.value, a_bar.value, b_bar.value, B.rows, B.cols},
                 B.rows);
    if (grad) {
      backward_.push_back([this, log_a, log_dt, B, a_bar, b_bar] {
        device_->run(lanes::ZohBackward<S>{log_a.value, log_dt.value, B.value, a_bar.grad, b_bar.grad, log_a.grad,
                                           log_dt.grad, B.grad, B.rows, B.cols},
                     B.rows);
      });
    }
    return {a_bar, b_bar};
  }

  //! h_t = a * keep_t * h_{t-1} + u_t for each of `batch` sequences from h_{-1} = `initial` (state x
  //! batch; an empty tensor: zero), as a parallel associative scan; `keep` (device, 1 x cols, or null)
  //! is 0 where a sequence restarts.
  [[nodiscard]] Tensor<S> diag_scan(const Tensor<S>& a, const Tensor<S>& u, Index batch, const S* keep,
                                    const Tensor<S>& initial = {}) {
    SSMRL_REQUIRE(a.cols == 1 && a.rows == u.rows, "cuda::Tape::diag_scan: a is ", a.rows, "x", a.cols,
                  ", expected ", u.rows, "x1");
    SSMRL_REQUIRE(batch > 0 && u.cols > 0 && u.cols % batch == 0, "cuda::Tape::diag_scan: u has ", u.cols,
                  " columns, not a whole number of steps of batch ", batch);
    SSMRL_REQUIRE(initial.value == nullptr || (initial.rows == u.rows && initial.cols == batch),
                  "cuda::Tape::diag_scan: initial is ", initial.rows, "x", initial.cols, ", expected ", u.rows, "x",
                  batch);
    auto out = make(u.rows, u.cols, a.requires_grad() || u.requires_grad() || initial.requires_grad());
    scan(a.value, keep, u.value, out.value, u.rows, batch, u.cols / batch, false, initial.value);
    if (out.requires_grad()) {
      backward_.push_back([this, a, u, out, batch, keep, initial] {
        S* d_in = scratch(u.size());
        scan(a.value, keep, out.grad, d_in, u.rows, batch, u.cols / batch, true);
        if (u.requires_grad()) device_->run(lanes::AddInto<S>{d_in, u.grad}, u.size());
        if (initial.requires_grad()) {
          device_->run(lanes::InitialState<S>{a.value, keep, d_in, initial.grad, u.rows}, initial.size());
        }
        if (a.requires_grad()) {
          row_sum(lanes::ScanDecayTerm<S>{d_in, out.value, keep, u.rows, batch}, u.rows, u.cols, a.grad, S(1), nullptr,
                  true);
          if (initial.value != nullptr) {
            row_sum(lanes::InitialStateDecayTerm<S>{d_in, initial.value, keep, u.rows}, u.rows, batch, a.grad, S(1),
                    nullptr, true);
          }
        }
      });
    }
    return out;
  }

  //! -(1/N) sum_c w_c log N(actions_c; mean_c, exp(clamp(log_std))) (1 x 1).
  [[nodiscard]] Tensor<S> gaussian_policy_gradient_loss(const Tensor<S>& mean, const Tensor<S>& log_std,
                                                        const Tensor<S>& actions, const Tensor<S>& weights, S lo,
                                                        S hi) {
    SSMRL_REQUIRE(log_std.rows == mean.rows && log_std.cols == 1 && actions.rows == mean.rows &&
                      actions.cols == mean.cols && weights.rows == 1 && weights.cols == mean.cols,
                  "cuda::Tape::gaussian_policy_gradient_loss: mean ", mean.rows, "x", mean.cols, ", log_std ",
                  log_std.rows, "x", log_std.cols, ", actions ", actions.rows, "x", actions.cols, ", weights ",
                  weights.rows, "x", weights.cols);
    const lanes::GaussianLogProbTerm<S> term{mean.value, log_std.value, actions.value, weights.value, mean.rows, lo,
                                             hi};
    auto out = make(1, 1, mean.requires_grad() || log_std.requires_grad());
    const S inv_count = S(1) / static_cast<S>(mean.cols);
    row_sum(term, 1, mean.cols, out.value, -inv_count, nullptr, false);
    if (out.requires_grad()) {
      backward_.push_back([this, term, mean, log_std, out, inv_count] {
        if (mean.requires_grad()) {
          device_->run(lanes::GaussianMeanBackward<S>{term, out.grad, inv_count, mean.grad}, mean.size());
        }
        if (log_std.requires_grad()) {
          row_sum(lanes::GaussianLogStdTerm<S>{term}, mean.rows, mean.cols, log_std.grad, -inv_count, out.grad, true);
        }
      });
    }
    return out;
  }

  //! -(1/N) sum_c w_c log softmax(logits_c)[action_c] (1 x 1); actions hold class indices.
  [[nodiscard]] Tensor<S> categorical_policy_gradient_loss(const Tensor<S>& logits, const Tensor<S>& actions,
                                                           const Tensor<S>& weights) {
    SSMRL_REQUIRE(actions.rows == 1 && actions.cols == logits.cols && weights.rows == 1 && weights.cols == logits.cols,
                  "cuda::Tape::categorical_policy_gradient_loss: logits ", logits.rows, "x", logits.cols, ", actions ",
                  actions.rows, "x", actions.cols, ", weights ", weights.rows, "x", weights.cols);
    const lanes::CategoricalLogProbTerm<S> term{logits.value, actions.value, weights.value, logits.rows};
    auto out = make(1, 1, logits.requires_grad());
    const S inv_count = S(1) / static_cast<S>(logits.cols);
    row_sum(term, 1, logits.cols, out.value, -inv_count, nullptr, false);
    if (out.requires_grad()) {
      backward_.push_back([this, term, logits, out, inv_count] {
        device_->run(lanes::CategoricalBackward<S>{term, out.grad, inv_count, logits.grad}, logits.cols);
      });
    }
    return out;
  }

  //! Adds d loss / d leaf to every leaf's gradient buffer; the loss is 1 x 1.
  void backward(const Tensor<S>& loss) {
    SSMRL_REQUIRE(loss.rows == 1 && loss.cols == 1, "cuda::Tape::backward: the loss is ", loss.rows, "x", loss.cols,
                  ", expected 1x1");
    if (!loss.requires_grad()) return;
    const S one(1);
    device_->upload(loss.grad, &one, 1);
    for (auto it = backward_.rbegin(); it != backward_.rend(); ++it) (*it)();
  }

  //! The value of a 1 x 1 tensor, on the host (waits for the device).
  [[nodiscard]] S item(const Tensor<S>& t) {
    SSMRL_REQUIRE(t.size() == 1, "cuda::Tape::item: the tensor is ", t.rows, "x", t.cols);
    S v{};
    device_->download(&v, t.value, 1);
    return v;
  }

  // ---- Device programs for the callers that run without recording (policy steps) -----------------
  //! out = scan of in (see diag_scan) from `initial` (forward; null: zero), or its adjoint when `reverse`.
  void scan(const S* a, const S* keep, const S* in, S* out, Index rows, Index batch, Index steps, bool reverse,
            const S* initial = nullptr) {
    const Index chunks = steps >= 64 * 16 ? 64 : (steps + 15) / 16;
    auto* carry = scratch<lanes::Link<S>>(rows * batch * chunks);
    const lanes::ScanLanes<S> s{
        a, keep, in, out, reverse ? nullptr : initial, rows, batch, steps, reverse, chunks, carry};
    device_->run(lanes::ScanFold<S>{s}, rows * batch * chunks);
    device_->run(lanes::ScanCarry<S>{s}, rows * batch);
    device_->run(lanes::ScanWrite<S>{s}, rows * batch * chunks);
  }

  //! out[r] (+)= scale * factor * sum_c term(r, c), in two passes.
  template <class Term>
  void row_sum(const Term& term, Index rows, Index cols, S* out, S scale, const S* factor, bool accumulate) {
    const Index parts = cols >= 64 * 32 ? 64 : (cols + 31) / 32;
    S* partial = scratch(rows * parts);
    device_->run(lanes::RowSumPartial<S, Term>{term, rows, cols, parts, partial}, rows * parts);
    device_->run(lanes::RowSumTotal<S>{partial, rows, parts, out, scale, factor, accumulate}, rows);
  }

private:
  Tensor<S> make(Index rows, Index cols, bool requires_grad) {
    Tensor<S> t{rows, cols, scratch(rows * cols), nullptr};
    if (requires_grad) {
      t.grad = scratch(rows * cols);
      device_->zero(t.grad, static_cast<std::size_t>(t.size()));
    }
    return t;
  }

  Device* device_;
  Arena<Device> arena_;
  std::vector<std::function<void()>> backward_;
};

}  // namespace ssmrl::cuda
