"""The page at GET /: drop or pick images, see each overlay with its legend, class shares and
time. One self-contained HTML file (inline CSS and plain JavaScript, no CDN), so it works
offline in any current browser. Each image is POSTed to /v1/segment?output=json&overlay=1.
"""

import html

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__NAME__: segment images</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
#drop { border: 2px dashed #888; border-radius: 8px; padding: 2em; text-align: center; }
#drop.over { background: #eef6ee; border-color: #2a2; }
.result { margin: 1.2em 0; border-top: 1px solid #ddd; padding-top: .8em; }
.result img { max-width: 100%; display: block; }
.legend span.swatch { display: inline-block; width: 12px; height: 12px;
  margin: 0 .3em 0 1em; vertical-align: middle; border: 1px solid #444; }
.error { color: #b00; }
small { color: #666; }
</style></head>
<body>
<h1>__NAME__</h1>
<div id="drop">Drop images here, or <label>pick them:
  <input id="files" type="file" accept="image/png,image/jpeg,image/tiff,image/bmp" multiple>
  </label></div>
<div id="results"></div>
<script>
"use strict";
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }
function show(box, file, answer, ms) {
  var img = el("img", "overlay");
  img.alt = "overlay of " + file.name;
  img.src = "data:image/png;base64," + answer.overlay_png;
  box.appendChild(img);
  var legend = el("div", "legend");
  answer.classes.forEach(function (c) {
    if (c.color === null) return;
    var entry = el("span", "entry");
    var swatch = el("span", "swatch");
    swatch.style.background = rgb(c.color);
    entry.appendChild(swatch);
    entry.appendChild(document.createTextNode(
      c.name + " " + (100 * c.share).toFixed(1) + "%"));
    legend.appendChild(entry);
  });
  box.appendChild(legend);
  var t = answer.timings_ms;
  box.appendChild(el("small", "time", answer.size[1] + "x" + answer.size[0] + " px, " +
    ms.toFixed(0) + " ms in all (server " + t.total.toFixed(0) + " ms: queue " +
    t.queue.toFixed(0) + ", predict " + t.predict.toFixed(0) + " in a batch of " +
    answer.batch + ")"));
}
function segment(file) {
  var box = el("div", "result");
  box.appendChild(el("div", "name", file.name));
  document.getElementById("results").prepend(box);
  var start = performance.now();
  fetch("/v1/segment?output=json&overlay=1", { method: "POST", body: file })
    .then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, json: j }; });
    })
    .then(function (r) {
      if (!r.ok) throw new Error(r.json.error);
      show(box, file, r.json, performance.now() - start);
    })
    .catch(function (e) { box.appendChild(el("div", "error", String(e.message || e))); });
}
function take(files) { Array.prototype.forEach.call(files, segment); }
var drop = document.getElementById("drop");
document.getElementById("files").addEventListener("change", function (e) {
  take(e.target.files);
});
drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.className = "over"; });
drop.addEventListener("dragleave", function () { drop.className = ""; });
drop.addEventListener("drop", function (e) {
  e.preventDefault(); drop.className = ""; take(e.dataTransfer.files);
});
</script>
</body></html>
"""


def html_page(name):
    """The page for the model `name`."""
    return _PAGE.replace("__NAME__", html.escape(name))
