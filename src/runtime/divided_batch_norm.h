// QAT Conv-BN's last steps in training, y = x / f per channel and BatchNorm with batch
// statistics, as one autograd node: the same bits as divide_channels followed by
// at::batch_norm, with one pass fewer over memory each way and BatchNorm's statistics summed
// several channels at a time (faster than LibTorch's own BatchNorm).
#pragma once

#include <ATen/core/Tensor.h>

#include "run_context.h"

namespace linquant::runtime {

// Whether divide_and_batch_norm reproduces the two ops for this conv output and BatchNorm:
// float32 [N, C, ...] with C >= 2 and planes of at least one vector, affine BatchNorm, and
// ATen's AVX2 or baseline kernels running on a CPU with AVX2 and FMA. Elsewhere callers
// compose the two ops.
bool divide_and_batch_norm_applies(const at::Tensor& x, const BatchNormState& state);

// BatchNorm with batch statistics of x / factor[c]: updates the running statistics with
// `momentum` as at::batch_norm does (the caller counts the batch, count_batch).
at::Tensor divide_and_batch_norm(const at::Tensor& x, const at::Tensor& factor,
                                 const BatchNormState& state, double momentum);

}  // namespace linquant::runtime
