"""The Starlette app: TF Serving's REST routes, /v1/segment, the page and /metrics.

    GET  /v1/models/NAME                  TF Serving's model status
    GET  /v1/models/NAME/metadata         its signatures, plus the model's classes, palette,
                                          network size, prediction mode and backend
    POST /v1/models/NAME:predict          TF Serving's predict request (fcn.serving.codecs)
    POST /v1/segment?output=mask|overlay|prob|json   an image body (PNG, JPEG, TIFF) ->
                                          a PNG of class ids, the overlay infer paints, the
                                          positive class's 8-bit probability, or JSON with
                                          class shares and timings (&overlay=1: the overlay too)
    GET  /                                the page (fcn.serving.page)
    GET  /metrics                         Prometheus text (fcn.serving.metrics)

Every refusal is one line of JSON, {"error": "..."}: 400 a bad body or field, 404 another
model's name, 413 a body or image over the limits, 503 a full queue (with Retry-After), 504 a
request that waited longer than timeout_s. Each is the request's own: the batcher goes on.
"""

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fcn.data import task
from fcn.errors import UserError
from fcn.evaluation.kitti import devkit
from fcn.inference import overlays
from fcn.serving import codecs, page
from fcn.serving.batcher import Batcher, QueueFull
from fcn.serving.metrics import CONTENT_TYPE, ServeMetrics

OUTPUTS = ("mask", "overlay", "prob", "json")
RETRY_AFTER_S = 1  # a full queue drains in about a batch's time
_DRAIN_FACTOR = 4  # an oversized body is read (and dropped) up to 4x the limit, then cut off


@dataclass(frozen=True)
class Limits:
    max_batch: int = 8
    max_wait_s: float = 0.01
    queue: int = 64
    max_pixels: int = 40_000_000
    max_body: int = 64 << 20  # bytes
    timeout_s: float = 30.0


class _Timeout(codecs.RequestError):
    status = 504


class _Busy(codecs.RequestError):
    status = 503


class Service:
    """The model behind the routes: its Predictor (owned by the batcher's thread), the limits,
    what the metadata reports, and the metrics."""

    def __init__(self, predictor, name, limits, alpha, threshold=None, about=None):
        self.predictor, self.name, self.limits, self.alpha = predictor, name, limits, alpha
        self.spec = predictor.spec
        self.about = dict(about or {})
        self.batcher = Batcher(
            predictor, limits.max_batch, limits.max_wait_s, limits.queue, threshold
        )
        self.metrics = ServeMetrics(limits.max_batch, lambda: self.batcher.depth)
        self.batcher.on_batch = self.metrics.batch_size.observe

    async def predict(self, images):
        """[(probs, mask, info)] of the images, batched with whatever else is in flight."""
        try:
            futures = self.batcher.submit(images)
        except QueueFull as e:
            raise _Busy(f"the server is busy: {e}; retry after {RETRY_AFTER_S} s") from None
        waiting = [asyncio.wrap_future(f) for f in futures]
        try:
            results = await asyncio.wait_for(asyncio.gather(*waiting), self.limits.timeout_s)
        except TimeoutError:
            for f in futures:
                f.cancel()
            raise _Timeout(
                f"no answer within --timeout-s {self.limits.timeout_s:g}; retry later"
            ) from None
        except UserError as e:
            raise codecs.RequestError(str(e)) from None
        self.metrics.images.inc(len(images))
        return results

    async def read_body(self, request):
        """The whole body, or TooLarge past max_body (the rest read and dropped up to a point,
        so the client can read the 413 before the connection closes)."""
        limit = self.limits.max_body
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > _DRAIN_FACTOR * limit:
                break
        if size > limit:
            raise codecs.TooLarge(
                f"the body is over --max-body-mb {limit / (1 << 20):g} ({limit} bytes); send less"
            )
        return b"".join(chunks)

    def check_name(self, request):
        name = request.path_params["name"]
        if name != self.name:
            raise _NotFound(f"no model {name!r} here; this server serves {self.name!r}")


class _NotFound(codecs.RequestError):
    status = 404


def _error(status, message, headers=None):
    body = json.dumps({"error": message}).encode() + b"\n"
    return Response(body, status, headers=headers, media_type="application/json")


def _json(payload, status=200):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Response(body, status, media_type="application/json")


def _endpoint(service, name, handler):
    """handler(service, request) -> Response, with its refusals as one-line JSON errors and
    every answer counted and timed in the metrics."""

    async def route(request):
        start = time.monotonic()
        try:
            response = await handler(service, request)
        except codecs.RequestError as e:
            headers = {"Retry-After": str(RETRY_AFTER_S)} if e.status == 503 else None
            response = _error(e.status, str(e), headers)
        except Exception as e:  # a bug, not the client's: one line, and the server goes on
            response = _error(500, f"internal error: {type(e).__name__}: {str(e)[:200]}")
        service.metrics.observe(name, response.status_code, time.monotonic() - start)
        return response

    return route


async def _status(service, request):
    service.check_name(request)
    ok = {"error_code": "OK", "error_message": ""}
    return _json({"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": ok}]})


def _tensor(dtype, dims):
    return dict(
        dtype=dtype, tensor_shape=dict(dim=[{"size": str(d)} for d in dims], unknown_rank=False)
    )


def metadata(service):
    """TF Serving's metadata: each signature's inputs and outputs, plus the model's facts."""
    classes = len(service.spec.class_names)
    outputs = {codecs.MASK: _tensor("DT_UINT8", (-1, -1, -1))}
    signatures = {}
    for sig, names in codecs.SIGNATURES.items():
        outs = dict(outputs)
        if codecs.PROBS in names:
            outs[codecs.PROBS] = _tensor("DT_FLOAT", (-1, -1, -1, classes))
        signatures[sig] = dict(
            inputs={codecs.INPUT_NAME: _tensor("DT_STRING", (-1,))},
            outputs=outs,
            method_name="tensorflow/serving/predict",
        )
    p = service.predictor
    model = dict(
        classes=list(service.spec.class_names),
        palette=[None if c is None else list(c) for c in service.spec.palette],
        task=service.spec.task,
        network_size=list(p.network_size),
        precision=p.precision,
        tta=p.tta,
        backend=p.backend,
        source=str(p.source),
        **service.about,
    )
    return dict(
        model_spec=dict(name=service.name, signature_name="", version="1"),
        metadata=dict(signature_def=dict(signature_def=signatures), fcn=model),
    )


async def _metadata(service, request):
    service.check_name(request)
    return _json(metadata(service))


async def _predict(service, request):
    service.check_name(request)
    body = await service.read_body(request)
    lim = service.limits
    images, signature, columnar = await run_in_threadpool(
        codecs.parse_predict, body, lim.max_pixels, lim.queue
    )
    results = await service.predict(images)
    pairs = [(probs, mask) for probs, mask, _ in results]
    return _json(await run_in_threadpool(codecs.predict_response, pairs, signature, columnar))


def _segment_answer(service, output, image, probs, mask, info, timings, with_overlay):
    """The bytes and media type /v1/segment answers with (run in a worker thread)."""
    if output == "mask":
        return codecs.encode_png(mask), "image/png"
    if output == "prob":
        positive = task.positive_probs(probs, service.spec)  # infer's _prob.png
        return codecs.encode_png(devkit.probability_to_uint8(positive)), "image/png"
    shown = overlays.paint_with_legend(image, mask, service.spec, service.alpha)
    if output == "overlay":
        return codecs.encode_png(shown), "image/png"
    payload = dict(
        model=service.name,
        size=list(mask.shape),
        classes=codecs.class_shares(mask, service.spec),
        batch=info["batch"],
        timings_ms={k: round(v * 1000, 2) for k, v in timings.items()},
    )
    if with_overlay:
        payload["overlay_png"] = base64.b64encode(codecs.encode_png(shown)).decode()
    return json.dumps(payload).encode(), "application/json"


async def _segment(service, request):
    start = time.monotonic()
    output = request.query_params.get("output", "mask")
    if output not in OUTPUTS:
        raise codecs.RequestError(f"output={output!r} is unknown; use one of {list(OUTPUTS)}")
    if output == "prob" and not task.is_binary(service.spec):
        raise codecs.RequestError(
            f"output=prob is the positive class's probability; {service.spec.name} is "
            "multiclass: use output=mask or json"
        )
    body = await service.read_body(request)
    image = await run_in_threadpool(codecs.decode_image, body, service.limits.max_pixels)
    decoded = time.monotonic()
    ((probs, mask, info),) = await service.predict([image])
    answered = time.monotonic()
    timings = dict(
        decode=decoded - start,
        queue=info["queue_s"],
        predict=info["predict_s"],
        total=answered - start,
    )
    with_overlay = request.query_params.get("overlay") in ("1", "true")
    content, media = await run_in_threadpool(
        _segment_answer, service, output, image, probs, mask, info, timings, with_overlay
    )
    server_timing = ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())
    headers = {"Server-Timing": server_timing, "X-Batch-Size": str(info["batch"])}
    return Response(content, media_type=media, headers=headers)


async def _page(service, request):
    return HTMLResponse(page.html_page(service.name))


async def _metrics(service, request):
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def create_app(service):
    """The ASGI app over a Service; its lifespan starts the batcher and, on shutdown (after
    uvicorn has answered every request in flight), finishes what is queued and stops it."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.batcher.stop)

    def route(path, name, handler, methods):
        return Route(path, _endpoint(service, name, handler), methods=methods)

    routes = [
        route("/v1/models/{name}:predict", "predict", _predict, ["POST"]),
        route("/v1/models/{name}/metadata", "metadata", _metadata, ["GET"]),
        route("/v1/models/{name}", "status", _status, ["GET"]),
        route("/v1/segment", "segment", _segment, ["POST"]),
        route("/metrics", "metrics", _metrics, ["GET"]),
        route("/", "page", _page, ["GET"]),
    ]

    async def unrouted(request, exc):  # Starlette's own 404 / 405, as one-line JSON too
        return _error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    handlers = {404: unrouted, 405: unrouted}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
