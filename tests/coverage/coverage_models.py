#!/usr/bin/python3
"""The coverage sweep's model zoo: traces 24 models to TorchScript for coverage_driver.

Owns the list of models the sweep measures (scripts/coverage_sweep.sh): the smallest variant
of every torchvision 0.14 classification family plus three models written here (a
TransformerEncoder classifier, an LSTM classifier over token ids and a Conv1d/BatchNorm1d/GELU
net). Each is built with weights=None after torch.manual_seed(0), put in eval mode, traced with
torch.jit.trace at batch 2 at the smallest input size it accepts, and written to

  OUT/NAME/model.pt     the traced module (torch.jit.save)
  OUT/NAME/inputs.pt    the example inputs: {"inputs": tuple of tensors}, torch.save'd in the zip format,
                        which C++ reads with torch::jit::pickle_load (an IValue list)
  OUT/NAME/meta.json    input shapes and dtypes, output shapes, parameter count and the traced
                        graph's op kinds (nodes of the inlined graph, recursively, by kind)

Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14). Nothing is downloaded.

  coverage_models.py --out DIR [--models a,b,c] [--force]
  coverage_models.py --list            the model names with their input shapes
  coverage_models.py --probe NAME      the smallest square input a torchvision model accepts

A model whose three files exist is skipped unless --force. A model that fails to build or
trace gets OUT/NAME/trace_error.txt and the script goes on (exit code 1 at the end).
"""
import argparse
import json
import os
import sys
import time
import traceback

import torch
import torch.nn as nn
import torchvision
import torchvision.models as tvm

BATCH = 2


# --- Models written here -------------------------------------------------------------------

class TransformerClassifier(nn.Module):
    """Linear embedding of [B, T, F] features, 2 post-norm encoder layers (batch_first,
    d_model 32, 4 heads, feed-forward 64), mean over T, linear head."""

    def __init__(self, features=16, d_model=32, heads=4, layers=2, classes=10):
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class LSTMClassifier(nn.Module):
    """nn.Embedding of int64 token ids -> 2-layer LSTM (batch_first) -> last step -> Linear."""

    def __init__(self, vocab=100, embed=16, hidden=32, classes=10):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.head(out[:, -1])


class Conv1dNet(nn.Module):
    """Conv1d, BatchNorm1d, GELU, MaxPool1d, AdaptiveAvgPool1d, Linear on [B, C, L]."""

    def __init__(self, channels=4, width=16, classes=10):
        super().__init__()
        self.conv = nn.Conv1d(channels, width, 5, padding=2)
        self.bn = nn.BatchNorm1d(width)
        self.act = nn.GELU()
        self.pool = nn.MaxPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = self.gap(self.pool(self.act(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(x, 1))


# --- The zoo --------------------------------------------------------------------------------

def _tv(name, **kwargs):
    return lambda: getattr(tvm, name)(weights=None, **kwargs)


_INCEPTION = dict(aux_logits=False, init_weights=True, transform_input=False)


def _image(size):
    return lambda: [torch.randn(BATCH, 3, size, size)]


# name -> (builder, example-input maker, note). The image sizes are the smallest square sizes
# each model runs at in eval mode (found with --probe, i.e. by trying every size from 1 up);
# vit_b_32 only accepts its image_size (224), maxvit_t is built for 224.
MODELS = {
    "alexnet": (_tv("alexnet"), _image(63), "smallest size found by --probe"),
    "vgg11": (_tv("vgg11"), _image(32), "smallest size found by --probe"),
    "resnet18": (_tv("resnet18"), _image(1), "smallest size found by --probe"),
    "resnext50_32x4d": (_tv("resnext50_32x4d"), _image(1), "smallest size found by --probe"),
    "wide_resnet50_2": (_tv("wide_resnet50_2"), _image(1), "smallest size found by --probe"),
    "squeezenet1_0": (_tv("squeezenet1_0"), _image(21), "smallest size found by --probe"),
    "densenet121": (_tv("densenet121"), _image(29), "smallest size found by --probe"),
    "googlenet": (_tv("googlenet", **_INCEPTION), _image(15), "smallest size found by --probe"),
    "inception_v3": (_tv("inception_v3", **_INCEPTION), _image(75),
                     "smallest size found by --probe"),
    "shufflenet_v2_x0_5": (_tv("shufflenet_v2_x0_5"), _image(1), "smallest size found by --probe"),
    "mobilenet_v2": (_tv("mobilenet_v2"), _image(1), "smallest size found by --probe"),
    "mobilenet_v3_small": (_tv("mobilenet_v3_small"), _image(1), "smallest size found by --probe"),
    "mnasnet0_5": (_tv("mnasnet0_5"), _image(1), "smallest size found by --probe"),
    "efficientnet_b0": (_tv("efficientnet_b0"), _image(1), "smallest size found by --probe"),
    "efficientnet_v2_s": (_tv("efficientnet_v2_s"), _image(1), "smallest size found by --probe"),
    "regnet_x_400mf": (_tv("regnet_x_400mf"), _image(1), "smallest size found by --probe"),
    "regnet_y_400mf": (_tv("regnet_y_400mf"), _image(1), "smallest size found by --probe"),
    "convnext_tiny": (_tv("convnext_tiny"), _image(32), "smallest size found by --probe"),
    "vit_b_32": (_tv("vit_b_32"), _image(224), "only its image_size"),
    "swin_t": (_tv("swin_t"), _image(4), "smallest size found by --probe"),
    "maxvit_t": (_tv("maxvit_t"), _image(224), "built for 224"),
    "transformer_encoder": (TransformerClassifier, lambda: [torch.randn(BATCH, 8, 16)],
                            "[B, T=8, F=16] features"),
    "lstm_classifier": (LSTMClassifier, lambda: [torch.randint(0, 100, (BATCH, 8))],
                        "[B, T=8] int64 token ids below 100"),
    "conv1d_net": (Conv1dNet, lambda: [torch.randn(BATCH, 4, 32)], "[B, C=4, L=32]"),
}


# --- Tracing and facts ----------------------------------------------------------------------

def count_nodes(block, kinds):
    """Nodes of a graph block and of every nested block (If/Loop bodies), by kind."""
    total = 0
    for node in block.nodes():
        kinds[node.kind()] = kinds.get(node.kind(), 0) + 1
        total += 1
        for sub in node.blocks():
            total += count_nodes(sub, kinds)
    return total


def graph_facts(traced):
    """Op kinds of the traced model with every submodule call inlined."""
    kinds = {}
    total = count_nodes(traced.inlined_graph, kinds)
    aten = sorted(k for k in kinds if k.startswith("aten::"))
    return {
        "torchscript_nodes": total,
        "torchscript_nodes_without_constants": total - kinds.get("prim::Constant", 0),
        "aten_ops": aten,
        "num_aten_ops": len(aten),
        "aten_nodes": sum(kinds[k] for k in aten),
        "node_kinds": dict(sorted(kinds.items())),
    }


def describe(tensors):
    return [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
            for t in tensors]


def flat_outputs(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat_outputs(v)]
    return []


def build(name):
    builder, make_inputs, note = MODELS[name]
    torch.manual_seed(0)
    model = builder().eval()
    inputs = make_inputs()
    return model, inputs, note


def trace_one(name, out, force):
    directory = os.path.join(out, name)
    files = [os.path.join(directory, f) for f in ("model.pt", "inputs.pt", "meta.json")]
    if not force and all(os.path.exists(f) for f in files):
        print(f"{name}: up to date")
        return True
    os.makedirs(directory, exist_ok=True)
    error_file = os.path.join(directory, "trace_error.txt")
    start = time.time()
    try:
        model, inputs, note = build(name)
        # Traced with autograd on, as a training script would: in eval mode without
        # gradients nn.TransformerEncoderLayer takes its fused inference path
        # (aten::_transformer_encoder_layer_fwd), which is not what QAT trains.
        traced = torch.jit.trace(model, tuple(inputs), check_trace=False)
        with torch.no_grad():
            eager = flat_outputs(model(*inputs))
            scripted = flat_outputs(traced(*inputs))
        max_diff = max(float((a - b).abs().max()) for a, b in zip(eager, scripted))
        traced.save(files[0])
        # Two keys: LibTorch's unpickler lacks the APPEND and SETITEM opcodes Python uses for
        # one-item lists and dicts.
        torch.save({"inputs": tuple(inputs), "count": len(inputs)}, files[1],
                   _use_new_zipfile_serialization=True)
        meta = {
            "name": name,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "seed": 0,
            "note": note,
            "inputs": describe(inputs),
            "outputs": describe(eager),
            "parameters": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers()),
            "trace_vs_eager_max_abs_diff": max_diff,
            "trace_seconds": round(time.time() - start, 2),
        }
        meta.update(graph_facts(traced))
        with open(files[2], "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(error_file):
            os.remove(error_file)
        print(f"{name}: inputs {[m['shape'] for m in meta['inputs']]}, "
              f"{meta['parameters']} parameters, {meta['torchscript_nodes']} nodes, "
              f"{meta['num_aten_ops']} aten ops, {meta['trace_seconds']} s", flush=True)
        return True
    except Exception as e:  # reported as data: the sweep shows it in its table
        with open(error_file, "w") as f:
            f.write(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        print(f"{name}: FAILED to trace: {type(e).__name__}: {str(e).splitlines()[0]}",
              flush=True)
        return False


def probe(name, largest=256):
    """The smallest square image size (batch 2, eval, no grad) a torchvision model runs at."""
    model, _, _ = build(name)
    last = None
    with torch.no_grad():
        for size in range(1, largest + 1):
            try:
                model(torch.randn(BATCH, 3, size, size))
                return size, None
            except Exception as e:
                last = str(e).splitlines()[0]
    return None, last


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output directory (one folder per model)")
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--force", action="store_true", help="redo models already written")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("--probe", metavar="NAME", help="find a model's smallest input size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.list:
        for name, (_, make_inputs, note) in MODELS.items():
            torch.manual_seed(0)
            shapes = ", ".join(f"{list(t.shape)} {str(t.dtype).replace('torch.', '')}"
                               for t in make_inputs())
            print(f"{name:22s} {shapes}  ({note})")
        return 0
    if args.probe:
        size, error = probe(args.probe)
        print(f"{args.probe}: smallest size {size}" if size else f"{args.probe}: none ({error})")
        return 0 if size else 1
    if not args.out:
        parser.error("--out is required (or --list / --probe)")
    names = [n for n in args.models.split(",") if n] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)} (see --list)")
    ok = [trace_one(name, args.out, args.force) for name in names]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
