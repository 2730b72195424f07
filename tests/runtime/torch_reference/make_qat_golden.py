"""Writes qat_golden.pt: PyTorch 1.13's own QAT ConvBn2d and LinearBn1d (reference 4.3) on
fixed data, for tests/runtime/qat_golden_test.cpp to replay through GraphModule.

ctest runs it as the fixture runtime.make_qat_golden, into the build tree, on the machine that
runs the test: convolution and matrix-product results depend on the kernel the CPU selects
(a file made on one machine differed by 1 ulp on another), so nothing is committed.
By hand, with Debian's interpreter (it sees python3-torch):
    /usr/bin/python3 tests/runtime/torch_reference/make_qat_golden.py OUT.pt

Format: torch.save of {case_name: {key: tensor}}, loadable with torch::pickle_load. Keys:
  weight, bias (absent without conv bias), bn_weight, bn_bias, running_mean, running_var:
      the initial state;
  x0..x2, y0..y2: three training steps (BN batch statistics); after each forward the loss
      sum(y * ramp) with ramp = arange(numel) / numel is back-propagated;
  end_running_mean, end_running_var, end_num_batches_tracked, end_scale (weight fake-quant
      scale), grad_weight, grad_bias, grad_bn_weight, grad_bn_bias: after the three steps;
  x_frozen, y_frozen: after freeze_bn_stats(), still in training mode; y_eval: the same
      input after eval();
  config: [in, out, kernel (0 for linear), padding, groups, has_bias], int64.
Generated with one intra-op thread (the replay uses one too): reductions of other thread
counts round differently. Weights are fake-quantized qint8 per output channel, symmetric, moving average 0.01, as
coremltools' default; BN momentum 0.2, eps 1e-3.
"""
import os
import sys

import torch
from torch.ao.quantization import FakeQuantize, MovingAveragePerChannelMinMaxObserver, QConfig
from torch.nn.intrinsic.qat import ConvBn2d, LinearBn1d

EPS = 1e-3
MOMENTUM = 0.2


def qconfig():
    weight = FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0,
        averaging_constant=0.01)
    return QConfig(activation=torch.nn.Identity, weight=weight)


def record(module, make_input, config):
    case = {"config": torch.tensor(config, dtype=torch.int64)}
    # Every tensor set here: LinearBn1d leaves its bias uninitialized (torch.empty).
    with torch.no_grad():
        module.weight.normal_(0, 0.3)
        if module.bias is not None:
            module.bias.normal_(0, 0.1)
        module.bn.weight.uniform_(0.5, 1.5)
        module.bn.bias.normal_()
        module.bn.running_mean.normal_(0, 0.2)
        module.bn.running_var.uniform_(0.5, 1.5)
    state = {"weight": module.weight, "bn_weight": module.bn.weight, "bn_bias": module.bn.bias,
             "running_mean": module.bn.running_mean, "running_var": module.bn.running_var}
    if module.bias is not None:
        state["bias"] = module.bias
    for key, value in state.items():
        case[key] = value.detach().clone()
    module.train()
    for step in range(3):
        x = make_input(6) * (step + 1)
        y = module(x)
        ramp = torch.arange(y.numel(), dtype=torch.float32).reshape(y.shape) / y.numel()
        (y * ramp).sum().backward()
        case[f"x{step}"] = x
        case[f"y{step}"] = y.detach().clone()
    case["end_running_mean"] = module.bn.running_mean.clone()
    case["end_running_var"] = module.bn.running_var.clone()
    case["end_num_batches_tracked"] = module.bn.num_batches_tracked.clone()
    case["end_scale"] = module.weight_fake_quant.scale.clone()
    case["grad_weight"] = module.weight.grad.clone()
    if module.bias is not None:
        case["grad_bias"] = module.bias.grad.clone()
    case["grad_bn_weight"] = module.bn.weight.grad.clone()
    case["grad_bn_bias"] = module.bn.bias.grad.clone()
    module.freeze_bn_stats()
    x = make_input(2)
    case["x_frozen"] = x
    case["y_frozen"] = module(x).detach().clone()
    module.eval()
    case["y_eval"] = module(x).detach().clone()
    return case


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = {
        "conv_bn": record(
            ConvBn2d(3, 8, 3, padding=1, bias=True, eps=EPS, momentum=MOMENTUM, qconfig=qconfig()),
            lambda n: torch.randn(n, 3, 5, 5), [3, 8, 3, 1, 1, 1]),
        "grouped_conv_bn_without_bias": record(
            ConvBn2d(4, 6, 3, padding=0, groups=2, bias=False, eps=EPS, momentum=MOMENTUM,
                     qconfig=qconfig()),
            lambda n: torch.randn(n, 4, 6, 6), [4, 6, 3, 0, 2, 0]),
        "linear_bn": record(
            LinearBn1d(7, 5, bias=True, eps=EPS, momentum=MOMENTUM, qconfig=qconfig()),
            lambda n: torch.randn(n, 7), [7, 5, 0, 0, 1, 1]),
    }
    path = sys.argv[1]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(cases, path + ".tmp")
    os.replace(path + ".tmp", path)
    print("wrote", path)


if __name__ == "__main__":
    main()
