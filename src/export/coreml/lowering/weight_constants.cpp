// Weights of conv, conv_transpose and linear nodes: float weights become a `const`, finalized
// quantized weights a compile-time dequantization of their integer grid values
// (reference 6.2, 6.4): iOS16/17 constexpr_affine_dequantize with int8/uint8 data, iOS18
// constexpr_blockwise_shift_scale with int4/uint4 data whenever the values fit.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../../graph/grid_weight.h"
#include "linquant/export/coreml/half.h"
#include "linquant/export/coreml/identifier.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

using graph_export::GridWeight;
using graph_export::read_grid_weight;

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
  // Finalized metadata and the bit width are checked by graph_export::check_finalized.
  if (!node.attrs.has(ir::attr::weight_scale)) return;
  const int64_t bits = node.attrs.i(ir::attr::weight_bits);
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
    const GridWeight grid = read_grid_weight(node, context.graph());
    check_scales(node, grid, context);
    var = context.target() >= Target::iOS18
              ? blockwise_shift_scale(node, grid, name + "_dequantized", context)
              : affine_dequantize(node, grid, name + "_dequantized", context);
  }
  cache.emplace(tensor_name, var);
  return var;
}

}  // namespace linquant::coreml::lowering
