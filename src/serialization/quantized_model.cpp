// Saving and rebuilding quantized models; the format is described in
// linquant/serialization/quantized_model.h.
#include "linquant/serialization/quantized_model.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/script.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstring>
#include <map>
#include <new>
#include <sstream>
#include <string>
#include <utility>

#include "archive_check.h"
#include "linquant/common/error.h"
#include "linquant/common/file_io.h"
#include "linquant/common/warning.h"
#include "linquant/serialization/torchscript.h"
#include "tensor_storage.h"

namespace linquant {
namespace {

constexpr const char* kFormat = "linquant.quantized_model";
constexpr int64_t kVersion = 2;

// Limits of what a file may claim about the example inputs before anything is allocated.
constexpr size_t kMaxInputs = 64;
constexpr int64_t kMaxInputElements = int64_t{1} << 30;

using TensorSnapshot = std::vector<std::pair<std::string, at::Tensor>>;

// Parameters and buffers by qualified name, cloned (later changes do not reach them).
TensorSnapshot snapshot_state(const torch::nn::Module& module) {
  TensorSnapshot tensors;
  for (const auto& item : module.named_parameters())
    tensors.emplace_back(item.key(), item.value().detach().clone());
  for (const auto& item : module.named_buffers())
    tensors.emplace_back(item.key(), item.value().detach().clone());
  return tensors;
}

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
                                               const std::string& prefix, const std::string& file) {
  c10::IValue names_value;
  archive.read(prefix + "_names", names_value);
  std::map<std::string, at::Tensor> tensors;
  const c10::List<c10::IValue> names = names_value.toList();
  for (size_t i = 0; i < names.size(); ++i) {
    at::Tensor tensor;
    archive.read(prefix + "_" + std::to_string(i), tensor, /*is_buffer=*/true);
    serialization::check_tensor_storage(tensor, names.get(i).toStringRef(), file);
    tensors[names.get(i).toStringRef()] = tensor;
  }
  return tensors;
}

// Each example input: at most 8 sizes, none negative, at most kMaxInputElements in all.
void check_input_shapes(const std::vector<std::vector<int64_t>>& shapes, const std::string& file) {
  bool fits = !shapes.empty() && shapes.size() <= kMaxInputs;
  for (const std::vector<int64_t>& shape : shapes) {
    int64_t elements = 1;
    fits = fits && shape.size() <= 8;
    for (const int64_t size : shape) {
      fits = fits && size >= 0 && (size == 0 || size <= kMaxInputElements / elements);
      if (fits && size > 0) elements *= size;
    }
  }
  if (!fits) {
    throw Error(file + ": the saved input shapes are not 1 to " + std::to_string(kMaxInputs) +
                " shapes of at most 8 sizes and " + std::to_string(kMaxInputElements) +
                " elements each");
  }
}

bool is_input_type(int64_t code) {
  static const c10::ScalarType kTypes[] = {at::kFloat, at::kDouble, at::kHalf,  at::kBFloat16,
                                           at::kLong,  at::kInt,    at::kShort, at::kChar,
                                           at::kByte,  at::kBool};
  for (const c10::ScalarType type : kTypes)
    if (static_cast<int64_t>(type) == code) return true;
  return false;
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
                  "\" (another float model, or saved with another version of linquant?)");
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
  const TensorSnapshot rebuilt = snapshot_state(module);
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

// The archive LibTorch reads from the bytes, once they passed check_model_archive.
torch::serialize::InputArchive open_archive(const std::string& bytes, const std::string& name) {
  serialization::check_model_archive(bytes, name);
  std::istringstream stream(bytes);
  torch::serialize::InputArchive archive;
  archive.load_from(stream);
  return archive;
}

bool has_format(torch::serialize::InputArchive& archive) {
  c10::IValue format;
  return archive.try_read("format", format) && format.isString() && format.toStringRef() == kFormat;
}

// The saved file's content: its description and the two sets of tensors.
struct SavedContent {
  QuantizedModelInfo info;
  std::map<std::string, at::Tensor> prepared;
  std::map<std::string, at::Tensor> finalized;
};

SavedContent read_content(const std::string& bytes, const std::string& name) {
  SavedContent content;
  QuantizedModelInfo& info = content.info;
  try {
    torch::serialize::InputArchive archive = open_archive(bytes, name);
    if (!has_format(archive)) throw Error(name + ": not a quantized model saved by linquant");
    c10::IValue version, shapes, types;
    archive.read("version", version);
    if (version.toInt() != kVersion) {
      throw Error(name + ": saved model format version " + std::to_string(version.toInt()) +
                  " is not supported (this linquant reads version " + std::to_string(kVersion) +
                  "): quantize the float model again");
    }
    info.source_name = read_string(archive, "source_name");
    at::Tensor torchscript;
    archive.read("torchscript", torchscript, /*is_buffer=*/true);
    serialization::check_tensor_storage(torchscript, "torchscript", name);
    if (torchscript.scalar_type() != at::kByte || torchscript.dim() != 1) {
      throw Error(name + ": the embedded TorchScript model is not a list of bytes");
    }
    info.torchscript = tensor_bytes(torchscript);
    info.config = LinearQuantizerConfig::from_json(read_string(archive, "config_json"));
    archive.read("input_shapes", shapes);
    for (const c10::IValue& shape : shapes.toListRef())
      info.input_shapes.push_back(shape.toIntVector());
    check_input_shapes(info.input_shapes, name);
    archive.read("input_types", types);
    for (const c10::IValue& type : types.toListRef()) {
      if (!is_input_type(type.toInt())) {
        throw Error(name + ": the saved input type " + std::to_string(type.toInt()) +
                    " is not a tensor type");
      }
      info.input_types.push_back(static_cast<c10::ScalarType>(type.toInt()));
    }
    if (info.input_types.size() != info.input_shapes.size()) {
      throw Error(name + ": the file has " + std::to_string(info.input_shapes.size()) +
                  " input shapes but " + std::to_string(info.input_types.size()) + " input types");
    }
    info.metadata_json = read_string(archive, "metadata_json");
    content.prepared = read_tensors(archive, "prepared", name);
    content.finalized = read_tensors(archive, "finalized", name);
  } catch (const c10::Error& error) {
    throw Error(name + ": cannot read the saved model (" +
                one_line(error.what_without_backtrace(), 200) + ")");
  } catch (const std::bad_alloc&) {
    throw Error(name + ": " + serialization::kClaimsTooMuchMemory);
  }
  return content;
}

QuantizedModel rebuild(SavedContent content, const std::string& name,
                       const QuantizerFactory& make) {
  QuantizedModel model;
  model.info = std::move(content.info);
  // Warnings about the fresh, never-trained model (e.g. unused config names) were shown when
  // it was made.
  const ScopedWarningCapture quiet;
  model.quantizer = make(model.info);
  std::vector<at::Tensor> example_inputs;
  for (size_t i = 0; i < model.info.input_shapes.size(); ++i) {
    example_inputs.push_back(at::zeros(model.info.input_shapes[i], model.info.input_types[i]));
  }
  GraphModule prepared = model.quantizer->prepare(example_inputs);
  load_state(*prepared, content.prepared, name);
  model.finalized = model.quantizer->finalize();
  check_equal(*model.finalized, content.finalized, name);
  return model;
}

}  // namespace

std::string quantized_model_bytes(LinearQuantizer& quantizer, const SaveOptions& options) {
  if (!quantizer.is_prepared()) {
    throw Error("save_quantized_model(): the model is not prepared yet: call prepare() first");
  }
  const GraphModule prepared = quantizer.model();
  const TensorSnapshot prepared_state = snapshot_state(*prepared);
  const GraphModule finalized = quantizer.finalize();  // leaves the prepared model as it was
  c10::List<c10::List<int64_t>> shapes;
  c10::List<int64_t> types;
  const ir::Graph& graph = prepared->graph();
  for (const ir::ValueId input : graph.inputs()) {
    const ir::Value& value = graph.value(input);
    shapes.push_back(c10::List<int64_t>(value.shape));
    types.push_back(static_cast<int64_t>(value.dtype.value_or(at::kFloat)));
  }
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("version", c10::IValue(kVersion));
  archive.write("source_name", c10::IValue(options.source_name));
  archive.write("torchscript", bytes_tensor(options.torchscript), /*is_buffer=*/true);
  archive.write("config_json", c10::IValue(quantizer.config().to_json()));
  archive.write("input_shapes", c10::IValue(shapes));
  archive.write("input_types", c10::IValue(types));
  archive.write("metadata_json", c10::IValue(options.metadata_json));
  write_tensors(archive, "prepared", prepared_state);
  write_tensors(archive, "finalized", snapshot_state(*finalized));
  // Into memory: LibTorch's file writer aborts the process when the disk fills up.
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  return bytes;
}

void save_quantized_model(const std::filesystem::path& file, LinearQuantizer& quantizer,
                          const SaveOptions& options) {
  replace_file_bytes(file, quantized_model_bytes(quantizer, options));
}

bool is_quantized_model_file(const std::filesystem::path& file) {
  try {
    torch::serialize::InputArchive archive = open_archive(read_file_bytes(file), file.string());
    return has_format(archive);
  } catch (const Error&) {
    throw;  // unreadable or damaged, whatever kind of model it is
  } catch (const c10::Error&) {
    return false;
  } catch (const std::bad_alloc&) {
    throw Error(file.string() + ": " + serialization::kClaimsTooMuchMemory);
  } catch (const std::exception&) {  // e.g. TorchScript code in the archive that does not compile
    return false;
  }
}

QuantizedModel load_quantized_model(const std::filesystem::path& file,
                                    const QuantizerFactory& make) {
  const std::string name = file.string();
  return rebuild(read_content(read_file_bytes(file), name), name, make);
}

QuantizedModel load_quantized_model(const std::filesystem::path& file) {
  const std::string name = file.string();
  SavedContent content = read_content(read_file_bytes(file), name);
  if (content.info.torchscript.empty()) {
    throw Error(name + ": the file does not embed its float model: load it with the model (" +
                "load_quantized_model_into(file, model))");
  }
  auto script = std::make_shared<torch::jit::Module>(
      load_torchscript(content.info.torchscript, content.info.source_name));
  QuantizedModel model = rebuild(std::move(content), name, [&](const QuantizedModelInfo& info) {
    return std::make_unique<LinearQuantizer>(*script, info.config);
  });
  model.torchscript_model = std::move(script);
  return model;
}

}  // namespace linquant
