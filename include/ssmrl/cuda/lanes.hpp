// The device programs of the CUDA backend, as functors of one index: a device runs `f(i)` for every
// i in [0, n), in any order and in parallel. The GPU runs them as kernels (gpu_device.cu); HostDevice
// runs the same functors in a loop, so that every line of arithmetic here is also tested without a
// GPU. No CUDA, Eigen or standard-library headers beyond <cmath> and <cstddef>: nvcc compiles this
// for the device.
//
// Layout: a matrix is column-major; a sequence of `steps` steps of `batch` lanes has column
// t * batch + b for lane b at step t, as on the CPU.
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__CUDACC__)
#define SSMRL_HOST_DEVICE __host__ __device__
#else
#define SSMRL_HOST_DEVICE
#endif

namespace ssmrl::cuda::lanes {

using Index = std::ptrdiff_t;

// ---- The reset-aware linear recurrence, as an associative scan (resettable S5) ---------------------
// An element maps the state before a step to the state after it: h -> decay * h + drive, or, when
// `reset`, h -> drive. Combining an earlier element e with a later one l gives the element of both
// steps: l when l resets, else (l.decay * e.decay, l.decay * e.drive + l.drive, e.reset). The
// operator is associative, so a sequence splits into chunks scanned in parallel and joined.
template <class S>
struct Link {
  S decay;
  S drive;
  bool reset;
};

template <class S>
SSMRL_HOST_DEVICE inline Link<S> identity_link() {
  return {S(1), S(0), false};
}

template <class S>
SSMRL_HOST_DEVICE inline Link<S> combine(const Link<S>& earlier, const Link<S>& later) {
  if (later.reset) return later;
  return {later.decay * earlier.decay, later.decay * earlier.drive + later.drive, earlier.reset};
}

// The scan h_t = a * keep_t * h_{t-1} + u_t from h_{-1} = `initial` (zero where null) (forward), or
// its adjoint y_t = a * keep_{t+1} * y_{t+1} + x_t, y_{T-1} = x_{T-1} (reverse), for `rows * batch`
// lanes. `keep` (1 x steps * batch, or null for all ones) is 0 where a sequence restarts: an episode
// start or an MC clear action; there the element resets. Position s runs in scan order.
template <class S>
struct ScanLanes {
  const S* a;     // rows
  const S* keep;  // steps * batch, or null
  const S* in;    // rows x steps * batch
  S* out;         // rows x steps * batch
  const S* initial;  // rows x batch (forward only), or null
  Index rows, batch, steps;
  bool reverse;
  Index chunks;    // chunks per lane
  Link<S>* carry;  // lanes x chunks: each chunk's element, then the element of all chunks before it

  SSMRL_HOST_DEVICE Index lanes() const { return rows * batch; }
  SSMRL_HOST_DEVICE Index chunk_length() const { return (steps + chunks - 1) / chunks; }
  SSMRL_HOST_DEVICE Index chunk_begin(Index chunk) const { return chunk * chunk_length(); }
  SSMRL_HOST_DEVICE Index chunk_end(Index chunk) const {
    return chunk_begin(chunk) + chunk_length() < steps ? chunk_begin(chunk) + chunk_length() : steps;
  }
  SSMRL_HOST_DEVICE Index address(Index lane, Index s) const {
    const Index t = reverse ? steps - 1 - s : s;
    return (t * batch + lane / rows) * rows + lane % rows;
  }
  SSMRL_HOST_DEVICE Link<S> element(Index lane, Index s) const {
    const S drive = in[address(lane, s)];
    const Index t = reverse ? steps - s : s;  // the later of the two steps the link joins (s > 0)
    const S k = keep != nullptr ? keep[(s == 0 ? 0 : t) * batch + lane / rows] : S(1);
    // The initial state is part of the first step's drive: h_0 = a * keep_0 * h_{-1} + u_0.
    if (s == 0) return {S(0), initial != nullptr ? drive + a[lane % rows] * k * initial[lane] : drive, true};
    return {a[lane % rows] * k, drive, k == S(0)};
  }
};

//! Pass 1, over lanes x chunks: each chunk's combined element.
template <class S>
struct ScanFold {
  ScanLanes<S> scan;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const Index lane = i % scan.lanes();
    const Index chunk = i / scan.lanes();
    Link<S> total = identity_link<S>();
    for (Index s = scan.chunk_begin(chunk); s < scan.chunk_end(chunk); ++s)
      total = combine(total, scan.element(lane, s));
    scan.carry[i] = total;
  }
};

//! Pass 2, over lanes: each chunk's element replaced by that of every chunk before it.
template <class S>
struct ScanCarry {
  ScanLanes<S> scan;
  SSMRL_HOST_DEVICE void operator()(Index lane) const {
    Link<S> before = identity_link<S>();
    for (Index chunk = 0; chunk < scan.chunks; ++chunk) {
      Link<S>& slot = scan.carry[chunk * scan.lanes() + lane];
      const Link<S> own = slot;
      slot = before;
      before = combine(before, own);
    }
  }
};

//! Pass 3, over lanes x chunks: the states of each chunk, from the state its predecessors leave.
template <class S>
struct ScanWrite {
  ScanLanes<S> scan;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const Index lane = i % scan.lanes();
    const Index chunk = i / scan.lanes();
    S h = scan.carry[i].drive;  // position 0 resets, so every carried element after it resets too
    for (Index s = scan.chunk_begin(chunk); s < scan.chunk_end(chunk); ++s) {
      const Link<S> e = scan.element(lane, s);
      h = e.reset ? e.drive : e.decay * h + e.drive;
      scan.out[scan.address(lane, s)] = h;
    }
  }
};

// ---- Sums over columns, in two passes: `parts` partial sums per row, then their total ------------
//! Term(r, c) is what column c adds to row r.
template <class S, class Term>
struct RowSumPartial {
  Term term;
  Index rows, cols, parts;
  S* partial;  // rows x parts
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const Index r = i % rows;
    const Index p = i / rows;
    const Index length = (cols + parts - 1) / parts;
    const Index end = (p + 1) * length < cols ? (p + 1) * length : cols;
    S sum = S(0);
    for (Index c = p * length; c < end; ++c) sum += term(r, c);
    partial[i] = sum;
  }
};

//! out[r] = (accumulate ? out[r] : 0) + scale * factor[0] * the total of row r's partial sums
//! (factor: a device number such as an adjoint, or null for 1).
template <class S>
struct RowSumTotal {
  const S* partial;
  Index rows, parts;
  S* out;
  S scale;
  const S* factor;
  bool accumulate;
  SSMRL_HOST_DEVICE void operator()(Index r) const {
    S sum = S(0);
    for (Index p = 0; p < parts; ++p) sum += partial[p * rows + r];
    const S total = scale * (factor != nullptr ? factor[0] : S(1)) * sum;
    out[r] = accumulate ? out[r] + total : total;
  }
};

template <class S>
struct MatrixTerm {  // m(r, c)
  const S* m;
  Index rows;
  SSMRL_HOST_DEVICE S operator()(Index r, Index c) const { return m[c * rows + r]; }
};

//! The scan's gradient with respect to its decay: the sum over linked pairs of
//! d_in[t] * keep_t * h[t - 1] (forward scans).
template <class S>
struct ScanDecayTerm {
  const S* d_in;
  const S* out;
  const S* keep;
  Index rows, batch;
  SSMRL_HOST_DEVICE S operator()(Index r, Index c) const {
    if (c < batch) return S(0);
    const S k = keep != nullptr ? keep[c] : S(1);
    return k * d_in[c * rows + r] * out[(c - batch) * rows + r];
  }
};

//! The initial state's gradient: out(r, b) += a[r] * keep_b * in(r, b) over state x batch, in the
//! first step's drive adjoint (keep: the first step's, or null for ones).
template <class S>
struct InitialState {
  const S* a;
  const S* keep;
  const S* in;
  S* out;
  Index rows;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const S k = keep != nullptr ? keep[i / rows] : S(1);
    out[i] += a[i % rows] * k * in[i];
  }
};

//! The decay's gradient from the initial state: keep_c * initial(r, c) * d_first(r, c), c < batch.
template <class S>
struct InitialStateDecayTerm {
  const S* d_first;
  const S* initial;
  const S* keep;
  Index rows;
  SSMRL_HOST_DEVICE S operator()(Index r, Index c) const {
    const S k = keep != nullptr ? keep[c] : S(1);
    return k * initial[c * rows + r] * d_first[c * rows + r];
  }
};

// ---- Elementwise -----------------------------------------------------------------------------------
template <class S>
struct AddBias {  // out = in + bias (a column, broadcast over columns); in may be out
  const S* in;
  const S* bias;
  S* out;
  Index rows;
  SSMRL_HOST_DEVICE void operator()(Index i) const { out[i] = in[i] + bias[i % rows]; }
};

template <class S>
struct AddInto {  // out += in
  const S* in;
  S* out;
  SSMRL_HOST_DEVICE void operator()(Index i) const { out[i] += in[i]; }
};

template <class S>
struct Tanh {
  const S* in;
  S* out;
  SSMRL_HOST_DEVICE void operator()(Index i) const { out[i] = std::tanh(in[i]); }
};

template <class S>
struct TanhBackward {  // d_in += g * (1 - y^2)
  const S* y;
  const S* g;
  S* d_in;
  SSMRL_HOST_DEVICE void operator()(Index i) const { d_in[i] += g[i] * (S(1) - y[i] * y[i]); }
};

// ---- The zero-order hold of the diagonal SSM, per state i ------------------------------------------
//   a = -exp(log_a), x = exp(log_dt) * a, abar = exp(x), bbar = expm1(x) / a * B (row i),
// computed as the CPU cell computes them.
template <class S>
struct ZohForward {
  const S* log_a;
  const S* log_dt;
  const S* B;  // state x input
  S* a_bar;
  S* b_bar;
  Index state, input;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const S a = -std::exp(log_a[i]);
    const S x = std::exp(log_dt[i]) * a;
    a_bar[i] = std::exp(x);
    const S q = std::expm1(x) / a;
    for (Index j = 0; j < input; ++j) b_bar[j * state + i] = q * B[j * state + i];
  }
};

//! With x as above: d abar / d log_a = d abar / d log_dt = abar x; with q = expm1(x) / a,
//! dq / d log_a = (exp(x) x - expm1(x)) / a and dq / d log_dt = exp(x) dt.
template <class S>
struct ZohBackward {
  const S* log_a;
  const S* log_dt;
  const S* B;
  const S* g_a_bar;  // state (or null when abar got no gradient)
  const S* g_b_bar;  // state x input (or null)
  S* d_log_a;
  S* d_log_dt;
  S* d_B;  // or null
  Index state, input;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const S a = -std::exp(log_a[i]);
    const S dt = std::exp(log_dt[i]);
    const S x = dt * a;
    const S e = std::exp(x);
    S through_a_bar = g_a_bar != nullptr ? g_a_bar[i] * e * x : S(0);
    S sum = S(0);
    if (g_b_bar != nullptr) {
      const S q = std::expm1(x) / a;
      for (Index j = 0; j < input; ++j) {
        sum += g_b_bar[j * state + i] * B[j * state + i];
        if (d_B != nullptr) d_B[j * state + i] += g_b_bar[j * state + i] * q;
      }
    }
    d_log_a[i] += through_a_bar + sum * (e * x - std::expm1(x)) / a;
    d_log_dt[i] += through_a_bar + sum * e * dt;
  }
};

//! The recurrent state of a batch of environments, one step: h = abar * keep_b * h + driven.
template <class S>
struct DiagStateStep {
  const S* a_bar;
  const S* keep;  // one per environment, or null
  const S* driven;
  S* h;
  Index rows;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const S k = keep != nullptr ? keep[i / rows] : S(1);
    h[i] = a_bar[i % rows] * (k * h[i]) + driven[i];
  }
};

// ---- Policy-gradient losses: L = -(1/N) sum_j log p(action_j) w_j ----------------------------------
template <class S>
SSMRL_HOST_DEVICE inline S clamped(S v, S lo, S hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

//! Diagonal Gaussian, log_std (actions x 1) clamped to [lo, hi]: the term of column c is
//! w_c * sum_k (-z^2 / 2 - log_std_k - log(2 pi) / 2), z = (action - mean) * exp(-log_std).
template <class S>
struct GaussianLogProbTerm {
  const S* mean;
  const S* log_std;
  const S* actions;
  const S* weights;
  Index actions_size;
  S lo, hi;
  SSMRL_HOST_DEVICE S operator()(Index, Index c) const {
    const S half_log_two_pi = S(0.91893853320467274178032973640562);
    S sum = S(0);
    for (Index k = 0; k < actions_size; ++k) {
      const S ls = clamped(log_std[k], lo, hi);
      const S z = (actions[c * actions_size + k] - mean[c * actions_size + k]) * std::exp(-ls);
      sum += S(-0.5) * z * z - ls - half_log_two_pi;
    }
    return weights[c] * sum;
  }
};

//! d L / d mean = g_loss * (-w_c / N) * z / std, over actions x columns.
template <class S>
struct GaussianMeanBackward {
  GaussianLogProbTerm<S> term;
  const S* g_loss;
  S inv_count;
  S* d_mean;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const Index k = i % term.actions_size;
    const S inv_std = std::exp(-clamped(term.log_std[k], term.lo, term.hi));
    const S z = (term.actions[i] - term.mean[i]) * inv_std;
    d_mean[i] += -g_loss[0] * inv_count * term.weights[i / term.actions_size] * z * inv_std;
  }
};

//! What column c adds to d L / d log_std_k before the factor -g_loss / N: w_c (z^2 - 1), zero where
//! the clamp is active (as PyTorch's clamp).
template <class S>
struct GaussianLogStdTerm {
  GaussianLogProbTerm<S> term;
  SSMRL_HOST_DEVICE S operator()(Index k, Index c) const {
    const S v = term.log_std[k];
    if (v < term.lo || v > term.hi) return S(0);
    const S z = (term.actions[c * term.actions_size + k] - term.mean[c * term.actions_size + k]) * std::exp(-v);
    return term.weights[c] * (z * z - S(1));
  }
};

//! Categorical over the rows of `logits`; actions hold indices as numbers. The term of column c is
//! w_c * (logits[action_c] - logsumexp).
template <class S>
struct CategoricalLogProbTerm {
  const S* logits;
  const S* actions;
  const S* weights;
  Index classes;
  SSMRL_HOST_DEVICE S log_sum_exp(Index c) const {
    const S* col = logits + c * classes;
    S m = col[0];
    for (Index k = 1; k < classes; ++k) m = col[k] > m ? col[k] : m;
    S sum = S(0);
    for (Index k = 0; k < classes; ++k) sum += std::exp(col[k] - m);
    return m + std::log(sum);
  }
  SSMRL_HOST_DEVICE S operator()(Index, Index c) const {
    return weights[c] * (logits[c * classes + static_cast<Index>(actions[c])] - log_sum_exp(c));
  }
};

//! d L / d logits = g_loss * (-w_c / N) * (onehot - softmax), per column.
template <class S>
struct CategoricalBackward {
  CategoricalLogProbTerm<S> term;
  const S* g_loss;
  S inv_count;
  S* d_logits;
  SSMRL_HOST_DEVICE void operator()(Index c) const {
    const S lse = term.log_sum_exp(c);
    const Index chosen = static_cast<Index>(term.actions[c]);
    const S scale = -g_loss[0] * inv_count * term.weights[c];
    for (Index k = 0; k < term.classes; ++k) {
      const S p = std::exp(term.logits[c * term.classes + k] - lse);
      d_logits[c * term.classes + k] += scale * ((k == chosen ? S(1) : S(0)) - p);
    }
  }
};

// ---- Acting --------------------------------------------------------------------------------------
//! action = mean + exp(clamped log_std) * noise (noise null: the mean).
template <class S>
struct GaussianAct {
  const S* mean;
  const S* log_std;
  const S* noise;
  S* actions;
  Index actions_size;
  S lo, hi;
  SSMRL_HOST_DEVICE void operator()(Index i) const {
    const S n = noise != nullptr ? noise[i] : S(0);
    actions[i] = mean[i] + std::exp(clamped(log_std[i % actions_size], lo, hi)) * n;
  }
};

//! action = argmax_k (logits_k + noise_k): Gumbel noise samples the softmax, null noise is greedy.
template <class S>
struct CategoricalAct {
  const S* logits;
  const S* noise;
  S* actions;
  Index classes;
  SSMRL_HOST_DEVICE void operator()(Index c) const {
    Index best = 0;
    S best_value = S(0);
    for (Index k = 0; k < classes; ++k) {
      const S v = logits[c * classes + k] + (noise != nullptr ? noise[c * classes + k] : S(0));
      if (k == 0 || v > best_value) {
        best = k;
        best_value = v;
      }
    }
    actions[c] = static_cast<S>(best);
  }
};

}  // namespace ssmrl::cuda::lanes
