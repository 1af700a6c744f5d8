"""The server's Prometheus metrics, in a registry of its own (two servers in one process, as in
the tests, never share counts).

    fcn_serve_requests_total{endpoint, code}     answered requests by HTTP status
    fcn_serve_request_seconds{endpoint}          latency histogram, receipt to answer
    fcn_serve_batch_size                         images per forward pass
    fcn_serve_queue_depth                        images waiting or being predicted now
    fcn_serve_images_total                       images answered with a prediction
"""

import prometheus_client as prom

# Latency buckets (s): a tiny model on a CPU answers in milliseconds, a big one on KITTI
# frames in about a second, an overloaded server in several.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CONTENT_TYPE = prom.CONTENT_TYPE_LATEST


class ServeMetrics:
    def __init__(self, max_batch, depth):
        """depth: () -> the batcher's queue depth, read at each scrape."""
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "fcn_serve_requests",
            "answered requests by endpoint and HTTP status",
            ("endpoint", "code"),
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "fcn_serve_request_seconds",
            "seconds from receipt to answer",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = prom.Histogram(
            "fcn_serve_batch_size",
            "images per forward pass",
            buckets=tuple(range(1, max_batch + 1)),
            registry=self.registry,
        )
        queue_depth = prom.Gauge(
            "fcn_serve_queue_depth", "images waiting or being predicted", registry=self.registry
        )
        queue_depth.set_function(depth)
        self.images = prom.Counter(
            "fcn_serve_images", "images answered with a prediction", registry=self.registry
        )

    def observe(self, endpoint, code, seconds):
        self.requests.labels(endpoint, str(code)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self):
        """The Prometheus text format (bytes)."""
        return prom.generate_latest(self.registry)
