// Both directions repeat LibTorch 1.13's CPU BatchNorm for contiguous input in training mode,
// operation for operation (batch_norm_kernel.cpp's contiguous paths and the statistics update
// in Normalization.cpp), with the division by the factor folded in.
// Forward, per channel: y = x / f; mean = float(sum of y in double, value after value / count);
// var_sum = float(sum of double(float((y - mean)^2)) likewise);
// invstd = float(1 / sqrt(double(var_sum / count) + eps)); the running statistics
//   rm' = m * mean + (1 - m) * rm in float, rv' = double(m) * double(var_sum / (count - 1)) +
//   double((1 - m) * rv); out = y * alpha + beta with
//   alpha = invstd * w, beta = b - mean * alpha. ATen's one-value-after-another double sums
//   wait on every addition; here eight channels are summed side by side, each in its own order,
//   and the division is done in the pass that sums the quotients.
// Backward: the input gradient goes straight into the division's backward
// (channel_divide_gradient.h) instead of being written out for a second pass to read back:
//   per plane (n, c): s = sum of g, d = sum of (y - mean) * g, each in one vector accumulator
//     of 8 lanes (the first vector, then one vector after another, the tail merged lane by
//     lane), whose lanes are added at the end;
//   per channel, in double and batch order: sum = s_0 + s_1 + ..., dotp = d_0 + d_1 + ...;
//   k = float(dotp) * invstd * invstd / count, grad_mean = float(sum / count);
//   gy = ((g - grad_mean) - (y - mean) * k) * invstd * w;
//   dw = float(dotp * invstd), db = float(sum).
// ATen's AVX2 kernels contract each product into the addition that follows it (one FMA
// rounding) and add the accumulator's lanes by halving (i + 4, then i + 2, then i + 1); its
// baseline kernels round every operation and add the lanes in order. Which of the two runs in
// this process is found once by comparing with ATen's own BatchNorm on a probe; with any other
// (AVX-512) the caller keeps the composite.
#include "divided_batch_norm.h"

#include <ATen/ATen.h>
#include <immintrin.h>
#include <torch/autograd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <tuple>

#include "aten_row_sum.h"
#include "channel_divide_gradient.h"
#include "channel_planes.h"
#include "linquant/common/error.h"
#include "linquant/quant/kernel_dispatch.h"
#include "linquant/quant/parallel.h"

namespace linquant::runtime {
namespace {

enum class AtenKernels { avx2, baseline };

// The arithmetic below is compiled for AVX2 with FMA (the whole layer builds with
// -ffp-contract=off, so every FMA is one written here) and runs only on CPUs that have both.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

constexpr int64_t kLanes = 8;
using Vector = SumVector<kLanes>::type;

[[gnu::always_inline]] inline __m256 to_m256(const Vector& v) {
  return __builtin_bit_cast(__m256, v);
}
[[gnu::always_inline]] inline Vector to_vector(__m256 v) { return __builtin_bit_cast(Vector, v); }

[[gnu::always_inline]] inline Vector splat(float value) {
  Vector v;  // lane by lane: -0.0 stays -0.0
  for (int64_t lane = 0; lane < kLanes; ++lane) v[lane] = value;
  return v;
}

// acc + a * b and acc - a * b as ATen's kernel set computes them.
template <AtenKernels K>
[[gnu::always_inline]] inline Vector add_product(const Vector& acc, const Vector& a,
                                                 const Vector& b) {
  if constexpr (K == AtenKernels::avx2) {
    return to_vector(_mm256_fmadd_ps(to_m256(a), to_m256(b), to_m256(acc)));
  } else {
    return acc + a * b;
  }
}

template <AtenKernels K>
[[gnu::always_inline]] inline Vector subtract_product(const Vector& acc, const Vector& a,
                                                      const Vector& b) {
  if constexpr (K == AtenKernels::avx2) {
    return to_vector(_mm256_fnmadd_ps(to_m256(a), to_m256(b), to_m256(acc)));
  } else {
    return acc - a * b;
  }
}

template <AtenKernels K>
[[gnu::always_inline]] inline float add_product(float acc, float a, float b) {
  if constexpr (K == AtenKernels::avx2) {
    return std::fma(a, b, acc);
  } else {
    return acc + a * b;
  }
}

template <AtenKernels K>
[[gnu::always_inline]] inline float subtract_product(float acc, float a, float b) {
  if constexpr (K == AtenKernels::avx2) {
    return std::fma(-a, b, acc);  // the product negated before the one rounding, as FNMADD
  } else {
    return acc - a * b;
  }
}

template <AtenKernels K>
[[gnu::always_inline]] inline float add_lanes(const Vector& v) {
  if constexpr (K == AtenKernels::avx2) {
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
  } else {
    float total = v[0];
    for (int64_t lane = 1; lane < kLanes; ++lane) total += v[lane];
    return total;
  }
}

struct PlaneSums {
  float gradient;  // sum of g
  float centered;  // sum of (y - mean) * g
};

// The gradient BatchNorm receives: the incoming one, or (Masked) the incoming one times the
// quantizer's in-range mask as a float, as the quantizer's backward computes it.
template <bool Masked>
[[gnu::always_inline]] inline void load_gradient(const float* g, const bool* mask, int64_t i,
                                                 Vector& v) {
  load_lanes(g + i, v);
  if constexpr (Masked) {
    // Eight mask bytes widened to 0.0f / 1.0f.
    uint64_t bytes = 0;
    std::memcpy(&bytes, mask + i, sizeof bytes);
    const __m256i m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    v *= to_vector(_mm256_cvtepi32_ps(m));
  }
}

template <bool Masked>
[[gnu::always_inline]] inline float gradient_at(const float* g, const bool* mask, int64_t i) {
  if constexpr (Masked) {
    return g[i] * static_cast<float>(mask[i]);
  } else {
    return g[i];
  }
}

// One plane of at least kLanes values.
template <AtenKernels K, bool Masked>
[[gnu::always_inline]] inline PlaneSums plane_sums(const float* g, const bool* mask, const float* y,
                                                   float mean, int64_t n) {
  const Vector mean_v = splat(mean);
  Vector gv, yv;
  load_gradient<Masked>(g, mask, 0, gv);
  load_lanes(y, yv);
  Vector sum = gv;
  Vector centered = (yv - mean_v) * gv;
  const int64_t whole = n - n % kLanes;
  for (int64_t i = kLanes; i < whole; i += kLanes) {
    load_gradient<Masked>(g, mask, i, gv);
    load_lanes(y + i, yv);
    sum += gv;
    centered = add_product<K>(centered, yv - mean_v, gv);
  }
  for (int64_t i = whole; i < n; ++i) {
    const int64_t lane = i - whole;
    const float gi = gradient_at<Masked>(g, mask, i);
    sum[lane] += gi;
    centered[lane] = add_product<K>(centered[lane], y[i] - mean, gi);
  }
  return {add_lanes<K>(sum), add_lanes<K>(centered)};
}

// BatchNorm with batch statistics (training), or frozen on its running statistics with the
// activation quantizer after it (the gradient arrives masked).
enum class Mode { training, frozen_quantized };

// What the input gradient of one channel needs (training: all of it; frozen: invstd, weight).
struct ChannelTerms {
  float mean, k, grad_mean, invstd, weight;
};

template <AtenKernels K, Mode M>
[[gnu::always_inline]] inline Vector input_gradient(const Vector& g, const Vector& y,
                                                    const Vector& mean, const Vector& k,
                                                    const Vector& grad_mean, const Vector& invstd,
                                                    const Vector& weight) {
  if constexpr (M == Mode::training) {
    return subtract_product<K>(g - grad_mean, y - mean, k) * invstd * weight;
  } else {
    return g * invstd * weight;
  }
}

template <AtenKernels K, Mode M>
[[gnu::always_inline]] inline float input_gradient(float g, float y, const ChannelTerms& t) {
  if constexpr (M == Mode::training) {
    return subtract_product<K>(g - t.grad_mean, y - t.mean, t.k) * t.invstd * t.weight;
  } else {
    return g * t.invstd * t.weight;
  }
}

// The plane's input gradient divided by the factor into dx (when not null), returning the
// plane's share of the factor's gradient.
template <AtenKernels K, Mode M>
float divided_plane_backward(const float* g, const bool* mask, const float* y,
                             const ChannelTerms& t, float divisor, float* dx, int64_t n) {
  constexpr bool kMasked = M == Mode::frozen_quantized;
  const Vector mean = splat(t.mean), k = splat(t.k), grad_mean = splat(t.grad_mean),
               invstd = splat(t.invstd), weight = splat(t.weight);
  return divide_backward_plane_sum<kLanes>(
      n, y, divisor, dx,
      [&](int64_t i, Vector& v) {
        Vector gv, yv;
        load_gradient<kMasked>(g, mask, i, gv);
        load_lanes(y + i, yv);
        v = input_gradient<K, M>(gv, yv, mean, k, grad_mean, invstd, weight);
      },
      [&](int64_t i) { return input_gradient<K, M>(gradient_at<kMasked>(g, mask, i), y[i], t); });
}

struct BackwardBuffers {
  ChannelPlanes planes;
  const float* g;
  const bool* mask;  // frozen_quantized: the quantizer's in-range mask
  // mean, invstd: the batch's (training) or from the running statistics (frozen).
  const float *y, *factor, *weight, *mean, *invstd;
  float *dx, *dfactor, *dweight, *dbias;  // dx null: only the factor's gradient is wanted
  bool input_side;                        // dx or dfactor wanted
};

template <AtenKernels K, Mode M>
void backward_channel(const BackwardBuffers& b, int64_t c) {
  constexpr bool kMasked = M == Mode::frozen_quantized;
  const ChannelPlanes& p = b.planes;
  const int64_t count = p.outer * p.inner;
  double sum = 0.0, dotp = 0.0;
  for (int64_t n = 0; n < p.outer; ++n) {
    const int64_t offset = p.offset(n, c);
    const PlaneSums s = plane_sums<K, kMasked>(b.g + offset, b.mask ? b.mask + offset : nullptr,
                                               b.y + offset, b.mean[c], p.inner);
    sum += static_cast<double>(s.gradient);
    dotp += static_cast<double>(s.centered);
  }
  const float invstd = b.invstd[c];
  b.dweight[c] = static_cast<float>(dotp * static_cast<double>(invstd));
  b.dbias[c] = static_cast<float>(sum);
  if (!b.input_side) return;
  const ChannelTerms terms{
      b.mean[c], static_cast<float>(dotp) * invstd * invstd / static_cast<float>(count),
      static_cast<float>(sum / static_cast<double>(count)), invstd, b.weight[c]};
  float dfactor = 0.0f;  // the planes' shares added to a zero in batch order, as at::sum does
  for (int64_t n = 0; n < p.outer; ++n) {
    const int64_t offset = p.offset(n, c);
    dfactor +=
        divided_plane_backward<K, M>(b.g + offset, b.mask ? b.mask + offset : nullptr, b.y + offset,
                                     terms, b.factor[c], b.dx ? b.dx + offset : nullptr, p.inner);
  }
  b.dfactor[c] = dfactor;
}

void backward_channel(AtenKernels kernels, Mode mode, const BackwardBuffers& b, int64_t c) {
  const bool avx2 = kernels == AtenKernels::avx2;
  if (mode == Mode::training) {
    avx2 ? backward_channel<AtenKernels::avx2, Mode::training>(b, c)
         : backward_channel<AtenKernels::baseline, Mode::training>(b, c);
  } else {
    avx2 ? backward_channel<AtenKernels::avx2, Mode::frozen_quantized>(b, c)
         : backward_channel<AtenKernels::baseline, Mode::frozen_quantized>(b, c);
  }
}

// ---- Forward. ATen sums each channel's values one after another into a double, so each
// addition waits for the one before; summing kChains channels side by side keeps the same
// order within each channel and gives the adder independent work.
constexpr int64_t kChains = 8;
constexpr int64_t kBlock = 256;  // values per channel converted to double at a time

// sums[j] = the values term(j, ...) produces for channel first + j, added in plane order and
// within a plane in index order to a double zero. fill(channel, offset, length, terms) writes
// the channel's terms for the values [offset, offset + length) of the data as doubles.
template <typename Fill>
void sequential_sums(const ChannelPlanes& p, int64_t first, int64_t count, const Fill& fill,
                     double* sums) {
  alignas(64) double terms[kChains][kBlock] = {};  // unused chains add zeros
  double acc[kChains] = {};
  for (int64_t n = 0; n < p.outer; ++n) {
    for (int64_t start = 0; start < p.inner; start += kBlock) {
      const int64_t length = std::min(kBlock, p.inner - start);
      for (int64_t j = 0; j < count; ++j) {
        fill(first + j, p.offset(n, first + j) + start, length, terms[j]);
      }
      for (int64_t i = 0; i < length; ++i) {
        for (int64_t j = 0; j < kChains; ++j) acc[j] += terms[j][i];
      }
    }
  }
  for (int64_t j = 0; j < count; ++j) sums[j] = acc[j];
}

struct ForwardBuffers {
  ChannelPlanes planes;
  const float *x, *factor, *weight, *bias;
  float *y, *out, *mean, *invstd, *running_mean, *running_var;
  float momentum;
  double eps;
};

template <AtenKernels K>
void normalize_plane(const float* y, float alpha, float beta, float* out, int64_t n) {
  const Vector alpha_v = splat(alpha), beta_v = splat(beta);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Vector v;
    load_lanes(y + i, v);
    store_lanes(out + i, add_product<K>(beta_v, v, alpha_v));
  }
  for (; i < n; ++i) out[i] = add_product<K>(beta, y[i], alpha);
}

// Channels [first, first + count), count <= kChains.
template <AtenKernels K>
void forward_channels(const ForwardBuffers& b, int64_t first, int64_t count) {
  const ChannelPlanes& p = b.planes;
  const int64_t values = p.outer * p.inner;
  double sums[kChains];
  sequential_sums(
      p, first, count,
      [&](int64_t c, int64_t offset, int64_t length, double* terms) {
        const float f = b.factor[c];
        const float* x = b.x + offset;
        float* y = b.y + offset;
        for (int64_t i = 0; i < length; ++i) {
          y[i] = x[i] / f;
          terms[i] = static_cast<double>(y[i]);
        }
      },
      sums);
  for (int64_t j = 0; j < count; ++j) {
    b.mean[first + j] = static_cast<float>(sums[j] / static_cast<double>(values));
  }
  sequential_sums(
      p, first, count,
      [&](int64_t c, int64_t offset, int64_t length, double* terms) {
        const float mean = b.mean[c];
        const float* y = b.y + offset;
        for (int64_t i = 0; i < length; ++i) {
          const float d = y[i] - mean;
          terms[i] = static_cast<double>(d * d);
        }
      },
      sums);
  for (int64_t j = 0; j < count; ++j) {
    const int64_t c = first + j;
    const float mean = b.mean[c];
    const float var_sum = static_cast<float>(sums[j]);
    const double var = static_cast<double>(var_sum / static_cast<float>(values));
    const float invstd =
        var != 0.0 || b.eps != 0.0 ? static_cast<float>(1.0 / std::sqrt(var + b.eps)) : 0.0f;
    b.invstd[c] = invstd;
    const float m = b.momentum;
    b.running_mean[c] = m * mean + (1.0f - m) * b.running_mean[c];
    const double unbiased_var = static_cast<double>(var_sum / static_cast<float>(values - 1));
    b.running_var[c] = static_cast<float>(static_cast<double>(m) * unbiased_var +
                                          static_cast<double>((1.0f - m) * b.running_var[c]));
    const float alpha = invstd * b.weight[c];
    const float beta = subtract_product<K>(b.bias[c], mean, alpha);
    for (int64_t n = 0; n < p.outer; ++n) {
      const int64_t offset = p.offset(n, c);
      normalize_plane<K>(b.y + offset, alpha, beta, b.out + offset, p.inner);
    }
  }
}

void forward_channels(AtenKernels kernels, const ForwardBuffers& b, int64_t first, int64_t count) {
  if (kernels == AtenKernels::avx2) {
    forward_channels<AtenKernels::avx2>(b, first, count);
  } else {
    forward_channels<AtenKernels::baseline>(b, first, count);
  }
}

// ---- Frozen BatchNorm, as ATen's eval-mode kernels compute it: alpha = (1 / sqrt(running_var +
// float(eps)), in float) * w and beta = b - running_mean * alpha for the forward; the backward's
// invstd = float(1 / sqrt(double(running_var) + eps)).
struct FrozenForward {
  ChannelPlanes planes;
  const float *x, *factor;
  float* y;
  const float *alpha, *beta;
};

// The BatchNorm output z for the elements [begin, begin + count): from x, writing y = x / factor
// on the way (divide), or from y.
template <AtenKernels K>
void frozen_values(const FrozenForward& f, int64_t begin, int64_t count, bool divide, float* z) {
  const ChannelPlanes& p = f.planes;
  for (int64_t done = 0; done < count;) {
    const int64_t index = begin + done;
    const int64_t plane = index / p.inner;
    const int64_t c = plane % p.channels;
    const int64_t length = std::min(count - done, (plane + 1) * p.inner - index);
    const float alpha = f.alpha[c], beta = f.beta[c];
    float* y = f.y + index;
    float* out = z + done;
    if (divide) {
      const float divisor = f.factor[c];
      const float* x = f.x + index;
      for (int64_t i = 0; i < length; ++i) {
        y[i] = x[i] / divisor;
        out[i] = add_product<K>(beta, y[i], alpha);
      }
    } else {
      for (int64_t i = 0; i < length; ++i) out[i] = add_product<K>(beta, y[i], alpha);
    }
    done += length;
  }
}

void frozen_values(AtenKernels kernels, const FrozenForward& f, int64_t begin, int64_t count,
                   bool divide, float* z) {
  if (kernels == AtenKernels::avx2) {
    frozen_values<AtenKernels::avx2>(f, begin, count, divide, z);
  } else {
    frozen_values<AtenKernels::baseline>(f, begin, count, divide, z);
  }
}

float frozen_beta(AtenKernels kernels, float bias, float mean, float alpha) {
  return kernels == AtenKernels::avx2 ? subtract_product<AtenKernels::avx2>(bias, mean, alpha)
                                      : subtract_product<AtenKernels::baseline>(bias, mean, alpha);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// The buffers of a backward over y (float32, contiguous) with every output allocated. mask:
// the quantizer's (frozen_quantized), undefined otherwise.
struct BackwardOutputs {
  at::Tensor dx, dfactor, dweight, dbias;
};

BackwardOutputs run_backward(AtenKernels kernels, Mode mode, const at::Tensor& g,
                             const at::Tensor& mask, const at::Tensor& y, const at::Tensor& factor,
                             const at::Tensor& weight, const at::Tensor& mean,
                             const at::Tensor& invstd, bool want_dx, bool input_side) {
  BackwardOutputs out{want_dx ? at::empty_like(y) : at::Tensor(), at::empty_like(factor),
                      at::empty_like(weight), at::empty_like(weight)};
  const BackwardBuffers b{ChannelPlanes(y),
                          g.data_ptr<float>(),
                          mode == Mode::frozen_quantized ? mask.data_ptr<bool>() : nullptr,
                          y.data_ptr<float>(),
                          factor.data_ptr<float>(),
                          weight.data_ptr<float>(),
                          mean.data_ptr<float>(),
                          invstd.data_ptr<float>(),
                          want_dx ? out.dx.data_ptr<float>() : nullptr,
                          out.dfactor.data_ptr<float>(),
                          out.dweight.data_ptr<float>(),
                          out.dbias.data_ptr<float>(),
                          input_side};
  for_each_channel(b.planes, [&](int64_t c) { backward_channel(kernels, mode, b, c); });
  return out;
}

// y = x / factor and BatchNorm's training forward over it, as at::native_batch_norm: returns
// {out, y, mean, invstd} and updates the running statistics in place.
std::array<at::Tensor, 4> run_forward(AtenKernels kernels, const at::Tensor& x,
                                      const at::Tensor& factor, const at::Tensor& weight,
                                      const at::Tensor& bias, const at::Tensor& running_mean,
                                      const at::Tensor& running_var, double momentum, double eps) {
  const int64_t channels = x.size(1);
  std::array<at::Tensor, 4> result{at::empty_like(x), at::empty_like(x),
                                   at::empty({channels}, x.options()),
                                   at::empty({channels}, x.options())};
  const ForwardBuffers b{ChannelPlanes(x),
                         x.data_ptr<float>(),
                         factor.data_ptr<float>(),
                         weight.data_ptr<float>(),
                         bias.data_ptr<float>(),
                         result[1].data_ptr<float>(),
                         result[0].data_ptr<float>(),
                         result[2].data_ptr<float>(),
                         result[3].data_ptr<float>(),
                         running_mean.data_ptr<float>(),
                         running_var.data_ptr<float>(),
                         static_cast<float>(momentum),
                         eps};
  const int64_t groups = (channels + kChains - 1) / kChains;
  parallel_for_rows(groups, kChains * b.planes.outer * b.planes.inner, [&](int64_t group) {
    const int64_t first = group * kChains;
    forward_channels(kernels, b, first, std::min(kChains, channels - first));
  });
  return result;
}

// Per channel: the forward's alpha and beta, and the running mean and the backward's invstd.
struct FrozenTerms {
  at::Tensor alpha, beta, mean, invstd;
};

FrozenTerms frozen_terms(AtenKernels kernels, const at::Tensor& weight, const at::Tensor& bias,
                         const at::Tensor& running_mean, const at::Tensor& running_var,
                         double eps) {
  const int64_t channels = weight.numel();
  FrozenTerms t{at::empty({channels}), at::empty({channels}), running_mean.clone(),
                at::empty({channels})};
  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  const float* mean = running_mean.data_ptr<float>();
  const float* var = running_var.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const float alpha = 1.0f / std::sqrt(var[c] + static_cast<float>(eps)) * w[c];
    t.alpha.data_ptr<float>()[c] = alpha;
    t.beta.data_ptr<float>()[c] = frozen_beta(kernels, b[c], mean[c], alpha);
    t.invstd.data_ptr<float>()[c] =
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[c]) + eps));
  }
  return t;
}

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && std::memcmp(a.data_ptr<float>(), b.data_ptr<float>(),
                                               static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

// ATen's eval-mode BatchNorm forward and backward against frozen_values and the frozen backward,
// with a factor of one and a mask that passes everything.
bool frozen_matches(AtenKernels kernels, const at::Tensor& x, const at::Tensor& g,
                    const at::Tensor& weight, const at::Tensor& bias,
                    const at::Tensor& running_mean, const at::Tensor& running_var, double eps) {
  const at::Tensor out = std::get<0>(
      at::native_batch_norm(x, weight, bias, running_mean, running_var, false, 0.1, eps));
  at::Tensor dx, dweight, dbias;
  std::tie(dx, dweight, dbias) =
      at::native_batch_norm_backward(g, x, weight, running_mean, running_var, at::Tensor(),
                                     at::Tensor(), false, eps, {true, true, true});
  const FrozenTerms t = frozen_terms(kernels, weight, bias, running_mean, running_var, eps);
  const at::Tensor ones = at::ones({x.size(1)});
  const at::Tensor y = at::empty_like(x), z = at::empty_like(x);
  const FrozenForward f{ChannelPlanes(x),    x.data_ptr<float>(),       ones.data_ptr<float>(),
                        y.data_ptr<float>(), t.alpha.data_ptr<float>(), t.beta.data_ptr<float>()};
  frozen_values(kernels, f, 0, x.numel(), true, z.data_ptr<float>());
  const BackwardOutputs backward =
      run_backward(kernels, Mode::frozen_quantized, g, at::ones(x.sizes(), at::kBool), x, ones,
                   weight, t.mean, t.invstd, true, true);
  return same_bits(z, out) && same_bits(backward.dx, dx) && same_bits(backward.dweight, dweight) &&
         same_bits(backward.dbias, dbias);
}

// ATen's BatchNorm forward and backward on a probe whose sums and products change their bits
// under another order of additions or another rounding, against each kernel set's arithmetic
// here with a factor of one (dividing by one is exact).
std::optional<AtenKernels> probe_kernels() {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return std::nullopt;
  const at::NoGradGuard no_grad;
  const auto spread = [](int64_t seed, at::IntArrayRef shape) {
    at::Tensor t = at::empty(shape, at::kFloat);
    float* data = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t v = (i * 7919 + seed * 104729) % 2003 - 1001;
      data[i] =
          std::ldexp(static_cast<float>(v) + 0.37f, static_cast<int>((i * 5 + seed) % 13) - 6);
    }
    return t;
  };
  const at::Tensor x = spread(1, {3, 4, 5, 7}), g = spread(2, {3, 4, 5, 7});
  const at::Tensor weight = spread(3, {4}), bias = spread(4, {4});
  const at::Tensor running_mean = spread(5, {4}), running_var = spread(6, {4}).abs();
  const double momentum = 0.1, eps = 1e-5;
  at::Tensor aten_mean = running_mean.clone(), aten_var = running_var.clone();
  at::Tensor out, mean, invstd;
  std::tie(out, mean, invstd) =
      at::native_batch_norm(x, weight, bias, aten_mean, aten_var, true, momentum, eps);
  at::Tensor dx, dweight, dbias;
  std::tie(dx, dweight, dbias) = at::native_batch_norm_backward(
      g, x, weight, aten_mean, aten_var, mean, invstd, true, eps, {true, true, true});
  const at::Tensor ones = at::ones({4});
  for (AtenKernels kernels : {AtenKernels::avx2, AtenKernels::baseline}) {
    const at::Tensor our_mean = running_mean.clone(), our_var = running_var.clone();
    const std::array<at::Tensor, 4> forward =
        run_forward(kernels, x, ones, weight, bias, our_mean, our_var, momentum, eps);
    const BackwardOutputs backward = run_backward(kernels, Mode::training, g, at::Tensor(), x, ones,
                                                  weight, mean, invstd, true, true);
    const bool training = same_bits(forward[0], out) && same_bits(forward[2], mean) &&
                          same_bits(forward[3], invstd) && same_bits(our_mean, aten_mean) &&
                          same_bits(our_var, aten_var) && same_bits(backward.dx, dx) &&
                          same_bits(backward.dweight, dweight) && same_bits(backward.dbias, dbias);
    if (training && frozen_matches(kernels, x, g, weight, bias, running_mean, running_var, eps)) {
      return kernels;
    }
  }
  return std::nullopt;
}

const std::optional<AtenKernels>& aten_kernels() {
  static const std::optional<AtenKernels> kernels = probe_kernels();
  return kernels;
}

// The backward of both nodes below: their inputs are (x, factor, weight, bias) and four more
// without gradients; they save {y, factor, weight, mean, invstd} and, frozen, the mask.
torch::autograd::variable_list node_backward(torch::autograd::AutogradContext* ctx,
                                             const torch::autograd::variable_list& grads,
                                             Mode mode) {
  const auto saved = ctx->get_saved_variables();
  const bool want_dx = ctx->needs_input_grad(0);
  const bool want_dfactor = ctx->needs_input_grad(1);
  const at::Tensor mask = mode == Mode::frozen_quantized ? saved[5] : at::Tensor();
  BackwardOutputs out =
      run_backward(*aten_kernels(), mode, grads[0].to(at::kFloat).contiguous(), mask, saved[0],
                   saved[1], saved[2], saved[3], saved[4], want_dx, want_dx || want_dfactor);
  return {out.dx,
          want_dfactor ? out.dfactor : at::Tensor(),
          ctx->needs_input_grad(2) ? out.dweight : at::Tensor(),
          ctx->needs_input_grad(3) ? out.dbias : at::Tensor(),
          at::Tensor(),
          at::Tensor(),
          at::Tensor(),
          at::Tensor()};
}

class DividedBatchNorm : public torch::autograd::Function<DividedBatchNorm> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& factor, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& running_mean,
                            const at::Tensor& running_var, double momentum, double eps) {
    const at::Tensor f = factor.contiguous(), w = weight.contiguous();
    const std::array<at::Tensor, 4> r =
        run_forward(*aten_kernels(), x.contiguous(), f, w, bias.contiguous(), running_mean,
                    running_var, momentum, eps);
    ctx->save_for_backward({r[1], f, w, r[2], r[3]});
    return r[0];
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return node_backward(ctx, grads, Mode::training);
  }
};

// The forward's blocks of BatchNorm output, fake-quantized while in L1.
constexpr int64_t kValueBlock = 2048;

class FrozenDividedBatchNormQuantize
    : public torch::autograd::Function<FrozenDividedBatchNormQuantize> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& factor, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& running_mean,
                            const at::Tensor& running_var, double eps,
                            FakeQuantizeImpl* quantizer) {
    const AtenKernels kernels = *aten_kernels();
    const at::Tensor xc = x.contiguous(), f = factor.contiguous(), w = weight.contiguous();
    const FrozenTerms t =
        frozen_terms(kernels, w, bias.contiguous(), running_mean, running_var, eps);
    at::Tensor y = at::empty_like(xc), out = at::empty_like(xc);
    at::Tensor mask = at::empty(xc.sizes(), xc.options().dtype(at::kBool));
    const FrozenForward fw{ChannelPlanes(xc),         xc.data_ptr<float>(),
                           f.data_ptr<float>(),       y.data_ptr<float>(),
                           t.alpha.data_ptr<float>(), t.beta.data_ptr<float>()};
    const int64_t n = xc.numel();
    // With its observer on, the quantizer takes in the range of the output computed block by
    // block from x, and y is written on the way; otherwise the quantizing pass divides.
    std::atomic<bool> divided{false};
    const QParam qparam =
        quantizer->observe_computed(n, [&](int64_t begin, int64_t count, float* z) {
          frozen_values(kernels, fw, begin, count, true, z);
          divided.store(true, std::memory_order_relaxed);
        });
    const bool divide = !divided.load();
    const QuantRange& range = quantizer->options().range;
    float* op = out.data_ptr<float>();
    bool* mp = mask.data_ptr<bool>();
    at::parallel_for(0, n, kParallelGrain, [&](int64_t begin, int64_t end) {
      alignas(64) float z[kValueBlock];
      for (int64_t start = begin; start < end; start += kValueBlock) {
        const int64_t count = std::min(kValueBlock, end - start);
        frozen_values(kernels, fw, start, count, divide, z);
        fake_quantize_span(z, op + start, mp + start, count, qparam, range.quant_min,
                           range.quant_max);
      }
    });
    ctx->save_for_backward({y, f, w, t.mean, t.invstd, mask});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return node_backward(ctx, grads, Mode::frozen_quantized);
  }
};

void check_applies(bool applies, const at::Tensor& x, const at::Tensor& factor) {
  if (!applies || factor.scalar_type() != at::kFloat || factor.numel() != x.size(1)) {
    throw Error(
        "a fused division and BatchNorm got a case it does not reproduce bit for bit; "
        "check its _applies function first");
  }
}

}  // namespace

bool divide_and_batch_norm_applies(const at::Tensor& x, const BatchNormState& state) {
  if (x.scalar_type() != at::kFloat || x.dim() < 3 || x.size(1) < 2) return false;
  for (const at::Tensor* t :
       {&state.weight, &state.bias, &state.running_mean, &state.running_var}) {
    if (!t->defined() || t->scalar_type() != at::kFloat) return false;
  }
  // The running statistics are updated through their data.
  if (!state.running_mean.is_contiguous() || !state.running_var.is_contiguous()) return false;
  // Planes of at least one vector: the division's factor gradient and BatchNorm's sums both
  // take their vector loops there.
  if (ChannelPlanes(x).inner < kLanes) return false;
  return aten_sum_lanes() == kLanes && aten_kernels().has_value();
}

at::Tensor divide_and_batch_norm(const at::Tensor& x, const at::Tensor& factor,
                                 const BatchNormState& state, double momentum) {
  check_applies(divide_and_batch_norm_applies(x, state), x, factor);
  return DividedBatchNorm::apply(x, factor, state.weight, state.bias, state.running_mean,
                                 state.running_var, momentum, state.eps);
}

bool divide_frozen_batch_norm_and_quantize_applies(const at::Tensor& x, const BatchNormState& state,
                                                   const FakeQuantize& quantizer) {
  return divide_and_batch_norm_applies(x, state) && quantizer->fuses_with_producer();
}

at::Tensor divide_frozen_batch_norm_and_quantize(const at::Tensor& x, const at::Tensor& factor,
                                                 const BatchNormState& state,
                                                 FakeQuantize& quantizer) {
  check_applies(divide_frozen_batch_norm_and_quantize_applies(x, state, quantizer), x, factor);
  return FrozenDividedBatchNormQuantize::apply(x, factor, state.weight, state.bias,
                                               state.running_mean, state.running_var, state.eps,
                                               quantizer.get());
}

}  // namespace linquant::runtime
