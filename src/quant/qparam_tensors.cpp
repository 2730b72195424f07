#include "qparam_tensors.h"

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>
#include <string>

#include "linquant/common/error.h"

namespace linquant {

std::vector<QParam> read_qparams(const at::Tensor& scale, const at::Tensor& zero_point) {
  const at::Tensor s = scale.detach().to(at::kFloat).reshape({-1}).contiguous();
  const at::Tensor z = zero_point.detach().to(at::kInt).reshape({-1}).contiguous();
  if (s.numel() != z.numel() || s.numel() == 0) {
    std::ostringstream message;
    message << "fake_quantize: scale has " << s.numel() << " values and zero_point " << z.numel()
            << "; they must have the same, non-zero size";
    throw QuantError(message.str());
  }
  std::vector<QParam> qparams(s.numel());
  for (int64_t i = 0; i < s.numel(); ++i) {
    qparams[i] = {s.data_ptr<float>()[i], z.data_ptr<int32_t>()[i]};
    if (!(qparams[i].scale > 0.0f) || !std::isfinite(qparams[i].scale)) {
      std::ostringstream message;
      message << "fake_quantize: scale[" << i << "] is " << qparams[i].scale
              << "; scales must be finite and positive";
      throw QuantError(message.str());
    }
  }
  return qparams;
}

QParam per_tensor_qparam(const at::Tensor& scale, const at::Tensor& zero_point, const char* what) {
  const std::vector<QParam> qparams = read_qparams(scale, zero_point);
  if (qparams.size() != 1) {
    throw QuantError(std::string(what) + ": per-tensor quantization needs one scale, got " +
                     std::to_string(qparams.size()));
  }
  return qparams[0];
}

}  // namespace linquant
