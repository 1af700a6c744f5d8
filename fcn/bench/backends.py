"""`bench --run EXPORT --backends tf,onnxruntime,...`: the export's files side by side, each
opened as every command opens it (fcn.inference.backends.open_backend) with the same --threads.

Per backend key, on random uint8 images at the network size (h, w) (every backend resizes
inside or outside to that size, so this times the network and the path around it):
    img_s_b1, img_s_b8   images/s predicting batches of 1 and of 8
    p50_ms, p99_ms       latency of one image (batch 1), median and 99th percentile (linear
                         interpolation: of 3 x 10 calls, between the two slowest)
    peak_rss_mb          the resident memory the backend added at its peak, from opening it to
                         its warm-up batches (Linux VmHWM, reset before each backend, less the
                         resident memory before it)
    score, mask_pixels_differ   (where the run's validation images can be read) the headline
                         validation score and the share of mask pixels that differ from float
                         TensorFlow (fcn.inference.quality)
All backends are open at once and the timings interleave: each of REPEATS rounds times every
backend in turn, so a busy spell on a shared machine hits all of them alike.
"""

import contextlib
import time

import numpy as np

from fcn.inference import backends

BATCHES = (1, 8)
REPEATS = 3
DEFAULT_CALLS = 10  # per batch size and round


def _reset_peak():
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0), if it can."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _status_mb(field):
    """VmRSS or VmHWM of this process in MB (0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as f:
            line = next(li for li in f if li.startswith(field + ":"))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration, ValueError):
        return 0.0


def _batches(network_size, seed=0):
    h, w = network_size
    rng = np.random.default_rng(seed)
    return {b: rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8) for b in BATCHES}


def _timed(model, batch, calls):
    seconds = []
    for _ in range(calls):
        t0 = time.perf_counter()
        model.predict(batch)
        seconds.append(time.perf_counter() - t0)
    return seconds


def measure(path, names, threads=None, precision_name="auto", calls=DEFAULT_CALLS, log=print):
    """{key: figures} for each backend key of `names` on the export (or, for tf alone, run)
    folder `path`."""
    threads = threads or backends.default_threads()
    with contextlib.ExitStack() as stack:
        opened, peaks, batches = {}, {}, None
        for name in names:
            backend, int8 = backends.split_key(name)
            before = _status_mb("VmRSS")
            _reset_peak()
            model = backends.open_backend(path, backend, int8, threads, precision_name)
            stack.enter_context(model)
            model.batch_size = max(model.batch_size, *BATCHES)
            batches = batches or _batches(model.network_size)
            for batch in batches.values():  # warm-up: graph rewrites, kernel choices
                model.predict(batch)
            peaks[name] = _status_mb("VmHWM") - before
            opened[name] = model
        seconds = {name: {b: [] for b in BATCHES} for name in names}
        for r in range(REPEATS):
            for name, model in opened.items():
                for b, batch in batches.items():
                    seconds[name][b] += _timed(model, batch, calls)
            log(f"round {r + 1}/{REPEATS} done")
        results = {}
        for name, model in opened.items():
            s = seconds[name]
            figures = {f"img_s_b{b}": b * len(s[b]) / sum(s[b]) for b in BATCHES}
            figures.update(
                p50_ms=1000 * float(np.percentile(s[1], 50)),
                p99_ms=1000 * float(np.percentile(s[1], 99)),
                peak_rss_mb=peaks[name],
                precision=model.precision,
            )
            results[name] = figures
            log(
                f"{name}: {figures['img_s_b1']:.2f} img/s at batch 1, {figures['img_s_b8']:.2f} "
                f"at batch 8, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                f"+{peaks[name]:.0f} MB"
            )
    return results


def benchmark(opts, log=print):
    """`bench --run DIR`: {"backends": {key: figures}, "image_shape", "threads", "precision",
    "metric", "cpu"}; the scores where the run's validation images can be read."""
    from fcn import precision, runs
    from fcn.bench import machine
    from fcn.inference import quality, restore, run_images

    names = opts.backend_keys()
    threads = opts.threads or backends.default_threads()
    prec = precision.resolve(opts.config.precision)  # TensorFlow's; the others run their file's
    before = machine.cpu_times()
    results = measure(opts.run, names, threads, prec, opts.calls, log)
    log(machine.machine_note(before, machine.cpu_times()))
    if restore.is_export(opts.run):
        meta = restore.read_metadata(opts.run)
        config = restore.export_config(meta)
        spec = restore.export_spec(meta, config)
    else:
        folder = runs.RunFolder(opts.run).check_exists()
        config = folder.read_config()
        spec = folder.read_spec(config)
    examples = run_images.validation_examples(opts.run, config.data_dir, spec)
    metric = None
    if examples:
        log(f"scores on {len(examples)} validation images of {config.data_dir}:")
        scored = quality.measure(
            opts.run, names, examples, spec, config.threshold, threads, log, tf_precision=prec
        )
        metric = scored["metric"]
        for name, entry in scored["backends"].items():
            results[name].update(entry)
    else:
        log(f"no validation images of the run in {config.data_dir}: speed only")
    return {
        "backends": results,
        "image_shape": list(config.image_shape),
        "threads": threads,
        "precision": prec,
        "metric": metric,
        "cpu": machine.cpu_name(),
    }


def format_table(result):
    """The side-by-side table, in Markdown (docs/performance.md takes it as printed)."""
    h, w = result["image_shape"]
    metric = result["metric"] or "val score"
    lines = [
        f"backends at {h}x{w}, {result['threads']} threads; {result['cpu']}",
        f"| backend | precision | img/s b1 | img/s b8 | p50 ms b1 | p99 ms b1 | peak MB added "
        f"| {metric} | mask px differ from TF float32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["backends"].items():
        score, differ = r.get("score"), r.get("mask_pixels_differ")
        lines.append(
            f"| {name} | {r['precision']} | {r['img_s_b1']:.2f} | {r['img_s_b8']:.2f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {'' if score is None else f'{score:.4f}'} "
            f"| {'' if differ is None else f'{100 * differ:.3f}%'} |"
        )
    return "\n".join(lines)
