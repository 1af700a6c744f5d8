"""Training on several devices and workers (fcn.distribute) on 2 CPU cores.

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

from fcn import config, distribute
from fcn.errors import UserError

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
    return {distribute.TF_CONFIG: json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


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
    assert [list(l) for _, l in got] == [[20, 30], [60, 70]]
    assert distribute.steps_per_epoch(10, 4, None) == 3  # one device: the last batch is 2
    assert distribute.steps_per_epoch(10, 4, Setup) == 2


def test_no_devices_means_the_single_device_path():
    assert distribute.make(config.Config(), environ={}) is None


# --- subprocess scripts ---


def _script_equivalence(out_dir, vgg_dir):
    """One Adam step on 2 replicas vs on 1 device from the same weights and 4 images; the
    checkpoints of each restore into the other. Prints a JSON line of the differences."""
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    from fcn import checkpoint, train

    cfg = config.Config(
        vgg_dir=vgg_dir, image_shape=SHAPE, batch_size=4, precision="float32", seed=0
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, *SHAPE, 3)).astype(np.float32)
    labels = rng.integers(0, 2, (4, *SHAPE)).astype(np.uint8)  # no ignore pixels

    def build(setup):
        graph = tf.Graph()
        with graph.as_default():
            sess = distribute.session(setup, tf.ConfigProto(), graph)
            model = train.build_model(sess, cfg, 2, setup=setup)
        return graph, sess, model

    def step(graph, sess, model):
        with graph.as_default():
            loss = model.get("step_loss", model["loss"])
            _, value = sess.run(
                [model["train_op"], loss],
                {
                    model["image_input"]: images,
                    model["labels"]: labels,
                    model["learning_rate"]: 1e-3,
                    model["keep_prob"]: 1.0,
                    model["is_training"]: True,
                },
            )
            values = {v.op.name: sess.run(v) for v in tf.global_variables()}
        return float(value), values

    def save(graph, sess, run_dir):
        with graph.as_default():
            ckpts = checkpoint.Checkpoints(run_dir, 1)
            return ckpts, ckpts.save(sess, int(sess.run(tf.train.get_global_step())), checkpoint.Progress())

    setup = distribute.make(cfg.replace(devices="cpu:0,cpu:1"), environ={})
    one, many = build(None), build(setup)
    # The same starting point: the single-device model's initial weights restored on 2 replicas.
    ckpts, prefix = save(*one[:2], os.path.join(out_dir, "one"))
    with many[0].as_default():
        checkpoint.Checkpoints(ckpts.run_dir, 1).restore(many[1], prefix, "test")
    loss_one, after_one = step(*one)
    loss_many, after_many = step(*many)
    saved_many = dict(tf.train.list_variables(os.path.join(out_dir, "many", save(*many[:2], os.path.join(out_dir, "many"))[1])))
    # 2 replicas -> 1 device.
    fresh = build(None)
    with fresh[0].as_default():
        checkpoint.Checkpoints(os.path.join(out_dir, "many"), 1).restore(fresh[1], "checkpoints/model-1", "test")
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
        "largest_first_moment": max(float(np.abs(after_one[n]).max()) for n in after_one if first_moment(n)),
        "restored_on_one": biggest(after_many, restored, lambda n: True),
        "step": [int(after_one["global_step"]), int(after_many["global_step"])],
    }
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


def test_two_replicas_step_as_one_device_and_checkpoints_interchange(tiny_vgg, tmp_path):
    r = _run_script("equivalence", str(tmp_path), tiny_vgg)
    print(r)
    assert r["same_names"]
    assert r["step"] == [1, 1]


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    {"equivalence": _script_equivalence}[sys.argv[1]](*sys.argv[2:])
