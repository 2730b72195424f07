// The TorchScript walker: runs a module's forward graph symbolically, descending into
// submodule calls (so module names and types are kept) and function calls, folding what is
// known at capture time (constants, module attributes, training flags), and appending an IR
// node for every tensor op. Its member functions live in the script_*.cpp files by concern.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <map>
#include <optional>
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

  // The IR value standing for `value` as an argument of `node` (script_generic_op.cpp):
  // runtime values as they are; constants, model tensors and lists become constant,
  // model_tensor and list nodes. `type` is the TorchScript type it has there.
  ir::ValueId materialize(const SymValue& value, const c10::TypePtr& type, const Frame& frame,
                          const torch::jit::Node* node);
  // A fresh node name for `op` at `where` (prefixed with the module inside leaf modules).
  std::string node_name(const ir::Scope& where, const std::string& op) const;
  // n when `tensor` is prim::NumToTensor(n), as traced models wrap sizes.
  std::optional<ir::ValueId> number_behind_tensor(ir::ValueId tensor) const;
  // (x, d) when `value` is x.size(d) with a constant d.
  std::optional<std::pair<ir::ValueId, int64_t>> size_source(ir::ValueId value) const;

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
  void unpack(torch::jit::Node* node, Frame& frame, ir::ValueId list);
  bool fold_constant(torch::jit::Node* node, Frame& frame);

  // Tensor ops (script_tensor_ops.cpp), and every other op as a generic torch_op
  // (script_generic_op.cpp).
  void run_tensor_op(torch::jit::Node* node, Frame& frame);
  void run_generic(torch::jit::Node* node, Frame& frame);

  ir::Graph& graph_;
  std::set<std::string> non_traceable_;
  std::set<std::string> modules_with_tensors_;
  // The model_tensor node already emitted for a tensor name (".t" suffix: its transpose).
  std::map<std::string, ir::ValueId> model_tensor_values_;

  ir::ValueId emit_value(ir::Op op, std::vector<ir::ValueId> inputs, ir::Attributes attrs,
                         const ir::Scope& where, ir::ValueType type, const std::string& name);
};

// Removes the generic and structural nodes whose values nothing reads (the size checks and
// shape arithmetic of code paths that feed nothing), keeping ops that modify their inputs.
void remove_dead_values(ir::Graph& graph);

// "file.py:12" for a node, from the original Python source when the model kept it.
std::string source_of(const torch::jit::Node* node);

bool is_tensor_type(const torch::jit::Value* value);

}  // namespace linquant::frontend::script
