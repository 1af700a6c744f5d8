"""Served vs offline throughput: `python -m fcn.bench.serve --run RUN --images DIR`.

Offline: the Predictor every command uses, predict_each over the decoded images in batches
of --max-batch (what `infer` does between reading files and writing them), images/s,
measured again right before each served row (a shared machine's load drifts).
Served: the same Predictor behind `serve`'s app (uvicorn in a thread, 127.0.0.1, a free
port); C clients (each its own keep-alive connection) POST the images' PNG bytes to
/v1/segment?output=mask and read the mask PNG back, --requests in all; images/s over the wall
time, and each request's latency p50 / p99. The served path adds PNG decoding and encoding,
HTTP and the batcher's wait: the ratio says what serving costs.
"""

import argparse
import glob
import http.client
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fcn import data
from fcn.serving import server
from fcn.serving.app import create_app


def offline_rate(model, images, batch, repeats=2):
    """images/s of model.predict_each over `images` in chunks of `batch` (best of repeats)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            model.predict_each(images[i : i + batch])
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def _client(url, bodies, latencies):
    host, port = url.rsplit("/", 1)[-1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        for body in bodies:
            start = time.perf_counter()
            conn.request("POST", "/v1/segment?output=mask", body=body)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the server answered {response.status}")
            latencies.append(time.perf_counter() - start)
    finally:
        conn.close()


def served_rate(url, bodies, clients, requests):
    """(images/s, p50 s, p99 s) of `requests` requests from `clients` concurrent clients."""
    jobs = [bodies[i % len(bodies)] for i in range(requests)]
    latencies = []
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(_client, url, jobs[c::clients], latencies) for c in range(clients)]
        for f in futures:
            f.result()
    seconds = time.perf_counter() - start
    p50, p99 = np.percentile(latencies, [50, 99])
    return requests / seconds, float(p50), float(p99)


def measure(opts, paths, clients=(1, 4, 8), requests=64, log=print):
    """Rows of {clients, served_img_s, p50_ms, p99_ms, offline_img_s, ratio}."""
    bodies = [open(p, "rb").read() for p in paths]
    images = [data.read_image(p, warn=None) for p in paths]
    rows = []
    model, how = server.open_model(opts)
    with model:
        # Offline images: as many as a served row sends, so both take about as long.
        stack = (images * (requests // len(images) + 1))[:requests]
        model.predict_each(stack[: opts.max_batch])  # kernel selection is not throughput
        service = server.make_service(model, opts, how)
        sock = server.bind(opts.host, 0)
        url = server.address(sock)
        uv = server.uvicorn_server(create_app(service))
        thread = threading.Thread(target=uv.run, kwargs=dict(sockets=[sock]), daemon=True)
        thread.start()
        while not uv.started:
            time.sleep(0.05)
        try:
            served_rate(url, bodies[:1], 1, 2)  # warm the server's path
            for c in clients:
                # Offline right before each served row: on a shared machine the load changes
                # from minute to minute, and a ratio should compare neighbours in time.
                offline = offline_rate(model, stack, opts.max_batch, repeats=1)
                rate, p50, p99 = served_rate(url, bodies, c, requests)
                rows.append(
                    dict(
                        clients=c,
                        served_img_s=rate,
                        p50_ms=p50 * 1000,
                        p99_ms=p99 * 1000,
                        offline_img_s=offline,
                        ratio=rate / offline,
                    )
                )
                log(
                    f"{c} clients: {rate:.2f} images/s ({rate / offline:.0%} of offline "
                    f"{offline:.2f} just before), p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
                )
        finally:
            uv.should_exit = True
            thread.join(60)
    return rows


def format_table(rows):
    lines = [
        "| clients | served images/s | p50 ms | p99 ms | offline images/s | served / offline |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['clients']} | {r['served_img_s']:.2f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['offline_img_s']:.2f} | {r['ratio']:.0%} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fcn.bench.serve", description=__doc__)
    parser.add_argument("--run", required=True, help="training run folder or export folder")
    parser.add_argument("--images", required=True, help="folder of PNG/JPEG frames to send")
    parser.add_argument("--clients", default="1,4,8", help="concurrent clients, comma-separated")
    parser.add_argument("--requests", type=int, default=64, help="requests per client count")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args(argv)
    from fcn import tfquiet

    tfquiet.tensorflow()
    paths = data.images_in(args.images) or sorted(glob.glob(os.path.join(args.images, "*")))
    opts = server.ServeOptions(
        run=args.run,
        port=0,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        precision=args.precision,
        queue=max(64, 2 * args.max_batch),
    )
    clients = tuple(int(c) for c in args.clients.split(","))
    rows = measure(opts, paths, clients, args.requests, log=lambda s: print(s, flush=True))
    print(format_table(rows))


if __name__ == "__main__":
    main()
