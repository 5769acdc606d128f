"""Does this machine's GPU train the model, and how fast? Windows/s of the model alone: a fixed number of training
steps on a synthetic batch of the preset's shapes held in device memory (no input pipeline, no disk), after one
step that compiles. TensorFlow by default; JAX with ``KERAS_BACKEND=jax``.

    python bench/gpu_check.py                                    # colab-gpu, 50 steps
    python bench/gpu_check.py --config cpu-small --steps 100 --batch 64
    python bench/gpu_check.py --set model.frame_encoder=EfficientNetB0   # a keras.applications backbone
    KERAS_BACKEND=jax python bench/gpu_check.py
    python bench/gpu_check.py --steps 3 --cpu-ok                 # no GPU: say so, run a tiny CPU version

Without a GPU it says so and exits 1, unless ``--cpu-ok``: then it runs the ``smoke`` preset on the CPU (the
script's own check, not a measurement) and exits 0. The last line is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")


def accelerator() -> tuple[str | None, str]:
    """``(device name, backend)``: the first GPU the Keras backend sees, or None."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]
        return (gpus[0].device_kind if gpus else None), backend
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None, backend
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name), backend


def synthetic_batch(config, batch: int, seed: int = 0) -> tuple[dict, dict]:
    """Inputs and targets of ``batch`` windows of ``config``'s shapes (random pixels, noise, every frame a face)."""
    import numpy as np

    from dfdetect.model import FRAME_HEADS, HEADS, input_names, model_inputs

    rng = np.random.default_rng(seed)
    T, C, S = config.frames_per_window, config.faces.crop_size, config.samples_per_window
    frames = rng.integers(0, 256, (batch, T, C, C, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, (batch, S)).astype("float32")
    mask = np.ones((batch, T), "float32")
    x = model_inputs(input_names(config), frames, audio, mask)
    y = {h: rng.integers(0, 2, (batch, 1)).astype("float32") for h in HEADS}
    if config.model.frame_heads:
        y.update({h: rng.integers(0, 2, (batch, T, 1)).astype("float32") for h in FRAME_HEADS})
    return x, y


def peak_memory_mb(backend: str) -> float | None:
    """Peak device memory of this process in MB, where the backend reports it."""
    try:
        if backend == "jax":
            import jax

            return jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # noqa: BLE001 - not every device or version reports it; the rate is what matters
        return None


def run(config, steps: int, batch: int) -> dict:
    """Builds and compiles ``config``'s model, runs one step (tracing, compilation), then times ``steps`` steps."""
    import keras
    import numpy as np

    from dfdetect.model import build_model
    from dfdetect.train import compile_model

    if config.train.mixed_precision:
        keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    model = compile_model(build_model(config), config)
    x, y = synthetic_batch(config, batch)
    # on the device once: the steps then measure the model, not host-to-device copies of the frames
    x, y = (keras.tree.map_structure(keras.ops.convert_to_tensor, d) for d in (x, y))
    t = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        logs = model.train_on_batch(x, y, return_dict=True)  # returns numbers: each step has finished
    seconds = time.perf_counter() - t
    return {"windows_per_second": round(steps * batch / seconds, 1), "ms_per_step": round(1000 * seconds / steps, 1),
            "first_step_s": round(first, 1), "loss": float(logs["loss"]), "finite": bool(np.isfinite(logs["loss"])),
            "params": int(model.count_params()), "jit_compile": bool(getattr(model, "jit_compile", False))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="colab-gpu", help="preset or YAML file (default colab-gpu)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="config override")
    ap.add_argument("--steps", type=int, default=50, help="timed training steps (after one untimed step)")
    ap.add_argument("--batch", type=int, default=0, help="windows per step (default: the preset's batch_size)")
    ap.add_argument("--cpu-ok", action="store_true",
                    help="without a GPU, run a tiny CPU version (the smoke preset) and exit 0 instead of 1")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    import keras

    from dfdetect.config import load_config

    device, backend = accelerator()
    config = load_config(args.config, args.set)
    if device is None:
        print(f"no GPU found by the {backend} backend", file=sys.stderr)
        if not args.cpu_ok:
            print("(on Colab: Runtime > Change runtime type > GPU; here: --cpu-ok runs a tiny CPU version)",
                  file=sys.stderr)
            return 1
        config = load_config("smoke", args.set)
        print("running a tiny CPU version instead: the smoke preset, not a measurement of anything", flush=True)
    batch = args.batch or config.train.batch_size
    print(f"{backend} on {device or 'CPU'}: preset {config.name}, {batch} windows per step, "
          f"{config.frames_per_window} frames of {config.faces.crop_size} px and {config.samples_per_window} audio "
          f"samples per window, frame encoder {config.model.frame_encoder}, "
          f"precision {config.train.mixed_precision or 'float32'}", flush=True)
    result = run(config, args.steps, batch)
    peak = peak_memory_mb(backend) if device else None
    print(f"model alone: {result['windows_per_second']} windows/s ({result['ms_per_step']} ms a step over "
          f"{args.steps} steps; first step {result['first_step_s']} s), {result['params']:,} parameters"
          + (f", peak device memory {peak:.0f} MB" if peak is not None else ""))
    print(json.dumps({"backend": backend, "device": device or "cpu", "keras": keras.__version__,
                      "config": config.name, "batch": batch, "steps": args.steps,
                      "peak_memory_mb": None if peak is None else round(peak), **result}))
    if not result["finite"]:
        print(f"the loss is not finite ({result['loss']}): the model does not train on this machine", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
