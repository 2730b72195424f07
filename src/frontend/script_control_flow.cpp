// Control flow in scripted models: branches and loops are resolved at capture time when their
// conditions and trip counts are known then (training flags, module attributes, constant
// ranges), since the IR is a straight-line graph.
#include "script_interpreter.h"

namespace linquant::frontend::script {
namespace {

namespace prim = c10::prim;

// Unrolling bound: beyond it a loop is not a model's structure but a computation.
constexpr int64_t kMaxUnrolledIterations = 10000;

bool raises(const torch::jit::Block* block) {
  for (const torch::jit::Node* node : block->nodes()) {
    if (node->kind() == prim::RaiseException) return true;
  }
  return false;
}

// Whether running `block` could touch tensors (then it matters which way it goes).
bool touches_tensors(const torch::jit::Block* block) {
  for (const torch::jit::Node* node : block->nodes()) {
    for (const torch::jit::Value* output : node->outputs()) {
      if (is_tensor_type(output)) return true;
    }
    if (node->kind() == prim::CallMethod || node->kind() == prim::CallFunction ||
        node->kind() == prim::SetAttr) {
      return true;
    }
    for (const torch::jit::Block* inner : node->blocks()) {
      if (touches_tensors(inner)) return true;
    }
  }
  return false;
}

bool any_tensor_output(const torch::jit::Node* node) {
  for (const torch::jit::Value* output : node->outputs()) {
    if (is_tensor_type(output)) return true;
  }
  return false;
}

}  // namespace

void Interpreter::run_if(torch::jit::Node* node, Frame& frame) {
  const SymValue& condition = lookup(frame, node->input(0));
  torch::jit::Block* then_block = node->blocks()[0];
  torch::jit::Block* else_block = node->blocks()[1];
  torch::jit::Block* taken = nullptr;
  if (condition.is(SymValue::Kind::constant) && condition.constant.isBool()) {
    taken = condition.constant.toBool() ? then_block : else_block;
  } else if (raises(then_block) != raises(else_block)) {
    // An input check (`if x.dim() != 4: raise ...`): capture describes the runs that work.
    taken = raises(then_block) ? else_block : then_block;
  } else if (!any_tensor_output(node) && !touches_tensors(then_block) &&
             !touches_tensors(else_block)) {
    for (const torch::jit::Value* output : node->outputs()) {
      bind(frame, output, SymValue::make_unknown("a branch on " + describe(condition)));
    }
    return;
  } else {
    fail(frame, node, "data-dependent control flow (prim::If on " + describe(condition) + ")");
  }
  run_block(taken, frame);
  for (size_t k = 0; k < node->outputs().size(); ++k) {
    bind(frame, node->output(k), lookup(frame, taken->outputs()[k]));
  }
}

void Interpreter::run_loop(torch::jit::Node* node, Frame& frame) {
  // prim::Loop(max_trip_count, initial_condition, carried...); the body takes
  // (iteration, carried...) and returns (condition, carried...).
  torch::jit::Block* body = node->blocks()[0];
  const SymValue& trip_count = lookup(frame, node->input(0));
  const SymValue& initial = lookup(frame, node->input(1));
  std::vector<SymValue> carried;
  for (size_t k = 2; k < node->inputs().size(); ++k) {
    carried.push_back(lookup(frame, node->input(k)));
  }

  const bool known = trip_count.is(SymValue::Kind::constant) && trip_count.constant.isInt() &&
                     initial.is(SymValue::Kind::constant) && initial.constant.isBool();
  if (!known) {
    // Loops over sizes that only check inputs (F.batch_norm's batch size check) compute
    // nothing the graph needs.
    if (!any_tensor_output(node) && !touches_tensors(body)) {
      for (const torch::jit::Value* output : node->outputs()) {
        bind(frame, output, SymValue::make_unknown("a loop over " + describe(trip_count)));
      }
      return;
    }
    fail(frame, node, "a loop whose trip count is " + describe(trip_count) + " (prim::Loop)");
  }
  const int64_t trips = trip_count.constant.toInt();
  bool running = initial.constant.toBool();
  for (int64_t iteration = 0; running && iteration < trips; ++iteration) {
    if (iteration == kMaxUnrolledIterations) {
      fail(frame, node, "a loop of more than " + std::to_string(kMaxUnrolledIterations) +
                            " iterations (prim::Loop)");
    }
    bind(frame, body->inputs()[0], SymValue::make_constant(iteration));
    for (size_t k = 0; k < carried.size(); ++k) bind(frame, body->inputs()[k + 1], carried[k]);
    run_block(body, frame);
    const SymValue& next = lookup(frame, body->outputs()[0]);
    if (!next.is(SymValue::Kind::constant) || !next.constant.isBool()) {
      fail(frame, node, "a loop whose condition is " + describe(next) + " (prim::Loop)");
    }
    running = next.constant.toBool();
    for (size_t k = 0; k < carried.size(); ++k) carried[k] = lookup(frame, body->outputs()[k + 1]);
  }
  for (size_t k = 0; k < carried.size(); ++k) bind(frame, node->output(k), carried[k]);
}

}  // namespace linquant::frontend::script
