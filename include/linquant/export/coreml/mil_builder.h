// ProgramBuilder: assembles the `main` function of a MIL program (inputs, const values,
// operations, block outputs) in the form Core ML and coremltools read, writing large constants
// to the weight blob as it goes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "linquant/export/coreml/blob_writer.h"
#include "linquant/export/coreml/mil_value.h"
#include "linquant/export/coreml/target.h"

namespace linquant::coreml {

namespace detail {
struct ProgramState;  // the protobuf being built; defined inside the library
}

// A variable of the program: a function input or an operation output. Its name is the final,
// sanitized and unique identifier (it may differ from the name asked for).
class Var {
 public:
  Var() = default;
  const std::string& name() const { return name_; }
  const TensorType& type() const { return type_; }

 private:
  friend class ProgramBuilder;
  Var(std::string name, TensorType type) : name_(std::move(name)), type_(std::move(type)) {}
  std::string name_;
  TensorType type_;
};

// What an operation parameter is bound to: a variable, a constant, or (variadic parameters
// such as concat's `values`) several variables.
class Arg {
 public:
  Arg(Var var) : bindings_{std::move(var)} {}                  // NOLINT: implicit on purpose
  Arg(TensorValue value) : bindings_{std::move(value)} {}      // NOLINT
  Arg(const std::vector<Var>& vars) : bindings_(vars.begin(), vars.end()) {}  // NOLINT

  using Binding = std::variant<Var, TensorValue>;
  const std::vector<Binding>& bindings() const { return bindings_; }

 private:
  std::vector<Binding> bindings_;
};

// Parameters in the order their const ops should appear in the program.
using Args = std::vector<std::pair<std::string, Arg>>;

class ProgramBuilder {
 public:
  explicit ProgramBuilder(Target target);
  ~ProgramBuilder();
  ProgramBuilder(ProgramBuilder&&) noexcept;
  ProgramBuilder& operator=(ProgramBuilder&&) noexcept;
  ProgramBuilder(const ProgramBuilder&) = delete;
  ProgramBuilder& operator=(const ProgramBuilder&) = delete;

  Target target() const;

  // A function input; becomes a model input of the same name. Fixed shape, rank >= 1.
  Var add_input(std::string_view name, TensorType type);

  // A `const` op. Large constants are written to the weight blob (see goes_to_weight_file).
  Var add_const(std::string_view name, const TensorValue& value);

  // An ordinary operation. Var arguments are bound by name; TensorValue arguments become `const`
  // ops named "<op>_<param>" placed just before the operation. The output type is the caller's
  // promise (the loader re-infers it and rejects a mismatch).
  Var add_op(std::string_view type, std::string_view name, const Args& inputs,
             const TensorType& output);
  std::vector<Var> add_multi_output_op(std::string_view type, std::string_view name,
                                       const Args& inputs,
                                       const std::vector<TensorType>& outputs);

  // A compile-time operation (type "constexpr_..."; needs iOS16+). Up to iOS17 its parameters
  // are written as attributes of the op and must be TensorValues; from iOS18 they are inputs
  // bound to values, or by name to the output of another constexpr op.
  Var add_constexpr(std::string_view type, std::string_view name, const Args& params,
                    const TensorType& output);

  // The block outputs, which become the model outputs; call once, after the last op.
  void set_outputs(const std::vector<Var>& outputs);

  const std::vector<Var>& inputs() const;
  const std::vector<Var>& outputs() const;
  // Operation types in program order, consts included, e.g. for tests and logs.
  std::vector<std::string> op_types() const;
  const BlobWriter& weights() const;

  // Library-internal access to the program under construction.
  const detail::ProgramState& state() const { return *state_; }

 private:
  std::vector<Var> emit(std::string_view type, std::string_view name, const Args& inputs,
                        const std::vector<TensorType>& outputs);
  void check_var(const Var& var, std::string_view where) const;

  std::unique_ptr<detail::ProgramState> state_;
};

}  // namespace linquant::coreml
