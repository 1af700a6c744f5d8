"""`python main.py serve`: a model over HTTP, TF Serving's REST API plus a page to try it.

batcher   one worker thread owns the Predictor; concurrent images of one size share a batch
codecs    image bodies, TF Serving's predict JSON in and out, PNGs
app       the Starlette routes and their one-line JSON errors
page      the HTML page at /
metrics   the Prometheus counters at /metrics
server    ServeOptions and serve(): open the model as `infer` does, run uvicorn
"""
