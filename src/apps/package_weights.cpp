// Blob storage v2 (reference: the mlpackage and weight-blob formats): a 64-byte header
// (count, version 2), then per blob a 64-byte record (sentinel 0xDEADBEEF, data type, size,
// payload offset, padding bits) that a BlobFileValue's offset points at.
#include "package_weights.h"

#include <Model.pb.h>

#include <cstdint>
#include <map>
#include <string>

#include "linquant/common/error.h"
#include "linquant/common/file_io.h"
#include "linquant/export/coreml/blob_writer.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace mil = CoreML::Specification::MILSpec;
namespace {

using coreml::BlobDataType;
using coreml::BlobWriter;

uint64_t little_endian(const std::string& bytes, uint64_t at, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return value;
}

struct BlobType {
  BlobDataType code;
  int bits;
};

// The blob data type and bits per element of each MIL type a blob can hold.
const std::map<int, BlobType>& blob_types() {
  static const std::map<int, BlobType> types = {
      {mil::FLOAT16, {BlobDataType::Float16, 16}}, {mil::FLOAT32, {BlobDataType::Float32, 32}},
      {mil::UINT8, {BlobDataType::UInt8, 8}},      {mil::INT8, {BlobDataType::Int8, 8}},
      {mil::INT4, {BlobDataType::Int4, 4}},        {mil::UINT4, {BlobDataType::UInt4, 4}}};
  return types;
}

// The weight files of a package, read once each.
class WeightFiles {
 public:
  explicit WeightFiles(fs::path model_dir) : model_dir_(std::move(model_dir)) {}

  const std::string& bytes(const std::string& file_name) {
    const auto known = files_.find(file_name);
    if (known != files_.end()) return known->second;
    const std::string prefix = "@model_path/";
    if (file_name.rfind(prefix, 0) != 0 || file_name.find("..") != std::string::npos) {
      throw Error("weights in \"" + file_name + "\": not a file inside the package");
    }
    const fs::path path = model_dir_ / file_name.substr(prefix.size());
    std::string bytes = read_file_bytes(path);
    if (bytes.size() < BlobWriter::kHeaderSize) {
      throw Error(path.string() + ": " + std::to_string(bytes.size()) +
                  " bytes, shorter than the blob file header");
    }
    const uint64_t version = little_endian(bytes, 4, 4);
    if (version != BlobWriter::kFormatVersion) {
      throw Error(path.string() + ": blob file version " + std::to_string(version) + ", expected " +
                  std::to_string(BlobWriter::kFormatVersion));
    }
    return files_.emplace(file_name, std::move(bytes)).first->second;
  }

 private:
  fs::path model_dir_;
  std::map<std::string, std::string> files_;
};

void check_blob(const mil::Operation& op, const mil::Value& value, WeightFiles& files) {
  const mil::Value::BlobFileValue& blob = value.blobfilevalue();
  const std::string& bytes = files.bytes(blob.filename());
  const std::string where = "constant " + (op.outputs_size() ? op.outputs(0).name() : "?") + " (" +
                            blob.filename() + " at " + std::to_string(blob.offset()) + ")";
  const uint64_t size = bytes.size();
  if (blob.offset() > size || size - blob.offset() < BlobWriter::kMetadataSize) {
    throw Error(where + ": the record lies past the end of the file (" + std::to_string(size) +
                " bytes)");
  }
  const uint64_t at = blob.offset();
  if (little_endian(bytes, at, 4) != BlobWriter::kSentinel) {
    throw Error(where + ": no blob record there (bad sentinel)");
  }
  const uint64_t payload_size = little_endian(bytes, at + 8, 8);
  const uint64_t payload_offset = little_endian(bytes, at + 16, 8);
  if (payload_offset > size || size - payload_offset < payload_size) {
    throw Error(where + ": its " + std::to_string(payload_size) + " bytes at " +
                std::to_string(payload_offset) + " lie past the end of the file (" +
                std::to_string(size) + " bytes)");
  }
  const mil::TensorType& tensor = value.type().tensortype();
  const auto known = blob_types().find(tensor.datatype());
  if (known == blob_types().end()) {
    throw Error(where + ": a blob cannot hold data type " + std::to_string(tensor.datatype()));
  }
  const BlobType type = known->second;
  if (little_endian(bytes, at + 4, 4) != static_cast<uint32_t>(type.code)) {
    throw Error(where + ": the record's data type " +
                std::to_string(little_endian(bytes, at + 4, 4)) + " is not the constant's (" +
                std::to_string(static_cast<uint32_t>(type.code)) + ")");
  }
  uint64_t count = 1;
  for (const mil::Dimension& dim : tensor.dimensions()) {
    if (!dim.has_constant()) throw Error(where + ": a constant of unknown shape");
    if (__builtin_mul_overflow(count, dim.constant().size(), &count)) {
      throw Error(where + ": the constant's shape has more elements than can be stored");
    }
  }
  const uint64_t expected = (count * static_cast<uint64_t>(type.bits) + 7) / 8;
  if (payload_size != expected) {
    throw Error(where + ": " + std::to_string(payload_size) + " bytes stored, " +
                std::to_string(count) + " elements need " + std::to_string(expected));
  }
}

}  // namespace

int check_package_weights(const fs::path& model_dir, const CoreML::Specification::Model& model) {
  WeightFiles files(model_dir);
  int checked = 0;
  for (const auto& [name, function] : model.mlprogram().functions()) {
    for (const auto& [opset, block] : function.block_specializations()) {
      for (const mil::Operation& op : block.operations()) {
        for (const auto& [key, value] : op.attributes()) {
          if (!value.has_blobfilevalue()) continue;
          check_blob(op, value, files);
          ++checked;
        }
      }
    }
  }
  return checked;
}

}  // namespace linquant::apps
