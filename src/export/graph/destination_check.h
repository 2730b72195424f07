// Library-internal, shared by the exporters: the destination checks made before anything is
// built, so an export that could never be written fails first, with the reason.
#pragma once

#include <filesystem>

namespace linquant::graph_export {

// Throws ExportError when `path` exists and `overwrite` is false, or when its folder is missing
// or not writable.
void check_destination(const std::filesystem::path& path, bool overwrite);

}  // namespace linquant::graph_export
