// QAT Conv-BN's last steps in training, y = x / f per channel and BatchNorm with batch
// statistics, as one autograd node: the same bits as divide_channels followed by
// at::batch_norm, with one pass fewer over memory each way and BatchNorm's statistics summed
// several channels at a time (faster than LibTorch's own BatchNorm).
#pragma once

#include <ATen/core/Tensor.h>

#include "linquant/quant/fake_quantize.h"
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

// After milestone 3: BatchNorm on its running statistics of x / factor[c], then the activation
// quantizer after it, as one node with one pass over memory each way beyond the observer's:
// bit for bit quantizer->forward(at::batch_norm(x / f, ..., training=false)), gradients and
// the quantizer's state included. Applies where divide_and_batch_norm does and the quantizer
// fuses with its producer (FakeQuantizeImpl::fuses_with_producer).
bool divide_frozen_batch_norm_and_quantize_applies(const at::Tensor& x, const BatchNormState& state,
                                                   const FakeQuantize& quantizer);
at::Tensor divide_frozen_batch_norm_and_quantize(const at::Tensor& x, const at::Tensor& factor,
                                                 const BatchNormState& state,
                                                 FakeQuantize& quantizer);

}  // namespace linquant::runtime
