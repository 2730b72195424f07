// The ops without state: activations, pooling, reductions, shape and data movement,
// elementwise arithmetic, layer_norm and the fixed-parameter quantize_dequantize. Each is the
// ATen call the matching torch::nn module or functional makes, so results match bit for bit.
#include <ATen/ATen.h>

#include <string>
#include <variant>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/quant/fake_quantize.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

using ir::Op;

// Integer attributes stay integers so that integer tensors keep their dtype.
at::Scalar scalar_attr(const ir::Node& node, const std::string& key, const at::Scalar& fallback) {
  if (!node.attrs.has(key)) return fallback;
  const auto& value = node.attrs.all().at(key);
  if (const auto* i = std::get_if<int64_t>(&value)) return at::Scalar(*i);
  if (const auto* b = std::get_if<bool>(&value)) return at::Scalar(*b);
  return at::Scalar(node.attrs.f(key));
}

// add/sub/mul/div on two tensors, or on a tensor and the `scalar` attribute; with
// `scalar_first` the scalar is the left operand (2 - x, 2 / x).
at::Tensor binary(const ir::Node& node, const std::vector<at::Tensor>& inputs) {
  const at::Tensor& a = inputs[0];
  const at::Scalar alpha = scalar_attr(node, "alpha", at::Scalar(int64_t{1}));
  const std::string rounding = node.attrs.s("rounding_mode", "");
  const c10::optional<c10::string_view> rounding_mode =
      rounding.empty() ? c10::nullopt : c10::optional<c10::string_view>(rounding);
  if (inputs.size() == 2) {
    const at::Tensor& b = inputs[1];
    switch (node.op) {
      case Op::add: return at::add(a, b, alpha);
      case Op::sub: return at::sub(a, b, alpha);
      case Op::mul: return at::mul(a, b);
      default: return at::div(a, b, rounding_mode);
    }
  }
  if (!node.attrs.has("scalar")) throw Error("needs two inputs, or one and a 'scalar' attribute");
  const at::Scalar s = scalar_attr(node, "scalar", at::Scalar(int64_t{0}));
  const bool scalar_first = node.attrs.b("scalar_first", false);
  switch (node.op) {
    case Op::add: return at::add(a, s, alpha);
    case Op::sub: return scalar_first ? at::rsub(a, s, alpha) : at::sub(a, s, alpha);
    case Op::mul: return at::mul(a, s);
    default:
      // torch's __rtruediv__ is reciprocal(x) * scalar.
      if (scalar_first) return at::mul(at::reciprocal(a), s);
      return at::div(a, s, rounding_mode);
  }
}

at::Tensor max_pool(const ir::Node& node, const at::Tensor& x) {
  const auto& kernel = node.attrs.ints("kernel_size");
  const auto& stride = node.attrs.ints("stride");
  const auto& padding = node.attrs.ints("padding");
  const auto& dilation = node.attrs.ints("dilation");
  const bool ceil_mode = node.attrs.b("ceil_mode");
  switch (node.attrs.i("spatial_dims", static_cast<int64_t>(kernel.size()))) {
    case 1: return at::max_pool1d(x, kernel, stride, padding, dilation, ceil_mode);
    case 2: return at::max_pool2d(x, kernel, stride, padding, dilation, ceil_mode);
    case 3: return at::max_pool3d(x, kernel, stride, padding, dilation, ceil_mode);
  }
  throw Error("cannot run max_pool with " + std::to_string(kernel.size()) + " spatial dims");
}

at::Tensor avg_pool(const ir::Node& node, const at::Tensor& x) {
  const auto& kernel = node.attrs.ints("kernel_size");
  const auto& stride = node.attrs.ints("stride");
  const auto& padding = node.attrs.ints("padding");
  const bool ceil_mode = node.attrs.b("ceil_mode");
  const bool count_include_pad = node.attrs.b("count_include_pad");
  const c10::optional<int64_t> divisor =
      node.attrs.has("divisor_override") ? c10::optional<int64_t>(node.attrs.i("divisor_override"))
                                         : c10::nullopt;
  switch (node.attrs.i("spatial_dims", static_cast<int64_t>(kernel.size()))) {
    case 1:
      if (divisor) throw Error("avg_pool over one dimension has no divisor_override");
      return at::avg_pool1d(x, kernel, stride, padding, ceil_mode, count_include_pad);
    case 2:
      return at::avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor);
    case 3:
      return at::avg_pool3d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor);
  }
  throw Error("cannot run avg_pool with " + std::to_string(kernel.size()) + " spatial dims");
}

at::Tensor adaptive_avg_pool(const ir::Node& node, const at::Tensor& x) {
  const auto& size = node.attrs.ints("output_size");
  switch (size.size()) {
    case 1: return at::adaptive_avg_pool1d(x, size);
    case 2: return at::adaptive_avg_pool2d(x, size);
    case 3: return at::adaptive_avg_pool3d(x, size);
  }
  throw Error("cannot run adaptive_avg_pool to " + std::to_string(size.size()) + " dims");
}

// 0 copies the input's size at that index (ONNX and Core ML reshape), -1 is inferred.
at::Tensor reshape(const ir::Node& node, const at::Tensor& x) {
  std::vector<int64_t> shape = node.attrs.ints("shape");
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] != 0) continue;
    if (static_cast<int64_t>(k) >= x.dim()) {
      throw Error("reshape: 0 at index " + std::to_string(k) + " but the input has only " +
                  std::to_string(x.dim()) + " dimensions");
    }
    shape[k] = x.size(static_cast<int64_t>(k));
  }
  return at::reshape(x, shape);
}

at::Tensor layer_norm(const ir::Node& node, const at::Tensor& x, const RunContext& context) {
  return at::layer_norm(x, node.attrs.ints("normalized_shape"),
                        context.optional_tensor(node, "weight"),
                        context.optional_tensor(node, "bias"), node.attrs.f("eps"),
                        /*cudnn_enable=*/true);
}

at::Tensor quantize_dequantize(const ir::Node& node, const at::Tensor& x) {
  const at::Tensor scale = at::full({1}, node.attrs.f(ir::attr::scale), at::kFloat);
  const at::Tensor zero_point = at::full({1}, node.attrs.i(ir::attr::zero_point), at::kInt);
  if (node.attrs.b(ir::attr::divides_by_scale, false)) {
    return fake_quantize_by_division(x, scale, zero_point, /*axis=*/-1,
                                     node.attrs.i(ir::attr::quant_min),
                                     node.attrs.i(ir::attr::quant_max));
  }
  return fake_quantize(x, scale, zero_point, /*axis=*/-1, node.attrs.i(ir::attr::quant_min),
                       node.attrs.i(ir::attr::quant_max));
}

}  // namespace

at::Tensor run_stateless_op(const ir::Node& node, const std::vector<at::Tensor>& inputs,
                            const RunContext& context) {
  const at::Tensor& x = inputs.at(0);
  switch (node.op) {
    case Op::layer_norm: return layer_norm(node, x, context);
    case Op::relu: return at::relu(x);
    case Op::relu6: return at::hardtanh(x, 0.0, 6.0);
    case Op::leaky_relu: return at::leaky_relu(x, node.attrs.f("negative_slope"));
    case Op::hardswish: return at::hardswish(x);
    case Op::hardsigmoid: return at::hardsigmoid(x);
    case Op::sigmoid: return at::sigmoid(x);
    case Op::tanh: return at::tanh(x);
    case Op::softmax: return at::softmax(x, node.attrs.i("dim"));
    case Op::log_softmax: return at::log_softmax(x, node.attrs.i("dim"));
    case Op::gelu: return at::gelu(x, node.attrs.s("approximate", "none"));
    case Op::silu: return at::silu(x);
    case Op::elu: return at::elu(x, node.attrs.f("alpha"));
    case Op::max_pool: return max_pool(node, x);
    case Op::avg_pool: return avg_pool(node, x);
    case Op::adaptive_avg_pool: return adaptive_avg_pool(node, x);
    case Op::mean: return at::mean(x, node.attrs.ints("dims"), node.attrs.b("keepdim"));
    case Op::flatten: return at::flatten(x, node.attrs.i("start_dim"), node.attrs.i("end_dim"));
    case Op::reshape: return reshape(node, x);
    case Op::permute: return at::permute(x, node.attrs.ints("dims"));
    case Op::transpose: return at::transpose(x, node.attrs.i("dim0"), node.attrs.i("dim1"));
    case Op::cat: return at::cat(inputs, node.attrs.i("dim"));
    case Op::identity: return x;
    case Op::dropout: {
      const bool active = context.training && !context.record_only;
      // `feature`: whole channels at once, as Dropout2d.
      if (node.attrs.b("feature", false)) {
        return at::feature_dropout(x, node.attrs.f("p", 0.5), active);
      }
      return at::dropout(x, node.attrs.f("p", 0.5), active);
    }
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div: return binary(node, inputs);
    case Op::matmul: return at::matmul(inputs.at(0), inputs.at(1));
    case Op::einsum:
      return at::einsum(node.attrs.s("equation"), inputs);
    case Op::quantize_dequantize: return quantize_dequantize(node, x);
    default: break;
  }
  throw Error("the interpreter cannot run this op");
}

}  // namespace linquant::runtime
