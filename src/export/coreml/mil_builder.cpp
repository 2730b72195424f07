// ProgramBuilder: appends MILSpec operations for the main block in program order, binding
// inputs the way Core ML's loader expects (by name for ordinary ops, attributes or values for
// constexpr ops).
#include "linquant/export/coreml/mil_builder.h"

#include <set>

#include "linquant/export/coreml/export_error.h"
#include "program_state.h"
#include "value_proto.h"

namespace linquant::coreml {

namespace milspec = ::CoreML::Specification::MILSpec;

namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

void check_op_type(std::string_view type) {
  if (!is_valid_identifier(type)) {
    throw ExportError("operation type \"" + std::string(type) + "\" is not a MIL identifier");
  }
}

void check_param_names(const Args& params, const std::string& op) {
  std::set<std::string> seen;
  for (const auto& [param, arg] : params) {
    if (!is_valid_identifier(param)) {
      throw ExportError("operation " + op + ": parameter name \"" + param +
                        "\" is not a MIL identifier");
    }
    if (!seen.insert(param).second) {
      throw ExportError("operation " + op + ": parameter \"" + param + "\" is given twice");
    }
    if (arg.bindings().empty()) {
      throw ExportError("operation " + op + ": parameter \"" + param + "\" is bound to nothing");
    }
  }
}

void add_output(milspec::Operation& op, const std::string& name, const TensorType& type) {
  milspec::NamedValueType* out = op.add_outputs();
  out->set_name(name);
  detail::set_tensor_type(type, out->mutable_type());
}

}  // namespace

ProgramBuilder::ProgramBuilder(Target target) : state_(std::make_unique<detail::ProgramState>()) {
  state_->target = target;
}
ProgramBuilder::~ProgramBuilder() = default;
ProgramBuilder::ProgramBuilder(ProgramBuilder&&) noexcept = default;
ProgramBuilder& ProgramBuilder::operator=(ProgramBuilder&&) noexcept = default;

Target ProgramBuilder::target() const { return state_->target; }

void ProgramBuilder::check_var(const Var& var, std::string_view where) const {
  const auto it = state_->var_types.find(var.name());
  if (var.name().empty() || it == state_->var_types.end() || it->second != var.type()) {
    throw ExportError(std::string(where) + ": variable \"" + var.name() +
                      "\" does not belong to this program");
  }
}

Var ProgramBuilder::add_input(std::string_view name, TensorType type) {
  if (state_->outputs_set) throw ExportError("add_input: the program's outputs are already set");
  if (!state_->block.operations().empty()) {
    throw ExportError("add_input(\"" + std::string(name) + "\"): add inputs before operations");
  }
  if (type.rank() == 0) {
    throw ExportError("add_input(\"" + std::string(name) +
                      "\"): model inputs are multi-arrays and need rank >= 1");
  }
  for (std::int64_t d : type.shape) {
    if (d < 1) {
      throw ExportError("add_input(\"" + std::string(name) + "\"): shape " + type.to_string() +
                        " needs every dimension >= 1");
    }
  }
  const std::string id = state_->names.claim(name);
  milspec::NamedValueType* input = state_->function.add_inputs();
  input->set_name(id);
  detail::set_tensor_type(type, input->mutable_type());
  state_->var_types.emplace(id, type);
  Var var(id, std::move(type));
  state_->inputs.push_back(var);
  return var;
}

Var ProgramBuilder::add_const(std::string_view name, const TensorValue& value) {
  if (state_->outputs_set) throw ExportError("add_const: the program's outputs are already set");
  const std::string id = state_->names.claim(name);
  milspec::Operation op;
  op.set_type("const");
  (*op.mutable_attributes())["name"] = detail::string_scalar_value(id);
  (*op.mutable_attributes())["val"] = detail::make_value(value, state_->weights);
  add_output(op, id, value.type());
  *state_->block.add_operations() = std::move(op);
  state_->var_types.emplace(id, value.type());
  return Var(id, value.type());
}

std::vector<Var> ProgramBuilder::emit(std::string_view type, std::string_view name,
                                      const Args& inputs, const std::vector<TensorType>& outputs) {
  check_op_type(type);
  const std::string where = std::string(type) + " \"" + std::string(name) + "\"";
  if (state_->outputs_set) throw ExportError(where + ": the program's outputs are already set");
  if (type == "const" || starts_with(type, "constexpr_")) {
    throw ExportError(where + ": use add_const / add_constexpr for constant operations");
  }
  if (outputs.empty()) throw ExportError(where + ": an operation needs at least one output");
  check_param_names(inputs, where);
  for (const auto& [param, arg] : inputs) {
    for (const Arg::Binding& binding : arg.bindings()) {
      if (const Var* var = std::get_if<Var>(&binding)) check_var(*var, where + " input " + param);
    }
  }

  const std::string id = state_->names.claim(name);
  milspec::Operation op;
  op.set_type(std::string(type));
  (*op.mutable_attributes())["name"] = detail::string_scalar_value(id);
  for (const auto& [param, arg] : inputs) {
    milspec::Argument& argument = (*op.mutable_inputs())[param];
    for (const Arg::Binding& binding : arg.bindings()) {
      if (const Var* var = std::get_if<Var>(&binding)) {
        argument.add_arguments()->set_name(var->name());
      } else {
        // Core ML's loader wants constants of ordinary ops as separate const ops, bound by name.
        const Var constant = add_const(id + "_" + param, std::get<TensorValue>(binding));
        argument.add_arguments()->set_name(constant.name());
      }
    }
  }

  std::vector<Var> results;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string out_id =
        outputs.size() == 1 ? id : state_->names.claim(id + "_" + std::to_string(i));
    add_output(op, out_id, outputs[i]);
    state_->var_types.emplace(out_id, outputs[i]);
    results.push_back(Var(out_id, outputs[i]));
  }
  *state_->block.add_operations() = std::move(op);
  return results;
}

Var ProgramBuilder::add_op(std::string_view type, std::string_view name, const Args& inputs,
                           const TensorType& output) {
  return emit(type, name, inputs, {output}).front();
}

std::vector<Var> ProgramBuilder::add_multi_output_op(std::string_view type, std::string_view name,
                                                     const Args& inputs,
                                                     const std::vector<TensorType>& outputs) {
  return emit(type, name, inputs, outputs);
}

Var ProgramBuilder::add_constexpr(std::string_view type, std::string_view name, const Args& params,
                                  const TensorType& output) {
  check_op_type(type);
  const std::string where = std::string(type) + " \"" + std::string(name) + "\"";
  if (state_->outputs_set) throw ExportError(where + ": the program's outputs are already set");
  if (!starts_with(type, "constexpr_")) {
    throw ExportError(where + ": add_constexpr is for constexpr_* operations");
  }
  if (state_->target < Target::iOS16) {
    throw ExportError(where + ": constexpr operations need target iOS16 or later, not " +
                      to_string(state_->target));
  }
  check_param_names(params, where);
  const bool as_attributes = state_->target <= Target::iOS17;
  for (const auto& [param, arg] : params) {
    if (arg.bindings().size() != 1) {
      throw ExportError(where + ": parameter \"" + param + "\" must be a single value");
    }
    if (const Var* var = std::get_if<Var>(&arg.bindings().front())) {
      if (as_attributes) {
        throw ExportError(where + ": parameter \"" + param + "\" must be a TensorValue (up to " +
                          "iOS17 constexpr parameters are attributes)");
      }
      check_var(*var, where + " input " + param);
      if (state_->constexpr_outputs.count(var->name()) == 0) {
        throw ExportError(where + ": parameter \"" + param + "\" is bound to \"" + var->name() +
                          "\", which is not the output of a constexpr operation");
      }
    }
  }

  const std::string id = state_->names.claim(name);
  milspec::Operation op;
  op.set_type(std::string(type));
  (*op.mutable_attributes())["name"] = detail::string_scalar_value(id);
  for (const auto& [param, arg] : params) {
    const Arg::Binding& binding = arg.bindings().front();
    if (as_attributes) {
      (*op.mutable_attributes())[param] =
          detail::make_value(std::get<TensorValue>(binding), state_->weights);
    } else if (const Var* var = std::get_if<Var>(&binding)) {
      (*op.mutable_inputs())[param].add_arguments()->set_name(var->name());
    } else {
      *(*op.mutable_inputs())[param].add_arguments()->mutable_value() =
          detail::make_value(std::get<TensorValue>(binding), state_->weights);
    }
  }
  add_output(op, id, output);
  *state_->block.add_operations() = std::move(op);
  state_->var_types.emplace(id, output);
  state_->constexpr_outputs.insert(id);
  return Var(id, output);
}

void ProgramBuilder::set_outputs(const std::vector<Var>& outputs) {
  if (state_->outputs_set) throw ExportError("set_outputs: the outputs are already set");
  if (outputs.empty()) throw ExportError("set_outputs: a program needs at least one output");
  std::set<std::string> seen;
  for (const Var& var : outputs) {
    check_var(var, "set_outputs");
    if (!seen.insert(var.name()).second) {
      throw ExportError("set_outputs: \"" + var.name() + "\" is listed twice");
    }
    for (const Var& input : state_->inputs) {
      if (input.name() == var.name()) {
        throw ExportError("set_outputs: \"" + var.name() +
                          "\" is a program input; a model feature cannot be both (route it "
                          "through an identity op)");
      }
    }
  }
  for (const Var& var : outputs) state_->block.add_outputs(var.name());
  state_->outputs = outputs;
  state_->outputs_set = true;
}

const std::vector<Var>& ProgramBuilder::inputs() const { return state_->inputs; }
const std::vector<Var>& ProgramBuilder::outputs() const { return state_->outputs; }

std::vector<std::string> ProgramBuilder::op_types() const {
  std::vector<std::string> types;
  for (const milspec::Operation& op : state_->block.operations()) types.push_back(op.type());
  return types;
}

const BlobWriter& ProgramBuilder::weights() const { return state_->weights; }

}  // namespace linquant::coreml
