// What capture knows about one TorchScript value while it walks a graph: an activation of the
// IR graph, a model tensor, a value known now (constant), a submodule, a tensor's size, or a
// value only known when the model runs.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/api/module.h>

#include <optional>
#include <string>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::frontend::script {

struct SymValue {
  enum class Kind {
    unknown,       // only known when the model runs; `note` says what it came from
    constant,      // `constant`: numbers, bools, strings, lists, None, small tensors
    tensor,        // an activation: IR value `tensor`
    model_tensor,  // a parameter or buffer under qualified `name`
    module,        // submodule `module` under qualified `name`
    function,      // a TorchScript function to call
    sequence,      // a list or tuple of `items` not all constant
    size,          // `tensor`.size(`dim`), of IR value `tensor`
  };

  Kind kind = Kind::unknown;
  c10::IValue constant;
  ir::ValueId tensor = -1;
  int64_t dim = 0;
  std::string name;
  bool transposed = false;  // a 2-D model_tensor seen through .t()
  torch::jit::Module module;
  torch::jit::Function* function = nullptr;
  std::vector<SymValue> items;
  std::string note;

  static SymValue make_constant(c10::IValue value) {
    SymValue v;
    v.kind = Kind::constant;
    v.constant = std::move(value);
    return v;
  }
  static SymValue make_tensor(ir::ValueId id) {
    SymValue v;
    v.kind = Kind::tensor;
    v.tensor = id;
    return v;
  }
  static SymValue make_unknown(std::string why) {
    SymValue v;
    v.note = std::move(why);
    return v;
  }
  static SymValue make_sequence(std::vector<SymValue> items) {
    SymValue v;
    v.kind = Kind::sequence;
    v.items = std::move(items);
    return v;
  }

  bool is(Kind k) const { return kind == k; }
  bool is_none() const { return kind == Kind::constant && constant.isNone(); }
};

// A readable account of a value for error messages ("model tensor 'fc.weight'").
std::string describe(const SymValue& value);

// The elements of a list or tuple, known now or built from symbolic values; nullopt for
// anything else.
std::optional<std::vector<SymValue>> items_of(const SymValue& value);

}  // namespace linquant::frontend::script
