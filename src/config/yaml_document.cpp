// YAML text -> document. yaml-cpp builds the node tree; this file gives the untyped
// scalars their types and rejects what the JSON tree cannot hold or would hide: non-string
// keys, repeated keys and several documents in one text.
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "document.h"
#include "linquant/common/error.h"
#include "yaml_scalar.h"

namespace linquant::config_detail {
namespace {

// yaml-cpp marks count from 0; people count lines and columns from 1.
std::string position(const YAML::Mark& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

// yaml-cpp tags: "?" for a plain scalar, "!" for a quoted one, or an explicit tag.
Document scalar_value(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return node.Scalar();
  if (tag == "?" || tag.rfind("tag:yaml.org,2002:", 0) == 0) {
    return resolve_plain_scalar(node.Scalar());
  }
  return node.Scalar();  // an application tag (!foo) carries no type we know
}

// Expands the node tree (aliases included) into a document, within kMaxNesting and kMaxValues.
class Converter {
 public:
  Document convert(const YAML::Node& node, const std::string& path, std::size_t depth = 0) {
    if (++values_ > kMaxValues) {
      throw ConfigError(path + ": the document expands to more than " + std::to_string(kMaxValues) +
                        " values (aliases repeating aliases?)");
    }
    if (depth > kMaxNesting) {
      throw ConfigError(path + ": " + position(node.Mark()) + ": nested more than " +
                        std::to_string(kMaxNesting) + " levels deep");
    }
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        return scalar_value(node);
      case YAML::NodeType::Sequence: {
        Document array = Document::array();
        for (std::size_t i = 0; i < node.size(); ++i) {
          array.push_back(convert(node[i], index_path(path, i), depth + 1));
        }
        return array;
      }
      case YAML::NodeType::Map: {
        Document object = Document::object();
        std::set<std::string> seen;
        // Iterators yield proxies by value: copy the key and value nodes (cheap handles).
        for (const auto& pair : node) {
          const YAML::Node key = pair.first;
          if (!key.IsScalar()) {
            throw ConfigError(path + ": " + position(key.Mark()) +
                              ": keys must be strings (quote a key such as ~ or null)");
          }
          const std::string name = key.Scalar();
          if (!seen.insert(name).second) {
            throw ConfigError(path + ": " + position(key.Mark()) + ": duplicate key " +
                              quoted(name) + "; each key may appear once");
          }
          object[name] = convert(pair.second, child_path(path, name), depth + 1);
        }
        return object;
      }
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        break;
    }
    return nullptr;
  }

 private:
  std::size_t values_ = 0;
};

}  // namespace

Document parse_yaml(const Source& source) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(source.text);
  } catch (const YAML::Exception& error) {
    if (error.mark.is_null()) throw ConfigError(source.name + ": " + error.msg);
    throw ConfigError(source.name + ": " + position(error.mark) + ": " + error.msg);
  }
  if (documents.size() > 1) {
    throw ConfigError(source.name + ": the text holds " + std::to_string(documents.size()) +
                      " YAML documents (separated by ---); a config is a single document");
  }
  // An empty file (or one with only comments) is the empty config, as in coremltools.
  if (documents.empty() || documents[0].IsNull()) return Document::object();
  return Converter().convert(documents[0], kRootPath);
}

}  // namespace linquant::config_detail
