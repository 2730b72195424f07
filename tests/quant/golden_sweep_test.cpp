// Golden sweep: replays golden/quant_golden.json, written by PyTorch 1.13's own observers and
// FakeQuantize (golden/make_quant_golden.py documents the format), against linquant's
// FakeQuantize and compute_qparam, and requires bit-for-bit agreement of every output,
// gradient, qparam and observer buffer.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <iomanip>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/config/enums.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/quant/fake_quantize_options.h"
#include "linquant/quant/qparams.h"
#include "linquant/quant/quant_range.h"

namespace linquant {
namespace {

using nlohmann::json;

constexpr const char* kGoldenFile = LINQUANT_TEST_DATA_DIR "/golden/quant_golden.json";
constexpr const char* kGenerator = "tests/quant/golden/make_quant_golden.py";

// The parsed file, loaded once. A missing or broken file leaves it empty with a reason, so the
// parametrized suites register no cases and GoldenSweep.FileIsComplete fails with the reason.
struct Golden {
  json doc;
  std::string error;
};

const Golden& golden() {
  static const Golden loaded = [] {
    Golden g;
    std::ifstream in(kGoldenFile);
    if (!in) {
      g.error = std::string("cannot open ") + kGoldenFile +
                " (regenerate it with /usr/bin/python3 " + kGenerator + ")";
      return g;
    }
    try {
      g.doc = json::parse(in);
    } catch (const std::exception& e) {
      g.error = std::string(kGoldenFile) + ": " + e.what();
    }
    return g;
  }();
  return loaded;
}

const json& group(const char* key) {
  static const json empty = json::array();
  const json& doc = golden().doc;
  if (!doc.is_object() || !doc.contains(key) || !doc.at(key).is_array()) return empty;
  return doc.at(key);
}

// A parameter names its case (so a failure names it) and points into the parsed file.
struct CaseRef {
  std::string name;
  size_t index = 0;
};

void PrintTo(const CaseRef& ref, std::ostream* os) { *os << ref.name; }

std::vector<CaseRef> case_refs(const char* key) {
  std::vector<CaseRef> refs;
  const json& cases = group(key);
  for (size_t i = 0; i < cases.size(); ++i) {
    refs.push_back({cases[i].value("name", "case_" + std::to_string(i)), i});
  }
  return refs;
}

std::string case_name(const ::testing::TestParamInfo<CaseRef>& info) { return info.param.name; }

// ---- JSON to values -------------------------------------------------------------------------

// Floats are float32 values written as decimals whose nearest double rounds back to them;
// non-finite observer buffers are the strings "inf" and "-inf".
float json_float(const json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<float>::infinity();
    if (s == "-inf") return -std::numeric_limits<float>::infinity();
    throw std::runtime_error("not a float: \"" + s + "\"");
  }
  return static_cast<float>(v.get<double>());
}

at::Tensor float_tensor(const std::vector<int64_t>& shape, const json& data) {
  std::vector<float> values;
  values.reserve(data.size());
  for (const json& v : data) values.push_back(json_float(v));
  at::Tensor t = at::empty(shape, at::kFloat);
  if (t.numel() != static_cast<int64_t>(values.size())) {
    throw std::runtime_error("shape and data disagree in the golden file");
  }
  if (!values.empty()) std::memcpy(t.data_ptr<float>(), values.data(), values.size() * 4);
  return t;
}

// {"shape": [...], "data": [...]}
at::Tensor json_tensor(const json& t) {
  return float_tensor(t.at("shape").get<std::vector<int64_t>>(), t.at("data"));
}

// A flat list (buffers), as a 1-D tensor.
at::Tensor json_flat(const json& data) {
  return float_tensor({static_cast<int64_t>(data.size())}, data);
}

std::optional<QuantRange> range_named(const std::string& name) {
  if (name == "qint8") return QuantRange::qint8();
  if (name == "quint8") return QuantRange::quint8();
  if (name == "qint4") return QuantRange::qint4();
  if (name == "quint4") return QuantRange::quint4();
  return std::nullopt;
}

// ---- bit-exact comparison -------------------------------------------------------------------

uint32_t bits_of(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

std::string describe(float v) {
  std::ostringstream os;
  os << std::setprecision(9) << v << " (0x" << std::hex << std::setw(8) << std::setfill('0')
     << bits_of(v) << ")";
  return os.str();
}

std::string shape_string(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

// Same float32 bit pattern element by element (so -0.0 != 0.0). With same_shape false only the
// flattened contents count: torch keeps per-tensor observer buffers 0-dim, linquant may use [1].
::testing::AssertionResult bits_equal(const std::string& what, const at::Tensor& expected,
                                      const at::Tensor& got, bool same_shape) {
  if (!got.defined()) return ::testing::AssertionFailure() << what << ": undefined tensor";
  if (got.scalar_type() != at::kFloat) {
    return ::testing::AssertionFailure() << what << ": dtype " << got.scalar_type()
                                         << ", expected float32";
  }
  if (same_shape ? !got.sizes().equals(expected.sizes()) : got.numel() != expected.numel()) {
    return ::testing::AssertionFailure() << what << ": shape " << shape_string(got)
                                         << ", expected " << shape_string(expected);
  }
  const at::Tensor e = expected.contiguous().reshape({-1});
  const at::Tensor g = got.detach().cpu().contiguous().reshape({-1});
  const float* ep = e.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  int64_t first = -1;
  int64_t count = 0;
  for (int64_t i = 0; i < e.numel(); ++i) {
    if (bits_of(ep[i]) != bits_of(gp[i])) {
      if (first < 0) first = i;
      ++count;
    }
  }
  if (first < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << count << " of " << e.numel() << " elements differ; first at flat index "
         << first << ": expected " << describe(ep[first]) << ", got " << describe(gp[first]);
}

// Observer buffers. Before its first observation a per-channel torch observer holds empty
// buffers while coremltools' EMA observer holds scalar inf / -inf; coremltools' own state-dict
// loader turns the empty form into the scalar one, so for a per-channel quantizer both spell
// "never observed" and either is accepted. Everything else is compared bit for bit.
::testing::AssertionResult buffer_equal(const std::string& what, const json& expected,
                                        const at::Tensor& got, bool per_channel) {
  const at::Tensor want = json_flat(expected);
  const bool want_unobserved = want.numel() == 1 && std::isinf(want.item<float>());
  if (per_channel && want_unobserved && got.defined() && got.numel() == 0) {
    return ::testing::AssertionSuccess();
  }
  return bits_equal(what, want, got, false);
}

::testing::AssertionResult ints_equal(const std::string& what, const json& expected,
                                      const at::Tensor& got) {
  if (!got.defined()) return ::testing::AssertionFailure() << what << ": undefined tensor";
  if (got.scalar_type() != at::kInt) {
    return ::testing::AssertionFailure() << what << ": dtype " << got.scalar_type()
                                         << ", expected int32";
  }
  if (got.numel() != static_cast<int64_t>(expected.size())) {
    return ::testing::AssertionFailure() << what << ": " << got.numel() << " elements, expected "
                                         << expected.size();
  }
  const at::Tensor g = got.cpu().contiguous().reshape({-1});
  const int32_t* gp = g.data_ptr<int32_t>();
  for (size_t i = 0; i < expected.size(); ++i) {
    const int32_t want = expected[i].get<int32_t>();
    if (gp[i] != want) {
      return ::testing::AssertionFailure() << what << ": first difference at flat index " << i
                                           << ": expected " << want << ", got " << gp[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- the suites -----------------------------------------------------------------------------

TEST(GoldenSweep, FileIsComplete) {
  // A truncated or stale file must not pass by having fewer cases to fail.
  ASSERT_TRUE(golden().error.empty()) << golden().error;
  EXPECT_EQ(golden().doc.value("generator", std::string()), kGenerator);
  EXPECT_GE(group("fake_quantize_cases").size(), 250u);
  EXPECT_GE(group("qparams_cases").size(), 40u);
}

class GoldenSweepFakeQuantize : public ::testing::TestWithParam<CaseRef> {};

TEST_P(GoldenSweepFakeQuantize, MatchesTorchBitForBit) {
  const json& c = group("fake_quantize_cases").at(GetParam().index);
  const auto range = range_named(c.at("range").get<std::string>());
  const auto scheme = parse_quantization_scheme(c.at("scheme").get<std::string>());
  const auto observer = parse_observer_type(c.at("observer").get<std::string>());
  ASSERT_TRUE(range && scheme && observer) << "unknown range, scheme or observer in " << c.dump();

  FakeQuantizeOptions options;
  options.range = *range;
  options.scheme = *scheme;
  options.observer = *observer;
  options.ch_axis = c.at("ch_axis").get<int64_t>();
  FakeQuantize fq(options);

  const json& steps = c.at("steps");
  for (size_t s = 0; s < steps.size(); ++s) {
    const json& step = steps[s];
    const bool observe = step.at("observer_enabled").get<bool>();
    const bool quantize = step.at("fake_quant_enabled").get<bool>();
    SCOPED_TRACE("step " + std::to_string(s) + " (observer " + (observe ? "on" : "off") +
                 ", fake quant " + (quantize ? "on" : "off") + ")");
    fq->enable_observer(observe);
    fq->enable_fake_quant(quantize);

    const at::Tensor x = json_tensor(step.at("x")).requires_grad_(true);
    at::Tensor y;
    try {
      y = fq->forward(x);
      y.backward(json_tensor(step.at("grad_output")));
    } catch (const std::exception& e) {
      FAIL() << "forward/backward threw: " << e.what();
    }

    const json& expect = step.at("expect");
    EXPECT_TRUE(bits_equal("y", json_tensor(expect.at("y")), y, true));
    EXPECT_TRUE(bits_equal("grad_x", json_tensor(expect.at("grad_x")), x.grad(), true));
    EXPECT_TRUE(bits_equal("scale", json_flat(expect.at("scale")), fq->scale, false));
    EXPECT_TRUE(ints_equal("zero_point", expect.at("zero_point"), fq->zero_point));
    EXPECT_TRUE(buffer_equal("min_val", expect.at("min_val"),
                             fq->activation_post_process->min_val, options.per_channel()));
    EXPECT_TRUE(buffer_equal("max_val", expect.at("max_val"),
                             fq->activation_post_process->max_val, options.per_channel()));
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenSweepFakeQuantize,
                         ::testing::ValuesIn(case_refs("fake_quantize_cases")), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenSweepFakeQuantize);

class GoldenSweepQParams : public ::testing::TestWithParam<CaseRef> {};

TEST_P(GoldenSweepQParams, MatchesTorchBitForBit) {
  const json& c = group("qparams_cases").at(GetParam().index);
  const auto range = range_named(c.at("range").get<std::string>());
  const auto scheme = parse_quantization_scheme(c.at("scheme").get<std::string>());
  ASSERT_TRUE(range && scheme) << "unknown range or scheme in " << c.dump();
  const float min_val = json_float(c.at("min_val"));
  const float max_val = json_float(c.at("max_val"));

  if (c.value("error", false)) {
    // torch asserts min <= max; linquant reports it as a QuantError
    EXPECT_THROW(compute_qparam(min_val, max_val, *range, *scheme), QuantError);
    return;
  }
  const QParam got = compute_qparam(min_val, max_val, *range, *scheme);
  const float want_scale = json_float(c.at("scale"));
  EXPECT_EQ(bits_of(got.scale), bits_of(want_scale))
      << "scale: expected " << describe(want_scale) << ", got " << describe(got.scale);
  EXPECT_EQ(got.zero_point, c.at("zero_point").get<int32_t>());
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenSweepQParams,
                         ::testing::ValuesIn(case_refs("qparams_cases")), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenSweepQParams);

}  // namespace
}  // namespace linquant
