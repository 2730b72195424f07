// Manifest.json of an .mlpackage: the package's item list (model specification and weights)
// and which item is the root model.
#pragma once

#include <string>
#include <vector>

namespace linquant::coreml {

struct ManifestItem {
  std::string identifier;   // lower-case UUID
  std::string path;         // relative to Data/, equal to author + "/" + name
  std::string name;
  std::string author;
  std::string description;
};

struct Manifest {
  std::string file_format_version = "1.0.0";
  std::vector<ManifestItem> items;
  std::string root_model_identifier;

  // The two items of an ML Program package (weights directory and model.mlmodel), with fresh
  // identifiers; the model is the root.
  static Manifest for_ml_program();

  // Pretty-printed with a 4-space indent, keys sorted, as Core ML's own writer does.
  std::string to_json() const;
  // Reads and checks the keys Core ML requires; throws ExportError naming what is wrong.
  static Manifest from_json(const std::string& text);
};

// A random (version 4, RFC 4122 variant) UUID in lower-case 8-4-4-4-12 form, from
// std::random_device.
std::string random_uuid_v4();

}  // namespace linquant::coreml
