"""Every command README.md shows, run as written: a documented command that fails fails the suite.

Commands are the lines of README's ```sh blocks and its inline `python ...`, `make ...`, ...
spans. Each is either in RUN (how it is run: placeholders such as runs/RUN filled in, and only
flags the README itself names appended to make it small) or in EXCLUDED with the reason; a new
README command in neither fails `test_every_readme_command_is_run_or_excluded`.

They run in one temporary folder that looks like a checkout (main.py, helper.py,
project_tests.py and fcn/ linked in) with `data/` made by the README's own `synth` and `vgg`
commands, and share one tiny run: the two-worker TF_CONFIG command's. About 2 minutes on 2
CPU cores, most of it TensorFlow starting in each process.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fcn import precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
# Inline code that is a command line, not a flag, a path or a module.
_COMMAND_START = ("python ", "make ", "docker ", "pip ", "tensorboard ", "TF_CONFIG=")
# The README's scale-down flags (its "Training flags" table and "Models").
SMALL = "--epochs 1 --image-shape 32x96 --batch-size 4"
UNET = "--encoder unet --decoder unet --weights random --unet-filters 8"

EXCLUDED = {
    "make demo": "the full 7-minute recipe after a virtualenv from PyPI (network); "
    "`python main.py demo --recipe NAME` runs the same code scaled down",
    "make test": "this suite itself",
    "make": "the tool, not a command line",
    "docker build -t fcn8 .": "no Docker daemon here, and the image comes from Docker Hub",
    'docker run --gpus all -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" fcn8': "needs "
    "Docker and a CUDA GPU",
    'docker run --gpus all -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" fcn8 evaluate '
    "--run runs/RUN": "needs Docker and a CUDA GPU",
    "python -c \"import helper; helper.maybe_download_pretrained_vgg('data')\"": "downloads "
    "vgg.zip (network); tests/test_download.py serves it from 127.0.0.1",
    "python main.py vgg --keras-h5 vgg16_weights_tf_dim_ordering_tf_kernels.h5 --out data/vgg": (
        "needs the 528 MB Keras download; tests/test_vgg.py converts a small .h5"
    ),
    "pip install -r requirements-extra.txt": "PyPI (network); `make test` installs it",
    "tensorboard --logdir runs": "a server that runs until stopped",
    "python main.py [command] [flags]": "a synopsis, not a command",
    **dict.fromkeys(
        [
            "python main.py serve --run runs/RUN --port 8501 --name fcn",
            "curl -s localhost:8501/v1/models/fcn",
            "curl -s localhost:8501/v1/models/fcn/metadata",
            'printf \'{"instances": [{"b64": "%s"}]}\' "$(base64 -w0 frame.png)" > request.json',
            "curl -s -X POST localhost:8501/v1/models/fcn:predict -d @request.json",
            'curl -s --data-binary @frame.png "localhost:8501/v1/segment?output=overlay" '
            "-o overlay.png",
            'curl -s --data-binary @frame.png "localhost:8501/v1/segment?output=json"',
            "curl -s localhost:8501/metrics",
        ],
        "a server that runs until stopped, and its clients: tests/test_serve.py starts it on "
        "127.0.0.1 and sends each endpoint these requests' bodies",
    ),
    "python main.py evaluate --run runs/RUN --data-dir data/synthetic_footprints/footprints/scenes "
    "--split all --predict slide --min-area 20": (
        "needs a footprints run (the shared run here is KITTI's); the footprints case of "
        "tests/test_recipes.py evaluates its demo's scene exactly so (split all, slide, min "
        "area 20) and checks the polygon figures"
    ),
    "python -m fcn.bench.serve --run runs/RUN --images data/data_road/testing/image_2": (
        "a measurement of minutes (docs/performance.md); tests/test_serve.py covers the server"
    ),
}

# README command -> (what runs: placeholders filled, README flags added, {host1}/{host2}
# become two 127.0.0.1 ports), in the order they run.
RUN = {
    "python main.py synth --kind KIND --out DIR [--count N --test-count N --seed S]": (
        "python main.py synth --kind kitti --out data --count 8 --test-count 2 --seed 0"
    ),
    "python main.py vgg --random --out data/vgg": "python main.py vgg --random --out data/vgg",
    # The reference system on the full VGG16 SavedModel just built (its run is removed after:
    # 2 GB of checkpoints).
    "python main.py": f"python main.py {SMALL}",
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": '
    '{"type": "worker", "index": 0}}\' python main.py train --data-dir /shared/data '
    "--runs-dir /shared/runs --batch-size 32 --devices all": (
        'TF_CONFIG=\'{{"cluster": {{"worker": ["{host1}", "{host2}"]}}, "task": {{"type": '
        '"worker", "index": {index}}}}}\' python main.py train --data-dir data --runs-dir runs '
        f"--batch-size 32 --devices all {SMALL} {UNET}"
    ),
    # The shared run from here on: trained on two workers, it resumes on one.
    "python main.py train --resume runs/RUN": "python main.py train --resume {run} --epochs 2",
    "python main.py evaluate --run runs/RUN": "python main.py evaluate --run {run}",
    "python main.py infer --run runs/RUN data/data_road/testing/image_2 drive.mp4 --out out/ "
    "--save-prob": (
        "python main.py infer --run {run} data/data_road/testing/image_2 drive.mp4 --out out/ "
        "--save-prob"
    ),
    "python main.py export --run runs/RUN --out exported/ --onnx": (
        "python main.py export --run {run} --out exported/ --onnx"
    ),
    # Deploy: int8 calibrated on the tiny run's few training images.
    "python main.py export --run runs/RUN --out deployed/ --onnx --tflite --int8": (
        "python main.py export --run {run} --out deployed/ --onnx --tflite --int8 "
        "--calibration-images 2"
    ),
    "python main.py evaluate --run deployed/ --backend onnxruntime --int8": (
        "python main.py evaluate --run deployed/ --backend onnxruntime --int8"
    ),
    "python main.py bench --run deployed/ --backends tf,onnxruntime,onnxruntime-int8,tflite,"
    "tflite-int8": (
        "python main.py bench --run deployed/ --backends "
        "tf,onnxruntime,onnxruntime-int8,tflite,tflite-int8 --calls 1 --threads 1"
    ),
    "python main.py report runs/RUN [...]": "python main.py report {run}",
    "python main.py train --help": "python main.py train --help",
    "python main.py demo --recipe NAME": (
        "python main.py demo --recipe dice_unet --count 8 --epochs 1 --image-shape 32x32"
    ),
    # Without data/data_road (the README's step 4 is for the real download): the interface checks.
    "python project_tests.py": "python project_tests.py",
}
# Documented commands that do not work yet: run, and expected to fail until fixed (strict, so a
# fix shows up as an unexpected pass).
BROKEN = {}


def readme_commands(text=None):
    """The command lines README.md shows: ```sh block lines (continuations joined, comments
    dropped) and inline code spans that start like a command."""
    text = open(README).read() if text is None else text
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(line.split())
            if line and not line.startswith("#"):
                found.append(line)
    for span in re.findall(r"`([^`\n]+)`", text):
        if span.startswith(_COMMAND_START) or span in ("make",):
            found.append(" ".join(span.split()))
    return list(dict.fromkeys(found))


def test_every_readme_command_is_run_or_excluded():
    commands = set(readme_commands())
    unlisted = commands - set(RUN) - set(EXCLUDED)
    assert not unlisted, f"README commands neither run here nor excluded with a reason: {unlisted}"
    stale = (set(RUN) | set(EXCLUDED)) - commands
    assert not stale, f"listed here but no longer in README.md: {stale}"


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    return env


def _shell(line, cwd, timeout=180):
    """`line` through bash, `python` being this interpreter; returns the CompletedProcess."""
    line = re.sub(r"(^|\s)python ", rf"\g<1>{shlex.quote(sys.executable)} ", line)
    try:
        return subprocess.run(
            ["bash", "-c", line],
            cwd=cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{line!r} ran past {timeout}s: {str(e.stdout)[-2000:]}")


def _ok(result, what):
    assert result.returncode == 0, (
        f"{what}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )


def _checkout(path):
    os.makedirs(path)
    for name in ("main.py", "helper.py", "project_tests.py", "fcn"):
        os.symlink(os.path.join(ROOT, name), os.path.join(path, name))
    return str(path)


def _runs(path):
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The checkout-like folder after the set-up commands, and the shared run (runs/RUN)."""
    ws = _checkout(tmp_path_factory.mktemp("readme") / "checkout")
    order = list(RUN)
    for command in order[:3]:
        _ok(_shell(RUN[command], ws), command)
    # The reference run proved the default job; its 2 GB of checkpoints are not needed.
    (reference,) = _runs(os.path.join(ws, "runs"))
    subprocess.run(["rm", "-rf", os.path.join(ws, "runs", reference)], check=True)
    # The two-worker command, on two ports of 127.0.0.1, both workers at once.
    hosts = dict(zip(("host1", "host2"), _free_ports(2), strict=True))
    template = RUN[order[3]]
    w0, w1 = (template.format(index=i, **hosts) for i in (0, 1))
    line = f"({w0}) & p0=$!; ({w1}) & p1=$!; wait $p0; r0=$?; wait $p1; exit $((r0 | $?))"
    _ok(_shell(line, ws, timeout=240), order[3])
    (run,) = _runs(os.path.join(ws, "runs"))
    # An input the infer command names: a 3-frame video.
    writer = cv2.VideoWriter(
        os.path.join(ws, "drive.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 32)
    )
    for i in range(3):
        writer.write(np.full((32, 96, 3), 60 * i, np.uint8))
    writer.release()
    return ws, os.path.join("runs", run)


_LATER = [c for c in list(RUN)[4:] if c != "python project_tests.py"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(c, marks=pytest.mark.xfail(reason=BROKEN[c], strict=True))
        if c in BROKEN
        else c
        for c in _LATER
    ],
)
def test_readme_command_runs_as_written(command, workspace):
    ws, run = workspace
    result = _shell(RUN[command].format(run=run), ws)
    if command.startswith("python main.py demo"):  # exits 1 below the recipe's target
        assert result.returncode in (0, 1) and "demo dice_unet:" in result.stdout, (
            result.stdout[-2000:] + result.stderr[-3000:]
        )
        return
    _ok(result, command)
    assert "Traceback" not in result.stderr
    if command.startswith("python main.py train --resume"):
        state = json.load(open(os.path.join(ws, run, "state.json")))
        assert state["epoch"] == 2
    if command.startswith("python main.py infer"):
        assert os.listdir(os.path.join(ws, "out"))


def test_readme_setup_commands_ran(workspace):
    """synth, vgg, `python main.py` and the two-worker command ran in the fixture."""
    ws, run = workspace
    assert os.path.isdir(os.path.join(ws, "data", "vgg"))
    summary = json.load(open(os.path.join(ws, run, "summary.json")))
    assert summary["encoder"] == "unet"
    # No --precision: the two workers trained in what auto resolves to (bfloat16 on bf16 CPUs).
    assert summary["precision"] == precision.resolve("auto")


def test_project_tests_pass_without_the_kitti_download(tmp_path):
    _ok(_shell(RUN["python project_tests.py"], _checkout(tmp_path / "fresh")), "project_tests")
