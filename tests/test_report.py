"""Run pages and the all-runs page: SVG curves with hand-worked coordinates, header values and
tables of a hand-made run folder, partial runs, thumbnails, the sortable index, the report
command, and a headless Chromium that loads the pages from file:// (images, links, sorting)."""

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
import urllib.parse

import cv2
import numpy as np
import pytest

from fcn import cli, names, report
from fcn.errors import UserError
from fcn.report import html, plots

# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def test_nice_ticks_hand_worked():
    # raw step (0.91 - 0.82) / 5 = 0.018 -> 0.02; floor(0.82 / 0.02) = 41, ceil(45.5) = 46
    assert plots.nice_ticks(0.82, 0.91) == [0.82, 0.84, 0.86, 0.88, 0.9, 0.92]
    assert plots.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # flat series: 5 +- 0.5, raw step 0.2, floor(22.5) = 22 .. ceil(27.5) = 28
    assert plots.nice_ticks(5.0, 5.0) == [4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6]
    # raw step 0.0125 -> 2.5 x 10^-2? no: 0.0125 -> 0.02 is the first of 1, 2, 2.5, 5 >= 1.25
    assert plots.nice_ticks(0.0, 0.0625) == [0.0, 0.02, 0.04, 0.06, 0.08]


def test_line_chart_coordinates_and_gaps():
    # Plot area x 62..446 (460 - 62 - 14 = 384 wide), y 44..240 (280 - 44 - 40 = 196 high).
    # x ticks 1, 2, 3 and y ticks 0 .. 1: (1, 0) -> (62, 240), (3, 1) -> (446, 44); the None
    # at epoch 2 is skipped.
    svg = plots.line_chart("t", [("a", [(1, 0.0), (2, None), (3, 1.0)])])
    assert 'points="62.0,240.0 446.0,44.0"' in svg
    assert svg.count("<circle") == 2
    assert "<title>a, epoch 3: 1</title>" in svg
    assert plots.line_chart("t", [("a", [(1, None), (2, float("nan"))])]) == ""
    # One epoch: the point sits in the middle of the x range.
    one = plots.line_chart("t", [("a", [(1, 0.5)])])
    assert re.search(r'<circle cx="254.0"', one)


def test_confusion_svg_normalises_rows():
    svg = plots.confusion_svg([[3, 1], [0, 0]], ["a", "b"])
    # row a: 3/4 and 1/4; row b has no pixels and is grey.
    assert ">0.75</text>" in svg and ">0.25</text>" in svg
    assert svg.count('fill="#eee"') == 2
    assert "a as b: 1 pixels" in svg


def test_duration_and_number():
    assert html.duration(42) == "42 s"
    assert html.duration(804.1) == "13 min 24 s"
    assert html.duration(7500) == "2 h 05 min"
    assert html.duration(None) == "?"
    assert html.number(None) == "n/a"
    assert html.number(float("nan")) == "n/a"
    assert html.number(0.123456, 2, 100.0) == "12.35"


# --------------------------------------------------------------------------------------------
# A hand-made run folder (no training: the page reads files only)
# --------------------------------------------------------------------------------------------

LOG = [
    {
        "epoch": 1,
        "train_loss": 0.5,
        "val_loss": 0.4,
        "seconds": 60.0,
        "val_mean_iou": 0.6,
        "val_pixel_accuracy": 0.8,
        "val_iou": 0.5,
        "val_precision": 0.7,
        "val_recall": 0.6,
        "learning_rate": 1e-3,
        "val_classes": {
            "not_road": {"iou": 0.7, "precision": 0.8, "recall": 0.9, "f1": 0.82},
            "road": {"iou": 0.5, "precision": 0.7, "recall": 0.6, "f1": 0.66},
        },
    },
    {
        "epoch": 2,
        "train_loss": 0.3,
        "val_loss": 0.35,
        "seconds": 64.5,
        "val_mean_iou": 0.75,
        "val_pixel_accuracy": 0.9,
        "val_iou": 0.8125,
        "val_precision": 0.875,
        "val_recall": 0.9375,
        "learning_rate": 5e-4,
        "val_classes": {
            "not_road": {"iou": 0.6875, "precision": 0.8, "recall": 0.9, "f1": 0.81},
            "road": {"iou": 0.8125, "precision": 0.875, "recall": 0.9375, "f1": 0.896},
        },
    },
]


def _image(path, width, height, value=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((height, width, 3), value, np.uint8))


def _make_run(runs_dir, name, epochs=2, finished=True, evaluated=False):
    run = os.path.join(runs_dir, name)
    os.makedirs(run)
    config = {
        "dataset": "kitti_road",
        "encoder": "vgg16",
        "decoder": "fcn8s",
        "loss": "dice",
        "image_shape": [64, 192],
        "epochs": 2,
        "precision": "auto",
    }
    _write(run, names.CONFIG_FILE, config)
    _write(
        run,
        names.DATASET_FILE,
        {"name": "kitti_road", "class_names": ["not_road", "road"], "task": "binary"}
        | {"palette": [None, [0, 255, 0]]},
    )
    _write(run, names.CLASS_STATS_FILE, {"class_names": ["not_road", "road"], "pixels": [300, 100]})
    with open(os.path.join(run, names.LOG_FILE), "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in LOG[:epochs])
    if finished:
        summary = {"best_metric": "val_iou", "best_score": 0.8125, "best_epoch": 2}
        _write(run, names.SUMMARY_FILE, summary | {"train_seconds": 124.5, "precision": "bf16"})
    for epoch in range(1, epochs + 1):
        for stem in ("a", "b"):
            _image(os.path.join(run, f"val_overlays/epoch_{epoch:03d}/{stem}.png"), 1000, 300)
    _image(os.path.join(run, names.TEST_DIR, "t.png"), 320, 96)
    if evaluated:
        ev = os.path.join(run, names.EVAL_DIR)
        metrics = {
            "split": "val",
            "num_images": 2,
            "checkpoint": "best",
            "mean_iou": 0.625,
            "pixel_accuracy": 0.75,
            "classes": {
                "not_road": {"iou": 0.5, "precision": 0.6, "recall": 0.75, "f1": 0.667},
                "road": {"iou": 0.75, "precision": None, "recall": 1.0, "f1": 0.857},
            },
            "kitti": {"um_road": {"MaxF": 0.9125, "BestThresh": 0.5}},
            "confusion_matrix": [[3, 1], [0, 4]],
            "class_shares": {"not_road": 0.625, "road": 0.375},
        }
        _write(ev, names.EVAL_METRICS_FILE, metrics)
        _image(os.path.join(ev, names.EVAL_WORST_DIR, "01_a.png"), 700, 200)
        _image(os.path.join(ev, names.EVAL_PLOTS_DIR, "iou_vs_brightness.png"), 300, 200)
    return run


def _write(folder, name, obj):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        json.dump(obj, f)


def _text(path):
    with open(path) as f:
        return f.read()


def test_run_page_header_tables_and_galleries(tmp_path):
    run = _make_run(str(tmp_path), "20260102-030405", evaluated=True)
    page = report.write_run_page(run)
    assert page == os.path.join(run, "index.html")
    text = _text(page)
    for fact in (
        "<dt>dataset</dt><dd>kitti_road (not_road, road)</dd>",
        "<dt>encoder</dt><dd>vgg16</dd>",
        "<dt>decoder</dt><dd>fcn8s</dd>",
        "<dt>loss</dt><dd>dice</dd>",
        "<dt>image size</dt><dd>64x192</dd>",
        "<dt>epochs</dt><dd>2 of 2</dd>",
        "<dt>time</dt><dd>2 min 04 s</dd>",  # 124.5 s, rounded half to even
        "<dt>precision</dt><dd>bf16</dd>",
        "<dt>best score</dt><dd>road IoU 0.8125 at epoch 2</dd>",
    ):
        assert fact in text
    assert "&quot;decoder&quot;: &quot;fcn8s&quot;" in text  # the whole config, escaped
    # Four charts: loss, score, precision/recall, learning rate.
    assert text.count("<svg") == 4 + 1  # and the confusion matrix
    # Evaluation per class: evaluate's shares; road's precision is null.
    assert "<td>0.7500</td><td>n/a</td><td>1.0000</td><td>0.8570</td><td>37.50 %</td>" in text
    # Validation at the best epoch: training pixel shares 300 / 400 = 75 %, 100 / 400 = 25 %.
    assert "<td>0.6875</td><td>0.8000</td><td>0.9000</td><td>0.8100</td><td>75.00 %</td>" in text
    assert "<td>0.8125</td><td>0.8750</td><td>0.9375</td><td>0.8960</td><td>25.00 %</td>" in text
    assert "background: rgb(0,255,0)" in text  # road's palette swatch
    # KITTI: MaxF in %, BestThresh as a fraction; keys evaluate did not write are left out.
    assert "<td>um_road</td><td>91.25</td><td>0.500</td>" in text
    assert "AvgPrec" not in text
    # Galleries link the originals and show thumbnails, 640 px wide JPEGs of the 1000 px images.
    assert '<a href="val_overlays/epoch_002/a.png"><img src="report/thumbs/' in text
    thumb = os.path.join(run, "report/thumbs/val_overlays/epoch_002/a.jpg")
    assert cv2.imread(thumb).shape == (192, 640, 3)  # 300 * 640 / 1000
    assert cv2.imread(os.path.join(run, "report/thumbs/test/t.jpg")).shape == (96, 320, 3)
    assert "eval/worst/01_a.png" in text and "eval/plots/iou_vs_brightness.png" in text
    assert "Not evaluated" not in text and "has not finished" not in text
    # The parent's index was refreshed with this run.
    assert 'href="20260102-030405/index.html"' in _text(os.path.join(str(tmp_path), "index.html"))


def test_thumbnails_remade_only_when_stale_and_pruned(tmp_path):
    run = _make_run(str(tmp_path), "r1")
    report.write_run_page(run)
    thumb = os.path.join(run, "report/thumbs/test/t.jpg")
    os.utime(thumb, (1000, 1000))
    src = os.path.join(run, names.TEST_DIR, "t.png")
    os.utime(src, (900, 900))
    report.write_run_page(run)
    assert os.path.getmtime(thumb) == 1000  # fresh: kept
    os.utime(src, (2000, 2000))
    report.write_run_page(run)
    assert os.path.getmtime(thumb) > 2000  # older than its source: remade
    os.remove(src)
    report.write_run_page(run)
    assert not os.path.exists(thumb) and not os.path.exists(os.path.dirname(thumb))


def test_partial_run_says_what_is_missing(tmp_path):
    run = _make_run(str(tmp_path), "r2", epochs=0, finished=False)
    text = _text(report.write_run_page(run))
    assert "No epoch has finished yet" in text
    assert "Training has not finished" in text
    assert "Not evaluated yet" in text
    assert "<dt>best score</dt><dd>none yet</dd>" in text
    assert "<svg" not in text


def test_unfinished_run_takes_best_from_the_log(tmp_path):
    run = _make_run(str(tmp_path), "r3", epochs=2, finished=False)
    with open(os.path.join(run, names.LOG_FILE), "a") as f:
        f.write('{"epoch": 3, "train_lo')  # cut short by a crash
    text = _text(report.write_run_page(run))
    assert "<dt>best score</dt><dd>road IoU 0.8125 at epoch 2</dd>" in text
    assert "<dt>time</dt><dd>2 min 04 s</dd>" in text  # 60 + 64.5 s from the log
    assert "1 line(s) of log.jsonl could not be read" in text


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        report.write_run_page(str(tmp_path))
    with pytest.raises(UserError, match="does not exist"):
        report.write_run_page(str(tmp_path / "nope"))


def test_index_rows_and_sort_attributes(tmp_path):
    runs_dir = str(tmp_path)
    _make_run(runs_dir, "20260101-000000", epochs=1, finished=False)
    _make_run(runs_dir, "20260102-000000")
    os.makedirs(os.path.join(runs_dir, "not_a_run"))
    text = _text(report.write_index(runs_dir))
    body = text.split("<tbody>")[1]
    assert body.count("<tr>") == 2
    assert '<th data-sort="num">best score</th>' in text
    assert '<th data-sort="text">model</th>' in text
    # Newest first; no page yet, so each links to its folder. The unfinished run's best is
    # epoch 1's road IoU 0.5.
    assert body.index("20260102-000000") < body.index("20260101-000000")
    assert '<a href="20260102-000000/">' in body
    assert '<td data-value="0.812500">0.8125 road IoU (epoch 2)</td>' in body
    assert '<td data-value="0.500000">0.5000 road IoU (epoch 1)</td>' in body
    assert '<td data-value="1">1 / 2</td>' in body
    assert "<td>vgg16 + fcn8s</td><td>dice</td>" in body
    assert '<td data-value="12288">64x192</td>' in body  # 64 * 192 pixels
    assert "<script>" in text and "aria-sort" in text


def test_report_command(tmp_path, capsys):
    run = _make_run(str(tmp_path), "r4")
    assert cli.main(["report", run]) == 0
    assert f"wrote {run}/index.html" in capsys.readouterr().out
    bad = str(tmp_path / "missing")
    assert cli.main(["report", bad, run]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "does not exist" in captured.err
    assert f"wrote {run}/index.html" in captured.out  # the good one is still built
    assert cli.main(["report", "--all", str(tmp_path)]) == 0
    assert f"wrote {tmp_path}/index.html" in capsys.readouterr().out


def test_trained_run_gets_a_page(trained_run):
    text = _text(report.write_run_page(trained_run))
    assert "<dt>image size</dt><dd>64x192</dd>" in text
    assert "<dt>epochs</dt><dd>2 of 2</dd>" in text
    assert text.count("<svg") >= 3
    assert "val_overlays/epoch_002/" in text


# --------------------------------------------------------------------------------------------
# In a real browser: headless Chromium over the DevTools protocol on a pipe (no websocket, no
# driver): every image decoded, every local link present, the index sorts on click.
# --------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)"
)

# Lazy images below the fold load only when scrolled to; make them eager and wait for each.
_PAGE_FACTS = """(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener("load", r); i.addEventListener("error", r); setTimeout(r, 10000);
  })));
  return {images: imgs.map(i => [i.getAttribute("src"), i.naturalWidth]),
          links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href)};
})()"""


class _DevTools:
    """Chromium with --remote-debugging-pipe: JSON messages ending in NUL, commands on fd 3,
    replies and events on fd 4."""

    def __init__(self, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def pipes():
            # Via fds >= 10 first: dup2 onto the same number would keep close-on-exec, and
            # one target could be the other's source.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self._proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe"]
            + [f"--user-data-dir={profile}", "--no-first-run", "about:blank"],
            preexec_fn=pipes,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._next_id, self._events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=self.session)

    def _read(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=None, timeout=30, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._events.append(reply)

    def open(self, path, timeout=30):
        self._events = []
        self.call("Page.navigate", session=self.session, url="file://" + os.path.abspath(path))
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._events.append(self._read(deadline))

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )["result"]
        return result.get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path):
    tools = _DevTools(str(tmp_path / "chromium-profile"))
    yield tools
    tools.close()


def _check_page(browser, page):
    browser.open(page)
    facts = browser.evaluate(_PAGE_FACTS)
    broken = [src for src, width in facts["images"] if width <= 0]
    assert not broken, f"images that did not load in {page}: {broken}"
    for href in facts["links"]:
        url = urllib.parse.urlparse(href)
        assert url.scheme == "file", href  # no network
        assert os.path.exists(urllib.parse.unquote(url.path)), f"{page} links to missing {href}"
    return facts


@needs_chromium
def test_pages_in_chromium(tmp_path, browser):
    runs_dir = str(tmp_path / "runs")
    os.makedirs(runs_dir)
    _make_run(runs_dir, "20260101-000000", epochs=1, finished=False)  # best 0.5
    run = _make_run(runs_dir, "20260102-000000", evaluated=True)  # best 0.8125
    _make_run(runs_dir, "20260103-000000", epochs=0, finished=False)  # no score
    for r in sorted(os.listdir(runs_dir)):
        if os.path.isdir(os.path.join(runs_dir, r)):
            report.write_run_page(os.path.join(runs_dir, r))
    facts = _check_page(browser, os.path.join(run, "index.html"))
    # 2 + 2 across epochs (shared thumbnails), 2 of the last epoch, 1 test, 1 worst, 1 plot.
    assert len(facts["images"]) == 9
    facts = _check_page(browser, os.path.join(runs_dir, "index.html"))
    assert len(facts["links"]) == 3
    # Sorting by best score: ascending then descending, the run without a score always last.
    order = """(() => { document.querySelectorAll("thead th")[7].click();
        return Array.from(document.querySelectorAll("tbody tr td:nth-child(2)"))
            .map(td => td.textContent); })()"""
    assert browser.evaluate(order) == ["20260101-000000", "20260102-000000", "20260103-000000"]
    assert browser.evaluate(order) == ["20260102-000000", "20260101-000000", "20260103-000000"]
