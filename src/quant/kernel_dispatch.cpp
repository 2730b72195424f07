// Run-time choice between the scalar reference kernels and the AVX2 ones.
#include "linquant/quant/kernel_dispatch.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "fake_quantize_kernel_avx2.h"
#include "learnable_kernel_avx2.h"
#include "linquant/common/error.h"
#include "linquant/quant/fake_quantize_kernel.h"

namespace linquant {
namespace {

KernelIsa initial_isa() {
  const char* forced = std::getenv("LINQUANT_KERNELS");
  if (forced && std::string(forced) == "scalar") return KernelIsa::scalar;
  return kernel_isa_available(KernelIsa::avx2) ? KernelIsa::avx2 : KernelIsa::scalar;
}

std::atomic<KernelIsa>& active_isa() {
  static std::atomic<KernelIsa> isa{initial_isa()};
  return isa;
}

}  // namespace

const char* to_string(KernelIsa isa) { return isa == KernelIsa::avx2 ? "avx2" : "scalar"; }

bool kernel_isa_available(KernelIsa isa) {
  if (isa == KernelIsa::scalar) return true;
  return __builtin_cpu_supports("avx2");
}

KernelIsa kernel_isa() { return active_isa().load(std::memory_order_relaxed); }

void set_kernel_isa(KernelIsa isa) {
  if (!kernel_isa_available(isa)) {
    throw QuantError(std::string("this CPU does not support the ") + to_string(isa) +
                     " kernels");
  }
  active_isa().store(isa, std::memory_order_relaxed);
}

void fake_quantize_span(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                        int64_t quant_min, int64_t quant_max) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::fake_quantize(x, y, mask, n, qparam, quant_min, quant_max);
  } else {
    fake_quantize_reference(x, y, mask, n, qparam, quant_min, quant_max);
  }
}

bool finite_min_max_span(const float* x, int64_t n, float* min_val, float* max_val) {
  if (kernel_isa() == KernelIsa::avx2) return avx2::finite_min_max(x, n, min_val, max_val);
  return finite_min_max(x, n, min_val, max_val);
}

void masked_gradient_span(const float* grad, const bool* mask, float* out, int64_t n) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::masked_gradient(grad, mask, out, n);
  } else {
    masked_gradient_reference(grad, mask, out, n);
  }
}

void relu_fake_quantize_span(const float* x, float* y, uint8_t* state, int64_t n, float cap,
                             QParam qparam, int64_t quant_min, int64_t quant_max) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::relu_fake_quantize(x, y, state, n, cap, qparam, quant_min, quant_max);
  } else {
    relu_fake_quantize_reference(x, y, state, n, cap, qparam, quant_min, quant_max);
  }
}

bool relu_finite_min_max_span(const float* x, int64_t n, float cap, float* min_val,
                              float* max_val) {
  if (kernel_isa() == KernelIsa::avx2) {
    return avx2::relu_finite_min_max(x, n, cap, min_val, max_val);
  }
  return relu_finite_min_max(x, n, cap, min_val, max_val);
}

void relu_masked_gradient_span(const float* grad, const uint8_t* state, float* out, int64_t n) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::relu_masked_gradient(grad, state, out, n);
  } else {
    relu_masked_gradient_reference(grad, state, out, n);
  }
}

void learnable_forward_span(const float* x, float* y, int64_t n, const LearnableGrid& grid) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::learnable_forward(x, y, n, grid);
  } else {
    learnable_forward_reference(x, y, n, grid);
  }
}

void learnable_backward_span(const float* x, const float* grad_y, int64_t n,
                             const LearnableGrid& grid, const LearnableGradients& out) {
  if (kernel_isa() == KernelIsa::avx2) {
    avx2::learnable_backward(x, grad_y, n, grid, out);
  } else {
    learnable_backward_reference(x, grad_y, n, grid, out);
  }
}

}  // namespace linquant
