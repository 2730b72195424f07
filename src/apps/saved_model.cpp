// Saving and rebuilding quantized models; the format is described in saved_model.h.
#include "saved_model.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "archive_check.h"
#include "cli_common.h"
#include "file_io.h"
#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "tensor_storage.h"

namespace linquant::apps {
namespace {

constexpr const char* kFormat = "linquant.quantized_model";
constexpr int64_t kVersion = 1;

// Tensor names contain dots, which archive keys cannot: tensors go under numbered keys and
// the names in a list beside them.
void write_tensors(torch::serialize::OutputArchive& archive, const std::string& prefix,
                   const TensorSnapshot& tensors) {
  c10::List<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    names.push_back(tensors[i].first);
    archive.write(prefix + "_" + std::to_string(i), tensors[i].second, /*is_buffer=*/true);
  }
  archive.write(prefix + "_names", c10::IValue(names));
}

std::map<std::string, at::Tensor> read_tensors(torch::serialize::InputArchive& archive,
                                               const std::string& prefix,
                                               const std::string& file) {
  c10::IValue names_value;
  archive.read(prefix + "_names", names_value);
  std::map<std::string, at::Tensor> tensors;
  const c10::List<c10::IValue> names = names_value.toList();
  for (size_t i = 0; i < names.size(); ++i) {
    at::Tensor tensor;
    archive.read(prefix + "_" + std::to_string(i), tensor, /*is_buffer=*/true);
    check_tensor_storage(tensor, names.get(i).toStringRef(), file);
    tensors[names.get(i).toStringRef()] = tensor;
  }
  return tensors;
}

// Limits of what a saved model may claim before anything is allocated for it.
constexpr int64_t kMaxClasses = 1'000'000;
constexpr int64_t kMaxInputElements = int64_t{1} << 30;

// The example input shape: 1 to 8 positive sizes, at most kMaxInputElements in all.
void check_input_shape(const std::vector<int64_t>& shape, const std::string& file) {
  bool fits = !shape.empty() && shape.size() <= 8;
  int64_t elements = 1;
  for (const int64_t size : shape) {
    fits = fits && size >= 1 && size <= kMaxInputElements / elements;
    if (fits) elements *= size;
  }
  if (!fits) {
    throw Error(file + ": the saved input shape is not 1 to 8 positive sizes of at most " +
                std::to_string(kMaxInputElements) + " elements in all");
  }
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  archive.read(key, value);
  return value.toStringRef();
}

at::Tensor bytes_tensor(const std::string& bytes) {
  at::Tensor tensor = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  if (!bytes.empty()) std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return tensor;
}

std::string tensor_bytes(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.contiguous();
  return std::string(reinterpret_cast<const char*>(contiguous.data_ptr<uint8_t>()),
                     static_cast<size_t>(contiguous.numel()));
}

// Copies saved values into the module's own tensors; the names must match exactly.
void load_state(torch::nn::Module& module, const std::map<std::string, at::Tensor>& saved,
                const std::string& file) {
  const at::NoGradGuard no_grad;
  size_t matched = 0;
  // Buffers may change shape during training (a per-channel scale starts as [1], observer
  // ranges start empty), as torch's FakeQuantize._load_from_state_dict allows; parameters may not.
  auto assign = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    const auto found = saved.find(name);
    const bool same_shape = found != saved.end() && found->second.sizes() == target.sizes();
    if (found == saved.end() || (!same_shape && !is_buffer) ||
        found->second.dtype() != target.dtype()) {
      throw Error(file + ": the saved model does not match its rebuilt graph at tensor \"" + name +
                  "\" (saved with another version of linquant?)");
    }
    if (!same_shape) target.resize_(found->second.sizes());
    target.copy_(found->second);
    ++matched;
  };
  for (auto& item : module.named_parameters()) assign(item.key(), item.value(), false);
  for (auto& item : module.named_buffers()) assign(item.key(), item.value(), true);
  if (matched != saved.size()) {
    throw Error(file + ": the saved model has " + std::to_string(saved.size()) +
                " tensors, its rebuilt graph " + std::to_string(matched));
  }
}

void check_equal(const torch::nn::Module& module, const std::map<std::string, at::Tensor>& saved,
                 const std::string& file) {
  TensorSnapshot rebuilt = snapshot_state(module);
  if (rebuilt.size() != saved.size()) {
    throw Error(file + ": rebuilding the finalized model gave " + std::to_string(rebuilt.size()) +
                " tensors, the file has " + std::to_string(saved.size()));
  }
  for (const auto& [name, tensor] : rebuilt) {
    const auto found = saved.find(name);
    if (found == saved.end() || !at::equal(found->second, tensor)) {
      throw Error(file + ": rebuilding the finalized model does not reproduce tensor \"" + name +
                  "\"");
    }
  }
}

// The archive LibTorch reads from the file, once it passed check_model_archive.
torch::serialize::InputArchive open_archive(const std::filesystem::path& file) {
  const std::string bytes = read_file_bytes(file);
  check_model_archive(bytes, file.string());
  std::istringstream stream(bytes);
  torch::serialize::InputArchive archive;
  archive.load_from(stream);
  return archive;
}

}  // namespace

TensorSnapshot snapshot_state(const torch::nn::Module& module) {
  TensorSnapshot tensors;
  for (const auto& item : module.named_parameters())
    tensors.emplace_back(item.key(), item.value().detach().clone());
  for (const auto& item : module.named_buffers())
    tensors.emplace_back(item.key(), item.value().detach().clone());
  return tensors;
}

void save_quantized_model(const std::filesystem::path& file, const ModelRecipe& recipe,
                          const TensorSnapshot& prepared_state, const torch::nn::Module& finalized,
                          const std::string& metadata_json) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("version", c10::IValue(kVersion));
  archive.write("builtin", c10::IValue(recipe.builtin));
  archive.write("source_name", c10::IValue(recipe.source_name));
  archive.write("torchscript", bytes_tensor(recipe.torchscript), /*is_buffer=*/true);
  archive.write("config_json", c10::IValue(recipe.config.to_json()));
  archive.write("input_shape", at::tensor(recipe.input_shape, at::kLong), /*is_buffer=*/true);
  archive.write("normalization", at::tensor({recipe.normalization.mean, recipe.normalization.std}),
                /*is_buffer=*/true);
  archive.write("num_classes", c10::IValue(recipe.num_classes));
  archive.write("metadata_json", c10::IValue(metadata_json));
  write_tensors(archive, "prepared", prepared_state);
  write_tensors(archive, "finalized", snapshot_state(finalized));
  // Into memory first: LibTorch's file writer aborts the process when the disk fills up.
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_bytes(file, bytes);
}

bool is_saved_model(const std::filesystem::path& file) {
  try {
    torch::serialize::InputArchive archive = open_archive(file);
    c10::IValue format;
    return archive.try_read("format", format) && format.isString() &&
           format.toStringRef() == kFormat;
  } catch (const Error&) {
    throw;  // unreadable or damaged, whatever kind of model it is
  } catch (const c10::Error&) {
    return false;
  } catch (const std::bad_alloc&) {
    throw Error(file.string() + ": " + kClaimsTooMuchMemory);
  } catch (const std::exception&) {  // e.g. TorchScript code in the archive that does not compile
    return false;
  }
}

LoadedModel load_quantized_model(const std::filesystem::path& file) {
  const std::string name = file.string();
  LoadedModel loaded;
  std::map<std::string, at::Tensor> prepared_state, finalized_state;
  try {
    torch::serialize::InputArchive archive = open_archive(file);
    c10::IValue format, version, num_classes;
    if (!archive.try_read("format", format) || !format.isString() ||
        format.toStringRef() != kFormat) {
      throw Error(name + ": not a quantized model saved by linquant");
    }
    archive.read("version", version);
    if (version.toInt() != kVersion) {
      throw Error(name + ": saved model format version " + std::to_string(version.toInt()) +
                  " is not supported (this linquant reads version " + std::to_string(kVersion) +
                  ")");
    }
    ModelRecipe& recipe = loaded.recipe;
    recipe.builtin = read_string(archive, "builtin");
    recipe.source_name = read_string(archive, "source_name");
    at::Tensor torchscript, shape, normalization;
    archive.read("torchscript", torchscript, true);
    check_tensor_storage(torchscript, "torchscript", name);
    recipe.torchscript = tensor_bytes(torchscript);
    recipe.config = LinearQuantizerConfig::from_json(read_string(archive, "config_json"));
    archive.read("input_shape", shape, true);
    check_tensor_storage(shape, "input_shape", name);
    if (shape.scalar_type() != at::kLong || shape.dim() != 1) {
      throw Error(name + ": the saved input shape is not a list of integers");
    }
    recipe.input_shape.assign(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel());
    check_input_shape(recipe.input_shape, name);
    archive.read("normalization", normalization, true);
    check_tensor_storage(normalization, "normalization", name);
    if (normalization.scalar_type() != at::kFloat || normalization.numel() != 2) {
      throw Error(name + ": the saved normalization is not two floats");
    }
    recipe.normalization = {normalization[0].item<float>(), normalization[1].item<float>()};
    archive.read("num_classes", num_classes);
    recipe.num_classes = num_classes.toInt();
    if (recipe.num_classes < 1 || recipe.num_classes > kMaxClasses) {
      throw Error(name + ": the saved number of classes " + std::to_string(recipe.num_classes) +
                  " is not between 1 and " + std::to_string(kMaxClasses));
    }
    loaded.metadata_json = read_string(archive, "metadata_json");
    prepared_state = read_tensors(archive, "prepared", name);
    finalized_state = read_tensors(archive, "finalized", name);
  } catch (const c10::Error& error) {
    throw Error(name + ": cannot read the saved model (" +
                one_line(error.what_without_backtrace()).substr(0, 200) + ")");
  } catch (const std::bad_alloc&) {
    throw Error(name + ": " + kClaimsTooMuchMemory);
  }

  // Rebuild: the same capture and prepare as when it was saved. Warnings about the fresh,
  // never-trained model (e.g. unused config names) were shown when it was made.
  const ScopedWarningCapture quiet;
  loaded.source = load_source_model(loaded.recipe);
  loaded.quantizer = make_quantizer(loaded.source, loaded.recipe.config);
  GraphModule prepared = loaded.quantizer->prepare({at::zeros(loaded.recipe.input_shape)});
  load_state(*prepared, prepared_state, name);
  loaded.finalized = loaded.quantizer->finalize();
  check_equal(*loaded.finalized, finalized_state, name);
  return loaded;
}

}  // namespace linquant::apps
