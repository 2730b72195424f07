// Manifest.json reading and writing with nlohmann::json (whose std::map objects sort keys, as
// Core ML's own writer does).
#include "linquant/export/coreml/manifest.h"

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

constexpr const char* kAuthor = "com.apple.CoreML";

const nlohmann::json& require(const nlohmann::json& object, const char* key,
                             const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    throw ExportError("Manifest.json: " + where + " has no \"" + key + "\"");
  }
  return object.at(key);
}

std::string require_string(const nlohmann::json& object, const char* key,
                           const std::string& where) {
  const nlohmann::json& value = require(object, key, where);
  if (!value.is_string()) {
    throw ExportError("Manifest.json: " + where + "." + key + " is not a string");
  }
  return value.get<std::string>();
}

}  // namespace

std::string random_uuid_v4() {
  std::random_device device;
  unsigned char bytes[16];
  for (int i = 0; i < 16; i += 4) {
    const std::uint32_t word = device();
    for (int j = 0; j < 4; ++j) bytes[i + j] = static_cast<unsigned char>(word >> (8 * j));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof text,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
  return text;
}

Manifest Manifest::for_ml_program() {
  Manifest manifest;
  ManifestItem weights{random_uuid_v4(), std::string(kAuthor) + "/weights", "weights", kAuthor,
                       "CoreML Model Weights"};
  ManifestItem model{random_uuid_v4(), std::string(kAuthor) + "/model.mlmodel", "model.mlmodel",
                     kAuthor, "CoreML Model Specification"};
  while (model.identifier == weights.identifier) model.identifier = random_uuid_v4();
  manifest.root_model_identifier = model.identifier;
  manifest.items = {weights, model};
  return manifest;
}

std::string Manifest::to_json() const {
  nlohmann::json entries = nlohmann::json::object();
  for (const ManifestItem& item : items) {
    entries[item.identifier] = {{"author", item.author},
                                {"description", item.description},
                                {"name", item.name},
                                {"path", item.path}};
  }
  const nlohmann::json root = {{"fileFormatVersion", file_format_version},
                               {"itemInfoEntries", entries},
                               {"rootModelIdentifier", root_model_identifier}};
  return root.dump(4);
}

Manifest Manifest::from_json(const std::string& text) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ExportError(std::string("Manifest.json is not valid JSON: ") + e.what());
  }
  Manifest manifest;
  manifest.file_format_version = require_string(root, "fileFormatVersion", "the root object");
  manifest.root_model_identifier = require_string(root, "rootModelIdentifier", "the root object");
  const nlohmann::json& entries = require(root, "itemInfoEntries", "the root object");
  if (!entries.is_object()) throw ExportError("Manifest.json: itemInfoEntries is not an object");
  for (const auto& [identifier, entry] : entries.items()) {
    const std::string where = "itemInfoEntries[\"" + identifier + "\"]";
    manifest.items.push_back({identifier, require_string(entry, "path", where),
                              require_string(entry, "name", where),
                              require_string(entry, "author", where),
                              require_string(entry, "description", where)});
  }
  if (!entries.contains(manifest.root_model_identifier)) {
    throw ExportError("Manifest.json: rootModelIdentifier \"" + manifest.root_model_identifier +
                      "\" is not one of the itemInfoEntries");
  }
  return manifest;
}

}  // namespace linquant::coreml
