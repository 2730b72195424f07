// Shared op facts for the passes (reference 3.4 and 3.5).
#include "op_rules.h"

#include <set>
#include <string>

#include "linquant/ir/attribute_keys.h"

namespace linquant::passes {

using ir::Op;
using ir::OutputQuantization;

namespace {

// Activations of coremltools' lists (reference 3.4) that linquant runs as generic LibTorch
// operators: quantized like the others (own output quantizer, fused after conv/linear).
bool is_generic_activation(const ir::Node& node) {
  if (node.op != ir::Op::torch_op) return false;
  static const std::set<std::string> kActivations = {
      "aten::mish",  "aten::celu",        "aten::selu",  "aten::glu",   "aten::log_sigmoid",
      "aten::prelu", "aten::rrelu",       "aten::hardtanh", "aten::exp2", "aten::elu"};
  const std::string& schema = node.attrs.s(ir::attr::schema, "");
  return kActivations.count(schema.substr(0, schema.find('.', schema.find("::")))) != 0;
}

}  // namespace

bool is_weighted(const ir::Node& node) { return ir::op_info(node.op).weighted; }

bool is_fusable_activation(const ir::Node& node, bool after_binary) {
  if (is_generic_activation(node)) return !node.scope.functional || after_binary;
  if (!ir::op_info(node.op).is_activation) return false;
  if (!node.scope.functional || node.op == Op::relu) return true;
  if (!after_binary) return false;
  // coremltools' functional activation list (F.relu6, F.leaky_relu, F.silu, ...).
  switch (node.op) {
    case Op::relu6:
    case Op::leaky_relu:
    case Op::silu:
    case Op::elu:
    case Op::gelu:
    case Op::log_softmax:
    case Op::hardswish: return true;
    default: return false;
  }
}

OutputQuantization output_rule(const ir::Node& node) {
  if (is_generic_activation(node)) return OutputQuantization::own_observer;
  if (node.scope.functional) {
    switch (node.op) {
      case Op::sigmoid:
      case Op::tanh:
      case Op::softmax:
      case Op::batch_norm: return OutputQuantization::not_quantized;
      default: break;
    }
  }
  return ir::op_info(node.op).output;
}

const ir::Node* producer_of(const ir::Graph& graph, ir::ValueId value) {
  const auto index = graph.producer(value);
  return index ? &graph.nodes()[*index] : nullptr;
}

bool is_nonnegative_producer(const ir::Graph& graph, const ir::Node& node) {
  const bool relu_like = node.op == Op::relu || (node.op == Op::relu6 && !node.scope.functional);
  if (!relu_like) return false;
  if (node.attrs.has(ir::attr::fused_with) && !node.inputs.empty()) {
    const ir::Node* root = producer_of(graph, node.inputs[0]);
    if (root && root->op == Op::batch_norm) return false;
  }
  return true;
}

std::optional<QParam> fixed_output_qparams(Op op) {
  switch (op) {
    case Op::sigmoid:
    case Op::hardsigmoid:
    case Op::softmax: return QParam{1.0f / 256.0f, 0};
    case Op::tanh: return QParam{2.0f / 256.0f, 128};
    default: return std::nullopt;
  }
}

std::vector<size_t> nodes_using_quantizer(const ir::Graph& graph, const std::string& quantizer) {
  std::vector<size_t> result;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const ir::Node& node = graph.nodes()[n];
    if (node.op == Op::fake_quantize && node.attrs.s(ir::attr::quantizer) == quantizer)
      result.push_back(n);
  }
  return result;
}

}  // namespace linquant::passes
