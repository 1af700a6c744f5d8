"""Training on several devices and machines with TensorFlow's own engine, tf.compat.v1.distribute.

One machine: `MirroredStrategy` over --devices (gpu:0,gpu:1 | all | cpu:0,cpu:1). Several
machines: every worker runs the same command with TF_CONFIG set ({"cluster": {"worker": [...]},
"task": {"type": "worker", "index": i}}, a "chief" job optional) and trains with
`experimental.MultiWorkerMirroredStrategy` (collective all-reduce); graph mode needs each worker
to start its `tf.distribute.Server` and open its session on it (`session`).

Synchronous data parallelism, with --batch-size the global batch: the training graph keeps ONE
placeholder of the worker's part of the batch (global / workers), so the feeding code is the
single-device one; each replica slices its own shard of it inside `call_for_each_replica`
(`replica_step`). Every worker walks the same seeded epoch order and feeds its slice of each
global batch (`shard_batches`), so the stream of global batches does not depend on the number of
workers or devices, and a run resumes on any number of them. Gradients are averaged: the v1
optimizer sums them across replicas, so each replica's loss is divided by the number of replicas.
Batch-norm moving statistics are mirrored with aggregation MEAN (fcn.models.layers).

Variables keep the single-device names (a mirrored variable saves its primary copy under its own
name), so checkpoints trained on N devices restore on one and the other way round.
"""

import contextlib
import dataclasses
import json
import os

from fcn.errors import UserError

TF_CONFIG = "TF_CONFIG"
# Job names a TF_CONFIG cluster may hold for MultiWorkerMirroredStrategy; "chief" (optional) is
# worker 0 and writes the run folder.
_JOBS = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a TF_CONFIG cluster."""

    spec: dict  # {"chief": ["host:port"], "worker": ["host:port", ...]}
    task_type: str  # "chief" or "worker"
    task_index: int

    @property
    def num_workers(self):
        return sum(len(self.spec.get(job, ())) for job in _JOBS)

    @property
    def worker_index(self):
        """0 .. num_workers - 1, the chief first: which slice of each global batch is ours."""
        if self.task_type == "chief":
            return 0
        return len(self.spec.get("chief", ())) + self.task_index

    @property
    def is_chief(self):
        return self.worker_index == 0


def read_cluster(environ=None):
    """TF_CONFIG's cluster and task, checked; None when it is unset or names one worker only."""
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
        spec = {job: list(parsed["cluster"][job]) for job in parsed["cluster"]}
        task_type, task_index = parsed["task"]["type"], int(parsed["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{TF_CONFIG} is not valid: it needs JSON like "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}} (docs/distributed.md)'
        ) from None
    other = sorted(set(spec) - set(_JOBS))
    if other:
        raise UserError(
            f"{TF_CONFIG} has job(s) {other}: MultiWorkerMirroredStrategy takes only 'worker' "
            "and an optional 'chief'; drop the others (no parameter servers)"
        )
    if len(spec.get("chief", ())) > 1:
        raise UserError(f"{TF_CONFIG} lists {len(spec['chief'])} chiefs; give at most one")
    if task_type not in spec or not 0 <= task_index < len(spec[task_type]):
        raise UserError(
            f"{TF_CONFIG}'s task {task_type}:{task_index} is not in its cluster {spec}; set "
            "task.type and task.index to this machine's entry"
        )
    cluster = Cluster(spec, task_type, task_index)
    return cluster if cluster.num_workers > 1 else None


def parse_devices(text, available=None):
    """--devices -> TensorFlow device names: '' -> (); 'all' -> every GPU, or the CPU on a
    machine without one; 'gpu:0,gpu:1' -> ('/device:GPU:0', '/device:GPU:1').

    GPUs must exist. Any cpu:N is accepted: the session makes that many CPU devices
    (`session`), which share the machine's cores; they stand in for GPUs in tests and for
    trying a distributed run on a laptop.

    available: the device names to check against (default: TensorFlow's logical devices,
    which initialises them).
    """
    text = text.strip().lower()
    if not text:
        return ()
    if available is None:
        import tensorflow as tf2

        available = [d.name for d in tf2.config.list_logical_devices()]
    available = [_canonical(name) for name in available]
    if text == "all":
        gpus = [d for d in available if ":GPU:" in d]
        return tuple(gpus or [d for d in available if ":CPU:" in d])
    shown = ", ".join(_short(d) for d in available) or "none"
    devices = []
    for part in (p.strip() for p in text.split(",")):
        kind, _, index = part.partition(":")
        if kind not in ("gpu", "cpu") or not index.isdigit():
            raise UserError(
                f"--devices {text!r}: {part!r} is not a device; write gpu:0,gpu:1, cpu:0,cpu:1 "
                "or all"
            )
        name = f"/device:{kind.upper()}:{int(index)}"
        if kind == "gpu" and name not in available:
            raise UserError(f"--devices: this machine has no {part}; its devices are {shown}")
        if name in devices:
            raise UserError(f"--devices {text!r} names {part} twice")
        devices.append(name)
    return tuple(devices)


def _canonical(name):
    """'/job:localhost/replica:0/task:0/device:CPU:1' -> '/device:CPU:1'."""
    return "/device:" + name.split("/device:")[-1]


def _short(name):
    return name.split("/device:")[-1].lower()


@dataclasses.dataclass
class Setup:
    """The strategy and this process's part in it; None of it exists on the single-device path
    (`make` returns None there, and nothing in the graph or the loop changes)."""

    strategy: object  # a tf.compat.v1.distribute strategy
    devices: tuple = ()  # this worker's devices (parse_devices), () for the strategy's default
    cluster: Cluster = None  # None on one machine
    server: object = None  # this worker's tf.distribute.Server, once `session` started it
    peer_timeout: float = 300.0  # config.peer_timeout: seconds a session call may block

    @property
    def num_replicas(self):
        """Replicas in the whole job (all workers)."""
        return self.strategy.num_replicas_in_sync

    @property
    def num_workers(self):
        return self.cluster.num_workers if self.cluster else 1

    @property
    def worker_index(self):
        return self.cluster.worker_index if self.cluster else 0

    @property
    def is_chief(self):
        return self.cluster is None or self.cluster.is_chief

    @property
    def local_replicas(self):
        return self.num_replicas // self.num_workers

    def describe(self):
        where = f"{self.local_replicas} device(s)"
        if self.cluster:
            where += (
                f" on each of {self.num_workers} workers (this is worker {self.worker_index}"
                f"{', the chief' if self.is_chief else ''})"
            )
        return f"training on {self.num_replicas} replicas: {where}"


def make(config, environ=None):
    """The Setup for config.devices and TF_CONFIG, or None for the single-device path
    (--devices '' on one machine). --batch-size must divide among all the replicas."""
    import tensorflow.compat.v1 as tf

    cluster = read_cluster(environ)
    if cluster is None and not config.devices.strip():
        return None
    if cluster is None:
        devices = parse_devices(config.devices)
        strategy = tf.distribute.MirroredStrategy(devices=list(devices))
    else:
        if config.devices.strip() not in ("", "all"):
            raise UserError(
                f"--devices {config.devices!r} with {TF_CONFIG}: each worker trains on all its "
                "GPUs (or its CPU); choose them with CUDA_VISIBLE_DEVICES and drop --devices"
            )
        strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy()
    setup = Setup(strategy, devices if cluster is None else (), cluster)
    setup.peer_timeout = config.peer_timeout
    if config.batch_size % setup.num_replicas:
        raise UserError(
            f"--batch-size {config.batch_size} does not divide among {setup.num_replicas} "
            f"replicas; it is the global batch, so pass a multiple of {setup.num_replicas}"
        )
    return setup


def session(setup, session_config, graph=None):
    """A tf.Session for the training graph: the plain local one without a Setup (the
    single-device path, unchanged), otherwise the strategy's config, and on several workers a
    session on this worker's own tf.distribute.Server (started here, kept in setup.server)."""
    import tensorflow.compat.v1 as tf

    from fcn import precision

    if setup is None:
        return tf.Session(graph=graph, config=session_config)
    session_config = setup.strategy.update_config_proto(session_config)
    cpus = [int(d.rsplit(":", 1)[1]) for d in setup.devices if ":CPU:" in d]
    if cpus:  # a v1 session makes its CPU devices from device_count, not from tf.config
        session_config.device_count["CPU"] = max(cpus) + 1
    if setup.cluster is None:
        return tf.Session(graph=graph, config=session_config)
    # A collective all-reduce has no timeout of its own: a killed peer would block the others
    # for ever. This deadline turns that into a DeadlineExceededError (`lost_peer`).
    session_config.operation_timeout_in_ms = int(setup.peer_timeout * 1000)
    # The server's master merges its own config into the session's: both need the fitted one.
    session_config = precision.for_server(session_config)
    if setup.server is None:
        setup.server = tf.distribute.Server(
            tf.train.ClusterSpec(setup.cluster.spec),
            job_name=setup.cluster.task_type,
            task_index=setup.cluster.task_index,
            config=session_config,
            start=True,
        )
    return tf.Session(setup.server.target, graph=graph, config=session_config)


def shard_batches(batches, setup, batch_size):
    """This worker's slice of each global batch (images, labels) of the epoch; an incomplete
    last batch is dropped, since it would not divide among the replicas (the shuffled order
    drops different images each epoch). Yields (images (B/W, ...), labels (B/W, ...))."""
    part = batch_size // setup.num_workers
    lo = setup.worker_index * part
    for images, labels in batches:
        if len(images) == batch_size:
            yield images[lo : lo + part], labels[lo : lo + part]


def steps_per_epoch(num_images, batch_size, setup):
    """Training steps in an epoch: ceil on one device, whole global batches only otherwise."""
    if setup is None:
        return -(-num_images // batch_size)
    return num_images // batch_size


def replica_step(setup, images, labels, step_fn, stop_flag):
    """Build the synchronous training step: step_fn(images shard, labels shard, num_replicas)
    -> (train_op, loss) runs on every replica of this worker, each on its slice of the fed
    images (B/W, h, w, 3) and labels (B/W, h, w).

    stop_flag: a float32 scalar this worker feeds 1.0 when it was asked to stop; it is summed
    over all workers with the loss, so every worker sees the same request after the same step
    and they all stop together (a worker that left on its own would hang the others' next
    all-reduce).

    Returns (train_op, loss (the global batch's mean of the replicas' losses), stop_votes).
    """
    import tensorflow.compat.v1 as tf

    strategy = setup.strategy
    local = setup.local_replicas
    total = setup.num_replicas

    def per_replica():
        ctx = tf.distribute.get_replica_context()
        shard = ctx.replica_id_in_sync_group % local
        size = tf.shape(images)[0] // local
        lo = shard * size
        train_op, loss = step_fn(images[lo : lo + size], labels[lo : lo + size], total)
        with tf.control_dependencies([train_op]):
            return train_op, tf.stack([loss / total, stop_flag])

    with strategy.scope():
        train_ops, parts = strategy.extended.call_for_each_replica(per_replica)
        train_op = strategy.group(train_ops)
        # One reduction of two numbers over every replica of every worker: the sum of loss / R
        # is the mean over replicas.
        summed = strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None)
    return train_op, summed[0], summed[1]


@contextlib.contextmanager
def lost_peer(setup, last_good):
    """Turn the error a step raises when another worker is gone (killed, its machine lost) into
    one line: the job stops, the last complete checkpoint is intact (`last_good` says which),
    and --resume continues it on any number of workers."""
    if setup is None or setup.cluster is None:
        yield
        return
    import tensorflow.compat.v1 as tf

    try:
        yield
    except (
        tf.errors.UnavailableError,
        tf.errors.AbortedError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
        tf.errors.InternalError,
    ) as e:
        raise UserError(
            f"worker {setup.worker_index} lost contact with another worker ({type(e).__name__}), "
            f"so the job stopped; {last_good or 'the chief keeps the checkpoints'}; "
            "start every worker again with `python main.py train --resume RUN_DIR`"
        ) from None
