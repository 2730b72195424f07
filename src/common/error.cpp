// Helpers for error messages (see linquant/common/error.h).
#include "linquant/common/error.h"

namespace linquant {

std::string one_line(const std::string& text, size_t max_chars) {
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) {
      if (!out.empty()) out += "; ";
      out.append(text, start, end - start);
    }
    start = end + 1;
  }
  return out.substr(0, max_chars);
}

}  // namespace linquant
