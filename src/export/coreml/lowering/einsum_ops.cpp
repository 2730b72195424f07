// einsum of one or two operands as Core ML ops. Core ML's own einsum op takes only a few fixed
// equations, so the contraction is rewritten: subscripts summed within one operand become a
// reduce_sum, the operands are permuted to [batch, free, contracted] and [batch, contracted,
// free] and flattened to one matrix each per batch, one matmul contracts them, and the result
// is reshaped and permuted to the output's subscript order. Ellipses, repeated subscripts in one
// operand (diagonals) and broadcast size-1 dimensions are refused with the equation.
#include <algorithm>
#include <string>
#include <vector>

#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

struct Equation {
  std::vector<std::string> operands;  // one subscript letter per dimension
  std::string output;
};

Equation parse_equation(const ir::Node& node, size_t operands) {
  const std::string& text = node.attrs.s("equation");
  std::string compact;
  for (char ch : text) {
    if (ch != ' ') compact.push_back(ch);
  }
  auto refuse = [&](const std::string& why) {
    fail(node, "einsum '" + text + "': " + why + " has no Core ML lowering");
  };
  if (compact.find("...") != std::string::npos) refuse("an ellipsis");
  const size_t arrow = compact.find("->");
  const std::string lhs = compact.substr(0, arrow);
  Equation eq;
  size_t start = 0;
  for (size_t comma = lhs.find(',');; comma = lhs.find(',', start)) {
    eq.operands.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (eq.operands.size() != operands) {
    fail(node, "einsum '" + text + "' names " + std::to_string(eq.operands.size()) +
                   " operands for " + std::to_string(operands) + " tensors");
  }
  if (arrow != std::string::npos) {
    eq.output = compact.substr(arrow + 2);
  } else {
    // Implicit output: the subscripts used once, in alphabetical order.
    std::string all;
    for (const std::string& s : eq.operands) all += s;
    for (char ch : all) {
      if (std::count(all.begin(), all.end(), ch) == 1) eq.output.push_back(ch);
    }
    std::sort(eq.output.begin(), eq.output.end());
  }
  for (const std::string& s : eq.operands) {
    for (char ch : s) {
      if (std::count(s.begin(), s.end(), ch) > 1) refuse("a repeated subscript in one operand");
    }
  }
  return eq;
}

bool contains(const std::string& s, char ch) { return s.find(ch) != std::string::npos; }

// Emits the ops of one einsum (helper names "<output>_einsumN") on terms: intermediate
// tensors with the subscript of each dimension.
class Contraction {
 public:
  Contraction(const ir::Node& node, LoweringContext& context) : node_(node), context_(context) {}

  struct Term {
    Var var;
    std::string subscripts;
    Shape shape;
  };

  Term input(size_t k, const std::string& subscripts) {
    const Var var = context_.input(node_, k);
    if (var.type().rank() != subscripts.size()) {
      fail(node_, "einsum operand " + std::to_string(k) + " has rank " +
                      std::to_string(var.type().rank()) + " but subscripts '" + subscripts + "'");
    }
    return {var, subscripts, var.type().shape};
  }

  // Sums the dimensions whose subscripts are not in `keep`.
  Term sum_except(const Term& t, const std::string& keep) {
    std::vector<int32_t> axes;
    Term out{t.var, "", {}};
    for (size_t d = 0; d < t.subscripts.size(); ++d) {
      if (contains(keep, t.subscripts[d])) {
        out.subscripts.push_back(t.subscripts[d]);
        out.shape.push_back(t.shape[d]);
      } else {
        axes.push_back(static_cast<int32_t>(d));
      }
    }
    if (axes.empty()) return t;
    out.var = add("reduce_sum",
                  {{"x", t.var},
                   {"axes", TensorValue::int32_list(axes)},
                   {"keep_dims", TensorValue::scalar_bool(false)}},
                  out.shape);
    return out;
  }

  // Permutes the dimensions into the order of `order` (every subscript of t, once).
  Term permute(const Term& t, const std::string& order) {
    if (order == t.subscripts) return t;
    std::vector<int32_t> perm;
    Term out{t.var, order, {}};
    for (char ch : order) {
      const size_t d = t.subscripts.find(ch);
      perm.push_back(static_cast<int32_t>(d));
      out.shape.push_back(t.shape[d]);
    }
    out.var = add("transpose", {{"x", t.var}, {"perm", TensorValue::int32_list(perm)}}, out.shape);
    return out;
  }

  Var reshape(const Var& x, const Shape& shape) {
    if (x.type().shape == shape) return x;
    std::vector<int64_t> dims(shape.begin(), shape.end());
    return add("reshape", {{"x", x}, {"shape", TensorValue::int32_list(to_int32(node_, dims))}},
               shape);
  }

  Var add(const char* op, const Args& args, const Shape& shape) {
    TensorType type{context_.float_dtype(), shape};
    const std::string name = context_.helper_name(node_, "einsum" + std::to_string(count_++));
    return context_.builder().add_op(op, name, args, type);
  }

 private:
  const ir::Node& node_;
  LoweringContext& context_;
  int count_ = 0;
};

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= shape[d];
  return p;
}

}  // namespace

void lower_einsum(const ir::Node& node, LoweringContext& context) {
  const size_t operands = node.inputs.size();
  if (operands < 1 || operands > 2) {
    fail(node, "einsum of " + std::to_string(operands) +
                   " operands has no Core ML lowering (one or two are lowered)");
  }
  const Equation eq = parse_equation(node, operands);
  Contraction c(node, context);
  Var result;
  if (operands == 1) {
    const auto t = c.permute(c.sum_except(c.input(0, eq.operands[0]), eq.output), eq.output);
    result = t.var;
  } else {
    const std::string& a = eq.operands[0];
    const std::string& b = eq.operands[1];
    // Subscripts summed within one operand go first; then each remaining one is a batch
    // (both operands and the output), contracted (both, not the output) or free (one operand).
    auto x = c.sum_except(c.input(0, a), b + eq.output);
    auto y = c.sum_except(c.input(1, b), a + eq.output);
    std::string batch, contracted, free_x, free_y;
    for (char ch : x.subscripts) {
      if (contains(y.subscripts, ch)) {
        (contains(eq.output, ch) ? batch : contracted).push_back(ch);
      } else {
        free_x.push_back(ch);
      }
    }
    for (char ch : y.subscripts) {
      if (!contains(x.subscripts, ch)) free_y.push_back(ch);
    }
    for (char ch : batch + contracted) {
      const int64_t nx = x.shape[x.subscripts.find(ch)];
      const int64_t ny = y.shape[y.subscripts.find(ch)];
      if (nx != ny) {
        fail(node, "einsum '" + node.attrs.s("equation") + "': subscript '" + std::string(1, ch) +
                       "' has sizes " + std::to_string(nx) + " and " + std::to_string(ny) +
                       " (broadcasting has no Core ML lowering)");
      }
    }
    x = c.permute(x, batch + free_x + contracted);
    y = c.permute(y, batch + contracted + free_y);
    const size_t nb = batch.size();
    Shape batch_shape(x.shape.begin(), x.shape.begin() + static_cast<std::ptrdiff_t>(nb));
    const int64_t fx = product(x.shape, nb, nb + free_x.size());
    const int64_t k = product(x.shape, nb + free_x.size(), x.shape.size());
    const int64_t fy = product(y.shape, nb + contracted.size(), y.shape.size());
    Shape mx = batch_shape, my = batch_shape, mo = batch_shape;
    mx.insert(mx.end(), {fx, k});
    my.insert(my.end(), {k, fy});
    mo.insert(mo.end(), {fx, fy});
    const Var xm = c.reshape(x.var, mx);
    const Var ym = c.reshape(y.var, my);
    Var product_var = c.add("matmul",
                            {{"x", xm},
                             {"y", ym},
                             {"transpose_x", TensorValue::scalar_bool(false)},
                             {"transpose_y", TensorValue::scalar_bool(false)}},
                            mo);
    Shape unflattened = batch_shape;
    for (char ch : free_x) unflattened.push_back(x.shape[x.subscripts.find(ch)]);
    for (char ch : free_y) unflattened.push_back(y.shape[y.subscripts.find(ch)]);
    Contraction::Term t{c.reshape(product_var, unflattened), batch + free_x + free_y, unflattened};
    result = c.permute(t, eq.output).var;
  }
  // The output keeps the graph value's name and type: one identity op names it.
  context.define(node.outputs[0],
                 context.builder().add_op("identity", context.output_name(node), {{"x", result}},
                                          context.output_type(node)));
}

}  // namespace linquant::coreml::lowering
