// What capture knows about one TorchScript value while it walks a graph: a tensor of the IR
// graph, another IR value computed when the model runs (x.size(0), arithmetic on it, lists),
// a model tensor, a value known now (constant), a submodule or function, or a value capture
// could not follow (computed by control flow it did not take).
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
    unknown,       // not followed by capture; `note` says what it came from
    constant,      // `constant`: numbers, bools, strings, lists, None, small tensors
    tensor,        // a tensor computed when the model runs: IR value `tensor`
    value,         // any other value computed when the model runs: IR value `tensor`
    model_tensor,  // a parameter or buffer under qualified `name`
    module,        // submodule `module` under qualified `name`
    function,      // a TorchScript function to call
    sequence,      // a list or tuple of `items` not all constant
  };

  Kind kind = Kind::unknown;
  c10::IValue constant;
  ir::ValueId tensor = -1;  // for `tensor` and `value`
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
  static SymValue make_value(ir::ValueId id) {
    SymValue v;
    v.kind = Kind::value;
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
