// A check of model archives (TorchScript files, saved quantized models) before LibTorch
// reads them: every length a pickle in the archive claims must fit in that pickle (LibTorch's
// unpickler allocates and fills a string of the claimed length before reading it, so a
// 100-byte file claiming a 4 GB string would take 4 GB of memory and seconds to fail), memo
// slots must be used in order (LibTorch reserves memory for the slot number it is given), and
// the class bodies of its TorchScript code must be of the forms class_body_check.h lists, and
// its debug tables as debug_info_check.h describes.
#pragma once

#include <string>

namespace linquant::serialization {

// Throws Error naming `name` and the record when a pickle claims more bytes than it holds or
// a class body of the code is malformed;
// c10::Error when `archive` is not a zip archive LibTorch can read. Pickles with opcodes it
// does not know are left to LibTorch, which rejects them.
void check_model_archive(const std::string& archive, const std::string& name);

// The error for a model file whose own sizes still ask for more memory than there is.
constexpr const char* kClaimsTooMuchMemory =
    "cannot be read: it asks for more memory than there is (a corrupt file?)";

}  // namespace linquant::serialization
