"""Benchmark (`python main.py bench`, whose flags are BenchOptions): training, input-pipeline
and inference images/s, and a naive baseline.

One run builds the model once and measures, at one image shape and batch size:
    train_img_s          the training loop's own path: cached split -> augmentation -> prefetch
                         thread -> feed_dict -> train step (`epochs.run_epoch`)
    train_compute_img_s  train steps on a batch handed to the session once (session tensor
                         handles): no Python, copying or feeding in the timing
    pipeline_img_s       the input pipeline alone: `epoch_batches` with augmentation through
                         `prefetch`, no model; the augmentation is the one train's flags ask for
                         (--flip-prob, --rotate-prob, --noise-prob, ...: Augmenter.from_config)
    infer_img_s          prediction through the Predictor every command uses
                         (fcn.inference.predictor): uint8 images at the network size -> class
                         probabilities and masks
    mask_agreement_float32  the share of mask pixels this precision's Predictor decides as a
                         float32 one does, on the same weights and the bench's images (1.0 when
                         the run is float32)
    naive_train_img_s    the Udacity helper's way: PNGs read and resized again for every batch,
                         one-hot in NumPy, feed_dict, a plain float32 session, no prefetching
    pipeline_fraction    (batch / pipeline_img_s) / (batch / train_img_s): the share of a step
                         the pipeline would cost if it did not overlap the step at all
    peak_rss_mb          the process's peak resident memory after our measurements (before the
                         baseline builds its own graph)
    forward_flops_per_image  FLOPs of one image's forward pass, counted by TensorFlow's profiler
                         (`float_operation`) on the network built at a static (1, H, W, 3) shape;
                         a multiply-add counts 2. Training counts 3x forward (forward, then the
                         gradients with respect to activations and to weights), the usual
                         convention; the optimizer's update is not counted
    matmul_peak_float32/_bfloat16  this machine's dense matmul FLOP/s: the median of timed
                         MATMUL_N x MATMUL_N tf.matmul runs (2 n^3 FLOPs each)
    *_peak_share         achieved FLOP/s (images/s x FLOPs per image) over the matmul peak at the
                         run's precision (None where there is no peak for it, e.g. float16)
Every figure is the median of `repeats` timings of `steps` steps, after warm-up steps that pay
for Grappler's rewrite and oneDNN's primitive creation. Without a data_road folder it writes a
small synthetic one into a temporary folder, and without --vgg-dir the encoder starts from random
weights (--weights random), so the command works offline on a fresh machine. --no-naive skips the
baseline (it builds and times the model a second time).
"""

from fcn.bench.run import BenchOptions, benchmark, format_table

__all__ = ["BenchOptions", "benchmark", "format_table"]
