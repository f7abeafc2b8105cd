"""Where bf16 pays on this CPU: one matrix product, float32 vs bfloat16.

    python benchmarks/bf16_matmul.py

Times the products that dominate the language models (the output
projection `(tokens, units) @ (units, vocab)` and one recurrent step
`(batch, units) @ (units, 4*units)`) in TensorFlow without XLA (oneDNN
kernels), with XLA, and in PyTorch when it is installed; prints GFLOP/s
and writes nothing. It answers "does a bf16 product reach a bf16 kernel
here, and how much faster is it" before any model-level timing.
"""

import os
import time

SHAPES = {
    # name: (rows, inner, columns)
    "1x100 output projection": (700, 100, 10000),
    "2x650 output projection": (700, 650, 10000),
    "2x650 recurrent step": (20, 650, 2600),
}


def gflops(seconds, rows, inner, columns):
    return 2 * rows * inner * columns / seconds / 1e9


def time_call(call, repeats=20):
    call()
    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def tensorflow_rows():
    import tensorflow as tf

    rows = []
    for name, (m, k, n) in SHAPES.items():
        for dtype in ("float32", "bfloat16"):
            a = tf.cast(tf.random.normal([m, k]), dtype)
            b = tf.cast(tf.random.normal([k, n]), dtype)
            for jit in (False, True):

                @tf.function(jit_compile=jit)
                def product(a=a, b=b):
                    return tf.matmul(a, b)

                seconds = time_call(product)
                system = "TF + XLA" if jit else "TF (oneDNN)"
                rows.append((name, system, dtype, gflops(seconds, m, k, n)))
    return rows


def torch_rows():
    try:
        import torch
    except ImportError:
        return []
    torch.set_num_threads(os.cpu_count())
    rows = []
    for name, (m, k, n) in SHAPES.items():
        for dtype in (torch.float32, torch.bfloat16):
            a, b = (
                torch.randn(m, k, dtype=dtype),
                torch.randn(k, n, dtype=dtype),
            )
            seconds = time_call(lambda a=a, b=b: a @ b)
            rows.append(
                (name, "PyTorch", str(dtype)[6:], gflops(seconds, m, k, n))
            )
    return rows


def cpu_flags():
    from training.model import cpu_instruction_flags

    flags = cpu_instruction_flags()
    if not flags:
        return "CPU flags unavailable"
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(
        f"{flag}={'yes' if flag in flags else 'no'}" for flag in wanted
    )


def main():
    print("CPU:", cpu_flags())
    rows = tensorflow_rows() + torch_rows()
    print(f"{'product':<26} {'system':<12} {'dtype':<9} {'GFLOP/s':>8}")
    for name, system, dtype, rate in rows:
        print(f"{name:<26} {system:<12} {dtype:<9} {rate:8.1f}")
    return rows


if __name__ == "__main__":
    main()
