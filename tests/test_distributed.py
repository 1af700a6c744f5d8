"""Training on several devices and workers (fcn.training.distribute) on 2 CPU cores.

Two logical CPU devices stand in for two GPUs. They must be configured before TensorFlow
initialises its devices, so every TensorFlow part runs in a subprocess: this file doubles as the
script (`python tests/test_distributed.py MODE ARGS`), and the tests bound its time and kill it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PRECISIONS
from fcn import config
from fcn.errors import UserError
from fcn.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (32, 64)


# --- pure parts: no TensorFlow devices needed ---


def test_parse_devices_names_and_checks_devices():
    cpus = ["/job:localhost/replica:0/task:0/device:CPU:0", "/device:CPU:1"]
    gpus = cpus + ["/device:GPU:0", "/device:GPU:1"]
    assert distribute.parse_devices("", cpus) == ()
    assert distribute.parse_devices("cpu:0, CPU:1", cpus) == ("/device:CPU:0", "/device:CPU:1")
    assert distribute.parse_devices("all", cpus) == ("/device:CPU:0", "/device:CPU:1")
    assert distribute.parse_devices("all", gpus) == ("/device:GPU:0", "/device:GPU:1")
    with pytest.raises(UserError, match="no gpu:2; its devices are cpu:0, cpu:1, gpu:0, gpu:1"):
        distribute.parse_devices("gpu:0,gpu:2", gpus)
    # The session makes as many CPU devices as asked for (they share the cores).
    assert distribute.parse_devices("cpu:0,cpu:3", cpus) == ("/device:CPU:0", "/device:CPU:3")
    with pytest.raises(UserError, match="'tpu:0' is not a device"):
        distribute.parse_devices("tpu:0", gpus)
    with pytest.raises(UserError, match="names cpu:1 twice"):
        distribute.parse_devices("cpu:1,cpu:1", cpus)


def _tf_config(cluster, task_type, index):
    return {
        distribute.TF_CONFIG: json.dumps(
            {"cluster": cluster, "task": {"type": task_type, "index": index}}
        )
    }


def test_read_cluster_orders_the_chief_first():
    assert distribute.read_cluster({}) is None
    # One worker is no cluster: the single-device path.
    assert distribute.read_cluster(_tf_config({"worker": ["a:1"]}, "worker", 0)) is None
    spec = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    chief = distribute.read_cluster(_tf_config(spec, "chief", 0))
    second = distribute.read_cluster(_tf_config(spec, "worker", 1))
    assert (chief.num_workers, chief.worker_index, chief.is_chief) == (3, 0, True)
    assert (second.worker_index, second.is_chief) == (2, False)
    plain = distribute.read_cluster(_tf_config({"worker": ["a:1", "b:1"]}, "worker", 0))
    assert plain.is_chief and plain.worker_index == 0
    with pytest.raises(UserError, match="job\\(s\\) \\['ps'\\]"):
        distribute.read_cluster(_tf_config({"worker": ["a:1", "b:1"], "ps": ["p:1"]}, "worker", 0))
    with pytest.raises(UserError, match="task worker:2 is not in its cluster"):
        distribute.read_cluster(_tf_config({"worker": ["a:1", "b:1"]}, "worker", 2))
    with pytest.raises(UserError, match="TF_CONFIG is not valid"):
        distribute.read_cluster({distribute.TF_CONFIG: "{cluster"})


def test_shard_batches_gives_each_worker_its_slice_of_whole_global_batches():
    class Setup:
        num_workers, worker_index = 2, 1

    # 10 images, global batch 4: batches [0..3], [4..7], [8, 9]; the last does not divide.
    images = np.arange(10)
    batches = [(images[i : i + 4], images[i : i + 4] * 10) for i in range(0, 10, 4)]
    got = list(distribute.shard_batches(batches, Setup, 4))
    assert [list(i) for i, _ in got] == [[2, 3], [6, 7]]
    assert [list(labels) for _, labels in got] == [[20, 30], [60, 70]]
    assert distribute.steps_per_epoch(10, 4, None) == 3  # one device: the last batch is 2
    assert distribute.steps_per_epoch(10, 4, Setup) == 2


def test_no_devices_means_the_single_device_path():
    assert distribute.make(config.Config(), environ={}) is None


# --- subprocess scripts ---


def _script_equivalence(out_dir, vgg_dir, precision_name="float32"):
    """One Adam step on 2 replicas vs on 1 device from the same weights and 4 images; the
    checkpoints of each restore into the other. Prints a JSON line of the differences."""
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    from fcn.training import build, checkpoint

    cfg = config.Config(
        vgg_dir=vgg_dir, image_shape=SHAPE, batch_size=4, precision=precision_name, seed=0
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, *SHAPE, 3)).astype(np.float32)
    labels = rng.integers(0, 2, (4, *SHAPE)).astype(np.uint8)  # no ignore pixels

    def make(setup):
        graph = tf.Graph()
        with graph.as_default():
            sess = distribute.session(setup, tf.ConfigProto(), graph)
            model = build.build_model(sess, cfg, 2, setup=setup)
        return graph, sess, model

    def step(graph, sess, model):
        with graph.as_default():
            loss = model.training_loss
            _, value = sess.run(
                [model.train_op, loss],
                {
                    model.image_input: images,
                    model.labels: labels,
                    model.learning_rate: 1e-3,
                    model.keep_prob: 1.0,
                    model.is_training: True,
                },
            )
            values = {v.op.name: sess.run(v) for v in tf.global_variables()}
        return float(value), values

    def save(graph, sess, run_dir):
        with graph.as_default():
            ckpts = checkpoint.Checkpoints(run_dir, 1)
            return ckpts, ckpts.save(
                sess, int(sess.run(tf.train.get_global_step())), checkpoint.Progress()
            )

    setup = distribute.make(cfg.replace(devices="cpu:0,cpu:1"), environ={})
    one, many = make(None), make(setup)
    # The same starting point: the single-device model's initial weights restored on 2 replicas.
    ckpts, prefix = save(*one[:2], os.path.join(out_dir, "one"))
    with many[0].as_default():
        checkpoint.Checkpoints(ckpts.run_dir, 1).restore(many[1], prefix, "test")
    loss_one, after_one = step(*one)
    loss_many, after_many = step(*many)
    saved_many = dict(
        tf.train.list_variables(
            os.path.join(out_dir, "many", save(*many[:2], os.path.join(out_dir, "many"))[1])
        )
    )
    # 2 replicas -> 1 device.
    fresh = make(None)
    with fresh[0].as_default():
        checkpoint.Checkpoints(os.path.join(out_dir, "many"), 1).restore(
            fresh[1], "checkpoints/model-1", "test"
        )
        restored = {v.op.name: fresh[1].run(v) for v in tf.global_variables()}

    def biggest(a, b, part):
        names = [n for n in a if part(n)]
        return max(float(np.abs(a[n] - b[n]).max()) for n in names), len(names)

    weights = lambda n: not n.endswith(("Adam", "Adam_1")) and "power" not in n and "step" not in n
    first_moment = lambda n: n.endswith("Adam")
    result = {
        "loss": [loss_one, loss_many],
        "same_names": sorted(after_one) == sorted(after_many) == sorted(saved_many),
        "weights": biggest(after_one, after_many, weights),
        "first_moment": biggest(after_one, after_many, first_moment),
        "largest_first_moment": max(
            float(np.abs(after_one[n]).max()) for n in after_one if first_moment(n)
        ),
        "restored_on_one": biggest(after_many, restored, lambda n: True),
        "step": [int(after_one["global_step"]), int(after_many["global_step"])],
    }
    print("RESULT " + json.dumps(result), flush=True)


def _script_server_pairs(port):
    """One bf16 training step of every encoder and decoder in a session on a tf.distribute.Server
    (the multi-worker path: its worker checks every node before oneDNN rewrites the graph).
    Prints a JSON line {pair: "ok" or the error}."""
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    from fcn import precision
    from fcn.models import decoders, encoders
    from fcn.training import build

    session_config = precision.for_server(precision.session_config("bfloat16"))
    server = tf.distribute.Server(
        {"worker": [f"127.0.0.1:{port}"]}, "worker", 0, config=session_config, start=True
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, *SHAPE, 3)).astype(np.float32)
    labels = rng.integers(0, 2, (2, *SHAPE)).astype(np.uint8)
    result = {}
    # Every encoder and every decoder once (7 graphs, not all 15 pairs: each costs seconds).
    pairs = {(e, "unet") for e in encoders.ENCODERS} | {("unet", d) for d in decoders.DECODERS}
    for encoder, decoder in sorted(pairs):
        cfg = config.Config(
            encoder=encoder,
            decoder=decoder,
            weights="random",
            width=1 / 16 if encoder == "vgg16" else 1,
            unet_filters=4,
            image_shape=SHAPE,
            precision="bfloat16",
        )
        with tf.Graph().as_default() as graph:
            sess = tf.Session(server.target, graph=graph, config=session_config)
            model = build.build_model(sess, cfg, 2)
            feed = {model.image_input: images, model.labels: labels}
            feed.update({model.learning_rate: 1e-4, model.is_training: True})
            try:
                _, loss = sess.run([model.train_op, model.loss], feed)
                result[f"{encoder}+{decoder}"] = "ok" if np.isfinite(loss) else str(loss)
            except tf.errors.OpError as e:
                result[f"{encoder}+{decoder}"] = f"{type(e).__name__}: {e.message[:300]}"
            sess.close()
        tf.Session.reset(server.target)  # a server keeps variables across sessions
    print("RESULT " + json.dumps(result), flush=True)


def _env(**more):
    """This checkout importable, TensorFlow's C++ logs quiet."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop(distribute.TF_CONFIG, None)
    env.update(more)
    return env


def _run_script(*args, timeout=120, env=None):
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or _env(),
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_two_replicas_step_as_one_device_and_checkpoints_interchange(precision, tiny_vgg, tmp_path):
    r = _run_script("equivalence", str(tmp_path), tiny_vgg, precision)
    # bfloat16 (auto on bf16 CPUs) rounds each replica's half batch in its own kernels: the
    # same step within bf16's 8-bit mantissa, not to float32's last bits.
    exact = precision == "float32"
    # Checkpoints of 2 replicas name exactly the single-device variables (no .../replica_1).
    assert r["same_names"]
    assert r["step"] == [1, 1]
    # The global batch's loss: the mean of the 2 replicas' means over 2 images each equals the
    # mean over 4 (every image has 32 x 64 labelled pixels).
    assert r["loss"][0] == pytest.approx(r["loss"][1], abs=1e-6 if exact else 1e-2)
    max_diff, n_weights = r["weights"]
    # The tiny VGG16-FCN's 19 kernels and biases; one Adam step moves a weight by <= 1e-3 (the
    # learning rate), so a bf16 difference stays under two steps.
    assert n_weights == 38 and max_diff <= (1e-5 if exact else 2e-3)
    # Adam's first moment is 0.1 x the gradient after one step: the averaged gradient equals the
    # single-device one (summed, not divided by the replicas, it would be twice as large).
    assert r["first_moment"][0] <= (1e-3 if exact else 5e-2) * r["largest_first_moment"]
    # 2 replicas -> 1 device: every variable (weights, Adam slots, step) restores exactly.
    assert r["restored_on_one"] == [0.0, 117]


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    scripts = {"equivalence": _script_equivalence, "server_pairs": _script_server_pairs}
    scripts[sys.argv[1]](*sys.argv[2:])


# --- two worker processes on 127.0.0.1 ---


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _train_args(data_dir, vgg_dir, runs_dir, epochs, resume=None, precision="float32"):
    """precision "auto" gives no --precision flag: what a user who does not ask gets."""
    if resume:
        return ["train", "--resume", resume, "--epochs", str(epochs), "--peer-timeout", "20"]
    return [
        "train",
        f"--data-dir={data_dir}",
        f"--vgg-dir={vgg_dir}",
        f"--runs-dir={runs_dir}",
        f"--image-shape={SHAPE[0]}x{SHAPE[1]}",
        f"--epochs={epochs}",
        "--batch-size=4",
        "--val-count=2",
        *([f"--precision={precision}"] if precision != "auto" else []),
        "--overlay-every=0",
        "--no-test-overlays",
        "--peer-timeout=20",  # a lost peer ends the others' blocked steps after 20 s
    ]


class _Workers:
    """Two `main.py train` workers of one TF_CONFIG cluster; always killed on exit."""

    def __init__(self, args, log_dir):
        ports = _free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        os.makedirs(log_dir, exist_ok=True)
        self.logs = [os.path.join(log_dir, f"worker{i}.log") for i in range(2)]
        self.procs = []
        for i in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            with open(self.logs[i], "w") as out:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "main.py", *args],
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=_env(TF_CONFIG=tf_config),
                    )
                )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

    def wait(self, timeout):
        deadline = time.time() + timeout
        for p in self.procs:
            p.wait(max(deadline - time.time(), 1))
        return [p.returncode for p in self.procs]

    def output(self, i):
        with open(self.logs[i]) as f:
            return f.read()


def _only_run(runs_dir):
    found = [f for f in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, f))]
    assert len(found) == 1, found  # worker 1 never makes a run folder
    return os.path.join(runs_dir, found[0])


def _wait_for(path_fn, timeout, workers):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path_fn():
            return
        assert all(p.poll() is None for p in workers.procs), workers.output(0)[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"timed out: {workers.output(0)[-3000:]}")


def _state(run_dir):
    with open(os.path.join(run_dir, "state.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_two_workers_train_to_the_end(precision, synth_data, tiny_vgg, tmp_path):
    runs_dir = tmp_path / "runs"
    args = _train_args(synth_data, tiny_vgg, runs_dir, 2, precision=precision)
    with _Workers(args, str(tmp_path)) as workers:
        assert workers.wait(150) == [0, 0], workers.output(0)[-3000:] + workers.output(1)[-3000:]
        run_dir = _only_run(runs_dir)
        # 10 training images, global batch 4: 2 whole batches an epoch, each worker feeding 2.
        assert _state(run_dir)["step"] == 4
        assert "1 device(s) on each of 2 workers (this is worker 0, the chief)" in workers.output(0)
        assert "[worker 1] finished epoch 2 of 2" in workers.output(1)
        assert os.path.exists(os.path.join(run_dir, "summary.json"))
    if precision != "auto":
        return
    # Without --precision a bf16 CPU trains in bfloat16 on every worker, and --resume continues.
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["precision"] == "bfloat16"
    resume = _train_args(None, None, None, 3, run_dir)
    with _Workers(resume, str(tmp_path / "resumed")) as workers:
        assert workers.wait(150) == [0, 0], workers.output(0)[-3000:] + workers.output(1)[-3000:]
    assert "precision bfloat16" in workers.output(0)
    assert (_state(run_dir)["epoch"], _state(run_dir)["step"]) == (3, 6)


def test_every_pair_trains_a_bf16_step_on_a_server():
    """A worker of a tf.distribute.Server checks each node before oneDNN rewrites the graph, so
    a fusion only oneDNN can run in bf16 (Grappler's _FusedConv2D) fails there and nowhere else:
    every encoder and decoder takes a bf16 step through one (emulated on CPUs without bf16)."""
    r = _run_script("server_pairs", str(_free_ports(1)[0]), timeout=300)
    assert r and set(r.values()) == {"ok"}, r


def test_a_stopped_or_lost_worker_stops_the_job_and_resume_finishes(synth_data, tiny_vgg, tmp_path):
    runs_dir = tmp_path / "runs"
    epochs = 40  # far more than the test waits for: the workers are stopped mid-run
    args = _train_args(synth_data, tiny_vgg, runs_dir, epochs)

    def checkpointed(epoch):
        found = os.listdir(runs_dir) if os.path.isdir(runs_dir) else []
        found = [f for f in found if os.path.isdir(os.path.join(runs_dir, f))]
        return (
            found
            and os.path.exists(os.path.join(runs_dir, found[0], "state.json"))
            and (_state(os.path.join(runs_dir, found[0]))["epoch"] >= epoch)
        )

    # SIGTERM to worker 1: its stop request is voted with the next step, so both stop after the
    # same step and the chief saves a checkpoint there.
    with _Workers(args, str(tmp_path / "a")) as workers:
        _wait_for(lambda: checkpointed(1), 120, workers)
        workers.procs[1].send_signal(signal.SIGTERM)
        assert workers.wait(60) == [128 + signal.SIGTERM] * 2, workers.output(0)[-3000:]
    run_dir = _only_run(runs_dir)
    stopped = _state(run_dir)
    assert "another worker's stop request" in workers.output(0)
    assert 0 < stopped["step"] and stopped["step"] == 2 * stopped["epoch"] + stopped["batch"]

    # Resumed on two workers, then worker 1 is killed: a lost peer ends the chief with the
    # last complete checkpoint intact.
    os.makedirs(tmp_path / "b")
    with _Workers(_train_args(None, None, None, epochs, run_dir), str(tmp_path / "b")) as workers:
        _wait_for(lambda: _state(run_dir)["step"] > stopped["step"] + 2, 120, workers)
        workers.procs[1].kill()
        assert workers.wait(90)[0] == 2, workers.output(0)[-3000:]  # a UserError
    assert "lost contact with another worker" in workers.output(0)
    lost = _state(run_dir)
    assert lost["step"] > stopped["step"]

    # The rest on one process with two devices: --devices may change on --resume.
    finish = lost["epoch"] + 1
    args = _train_args(None, None, None, finish, run_dir) + ["--devices=cpu:0,cpu:1"]
    result = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert _state(run_dir)["epoch"] == finish
    assert os.path.exists(os.path.join(run_dir, "summary.json"))
