// Generic torch_op nodes: one lowering per LibTorch operator, found by its schema name
// ("aten::squeeze.dim", then "aten::squeeze"). Only data-dependent nodes get here: sizes,
// constants and what is computed from them only are recorded constants (data_dependence.cpp),
// read with LoweringContext::constant*. Shapes come from the recorded run, so reshape-like
// operators all become a reshape to the recorded shape.
#include <map>
#include <numeric>
#include <string>

#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

using Lowering = LowerFn;

const Shape& out_shape(const ir::Node& node, LoweringContext& c, size_t k = 0) {
  return c.shape(node.outputs.at(k));
}

TensorType out_type(const ir::Node& node, LoweringContext& c, size_t k = 0) {
  return c.float_type(node.outputs.at(k));
}

int64_t axis_of(const ir::Node& node, int64_t axis, size_t rank) {
  return normalize_axis(node, axis, rank);
}

void define(const ir::Node& node, LoweringContext& c, const Var& v) { c.define(node.outputs.at(0), v); }

// view, reshape, flatten, squeeze, unsqueeze, unflatten: a reshape to the recorded shape.
void reshape_like(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  define(node, c, c.builder().add_op("reshape", c.output_name(node),
                                     {{"x", x}, {"shape", TensorValue::int32_list(
                                                             to_int32(node, out_shape(node, c)))}},
                                     out_type(node, c)));
}

// Value-preserving: contiguous, clone, detach, dropout in inference, casts between floats.
void pass_through(const ir::Node& node, LoweringContext& c) { define(node, c, c.input(node, 0)); }

void permute(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const size_t rank = x.type().rank();
  std::vector<int32_t> perm;
  for (int64_t d : c.constant_ints(node, 1)) {
    perm.push_back(static_cast<int32_t>(axis_of(node, d, rank)));
  }
  define(node, c, c.builder().add_op("transpose", c.output_name(node),
                                     {{"x", x}, {"perm", TensorValue::int32_list(perm)}},
                                     out_type(node, c)));
}

void transpose(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const size_t rank = x.type().rank();
  std::vector<int32_t> perm(rank);
  std::iota(perm.begin(), perm.end(), 0);
  if (node.inputs.size() >= 3) {
    std::swap(perm[static_cast<size_t>(axis_of(node, c.constant_int(node, 1), rank))],
              perm[static_cast<size_t>(axis_of(node, c.constant_int(node, 2), rank))]);
  } else if (rank == 2) {  // aten::t
    std::swap(perm[0], perm[1]);
  }
  define(node, c, c.builder().add_op("transpose", c.output_name(node),
                                     {{"x", x}, {"perm", TensorValue::int32_list(perm)}},
                                     out_type(node, c)));
}

// slice_by_index on one axis; `squeeze` drops it (select).
Var slice_axis(const ir::Node& node, LoweringContext& c, const Var& x, int64_t axis,
               int64_t begin, int64_t end, int64_t step, bool squeeze, const std::string& name,
               const TensorType& type) {
  (void)node;
  const size_t rank = x.type().rank();
  const int64_t size = x.type().shape.at(static_cast<size_t>(axis));
  if (begin < 0) begin += size;
  if (end < 0) end += size;
  begin = std::clamp<int64_t>(begin, 0, size);
  end = std::clamp<int64_t>(end, 0, size);
  std::vector<int32_t> b(rank, 0), e(rank, 0), s(rank, 1);
  std::vector<bool> begin_mask(rank, true), end_mask(rank, true), squeeze_mask(rank, false);
  b[static_cast<size_t>(axis)] = static_cast<int32_t>(begin);
  e[static_cast<size_t>(axis)] = static_cast<int32_t>(squeeze ? begin + 1 : end);
  s[static_cast<size_t>(axis)] = static_cast<int32_t>(step);
  begin_mask[static_cast<size_t>(axis)] = false;
  end_mask[static_cast<size_t>(axis)] = false;
  squeeze_mask[static_cast<size_t>(axis)] = squeeze;
  const Shape dims{static_cast<int64_t>(rank)};
  Args args = {{"x", x},
               {"begin", TensorValue::int32_list(b)},
               {"end", TensorValue::int32_list(e)},
               {"stride", TensorValue::int32_list(s)},
               {"begin_mask", TensorValue::boolean(dims, begin_mask)},
               {"end_mask", TensorValue::boolean(dims, end_mask)}};
  if (squeeze) args.push_back({"squeeze_mask", TensorValue::boolean(dims, squeeze_mask)});
  return c.builder().add_op("slice_by_index", name, args, type);
}

void select(const ir::Node& node, LoweringContext& c) {  // aten::select.int(self, dim, index)
  const Var x = c.input(node, 0);
  const int64_t axis = axis_of(node, c.constant_int(node, 1), x.type().rank());
  const int64_t index = c.constant_int(node, 2);
  define(node, c, slice_axis(node, c, x, axis, index, index + 1, 1, true, c.output_name(node),
                             out_type(node, c)));
}

void slice(const ir::Node& node, LoweringContext& c) {  // aten::slice.Tensor(self, dim, start, end, step)
  const Var x = c.input(node, 0);
  const int64_t axis = axis_of(node, c.constant_int(node, 1), x.type().rank());
  const int64_t size = x.type().shape.at(static_cast<size_t>(axis));
  const c10::IValue& start = c.constant(node, 2);
  const c10::IValue& end = c.constant(node, 3);
  const int64_t b = start.isNone() ? 0 : start.toInt();
  const int64_t e = end.isNone() ? size : std::min<int64_t>(end.toInt(), size);
  define(node, c, slice_axis(node, c, x, axis, b, e, c.constant_int(node, 4), false,
                             c.output_name(node), out_type(node, c)));
}

// chunk / split / split_with_sizes / unbind: a MIL split into the recorded pieces.
void split(const ir::Node& node, LoweringContext& c, int64_t axis, bool squeeze) {
  const Var x = c.input(node, 0);
  axis = axis_of(node, axis, x.type().rank());
  // The piece sizes follow from the recorded input size and the operator's own arguments.
  const int64_t size = x.type().shape.at(static_cast<size_t>(axis));
  std::vector<int32_t> sizes;
  const std::string& schema = node.attrs.s(ir::attr::schema);
  if (schema == "aten::chunk") {
    const int64_t chunks = c.constant_int(node, 1);
    const int64_t piece = (size + chunks - 1) / chunks;
    for (int64_t at = 0; at < size; at += piece) sizes.push_back(static_cast<int32_t>(std::min(piece, size - at)));
  } else if (schema == "aten::unbind.int") {
    sizes.assign(static_cast<size_t>(size), 1);
  } else if (schema == "aten::split.Tensor") {
    const int64_t piece = c.constant_int(node, 1);
    for (int64_t at = 0; at < size; at += piece) sizes.push_back(static_cast<int32_t>(std::min(piece, size - at)));
  } else {  // split_with_sizes, split.sizes
    for (int64_t s : c.constant_ints(node, 1)) sizes.push_back(static_cast<int32_t>(s));
  }
  std::vector<TensorType> types;
  for (int32_t s : sizes) {
    TensorType t{c.float_dtype(), x.type().shape};
    t.shape[static_cast<size_t>(axis)] = s;
    types.push_back(t);
  }
  const std::string name = c.output_name(node);
  std::vector<Var> pieces =
      sizes.size() == 1
          ? std::vector<Var>{c.builder().add_op("identity", name, {{"x", x}}, types[0])}
          : c.builder().add_multi_output_op(
                "split", name,
                {{"x", x}, {"split_sizes", TensorValue::int32_list(sizes)},
                 {"axis", TensorValue::scalar_int32(static_cast<int32_t>(axis))}},
                types);
  if (squeeze) {
    for (size_t k = 0; k < pieces.size(); ++k) {
      TensorType t = pieces[k].type();
      t.shape.erase(t.shape.begin() + axis);
      pieces[k] = c.builder().add_op(
          "squeeze", name + "_item" + std::to_string(k),
          {{"x", pieces[k]}, {"axes", TensorValue::int32_list({static_cast<int32_t>(axis)})}}, t);
    }
  }
  c.define_list(node.outputs.at(0), pieces);
}

void chunk(const ir::Node& node, LoweringContext& c) { split(node, c, c.constant_int(node, 2), false); }
void split_op(const ir::Node& node, LoweringContext& c) { split(node, c, c.constant_int(node, 2), false); }
void unbind(const ir::Node& node, LoweringContext& c) { split(node, c, c.constant_int(node, 1), true); }

void cat(const ir::Node& node, LoweringContext& c) {  // aten::cat(Tensor[] tensors, int dim)
  const std::vector<Var> values = c.list(node, 0);
  if (values.empty()) fail(node, "cat of no tensors");
  const auto axis = static_cast<int32_t>(axis_of(node, c.constant_int(node, 1), values[0].type().rank()));
  define(node, c, c.builder().add_op("concat", c.output_name(node),
                                     {{"values", values},
                                      {"axis", TensorValue::scalar_int32(axis)},
                                      {"interleave", TensorValue::scalar_bool(false)}},
                                     out_type(node, c)));
}

void stack(const ir::Node& node, LoweringContext& c) {
  const std::vector<Var> values = c.list(node, 0);
  if (values.empty()) fail(node, "stack of no tensors");
  const auto axis = static_cast<int32_t>(axis_of(node, c.constant_int(node, 1), values[0].type().rank() + 1));
  define(node, c, c.builder().add_op("stack", c.output_name(node),
                                     {{"values", values}, {"axis", TensorValue::scalar_int32(axis)}},
                                     out_type(node, c)));
}

// expand / expand_as / repeat: tile to the recorded shape (after aligning the rank).
void expand(const ir::Node& node, LoweringContext& c) {
  Var x = c.input(node, 0);
  const Shape& want = out_shape(node, c);
  Shape have = x.type().shape;
  if (have.size() < want.size()) {
    have.insert(have.begin(), want.size() - have.size(), 1);
    x = c.builder().add_op("reshape", c.helper_name(node, "rank"),
                           {{"x", x}, {"shape", TensorValue::int32_list(to_int32(node, have))}},
                           TensorType{x.type().dtype, have});
  }
  std::vector<int32_t> reps;
  for (size_t k = 0; k < want.size(); ++k) {
    if (have[k] != want[k] && have[k] != 1 && node.attrs.s(ir::attr::schema) != "aten::repeat") {
      fail(node, "cannot expand a dimension of size " + std::to_string(have[k]));
    }
    reps.push_back(static_cast<int32_t>(want[k] / std::max<int64_t>(have[k], 1)));
  }
  define(node, c, c.builder().add_op("tile", c.output_name(node),
                                     {{"x", x}, {"reps", TensorValue::int32_list(reps)}},
                                     out_type(node, c)));
}

// constant_pad_nd(self, pad, value) / pad(self, pad, mode, value): torch lists pads from the
// last dimension backwards, MIL from the first padded dimension forwards.
void pad(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const std::vector<int64_t> torch_pads = c.constant_ints(node, 1);
  const size_t count = torch_pads.size() / 2;
  std::vector<int32_t> pads(2 * count);
  for (size_t i = 0; i < count; ++i) {
    pads[2 * (count - 1 - i)] = static_cast<int32_t>(torch_pads[2 * i]);
    pads[2 * (count - 1 - i) + 1] = static_cast<int32_t>(torch_pads[2 * i + 1]);
  }
  std::string mode = "constant";
  double value = 0.0;
  if (node.attrs.s(ir::attr::schema) == "aten::constant_pad_nd") {
    value = c.constant_double(node, 2);
  } else {
    mode = c.constant(node, 2).toStringRef();
    if (mode == "reflect" || mode == "replicate" || mode == "constant") {
      if (node.inputs.size() > 3 && !c.constant(node, 3).isNone()) value = c.constant_double(node, 3);
    } else {
      fail(node, "pad mode '" + mode + "' has no Core ML mapping");
    }
  }
  for (int32_t p : pads) {
    if (p < 0) fail(node, "negative padding (cropping) has no Core ML pad");
  }
  define(node, c, c.builder().add_op("pad", c.output_name(node),
                                     {{"x", x},
                                      {"pad", TensorValue::int32_list(pads)},
                                      {"mode", TensorValue::scalar_string(mode)},
                                      {"constant_val", c.float_scalar(value)}},
                                     out_type(node, c)));
}

// roll(self, shifts, dims): per dimension, the last `shift` elements move to the front.
void roll(const ir::Node& node, LoweringContext& c) {
  Var x = c.input(node, 0);
  const std::vector<int64_t> shifts = c.constant_ints(node, 1);
  const std::vector<int64_t> dims = c.constant_ints(node, 2);
  if (dims.size() != shifts.size()) fail(node, "roll without one dim per shift");
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t axis = axis_of(node, dims[k], x.type().rank());
    const int64_t size = x.type().shape.at(static_cast<size_t>(axis));
    const int64_t shift = ((shifts[k] % size) + size) % size;
    if (shift == 0) continue;
    const std::string base = c.helper_name(node, "roll" + std::to_string(k));
    TensorType tail_type = x.type();
    tail_type.shape[static_cast<size_t>(axis)] = shift;
    TensorType head_type = x.type();
    head_type.shape[static_cast<size_t>(axis)] = size - shift;
    const Var tail = slice_axis(node, c, x, axis, size - shift, size, 1, false, base + "_tail", tail_type);
    const Var head = slice_axis(node, c, x, axis, 0, size - shift, 1, false, base + "_head", head_type);
    x = c.builder().add_op("concat", k + 1 == dims.size() ? c.output_name(node) : base,
                           {{"values", std::vector<Var>{tail, head}},
                            {"axis", TensorValue::scalar_int32(static_cast<int32_t>(axis))},
                            {"interleave", TensorValue::scalar_bool(false)}},
                           x.type());
  }
  define(node, c, x);
}

// index(self, indices): one constant index tensor on one axis (None elsewhere) is a gather.
void index(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const c10::IValue& list = c.constant(node, 1);
  int64_t axis = -1;
  at::Tensor indices;
  int64_t k = 0;
  for (const c10::IValue& item : list.toListRef()) {
    if (!item.isNone()) {
      if (indices.defined()) fail(node, "indexing on several axes has no Core ML mapping yet");
      indices = item.toTensor();
      axis = k;
    }
    ++k;
  }
  if (!indices.defined()) fail(node, "index without an index tensor");
  if (indices.scalar_type() == at::kBool) fail(node, "boolean masks have no Core ML mapping");
  const at::Tensor i32 = indices.to(at::kInt).contiguous();
  const int32_t* data = i32.data_ptr<int32_t>();
  std::vector<int32_t> values(data, data + i32.numel());
  const int64_t size = x.type().shape.at(static_cast<size_t>(axis));
  for (int32_t& v : values) v = v < 0 ? static_cast<int32_t>(v + size) : v;
  define(node, c, c.builder().add_op("gather", c.output_name(node),
                                     {{"x", x},
                                      {"indices", TensorValue::int32(i32.sizes().vec(), values)},
                                      {"axis", TensorValue::scalar_int32(static_cast<int32_t>(axis))}},
                                     out_type(node, c)));
}

// embedding(weight, indices, ...): gather rows of a constant table.
void embedding(const ir::Node& node, LoweringContext& c) {
  const Var weight = c.input(node, 0);
  Var indices = c.input(node, 1);
  define(node, c, c.builder().add_op("gather", c.output_name(node),
                                     {{"x", weight}, {"indices", indices},
                                      {"axis", TensorValue::scalar_int32(0)}},
                                     out_type(node, c)));
}

// Elementwise arithmetic with tensors or numbers (recorded constants), torch's alpha included.
void binary(const ir::Node& node, LoweringContext& c, const std::string& mil, bool reversed) {
  auto operand = [&](size_t k) -> Arg {
    if (c.is_constant(node.inputs.at(k)) && !c.constant(node, k).isTensor()) {
      return c.float_scalar(c.constant_double(node, k));
    }
    return c.input(node, k);
  };
  Arg x = operand(0);
  Arg y = operand(1);
  const std::string& schema = node.attrs.s(ir::attr::schema);
  if (node.inputs.size() > 2 && (schema.rfind("aten::add", 0) == 0 || schema.rfind("aten::sub", 0) == 0 ||
                                 schema.rfind("aten::rsub", 0) == 0)) {
    const double alpha = c.constant_double(node, 2);
    if (alpha != 1.0) {
      y = c.builder().add_op("mul", c.helper_name(node, "alpha"),
                             {{"x", y}, {"y", c.float_scalar(alpha)}}, out_type(node, c));
    }
  }
  if (reversed) std::swap(x, y);
  define(node, c, c.builder().add_op(mil, c.output_name(node), {{"x", x}, {"y", y}}, out_type(node, c)));
}

void add(const ir::Node& n, LoweringContext& c) { binary(n, c, "add", false); }
void sub(const ir::Node& n, LoweringContext& c) { binary(n, c, "sub", false); }
void rsub(const ir::Node& n, LoweringContext& c) { binary(n, c, "sub", true); }
void mul(const ir::Node& n, LoweringContext& c) { binary(n, c, "mul", false); }
void div(const ir::Node& n, LoweringContext& c) {
  if (n.inputs.size() > 2 && !c.constant(n, 2).isNone()) fail(n, "division with a rounding mode");
  binary(n, c, "real_div", false);
}

// linear(input, weight, bias): weight and bias usually recorded constants (a slice of a
// packed projection, as in MultiheadAttention).
void linear(const ir::Node& node, LoweringContext& c) {
  Args args = {{"x", c.input(node, 0)}, {"weight", c.input(node, 1)}};
  if (node.inputs.size() > 2 && !(c.is_constant(node.inputs[2]) && c.constant(node, 2).isNone())) {
    args.push_back({"bias", c.input(node, 2)});
  }
  define(node, c, c.builder().add_op("linear", c.output_name(node), args, out_type(node, c)));
}

void matmul(const ir::Node& node, LoweringContext& c) {
  define(node, c, c.builder().add_op("matmul", c.output_name(node),
                                     {{"x", c.input(node, 0)}, {"y", c.input(node, 1)},
                                      {"transpose_x", TensorValue::scalar_bool(false)},
                                      {"transpose_y", TensorValue::scalar_bool(false)}},
                                     out_type(node, c)));
}

// mean.dim / sum.dim_IntList / amax(self, dim, keepdim, ...)
void reduce(const ir::Node& node, LoweringContext& c, const std::string& mil) {
  const Var x = c.input(node, 0);
  std::vector<int32_t> axes;
  const c10::IValue& dims = c.constant(node, 1);
  if (dims.isNone() || (dims.isList() && dims.toListRef().empty())) {
    for (size_t k = 0; k < x.type().rank(); ++k) axes.push_back(static_cast<int32_t>(k));
  } else {
    for (int64_t d : c.constant_ints(node, 1)) {
      axes.push_back(static_cast<int32_t>(axis_of(node, d, x.type().rank())));
    }
  }
  define(node, c, c.builder().add_op(mil, c.output_name(node),
                                     {{"x", x}, {"axes", TensorValue::int32_list(axes)},
                                      {"keep_dims", TensorValue::scalar_bool(c.constant(node, 2).toBool())}},
                                     out_type(node, c)));
}

// max.dim / min.dim(self, dim, keepdim) -> (values, indices): reduce_max / reduce_min, and
// reduce_argmax / reduce_argmin (int32: Core ML has no int64) when the indices are read.
void extreme_dim(const ir::Node& node, LoweringContext& c, const char* reduce_op,
                 const char* arg_op) {
  const Var x = c.input(node, 0);
  const auto axis = static_cast<int32_t>(axis_of(node, c.constant_int(node, 1), x.type().rank()));
  const bool keep = c.constant(node, 2).toBool();
  define(node, c,
         c.builder().add_op(reduce_op, c.output_name(node),
                            {{"x", x},
                             {"axes", TensorValue::int32_list({axis})},
                             {"keep_dims", TensorValue::scalar_bool(keep)}},
                            out_type(node, c)));
  const ir::ValueId indices = node.outputs.at(1);
  if (c.graph().consumers(indices).empty() && !c.graph().is_graph_output(indices)) return;
  c.define(indices, c.builder().add_op(arg_op, c.helper_name(node, "indices"),
                                       {{"x", x},
                                        {"axis", TensorValue::scalar_int32(axis)},
                                        {"keep_dims", TensorValue::scalar_bool(keep)}},
                                       TensorType{DType::Int32, c.shape(indices)}));
}

void max_dim(const ir::Node& n, LoweringContext& c) {
  extreme_dim(n, c, "reduce_max", "reduce_argmax");
}
void min_dim(const ir::Node& n, LoweringContext& c) {
  extreme_dim(n, c, "reduce_min", "reduce_argmin");
}

void mean(const ir::Node& n, LoweringContext& c) { reduce(n, c, "reduce_mean"); }
void sum(const ir::Node& n, LoweringContext& c) { reduce(n, c, "reduce_sum"); }
void amax(const ir::Node& n, LoweringContext& c) { reduce(n, c, "reduce_max"); }

void unary(const ir::Node& node, LoweringContext& c, const std::string& mil, Args params = {}) {
  Args args = {{"x", c.input(node, 0)}};
  for (auto& p : params) args.push_back(std::move(p));
  define(node, c, c.builder().add_op(mil, c.output_name(node), args, out_type(node, c)));
}

void hardtanh(const ir::Node& n, LoweringContext& c) {
  unary(n, c, "clip", {{"alpha", c.float_scalar(c.constant_double(n, 1))},
                       {"beta", c.float_scalar(c.constant_double(n, 2))}});
}
void softmax(const ir::Node& n, LoweringContext& c) {
  const auto axis = static_cast<int32_t>(axis_of(n, c.constant_int(n, 1), c.input(n, 0).type().rank()));
  unary(n, c, "softmax", {{"axis", TensorValue::scalar_int32(axis)}});
}
void gelu(const ir::Node& n, LoweringContext& c) {
  const bool tanh = n.inputs.size() > 1 && c.constant(n, 1).toStringRef() == "tanh";
  unary(n, c, "gelu", {{"mode", TensorValue::scalar_string(tanh ? "TANH_APPROXIMATION" : "EXACT")}});
}
// mish(x) = x * tanh(softplus(x))
void mish(const ir::Node& n, LoweringContext& c) {
  const Var x = c.input(n, 0);
  const TensorType t = out_type(n, c);
  const Var sp = c.builder().add_op("softplus", c.helper_name(n, "softplus"), {{"x", x}}, t);
  const Var th = c.builder().add_op("tanh", c.helper_name(n, "tanh"), {{"x", sp}}, t);
  define(n, c, c.builder().add_op("mul", c.output_name(n), {{"x", x}, {"y", th}}, t));
}

// layer_norm(input, normalized_shape, weight, bias, eps, cudnn)
void layer_norm(const ir::Node& n, LoweringContext& c) {
  const Var x = c.input(n, 0);
  const size_t count = c.constant_ints(n, 1).size();
  std::vector<int32_t> axes;
  for (size_t k = x.type().rank() - count; k < x.type().rank(); ++k) axes.push_back(static_cast<int32_t>(k));
  Args args = {{"x", x}, {"axes", TensorValue::int32_list(axes)},
               {"epsilon", c.float_scalar(c.constant_double(n, 4))}};
  if (!(c.is_constant(n.inputs[2]) && c.constant(n, 2).isNone())) args.push_back({"gamma", c.input(n, 2)});
  if (!(c.is_constant(n.inputs[3]) && c.constant(n, 3).isNone())) args.push_back({"beta", c.input(n, 3)});
  define(n, c, c.builder().add_op("layer_norm", c.output_name(n), args, out_type(n, c)));
}

const std::map<std::string, Lowering>& table() {
  static const std::map<std::string, Lowering> lowerings = {
      {"aten::reshape", reshape_like},
      {"aten::view", reshape_like},
      {"aten::_unsafe_view", reshape_like},
      {"aten::flatten.using_ints", reshape_like},
      {"aten::squeeze", reshape_like},
      {"aten::squeeze.dim", reshape_like},
      {"aten::unsqueeze", reshape_like},
      {"aten::unflatten.int", reshape_like},
      {"aten::contiguous", pass_through},
      {"aten::clone", pass_through},
      {"aten::detach", pass_through},
      {"aten::alias", pass_through},
      {"aten::dropout", pass_through},
      {"aten::type_as", pass_through},
      {"aten::to.dtype", pass_through},
      {"aten::permute", permute},
      {"aten::transpose.int", transpose},
      {"aten::t", transpose},
      {"aten::select.int", select},
      {"aten::slice.Tensor", slice},
      {"aten::chunk", chunk},
      {"aten::split.Tensor", split_op},
      {"aten::split_with_sizes", split_op},
      {"aten::unbind.int", unbind},
      {"aten::cat", cat},
      {"aten::stack", stack},
      {"aten::expand", expand},
      {"aten::expand_as", expand},
      {"aten::repeat", expand},
      {"aten::constant_pad_nd", pad},
      {"aten::pad", pad},
      {"aten::roll", roll},
      {"aten::index.Tensor", index},
      {"aten::embedding", embedding},
      {"aten::add.Tensor", add},
      {"aten::add.Scalar", add},
      {"aten::sub.Tensor", sub},
      {"aten::sub.Scalar", sub},
      {"aten::rsub.Tensor", rsub},
      {"aten::rsub.Scalar", rsub},
      {"aten::mul.Tensor", mul},
      {"aten::mul.Scalar", mul},
      {"aten::div.Tensor", div},
      {"aten::div.Scalar", div},
      {"aten::linear", linear},
      {"aten::matmul", matmul},
      {"aten::bmm", matmul},
      {"aten::mean.dim", mean},
      {"aten::sum.dim_IntList", sum},
      {"aten::amax", amax},
      {"aten::hardtanh", hardtanh},
      {"aten::softmax.int", softmax},
      {"aten::gelu", gelu},
      {"aten::mish", mish},
      {"aten::layer_norm", layer_norm},
      {"aten::lstm.input", lower_lstm},
      {"aten::gru.input", lower_gru},
      {"aten::upsample_bilinear2d", lower_upsample_bilinear},
      {"aten::upsample_nearest1d", lower_upsample_nearest},
      {"aten::upsample_nearest2d", lower_upsample_nearest},
      {"aten::upsample_nearest3d", lower_upsample_nearest},
      {"aten::pixel_shuffle", lower_pixel_shuffle},
      {"aten::group_norm", lower_group_norm},
      {"aten::max.dim", max_dim},
      {"aten::min.dim", min_dim},
  };
  return lowerings;
}

}  // namespace

LowerFn find_torch_op_lowering(const std::string& schema) {
  const auto& lowerings = table();
  auto it = lowerings.find(schema);
  if (it == lowerings.end()) it = lowerings.find(schema.substr(0, schema.find('.', schema.find("::"))));
  return it == lowerings.end() ? nullptr : it->second;
}

void lower_torch_op(const ir::Node& node, LoweringContext& context) {
  const LowerFn lower = find_torch_op_lowering(node.attrs.s(ir::attr::schema));
  if (!lower)
    fail(node, "operator '" + node.attrs.s(ir::attr::schema) + "' has no Core ML mapping yet");
  lower(node, context);
}

void lower_list(const ir::Node& node, LoweringContext& context) {
  std::vector<Var> vars;
  for (size_t k = 0; k < node.inputs.size(); ++k) vars.push_back(context.input(node, k));
  context.define_list(node.outputs.at(0), std::move(vars));
}

void lower_unpack(const ir::Node& node, LoweringContext& context) {
  const std::vector<Var> vars = context.list(node, 0);
  if (vars.size() != node.outputs.size()) {
    fail(node, "unpacks " + std::to_string(vars.size()) + " tensors into " +
                   std::to_string(node.outputs.size()) + " values");
  }
  for (size_t k = 0; k < vars.size(); ++k) context.define(node.outputs[k], vars[k]);
}

}  // namespace linquant::coreml::lowering
