// The graph IR: values, nodes and the model's tensors by qualified name. Nodes remember the
// module they came from, so configs by module name and type apply to captured graphs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

#include "linquant/ir/attribute.h"
#include "linquant/ir/op.h"
#include "linquant/quant/fake_quantize_options.h"

namespace linquant::ir {

using ValueId = int64_t;

// What a value holds. Graph inputs and the outputs of linquant's own ops are tensors; the
// generic torch_op and the structural ops also carry lists of tensors and everything else
// TorchScript computes with (ints from x.size(), floats, bools, None, int lists, ...).
enum class ValueType { tensor, tensor_list, other };

struct Value {
  ValueId id = -1;
  std::string name;
  ValueType type = ValueType::tensor;
  std::vector<int64_t> shape;  // tensors: empty until shapes are recorded from an example run
  std::optional<c10::ScalarType> dtype;  // tensors: recorded with the shape
};

// Where a node came from in the user's model.
struct Scope {
  std::string module_name;  // qualified name, e.g. "layer1.0.conv1"; "" for the root
  std::string module_type;  // e.g. "Conv2d", "ReLU"; the root's type for functional calls
  bool functional = false;  // a functional call (F.relu, torch.add) rather than a leaf module
  std::string source;       // TorchScript source location, when known
};

struct Node {
  Op op = Op::identity;
  std::string name;  // unique within the graph
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  Attributes attrs;
  Scope scope;
};

// What a weighted node's weight quantizer ("<owner>.weight_fake_quant") and finalized weight
// grid ("<owner>.weight_scale") are named after: its module ("layer1.0.conv1"), or for a
// functional call the owner of the weight tensor ("attn.qkv" for F.linear(x, self.qkv.weight)
// in module "attn"), so that two calls in one module never share a name.
std::string weight_owner_name(const Node& node);

// A model tensor the graph refers to by qualified name ("0.weight", "bn1.running_mean").
struct GraphTensor {
  at::Tensor tensor;
  bool is_parameter = false;  // trainable parameter (else a buffer such as running stats)
};

// A fake quantizer the prepared graph uses, by name: activation quantizers are named
// "activation_post_process_<k>" (nodes sharing one name share the quantizer), weight
// quantizers "<owner>.weight_fake_quant" (weight_owner_name).
struct QuantizerSpec {
  FakeQuantizeOptions options;
  bool is_weight = false;
};

// The callable behind a float_module node: the kept submodule's forward, inputs to outputs.
using FloatModuleFn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

class Graph {
 public:
  ValueId add_input(const std::string& name);
  // Appends a node with fresh output values; returns the index of the node.
  size_t add_node(Node node, int num_outputs = 1);
  // The same, with one output per entry of `output_types`.
  size_t add_node(Node node, const std::vector<ValueType>& output_types);
  // Inserts a node before position `index`, with fresh outputs.
  size_t insert_node(size_t index, Node node, int num_outputs = 1);
  void remove_node(size_t index);
  // Removes every node whose entry in `remove` is true, in one pass.
  void remove_nodes(const std::vector<bool>& remove);
  void set_outputs(std::vector<ValueId> outputs) { outputs_ = std::move(outputs); }
  // Gives node `index` the name unique_node_name(base), and its outputs the matching names.
  void rename_node(size_t index, const std::string& base);

  // Every use of `from` (node inputs and graph outputs) at or after node index `start`
  // now reads `to`.
  void replace_uses(ValueId from, ValueId to, size_t start = 0);

  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<ValueId>& inputs() const { return inputs_; }
  const std::vector<ValueId>& outputs() const { return outputs_; }
  const Value& value(ValueId id) const;
  Value& value(ValueId id);
  size_t num_values() const { return values_.size(); }

  // Index of the node producing `id`; nullopt for graph inputs.
  std::optional<size_t> producer(ValueId id) const;
  // Indices of the nodes reading `id`, in order.
  std::vector<size_t> consumers(ValueId id) const;
  bool is_graph_output(ValueId id) const;
  std::optional<size_t> find_node(const std::string& name) const;

  // Model tensors.
  void add_tensor(const std::string& name, at::Tensor tensor, bool is_parameter);
  bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
  void remove_tensor(const std::string& name) { tensors_.erase(name); }
  const GraphTensor& tensor(const std::string& name) const;
  const std::map<std::string, GraphTensor>& tensors() const { return tensors_; }

  // Fake quantizers, filled by the placement passes.
  void add_quantizer(const std::string& name, QuantizerSpec spec) { quantizers_[name] = spec; }
  void remove_quantizer(const std::string& name) { quantizers_.erase(name); }
  const std::map<std::string, QuantizerSpec>& quantizers() const { return quantizers_; }
  std::map<std::string, QuantizerSpec>& quantizers() { return quantizers_; }

  // Callables of float_module nodes, by the node's `module` attribute.
  void add_float_module(const std::string& name, FloatModuleFn fn) {
    float_modules_[name] = std::move(fn);
  }
  const std::map<std::string, FloatModuleFn>& float_modules() const { return float_modules_; }

  // A fresh node name derived from `base` ("add" -> "add", "add_1", ...).
  std::string unique_node_name(const std::string& base) const;

  // True for tensor values whose recorded dtype is a floating type, and for tensor values
  // whose dtype was never recorded (graphs built by hand): the values quantizers may observe.
  bool is_float_tensor(ValueId id) const;

 private:
  ValueId new_value(const std::string& name, ValueType type = ValueType::tensor);

  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<ValueId> inputs_;
  std::vector<ValueId> outputs_;
  std::map<std::string, GraphTensor> tensors_;
  std::map<std::string, QuantizerSpec> quantizers_;
  std::map<std::string, FloatModuleFn> float_modules_;
  // Node names in use (with multiplicity) and the next suffix to try per base name, so that
  // naming stays fast on graphs of thousands of nodes.
  std::unordered_map<std::string, int> names_;
  mutable std::unordered_map<std::string, int> next_suffix_;
};

// Human-readable listing, one node a line:
//   %3 = conv[stride=[1, 1], ...](%0)  # 0: Conv2d
std::string to_string(const Graph& graph);

// Checks that values are defined before use, names are unique, arities match the op table,
// required attributes exist and referenced tensors exist. Throws linquant::Error listing
// the first problem found.
void verify(const Graph& graph);

}  // namespace linquant::ir
