// LinearQuantizer::save_state / load_state: a checkpoint of QAT in a torch::serialize archive.
// Tensor names hold dots, which archive keys cannot: tensors go under numbered keys with the
// list of names beside them.
#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <map>
#include <string>

#include "linquant/common/error.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

constexpr const char* kStepKey = "linquant_quantizer_step_count";
constexpr const char* kNamesKey = "linquant_quantizer_tensor_names";
constexpr const char* kTensorKey = "linquant_quantizer_tensor_";

}  // namespace

void LinearQuantizer::save_state(torch::serialize::OutputArchive& archive) const {
  if (!prepared_) throw Error("save_state() needs a prepared model: call prepare() first");
  archive.write(kStepKey, c10::IValue(step_count_));
  c10::List<std::string> names;
  const auto put = [&](const std::string& name, const at::Tensor& tensor) {
    archive.write(kTensorKey + std::to_string(names.size()), tensor.detach(), /*is_buffer=*/true);
    names.push_back(name);
  };
  for (const auto& item : prepared_->named_parameters()) put(item.key(), item.value());
  for (const auto& item : prepared_->named_buffers()) put(item.key(), item.value());
  archive.write(kNamesKey, c10::IValue(names));
}

void LinearQuantizer::load_state(torch::serialize::InputArchive& archive) {
  if (!prepared_) throw Error("load_state() needs a prepared model: call prepare() first");
  c10::IValue names_value;
  c10::IValue step_value;
  if (!archive.try_read(kNamesKey, names_value) || !archive.try_read(kStepKey, step_value) ||
      !names_value.isList() || !step_value.isInt()) {
    throw Error("the archive holds no LinearQuantizer state");
  }
  std::map<std::string, at::Tensor> saved;
  const c10::List<c10::IValue> names = names_value.toList();
  for (size_t i = 0; i < names.size(); ++i) {
    at::Tensor tensor;
    if (!names.get(i).isString() ||
        !archive.try_read(kTensorKey + std::to_string(i), tensor, /*is_buffer=*/true)) {
      throw Error("the archive's LinearQuantizer state is incomplete (tensor " + std::to_string(i) +
                  ")");
    }
    saved[names.get(i).toStringRef()] = tensor;
  }
  // Check everything before changing anything.
  size_t matched = 0;
  const auto check = [&](const std::string& name, const at::Tensor& target, bool is_buffer) {
    const auto found = saved.find(name);
    // Buffers may change shape in training (observer ranges start empty), parameters may not.
    if (found == saved.end() || found->second.dtype() != target.dtype() ||
        (!is_buffer && found->second.sizes() != target.sizes())) {
      throw Error("the saved state does not belong to this prepared model: tensor \"" + name +
                  "\" is missing or differs in type or shape");
    }
    ++matched;
  };
  for (const auto& item : prepared_->named_parameters()) check(item.key(), item.value(), false);
  for (const auto& item : prepared_->named_buffers()) check(item.key(), item.value(), true);
  if (matched != saved.size()) {
    throw Error("the saved state has " + std::to_string(saved.size()) +
                " tensors, the prepared model " + std::to_string(matched));
  }
  const at::NoGradGuard no_grad;
  for (auto& item : prepared_->named_parameters()) item.value().copy_(saved.at(item.key()));
  for (auto& item : prepared_->named_buffers()) {
    at::Tensor& target = item.value();
    const at::Tensor& value = saved.at(item.key());
    if (target.sizes() != value.sizes()) target.resize_(value.sizes());
    target.copy_(value);
  }
  step_count_ = step_value.toInt();
}

}  // namespace linquant
