// The interpreter: runs a graph's nodes in order on a table of values, dispatching each node
// to its kernel family, calling quantizer modules and float_module callables, freeing values
// after their last use, and turning every failure into a linquant::Error naming the node.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "linquant/common/communication_error.h"
#include "linquant/ir/attribute_keys.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

std::string node_prefix(const ir::Node& node) {
  return "node '" + node.name + "' (" + ir::to_string(node.op) + "): ";
}

// Runs f, rethrowing anything it throws as a linquant::Error that names the node.
template <typename F>
auto for_node(const ir::Node& node, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const CommunicationError&) {
    throw;  // about the job, not this node
  } catch (const c10::Error& e) {
    throw Error(node_prefix(node) + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Error(node_prefix(node) + e.what());
  }
}

std::vector<at::Tensor> call_float_module(const ir::Node& node,
                                          const std::vector<at::Tensor>& inputs,
                                          const RunContext& context) {
  const std::string& name = node.attrs.s(ir::attr::module);
  const auto it = context.graph.float_modules().find(name);
  if (it == context.graph.float_modules().end()) {
    throw Error("no callable is registered for float module '" + name + "'");
  }
  return it->second(inputs);
}

}  // namespace

const at::Tensor& RunContext::tensor(const ir::Node& node, const std::string& key) const {
  const std::string& name = node.attrs.s(key);
  if (!graph.has_tensor(name)) {
    throw Error("attribute '" + key + "' names the unknown tensor '" + name + "'");
  }
  return graph.tensor(name).tensor;
}

at::Tensor RunContext::optional_tensor(const ir::Node& node, const std::string& key) const {
  return node.attrs.has(key) ? tensor(node, key) : at::Tensor();
}

FakeQuantize RunContext::quantizer(const ir::Node& node, const std::string& key) const {
  const std::string& name = node.attrs.s(key);
  const auto it = quantizers.find(name);
  if (it == quantizers.end()) {
    throw Error("attribute '" + key + "' names the unknown quantizer '" + name + "'");
  }
  return it->second;
}

void check_node(const ir::Node& node, const RunContext& context) {
  for_node(node, [&] {
    for (const char* key : ir::attr::tensor_keys) {
      context.optional_tensor(node, key);
    }
    for (const char* key : ir::attr::quantizer_keys) {
      if (node.attrs.has(key)) context.quantizer(node, key);
    }
    if (has_fused_batch_norm(node)) {
      if (!ir::op_info(node.op).weighted) throw Error("only weighted ops can fuse BatchNorm");
      context.tensor(node, ir::attr::bn_running_mean);
      context.tensor(node, ir::attr::bn_running_var);
      node.attrs.f(ir::attr::bn_eps);
    }
    if (node.op == ir::Op::float_module &&
        !context.graph.float_modules().count(node.attrs.s(ir::attr::module))) {
      throw Error("no callable is registered for float module '" + node.attrs.s(ir::attr::module) +
                  "' (ir::Graph::add_float_module)");
    }
    const bool many_outputs = node.op == ir::Op::float_module || node.op == ir::Op::torch_op ||
                              node.op == ir::Op::unpack;
    if (!many_outputs && node.outputs.size() != 1) {
      throw Error("has " + std::to_string(node.outputs.size()) + " outputs, expected 1");
    }
  });
}

namespace {

bool is_value_op(ir::Op op) {
  return op == ir::Op::torch_op || op == ir::Op::constant || op == ir::Op::model_tensor ||
         op == ir::Op::list || op == ir::Op::unpack;
}

std::vector<at::Tensor> tensors_of(const std::vector<c10::IValue>& values) {
  std::vector<at::Tensor> tensors;
  tensors.reserve(values.size());
  for (const c10::IValue& value : values) {
    if (!value.isTensor()) throw Error("an input is " + value.tagKind() + ", not a tensor");
    tensors.push_back(value.toTensor());
  }
  return tensors;
}

std::vector<c10::IValue> values_of(std::vector<at::Tensor> tensors) {
  return std::vector<c10::IValue>(std::make_move_iterator(tensors.begin()),
                                  std::make_move_iterator(tensors.end()));
}

// A chain of nodes that runs as one fused quantizer call (run_graph).
struct FusedChain {
  size_t length = 0;  // nodes in the chain, the quantizer included; 0: no chain
  bool add = false;
  std::optional<float> relu_cap;
  bool hardswish = false;
  bool conv_bn = false;  // a weighted op with fused BatchNorm (run_conv_bn)
};

// add(a, b) of two tensors with alpha 1: the sum the fused kernels compute.
bool adds_two_tensors(const ir::Node& node) {
  if (node.inputs.size() != 2 || node.attrs.has("scalar")) return false;
  if (!node.attrs.has("alpha")) return true;
  const ir::AttributeValue& alpha = node.attrs.all().at("alpha");
  if (const auto* i = std::get_if<int64_t>(&alpha)) return *i == 1;
  if (const auto* f = std::get_if<double>(&alpha)) return *f == 1.0;
  return false;
}

// Two float32 tensors of one shape (no broadcasting, no type promotion).
bool same_shape_float32(const std::vector<at::Tensor>& operands) {
  return operands.size() == 2 && operands[0].scalar_type() == at::kFloat &&
         operands[1].scalar_type() == at::kFloat && operands[0].sizes() == operands[1].sizes();
}

}  // namespace

std::vector<c10::IValue> run_node(const ir::Node& node, std::vector<c10::IValue> inputs,
                                  const RunContext& context) {
  return for_node(node, [&]() -> std::vector<c10::IValue> {
    if (is_value_op(node.op)) return run_value_op(node, std::move(inputs), context);
    const std::vector<at::Tensor> tensors = tensors_of(inputs);
    switch (node.op) {
      case ir::Op::conv:
      case ir::Op::conv_transpose:
      case ir::Op::linear:
      case ir::Op::embedding: return {run_weighted(node, tensors.at(0), context)};
      case ir::Op::batch_norm: return {run_batch_norm(node, tensors.at(0), context)};
      case ir::Op::fake_quantize:
        // Shape recording must not move observers.
        if (context.record_only) return {tensors.at(0)};
        return {context.quantizer(node, ir::attr::quantizer)->forward(tensors.at(0))};
      case ir::Op::float_module: {
        std::vector<at::Tensor> outputs = call_float_module(node, tensors, context);
        if (outputs.size() != node.outputs.size()) {
          throw Error("the float module returned " + std::to_string(outputs.size()) +
                      " tensors for " + std::to_string(node.outputs.size()) + " outputs");
        }
        return values_of(std::move(outputs));
      }
      default: return {run_stateless_op(node, tensors, context)};
    }
  });
}

std::vector<at::Tensor> run_graph(const std::vector<at::Tensor>& inputs,
                                  const RunContext& context,
                                  std::vector<RecordedTensor>* shapes,
                                  const std::vector<bool>* keep,
                                  std::vector<c10::IValue>* kept) {
  const ir::Graph& graph = context.graph;
  if (inputs.size() != graph.inputs().size()) {
    std::string names;
    for (ir::ValueId id : graph.inputs()) {
      names += (names.empty() ? "%" : ", %") + graph.value(id).name;
    }
    throw Error("the graph takes " + std::to_string(graph.inputs().size()) + " inputs (" +
                names + "), got " + std::to_string(inputs.size()));
  }
  const auto& nodes = graph.nodes();
  // Index of the last node reading each value; graph outputs are kept to the end.
  constexpr size_t kKeep = std::numeric_limits<size_t>::max();
  std::vector<size_t> last_use(graph.num_values(), 0);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ir::ValueId id : nodes[n].inputs) last_use[static_cast<size_t>(id)] = n;
  }
  for (ir::ValueId id : graph.outputs()) last_use[static_cast<size_t>(id)] = kKeep;

  std::vector<c10::IValue> values(graph.num_values());
  std::vector<bool> defined(graph.num_values(), false);
  if (shapes) shapes->assign(graph.num_values(), {});
  if (kept) kept->assign(graph.num_values(), c10::IValue());
  auto store = [&](ir::ValueId id, c10::IValue value) {
    if (shapes && value.isTensor()) {
      const at::Tensor& t = value.toTensor();
      (*shapes)[static_cast<size_t>(id)] = {t.sizes().vec(), t.scalar_type()};
    }
    if (kept && keep && (*keep)[static_cast<size_t>(id)]) (*kept)[static_cast<size_t>(id)] = value;
    values[static_cast<size_t>(id)] = std::move(value);
    defined[static_cast<size_t>(id)] = true;
  };
  auto release = [&](ir::ValueId id) {
    values[static_cast<size_t>(id)] = c10::IValue();
    defined[static_cast<size_t>(id)] = false;
  };
  auto read = [&](const ir::Node& node, ir::ValueId id) -> const c10::IValue& {
    if (!defined[static_cast<size_t>(id)]) {
      throw Error(node_prefix(node) + "reads %" + graph.value(id).name + ", which has no value");
    }
    return values[static_cast<size_t>(id)];
  };
  for (size_t k = 0; k < inputs.size(); ++k) store(graph.inputs()[k], inputs[k]);

  // An activation quantizer runs fused with the elementwise ops that produce its input when
  // nothing else reads their outputs: a ReLU / ReLU6 (FakeQuantize::forward_after_relu), a
  // residual add, or an add then a ReLU (forward_after_add), a hardswish
  // (forward_after_hardswish), a conv/linear whose fused BatchNorm is frozen
  // (run_conv_bn). Bit-identical to running them one by one, with one pass over memory each
  // way and no intermediate written. Not while recording shapes, which wants every value.
  auto feeds_only_next = [&](size_t k) {
    return k + 1 < nodes.size() && nodes[k].outputs.size() == 1 &&
           nodes[k + 1].inputs.size() == 1 && nodes[k + 1].inputs[0] == nodes[k].outputs[0] &&
           last_use[static_cast<size_t>(nodes[k].outputs[0])] == k + 1;
  };
  auto fused_chain = [&](size_t n) -> FusedChain {
    if (context.record_only || shapes) return {};
    FusedChain chain;
    size_t k = n;
    if (has_fused_batch_norm(nodes[k])) {
      if (nodes[k].inputs.size() != 1 || !feeds_only_next(k)) return {};
      chain.conv_bn = true;
      ++k;
    } else if (nodes[k].op == ir::Op::hardswish) {
      if (nodes[k].inputs.size() != 1 || !feeds_only_next(k)) return {};
      chain.hardswish = true;
      ++k;
    } else if (nodes[k].op == ir::Op::add) {
      if (!adds_two_tensors(nodes[k]) || !feeds_only_next(k)) return {};
      chain.add = true;
      ++k;
    }
    if (!chain.hardswish && !chain.conv_bn &&
        (nodes[k].op == ir::Op::relu || nodes[k].op == ir::Op::relu6)) {
      if (nodes[k].inputs.size() != 1 || !feeds_only_next(k)) return {};
      chain.relu_cap = nodes[k].op == ir::Op::relu6 ? 6.0f : kReluUncapped;
      ++k;
    }
    if (k == n || nodes[k].op != ir::Op::fake_quantize) return {};
    chain.length = k - n + 1;
    return chain;
  };

  for (size_t n = 0; n < nodes.size(); ++n) {
    const ir::Node& node = nodes[n];
    if (const FusedChain chain = fused_chain(n); chain.length > 0) {
      const ir::Node& quantize = nodes[n + chain.length - 1];
      std::vector<at::Tensor> operands;
      for (ir::ValueId id : node.inputs) {
        const c10::IValue& value = read(node, id);
        if (value.isTensor()) operands.push_back(value.toTensor());
      }
      if (operands.size() == node.inputs.size() && (!chain.add || same_shape_float32(operands))) {
        // A conv's errors name the conv, the elementwise ops' name the quantizer.
        store(quantize.outputs[0], for_node(chain.conv_bn ? node : quantize, [&] {
                FakeQuantize quantizer = context.quantizer(quantize, ir::attr::quantizer);
                if (chain.conv_bn) return run_conv_bn(node, operands[0], context, &quantizer);
                if (chain.add) {
                  return quantizer->forward_after_add(operands[0], operands[1], chain.relu_cap);
                }
                if (chain.hardswish) return quantizer->forward_after_hardswish(operands[0]);
                return quantizer->forward_after_relu(operands[0], *chain.relu_cap);
              }));
        for (ir::ValueId id : node.inputs) {
          if (last_use[static_cast<size_t>(id)] == n) release(id);
        }
        n += chain.length - 1;
        continue;
      }
    }
    std::vector<c10::IValue> node_inputs;
    node_inputs.reserve(node.inputs.size());
    for (ir::ValueId id : node.inputs) node_inputs.push_back(read(node, id));
    std::vector<c10::IValue> outputs = run_node(node, std::move(node_inputs), context);
    for (size_t k = 0; k < node.outputs.size(); ++k) store(node.outputs[k], std::move(outputs[k]));
    // Dropping dead values early lets autograd's saved tensors be the only references.
    for (ir::ValueId id : node.inputs) {
      if (last_use[static_cast<size_t>(id)] == n) release(id);
    }
  }

  std::vector<at::Tensor> results;
  for (ir::ValueId id : graph.outputs()) {
    if (!defined[static_cast<size_t>(id)] || !values[static_cast<size_t>(id)].isTensor()) {
      throw Error("graph output %" + graph.value(id).name + " has no tensor value");
    }
    results.push_back(values[static_cast<size_t>(id)].toTensor());
  }
  return results;
}

}  // namespace linquant::runtime
