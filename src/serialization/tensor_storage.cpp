// Storage bounds of loaded tensors (see tensor_storage.h).
#include "tensor_storage.h"

#include <c10/core/CPUAllocator.h>
#include <malloc.h>
#include <torch/script.h>

#include <algorithm>
#include <cstdint>

#include "linquant/common/error.h"

namespace linquant::serialization {

namespace {

// The bytes a storage really owns from its data pointer on. LibTorch 1.13's loader sizes a
// storage by the element count its pickle claims while the buffer holds what the file's record
// had, so nbytes() alone can lie; a buffer from the CPU allocator (what the loader uses) knows
// its malloc'd size. Other buffers are taken at their word.
__int128 owned_bytes(const c10::Storage& storage) {
  const at::DataPtr& ptr = storage.data_ptr();
  __int128 bytes = static_cast<__int128>(storage.nbytes());
  if (ptr.get() != nullptr && ptr.get_context() != nullptr &&
      ptr.get_deleter() == c10::GetCPUAllocator()->raw_deleter()) {
    const auto* base = static_cast<const char*>(ptr.get_context());
    const auto* data = static_cast<const char*>(ptr.get());
    const __int128 usable = static_cast<__int128>(malloc_usable_size(ptr.get_context())) -
                            static_cast<__int128>(data - base);
    bytes = std::min(bytes, usable);
  }
  return bytes;
}

}  // namespace

bool storage_covers_tensor(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.has_storage() || tensor.numel() == 0) return true;
  if (tensor.storage_offset() < 0) return false;
  // The last element addressed, in elements from the storage's start; 128-bit so that crafted
  // sizes cannot overflow the check itself.
  __int128 last = tensor.storage_offset();
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    if (tensor.stride(d) < 0) return false;
    last += static_cast<__int128>(tensor.size(d) - 1) * tensor.stride(d);
  }
  const __int128 needed = (last + 1) * static_cast<__int128>(tensor.element_size());
  return needed <= owned_bytes(tensor.storage());
}

void check_tensor_storage(const at::Tensor& tensor, const std::string& name,
                          const std::string& file) {
  if (storage_covers_tensor(tensor)) return;
  throw Error(file + ": tensor \"" + name + "\" of shape " + c10::str(tensor.sizes()) + " (" +
              std::string(tensor.dtype().name()) +
              ") does not fit its storage: the file is corrupt or was not written by PyTorch");
}

void check_module_storage(const torch::jit::Module& module, const std::string& file) {
  for (const auto& item : module.named_attributes(/*recurse=*/true)) {
    if (item.value.isTensor()) check_tensor_storage(item.value.toTensor(), item.name, file);
  }
  // modules() is the module itself and every submodule.
  for (const torch::jit::Module& m : module.modules()) {
    for (const torch::jit::Method& method : m.get_methods()) {
      for (const torch::jit::Node* node : method.graph()->nodes()) {
        if (node->kind() != c10::prim::Constant || !node->hasAttribute(c10::attr::value)) continue;
        if (node->kindOf(c10::attr::value) != torch::jit::AttributeKind::t) continue;
        check_tensor_storage(node->t(c10::attr::value), "constant in " + method.name(), file);
      }
    }
  }
}

}  // namespace linquant::serialization
