// The walker's core: frames, value lookup, node dispatch, scopes and error messages.
#include "script_interpreter.h"

#include <torch/csrc/jit/frontend/source_range.h>

#include <sstream>

#include "capture_error.h"
#include "linquant/common/error.h"

namespace linquant::frontend::script {

namespace prim = c10::prim;

std::string source_of(const torch::jit::Node* node) {
  torch::jit::SourceRange range = node->sourceRange();
  // Loaded models carry the serialized code's ranges, and map them back to the Python source
  // that generated them when the file kept its debug information.
  if (auto original = range.findSourceRangeThatGenerated()) range = *original;
  const auto file_line_col = range.file_line_col();
  if (!file_line_col) return "";
  const auto& [file, line, column] = *file_line_col;
  (void)column;
  if (file.empty()) return "";
  return file + ":" + std::to_string(line);
}

bool is_tensor_type(const torch::jit::Value* value) {
  return value->type()->isSubtypeOf(*c10::TensorType::get());
}

std::string describe(const SymValue& value) {
  using Kind = SymValue::Kind;
  switch (value.kind) {
    case Kind::unknown:
      return "a value known only when the model runs" +
             (value.note.empty() ? std::string() : " (from " + value.note + ")");
    case Kind::constant: {
      std::ostringstream text;
      text << value.constant;
      return "the constant " + text.str();
    }
    case Kind::tensor: return "a tensor";
    case Kind::value: return "a value computed when the model runs";
    case Kind::model_tensor:
      return std::string(value.transposed ? "the transposed " : "") + "model tensor '" +
             value.name + "'";
    case Kind::module: return "the module '" + value.name + "'";
    case Kind::function: return "a function";
    case Kind::sequence: return "a list of " + std::to_string(value.items.size()) + " values";
  }
  return "a value";
}

Interpreter::Interpreter(ir::Graph& graph, const CaptureOptions& options)
    : graph_(graph),
      non_traceable_(options.non_traceable_module_names.begin(),
                     options.non_traceable_module_names.end()) {}

std::vector<SymValue> Interpreter::run_root(const torch::jit::Module& root,
                                            const std::vector<SymValue>& inputs) {
  Frame frame;
  frame.context = context_for(root, "");
  const auto method = root.find_method("forward");
  if (!method) throw Error("cannot capture a TorchScript module without a forward method");
  SymValue self;
  self.kind = SymValue::Kind::module;
  self.module = root;
  std::vector<SymValue> args{self};
  args.insert(args.end(), inputs.begin(), inputs.end());
  return call(method->graph(), frame, args);
}

const SymValue& Interpreter::lookup(const Frame& frame, const torch::jit::Value* value) const {
  const auto it = frame.env.find(value);
  if (it == frame.env.end()) {
    throw Error("internal capture error: TorchScript value %" + value->debugName() +
                " used before capture defined it");
  }
  return it->second;
}

void Interpreter::bind(Frame& frame, const torch::jit::Value* value, SymValue sym) const {
  frame.env[value] = std::move(sym);
}

ir::Scope Interpreter::scope(const Frame& frame, const torch::jit::Node* node) const {
  ir::Scope scope;
  scope.module_name = frame.context.name;
  scope.module_type = frame.context.type;
  scope.functional = !frame.context.leaf;
  scope.source = node ? source_of(node) : "";
  return scope;
}

void Interpreter::fail(const Frame& frame, const torch::jit::Node* node,
                       const std::string& problem) const {
  ir::Scope where = scope(frame, node);
  // Where the code was called from helps most when the op sits in library code
  // (torch/nn/functional.py); traced models record no call sites.
  std::string chain;
  for (const Frame* f = &frame; f; f = f->caller) {
    if (f->call_site.empty() || f->call_site == where.source) continue;
    chain += (chain.empty() ? "" : ", ") + f->call_site;
  }
  if (!chain.empty()) {
    where.source = (where.source.empty() ? "" : where.source + " ") + "(called from " + chain + ")";
  }
  throw_capture_error(problem, where);
}

std::vector<SymValue> Interpreter::call(const std::shared_ptr<torch::jit::Graph>& callee,
                                        Frame& frame, const std::vector<SymValue>& args) {
  const auto inputs = callee->inputs();
  if (inputs.size() != args.size()) {
    throw Error("internal capture error: a call passes " + std::to_string(args.size()) +
                " arguments to a graph with " + std::to_string(inputs.size()) + " inputs");
  }
  for (size_t k = 0; k < args.size(); ++k) bind(frame, inputs[k], args[k]);
  run_block(callee->block(), frame);
  std::vector<SymValue> results;
  for (const torch::jit::Value* output : callee->outputs()) {
    results.push_back(lookup(frame, output));
  }
  return results;
}

void Interpreter::run_block(torch::jit::Block* block, Frame& frame) {
  for (torch::jit::Node* node : block->nodes()) run_node(node, frame);
}

void Interpreter::run_node(torch::jit::Node* node, Frame& frame) {
  const c10::Symbol kind = node->kind();
  if (kind == prim::Constant) {
    const auto* function_type = node->output()->type()->cast<c10::FunctionType>().get();
    if (function_type) {
      SymValue function;
      function.kind = SymValue::Kind::function;
      function.function = function_type->function();
      bind(frame, node->output(), function);
    } else if (auto value = torch::jit::toIValue(node->output())) {
      bind(frame, node->output(), SymValue::make_constant(*value));
    } else {
      bind(frame, node->output(), SymValue::make_unknown("a constant of type " +
                                                         node->output()->type()->str()));
    }
  } else if (kind == prim::GetAttr) {
    run_get_attr(node, frame);
  } else if (kind == prim::SetAttr) {
    fail(frame, node, "an assignment to module attribute '" + node->s(c10::attr::name) +
                          "' (prim::SetAttr)");
  } else if (kind == prim::CallMethod) {
    run_call_method(node, frame);
  } else if (kind == prim::CallFunction) {
    run_call_function(node, frame);
  } else if (kind == prim::If) {
    run_if(node, frame);
  } else if (kind == prim::Loop) {
    run_loop(node, frame);
  } else if (kind == prim::RaiseException) {
    fail(frame, node, "code that always raises an exception here (prim::RaiseException)");
  } else if (!run_structural(node, frame) && !fold_constant(node, frame)) {
    bool tensor_output = false;
    for (const torch::jit::Value* output : node->outputs()) tensor_output |= is_tensor_type(output);
    bool reads_runtime_value = false;
    for (const torch::jit::Value* input : node->inputs()) {
      const SymValue& value = lookup(frame, input);
      reads_runtime_value |= value.is(SymValue::Kind::tensor) || value.is(SymValue::Kind::value);
    }
    if (tensor_output) {
      run_tensor_op(node, frame);
    } else if (reads_runtime_value && !node->outputs().empty()) {
      // Sizes, arithmetic on them, dim(): computed when the model runs. Those that feed
      // nothing (input checks) are removed after capture.
      run_generic(node, frame);
    } else {
      // Results of values capture did not follow; whoever needs them reports it.
      for (const torch::jit::Value* output : node->outputs()) {
        bind(frame, output, SymValue::make_unknown(kind.toQualString()));
      }
    }
  }
}

}  // namespace linquant::frontend::script
