"""What ONNX Runtime's integer kernels compute on this CPU, for the tests that compare them with
linquant's own output.

For int8 weights ONNX Runtime multiplies uint8 activations by int8 weights. On x86 CPUs without
VNNI it does so with VPMADDUBSW, which adds each pair of products in 16 bits with saturation:
full-range 8-bit weights overflow those sums and outputs move by several quantization steps
(measured on an AVX2-only AMD EPYC: up to 42 steps). With VNNI (VPDPBUSD adds in 32 bits), and on
other architectures, the kernels are exact. linquant's uint8 weight storage (zero point + 128,
onnx::SaveOptions::uint8_weights, `export --onnx-weights uint8`) makes ONNX Runtime use its
uint8 x uint8 kernels, which widen to 16 bits before multiplying and are exact on every CPU.
"""
import platform


def int8_weight_kernels_exact():
    """True where ONNX Runtime's uint8 x int8 kernels cannot saturate on this CPU."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def weight_storages():
    """The weight storages whose integer kernels are exact here: always uint8, int8 with VNNI."""
    return ["int8", "uint8"] if int8_weight_kernels_exact() else ["uint8"]
