"""Packaging facts that no Docker engine here can check by running: pins and their agreement."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def test_requirements_are_pinned():
    lines = [ln.strip() for ln in _read("requirements.txt").splitlines()]
    pins = [ln for ln in lines if ln and not ln.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", p) for p in pins), (
        pins
    )
    names = {p.split("==")[0].lower() for p in pins}
    for needed in (
        "tensorflow",
        "opencv-python-headless",
        "numpy",
        "scipy",
        "tqdm",
        "imageio",
        "pytest",
    ):
        assert needed in names, needed


def test_dockerfile_uses_the_pinned_tensorflow_and_a_non_root_user():
    tf_pin = re.search(r"^tensorflow==(\S+)$", _read("requirements.txt"), re.M).group(1)
    docker = _read("Dockerfile")
    assert re.search(rf"^FROM tensorflow/tensorflow:{re.escape(tf_pin)}-gpu$", docker, re.M)
    assert "requirements.txt" in docker and re.search(r"^USER (?!root)\w+", docker, re.M)
    assert '"/app/data"' in docker and '"/app/runs"' in docker
    assert 'ENTRYPOINT ["python", "main.py"]' in docker


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = _read("README.md")
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", readme, re.S)
    first = [ln for ln in blocks[0].splitlines() if ln.strip() and not ln.startswith("#")]
    assert first == ["make demo", "make test"], first
    assert "make test" in _read(".ci/run")
