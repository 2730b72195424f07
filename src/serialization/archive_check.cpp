// Walks the opcodes of pickle protocol 2 (what LibTorch writes) far enough to see every
// claimed length, and checks the class bodies of code/*.py; see archive_check.h.
#include "archive_check.h"

#include <c10/core/Allocator.h>
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include "class_body_check.h"
#include "debug_info_check.h"
#include "linquant/common/error.h"

namespace linquant::serialization {
namespace {

// How an opcode's argument is laid out.
struct Argument {
  enum Kind { kFixed, kLengthPrefixed, kLines, kUnknown } kind;
  int bytes;  // kFixed: argument size; kLengthPrefixed: size of the little-endian length; kLines:
              // count
};

Argument argument_of(uint8_t opcode) {
  switch (opcode) {
    case 0x80:
    case 'K':
    case 'h':
    case 'q':
    case 0x82:  // PROTO BININT1 BINGET BINPUT EXT1
      return {Argument::kFixed, 1};
    case 'M':
    case 0x83:  // BININT2 EXT2
      return {Argument::kFixed, 2};
    case 'J':
    case 'j':
    case 'r':
    case 0x84:  // BININT LONG_BINGET LONG_BINPUT EXT4
      return {Argument::kFixed, 4};
    case 'G':
    case 0x95:  // BINFLOAT FRAME
      return {Argument::kFixed, 8};
    case '(':
    case '.':
    case '0':
    case '1':
    case '2':
    case 'N':
    case 'R':
    case 'a':
    case 'b':
    case 'd':
    case '}':
    case 'e':
    case 'l':
    case ']':
    case 'o':
    case 's':
    case 'u':
    case 't':
    case ')':
    case 'Q':
    case 0x81:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8f:
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x97:
    case 0x98:
      return {Argument::kFixed, 0};
    case 'U':
    case 'C':
    case 0x8c:
    case 0x8a:  // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1
      return {Argument::kLengthPrefixed, 1};
    case 'X':
    case 'B':
    case 'T':
    case 0x8b:  // BINUNICODE BINBYTES BINSTRING LONG4
      return {Argument::kLengthPrefixed, 4};
    case 0x8d:
    case 0x8e:
    case 0x96:  // BINUNICODE8 BINBYTES8 BYTEARRAY8
      return {Argument::kLengthPrefixed, 8};
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
    case 'P':
    case 'g':
    case 'p':
      return {Argument::kLines, 1};
    case 'c':
    case 'i':  // GLOBAL INST: module and name
      return {Argument::kLines, 2};
    default:
      return {Argument::kUnknown, 0};
  }
}

// The first opcode that claims more than the pickle holds, if any: an argument running past
// the end, or a memo slot (BINPUT, LONG_BINPUT) far beyond the ones used so far. Writers
// number memo slots from 0 in order; LibTorch reserves room for twice the slot it is given
// (68 GB for a 4-byte slot number of 2^31).
struct Overrun {
  size_t at;
  const char* what;
};

std::optional<Overrun> first_overrun(const uint8_t* data, size_t size) {
  constexpr const char* kPastTheEnd = "claims more data than the record holds";
  size_t at = 0;
  uint64_t memo_slots = 0;
  while (at < size) {
    const size_t opcode_at = at;
    const uint8_t opcode = data[at++];
    const Argument argument = argument_of(opcode);
    const size_t left = size - at;
    switch (argument.kind) {
      case Argument::kUnknown:
        return std::nullopt;  // LibTorch rejects what it cannot read
      case Argument::kFixed:
        if (static_cast<size_t>(argument.bytes) > left) return Overrun{opcode_at, kPastTheEnd};
        if (opcode == 'q' || opcode == 'r') {
          uint64_t slot = 0;
          for (int i = 0; i < argument.bytes; ++i) slot |= uint64_t{data[at + i]} << (8 * i);
          if (slot > memo_slots) return Overrun{opcode_at, "stores into a memo slot out of order"};
          if (slot == memo_slots) ++memo_slots;
        }
        if (opcode == 0x94) ++memo_slots;  // MEMOIZE takes the next slot
        at += argument.bytes;
        break;
      case Argument::kLengthPrefixed: {
        if (static_cast<size_t>(argument.bytes) > left) return Overrun{opcode_at, kPastTheEnd};
        uint64_t length = 0;
        for (int i = 0; i < argument.bytes; ++i) length |= uint64_t{data[at + i]} << (8 * i);
        at += argument.bytes;
        if (length > size - at) return Overrun{opcode_at, kPastTheEnd};
        at += length;
        break;
      }
      case Argument::kLines:
        for (int line = 0; line < argument.bytes; ++line) {
          while (at < size && data[at] != '\n') ++at;
          if (at == size) return Overrun{opcode_at, kPastTheEnd};
          ++at;
        }
        break;
    }
    if (opcode == '.') return std::nullopt;  // STOP
  }
  return std::nullopt;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void check_model_archive(const std::string& archive, const std::string& name) {
  std::istringstream stream(archive);
  caffe2::serialize::PyTorchStreamReader reader(&stream);
  for (const std::string& record : reader.getAllRecords()) {
    // data.pkl, constants.pkl and the code's *.debug_pkl are all unpickled.
    const bool pickle = ends_with(record, "pkl");
    const bool code = ends_with(record, ".py") && record.find("code/") != std::string::npos;
    if (!pickle && !code) continue;
    const auto [data, size] = reader.getRecord(record);
    if (pickle) {
      if (const auto overrun = first_overrun(static_cast<const uint8_t*>(data.get()), size)) {
        throw Error(name + ": the archive's " + record + " is damaged (byte " +
                    std::to_string(overrun->at) + " " + overrun->what + ")");
      }
      if (ends_with(record, ".debug_pkl")) {
        if (const auto problem = debug_info_problem(static_cast<const char*>(data.get()), size))
          throw Error(name + ": the archive's " + record + " is damaged (" + *problem + ")");
      }
    } else if (const auto problem = class_body_problem(
                   std::string_view(static_cast<const char*>(data.get()), size))) {
      throw Error(name + ": the archive's " + record + " is damaged (" + *problem + ")");
    }
  }
}

}  // namespace linquant::serialization
