// YAML text -> document. yaml-cpp builds the node tree; this file gives the untyped
// scalars their types and rejects what the JSON tree cannot hold or would hide: non-string
// keys, repeated keys and several documents in one text.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

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

// Listens to yaml-cpp's parse only for where each document starts.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// A config is one document. yaml-cpp 0.7 (Debian 12) takes some malformed text, such as a ','
// outside any [...] or {...} (",a", "{a: 1}, b"), for an endless run of empty documents, so
// YAML::LoadAll would allocate without bound (found by scripts/fuzz.sh). The documents are
// therefore counted one by one, and the second one stops the parse with an error.
void refuse_second_document(const Source& source) {
  std::istringstream stream(source.text);
  YAML::Parser parser(stream);
  DocumentStarts documents;
  while (documents.starts.size() < 2 && parser.HandleNextDocument(documents)) {
  }
  if (documents.starts.size() >= 2) {
    throw ConfigError(source.name + ": " + position(documents.starts[1]) +
                      ": a second YAML document starts here (after a '---' line, or at a ',' "
                      "outside any [...] or {...}); a config is a single document");
  }
}

}  // namespace

Document parse_yaml(const Source& source) {
  YAML::Node document;
  try {
    refuse_second_document(source);
    document = YAML::Load(source.text);
  } catch (const YAML::Exception& error) {
    if (error.mark.is_null()) throw ConfigError(source.name + ": " + error.msg);
    throw ConfigError(source.name + ": " + position(error.mark) + ": " + error.msg);
  }
  // An empty file (or one with only comments) is the empty config, as in coremltools.
  if (document.IsNull()) return Document::object();
  return Converter().convert(document, kRootPath);
}

}  // namespace linquant::config_detail
