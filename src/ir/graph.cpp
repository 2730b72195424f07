// Graph construction and queries. Nodes are kept in execution (topological) order.
#include "linquant/ir/graph.h"

#include <algorithm>

#include "linquant/common/error.h"

namespace linquant::ir {

ValueId Graph::new_value(const std::string& name) {
  Value value;
  value.id = static_cast<ValueId>(values_.size());
  value.name = name;
  values_.push_back(value);
  return value.id;
}

ValueId Graph::add_input(const std::string& name) {
  const ValueId id = new_value(name);
  inputs_.push_back(id);
  return id;
}

size_t Graph::add_node(Node node, int num_outputs) {
  return insert_node(nodes_.size(), std::move(node), num_outputs);
}

size_t Graph::insert_node(size_t index, Node node, int num_outputs) {
  if (node.name.empty()) node.name = unique_node_name(to_string(node.op));
  node.outputs.clear();
  for (int k = 0; k < num_outputs; ++k) {
    node.outputs.push_back(new_value(num_outputs == 1 ? node.name
                                                      : node.name + "_" + std::to_string(k)));
  }
  nodes_.insert(nodes_.begin() + static_cast<std::ptrdiff_t>(index), std::move(node));
  return index;
}

void Graph::remove_node(size_t index) {
  nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(index));
}

void Graph::replace_uses(ValueId from, ValueId to, size_t start) {
  for (size_t n = start; n < nodes_.size(); ++n) {
    std::replace(nodes_[n].inputs.begin(), nodes_[n].inputs.end(), from, to);
  }
  std::replace(outputs_.begin(), outputs_.end(), from, to);
}

const Value& Graph::value(ValueId id) const {
  if (id < 0 || id >= static_cast<ValueId>(values_.size())) {
    throw Error("graph has no value %" + std::to_string(id));
  }
  return values_[static_cast<size_t>(id)];
}

Value& Graph::value(ValueId id) {
  return const_cast<Value&>(static_cast<const Graph&>(*this).value(id));
}

std::optional<size_t> Graph::producer(ValueId id) const {
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const auto& outs = nodes_[n].outputs;
    if (std::find(outs.begin(), outs.end(), id) != outs.end()) return n;
  }
  return std::nullopt;
}

std::vector<size_t> Graph::consumers(ValueId id) const {
  std::vector<size_t> result;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const auto& ins = nodes_[n].inputs;
    if (std::find(ins.begin(), ins.end(), id) != ins.end()) result.push_back(n);
  }
  return result;
}

bool Graph::is_graph_output(ValueId id) const {
  return std::find(outputs_.begin(), outputs_.end(), id) != outputs_.end();
}

std::optional<size_t> Graph::find_node(const std::string& name) const {
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (nodes_[n].name == name) return n;
  }
  return std::nullopt;
}

void Graph::add_tensor(const std::string& name, at::Tensor tensor, bool is_parameter) {
  tensors_[name] = GraphTensor{std::move(tensor), is_parameter};
}

const GraphTensor& Graph::tensor(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error("graph has no tensor named '" + name + "'");
  return it->second;
}

std::string Graph::unique_node_name(const std::string& base) const {
  if (!find_node(base)) return base;
  for (int k = 1;; ++k) {
    const std::string candidate = base + "_" + std::to_string(k);
    if (!find_node(candidate)) return candidate;
  }
}

}  // namespace linquant::ir
