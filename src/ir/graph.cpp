// Graph construction and queries. Nodes are kept in execution (topological) order.
#include "linquant/ir/graph.h"

#include <algorithm>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"

namespace linquant::ir {

ValueId Graph::new_value(const std::string& name, ValueType type) {
  Value value;
  value.id = static_cast<ValueId>(values_.size());
  value.name = name;
  value.type = type;
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

size_t Graph::add_node(Node node, const std::vector<ValueType>& output_types) {
  if (node.name.empty()) node.name = unique_node_name(to_string(node.op));
  node.outputs.clear();
  for (size_t k = 0; k < output_types.size(); ++k) {
    node.outputs.push_back(new_value(
        output_types.size() == 1 ? node.name : node.name + "_" + std::to_string(k),
        output_types[k]));
  }
  ++names_[node.name];
  nodes_.push_back(std::move(node));
  return nodes_.size() - 1;
}

size_t Graph::insert_node(size_t index, Node node, int num_outputs) {
  if (node.name.empty()) node.name = unique_node_name(to_string(node.op));
  node.outputs.clear();
  for (int k = 0; k < num_outputs; ++k) {
    node.outputs.push_back(new_value(num_outputs == 1 ? node.name
                                                      : node.name + "_" + std::to_string(k)));
  }
  ++names_[node.name];
  nodes_.insert(nodes_.begin() + static_cast<std::ptrdiff_t>(index), std::move(node));
  return index;
}

void Graph::rename_node(size_t index, const std::string& base) {
  Node& node = nodes_.at(index);
  const auto it = names_.find(node.name);
  if (it != names_.end() && --it->second <= 0) names_.erase(it);
  node.name = unique_node_name(base);
  ++names_[node.name];
  for (size_t k = 0; k < node.outputs.size(); ++k) {
    value(node.outputs[k]).name =
        node.outputs.size() == 1 ? node.name : node.name + "_" + std::to_string(k);
  }
}

void Graph::remove_node(size_t index) {
  const auto it = names_.find(nodes_[index].name);
  if (it != names_.end() && --it->second <= 0) names_.erase(it);
  nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(index));
}

void Graph::remove_nodes(const std::vector<bool>& remove) {
  std::vector<Node> kept;
  kept.reserve(nodes_.size());
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (n < remove.size() && remove[n]) {
      const auto it = names_.find(nodes_[n].name);
      if (it != names_.end() && --it->second <= 0) names_.erase(it);
    } else {
      kept.push_back(std::move(nodes_[n]));
    }
  }
  nodes_ = std::move(kept);
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
  if (!names_.count(base)) return base;
  int& next = next_suffix_[base];
  for (int k = std::max(next, 1);; ++k) {
    const std::string candidate = base + "_" + std::to_string(k);
    if (!names_.count(candidate)) {
      next = k + 1;
      return candidate;
    }
  }
}

bool Graph::is_float_tensor(ValueId id) const {
  const Value& v = value(id);
  return v.type == ValueType::tensor && (!v.dtype || c10::isFloatingType(*v.dtype));
}

std::string weight_owner_name(const Node& node) {
  if (node.scope.functional && node.attrs.has(attr::weight)) {
    const std::string& weight = node.attrs.s(attr::weight);
    const std::string suffix = ".weight";
    const bool owned = weight.size() > suffix.size() &&
                       weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0;
    return owned ? weight.substr(0, weight.size() - suffix.size()) : weight;
  }
  return node.scope.module_name.empty() ? node.name : node.scope.module_name;
}

}  // namespace linquant::ir
