"""Where a step's time goes: TensorFlow's profiler over training steps and
scoring passes of a benchmark model, summed by op type.

    python benchmarks/profile_step.py --config char-30min \\
        [--precision mixed_bfloat16] [--steps 5] [--torch]

Runs `throughput.py`'s `ours` system (the package's fastest path, XLA
off): warm-up steps, then `--steps` training steps and as many scoring
passes (`predict_on_batch`) under `tf.profiler`, and prints each op
type's share of the traced op time (ms per step, calls per step, us per
call) from the host's `TensorFlow Ops` line. `--torch` adds PyTorch's
profiler over the same model's `nn.LSTM` steps. Op times are the
executor's: an op's own work and its launch; the gap between ops (the
executor's scheduling) is the wall time minus their sum.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.throughput import CONFIGS, make_system  # noqa: E402

WARMUP = 3


def op_times(logdir):
    """`{op type: [self us, calls]}` of a profiler run in `logdir`.

    Events named `node:OpType` on the executor's threads; each op's own
    time, less the ops nested inside it on the same thread (a `While`
    runs its body's ops inside its event).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    pattern = os.path.join(logdir, "**", "*.xplane.pb")
    (path,) = glob.glob(pattern, recursive=True)
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    totals = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                add_self_times(line.events, names, totals)
    return totals


def add_self_times(events, names, totals):
    """Adds each op event's time less its nested ops' to `totals`."""
    ops = []
    for event in events:
        name = names[event.metadata_id]
        if "::" in name or ":" not in name:
            continue  # the executor's own events
        ops.append((event.offset_ps, event.duration_ps, name.rsplit(":", 1)[1]))
    ops.sort()
    stack = []  # [end, kind, self time]
    for start, duration, kind in ops:
        while stack and stack[-1][0] <= start:
            close(stack.pop(), totals)
        if stack:
            stack[-1][2] -= duration
        stack.append([start + duration, kind, duration])
    while stack:
        close(stack.pop(), totals)


def close(entry, totals):
    _, kind, own = entry
    totals[kind][0] += own / 1e6
    totals[kind][1] += 1


def profile(step, steps):
    """Wall seconds per step and `op_times` of `steps` calls of `step`."""
    import tensorflow as tf

    for _ in range(WARMUP):
        step()
    logdir = tempfile.mkdtemp(prefix="profile-step-")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    return wall, op_times(logdir)


def print_profile(title, wall, totals, steps, top=14):
    traced = sum(total for total, _ in totals.values()) / steps
    calls = sum(count for _, count in totals.values()) / steps
    print(f"\n{title}: {wall * 1e3:.1f} ms per step wall, {traced / 1e3:.1f} "
          f"ms in {calls:,.0f} ops")  # fmt: skip
    print("| op | ms/step | share | calls/step | us/call |")
    print("|---|---|---|---|---|")
    ranked = sorted(totals.items(), key=lambda item: -item[1][0])
    for kind, (total, count) in ranked[:top]:
        per_step = total / steps
        print(
            f"| {kind} | {per_step / 1e3:.2f} | {per_step / traced:.1%} "
            f"| {count / steps:,.0f} | {total / count:.1f} |"
        )


def torch_profile(config, precision, steps):
    """PyTorch's profiler over `steps` training steps of `nn.LSTM`."""
    import torch

    train, predict = make_system("torch", config, precision)
    for name, step in (("train", train), ("score", predict)):
        for _ in range(WARMUP):
            step()
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]
        ) as prof:
            for _ in range(steps):
                step()
        print(f"\nPyTorch {name} ({precision}), {steps} steps:")
        print(
            prof.key_averages().table(
                sort_by="self_cpu_time_total", row_limit=12
            )
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", default="char-30min", choices=sorted(CONFIGS)
    )
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args(argv)
    config = CONFIGS[args.config]
    train, predict = make_system("ours-jit-off", config, args.precision)
    for name, step in (("training step", train), ("scoring pass", predict)):
        wall, totals = profile(step, args.steps)
        title = f"{args.config}, ours, {name} ({args.precision})"
        print_profile(title, wall, totals, args.steps)
    if args.torch:
        torch_profile(config, args.precision, args.steps)


if __name__ == "__main__":
    main()
