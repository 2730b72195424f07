// Weights of conv, conv_transpose and linear nodes: float weights become a `const`, finalized
// quantized weights a compile-time dequantization of their integer grid values
// (reference 6.2, 6.4): iOS16/17 constexpr_affine_dequantize with int8/uint8 data, iOS18
// constexpr_blockwise_shift_scale with int4/uint4 data whenever the values fit.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "linquant/export/coreml/half.h"
#include "linquant/export/coreml/identifier.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// A finalized weight on its integer grid: weight = scale[c] * (q - zero_point[c]) with c the
// index along `axis` (axis -1: one scale for the whole tensor).
struct GridWeight {
  Shape shape;
  std::vector<int32_t> q;
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t axis = -1;  // -1: per tensor
  int64_t bits = 8;

  bool is_signed() const {
    // coremltools' rule: unsigned storage iff every value and every zero point is >= 0.
    const bool q_unsigned = std::all_of(q.begin(), q.end(), [](int32_t v) { return v >= 0; });
    const bool zp_unsigned =
        std::all_of(zero_point.begin(), zero_point.end(), [](int32_t v) { return v >= 0; });
    return !(q_unsigned && zp_unsigned);
  }
  bool fits(int32_t lo, int32_t hi) const {
    auto in = [&](int32_t v) { return v >= lo && v <= hi; };
    return std::all_of(q.begin(), q.end(), in) &&
           std::all_of(zero_point.begin(), zero_point.end(), in);
  }
  bool has_offset() const {
    return std::any_of(zero_point.begin(), zero_point.end(), [](int32_t v) { return v != 0; });
  }
};

std::vector<float> float_vector(const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kCPU).to(at::kFloat).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Recovers q from the finalized float weight and checks that scale * (q - zp) gives the
// weight back bit for bit: what finalize() guarantees, and what makes the export lossless.
GridWeight read_grid_weight(const ir::Node& node, const LoweringContext& context) {
  GridWeight grid;
  const at::Tensor& weight = context.model_tensor(node, ir::attr::weight);
  const std::vector<float> w = float_vector(weight);
  grid.shape = weight.sizes().vec();
  grid.scale = float_vector(context.model_tensor(node, ir::attr::weight_scale));
  const at::Tensor zp = context.model_tensor(node, ir::attr::weight_zero_point)
                            .detach()
                            .to(at::kCPU)
                            .to(at::kInt)
                            .contiguous();
  grid.zero_point.assign(zp.data_ptr<int32_t>(), zp.data_ptr<int32_t>() + zp.numel());
  grid.axis = node.attrs.i(ir::attr::weight_axis);
  grid.bits = node.attrs.i(ir::attr::weight_bits);
  const int64_t qmin = node.attrs.i(ir::attr::weight_quant_min);
  const int64_t qmax = node.attrs.i(ir::attr::weight_quant_max);

  const auto rank = static_cast<int64_t>(grid.shape.size());
  int64_t channels = 1;
  int64_t inner = 1;
  if (grid.axis >= 0) {
    if (grid.axis >= rank) {
      fail(node, "weight_axis " + std::to_string(grid.axis) + " is out of range");
    }
    channels = grid.shape[static_cast<size_t>(grid.axis)];
    for (int64_t d = grid.axis + 1; d < rank; ++d) inner *= grid.shape[static_cast<size_t>(d)];
  }
  if (static_cast<int64_t>(grid.scale.size()) != channels ||
      grid.zero_point.size() != grid.scale.size()) {
    fail(node, "weight_scale / weight_zero_point have " + std::to_string(grid.scale.size()) +
                   " / " + std::to_string(grid.zero_point.size()) + " entries, the weight has " +
                   std::to_string(channels) + " channels along axis " +
                   std::to_string(grid.axis));
  }

  grid.q.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t c =
        grid.axis >= 0 ? (i / static_cast<size_t>(inner)) % static_cast<size_t>(channels) : 0;
    const float s = grid.scale[c];
    const int32_t z = grid.zero_point[c];
    if (!(s > 0.0f) || !std::isfinite(s)) {
      fail(node, "weight scale " + std::to_string(s) + " of channel " + std::to_string(c) +
                     " is not a positive finite number");
    }
    const double q = std::nearbyint(static_cast<double>(w[i]) / static_cast<double>(s)) + z;
    if (q < static_cast<double>(qmin) || q > static_cast<double>(qmax)) {
      fail(node, "weight element " + std::to_string(i) + " maps to " + std::to_string(q) +
                     ", outside its quantization range [" + std::to_string(qmin) + ", " +
                     std::to_string(qmax) + "]");
    }
    grid.q[i] = static_cast<int32_t>(q);
    // The runtime's fake-quantize arithmetic: float(q - zp) * scale in float32.
    const float back = static_cast<float>(grid.q[i] - z) * s;
    if (!same_bits(back, w[i])) {
      fail(node, "the weight is not on its quantization grid (element " + std::to_string(i) +
                     ": " + std::to_string(w[i]) + " is not scale * (q - zero_point)); export "
                     "the model returned by LinearQuantizer::finalize()");
    }
  }
  return grid;
}

std::vector<std::int8_t> as_int8(const std::vector<int32_t>& v) {
  return std::vector<std::int8_t>(v.begin(), v.end());
}
std::vector<std::uint8_t> as_uint8(const std::vector<int32_t>& v) {
  return std::vector<std::uint8_t>(v.begin(), v.end());
}

// Integer data in the narrowest type coremltools would pick.
TensorValue integer_tensor(DType dtype, Shape shape, const std::vector<int32_t>& values) {
  switch (dtype) {
    case DType::Int4: return TensorValue::int4(std::move(shape), as_int8(values));
    case DType::UInt4: return TensorValue::uint4(std::move(shape), as_uint8(values));
    case DType::Int8: return TensorValue::int8(std::move(shape), as_int8(values));
    default: return TensorValue::uint8(std::move(shape), as_uint8(values));
  }
}

// fp16 scales must stay usable: Core ML rejects a zero scale, and an infinite one is useless.
void check_scales(const ir::Node& node, const GridWeight& grid, const LoweringContext& context) {
  if (context.float_dtype() != DType::Float16) return;
  for (float s : grid.scale) {
    const float h = half_bits_to_float(float_to_half_bits(s));
    if (h == 0.0f || std::isinf(h)) {
      fail(node, "weight scale " + std::to_string(s) + " is not representable in fp16; export "
                 "with ComputePrecision::Float32");
    }
  }
}

Var affine_dequantize(const ir::Node& node, const GridWeight& grid, const std::string& name,
                      LoweringContext& context) {
  const DType dtype = grid.is_signed() ? DType::Int8 : DType::UInt8;
  if (!grid.fits(dtype == DType::Int8 ? -128 : 0, dtype == DType::Int8 ? 127 : 255)) {
    fail(node, "the weight's integer values and zero points do not fit one 8-bit type");
  }
  // Per tensor: rank-0 scale and zero point, which constexpr_affine_dequantize broadcasts.
  const Shape param_shape =
      grid.axis >= 0 ? Shape{static_cast<int64_t>(grid.scale.size())} : Shape{};
  const int32_t axis = grid.axis >= 0 ? static_cast<int32_t>(grid.axis) : 0;
  return context.builder().add_constexpr(
      "constexpr_affine_dequantize", name,
      {{"quantized_data", integer_tensor(dtype, grid.shape, grid.q)},
       {"zero_point", integer_tensor(dtype, param_shape, grid.zero_point)},
       {"scale", context.float_values(param_shape, grid.scale)},
       {"axis", TensorValue::scalar_int32(axis)}},
      TensorType{context.float_dtype(), grid.shape});
}

Var blockwise_shift_scale(const ir::Node& node, const GridWeight& grid, const std::string& name,
                          LoweringContext& context) {
  const bool is_signed = grid.is_signed();
  DType dtype = is_signed ? DType::Int8 : DType::UInt8;
  if (is_signed ? grid.fits(-8, 7) : grid.fits(0, 15)) {
    dtype = is_signed ? DType::Int4 : DType::UInt4;
  } else if (!grid.fits(is_signed ? -128 : 0, is_signed ? 127 : 255)) {
    fail(node, "the weight's integer values and zero points do not fit one 8-bit type");
  }
  // Scale (and offset) with the data's rank: the channel count along the axis, 1 elsewhere.
  Shape param_shape(grid.shape.size(), 1);
  if (grid.axis >= 0) {
    param_shape[static_cast<size_t>(grid.axis)] = static_cast<int64_t>(grid.scale.size());
  }
  Args params = {{"data", integer_tensor(dtype, grid.shape, grid.q)},
                 {"scale", context.float_values(param_shape, grid.scale)}};
  if (grid.has_offset()) {
    params.push_back({"offset", integer_tensor(dtype, param_shape, grid.zero_point)});
  }
  return context.builder().add_constexpr("constexpr_blockwise_shift_scale", name, params,
                                         TensorType{context.float_dtype(), grid.shape});
}

}  // namespace

void check_weight_target(const ir::Node& node, Target target) {
  if (node.attrs.has(ir::attr::weight_quantizer) || node.attrs.has(ir::attr::bn_running_var)) {
    fail(node, "the graph is prepared but not finalized (weight fake-quantizer or fused "
               "BatchNorm still in place); export the model LinearQuantizer::finalize() returns");
  }
  if (!node.attrs.has(ir::attr::weight_scale)) return;
  for (const char* key :
       {ir::attr::weight_zero_point, ir::attr::weight_axis, ir::attr::weight_quant_min,
        ir::attr::weight_quant_max, ir::attr::weight_bits}) {
    if (!node.attrs.has(key)) {
      fail(node, std::string("quantized weight without '") + key + "' metadata");
    }
  }
  const int64_t bits = node.attrs.i(ir::attr::weight_bits);
  if (bits != 8 && bits != 4) {
    fail(node, "weights quantized to " + std::to_string(bits) + " bits cannot be exported "
               "(Core ML stores 8-bit and, from iOS18, 4-bit weights)");
  }
  if (bits == 4 && target < Target::iOS18) {
    fail(node, "its weight is quantized to 4 bits, which Core ML supports from iOS18 "
               "(constexpr_blockwise_shift_scale with int4 data); " + to_string(target) +
               "'s constexpr_affine_dequantize holds only 8-bit data. Export with "
               "SaveOptions::target = Target::iOS18, or quantize the weights to 8 bits");
  }
  if (target < Target::iOS16) {
    fail(node, "quantized weights need target iOS16 or later (constexpr_affine_dequantize), "
               "not " + to_string(target));
  }
}

Var weight_var(const ir::Node& node, LoweringContext& context) {
  const std::string& tensor_name = node.attrs.s(ir::attr::weight);
  auto& cache = context.tensor_vars();
  if (const auto it = cache.find(tensor_name); it != cache.end()) return it->second;

  const std::string name = sanitize_identifier(tensor_name);
  Var var;
  if (!node.attrs.has(ir::attr::weight_scale)) {
    var = context.builder().add_const(
        name, context.float_tensor(context.model_tensor(node, ir::attr::weight)));
  } else {
    const GridWeight grid = read_grid_weight(node, context);
    check_scales(node, grid, context);
    var = context.target() >= Target::iOS18
              ? blockwise_shift_scale(node, grid, name + "_dequantized", context)
              : affine_dequantize(node, grid, name + "_dequantized", context);
  }
  cache.emplace(tensor_name, var);
  return var;
}

}  // namespace linquant::coreml::lowering
