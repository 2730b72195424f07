// JSON text <-> document: syntax errors with line and column, and repeated keys, which
// nlohmann (like most JSON readers) would otherwise resolve silently by keeping the last.
#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "document.h"
#include "linquant/common/error.h"

namespace linquant::config_detail {
namespace {

// nlohmann reports the byte offset of the last character it read (1-based; one past the
// end at end of input). Lines and columns count from 1, columns in bytes; an error right
// after a token is reported where the token ends, not at the start of the next line.
std::string line_and_column(const std::string& text, std::size_t byte) {
  const std::size_t index = std::min(byte == 0 ? 0 : byte - 1, text.size());
  const std::size_t line = 1 + static_cast<std::size_t>(
                                   std::count(text.begin(), text.begin() + index, '\n'));
  std::size_t line_start = 0;
  if (index > 0) {
    const std::size_t newline = text.rfind('\n', index - 1);
    if (newline != std::string::npos) line_start = newline + 1;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(index - line_start + 1);
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 4, column 0:
// <reason>"; only the reason is kept, the position is recomputed above.
std::string reason_of(const std::string& what) {
  const std::string marker = "column ";
  const std::size_t at = what.find(marker);
  if (at != std::string::npos) {
    const std::size_t colon = what.find(": ", at);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  return what;
}

// Follows the parser's events to know the key path of the object being filled, so that a
// repeated key can be reported where it occurs.
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, Document::parse_event_t event, Document& parsed) {
    using Event = Document::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (frames_.size() >= kMaxNesting) {
          throw ConfigError(next_child_path() + ": nested more than " +
                            std::to_string(kMaxNesting) + " levels deep");
        }
        frames_.push_back({event == Event::object_start, next_child_path(), {}, {}, 0});
        break;
      case Event::object_end:
      case Event::array_end:
        frames_.pop_back();
        break;
      case Event::key: {
        Frame& frame = frames_.back();
        const std::string key = parsed.get<std::string>();
        if (!frame.keys.insert(key).second) {
          throw ConfigError(frame.path + ": duplicate key " + quoted(key) +
                            "; each key may appear once");
        }
        frame.last_key = key;
        break;
      }
      case Event::value:
        if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().next_index;
        break;
    }
    return true;  // keep every value
  }

 private:
  struct Frame {
    bool is_object;
    std::string path;
    std::set<std::string> keys;
    std::string last_key;
    std::size_t next_index;
  };

  std::string next_child_path() {
    if (frames_.empty()) return kRootPath;
    Frame& parent = frames_.back();
    if (parent.is_object) return child_path(parent.path, parent.last_key);
    return index_path(parent.path, parent.next_index++);
  }

  std::vector<Frame> frames_;
};

}  // namespace

Document parse_json(const Source& source) {
  try {
    // Comments are allowed: configs are hand-written files that deserve explanations.
    return Document::parse(source.text, DuplicateKeyCheck{}, /*allow_exceptions=*/true,
                           /*ignore_comments=*/true);
  } catch (const Document::parse_error& error) {
    throw ConfigError(source.name + ": " + line_and_column(source.text, error.byte) + ": " +
                      reason_of(error.what()));
  } catch (const Document::out_of_range& error) {  // a number beyond double's range
    throw ConfigError(source.name + ": " + reason_of(error.what()));
  }
}

std::string write_json(const Document& document) {
  return document.dump(2, ' ', false, Document::error_handler_t::replace) + "\n";
}

}  // namespace linquant::config_detail
