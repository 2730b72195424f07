// Module attributes and calls: submodule lookups through prim::GetAttr, descent into
// prim::CallMethod / prim::CallFunction, and submodules kept as float calls.
#include <torch/csrc/jit/api/function_impl.h>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "module_type.h"
#include "node_emit.h"
#include "script_interpreter.h"

namespace linquant::frontend::script {
namespace {

std::string qualified(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

const SymValue& module_operand(const Interpreter& in, const Frame& frame,
                               const torch::jit::Node* node) {
  const SymValue& target = in.lookup(frame, node->input(0));
  if (!target.is(SymValue::Kind::module)) {
    in.fail(frame, node, std::string(node->kind().toQualString()) + " on " + describe(target) +
                             " (capture follows attributes of modules only)");
  }
  return target;
}

}  // namespace

ModuleContext Interpreter::context_for(const torch::jit::Module& module, const std::string& name) {
  ModuleContext context;
  context.module = module;
  context.name = name;
  const std::string raw_type = module.type()->name()->qualifiedName();
  context.type = normalize_module_type(raw_type);
  context.leaf = is_torch_nn_leaf_type(raw_type);
  add_module_tensors(module, name, /*recurse=*/false);
  return context;
}

void Interpreter::add_module_tensors(const torch::jit::Module& module, const std::string& name,
                                     bool recurse) {
  if (!recurse && !modules_with_tensors_.insert(name).second) return;
  for (const auto& parameter : module.named_parameters(recurse)) {
    graph_.add_tensor(qualified(name, parameter.name), parameter.value, true);
  }
  for (const auto& buffer : module.named_buffers(recurse)) {
    graph_.add_tensor(qualified(name, buffer.name), buffer.value, false);
  }
}

void Interpreter::run_get_attr(torch::jit::Node* node, Frame& frame) {
  const SymValue& owner = module_operand(*this, frame, node);
  const std::string attribute = node->s(c10::attr::name);
  const c10::IValue value = owner.module.attr(attribute);
  const std::string name = qualified(owner.name, attribute);
  SymValue result;
  if (value.isModule()) {
    result.kind = SymValue::Kind::module;
    result.module = torch::jit::Module(value.toObject());
    result.name = name;
  } else if (value.isTensor()) {
    const auto& type = owner.module.type();
    const size_t slot = type->getAttributeSlot(attribute);
    if (!type->is_parameter(slot) && !type->is_buffer(slot)) {
      fail(frame, node, "a tensor attribute '" + name + "' that is neither a parameter nor a "
                        "buffer (register it with register_buffer)");
    }
    add_module_tensors(owner.module, owner.name, /*recurse=*/false);
    result.kind = SymValue::Kind::model_tensor;
    result.name = name;
  } else {
    result = SymValue::make_constant(value);  // training flags, hyperparameters, None
  }
  bind(frame, node->output(), std::move(result));
}

void Interpreter::run_call_method(torch::jit::Node* node, Frame& frame) {
  const SymValue target = module_operand(*this, frame, node);
  const std::string method_name = node->s(c10::attr::name);
  std::vector<SymValue> results;
  if (method_name == "forward" && non_traceable_.count(target.name)) {
    results = float_call(node, frame, target);
  } else {
    Frame callee;
    callee.context = context_for(target.module, target.name);
    callee.call_site = source_of(node);
    callee.caller = &frame;
    const auto method = target.module.find_method(method_name);
    if (!method) fail(frame, node, "a call of the missing method '" + method_name + "'");
    std::vector<SymValue> args;
    for (const torch::jit::Value* input : node->inputs()) args.push_back(lookup(frame, input));
    const size_t nodes_before = graph_.nodes().size();
    results = call(method->graph(), callee, args);
    if (method_name == "forward" && callee.context.leaf && graph_.nodes().size() == nodes_before &&
        args.size() == 2 && results.size() == 1) {
      results[0] = mark_empty_leaf(callee.context, node, args[1], results[0]);
    }
  }
  for (size_t k = 0; k < results.size(); ++k) bind(frame, node->output(k), results[k]);
}

void Interpreter::run_call_function(torch::jit::Node* node, Frame& frame) {
  const SymValue& function = lookup(frame, node->input(0));
  if (!function.is(SymValue::Kind::function) || !function.function) {
    fail(frame, node, "a call of " + describe(function));
  }
  Frame callee;
  callee.context = frame.context;  // a function runs as part of the module that calls it
  callee.call_site = source_of(node);
  callee.caller = &frame;
  std::vector<SymValue> args;
  for (size_t k = 1; k < node->inputs().size(); ++k) args.push_back(lookup(frame, node->input(k)));
  const auto results = call(torch::jit::toGraphFunction(*function.function).graph(), callee, args);
  for (size_t k = 0; k < results.size(); ++k) bind(frame, node->output(k), results[k]);
}

// Leaf modules whose forward returns its input unchanged (Identity; Dropout in a model saved
// without it) still get a node, so every module call is visible to configs and passes.
SymValue Interpreter::mark_empty_leaf(const ModuleContext& callee, const torch::jit::Node* node,
                                      const SymValue& input, const SymValue& output) {
  if (!input.is(SymValue::Kind::tensor) || !output.is(SymValue::Kind::tensor) ||
      input.tensor != output.tensor) {
    return output;
  }
  Frame inside;
  inside.context = callee;
  ir::Scope where = scope(inside, node);
  ir::Attributes attrs;
  ir::Op op = ir::Op::identity;
  const bool dropout = callee.type.find("Dropout") != std::string::npos;
  if (dropout && callee.module.hasattr("p") && callee.module.attr("p").isDouble()) {
    op = ir::Op::dropout;
    attrs.set("p", callee.module.attr("p").toDouble());
  }
  return SymValue::make_tensor(emit_node(graph_, op, {input.tensor}, std::move(attrs), where)[0]);
}

std::vector<SymValue> Interpreter::float_call(torch::jit::Node* node, Frame& frame,
                                              const SymValue& target) {
  // The callable gets the tensor arguments from the graph; the other arguments are fixed now.
  std::vector<ir::ValueId> inputs;
  std::vector<std::optional<c10::IValue>> fixed;
  for (size_t k = 1; k < node->inputs().size(); ++k) {
    const SymValue& arg = lookup(frame, node->input(k));
    if (arg.is(SymValue::Kind::tensor)) {
      inputs.push_back(arg.tensor);
      fixed.emplace_back(std::nullopt);
    } else if (arg.is(SymValue::Kind::constant)) {
      fixed.emplace_back(arg.constant);
    } else {
      fail(frame, node, "a float call of '" + target.name + "' with argument " +
                            std::to_string(k) + " being " + describe(arg));
    }
  }
  const c10::TypePtr result_type = node->output()->type();
  size_t num_outputs = 1;
  if (const auto tuple = result_type->cast<c10::TupleType>()) {
    num_outputs = tuple->elements().size();
    for (const auto& element : tuple->elements()) {
      if (!element->isSubtypeOf(*c10::TensorType::get())) num_outputs = 0;
    }
  } else if (!result_type->isSubtypeOf(*c10::TensorType::get())) {
    num_outputs = 0;
  }
  if (num_outputs == 0) {
    fail(frame, node, "a float call of '" + target.name + "' returning " + result_type->str() +
                          " (a float call must return a tensor or a tuple of tensors)");
  }
  add_module_tensors(target.module, target.name, /*recurse=*/true);
  graph_.add_float_module(
      target.name, [module = target.module, fixed](
                       const std::vector<at::Tensor>& tensors) mutable -> std::vector<at::Tensor> {
        std::vector<c10::IValue> args;
        size_t next = 0;
        for (const auto& value : fixed) {
          args.push_back(value ? *value : c10::IValue(tensors.at(next++)));
        }
        const c10::IValue result = module.forward(std::move(args));
        if (result.isTensor()) return {result.toTensor()};
        std::vector<at::Tensor> outputs;
        for (const c10::IValue& element : result.toTupleRef().elements()) {
          outputs.push_back(element.toTensor());
        }
        return outputs;
      });
  Frame inside;
  inside.context = context_for(target.module, target.name);
  inside.context.leaf = true;  // the call is one module call, not functional code
  ir::Attributes attrs;
  attrs.set(ir::attr::module, target.name);
  const auto outputs = emit_node(graph_, ir::Op::float_module, inputs, std::move(attrs),
                                 scope(inside, node), static_cast<int>(num_outputs));
  if (!result_type->cast<c10::TupleType>()) return {SymValue::make_tensor(outputs[0])};
  std::vector<SymValue> items;
  for (ir::ValueId id : outputs) items.push_back(SymValue::make_tensor(id));
  return {SymValue::make_sequence(std::move(items))};
}

}  // namespace linquant::frontend::script
