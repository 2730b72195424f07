// Checks that an ML Program's constants stored in weight files are really there: every blob
// record the program points at exists, is intact and holds as many bytes as its type needs.
#pragma once

#include <filesystem>

namespace CoreML::Specification {
class Model;
}

namespace linquant::apps {

// `model_dir` is the folder of model.mlmodel (where "@model_path/" points). Returns the
// number of blob references checked; throws linquant::Error naming the first damage (a
// missing or truncated file, a bad header, sentinel, data type, size or offset).
int check_package_weights(const std::filesystem::path& model_dir,
                          const CoreML::Specification::Model& model);

}  // namespace linquant::apps
