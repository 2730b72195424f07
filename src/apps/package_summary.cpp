// .mlpackage reading for `linquant inspect`.
#include "package_summary.h"

#include <Model.pb.h>

#include <fstream>
#include <map>
#include <sstream>

#include "cli_common.h"
#include "coreml_export.h"
#include "linquant/common/error.h"
#include "linquant/common/file_io.h"
#include "linquant/export/coreml/manifest.h"
#include "package_weights.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace mil = CoreML::Specification::MILSpec;
namespace {

std::string data_type_name(mil::DataType type) {
  switch (type) {
    case mil::FLOAT16:
      return "fp16";
    case mil::FLOAT32:
      return "fp32";
    case mil::INT8:
      return "int8";
    case mil::UINT8:
      return "uint8";
    case mil::INT4:
      return "int4";
    case mil::UINT4:
      return "uint4";
    case mil::INT32:
      return "int32";
    case mil::INT64:
      return "int64";
    case mil::BOOL:
      return "bool";
    case mil::STRING:
      return "string";
    default:
      return "type" + std::to_string(static_cast<int>(type));
  }
}

std::string type_text(const mil::ValueType& type) {
  if (!type.has_tensortype()) return "?";
  const mil::TensorType& tensor = type.tensortype();
  std::string text = data_type_name(tensor.datatype()) + "[";
  for (int i = 0; i < tensor.dimensions_size(); ++i) {
    const mil::Dimension& dim = tensor.dimensions(i);
    text += (i ? ", " : "") +
            (dim.has_constant() ? std::to_string(dim.constant().size()) : std::string("?"));
  }
  return text + "]";
}

std::string feature_text(const CoreML::Specification::FeatureDescription& feature) {
  std::string text = feature.name();
  if (feature.type().has_multiarraytype()) {
    const auto& array = feature.type().multiarraytype();
    const char* dtype =
        array.datatype() == CoreML::Specification::ArrayFeatureType::FLOAT16   ? "fp16"
        : array.datatype() == CoreML::Specification::ArrayFeatureType::FLOAT32 ? "fp32"
        : array.datatype() == CoreML::Specification::ArrayFeatureType::INT32   ? "int32"
                                                                               : "other";
    text += std::string(": ") + dtype + " multi-array [";
    for (int i = 0; i < array.shape_size(); ++i)
      text += (i ? ", " : "") + std::to_string(array.shape(i));
    text += "]";
  }
  return text;
}

}  // namespace

bool is_package_dir(const fs::path& path) {
  std::error_code error;
  return fs::is_directory(path, error) && fs::is_regular_file(path / "Manifest.json", error);
}

std::string package_summary(const fs::path& package, bool list_ops) {
  const coreml::Manifest manifest =
      coreml::Manifest::from_json(read_file_bytes(package / "Manifest.json"));
  fs::path model_path;
  for (const coreml::ManifestItem& item : manifest.items) {
    if (item.identifier == manifest.root_model_identifier)
      model_path = package / "Data" / item.path;
  }
  if (model_path.empty()) throw Error(package.string() + ": Manifest.json names no root model");
  CoreML::Specification::Model model;
  const std::string model_bytes = read_file_bytes(model_path);
  if (model_bytes.empty() || !model.ParseFromString(model_bytes) ||
      model.specificationversion() == 0) {
    throw Error(model_path.string() + ": not a Core ML model file");
  }
  const int blobs =
      model.has_mlprogram() ? check_package_weights(model_path.parent_path(), model) : 0;

  std::ostringstream out;
  out << "Core ML package " << package.string() << "\n";
  out << "  specification version " << model.specificationversion() << "\n";
  for (const auto& input : model.description().input())
    out << "  input   " << feature_text(input) << "\n";
  for (const auto& output : model.description().output())
    out << "  output  " << feature_text(output) << "\n";
  const auto& metadata = model.description().metadata();
  if (!metadata.shortdescription().empty())
    out << "  description: " << metadata.shortdescription() << "\n";
  std::map<std::string, std::string> user_defined(metadata.userdefined().begin(),
                                                  metadata.userdefined().end());
  for (const auto& [key, value] : user_defined)
    out << "  metadata " << key << " = " << value << "\n";
  if (!model.has_mlprogram()) {
    out << "  (not an ML Program)\n";
    return out.str();
  }
  for (const auto& [name, function] : model.mlprogram().functions()) {
    const auto block = function.block_specializations().find(function.opset());
    if (block == function.block_specializations().end()) continue;
    std::map<std::string, int> counts;
    int weight_file_consts = 0;
    for (const mil::Operation& op : block->second.operations()) {
      ++counts[op.type()];
      const auto value = op.attributes().find("val");
      if (op.type() == "const" && value != op.attributes().end() &&
          value->second.has_blobfilevalue())
        ++weight_file_consts;
    }
    out << "  function " << name << " (opset " << function.opset()
        << "): " << block->second.operations_size() << " operations\n";
    for (const auto& [type, count] : counts) out << "    " << count << " x " << type << "\n";
    out << "    (" << weight_file_consts << " constants stored in weight.bin)\n";
    if (list_ops) {
      out << "  operations:\n";
      for (const mil::Operation& op : block->second.operations()) {
        if (op.type() == "const") continue;
        out << "    " << op.type();
        for (const mil::NamedValueType& output : op.outputs())
          out << "  " << output.name() << ": " << type_text(output.type());
        out << "\n";
      }
    }
  }
  out << "  weights: " << blobs << " blob records checked (present, intact, sized to their type)\n";
  out << "  files:\n";
  for (fs::recursive_directory_iterator it(package), end; it != end; ++it) {
    if (it->is_regular_file()) {
      out << "    " << fs::relative(it->path(), package).string() << "  "
          << format_bytes(it->file_size()) << "\n";
    }
  }
  out << "  total " << format_bytes(disk_size(package)) << "\n";
  return out.str();
}

}  // namespace linquant::apps
