// Structural checks run after capture and after every pass, so a broken pass fails at once
// with the node it broke instead of deep inside a training step.
#include <set>
#include <string>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/ir/graph.h"

namespace linquant::ir {
namespace {

// The op table's space-separated attribute list as words.
std::vector<std::string> required_attributes(Op op) {
  std::vector<std::string> keys;
  std::string key;
  for (const char* c = op_info(op).required_attributes;; ++c) {
    if (*c == ' ' || *c == '\0') {
      if (!key.empty()) keys.push_back(key);
      key.clear();
      if (*c == '\0') break;
    } else {
      key.push_back(*c);
    }
  }
  return keys;
}

[[noreturn]] void fail(const Node& node, const std::string& problem) {
  throw Error("invalid graph at node '" + node.name + "' (" + to_string(node.op) + "): " +
              problem);
}

}  // namespace

void verify(const Graph& graph) {
  std::set<ValueId> defined(graph.inputs().begin(), graph.inputs().end());
  std::set<std::string> names;
  for (const Node& node : graph.nodes()) {
    if (!names.insert(node.name).second) fail(node, "the node name is used twice");
    const OpInfo& info = op_info(node.op);
    const bool binary_with_scalar = node.inputs.size() == 1 && node.attrs.has("scalar");
    if (info.num_inputs >= 0 && static_cast<int>(node.inputs.size()) != info.num_inputs) {
      fail(node, "expects " + std::to_string(info.num_inputs) + " inputs, has " +
                     std::to_string(node.inputs.size()));
    }
    if (info.num_inputs < 0 && node.inputs.empty() && !op_info(node.op).reads_any_value) {
      fail(node, "has no inputs");
    }
    const bool binary = node.op == Op::add || node.op == Op::sub || node.op == Op::mul ||
                        node.op == Op::div;
    if (binary && node.inputs.size() != 2 && !binary_with_scalar) {
      fail(node, "needs two tensor inputs, or one and a 'scalar' attribute");
    }
    for (ValueId input : node.inputs) {
      if (!defined.count(input)) {
        fail(node, "reads %" + graph.value(input).name + " before it is defined");
      }
      if (!op_info(node.op).reads_any_value && graph.value(input).type != ValueType::tensor) {
        fail(node, "reads %" + graph.value(input).name + ", which is not a tensor");
      }
    }
    for (const std::string& key : required_attributes(node.op)) {
      if (!node.attrs.has(key)) fail(node, "is missing attribute '" + key + "'");
    }
    for (const char* key : attr::tensor_keys) {
      if (node.attrs.has(key) && !graph.has_tensor(node.attrs.s(key))) {
        fail(node, std::string("attribute '") + key + "' names the unknown tensor '" +
                       node.attrs.s(key) + "'");
      }
    }
    for (const char* key : attr::quantizer_keys) {
      if (node.attrs.has(key) && !graph.quantizers().count(node.attrs.s(key))) {
        fail(node, std::string("attribute '") + key + "' names the unknown quantizer '" +
                       node.attrs.s(key) + "'");
      }
    }
    for (ValueId output : node.outputs) {
      if (!defined.insert(output).second) fail(node, "redefines a value");
    }
  }
  for (ValueId output : graph.outputs()) {
    if (!defined.count(output)) {
      throw Error("invalid graph: output %" + graph.value(output).name + " is never defined");
    }
  }
}

}  // namespace linquant::ir
