// The ATen ops TorchScript models use, mapped to IR nodes with the attribute conventions of
// include/linquant/ir/op.h. An op without a rule is a capture error naming it.
#include "linquant/ir/attribute_keys.h"
#include "script_op_call.h"

namespace linquant::frontend::script {
namespace {

using ir::Attributes;
using ir::Op;
using Kind = SymValue::Kind;

SymValue conv(const OpCall& c, bool transposed, const std::vector<int64_t>& padding) {
  if (!c.arg("input").is(Kind::tensor)) c.fail(c.kind() + " of a value that is not an activation");
  Attributes attrs;
  attrs.set(ir::attr::weight, *c.model_tensor("weight"));
  if (auto bias = c.model_tensor("bias")) attrs.set(ir::attr::bias, *bias);
  const std::vector<int64_t> stride = c.ints("stride");
  if (stride.empty() || stride.size() > 3) {
    c.fail(c.kind() + " with " + std::to_string(stride.size()) + " spatial dimensions");
  }
  attrs.set("stride", stride);
  attrs.set("padding", padding);
  attrs.set("dilation", c.ints("dilation"));
  attrs.set("groups", c.i("groups"));
  attrs.set("spatial_dims", static_cast<int64_t>(stride.size()));
  if (transposed) attrs.set("output_padding", c.ints("output_padding"));
  return c.emit(transposed ? Op::conv_transpose : Op::conv, {c.tensor("input")}, std::move(attrs));
}

// aten::conv2d.padding takes "valid" or "same"; only "valid" (no padding) is expressible.
std::vector<int64_t> conv_padding(const OpCall& c) {
  const SymValue& padding = c.arg("padding");
  if (padding.is(Kind::constant) && padding.constant.isString()) {
    if (padding.constant.toStringRef() != "valid") {
      c.fail(c.kind() + " with padding \"" + padding.constant.toStringRef() +
             "\" (use explicit padding sizes)");
    }
    return std::vector<int64_t>(c.ints("stride").size(), 0);
  }
  return c.ints("padding");
}

SymValue unary(const OpCall& c, Op op, Attributes attrs = {}) {
  return c.emit(op, {c.first_tensor()}, std::move(attrs));
}

SymValue with_dim(const OpCall& c, Op op) {
  if (c.has("dtype") && !c.is_none("dtype")) c.fail(c.kind() + " with a dtype argument");
  Attributes attrs;
  attrs.set("dim", c.i("dim"));
  return unary(c, op, std::move(attrs));
}

// A producer whose bias is still free, for `matmul(x, W.t()) + b` written out by hand.
std::optional<size_t> biasless_linear(ir::Graph& graph, ir::ValueId value) {
  const auto producer = graph.producer(value);
  if (!producer) return std::nullopt;
  const ir::Node& node = graph.nodes()[*producer];
  if (node.op != Op::linear || node.attrs.has(ir::attr::bias) ||
      graph.consumers(value).size() != 0) {
    return std::nullopt;
  }
  return producer;
}

SymValue binary(const OpCall& c, Op op) {
  SymValue a = c.arg("self");
  SymValue b = c.arg("other");
  const bool commutative = op == Op::add || op == Op::mul;
  if (!a.is(Kind::tensor) && b.is(Kind::tensor) && commutative) std::swap(a, b);
  Attributes attrs;
  if (c.has("alpha")) {
    const double alpha = c.f("alpha");
    if (alpha != 1.0) attrs.set("alpha", alpha);
  }
  if (c.has("rounding_mode") && !c.is_none("rounding_mode")) {
    c.fail(c.kind() + " with a rounding mode");
  }
  if (a.is(Kind::tensor)) {
    if (const auto scalar = scalar_of(b)) {
      attrs.set("scalar", *scalar);
      return c.emit(op, {a.tensor}, std::move(attrs));
    }
    if (op == Op::add && b.is(Kind::model_tensor) && !b.transposed && attrs.all().empty()) {
      if (const auto linear = biasless_linear(c.interpreter.graph(), a.tensor)) {
        c.interpreter.graph().nodes()[*linear].attrs.set(ir::attr::bias, b.name);
        return a;
      }
    }
  }
  // Two tensors, one of which may be a model tensor used as a value (x * self.scale).
  const bool has_activation = a.is(Kind::tensor) || b.is(Kind::tensor);
  const auto x = c.operand(a);
  const auto y = c.operand(b);
  if (!has_activation || !x || !y) c.fail(c.kind() + " of " + describe(a) + " and " + describe(b));
  return c.emit(op, {*x, *y}, std::move(attrs));
}

// The operands of a Tensor[] argument named "tensors" (cat, einsum); anything that is not a
// list of tensor operands makes the call a generic op.
std::vector<ir::ValueId> tensor_list(const OpCall& c) {
  const SymValue& list = c.arg("tensors");
  if (!list.is(Kind::sequence)) c.fail(c.kind() + " of " + describe(list));
  std::vector<ir::ValueId> inputs;
  for (const SymValue& item : list.items) {
    const auto input = c.operand(item);
    if (!input) c.fail(c.kind() + " of " + describe(item));
    inputs.push_back(*input);
  }
  return inputs;
}

SymValue matmul(const OpCall& c, const char* other_name) {
  const SymValue& self = c.arg("self");
  const SymValue& other = c.arg(other_name);
  if (self.is(Kind::tensor) && other.is(Kind::model_tensor) && other.transposed) {
    Attributes attrs;  // x @ W.t(): a Linear without bias
    attrs.set(ir::attr::weight, other.name);
    return c.emit(Op::linear, {self.tensor}, std::move(attrs));
  }
  const auto x = c.operand(self);
  const auto y = c.operand(other);
  if (!(self.is(Kind::tensor) || other.is(Kind::tensor)) || !x || !y) {
    c.fail(c.kind() + " of " + describe(self) + " and " + describe(other));
  }
  return c.emit(Op::matmul, {*x, *y});
}

// A pooling size argument as `spatial_dims` numbers: PyTorch repeats a single number (C++'s
// torch::max_pool2d(x, 2) records kernel_size [2]).
std::vector<int64_t> per_dim(std::vector<int64_t> sizes, int64_t spatial_dims) {
  if (sizes.size() == 1) sizes.assign(static_cast<size_t>(spatial_dims), sizes[0]);
  return sizes;
}

SymValue pool(const OpCall& c, Op op, int64_t spatial_dims) {
  const std::vector<int64_t> kernel = per_dim(c.ints("kernel_size"), spatial_dims);
  std::vector<int64_t> stride = per_dim(c.ints("stride"), spatial_dims);
  if (stride.empty()) stride = kernel;  // PyTorch's default: stride = kernel_size
  if (kernel.size() != static_cast<size_t>(spatial_dims)) {
    c.fail(c.kind() + " with a kernel_size of " + std::to_string(kernel.size()) + " numbers");
  }
  Attributes attrs;
  attrs.set("kernel_size", kernel);
  attrs.set("stride", stride);
  attrs.set("padding", per_dim(c.ints("padding"), spatial_dims));
  attrs.set("ceil_mode", c.b("ceil_mode"));
  if (op == Op::max_pool) {
    attrs.set("dilation", per_dim(c.ints("dilation"), spatial_dims));
  } else {
    attrs.set("count_include_pad", c.b("count_include_pad"));
    if (c.has("divisor_override") && !c.is_none("divisor_override")) {
      attrs.set("divisor_override", c.i("divisor_override"));
    }
  }
  attrs.set("spatial_dims", spatial_dims);
  return c.emit(op, {c.first_tensor()}, std::move(attrs));
}

// view/reshape shapes: -1 infers, 0 copies the input's size at that index, so that
// x.view(x.size(0), -1) works for every batch size.
SymValue reshape(const OpCall& c, const char* shape_name) {
  const ir::ValueId input = c.tensor("self");
  const SymValue& shape = c.arg(shape_name);
  std::vector<SymValue> items = shape.items;
  if (!shape.is(Kind::sequence)) {
    for (int64_t size : c.ints(shape_name)) items.push_back(SymValue::make_constant(size));
  }
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < items.size(); ++k) {
    const SymValue& item = items[k];
    if (item.is(Kind::constant) && item.constant.isInt() && item.constant.toInt() != 0) {
      sizes.push_back(item.constant.toInt());
    } else if (item.is(Kind::value) &&
               c.interpreter.size_source(item.tensor) ==
                   std::make_optional(std::make_pair(input, static_cast<int64_t>(k)))) {
      sizes.push_back(0);
    } else {
      c.fail(c.kind() + " whose shape entry " + std::to_string(k) + " is " + describe(item) +
             " (shapes may hold constants, -1, and the input's own size at the same index)");
    }
  }
  Attributes attrs;
  attrs.set("shape", sizes);
  return c.emit(Op::reshape, {input}, std::move(attrs));
}

SymValue dropout(const OpCall& c, bool feature) {
  Attributes attrs;
  attrs.set("p", c.f("p"));
  if (feature) attrs.set("feature", true);  // channel-wise, as Dropout2d
  return c.emit(Op::dropout, {c.first_tensor()}, std::move(attrs));
}

SymValue pass_through(const OpCall& c) { return c.input(0); }

}  // namespace

const std::unordered_map<std::string, TensorOpRule>& tensor_op_rules() {
  static const std::unordered_map<std::string, TensorOpRule> all = {
      {"aten::_convolution",
       [](const OpCall& c) { return conv(c, c.b("transposed"), c.ints("padding")); }},
      {"aten::conv1d", [](const OpCall& c) { return conv(c, false, conv_padding(c)); }},
      {"aten::conv2d", [](const OpCall& c) { return conv(c, false, conv_padding(c)); }},
      {"aten::conv_transpose1d", [](const OpCall& c) { return conv(c, true, c.ints("padding")); }},
      {"aten::conv_transpose2d", [](const OpCall& c) { return conv(c, true, c.ints("padding")); }},
      {"aten::conv3d", [](const OpCall& c) { return conv(c, false, conv_padding(c)); }},
      {"aten::conv_transpose3d", [](const OpCall& c) { return conv(c, true, c.ints("padding")); }},
      {"aten::linear",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set(ir::attr::weight, *c.model_tensor("weight"));
         if (auto bias = c.model_tensor("bias")) attrs.set(ir::attr::bias, *bias);
         return c.emit(Op::linear, {c.tensor("input")}, std::move(attrs));
       }},
      {"aten::embedding",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set(ir::attr::weight, *c.model_tensor("weight"));
         attrs.set("padding_idx", c.i("padding_idx"));
         attrs.set("scale_grad_by_freq", c.b("scale_grad_by_freq"));
         attrs.set("sparse", c.b("sparse"));
         return c.emit(Op::embedding, {c.tensor("indices")}, std::move(attrs));
       }},
      {"aten::addmm",
       [](const OpCall& c) {  // addmm(b, x, W.t()): how older exports spell Linear
         const SymValue& weight = c.arg("mat2");
         if (!weight.is(Kind::model_tensor) || !weight.transposed || c.f("beta") != 1.0 ||
             c.f("alpha") != 1.0) {
           c.fail("aten::addmm other than a Linear layer's addmm(bias, x, weight.t())");
         }
         Attributes attrs;
         attrs.set(ir::attr::weight, weight.name);
         attrs.set(ir::attr::bias, *c.model_tensor("self"));
         return c.emit(Op::linear, {c.tensor("mat1")}, std::move(attrs));
       }},
      {"aten::batch_norm",
       [](const OpCall& c) {
         Attributes attrs;
         if (auto weight = c.model_tensor("weight")) attrs.set(ir::attr::weight, *weight);
         if (auto bias = c.model_tensor("bias")) attrs.set(ir::attr::bias, *bias);
         const auto mean = c.model_tensor("running_mean");
         const auto var = c.model_tensor("running_var");
         if (!mean || !var) c.fail("aten::batch_norm without running statistics");
         const SymValue& momentum = c.arg("momentum");
         if (!scalar_of(momentum)) {
           c.fail("aten::batch_norm whose momentum is " + describe(momentum) +
                  " (momentum None, a cumulative average, cannot be expressed)");
         }
         attrs.set(ir::attr::running_mean, *mean);
         attrs.set(ir::attr::running_var, *var);
         attrs.set("eps", c.f("eps"));
         attrs.set("momentum", *scalar_of(momentum));
         // The traced num_batches_tracked.add_(1) is dropped: the runtime counts batches.
         const std::string counter = mean->substr(0, mean->rfind('.') + 1) + "num_batches_tracked";
         if (c.interpreter.graph().has_tensor(counter))
           attrs.set(ir::attr::num_batches_tracked, counter);
         return c.emit(Op::batch_norm, {c.tensor("input")}, std::move(attrs));
       }},
      {"aten::layer_norm",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("normalized_shape", c.ints("normalized_shape"));
         if (auto weight = c.model_tensor("weight")) attrs.set(ir::attr::weight, *weight);
         if (auto bias = c.model_tensor("bias")) attrs.set(ir::attr::bias, *bias);
         attrs.set("eps", c.f("eps"));
         return c.emit(Op::layer_norm, {c.tensor("input")}, std::move(attrs));
       }},
      {"aten::relu", [](const OpCall& c) { return unary(c, Op::relu); }},
      {"aten::relu6", [](const OpCall& c) { return unary(c, Op::relu6); }},
      {"aten::hardtanh",
       [](const OpCall& c) {
         if (c.f("min_val") != 0.0 || c.f("max_val") != 6.0) {
           c.fail("aten::hardtanh with a range other than [0, 6] (only ReLU6 has an IR op)");
         }
         return unary(c, Op::relu6);
       }},
      {"aten::leaky_relu",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("negative_slope", c.f("negative_slope"));
         return unary(c, Op::leaky_relu, std::move(attrs));
       }},
      {"aten::hardswish", [](const OpCall& c) { return unary(c, Op::hardswish); }},
      {"aten::hardsigmoid", [](const OpCall& c) { return unary(c, Op::hardsigmoid); }},
      {"aten::sigmoid", [](const OpCall& c) { return unary(c, Op::sigmoid); }},
      {"aten::tanh", [](const OpCall& c) { return unary(c, Op::tanh); }},
      {"aten::silu", [](const OpCall& c) { return unary(c, Op::silu); }},
      {"aten::softmax", [](const OpCall& c) { return with_dim(c, Op::softmax); }},
      {"aten::log_softmax", [](const OpCall& c) { return with_dim(c, Op::log_softmax); }},
      {"aten::gelu",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("approximate", c.has("approximate") ? c.s("approximate") : "none");
         return unary(c, Op::gelu, std::move(attrs));
       }},
      {"aten::elu",
       [](const OpCall& c) {
         if (c.f("scale") != 1.0 || c.f("input_scale") != 1.0) {
           c.fail("aten::elu with scale or input_scale other than 1 (SELU and CELU have no IR op)");
         }
         Attributes attrs;
         attrs.set("alpha", c.f("alpha"));
         return unary(c, Op::elu, std::move(attrs));
       }},
      {"aten::max_pool1d", [](const OpCall& c) { return pool(c, Op::max_pool, 1); }},
      {"aten::max_pool2d", [](const OpCall& c) { return pool(c, Op::max_pool, 2); }},
      {"aten::avg_pool1d", [](const OpCall& c) { return pool(c, Op::avg_pool, 1); }},
      {"aten::avg_pool2d", [](const OpCall& c) { return pool(c, Op::avg_pool, 2); }},
      {"aten::max_pool3d", [](const OpCall& c) { return pool(c, Op::max_pool, 3); }},
      {"aten::avg_pool3d", [](const OpCall& c) { return pool(c, Op::avg_pool, 3); }},
      {"aten::adaptive_avg_pool1d",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("output_size", c.ints("output_size"));
         return c.emit(Op::adaptive_avg_pool, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::adaptive_avg_pool2d",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("output_size", c.ints("output_size"));
         return c.emit(Op::adaptive_avg_pool, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::adaptive_avg_pool3d",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("output_size", c.ints("output_size"));
         return c.emit(Op::adaptive_avg_pool, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::mean",
       [](const OpCall& c) {
         if (c.has("dtype") && !c.is_none("dtype")) c.fail("aten::mean with a dtype argument");
         Attributes attrs;  // no dims: all of them, as ATen's mean.dim with an empty list
         attrs.set("dims", c.has("dim") && !c.is_none("dim") ? c.ints("dim")
                                                              : std::vector<int64_t>{});
         attrs.set("keepdim", c.has("keepdim") ? c.b("keepdim") : false);
         return c.emit(Op::mean, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::flatten",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("start_dim", c.i("start_dim"));
         attrs.set("end_dim", c.i("end_dim"));
         return c.emit(Op::flatten, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::view", [](const OpCall& c) { return reshape(c, "size"); }},
      {"aten::reshape", [](const OpCall& c) { return reshape(c, "shape"); }},
      {"aten::permute",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("dims", c.ints("dims"));
         return c.emit(Op::permute, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::transpose",
       [](const OpCall& c) {
         const SymValue& self = c.arg("self");
         const int64_t dim0 = c.i("dim0");
         const int64_t dim1 = c.i("dim1");
         if (self.is(Kind::model_tensor) && dim0 + dim1 == 1 && (dim0 == 0 || dim1 == 0)) {
           SymValue transposed = self;  // W.transpose(0, 1) feeding a matmul
           transposed.transposed = !self.transposed;
           return transposed;
         }
         Attributes attrs;
         attrs.set("dim0", dim0);
         attrs.set("dim1", dim1);
         return c.emit(Op::transpose, {c.tensor("self")}, std::move(attrs));
       }},
      {"aten::t",
       [](const OpCall& c) {
         const SymValue& self = c.arg("self");
         if (!self.is(Kind::model_tensor)) {
           c.fail("aten::t of an activation (use transpose with explicit dims)");
         }
         SymValue transposed = self;
         transposed.transposed = !self.transposed;
         return transposed;
       }},
      {"aten::cat",
       [](const OpCall& c) {
         Attributes attrs;
         attrs.set("dim", c.i("dim"));
         return c.emit(Op::cat, tensor_list(c), std::move(attrs));
       }},
      {"aten::dropout", [](const OpCall& c) { return dropout(c, false); }},
      {"aten::feature_dropout", [](const OpCall& c) { return dropout(c, true); }},
      {"aten::add", [](const OpCall& c) { return binary(c, Op::add); }},
      {"aten::sub", [](const OpCall& c) { return binary(c, Op::sub); }},
      {"aten::mul", [](const OpCall& c) { return binary(c, Op::mul); }},
      {"aten::div", [](const OpCall& c) { return binary(c, Op::div); }},
      {"aten::matmul", [](const OpCall& c) { return matmul(c, "other"); }},
      {"aten::mm", [](const OpCall& c) { return matmul(c, "mat2"); }},
      {"aten::bmm", [](const OpCall& c) { return matmul(c, "mat2"); }},
      {"aten::einsum",
       [](const OpCall& c) {
         // A binary op for placement (coremltools observes the operands of torch.einsum);
         // a contraction path (1.13's optional argument) only changes the evaluation order.
         Attributes attrs;
         attrs.set("equation", c.s("equation"));
         return c.emit(Op::einsum, tensor_list(c), std::move(attrs));
       }},
      // Value-preserving ops: the IR has no memory layout or autograd detachment.
      {"aten::contiguous", pass_through},
      {"aten::clone", pass_through},
      {"aten::detach", pass_through},
      {"aten::alias", pass_through},
  };
  return all;
}

}  // namespace linquant::frontend::script
