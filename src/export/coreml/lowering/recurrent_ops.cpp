// aten::lstm as Core ML lstm ops, one per layer (both directions of a bidirectional layer in
// one op). PyTorch packs the gates as [i, f, g, o]; MIL wants [i, f, o, z] with z the cell
// gate, and one bias (b_ih + b_hh). The states [layers * directions, B, H] are sliced per layer
// into MIL's [B, directions * H] and the final ones stacked back.
//
// aten::gru is unrolled over the (recorded) sequence length instead: MIL's gru adds the hidden
// bias outside the reset gate's product, PyTorch inside (n = tanh(W_in x + b_in + r * (W_hn h +
// b_hn))), so the op computes something else whenever b_hn is not zero.
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// Rows [i, f, g, o] of a PyTorch gate tensor reordered to MIL's [i, f, o, g].
at::Tensor mil_gate_order(const at::Tensor& t) {
  const std::vector<at::Tensor> gates = t.chunk(4, 0);
  return at::cat({gates[0], gates[1], gates[3], gates[2]}, 0);
}

// What aten::lstm.input and aten::gru.input share: (input, hx, params, has_biases, num_layers,
// dropout, train, bidirectional, batch_first), static shapes, and the ops to move the
// sequence and the states between PyTorch's layouts and MIL's.
class RecurrentLowering {
 protected:
  RecurrentLowering(const ir::Node& node, LoweringContext& c, const char* what, size_t gates)
      : node_(node), c_(c), what_(what) {
    has_biases_ = c_.constant(node_, 3).toBool();
    layers_ = c_.constant_int(node_, 4);
    directions_ = c_.constant(node_, 7).toBool() ? 2 : 1;
    batch_first_ = c_.constant(node_, 8).toBool();
    if (!c_.is_constant(node_.inputs.at(2))) {
      fail(node_, std::string(what) + " weights computed from the input data");
    }
    params_ = c_.constant(node_, 2).toTensorVector();
    if (params_.size() != static_cast<size_t>(layers_ * directions_) * per_direction()) {
      fail(node_, std::string(what) + " with " + std::to_string(params_.size()) +
                      " weight tensors for " + std::to_string(layers_) +
                      " layers (projections have no Core ML lowering)");
    }
    hidden_ = params_.at(1).size(1);
    if (params_.at(1).size(0) != static_cast<int64_t>(gates) * hidden_) {
      fail(node_, std::string(what) + " hidden weights of an unexpected shape");
    }
  }

  size_t per_direction() const { return has_biases_ ? 4 : 2; }
  // Weight k (0 w_ih, 1 w_hh, 2 b_ih, 3 b_hh) of one layer and direction.
  const at::Tensor& param(int64_t layer, int64_t direction, size_t k) const {
    return params_.at(static_cast<size_t>(layer * directions_ + direction) * per_direction() + k);
  }

  // The input as [T, B, I].
  Var sequence_first_input() {
    const Var x = c_.input(node_, 0);
    if (x.type().rank() != 3) {
      fail(node_, std::string(what_) + " of an unbatched input has no Core ML lowering");
    }
    return batch_first_ ? transpose(x, {1, 0, 2}, "input_seq_first") : x;
  }
  // [T, B, F] back to the model's layout, as output 0.
  void define_sequence_output(const Var& y) {
    c_.define(node_.outputs.at(0),
              batch_first_ ? transpose(y, {1, 0, 2}, "output_batch_first") : y);
  }

  // An initial state tensor [layers * directions, B, H]: a recorded constant (zeros made from
  // the input's size) or a graph value; `list_index` for LSTM's [h0, c0] list.
  Var initial_state(std::optional<size_t> list_index, const std::string& name) {
    const ir::ValueId id = node_.inputs.at(1);
    if (c_.is_constant(id)) {
      const c10::IValue& v = c_.constant(node_, 1);
      const at::Tensor t = list_index ? v.toTensorVector().at(*list_index) : v.toTensor();
      return c_.builder().add_const(c_.helper_name(node_, name), c_.float_tensor(t));
    }
    return list_index ? c_.list(node_, 1).at(*list_index) : c_.input(node_, 1);
  }

  // Rows [first, first + count) of a [L * D, B, H] state.
  Var state_rows(const Var& s, int64_t first, int64_t count, const std::string& name) {
    const Shape dims{3};
    const TensorType type{c_.float_dtype(), {count, s.type().shape.at(1), hidden_}};
    return c_.builder().add_op(
        "slice_by_index", c_.helper_name(node_, name),
        {{"x", s},
         {"begin", TensorValue::int32_list({static_cast<int32_t>(first), 0, 0})},
         {"end", TensorValue::int32_list({static_cast<int32_t>(first + count), 0, 0})},
         {"stride", TensorValue::int32_list({1, 1, 1})},
         {"begin_mask", TensorValue::boolean(dims, {false, true, true})},
         {"end_mask", TensorValue::boolean(dims, {false, true, true})}},
        type);
  }

  Var concat(const std::vector<Var>& parts, int32_t axis, const std::string& name,
             const TensorType& type) {
    if (parts.size() == 1) return parts[0];
    return c_.builder().add_op("concat", c_.helper_name(node_, name),
                               {{"values", parts},
                                {"axis", TensorValue::scalar_int32(axis)},
                                {"interleave", TensorValue::scalar_bool(false)}},
                               type);
  }

  Var constant(const at::Tensor& t, const std::string& name) {
    return c_.builder().add_const(c_.helper_name(node_, name), c_.float_tensor(t));
  }

  Var op(const char* type, const std::string& name, const Args& args, const Shape& shape) {
    return c_.builder().add_op(type, c_.helper_name(node_, name), args,
                               TensorType{c_.float_dtype(), shape});
  }

  Var transpose(const Var& x, const std::vector<int32_t>& perm, const std::string& name) {
    Shape shape;
    for (int32_t d : perm) shape.push_back(x.type().shape.at(static_cast<size_t>(d)));
    return op("transpose", name, {{"x", x}, {"perm", TensorValue::int32_list(perm)}}, shape);
  }

  Var reshape(const Var& x, const Shape& shape, const std::string& name) {
    const std::vector<int64_t> dims(shape.begin(), shape.end());
    return op("reshape", name,
              {{"x", x}, {"shape", TensorValue::int32_list(to_int32(node_, dims))}}, shape);
  }

  const ir::Node& node_;
  LoweringContext& c_;
  const char* what_;
  bool has_biases_ = true;
  int64_t layers_ = 1;
  int64_t directions_ = 1;
  bool batch_first_ = false;
  int64_t hidden_ = 0;
  std::vector<at::Tensor> params_;
};

class LstmLowering : RecurrentLowering {
 public:
  LstmLowering(const ir::Node& node, LoweringContext& c) : RecurrentLowering(node, c, "LSTM", 4) {}

  void run() {
    Var x = sequence_first_input();
    const Var h0 = initial_state(0, "h0");
    const Var c0 = initial_state(1, "c0");
    std::vector<Var> h_n, c_n;
    for (int64_t layer = 0; layer < layers_; ++layer) {
      const std::string tag = "layer" + std::to_string(layer);
      Args args = {{"x", x},
                   {"initial_h", layer_state(h0, layer, tag + "_h0")},
                   {"initial_c", layer_state(c0, layer, tag + "_c0")}};
      for (int64_t d = 0; d < directions_; ++d) {
        const std::string suffix = d == 0 ? "" : "_back";
        const std::string name = tag + suffix;
        args.push_back({"weight_ih" + suffix, weight(param(layer, d, 0), name + "_weight_ih")});
        args.push_back({"weight_hh" + suffix, weight(param(layer, d, 1), name + "_weight_hh")});
        if (has_biases_) {
          args.push_back(
              {"bias" + suffix, weight(param(layer, d, 2) + param(layer, d, 3), name + "_bias")});
        }
      }
      args.push_back({"direction",
                      TensorValue::scalar_string(directions_ == 2 ? "bidirectional" : "forward")});
      args.push_back({"output_sequence", TensorValue::scalar_bool(true)});
      args.push_back({"recurrent_activation", TensorValue::scalar_string("sigmoid")});
      args.push_back({"cell_activation", TensorValue::scalar_string("tanh")});
      args.push_back({"activation", TensorValue::scalar_string("tanh")});
      const Shape& seq = x.type().shape;
      const TensorType sequence{c_.float_dtype(), {seq[0], seq[1], directions_ * hidden_}};
      const TensorType last{c_.float_dtype(), {seq[1], directions_ * hidden_}};
      const std::vector<Var> out = c_.builder().add_multi_output_op(
          "lstm", c_.helper_name(node_, tag), args, {sequence, last, last});
      x = out[0];
      h_n.push_back(final_state(out[1], tag + "_h"));
      c_n.push_back(final_state(out[2], tag + "_c"));
    }
    define_sequence_output(x);
    c_.define(node_.outputs.at(1), concat(h_n, 0, "h_n", c_.float_type(node_.outputs.at(1))));
    c_.define(node_.outputs.at(2), concat(c_n, 0, "c_n", c_.float_type(node_.outputs.at(2))));
  }

 private:
  // A layer's [directions, B, H] rows as MIL's [B, directions * H].
  Var layer_state(const Var& s, int64_t layer, const std::string& name) {
    const int64_t batch = s.type().shape.at(1);
    const Var rows = state_rows(s, layer * directions_, directions_, name + "_rows");
    return reshape(transpose(rows, {1, 0, 2}, name + "_batch_first"),
                   {batch, directions_ * hidden_}, name);
  }

  // MIL's final [B, directions * H] as PyTorch's [directions, B, H].
  Var final_state(const Var& s, const std::string& name) {
    const int64_t batch = s.type().shape.at(0);
    return transpose(reshape(s, {batch, directions_, hidden_}, name + "_split"), {1, 0, 2}, name);
  }

  Var weight(const at::Tensor& t, const std::string& name) {
    return constant(mil_gate_order(t), name);
  }
};

// PyTorch's GRU step, gates [r, z, n]:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = n + z * (h - n),
// with the input projections of all steps computed by one linear.
class GruLowering : RecurrentLowering {
 public:
  GruLowering(const ir::Node& node, LoweringContext& c) : RecurrentLowering(node, c, "GRU", 3) {}

  void run() {
    Var x = sequence_first_input();
    const Var h0 = initial_state(std::nullopt, "h0");
    const int64_t steps = x.type().shape.at(0);
    const int64_t batch = x.type().shape.at(1);
    std::vector<Var> h_n;
    for (int64_t layer = 0; layer < layers_; ++layer) {
      std::vector<Var> directions;
      for (int64_t d = 0; d < directions_; ++d) {
        const std::string tag = "layer" + std::to_string(layer) + (d == 0 ? "" : "_back");
        Var h = reshape(state_rows(h0, layer * directions_ + d, 1, tag + "_h0_row"),
                        {batch, hidden_}, tag + "_h0");
        const Var w_hh = constant(param(layer, d, 1), tag + "_weight_hh");
        std::optional<Var> b_hh;
        if (has_biases_) b_hh = constant(param(layer, d, 3), tag + "_bias_hh");
        Args input_args = {{"x", x}, {"weight", constant(param(layer, d, 0), tag + "_weight_ih")}};
        if (has_biases_)
          input_args.push_back({"bias", constant(param(layer, d, 2), tag + "_bias_ih")});
        const Var projected =
            op("linear", tag + "_input_gates", input_args, {steps, batch, 3 * hidden_});
        std::vector<Var> outputs(static_cast<size_t>(steps));
        for (int64_t k = 0; k < steps; ++k) {
          const int64_t t = d == 0 ? k : steps - 1 - k;
          const std::string at = tag + "_t" + std::to_string(t);
          const Var gx = squeeze_step(projected, t, at + "_gx");
          Args hidden_args = {{"x", h}, {"weight", w_hh}};
          if (b_hh) hidden_args.push_back({"bias", *b_hh});
          const Var gh = op("linear", at + "_gh", hidden_args, {batch, 3 * hidden_});
          const std::vector<Var> xs = gates(gx, at + "_gx_split");
          const std::vector<Var> hs = gates(gh, at + "_gh_split");
          const Shape shape{batch, hidden_};
          const Var r =
              op("sigmoid", at + "_r",
                 {{"x", op("add", at + "_r_sum", {{"x", xs[0]}, {"y", hs[0]}}, shape)}}, shape);
          const Var z =
              op("sigmoid", at + "_z",
                 {{"x", op("add", at + "_z_sum", {{"x", xs[1]}, {"y", hs[1]}}, shape)}}, shape);
          const Var reset = op("mul", at + "_reset", {{"x", r}, {"y", hs[2]}}, shape);
          const Var n =
              op("tanh", at + "_n",
                 {{"x", op("add", at + "_n_sum", {{"x", xs[2]}, {"y", reset}}, shape)}}, shape);
          const Var delta = op("sub", at + "_delta", {{"x", h}, {"y", n}}, shape);
          h = op("add", at + "_h",
                 {{"x", n}, {"y", op("mul", at + "_update", {{"x", z}, {"y", delta}}, shape)}},
                 shape);
          outputs[static_cast<size_t>(t)] = h;
        }
        directions.push_back(op("stack", tag + "_sequence",
                                {{"values", outputs}, {"axis", TensorValue::scalar_int32(0)}},
                                {steps, batch, hidden_}));
        h_n.push_back(reshape(h, {1, batch, hidden_}, tag + "_h_n"));
      }
      const std::string tag = "layer" + std::to_string(layer);
      x = concat(directions, 2, tag + "_output",
                 TensorType{c_.float_dtype(), {steps, batch, directions_ * hidden_}});
    }
    define_sequence_output(x);
    c_.define(node_.outputs.at(1), concat(h_n, 0, "h_n", c_.float_type(node_.outputs.at(1))));
  }

 private:
  // Step t of a [T, B, F] tensor as [B, F].
  Var squeeze_step(const Var& x, int64_t t, const std::string& name) {
    const Shape& s = x.type().shape;
    const Shape dims{3};
    return op("slice_by_index", name,
              {{"x", x},
               {"begin", TensorValue::int32_list({static_cast<int32_t>(t), 0, 0})},
               {"end", TensorValue::int32_list({static_cast<int32_t>(t + 1), 0, 0})},
               {"stride", TensorValue::int32_list({1, 1, 1})},
               {"begin_mask", TensorValue::boolean(dims, {false, true, true})},
               {"end_mask", TensorValue::boolean(dims, {false, true, true})},
               {"squeeze_mask", TensorValue::boolean(dims, {true, false, false})}},
              {s[1], s[2]});
  }

  // [B, 3H] as its three gate blocks [B, H].
  std::vector<Var> gates(const Var& x, const std::string& name) {
    const TensorType part{c_.float_dtype(), {x.type().shape.at(0), hidden_}};
    return c_.builder().add_multi_output_op(
        "split", c_.helper_name(node_, name),
        {{"x", x},
         {"split_sizes",
          TensorValue::int32_list({static_cast<int32_t>(hidden_), static_cast<int32_t>(hidden_),
                                   static_cast<int32_t>(hidden_)})},
         {"axis", TensorValue::scalar_int32(1)}},
        {part, part, part});
  }
};

}  // namespace

void lower_lstm(const ir::Node& node, LoweringContext& context) {
  LstmLowering(node, context).run();
}

void lower_gru(const ir::Node& node, LoweringContext& context) { GruLowering(node, context).run(); }

}  // namespace linquant::coreml::lowering
