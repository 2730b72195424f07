// Writes the sample .mlpackages that tests/export/python loads with coremltools, plus
// samples.json with every value the writer was given (the Python side's expectation) and a
// standalone blob file exercising each blob type.
//
// usage: write_sample_packages OUT_DIR
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linquant/export/coreml/blob_writer.h"
#include "linquant/export/coreml/mil_builder.h"
#include "linquant/export/coreml/package_writer.h"

namespace fs = std::filesystem;
using namespace linquant::coreml;
using nlohmann::json;

namespace {

// Small deterministic generator so the samples are the same on every run.
class Lcg {
 public:
  explicit Lcg(std::uint32_t seed) : state_(seed) {}
  std::uint32_t next() {
    state_ = state_ * 1664525u + 1013904223u;
    return state_ >> 8;
  }
  int integer(int lo, int hi) {
    return lo + static_cast<int>(next() % static_cast<std::uint32_t>(hi - lo + 1));
  }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() % 100000u) / 100000.0f;
  }

 private:
  std::uint32_t state_;
};

std::vector<std::int8_t> random_int(Lcg& rng, std::size_t n, int lo, int hi) {
  std::vector<std::int8_t> v(n);
  for (auto& x : v) x = static_cast<std::int8_t>(rng.integer(lo, hi));
  return v;
}

std::vector<float> random_float(Lcg& rng, std::size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

TensorType ty(DType dtype, Shape shape) { return TensorType{dtype, std::move(shape)}; }

// Samples (a), (b), (c): quantize -> dequantize -> conv(constexpr weight) -> relu ->
// quantize -> dequantize, the program coremltools makes for a QAT Conv-BN-ReLU.
json write_conv_sample(const fs::path& dir, const std::string& name, Target target,
                       ComputePrecision precision, bool int4_weights) {
  Lcg rng(int4_weights ? 44u : (precision == ComputePrecision::Float16 ? 42u : 43u));
  const DType fp = precision == ComputePrecision::Float16 ? DType::Float16 : DType::Float32;
  auto scalar = [&](float v) {
    return fp == DType::Float16 ? TensorValue::scalar_float16(v) : TensorValue::scalar_float32(v);
  };
  auto vector = [&](Shape shape, const std::vector<float>& v) {
    return fp == DType::Float16 ? TensorValue::float16(std::move(shape), v)
                                : TensorValue::float32(std::move(shape), v);
  };

  const std::vector<std::int8_t> weight =
      int4_weights ? random_int(rng, 216, -8, 7) : random_int(rng, 216, -128, 127);
  const std::vector<float> weight_scale = random_float(rng, 8, 0.001f, 0.05f);
  const std::vector<std::int8_t> offset = {0, 1, -1, 2, -8, 7, 0, 3};
  const std::vector<float> bias = random_float(rng, 8, -0.5f, 0.5f);
  const float in_scale = 0.0123f;
  const float out_scale = 0.0071f;
  const std::uint8_t out_zero_point = precision == ComputePrecision::Float32 ? 5 : 0;

  ProgramBuilder b(target);
  const Var x = b.add_input("input.1", ty(fp, {1, 3, 8, 8}));
  Var w;
  if (int4_weights) {
    w = b.add_constexpr("constexpr_blockwise_shift_scale", "conv.0.weight_dequant",
                        {{"data", TensorValue::int4({8, 3, 3, 3}, weight)},
                         {"scale", vector({8, 1, 1, 1}, weight_scale)},
                         {"offset", TensorValue::int4({8, 1, 1, 1}, offset)}},
                        ty(fp, {8, 3, 3, 3}));
  } else {
    w = b.add_constexpr("constexpr_affine_dequantize", "conv.0.weight_cast",
                        {{"quantized_data", TensorValue::int8({8, 3, 3, 3}, weight)},
                         {"zero_point", TensorValue::int8({8}, std::vector<std::int8_t>(8, 0))},
                         {"scale", vector({8}, weight_scale)},
                         {"axis", TensorValue::scalar_int32(0)}},
                        ty(fp, {8, 3, 3, 3}));
  }
  const Var q_in = b.add_op("quantize", "quantize_2",
                            {{"input", x}, {"scale", scalar(in_scale)},
                             {"output_dtype", TensorValue::scalar_string("int8")}},
                            ty(DType::Int8, {1, 3, 8, 8}));
  const Var dq_in = b.add_op("dequantize", "dequantize_2",
                             {{"input", q_in}, {"scale", scalar(in_scale)}}, ty(fp, {1, 3, 8, 8}));
  const Var conv = b.add_op("conv", "input",
                            {{"x", dq_in},
                             {"weight", w},
                             {"bias", vector({8}, bias)},
                             {"strides", TensorValue::int32_list({1, 1})},
                             {"pad_type", TensorValue::scalar_string("custom")},
                             {"pad", TensorValue::int32_list({1, 1, 1, 1})},
                             {"dilations", TensorValue::int32_list({1, 1})},
                             {"groups", TensorValue::scalar_int32(1)}},
                            ty(fp, {1, 8, 8, 8}));
  const Var relu = b.add_op("relu", "conv.1", {{"x", conv}}, ty(fp, {1, 8, 8, 8}));
  Args q_out_args = {{"input", relu}, {"scale", scalar(out_scale)},
                     {"output_dtype", TensorValue::scalar_string("uint8")}};
  Args dq_out_args = {{"scale", scalar(out_scale)}};
  if (out_zero_point != 0) {
    q_out_args.push_back({"zero_point", TensorValue::scalar_uint8(out_zero_point)});
    dq_out_args.push_back({"zero_point", TensorValue::scalar_uint8(out_zero_point)});
  }
  const Var q_out = b.add_op("quantize", "quantize_1", q_out_args, ty(DType::UInt8, {1, 8, 8, 8}));
  dq_out_args.insert(dq_out_args.begin(), {"input", q_out});
  const Var dq_out = b.add_op("dequantize", "dequantize_1", dq_out_args, ty(fp, {1, 8, 8, 8}));
  b.set_outputs({dq_out});

  ModelInfo info;
  info.short_description = "linquant sample " + name;
  info.source = "linquant-tests";
  const fs::path path = save_package(dir / name, b, info, PackageWriteOptions{true});

  return json{{"path", path.string()},
              {"target", to_string(target)},
              {"precision", to_string(precision)},
              {"input", x.name()},
              {"output", dq_out.name()},
              {"weight_var", w.name()},
              {"weight", weight},
              {"weight_scale", weight_scale},
              {"offset", int4_weights ? json(offset) : json(nullptr)},
              {"bias", bias},
              {"in_scale", in_scale},
              {"out_scale", out_scale},
              {"out_zero_point", out_zero_point}};
}

// Sample (d): a float-only linear + relu, iOS15 (CoreML5), fp32; both constants in the blob.
json write_linear_sample(const fs::path& dir) {
  Lcg rng(7u);
  const std::vector<float> weight = random_float(rng, 12 * 10, -1.0f, 1.0f);
  const std::vector<float> bias = random_float(rng, 12, -0.5f, 0.5f);
  const std::vector<float> x = random_float(rng, 3 * 10, -2.0f, 2.0f);

  ProgramBuilder b(Target::iOS15);
  const Var in = b.add_input("x", ty(DType::Float32, {3, 10}));
  const Var lin = b.add_op("linear", "fc.0",
                           {{"x", in}, {"weight", TensorValue::float32({12, 10}, weight)},
                            {"bias", TensorValue::float32({12}, bias)}},
                           ty(DType::Float32, {3, 12}));
  const Var out = b.add_op("relu", "output", {{"x", lin}}, ty(DType::Float32, {3, 12}));
  b.set_outputs({out});
  const fs::path path = save_package(dir / "float_linear", b, {}, PackageWriteOptions{true});
  return json{{"path", path.string()}, {"target", "iOS15"}, {"precision", "fp32"},
              {"input", in.name()},    {"output", out.name()}, {"weight", weight},
              {"bias", bias},          {"x", x}};
}

// One blob of each type, odd and even sub-byte counts, and a duplicate (deduplicated).
json write_blob_file(const fs::path& dir) {
  BlobWriter w;
  const std::vector<std::uint16_t> fp16 = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000};
  const std::vector<float> fp32 = {1.5f, -2.25f, 3.0e-38f, 65504.0f, -0.0f, 7.0f, 1.0f};
  const std::vector<std::uint8_t> u8 = {0, 1, 127, 128, 255};
  const std::vector<std::int8_t> i8 = {-128, -1, 0, 1, 127, 5};
  const std::vector<std::int8_t> i4_odd = {1, -2, 3, -8, 7};
  const std::vector<std::int8_t> i4_even = {-1, 0, 7, -8};
  const std::vector<std::uint8_t> u4_odd = {15, 0, 9};
  json offsets = json::object();
  offsets["fp16"] = {{"offset", w.write_float16_bits(fp16)}, {"values", fp16}};
  offsets["fp32"] = {{"offset", w.write_float32(fp32)}, {"values", fp32}};
  offsets["uint8"] = {{"offset", w.write_uint8(u8)}, {"values", u8}};
  offsets["int8"] = {{"offset", w.write_int8(i8)}, {"values", i8}};
  offsets["int4_odd"] = {{"offset", w.write_int4(i4_odd)}, {"values", i4_odd}};
  offsets["int4_even"] = {{"offset", w.write_int4(i4_even)}, {"values", i4_even}};
  offsets["uint4_odd"] = {{"offset", w.write_uint4(u4_odd)}, {"values", u4_odd}};
  offsets["int8_again"] = {{"offset", w.write_int8(i8)}, {"values", i8}};
  const fs::path path = dir / "blobs.bin";
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(w.bytes().data()),
            static_cast<std::streamsize>(w.bytes().size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return json{{"path", path.string()}, {"count", w.blob_count()}, {"blobs", offsets}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " OUT_DIR\n";
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    fs::create_directories(dir);
    json samples;
    const auto fp16 = ComputePrecision::Float16;
    const auto fp32 = ComputePrecision::Float32;
    samples["ios17_fp16"] = write_conv_sample(dir, "ios17_fp16", Target::iOS17, fp16, false);
    samples["ios17_fp32"] = write_conv_sample(dir, "ios17_fp32", Target::iOS17, fp32, false);
    samples["ios18_int4"] = write_conv_sample(dir, "ios18_int4", Target::iOS18, fp16, true);
    samples["float_linear"] = write_linear_sample(dir);
    samples["blob_file"] = write_blob_file(dir);
    std::ofstream(dir / "samples.json") << samples.dump(2) << "\n";
    std::cout << "wrote samples to " << dir.string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "write_sample_packages: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
