// Library-internal, shared by the exporters: messages that name the node they are about, and
// the attribute readers whose failures should.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "linquant/export/export_error.h"
#include "linquant/ir/graph.h"

namespace linquant::graph_export {

// "node 'layer1.0.conv1' (conv): ", the start of every message about a node.
std::string node_label(const ir::Node& node);
[[noreturn]] void fail(const ir::Node& node, const std::string& message);

// Number-valued attribute that may be stored as an integer, a float or a boolean.
double number_attr(const ir::Node& node, const std::string& key);
// A dimension index in [0, rank), from a possibly negative one.
int64_t normalize_axis(const ir::Node& node, int64_t axis, size_t rank);
// An attribute holding one number per spatial dimension (stride, padding, kernel_size, ...):
// a single number stands for all of them, as in PyTorch's int-or-tuple arguments; a missing
// attribute is `fallback` repeated, or an error without one.
std::vector<int64_t> spatial_ints(const ir::Node& node, const std::string& key, size_t dims,
                                  std::optional<int64_t> fallback = std::nullopt);
// The graph tensor an attribute of `node` names ("weight", "running_mean", ...).
const at::Tensor& model_tensor(const ir::Graph& graph, const ir::Node& node,
                               const std::string& key);

// "op 'aten::gru.input' in module 'gru' (GRU) at rnn.py:955 has no ONNX mapping yet": what
// the exporters say about an op they cannot write (`format`: "Core ML", "ONNX").
std::string unmapped_op(const ir::Node& node, const std::string& format);

// Runs f for a node; any failure becomes an ExportError that starts with the node's label.
template <typename F>
void with_node_context(const ir::Node& node, F&& f) {
  const std::string label = node_label(node);
  try {
    f();
  } catch (const ExportError& e) {
    if (std::string(e.what()).rfind(label, 0) == 0) throw;
    throw ExportError(label + e.what());
  } catch (const c10::Error& e) {
    throw ExportError(label + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw ExportError(label + e.what());
  }
}

}  // namespace linquant::graph_export
