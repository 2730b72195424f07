// The TorchScript walker: runs a module's forward graph symbolically, descending into
// submodule calls (so module names and types are kept) and function calls, folding what is
// known at capture time (constants, module attributes, training flags), and appending an IR
// node for every tensor op. Its member functions live in the script_*.cpp files by concern.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "linquant/frontend/capture.h"
#include "linquant/ir/graph.h"
#include "script_value.h"

namespace linquant::frontend::script {

// The module whose code a frame runs.
struct ModuleContext {
  torch::jit::Module module;
  std::string name;  // qualified, "" for the root
  std::string type;  // normalized
  bool leaf = false; // a torch.nn leaf: its ops are module calls, not functional
};

// One call of a method or function: its module and the values of its graph.
struct Frame {
  ModuleContext context;
  std::unordered_map<const torch::jit::Value*, SymValue> env;
  std::string call_site;  // source location of the call that made this frame
  const Frame* caller = nullptr;
};

class Interpreter {
 public:
  Interpreter(ir::Graph& graph, const CaptureOptions& options);

  // Runs the root module's forward on `inputs`; returns what it returns.
  std::vector<SymValue> run_root(const torch::jit::Module& root,
                                 const std::vector<SymValue>& inputs);

  // For the op rules (script_tensor_ops.cpp).
  const SymValue& lookup(const Frame& frame, const torch::jit::Value* value) const;
  void bind(Frame& frame, const torch::jit::Value* value, SymValue sym) const;
  ir::Graph& graph() { return graph_; }
  // Where `node` sits: the frame's module and the node's source location.
  ir::Scope scope(const Frame& frame, const torch::jit::Node* node) const;
  [[noreturn]] void fail(const Frame& frame, const torch::jit::Node* node,
                         const std::string& problem) const;

 private:
  ModuleContext context_for(const torch::jit::Module& module, const std::string& name);
  void add_module_tensors(const torch::jit::Module& module, const std::string& name,
                          bool recurse);
  std::vector<SymValue> call(const std::shared_ptr<torch::jit::Graph>& callee, Frame& frame,
                             const std::vector<SymValue>& args);
  void run_block(torch::jit::Block* block, Frame& frame);
  void run_node(torch::jit::Node* node, Frame& frame);

  // Calls and attributes (script_interpreter.cpp).
  void run_get_attr(torch::jit::Node* node, Frame& frame);
  void run_call_method(torch::jit::Node* node, Frame& frame);
  void run_call_function(torch::jit::Node* node, Frame& frame);
  std::vector<SymValue> float_call(torch::jit::Node* node, Frame& frame,
                                   const SymValue& module);
  SymValue mark_empty_leaf(const ModuleContext& callee, const torch::jit::Node* node,
                           const SymValue& input, const SymValue& output);

  // Control flow (script_control_flow.cpp).
  void run_if(torch::jit::Node* node, Frame& frame);
  void run_loop(torch::jit::Node* node, Frame& frame);

  // Values that are not tensors (script_structure.cpp).
  bool run_structural(torch::jit::Node* node, Frame& frame);
  bool fold_constant(torch::jit::Node* node, Frame& frame);

  // Tensor ops (script_tensor_ops.cpp).
  void run_tensor_op(torch::jit::Node* node, Frame& frame);

  ir::Graph& graph_;
  std::set<std::string> non_traceable_;
  std::set<std::string> modules_with_tensors_;
};

// "file.py:12" for a node, from the original Python source when the model kept it.
std::string source_of(const torch::jit::Node* node);

bool is_tensor_type(const torch::jit::Value* value);

}  // namespace linquant::frontend::script
