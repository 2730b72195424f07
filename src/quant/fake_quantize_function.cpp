// The autograd functions behind fake_quantize(), relu_fake_quantize(), add_fake_quantize() and
// hardswish_fake_quantize(): forward through the kernels, backward multiplies the incoming
// gradient by the saved in-range mask (straight-through estimator), and for the ReLU forms
// also zeroes it where x <= 0; the hardswish form then applies hardswish's own gradient.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <sstream>
#include <vector>

#include "aten_loop_split.h"
#include "capped_relu.h"
#include "element_blocks.h"
#include "hardswish_gradient.h"
#include "linquant/common/error.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/quant/kernel_dispatch.h"
#include "linquant/quant/parallel.h"
#include "qparam_tensors.h"

namespace linquant {
namespace {

// dx from dy and the saved mask (bool: dy * mask; uint8 ReLU states: see
// relu_masked_gradient_reference) for the function's first `operands` arguments (an add's
// two operands get the same gradient, as ATen's AddBackward passes it on with alpha 1), and
// undefined gradients for the rest of its `inputs` arguments.
template <typename MaskT>
torch::autograd::variable_list masked_backward(
    torch::autograd::AutogradContext* ctx, const torch::autograd::variable_list& grads,
    size_t inputs, void (*span)(const float*, const MaskT*, float*, int64_t), size_t operands = 1) {
  const at::Tensor mask = ctx->get_saved_variables()[0];
  const at::Tensor grad = grads[0].to(at::kFloat).contiguous();
  at::Tensor grad_input = at::empty_like(grad);
  const float* gp = grad.data_ptr<float>();
  const MaskT* mp = mask.data_ptr<MaskT>();
  float* op = grad_input.data_ptr<float>();
  at::parallel_for(0, grad.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
    span(gp + begin, mp + begin, op + begin, end - begin);
  });
  torch::autograd::variable_list result(inputs);
  for (size_t k = 0; k < operands; ++k) result[k] = grad_input;
  return result;
}

class FakeQuantizeFunction : public torch::autograd::Function<FakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                            int64_t quant_min, int64_t quant_max) {
    const at::Tensor x = input.contiguous();
    at::Tensor y = at::empty_like(x);
    at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
    std::vector<QParam> qparams = read_qparams(scale, zero_point);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    bool* mp = mask.data_ptr<bool>();

    if (axis < 0) {
      if (qparams.size() != 1) {
        throw QuantError("fake_quantize: per-tensor quantization needs one scale, got " +
                         std::to_string(qparams.size()));
      }
      at::parallel_for(0, x.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
        fake_quantize_span(xp + begin, yp + begin, mp + begin, end - begin, qparams[0],
                                quant_min, quant_max);
      });
    } else {
      if (axis >= x.dim()) {
        throw QuantError("fake_quantize: axis " + std::to_string(axis) +
                         " is out of range for a tensor of rank " + std::to_string(x.dim()));
      }
      const int64_t channels = x.size(axis);
      // One scale for many channels happens before any observation: broadcast it.
      if (qparams.size() == 1 && channels != 1) qparams.assign(channels, qparams[0]);
      if (static_cast<int64_t>(qparams.size()) != channels) {
        std::ostringstream message;
        message << "fake_quantize: " << qparams.size() << " scales for " << channels
                << " channels on axis " << axis;
        throw QuantError(message.str());
      }
      int64_t outer = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
      int64_t inner = 1;
      for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.size(d);
      const int64_t rows = outer * channels;
      parallel_for_rows(rows, inner, [&](int64_t r) {
        const int64_t offset = r * inner;
        fake_quantize_span(xp + offset, yp + offset, mp + offset, inner, qparams[r % channels],
                           quant_min, quant_max);
      });
    }
    ctx->save_for_backward({mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // Same values as ATen's cachemask backward (dY * mask), NaN * 0 included.
    return masked_backward(ctx, grads, 6, masked_gradient_span);
  }
};

// Per-channel (axis 0) fake quantize whose qparams come from observing each row first:
// observe(x, on_row) calls on_row(c, qparam) once per row, and the row is fake-quantized
// right there, while it is still in cache.
class ObservedRowsFunction : public torch::autograd::Function<ObservedRowsFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            int64_t quant_min, int64_t quant_max, const RowObserver& observe) {
    const at::Tensor x = input.contiguous();
    at::Tensor y = at::empty_like(x);
    at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
    const int64_t inner = x.numel() / x.size(0);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    bool* mp = mask.data_ptr<bool>();
    observe(x, [&](int64_t c, QParam qparam) {
      const int64_t offset = c * inner;
      fake_quantize_span(xp + offset, yp + offset, mp + offset, inner, qparam, quant_min,
                         quant_max);
    });
    ctx->save_for_backward({mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return masked_backward(ctx, grads, 4, masked_gradient_span);
  }
};

// relu then per-tensor fake quantize; the saved state bytes give both gradients at once.
class ReluFakeQuantizeFunction : public torch::autograd::Function<ReluFakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& scale, const at::Tensor& zero_point,
                            int64_t quant_min, int64_t quant_max, double cap) {
    const at::Tensor x = input.contiguous();
    at::Tensor y = at::empty_like(x);
    at::Tensor state = at::empty(x.sizes(), x.options().dtype(at::kByte));
    const QParam qparam = per_tensor_qparam(scale, zero_point, "relu_fake_quantize");
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    uint8_t* sp = state.data_ptr<uint8_t>();
    at::parallel_for(0, x.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      relu_fake_quantize_span(xp + begin, yp + begin, sp + begin, end - begin,
                              static_cast<float>(cap), qparam, quant_min, quant_max);
    });
    ctx->save_for_backward({state});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return masked_backward(ctx, grads, 6, relu_masked_gradient_span);
  }
};

// add, an optional ReLU / ReLU6, then per-tensor fake quantize: each block of the sum
// (element_blocks.h) is quantized while it is in L1, with the same kernels and mask as above.
class AddFakeQuantizeFunction : public torch::autograd::Function<AddFakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                            const at::Tensor& b, const at::Tensor& scale,
                            const at::Tensor& zero_point, int64_t quant_min, int64_t quant_max,
                            bool relu, double cap) {
    const QParam qparam = per_tensor_qparam(scale, zero_point, "add_fake_quantize");
    at::Tensor y = at::empty(a.sizes(), a.options());
    at::Tensor mask = at::empty(a.sizes(), a.options().dtype(relu ? at::kByte : at::kBool));
    const float* ap = a.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    uint8_t* states = relu ? mask.data_ptr<uint8_t>() : nullptr;
    bool* in_range = relu ? nullptr : mask.data_ptr<bool>();
    const auto relu_cap = static_cast<float>(cap);
    at::parallel_for(0, a.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      for_each_sum_block(ap + begin, bp + begin, end - begin,
                         [&](const float* sum, int64_t offset, int64_t count) {
                           const int64_t i = begin + offset;
                           if (relu) {
                             relu_fake_quantize_span(sum, yp + i, states + i, count, relu_cap,
                                                     qparam, quant_min, quant_max);
                           } else {
                             fake_quantize_span(sum, yp + i, in_range + i, count, qparam, quant_min,
                                                quant_max);
                           }
                         });
    });
    ctx->saved_data["relu"] = relu;
    ctx->save_for_backward({mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (ctx->saved_data["relu"].toBool()) {
      return masked_backward(ctx, grads, 8, relu_masked_gradient_span, 2);
    }
    return masked_backward(ctx, grads, 8, masked_gradient_span, 2);
  }
};

// hardswish, then per-tensor fake quantize: blocks of hardswish(x) go through the kernels
// while in L1; x and the mask are kept for the backward pass.
class HardswishFakeQuantizeFunction
    : public torch::autograd::Function<HardswishFakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& scale, const at::Tensor& zero_point,
                            int64_t quant_min, int64_t quant_max) {
    const QParam qparam = per_tensor_qparam(scale, zero_point, "hardswish_fake_quantize");
    at::Tensor y = at::empty_like(x);
    at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    bool* mp = mask.data_ptr<bool>();
    at::parallel_for(0, x.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      for_each_hardswish_block(
          xp + begin, end - begin, [&](const float* h, int64_t offset, int64_t count) {
            const int64_t i = begin + offset;
            fake_quantize_span(h, yp + i, mp + i, count, qparam, quant_min, quant_max);
          });
    });
    ctx->save_for_backward({x, mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor grad = grads[0].to(at::kFloat).contiguous();
    at::Tensor grad_input = at::empty_like(grad);
    // ATen's split of the same call, on the threads it would have now.
    const AtenLoopSplit split = aten_loop_split_here(grad.numel());
    const float* gp = grad.data_ptr<float>();
    const bool* mp = saved[1].data_ptr<bool>();
    const float* xp = saved[0].data_ptr<float>();
    float* op = grad_input.data_ptr<float>();
    at::parallel_for(0, grad.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      hardswish_masked_gradient(gp + begin, mp + begin, xp + begin, op + begin, end - begin, begin,
                                split);
    });
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_quant_range(int64_t quant_min, int64_t quant_max) {
  if (quant_min > quant_max) {
    throw QuantError("fake_quantize: quant_min " + std::to_string(quant_min) +
                     " is above quant_max " + std::to_string(quant_max));
  }
}

}  // namespace

at::Tensor fake_quantize_observed_rows(const at::Tensor& x, int64_t quant_min, int64_t quant_max,
                                       const RowObserver& observe) {
  check_quant_range(quant_min, quant_max);
  if (x.scalar_type() != at::kFloat || x.dim() == 0 || x.numel() == 0) {
    throw QuantError("fake_quantize_observed_rows needs a non-empty float32 tensor");
  }
  return ObservedRowsFunction::apply(x, quant_min, quant_max, observe);
}

at::Tensor relu_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                              const at::Tensor& zero_point, int64_t quant_min,
                              int64_t quant_max, float cap) {
  check_quant_range(quant_min, quant_max);
  if (x.scalar_type() != at::kFloat) {
    return fake_quantize(capped_relu(x, cap), scale, zero_point, -1, quant_min, quant_max);
  }
  return ReluFakeQuantizeFunction::apply(x, scale, zero_point, quant_min, quant_max,
                                         static_cast<double>(cap));
}

at::Tensor add_fake_quantize(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale,
                             const at::Tensor& zero_point, int64_t quant_min, int64_t quant_max,
                             std::optional<float> relu_cap) {
  check_quant_range(quant_min, quant_max);
  if (a.scalar_type() != at::kFloat || b.scalar_type() != at::kFloat || a.sizes() != b.sizes()) {
    throw QuantError("add_fake_quantize needs float32 operands of one shape");
  }
  return AddFakeQuantizeFunction::apply(a.contiguous(), b.contiguous(), scale, zero_point,
                                        quant_min, quant_max, relu_cap.has_value(),
                                        static_cast<double>(relu_cap.value_or(0.0f)));
}

bool hardswish_fake_quantize_fuses(const at::Tensor& x) {
  return x.scalar_type() == at::kFloat && x.is_contiguous() && aten_vector_loop_step() != 0;
}

at::Tensor hardswish_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                                   const at::Tensor& zero_point, int64_t quant_min,
                                   int64_t quant_max) {
  check_quant_range(quant_min, quant_max);
  if (!hardswish_fake_quantize_fuses(x)) {
    return fake_quantize(at::hardswish(x), scale, zero_point, -1, quant_min, quant_max);
  }
  return HardswishFakeQuantizeFunction::apply(x, scale, zero_point, quant_min, quant_max);
}

at::Tensor fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                         const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                         int64_t quant_max) {
  check_quant_range(quant_min, quant_max);
  if (!at::isFloatingType(x.scalar_type())) {
    throw QuantError(std::string("fake_quantize: expected a floating-point tensor, got ") +
                     c10::toString(x.scalar_type()));
  }
  if (x.scalar_type() == at::kFloat) {
    return FakeQuantizeFunction::apply(x, scale, zero_point, axis, quant_min, quant_max);
  }
  // Other float types are computed in float32 and converted back (autograd follows).
  const at::Tensor y = FakeQuantizeFunction::apply(x.to(at::kFloat), scale, zero_point, axis,
                                                   quant_min, quant_max);
  return y.to(x.scalar_type());
}

}  // namespace linquant
