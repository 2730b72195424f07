#!/usr/bin/python3
"""Writes PyTorch's own quantization-aware training run of each cross-check model, for
tests/quantizer/torch_cross_check_test.cpp to repeat with linquant and compare.

Usage: make_qat_reference.py OUTPUT_DIR      (run by Debian's /usr/bin/python3, torch 1.13)

The configuration is the one coremltools builds for the affine scheme (reference 3.2):
activations FakeQuantize(MovingAverageMinMaxObserver, quint8, per_tensor_affine), weights
FakeQuantize(MovingAveragePerChannelMinMaxObserver, qint8, per_channel_affine, ch_axis 0),
torch's default backend config, prepared with prepare_qat_fx. For the ops in these models the
default backend config places quantizers exactly as coremltools' does (check_placement below
asserts the rules; it is why ConvBnNet calls torch.flatten rather than nn.Flatten), and with
the affine scheme coremltools' symmetric->affine rewrites do nothing, so the prepared model is
what LinearQuantizer.prepare would give.

The milestone schedule is coremltools' (reference 2), written out here. The loop, in both
implementations, per step k = 0..STEPS-1:
    quantizer.step()        # BEFORE the batch's forward, as coremltools' tutorial does
    zero_grad; out = model(x_k); loss = cross_entropy(out, t_k); loss.backward()
    record loss, out, gradients, quantizer state
    sgd.step()              # plain SGD, no momentum or weight decay
With MILESTONES = [0, 3, 8, 12] the forwards of steps 0-2 only observe, 3-7 observe and
fake-quantize, 8-11 fake-quantize with frozen ranges, and 12-19 also use frozen BatchNorm.

For every model NAME it writes
  NAME.pt            the float model, torch.jit.trace'd in train mode, with the initial weights
                     and BatchNorm statistics of the run (tracing runs a forward; undone)
  NAME.reference.pt  a TorchScript container whose attributes are the run (read in C++ with
                     torch::jit::load + attr(); torch::pickle_load cannot read torch.save
                     files of 1-item dicts in LibTorch 1.13: "Unknown opcode 0x73", SETITEM):
    example            input used to trace and to prepare
    inputs, targets    [STEPS, batch, ...] float / [STEPS, batch] int64
    milestones, lr, steps, num_threads
    param_names        Python's named_parameters() order of the float model
    losses, outputs    [STEPS] / [STEPS, batch, classes]
    grad_index[name]   int64 indices into the flattened parameter: all of them when it has at
                       most SAMPLE elements, else a seeded random sorted sample (full per-step
                       gradients of resnet18 would be 900 MB)
    grad_sample[name]  [STEPS, len(index)] gradient at those indices
    grad_norm[name]    [STEPS] float64 L2 norm of the whole gradient
    last_grad[name]    the whole gradient of the last step
    final_param_sample[name]  parameter at grad_index after the last SGD update
    final_buffers[name]       BatchNorm statistics after the run, by the float model's names
    act_names          canonical name (first name of the shared module) of the activation
                       FakeQuantize called by each activation_post_process node, graph order
    act_sites          where each such node sits, for reading failures ("after maxpool ...")
    act_quantizers     distinct activation quantizer names
    act_scale, act_zero_point  [STEPS, len(act_quantizers)] after each step's forward
    weight_quantizers  weight FakeQuantize names ("layer1.0.conv1.weight_fake_quant")
    weight_scale[name], weight_zero_point[name]  [STEPS, channels] after each forward
A stamp holding this script's hash and torch's version makes an unchanged rerun a no-op.
"""
import copy
import hashlib
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver,
                                   MovingAveragePerChannelMinMaxObserver, QConfig,
                                   QConfigMapping, disable_fake_quant, disable_observer,
                                   enable_fake_quant, enable_observer)
from torch.ao.quantization.quantize_fx import prepare_qat_fx

STEPS = 20
MILESTONES = [0, 3, 8, 12]
LR = 0.01
SAMPLE = 8192
NUM_THREADS = 2


class ConvBnNet(nn.Module):
    """conv-bn-relu, maxpool, flatten, linear. Flatten is torch.flatten, not nn.Flatten:
    torch 1.13's default backend config has no entry for the nn.Flatten module (only for
    torch.flatten), so FX leaves it float and gives the Linear a new input quantizer, while
    coremltools' backend config (and linquant) make nn.Flatten share its input's quantizer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))


# name, constructor, input shape (batch first), number of classes
MODELS = [
    ("conv_bn_net", ConvBnNet, (8, 3, 16, 16), 10),
    # 64x64 keeps 20 steps fast on 2 cores; the graph is the same as at 224x224.
    ("resnet18", lambda: torchvision.models.resnet18(num_classes=10), (4, 3, 64, 64), 10),
]


def qconfig_mapping():
    activation = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, dtype=torch.quint8,
                                        qscheme=torch.per_tensor_affine)
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver,
                                    dtype=torch.qint8, qscheme=torch.per_channel_affine, ch_axis=0)
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


class Milestones:
    """coremltools' LinearQuantizer.step(): four independent checks, then count."""

    def __init__(self, model, milestones):
        self.model = model
        self.milestones = milestones
        self.count = 0
        # LinearQuantizer.prepare with milestones: everything starts switched off.
        model.apply(disable_observer)
        model.apply(disable_fake_quant)

    def step(self):
        m = self.milestones
        if self.count == m[0]:
            self.model.apply(enable_observer)
        if self.count == m[1]:
            self.model.apply(enable_fake_quant)
        if self.count == m[2]:
            self.model.apply(disable_observer)
        if self.count == m[3]:
            self.model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)
        self.count += 1


def is_fq_node(prepared, node):
    return (node.op == "call_module"
            and isinstance(prepared.get_submodule(node.target), FakeQuantize))


def canonical_names(prepared):
    """The first name of every module object; FX registers one shared quantizer under several."""
    names = {}
    for name, module in prepared.named_modules():  # remove_duplicate: first name wins
        names.setdefault(id(module), name)
    return names


def describe(prepared, node):
    if node.op == "placeholder":
        return "input"
    if node.op == "call_module":
        return "%s (%s)" % (node.target, type(prepared.get_submodule(node.target)).__name__)
    if node.op == "call_function":
        return "%s (%s)" % (node.name, getattr(node.target, "__name__", str(node.target)))
    return "%s (%s)" % (node.name, node.op)


# coremltools' rules (reference 3.4) for the ops these models contain: a weighted module
# (fused with BatchNorm and/or ReLU into one QAT module) and add+ReLU get their own output
# quantizer; max/avg pooling and flatten share their input's quantizer; the model input is
# observed; a ReLU fused after add has no quantizer between add and ReLU.
SHARE = (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)
OWN = (nn.intrinsic.qat.ConvBnReLU2d, nn.intrinsic.qat.ConvBn2d, nn.intrinsic.qat.ConvReLU2d,
       nn.qat.Conv2d, nn.qat.Linear, nn.intrinsic.qat.LinearReLU)


def check_placement(prepared):
    """Asserts that prepare_qat_fx placed every activation quantizer where coremltools' rules
    (and so linquant's placement passes) put one, and returns the listing."""
    names = canonical_names(prepared)
    sites = []
    for node in prepared.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr") or is_fq_node(prepared, node):
            continue
        kind = (type(prepared.get_submodule(node.target)) if node.op == "call_module"
                else node.target)
        inputs = [a for a in node.args if isinstance(a, torch.fx.Node)]
        users = list(node.users)
        fq_users = [u for u in users if is_fq_node(prepared, u)]
        is_add = kind is torch.add or getattr(kind, "__name__", "") == "add"
        is_relu = kind in (nn.ReLU, F.relu, torch.relu)
        if is_relu:
            # Only as the second half of add+ReLU (standalone ReLUs do not occur here).
            assert len(inputs) == 1 and inputs[0].op == "call_function", node.format_node()
            assert len(fq_users) == 1 and len(users) == 1, node.format_node()
            continue
        for a in inputs:  # every input of a quantized op is fake-quantized
            assert is_fq_node(prepared, a), "%s reads unquantized %s" % (node.name, a.name)
        if is_add:  # add+ReLU is one pattern: no quantizer between them
            assert len(users) == 1 and not fq_users, node.format_node()
            continue
        assert len(users) == 1 and len(fq_users) == 1, node.format_node()
        out_fq = prepared.get_submodule(fq_users[0].target)
        in_fq = prepared.get_submodule(inputs[0].target)
        if kind in SHARE or kind is torch.flatten:
            assert out_fq is in_fq, "%s must share its input's quantizer" % node.name
        else:
            assert kind in OWN, "unexpected op %s (%s)" % (node.name, kind)
            assert out_fq is not in_fq, node.name
    for node in prepared.graph.nodes:
        if is_fq_node(prepared, node):
            module = prepared.get_submodule(node.target)
            sites.append((names[id(module)], "after " + describe(prepared, node.args[0])))
    # No activation quantizer module is left unused by the graph.
    modules = {names[id(m)] for n, m in prepared.named_modules()
               if isinstance(m, FakeQuantize) and not n.endswith("weight_fake_quant")}
    assert modules == {q for q, _ in sites}, (modules, sites)
    return sites


def activation_quantizers(sites):
    seen = []
    for name, _ in sites:
        if name not in seen:
            seen.append(name)
    return seen


class Container(nn.Module):
    """Attribute bag saved as TorchScript: C++ reads it with torch::jit::load and attr()."""

    def __init__(self, values):
        super().__init__()
        for key, value in values.items():
            setattr(self, key, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def save_container(values, path):
    for key, value in values.items():
        assert not (isinstance(value, (dict, list)) and len(value) == 0), key  # untypable
    torch.jit.script(Container(values)).save(path + ".tmp")
    os.replace(path + ".tmp", path)


def sample_index(name, numel):
    if numel <= SAMPLE:
        return torch.arange(numel)
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(numel, generator=generator)[:SAMPLE].sort().values


def run(directory, name, make_model, input_shape, classes):
    started = time.time()
    torch.manual_seed(0)
    model = make_model().train()
    generator = torch.Generator().manual_seed(1234)
    example = torch.randn(*input_shape, generator=generator)
    inputs = torch.randn(STEPS, *input_shape, generator=generator)
    targets = torch.randint(0, classes, (STEPS, input_shape[0]), generator=generator)

    # The reference copy first: tracing runs a forward that moves BatchNorm statistics.
    reference = copy.deepcopy(model)
    initial_state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        # check_trace would compare two train-mode runs, which differ (batch statistics).
        traced = torch.jit.trace(model, example, check_trace=False)
        for key, tensor in traced.state_dict().items():
            tensor.copy_(initial_state[key])
    for key, tensor in traced.state_dict().items():
        assert torch.equal(tensor, initial_state[key]), key
    traced.save(os.path.join(directory, name + ".pt.tmp"))
    os.replace(os.path.join(directory, name + ".pt.tmp"), os.path.join(directory, name + ".pt"))

    # Python's names for the tensors, by identity: QAT swapping and fusion keep the objects.
    param_names = [n for n, _ in reference.named_parameters()]
    tensor_names = {id(t): n for n, t in reference.named_parameters()}
    tensor_names.update({id(t): n for n, t in reference.named_buffers()})
    prepared = prepare_qat_fx(reference, qconfig_mapping(), (example,))
    named_params = {tensor_names[id(p)]: p for p in prepared.parameters()}
    assert sorted(named_params) == sorted(param_names), (sorted(named_params), param_names)
    params = [named_params[n] for n in param_names]
    bn_buffers = {tensor_names[id(b)]: b for n, b in prepared.named_buffers()
                  if n.split(".")[-1] in ("running_mean", "running_var", "num_batches_tracked")}

    sites = check_placement(prepared)
    act_quantizers = activation_quantizers(sites)
    weight_quantizers = [n for n, m in prepared.named_modules() if n.endswith("weight_fake_quant")]
    print("%s: %d activation_post_process nodes, %d activation quantizers, %d weight quantizers"
          % (name, len(sites), len(act_quantizers), len(weight_quantizers)))
    for quantizer, site in sites:
        print("  %-28s %s" % (quantizer, site))

    milestones = Milestones(prepared, MILESTONES)
    optimizer = torch.optim.SGD(params, lr=LR)
    index = {n: sample_index(n, p.numel()) for n, p in zip(param_names, params)}
    losses, outputs = [], []
    grad_sample = {n: [] for n in param_names}
    grad_norm = {n: [] for n in param_names}
    act_scale, act_zero_point = [], []
    weight_scale = {n: [] for n in weight_quantizers}
    weight_zero_point = {n: [] for n in weight_quantizers}
    last_grad = {}
    for k in range(STEPS):
        milestones.step()
        optimizer.zero_grad()
        output = prepared(inputs[k])
        loss = F.cross_entropy(output, targets[k])
        loss.backward()
        losses.append(loss.detach().clone())
        outputs.append(output.detach().clone())
        for n, p in zip(param_names, params):
            grad_sample[n].append(p.grad.reshape(-1)[index[n]].clone())
            grad_norm[n].append(p.grad.double().norm())
            if k == STEPS - 1:
                last_grad[n] = p.grad.clone()
        act_scale.append(torch.stack([prepared.get_submodule(q).scale.reshape(()).clone()
                                      for q in act_quantizers]))
        act_zero_point.append(torch.stack([prepared.get_submodule(q).zero_point.reshape(()).long()
                                           for q in act_quantizers]))
        for q in weight_quantizers:
            weight_scale[q].append(prepared.get_submodule(q).scale.clone())
            weight_zero_point[q].append(prepared.get_submodule(q).zero_point.long())
        optimizer.step()
        print("  step %2d loss %.6f" % (k, loss.item()))

    values = {
        "example": example,
        "inputs": inputs,
        "targets": targets,
        "milestones": torch.tensor(MILESTONES, dtype=torch.int64),
        "lr": LR,
        "steps": STEPS,
        "num_threads": torch.get_num_threads(),
        "param_names": param_names,
        "losses": torch.stack(losses),
        "outputs": torch.stack(outputs),
        "grad_index": index,
        "grad_sample": {n: torch.stack(v) for n, v in grad_sample.items()},
        "grad_norm": {n: torch.stack(v) for n, v in grad_norm.items()},
        "last_grad": last_grad,
        "final_param_sample": {n: p.detach().reshape(-1)[index[n]].clone()
                               for n, p in zip(param_names, params)},
        "final_buffers": {n: b.clone() for n, b in bn_buffers.items()},
        "act_names": [q for q, _ in sites],
        "act_sites": [s for _, s in sites],
        "act_quantizers": act_quantizers,
        "act_scale": torch.stack(act_scale),
        "act_zero_point": torch.stack(act_zero_point),
        "weight_quantizers": weight_quantizers,
        "weight_scale": {n: torch.stack(v) for n, v in weight_scale.items()},
        "weight_zero_point": {n: torch.stack(v) for n, v in weight_zero_point.items()},
    }
    save_container(values, os.path.join(directory, name + ".reference.pt"))
    print("%s: %.1f s" % (name, time.time() - started))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_qat_reference.py OUTPUT_DIR")
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest() + " torch " + torch.__version__
    stamp = os.path.join(directory, "stamp")
    outputs = [os.path.join(directory, name + suffix) for name, _, _, _ in MODELS
               for suffix in (".pt", ".reference.pt")]
    if (os.path.exists(stamp) and open(stamp).read() == digest
            and all(os.path.exists(path) for path in outputs)):
        print("reference in %s is up to date" % directory)
        return
    if os.path.exists(stamp):
        os.remove(stamp)
    # The C++ run uses the same thread count (read from the reference), so that reductions
    # split the same way.
    torch.set_num_threads(NUM_THREADS)
    for name, make_model, input_shape, classes in MODELS:
        run(directory, name, make_model, input_shape, classes)
    with open(stamp, "w") as f:
        f.write(digest)


if __name__ == "__main__":
    main()
