// Capture rules for the leaf modules of LibTorch's C++ frontend: each becomes one IR node whose
// attributes follow include/linquant/ir/op.h. LibTorch 1.13 has no Hardswish or Hardsigmoid
// module, so there is no rule for them here (TorchScript models have them).
#include "sequential_layers.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/pooling.h>

#include <functional>
#include <vector>

#include "capture_error.h"
#include "linquant/frontend/capture.h"
#include "linquant/ir/attribute_keys.h"
#include "node_emit.h"

namespace linquant::frontend {
namespace {

namespace nn = torch::nn;
using ir::Attributes;
using ir::Op;

std::vector<int64_t> to_vector(at::ArrayRef<int64_t> values) {
  return std::vector<int64_t>(values.begin(), values.end());
}

// What one rule sees: the module, its input and scope, and the graph to append to.
struct Layer {
  ir::Graph& graph;
  ir::ValueId input;
  const ir::Scope& scope;

  std::string tensor(const std::string& local) const { return scope.module_name + "." + local; }

  ir::ValueId emit(Op op, Attributes attrs = {}) const {
    return emit_node(graph, op, {input}, std::move(attrs), scope)[0];
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw_capture_error(scope.module_type + " with " + problem, scope);
  }
};

template <size_t D, typename Impl>
ir::ValueId conv(const Layer& layer, const Impl& module) {
  const auto& options = module.options;
  if (!c10::get_if<torch::enumtype::kZeros>(&options.padding_mode())) {
    layer.fail("padding_mode " + torch::enumtype::get_enum_name(options.padding_mode()) +
               " (only zero padding is supported)");
  }
  std::vector<int64_t> padding(D, 0);  // kValid pads nothing
  if (const auto* explicit_padding = c10::get_if<torch::ExpandingArray<D>>(&options.padding())) {
    padding = to_vector(*explicit_padding);
  } else if (c10::get_if<torch::enumtype::kSame>(&options.padding())) {
    layer.fail("padding \"same\" (use explicit padding sizes)");
  }
  Attributes attrs;
  attrs.set(ir::attr::weight, layer.tensor("weight"));
  if (options.bias()) attrs.set(ir::attr::bias, layer.tensor("bias"));
  attrs.set("stride", to_vector(options.stride()));
  attrs.set("padding", padding);
  attrs.set("dilation", to_vector(options.dilation()));
  attrs.set("groups", options.groups());
  attrs.set("spatial_dims", static_cast<int64_t>(D));
  if (options.transposed()) {
    attrs.set("output_padding", to_vector(options.output_padding()));
    return layer.emit(Op::conv_transpose, std::move(attrs));
  }
  return layer.emit(Op::conv, std::move(attrs));
}

template <typename Impl>
ir::ValueId batch_norm(const Layer& layer, const Impl& module) {
  const auto& options = module.options;
  if (!options.momentum()) {
    layer.fail("momentum None (a cumulative average) cannot be expressed; set a momentum");
  }
  if (!options.track_running_stats()) {
    layer.fail("track_running_stats=false cannot be expressed");
  }
  Attributes attrs;
  if (options.affine()) {
    attrs.set(ir::attr::weight, layer.tensor("weight"));
    attrs.set(ir::attr::bias, layer.tensor("bias"));
  }
  attrs.set(ir::attr::running_mean, layer.tensor("running_mean"));
  attrs.set(ir::attr::running_var, layer.tensor("running_var"));
  if (layer.graph.has_tensor(layer.tensor("num_batches_tracked"))) {
    attrs.set(ir::attr::num_batches_tracked, layer.tensor("num_batches_tracked"));
  }
  attrs.set("eps", options.eps());
  attrs.set("momentum", *options.momentum());
  return layer.emit(Op::batch_norm, std::move(attrs));
}

template <size_t D, typename Impl>
ir::ValueId max_pool(const Layer& layer, const Impl& module) {
  const auto& options = module.options;
  Attributes attrs;
  attrs.set("kernel_size", to_vector(options.kernel_size()));
  attrs.set("stride", to_vector(options.stride()));
  attrs.set("padding", to_vector(options.padding()));
  attrs.set("dilation", to_vector(options.dilation()));
  attrs.set("ceil_mode", options.ceil_mode());
  attrs.set("spatial_dims", static_cast<int64_t>(D));
  return layer.emit(Op::max_pool, std::move(attrs));
}

template <size_t D, typename Impl>
ir::ValueId avg_pool(const Layer& layer, const Impl& module) {
  const auto& options = module.options;
  Attributes attrs;
  attrs.set("kernel_size", to_vector(options.kernel_size()));
  attrs.set("stride", to_vector(options.stride()));
  attrs.set("padding", to_vector(options.padding()));
  attrs.set("ceil_mode", options.ceil_mode());
  attrs.set("count_include_pad", options.count_include_pad());
  if (options.divisor_override()) attrs.set("divisor_override", *options.divisor_override());
  attrs.set("spatial_dims", static_cast<int64_t>(D));
  return layer.emit(Op::avg_pool, std::move(attrs));
}

template <typename OutputSize>
ir::ValueId adaptive_avg_pool(const Layer& layer, const OutputSize& output_size) {
  std::vector<int64_t> sizes;
  for (const auto& size : *output_size) {
    if (!size) layer.fail("an output size of None (keep the input size) cannot be expressed");
    sizes.push_back(*size);
  }
  Attributes attrs;
  attrs.set("output_size", sizes);
  return layer.emit(Op::adaptive_avg_pool, std::move(attrs));
}

ir::ValueId with_dim(const Layer& layer, Op op, int64_t dim) {
  Attributes attrs;
  attrs.set("dim", dim);
  return layer.emit(op, std::move(attrs));
}

ir::ValueId dropout(const Layer& layer, double p, bool feature) {
  Attributes attrs;
  attrs.set("p", p);
  if (feature) attrs.set("feature", true);  // channel-wise (Dropout2d)
  return layer.emit(Op::dropout, std::move(attrs));
}

using Rule = std::function<std::optional<ir::ValueId>(const Layer&, const nn::Module&)>;

// One rule per module class; `rule<T>(f)` calls f when the module is a T.
template <typename Impl, typename F>
Rule rule(F f) {
  return [f](const Layer& layer, const nn::Module& module) -> std::optional<ir::ValueId> {
    if (const auto* typed = dynamic_cast<const Impl*>(&module)) return f(layer, *typed);
    return std::nullopt;
  };
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> all = {
      rule<nn::Conv1dImpl>([](const Layer& l, const auto& m) { return conv<1>(l, m); }),
      rule<nn::Conv2dImpl>([](const Layer& l, const auto& m) { return conv<2>(l, m); }),
      rule<nn::ConvTranspose1dImpl>([](const Layer& l, const auto& m) { return conv<1>(l, m); }),
      rule<nn::ConvTranspose2dImpl>([](const Layer& l, const auto& m) { return conv<2>(l, m); }),
      rule<nn::LinearImpl>([](const Layer& l, const nn::LinearImpl& m) {
        Attributes attrs;
        attrs.set(ir::attr::weight, l.tensor("weight"));
        if (m.options.bias()) attrs.set(ir::attr::bias, l.tensor("bias"));
        return l.emit(Op::linear, std::move(attrs));
      }),
      rule<nn::BatchNorm1dImpl>([](const Layer& l, const auto& m) { return batch_norm(l, m); }),
      rule<nn::BatchNorm2dImpl>([](const Layer& l, const auto& m) { return batch_norm(l, m); }),
      rule<nn::LayerNormImpl>([](const Layer& l, const nn::LayerNormImpl& m) {
        Attributes attrs;
        attrs.set("normalized_shape", m.options.normalized_shape());
        if (m.options.elementwise_affine()) {
          attrs.set(ir::attr::weight, l.tensor("weight"));
          attrs.set(ir::attr::bias, l.tensor("bias"));
        }
        attrs.set("eps", m.options.eps());
        return l.emit(Op::layer_norm, std::move(attrs));
      }),
      rule<nn::ReLUImpl>([](const Layer& l, const auto&) { return l.emit(Op::relu); }),
      rule<nn::ReLU6Impl>([](const Layer& l, const auto&) { return l.emit(Op::relu6); }),
      rule<nn::HardtanhImpl>([](const Layer& l, const nn::HardtanhImpl& m) {
        if (m.options.min_val() != 0.0 || m.options.max_val() != 6.0) {
          l.fail("a range other than [0, 6] (only ReLU6's range has an IR op)");
        }
        return l.emit(Op::relu6);
      }),
      rule<nn::LeakyReLUImpl>([](const Layer& l, const nn::LeakyReLUImpl& m) {
        Attributes attrs;
        attrs.set("negative_slope", m.options.negative_slope());
        return l.emit(Op::leaky_relu, std::move(attrs));
      }),
      rule<nn::SigmoidImpl>([](const Layer& l, const auto&) { return l.emit(Op::sigmoid); }),
      rule<nn::TanhImpl>([](const Layer& l, const auto&) { return l.emit(Op::tanh); }),
      rule<nn::SoftmaxImpl>([](const Layer& l, const nn::SoftmaxImpl& m) {
        return with_dim(l, Op::softmax, m.options.dim());
      }),
      rule<nn::LogSoftmaxImpl>([](const Layer& l, const nn::LogSoftmaxImpl& m) {
        return with_dim(l, Op::log_softmax, m.options.dim());
      }),
      rule<nn::GELUImpl>([](const Layer& l, const nn::GELUImpl& m) {
        Attributes attrs;
        attrs.set("approximate", m.options.approximate());
        return l.emit(Op::gelu, std::move(attrs));
      }),
      rule<nn::SiLUImpl>([](const Layer& l, const auto&) { return l.emit(Op::silu); }),
      rule<nn::ELUImpl>([](const Layer& l, const nn::ELUImpl& m) {
        Attributes attrs;
        attrs.set("alpha", m.options.alpha());
        return l.emit(Op::elu, std::move(attrs));
      }),
      rule<nn::MaxPool1dImpl>([](const Layer& l, const auto& m) { return max_pool<1>(l, m); }),
      rule<nn::MaxPool2dImpl>([](const Layer& l, const auto& m) { return max_pool<2>(l, m); }),
      rule<nn::AvgPool1dImpl>([](const Layer& l, const auto& m) { return avg_pool<1>(l, m); }),
      rule<nn::AvgPool2dImpl>([](const Layer& l, const auto& m) { return avg_pool<2>(l, m); }),
      rule<nn::AdaptiveAvgPool1dImpl>([](const Layer& l, const nn::AdaptiveAvgPool1dImpl& m) {
        Attributes attrs;
        attrs.set("output_size", to_vector(m.options.output_size()));
        return l.emit(Op::adaptive_avg_pool, std::move(attrs));
      }),
      rule<nn::AdaptiveAvgPool2dImpl>([](const Layer& l, const nn::AdaptiveAvgPool2dImpl& m) {
        return adaptive_avg_pool(l, m.options.output_size());
      }),
      rule<nn::FlattenImpl>([](const Layer& l, const nn::FlattenImpl& m) {
        Attributes attrs;
        attrs.set("start_dim", m.options.start_dim());
        attrs.set("end_dim", m.options.end_dim());
        return l.emit(Op::flatten, std::move(attrs));
      }),
      rule<nn::DropoutImpl>([](const Layer& l, const nn::DropoutImpl& m) {
        return dropout(l, m.options.p(), false);
      }),
      rule<nn::Dropout2dImpl>([](const Layer& l, const nn::Dropout2dImpl& m) {
        return dropout(l, m.options.p(), true);
      }),
      rule<nn::IdentityImpl>([](const Layer& l, const auto&) { return l.emit(Op::identity); }),
  };
  return all;
}

}  // namespace

std::optional<ir::ValueId> capture_sequential_layer(ir::Graph& graph, const nn::Module& module,
                                                    ir::ValueId input, const ir::Scope& scope) {
  const Layer layer{graph, input, scope};
  for (const Rule& r : rules()) {
    if (auto output = r(layer, module)) return output;
  }
  return std::nullopt;
}

}  // namespace linquant::frontend
