// Which config each node gets. Functional ops are looked up by the names coremltools
// accepts for functions ("torch.add", "operator.add", "F.relu", ...), inside the scope
// of the module that calls them, so a module-name config covers its functional ops too.
#include <set>

#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {
namespace {

// The aliases a user may write for a functional op in module_type_configs.
std::vector<std::string> functional_type_names(const ir::Node& node) {
  // A generic op goes by its operator's name: "aten::mish.out" -> "mish".
  std::string base = ir::to_string(node.op);
  if (node.op == ir::Op::torch_op) {
    const std::string& schema = node.attrs.s(ir::attr::schema);
    base = schema.substr(schema.find("::") + 2);
    base = base.substr(0, base.find('.'));
  }
  if (node.op == ir::Op::max_pool || node.op == ir::Op::avg_pool ||
      node.op == ir::Op::adaptive_avg_pool) {
    base += std::to_string(node.attrs.i("spatial_dims", 2)) + "d";
  }
  return {"torch." + base, "operator." + base, "torch.nn.functional." + base, "F." + base, base};
}

std::string type_key(const ir::Node& node, const LinearQuantizerConfig& config) {
  if (!node.scope.functional) return node.scope.module_type;
  for (const std::string& name : functional_type_names(node)) {
    if (config.config_for_type(name)) return name;
  }
  return "";
}

// Module types whose computation coremltools leaves in float: it has no quantization rule
// for them, and FX traces them as single leaf calls (docs/differences.md).
bool inside_float_module(const ir::Node& node) {
  static const std::set<std::string> kFloatModules = {
      "MultiheadAttention", "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"};
  return !node.scope.functional && kFloatModules.count(node.scope.module_type) != 0;
}

bool is_quantizable(const ir::Node& node) {
  if (inside_float_module(node)) return false;
  return is_weighted(node) || output_rule(node) != ir::OutputQuantization::not_quantized;
}

}  // namespace

QConfigTable assign_qconfigs(const ir::Graph& graph, const LinearQuantizerConfig& config) {
  QConfigTable table;
  for (const ir::Node& node : graph.nodes()) {
    if (!is_quantizable(node)) continue;
    table[node.name] = config.config_for_module(node.scope.module_name, type_key(node, config));
  }
  return table;
}

std::vector<std::string> unmatched_type_configs(const ir::Graph& graph,
                                                const LinearQuantizerConfig& config) {
  std::set<std::string> present;  // every type name a config key could match, normalized
  for (const ir::Node& node : graph.nodes()) {
    if (!node.scope.module_type.empty()) {
      present.insert(LinearQuantizerConfig::normalized_type(node.scope.module_type));
    }
    if (node.scope.functional) {
      for (const std::string& name : functional_type_names(node)) {
        present.insert(LinearQuantizerConfig::normalized_type(name));
      }
    }
  }
  std::vector<std::string> unmatched;
  for (const auto& [key, unused] : config.module_type_configs) {
    if (!present.count(LinearQuantizerConfig::normalized_type(key))) unmatched.push_back(key);
  }
  return unmatched;
}

}  // namespace linquant::passes
