"""`python main.py serve` on the tiny trained run: the same pixels as `infer`, under load, faults
and SIGTERM. Every server listens on 127.0.0.1 at a free port and is stopped by its test; every
loop is bounded in count and time."""

import base64
import contextlib
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_report import _DevTools, needs_chromium

from conftest import KITTI_SAMPLE
from fcn import data
from fcn.errors import UserError
from fcn.inference import infer
from fcn.inference.predictor import Predictor
from fcn.serving import codecs, server
from fcn.serving.app import create_app
from fcn.serving.batcher import Batcher, QueueFull

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KITTI_FRAMES = sorted(glob.glob(os.path.join(KITTI_SAMPLE, "data_road", "*", "image_2", "*.png")))
needs_kitti = pytest.mark.skipif(not KITTI_FRAMES, reason=f"no KITTI sample at {KITTI_SAMPLE}")
LIMIT_S = 30  # any one request


class Client:
    """One keep-alive HTTP connection to the server: request -> (status, headers, body)."""

    def __init__(self, url):
        host, port = url.rsplit("/", 1)[-1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=LIMIT_S)

    def request(self, method, path, body=None):
        self.conn.request(method, path, body=body)
        response = self.conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def close(self):
        self.conn.close()


def call(url, method, path, body=None):
    client = Client(url)
    try:
        return client.request(method, path, body)
    finally:
        client.close()


class Running:
    """A Service served by uvicorn in a thread, on 127.0.0.1 at a free port."""

    def __init__(self, service):
        self.service = service
        sock = server.bind("127.0.0.1", 0)
        self.url = server.address(sock)
        self.uvicorn = server.uvicorn_server(create_app(service))
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs=dict(sockets=[sock]))
        self.thread.start()
        deadline = time.monotonic() + LIMIT_S
        while not self.uvicorn.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)

    def stop(self):
        self.uvicorn.should_exit = True
        self.thread.join(LIMIT_S)
        assert not self.thread.is_alive(), "server did not stop"


@contextlib.contextmanager
def serving(opts):
    """The model `opts` names, served on 127.0.0.1 at a free port; stopped and closed after."""
    model, how = server.open_model(opts)
    with model:
        running = Running(server.make_service(model, opts, how))
        try:
            yield running
        finally:
            running.stop()


def _options(run, **changes):
    return server.ServeOptions(run=run, precision="float32", port=0, **changes)


@pytest.fixture(scope="module")
def frames(synth_data, tmp_path_factory):
    """Paths of real KITTI frames (four sizes) and the synthetic test images (two more), the
    latter copied as synth_<name> (the sample has a um_000000.png too)."""
    folder = tmp_path_factory.mktemp("synth_frames")
    synth = []
    for path in sorted(glob.glob(os.path.join(synth_data, "data_road", "testing", "image_2", "*"))):
        synth.append(str(folder / ("synth_" + os.path.basename(path))))
        shutil.copy(path, synth[-1])
    return KITTI_FRAMES + synth


@pytest.fixture(scope="module")
def offline(trained_run, frames, tmp_path_factory):
    """What `infer` writes for each frame: {path: (overlay, prob, mask)} read back from disk."""
    out = tmp_path_factory.mktemp("infer")
    opts = infer.InferOptions(
        run=trained_run,
        inputs=tuple(frames),
        out=str(out),
        save_prob=True,
        save_mask=True,
        precision="float32",
    )
    infer.run_inference(opts, log=lambda *a: None)
    written = {}
    for path in frames:
        stem = os.path.join(str(out), os.path.splitext(os.path.basename(path))[0])
        overlay = cv2.cvtColor(cv2.imread(stem + ".png"), cv2.COLOR_BGR2RGB)
        read = [
            cv2.imread(stem + suffix, cv2.IMREAD_UNCHANGED) for suffix in ("_prob.png", "_mask.png")
        ]
        written[path] = (overlay, *read)
    return written


@pytest.fixture(scope="module")
def model(trained_run):
    opened, _ = server.open_model(_options(trained_run))
    with opened:
        yield opened


# KITTI frames: ~860 kB, 375 x 1242 = 465,750 pixels. Limits above a request of 7 of them,
# and cheap to exceed on loopback.
MAX_BODY_MB, MAX_PIXELS = 12, 600_000


@pytest.fixture(scope="module")
def served(model, trained_run):
    opts = _options(trained_run, max_body_mb=MAX_BODY_MB, max_pixels=MAX_PIXELS, queue=64)
    running = Running(server.make_service(model, opts))
    yield running
    running.stop()


def _png(body):
    return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _one_line_error(status, body, expected):
    assert status == expected, body
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body
    message = json.loads(body)["error"]
    assert message and "\n" not in message
    return message


# ---------------------------------------------------------------- codecs


def test_codecs_read_headers_and_decode_as_read_image(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    for ext in (".png", ".jpg", ".tif"):
        path = str(tmp_path / ("i" + ext))
        cv2.imwrite(path, image)
        encoded = _read(path)
        # PNG's IHDR and JPEG's SOF give (H, W) before decoding; TIFF is checked after.
        assert codecs.declared_size(encoded) == (None if ext == ".tif" else (3, 5))
        np.testing.assert_array_equal(
            codecs.decode_image(encoded, max_pixels=15), data.read_image(path, warn=None)
        )
        with pytest.raises(codecs.TooLarge, match="5x3 = 15 pixels, over --max-pixels 14"):
            codecs.decode_image(encoded, max_pixels=14)
    # A JPEG without its end marker is cut off, as read_image says for a file.
    with pytest.raises(codecs.RequestError, match="truncated"):
        codecs.decode_image(_read(str(tmp_path / "i.jpg"))[:-2], max_pixels=15)
    # 16-bit grey -> 8-bit RGB: 0x1234 >> 8 = 0x12.
    grey16 = np.full((2, 2), 0x1234, np.uint16)
    ok, buf = cv2.imencode(".png", grey16)
    np.testing.assert_array_equal(codecs.decode_image(buf.tobytes(), 4), np.full((2, 2, 3), 18))


def test_class_shares_hand_worked():
    # 1 of 4 pixels not road, 3 road.
    shares = codecs.class_shares(np.array([[0, 1], [1, 1]], np.uint8), data.KITTI_ROAD)
    assert shares == [
        dict(id=0, name="not_road", color=None, share=0.25),
        dict(id=1, name="road", color=[0, 255, 0], share=0.75),
    ]


# ---------------------------------------------------------------- the batcher alone


class Recording(Predictor):
    """Records each batch's images' tags (their first pixel); mask = the tag everywhere."""

    spec = data.KITTI_ROAD
    network_size = (4, 4)

    def __init__(self):
        self.batches = []

    def _predict_batch(self, batch, threshold):
        self.batches.append([int(image[0, 0, 0]) for image in batch])
        mask = np.broadcast_to(batch[:, :1, :1, 0], batch.shape[:3]).astype(np.uint8)
        return np.zeros((*batch.shape[:3], 2), np.float32), mask


def test_batcher_groups_one_size_in_arrival_order():
    recording = Recording()
    batcher = Batcher(recording, max_batch=2, max_wait_s=0.05, capacity=6)
    # Tags 1..5: sizes A B A A A, all queued before the worker starts.
    sizes = [(2, 3), (3, 2), (2, 3), (2, 3), (2, 3)]
    images = [np.full((*size, 3), tag, np.uint8) for tag, size in enumerate(sizes, 1)]
    futures = batcher.submit(images[:4])
    with pytest.raises(QueueFull, match="4 images are queued"):
        batcher.submit(images[:3])  # 4 + 3 > 6: none of the three is queued
    assert batcher.depth == 4
    (cancelled,) = batcher.submit(images[4:])
    assert cancelled.cancel()  # its request timed out before the worker took it
    batcher.start()
    results = [f.result(LIMIT_S) for f in futures]
    batcher.stop(LIMIT_S)
    # [1, 3]: the first A and the next A (B, met on the way, is held); [2]: B, held first (it
    # waits 50 ms for another B, holding 4 and 5); [4]: 4 taken with 5, whose cancelled
    # Future is dropped unpredicted.
    assert recording.batches == [[1, 3], [2], [4]]
    for tag, (_, mask, info) in enumerate(results, 1):
        assert mask.shape == sizes[tag - 1] and (mask == tag).all()
        assert info["batch"] == (2 if tag in (1, 3) else 1)
    assert batcher.depth == 0


# ---------------------------------------------------------------- the same pixels as infer


@needs_kitti
def test_segment_outputs_equal_infer(served, frames, offline):
    client = Client(served.url)
    try:
        for path in frames[::3] + frames[-2:]:  # every size: KITTI's four, the synthetic two
            overlay, prob, mask = offline[path]
            body = _read(path)
            status, headers, answer = client.request("POST", "/v1/segment?output=mask", body)
            assert status == 200 and headers["content-type"] == "image/png"
            np.testing.assert_array_equal(_png(answer), mask)
            status, _, answer = client.request("POST", "/v1/segment?output=overlay", body)
            np.testing.assert_array_equal(cv2.cvtColor(_png(answer), cv2.COLOR_BGR2RGB), overlay)
            status, _, answer = client.request("POST", "/v1/segment?output=prob", body)
            np.testing.assert_array_equal(_png(answer), prob)
            status, _, answer = client.request("POST", "/v1/segment?output=json", body)
            shares = json.loads(answer)["classes"]
            road = np.count_nonzero(mask == 1) / mask.size
            assert [c["name"] for c in shares] == ["not_road", "road"]
            assert shares[1]["share"] == pytest.approx(road, abs=1e-12)
    finally:
        client.close()


def _b64(path):
    return {"b64": base64.b64encode(_read(path)).decode()}


@needs_kitti
def test_predict_mixed_sizes_equal_infer(served, frames, offline):
    # Six sizes in one request: the batcher predicts each size's images together.
    chosen = [frames[0], frames[4], frames[-1], frames[1], frames[5], frames[-2], frames[15]]
    body = json.dumps({"instances": [_b64(p) for p in chosen]})
    status, _, answer = call(served.url, "POST", "/v1/models/fcn:predict", body)
    assert status == 200, answer
    masks = json.loads(answer)["predictions"]  # serving_default: the masks bare
    assert len(masks) == len(chosen)
    for path, mask in zip(chosen, masks, strict=True):
        np.testing.assert_array_equal(np.array(mask, np.uint8), offline[path][2])
    # The probabilities signature (on the small synthetic images: 27,000 pixels x 2 classes).
    chosen = frames[-3:]
    body = json.dumps({"signature_name": "probabilities", "instances": [_b64(p) for p in chosen]})
    status, _, answer = call(served.url, "POST", "/v1/models/fcn:predict", body)
    predictions = json.loads(answer)["predictions"]
    for path, prediction in zip(chosen, predictions, strict=True):
        _, prob, mask = offline[path]
        np.testing.assert_array_equal(np.array(prediction["mask"], np.uint8), mask)
        probs = np.array(prediction["probabilities"])
        assert probs.shape == (*mask.shape, 2)
        np.testing.assert_allclose(probs.sum(-1), 1, atol=2e-6)
        # rint(p * 255) is infer's _prob.png, but for p within 5e-7 (the rounding to 6
        # decimals) of a (k + .5) / 255 the rounded p may land on the other side.
        assert np.mean(np.rint(probs[..., 1] * 255) == prob) > 0.999


def test_predict_columnar_pixels(served, frames, offline):
    # TF Serving's columnar form, one image as a nested (H, W, 3) list under the input's name.
    path = frames[-1]
    pixels = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    body = json.dumps({"inputs": {"images": pixels.tolist()}})
    status, _, answer = call(served.url, "POST", "/v1/models/fcn:predict", body)
    assert status == 200, answer
    (mask,) = json.loads(answer)["outputs"]  # serving_default: the masks bare
    np.testing.assert_array_equal(np.array(mask, np.uint8), offline[path][2])


def test_status_and_metadata(served):
    status, _, answer = call(served.url, "GET", "/v1/models/fcn")
    assert status == 200
    assert json.loads(answer)["model_version_status"][0]["state"] == "AVAILABLE"
    status, _, answer = call(served.url, "GET", "/v1/models/fcn/metadata")
    meta = json.loads(answer)["metadata"]
    sigs = meta["signature_def"]["signature_def"]
    assert sorted(sigs) == ["probabilities", "serving_default"]
    assert sorted(sigs["probabilities"]["outputs"]) == ["mask", "probabilities"]
    facts = meta["fcn"]
    assert facts["classes"] == ["not_road", "road"] and facts["network_size"] == [64, 192]
    assert facts["prediction"] == {"predict": "whole", "overlap": None, "scales": [1.0]}
    assert facts["backend"] == "tf" and facts["precision"] == "float32"
    status, _, page = call(served.url, "GET", "/")
    assert status == 200 and b'type="file"' in page and b"http" not in page.split(b"<body>")[1]


# ---------------------------------------------------------------- load, and faults in between

CLIENTS = 8
# Good requests in the first phase and in the second (with one bad one in every four): ~200
# real frames in all, the 20 KITTI frames over and over.
REQUESTS = (120, 80)


def _load(url, jobs, offline):
    """Each of CLIENTS threads sends its share of jobs [(path or None, path, body, expected
    status)] on its own connection; returns [(path, status, problem or None)]."""

    def client(share):
        c, out = Client(url), []
        try:
            for path, body, expected in share:
                try:
                    status, _, answer = c.request("POST", "/v1/segment?output=mask", body)
                except (OSError, http.client.HTTPException) as e:
                    out.append((path, None, f"{type(e).__name__}: {e}"))
                    c.close()
                    c = Client(url)
                    continue
                problem = None
                if status != expected:
                    problem = f"{status} instead of {expected}: {answer[:200]!r}"
                elif status == 200 and not np.array_equal(_png(answer), offline[path][2]):
                    problem = "a mask that is not its image's"
                elif status != 200:
                    _one_line_error(status, answer, expected)
                if status == 413:  # the server closes a connection whose body it cut off
                    c.close()
                    c = Client(url)
                out.append((path, status, problem))
        finally:
            c.close()
        return out

    with ThreadPoolExecutor(CLIENTS) as pool:
        shares = [jobs[i::CLIENTS] for i in range(CLIENTS)]
        return [r for rs in pool.map(client, shares) for r in rs]


@needs_kitti
def test_load_eight_clients_then_faults_in_between(served, frames, offline):
    bodies = {p: _read(p) for p in KITTI_FRAMES}
    cycle = KITTI_FRAMES * 10
    good = [(p, bodies[p], 200) for p in cycle[: REQUESTS[0]]]
    before = _metric(served.url, "fcn_serve_batch_size")["fcn_serve_batch_size_count"]
    results = _load(served.url, good, offline)
    assert [r for r in results if r[2]] == [] and len(results) == REQUESTS[0]
    # Concurrent clients share batches: fewer forward passes than images.
    batches = _metric(served.url, "fcn_serve_batch_size")["fcn_serve_batch_size_count"] - before
    assert batches < REQUESTS[0]

    big = np.zeros((1000, 1000, 3), np.uint8)  # 1e6 pixels, over MAX_PIXELS
    bad = [
        (None, b"not an image", 400),
        (None, bodies[KITTI_FRAMES[0]][:5000], 400),  # a truncated PNG
        (None, b"", 400),
        (None, codecs.encode_png(big), 413),
        (None, os.urandom(int(MAX_BODY_MB * (1 << 20)) + 1), 413),
    ]
    mixed = []
    for i, job in enumerate(good[: REQUESTS[1]]):
        mixed.append(job)
        if i % 4 == 0:
            mixed.append(bad[(i // 4) % len(bad)])
    results = _load(served.url, mixed, offline)
    assert [r for r in results if r[2]] == []
    assert sum(r[1] == 200 for r in results) == REQUESTS[1]
    assert sum(r[1] in (400, 413) for r in results) == REQUESTS[1] // 4


def _metric(url, family):
    """{sample name with labels: value} of one metric family at /metrics."""
    status, headers, text = call(url, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    (found,) = [f for f in text_string_to_metric_families(text.decode()) if f.name == family]
    return {
        s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()) if k != "le"): s.value
        for s in found.samples
        if "le" not in s.labels
    }


def test_bad_requests_name_the_problem(served, frames):
    path = frames[-1]
    cases = [
        ("POST", "/v1/segment?output=png", _read(path), 400, "output='png' is unknown"),
        ("POST", "/v1/models/fcn:predict", b"{", 400, "not JSON"),
        ("POST", "/v1/models/fcn:predict", b'{"instances": []}', 400, "non-empty list"),
        ("POST", "/v1/models/fcn:predict", b'{"instances": [{"b64": "%%"}]}', 400, "base64"),
        ("POST", "/v1/models/fcn:predict", b'{"instances": [{"jpg": "x"}]}', 400, "keys jpg"),
        ("POST", "/v1/models/fcn:predict", b'{"inputs": [[[1, 2]]]}', 400, "shape (1, 1, 2)"),
        ("POST", "/v1/models/fcn:predict", b'{"inputs": [[[300, 0, 0]]]}', 400, "0..255"),
        ("POST", "/v1/models/fcn:predict", b'{"instances": [[[[1, 2, 3]]]], "inputs": 1}', 400,
         "exactly one"),
        ("POST", "/v1/models/fcn:predict", b'{"signature_name": "x", "instances": []}', 400,
         "unknown signature_name"),
        ("GET", "/v1/models/other", None, 404, "no model 'other'"),
        ("GET", "/v1/segment", None, 405, "Method Not Allowed"),
        ("GET", "/nothing", None, 404, "Not Found"),
    ]  # fmt: skip
    for method, where, body, expected, says in cases:
        status, _, answer = call(served.url, method, where, body)
        assert says in _one_line_error(status, answer, expected), (where, body)


# ---------------------------------------------------------------- a full queue, a timeout


class Gated(Predictor):
    """The run's predictor behind a gate: a batch waits until the test opens it."""

    def __init__(self, inner):
        self.inner = inner
        for name in ("config", "spec", "network_size", "threshold", "precision", "source"):
            setattr(self, name, getattr(inner, name))
        self.batch_size = inner.batch_size
        self.gate, self.entered = threading.Event(), threading.Event()

    def _predict_batch(self, batch, threshold):
        self.entered.set()
        assert self.gate.wait(LIMIT_S)
        return self.inner._predict_batch(batch, threshold)


@pytest.fixture
def gated(model, trained_run):
    predictor = Gated(model)
    opts = _options(trained_run, max_batch=1, queue=2, timeout_s=1.0)
    running = Running(server.make_service(predictor, opts))
    yield running, predictor
    predictor.gate.set()
    running.stop()


def _segment_soon(pool, url, body):
    return pool.submit(call, url, "POST", "/v1/segment?output=mask", body)


def test_full_queue_503_then_timeout_504(gated, frames, offline):
    running, predictor = gated
    path = frames[-1]
    body = _read(path)
    with ThreadPoolExecutor(2) as pool:
        # A is being predicted (the gate holds it), B waits: the queue of 2 is full.
        a = _segment_soon(pool, running.url, body)
        assert predictor.entered.wait(LIMIT_S)
        b = _segment_soon(pool, running.url, body)
        deadline = time.monotonic() + LIMIT_S
        while running.service.batcher.depth < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, headers, answer = call(running.url, "POST", "/v1/segment?output=mask", body)
        assert "busy" in _one_line_error(status, answer, 503)
        assert headers["retry-after"] == "1"
        predictor.gate.set()  # A and B are answered, with their masks
        for future in (a, b):
            status, _, answer = future.result(LIMIT_S)
            assert status == 200
            np.testing.assert_array_equal(_png(answer), offline[path][2])
        # Closed again: C waits longer than --timeout-s 1 and is answered 504 ...
        predictor.gate.clear()
        predictor.entered.clear()
        status, _, answer = call(running.url, "POST", "/v1/segment?output=mask", body)
        assert "--timeout-s 1" in _one_line_error(status, answer, 504)
        predictor.gate.set()
        # ... and the server goes on: D gets its mask, and the queue is empty again.
        status, _, answer = call(running.url, "POST", "/v1/segment?output=mask", body)
        assert status == 200
        np.testing.assert_array_equal(_png(answer), offline[path][2])
    counts = _metric(running.url, "fcn_serve_requests")
    assert counts == {
        "fcn_serve_requests_total,code=200,endpoint=segment": 3.0,
        "fcn_serve_requests_total,code=503,endpoint=segment": 1.0,
        "fcn_serve_requests_total,code=504,endpoint=segment": 1.0,
        **{k: v for k, v in counts.items() if "metrics" in k},
    }
    assert _metric(running.url, "fcn_serve_queue_depth") == {"fcn_serve_queue_depth": 0.0}
    assert _metric(running.url, "fcn_serve_images") == {"fcn_serve_images_total": 3.0}


# ---------------------------------------------------------------- SIGTERM under load


@needs_kitti
def test_sigterm_finishes_requests_in_flight_and_exits_0(trained_run, offline):
    # --max-batch 64 --max-wait-ms 2000: 8 clients never fill a batch, so each request sits
    # in the batcher for 2 s, surely in flight when SIGTERM comes 1 s after the last is sent.
    command = [sys.executable, "-u", os.path.join(ROOT, "main.py"), "serve", "--run", trained_run]
    command += ["--port", "0", "--precision", "float32", "--max-batch", "64"]
    command += ["--max-wait-ms", "2000"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode()  # the first line printed: where it listens
        assert "loopback only" in line, line
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        paths = KITTI_FRAMES[:CLIENTS]
        with ThreadPoolExecutor(CLIENTS) as pool:
            sent = [_segment_soon(pool, url, _read(p)) for p in paths]
            time.sleep(1.0)
            assert not any(f.done() for f in sent)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(ConnectionRefusedError):  # no new connection is accepted
                call(url, "GET", "/v1/models/fcn")
            for path, future in zip(paths, sent, strict=True):
                status, _, answer = future.result(LIMIT_S)
                assert status == 200
                np.testing.assert_array_equal(_png(answer), offline[path][2])
        assert proc.wait(LIMIT_S) == 0
        rest = proc.stdout.read().decode()
        assert "every request in flight was answered (SIGTERM)" in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the page in a browser

# What the page shows once its answer is in: the overlay decoded, the legend's text, the time.
_SHOWN = """(() => {
  const img = document.querySelector(".result img.overlay");
  const legend = document.querySelector(".result .legend");
  const time = document.querySelector(".result .time");
  const error = document.querySelector(".result .error");
  return {width: img && img.complete ? img.naturalWidth : 0,
          height: img && img.complete ? img.naturalHeight : 0,
          legend: legend ? legend.textContent : null, swatches: legend ?
            Array.from(legend.querySelectorAll(".swatch")).map(s => s.style.background) : [],
          time: time ? time.textContent : null, error: error ? error.textContent : null};
})()"""


@needs_kitti
@needs_chromium
def test_page_in_chromium(served, tmp_path):
    browser = _DevTools(str(tmp_path / "chromium-profile"))
    try:
        browser._events = []
        browser.call("Page.navigate", session=browser.session, url=served.url + "/")
        deadline = time.monotonic() + LIMIT_S
        while not any(e.get("method") == "Page.loadEventFired" for e in browser._events):
            browser._events.append(browser._read(deadline))
        # Pick a real frame through the file input, as a person would.
        root = browser.call("DOM.getDocument", session=browser.session)["root"]["nodeId"]
        node = browser.call(
            "DOM.querySelector", session=browser.session, nodeId=root, selector="#files"
        )["nodeId"]
        frame = os.path.abspath(KITTI_FRAMES[0])
        browser.call("DOM.setFileInputFiles", session=browser.session, nodeId=node, files=[frame])
        shown = browser.evaluate(_SHOWN)
        while not (shown["width"] and shown["legend"]) and not shown["error"]:
            assert time.monotonic() < deadline, shown
            time.sleep(0.1)
            shown = browser.evaluate(_SHOWN)
        assert shown["error"] is None
        assert (shown["height"], shown["width"]) == cv2.imread(frame).shape[:2]
        assert shown["legend"].strip().startswith("road ") and shown["legend"].endswith("%")
        assert shown["swatches"] == ["rgb(0, 255, 0)"]  # KITTI's road green; not_road unpainted
        assert " ms in all" in shown["time"]
    finally:
        browser.close()


# ---------------------------------------------------------------- windowed prediction


def test_slide_prediction_is_passed_through(trained_run, frames, tmp_path):
    # --predict slide at scales 1,2: the synthetic 90x300 images are cut into 64x192 windows.
    synth = [p for p in frames if "synth_" in p]
    settings = dict(predict="slide", overlap=0.5, scales=(1.0, 2.0))
    opts = infer.InferOptions(
        run=trained_run,
        inputs=tuple(synth),
        out=str(tmp_path),
        save_mask=True,
        precision="float32",
        **settings,
    )
    infer.run_inference(opts, log=lambda *a: None)
    serve_opts = _options(trained_run, **settings)
    with serving(serve_opts) as running:
        status, _, answer = call(running.url, "GET", "/v1/models/fcn/metadata")
        facts = json.loads(answer)["metadata"]["fcn"]
        assert facts["prediction"] == {"predict": "slide", "overlap": 0.5, "scales": [1, 2]}
        for path in synth:
            status, _, answer = call(running.url, "POST", "/v1/segment", _read(path))
            stem = os.path.splitext(os.path.basename(path))[0]
            written = cv2.imread(str(tmp_path / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert status == 200
            np.testing.assert_array_equal(_png(answer), written)


# ---------------------------------------------------------------- options


def test_serve_flags_and_their_checks():
    from fcn import cli

    argv = ["serve", "--run", "r", "--max-wait-ms", "5", "--scales", "1,2", "--port", "0"]
    opts = server.ServeOptions.from_args(cli.build_parser(only="serve").parse_args(argv))
    assert (opts.run, opts.host, opts.max_wait_ms, opts.scales) == ("r", "127.0.0.1", 5.0, (1, 2))
    assert opts.limits().max_wait_s == 0.005 and opts.limits().max_body == 64 << 20
    for changes, says in [
        (dict(port=70000), "--port must be in [0, 65535], got 70000"),
        (dict(max_batch=0), "--max-batch must be >= 1, got 0"),
        (dict(queue=0), "--queue must be >= 1, got 0"),
        (dict(timeout_s=0), "--timeout-s must be > 0, got 0"),
        (dict(name="a/b"), "--name 'a/b'"),
        (dict(predict="tiles"), "--predict 'tiles' is not one of"),
    ]:
        with pytest.raises(UserError, match=re.escape(says)):
            server.ServeOptions(run="r", **changes)
    taken = server.bind("127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match="pick another --port"):
            server.bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
