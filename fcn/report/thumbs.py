"""Gallery thumbnails: RUN/report/thumbs/<the source's path>.jpg, at most THUMB_WIDTH wide.

A page shows the thumbnail and links to the full-size source, so it stays small however large the
images are; a thumbnail is remade only when it is missing or older than its source."""

import os

import cv2

from fcn import runs

REPORT_DIR = "report"  # under the run folder: everything the page made
THUMBS_DIR = "thumbs"
THUMB_WIDTH = 640  # px: large enough to judge a segmentation, a few tens of KB as JPEG
JPEG_QUALITY = 85


def thumb_path(rel):
    """RUN-relative path of the source `rel`'s thumbnail (POSIX separators, as in links)."""
    stem = os.path.splitext(rel.replace(os.sep, "/"))[0]
    return f"{REPORT_DIR}/{THUMBS_DIR}/{stem}.jpg"


def make_thumbnail(run_dir, rel, width=THUMB_WIDTH):
    """The thumbnail's RUN-relative path, made if missing or stale; None when the source cannot
    be decoded (the page then leaves the image out)."""
    src = os.path.join(run_dir, rel)
    out_rel = thumb_path(rel)
    out = os.path.join(run_dir, out_rel)
    if os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out_rel
    image = cv2.imread(src, cv2.IMREAD_COLOR)  # BGR, as imencode wants it
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > width:
        # INTER_AREA averages the pixels a thumbnail pixel covers: no aliasing on thin edges.
        image = cv2.resize(image, (width, max(1, round(h * width / w))), cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    runs.atomic_write_bytes(out, buf.tobytes())
    return out_rel


def prune(run_dir, keep):
    """Remove thumbnails whose page entry is gone (e.g. a new eval's worst images), and empty
    folders; `keep` holds RUN-relative paths."""
    root = os.path.join(run_dir, REPORT_DIR, THUMBS_DIR)
    keep = {os.path.normpath(os.path.join(run_dir, k)) for k in keep}
    for folder, _, files in os.walk(root, topdown=False):
        for f in files:
            path = os.path.normpath(os.path.join(folder, f))
            if path not in keep:
                os.remove(path)
        if folder != root and not os.listdir(folder):
            os.rmdir(folder)
