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

// yaml-cpp 0.7 (Debian 12) allocates without bound on a ',' outside any [...] or {...} that
// starts a document or a line at column 1 (",a" alone takes gigabytes; found by
// scripts/fuzz.sh). Such text is never a valid config: refuse it before yaml-cpp sees it.
void refuse_stray_flow_entry(const Source& source) {
  int depth = 0;              // open [ and { outside quotes and comments (roughly)
  bool content_seen = false;  // in the current document
  size_t line_number = 0;
  size_t start = 0;
  while (start <= source.text.size()) {
    size_t end = source.text.find('\n', start);
    if (end == std::string::npos) end = source.text.size();
    const std::string line = source.text.substr(start, end - start);
    ++line_number;
    const size_t first = line.find_first_not_of(" \t\r");
    if (line.rfind("---", 0) == 0 || line.rfind("%", 0) == 0) {
      content_seen = false;
    } else if (first != std::string::npos && line[first] != '#') {
      if (line[first] == ',' && depth == 0 && (first == 0 || !content_seen)) {
        throw ConfigError(source.name + ": line " + std::to_string(line_number) + ", column " +
                          std::to_string(first + 1) + ": ',' outside a [...] or {...} list");
      }
      content_seen = true;
      char quote = 0;
      bool after_closed_list = false;  // "{a: 1}, b" takes yaml-cpp down the same way
      for (size_t i = first; i < line.size(); ++i) {
        const char c = line[i];
        if (quote) {
          if (c == quote) quote = 0;
        } else if (c == ',' && depth == 0 && after_closed_list) {
          throw ConfigError(source.name + ": line " + std::to_string(line_number) + ", column " +
                            std::to_string(i + 1) + ": ',' outside a [...] or {...} list");
        } else if (c == '\'' || c == '"') {
          quote = c;
        } else if (c == '#' && (i == 0 || line[i - 1] == ' ')) {
          break;
        } else if (c == '[' || c == '{') {
          ++depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
          --depth;
          after_closed_list = depth == 0;
          continue;
        }
        if (c != ' ' && c != '\t') after_closed_list = false;
      }
    }
    start = end + 1;
  }
}

}  // namespace

Document parse_yaml(const Source& source) {
  refuse_stray_flow_entry(source);
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
