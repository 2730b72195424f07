// A float32 [N, C, ...] tensor seen as N*C contiguous planes of `inner` values, and the loop
// over them that per-channel kernels share (split across LibTorch's threads like the
// element-wise kernels, src/quant parallel.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "linquant/quant/parallel.h"

namespace linquant::runtime {

struct ChannelPlanes {
  int64_t outer = 1, channels = 1, inner = 1;

  explicit ChannelPlanes(const at::Tensor& x) : outer(x.size(0)), channels(x.size(1)) {
    for (int64_t d = 2; d < x.dim(); ++d) inner *= x.size(d);
  }
  // Where plane (n, c) starts in the contiguous data.
  int64_t offset(int64_t n, int64_t c) const { return (n * channels + c) * inner; }
};

// body(channel, offset) for every plane, whole planes per task.
template <typename Body>
void for_each_plane(const ChannelPlanes& p, const Body& body) {
  parallel_for_rows(p.outer * p.channels, p.inner,
                    [&](int64_t plane) { body(plane % p.channels, plane * p.inner); });
}

// body(channel) for every channel, a channel's N planes per task (per-channel reductions).
template <typename Body>
void for_each_channel(const ChannelPlanes& p, const Body& body) {
  parallel_for_rows(p.channels, p.outer * p.inner, body);
}

}  // namespace linquant::runtime
