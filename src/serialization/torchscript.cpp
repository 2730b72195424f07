// Loading TorchScript with the archive checks before and the storage checks after LibTorch's
// loader (see linquant/serialization/torchscript.h).
#include "linquant/serialization/torchscript.h"

#include <c10/util/Exception.h>
#include <torch/script.h>

#include <new>
#include <sstream>

#include "archive_check.h"
#include "linquant/common/error.h"
#include "linquant/common/file_io.h"
#include "tensor_storage.h"

namespace linquant {

torch::jit::Module load_torchscript(const std::string& bytes, const std::string& name) {
  std::istringstream stream(bytes);
  torch::jit::Module module;
  try {
    serialization::check_model_archive(bytes, name);
    module = torch::jit::load(stream);
  } catch (const Error&) {
    throw;  // already names the file
  } catch (const c10::Error& error) {
    throw Error(name + ": not a TorchScript model (" +
                one_line(error.what_without_backtrace(), 200) + ")");
  } catch (const std::bad_alloc&) {
    throw Error(name + ": " + serialization::kClaimsTooMuchMemory);
  } catch (const std::exception& error) {  // e.g. the code in the archive does not compile
    throw Error(name + ": not a TorchScript model (" + one_line(error.what(), 200) + ")");
  }
  serialization::check_module_storage(module, name);
  return module;
}

torch::jit::Module load_torchscript(const std::filesystem::path& file) {
  return load_torchscript(read_file_bytes(file), file.string());
}

}  // namespace linquant
