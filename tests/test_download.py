"""fcn.download against a loopback HTTP server: resume, retries, checksums and safe unzipping."""

import hashlib
import http.server
import io
import os
import socket
import stat
import threading
import zipfile

import pytest

from fcn import download as dl
from fcn.errors import UserError

_ZIP_PATH = "/vgg.zip"
_PAYLOAD_BYTES = 300_000  # several 64 KiB socket reads, so a cut lands mid-body
_CUT_AFTER = 100_000


class _State:
    """What the handler serves and what it saw; shared with the test through the server."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.cut_after = None  # first request only: send this many body bytes, then hang up
        self.ignore_range = False  # answer 200 with the whole file even when asked for a range
        self.range_headers = []  # the Range header of every request (None when absent)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        state = self.server.state
        state.range_headers.append(self.headers.get("Range"))
        if self.path != _ZIP_PATH:
            self.send_error(404)
            return
        data, start = state.payload, 0
        requested = self.headers.get("Range")
        if requested and not state.ignore_range:
            start = int(requested.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None and len(state.range_headers) == 1:
            body = body[: state.cut_after]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def _vgg_members() -> dict[str, bytes]:
    # Random bytes do not compress, so the archive stays large enough to cut mid-body.
    weights = os.urandom(_PAYLOAD_BYTES)
    return {
        "vgg/": b"",
        "vgg/variables/": b"",
        "vgg/saved_model.pb": b"graph",
        "vgg/variables/variables.index": b"index",
        "vgg/variables/variables.data-00000-of-00001": weights,
    }


def _listing(root) -> set[str]:
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
    }


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    # A proxy from the environment would swallow loopback requests; backoff would cost seconds.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    sleeps = []
    monkeypatch.setattr(dl, "_sleep", sleeps.append)
    return sleeps


@pytest.fixture
def server():
    state = _State(_zip_bytes(_vgg_members()))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}{_ZIP_PATH}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url():
    # Bind then close: nothing listens there, so a connection is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{_ZIP_PATH}"


def test_download_whole_file(server, tmp_path):
    dest = str(tmp_path / "vgg.zip")
    assert dl.download(server.url, dest, timeout=5) == dest
    assert (tmp_path / "vgg.zip").read_bytes() == server.payload
    assert server.range_headers == [None]
    assert os.listdir(tmp_path) == ["vgg.zip"]  # no .part left behind


def test_download_resumes_after_cut_connection(server, tmp_path, sleeps):
    server.cut_after = _CUT_AFTER
    dest = tmp_path / "vgg.zip"
    dl.download(server.url, str(dest), timeout=5)
    assert server.range_headers == [None, f"bytes={_CUT_AFTER}-"]
    assert dest.read_bytes() == server.payload
    assert sleeps == [dl._BACKOFF_S]


def test_download_resumes_existing_part_file(server, tmp_path):
    dest = tmp_path / "vgg.zip"
    (tmp_path / "vgg.zip.part").write_bytes(server.payload[:1234])
    dl.download(server.url, str(dest), timeout=5)
    assert server.range_headers == ["bytes=1234-"]
    assert dest.read_bytes() == server.payload


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    # The stale .part holds wrong bytes: appending the 200 body to it would corrupt the file.
    server.ignore_range = True
    server.cut_after = _CUT_AFTER
    dest = tmp_path / "vgg.zip"
    (tmp_path / "vgg.zip.part").write_bytes(b"x" * 500)
    dl.download(server.url, str(dest), timeout=5)
    assert server.range_headers == ["bytes=500-", f"bytes={_CUT_AFTER}-"]
    assert dest.read_bytes() == server.payload


def test_download_complete_part_file_gets_416(server, tmp_path):
    (tmp_path / "vgg.zip.part").write_bytes(server.payload)
    dl.download(server.url, str(tmp_path / "vgg.zip"), timeout=5)
    assert (tmp_path / "vgg.zip").read_bytes() == server.payload


def test_download_checks_sha256(server, tmp_path):
    dest = tmp_path / "vgg.zip"
    good = hashlib.sha256(server.payload).hexdigest()
    dl.download(server.url, str(dest), timeout=5, sha256=good.upper())
    assert dest.read_bytes() == server.payload

    other = tmp_path / "other.zip"
    with pytest.raises(UserError, match="sha256") as info:
        dl.download(server.url, str(other), timeout=5, sha256="0" * 64)
    assert "\n" not in str(info.value)
    assert not other.exists()
    assert not (tmp_path / "other.zip.part").exists()


def test_download_gives_up_after_retries(closed_port_url, tmp_path, sleeps):
    dest = tmp_path / "vgg.zip"
    with pytest.raises(UserError, match="after 3 attempts") as info:
        dl.download(closed_port_url, str(dest), retries=2, timeout=5)
    assert closed_port_url in str(info.value)
    assert sleeps == [1.0, 2.0]  # backoff doubles
    assert os.listdir(tmp_path) == []


def test_download_does_not_retry_404(server, tmp_path, sleeps):
    url = server.url.replace(_ZIP_PATH, "/missing.zip")
    with pytest.raises(UserError, match="HTTP 404"):
        dl.download(url, str(tmp_path / "vgg.zip"), timeout=5)
    assert len(server.range_headers) == 1
    assert sleeps == []


def test_maybe_download_offline_explains_local_build(closed_port_url, tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(UserError) as info:
        dl.maybe_download_pretrained_vgg(str(data_dir), url=closed_port_url, retries=1, timeout=5)
    message = str(info.value)
    assert closed_port_url in message
    assert f"main.py vgg --random --out {data_dir / 'vgg'}" in message
    assert "--keras-h5 vgg16_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert "\n" not in message
    assert not (data_dir / "vgg").exists()


def test_maybe_download_skips_when_files_exist(server, tmp_path):
    vgg_dir = tmp_path / "vgg"
    for name in dl.VGG_FILES:
        (vgg_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (vgg_dir / name).write_bytes(b"present")
    assert dl.maybe_download_pretrained_vgg(str(tmp_path), url=server.url) == str(vgg_dir)
    assert server.range_headers == []


def test_maybe_download_fetches_and_unpacks(server, tmp_path):
    # An incomplete vgg folder from an earlier run is replaced as a whole.
    (tmp_path / "vgg").mkdir()
    (tmp_path / "vgg" / "saved_model.pb").write_bytes(b"stale")
    vgg_dir = dl.maybe_download_pretrained_vgg(str(tmp_path), url=server.url, timeout=5)
    assert vgg_dir == str(tmp_path / "vgg")
    members = _zip_members(server.payload)
    for name in dl.VGG_FILES:
        assert (tmp_path / "vgg" / name).read_bytes() == members[f"vgg/{name}"]
    assert sorted(os.listdir(tmp_path)) == ["vgg"]  # zip, .part and staging are all gone


def test_maybe_download_rejects_archive_without_vgg(tmp_path):
    (tmp_path / "vgg.zip").write_bytes(_zip_bytes({"other/saved_model.pb": b"x"}))
    with pytest.raises(UserError, match="not the VGG16 archive"):
        dl.maybe_download_pretrained_vgg(str(tmp_path), url="http://127.0.0.1:1/unused")
    assert os.listdir(tmp_path) == ["vgg.zip"]


def test_safe_extract_zip_good_archive(tmp_path):
    members = _vgg_members()
    zip_path = tmp_path / "vgg.zip"
    zip_path.write_bytes(_zip_bytes(members))
    data_dir = tmp_path / "data"
    written = dl.safe_extract_zip(str(zip_path), str(data_dir))
    files = {name: data for name, data in members.items() if not name.endswith("/")}
    assert sorted(written) == sorted(str(data_dir / name) for name in files)
    for name, data in files.items():
        assert (data_dir / name).read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["data", "vgg.zip"]  # staging folder removed


def _symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("vgg/saved_model.pb", b"graph")
        link = zipfile.ZipInfo("vgg/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "../../evil")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "archive, why",
    [
        (_zip_bytes({"vgg/saved_model.pb": b"ok", "../evil": b"x"}), "'..' in path"),
        (_zip_bytes({"vgg/../../evil": b"x"}), "'..' in path"),
        (_zip_bytes({"/abs/evil": b"x"}), "absolute path"),
        (_symlink_zip(), "symlink entry"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
def test_safe_extract_zip_refuses_escaping_members(tmp_path, archive, why):
    zip_path = tmp_path / "bad.zip"
    zip_path.write_bytes(archive)
    data_dir = tmp_path / "inner" / "data"
    with pytest.raises(UserError, match=why) as info:
        dl.safe_extract_zip(str(zip_path), str(data_dir))
    assert str(zip_path) in str(info.value)
    assert _listing(tmp_path) == {"bad.zip"}  # not even the harmless members were written


def test_safe_extract_zip_not_a_zip(tmp_path):
    zip_path = tmp_path / "vgg.zip"
    zip_path.write_bytes(b"<html>Access Denied</html>")
    with pytest.raises(UserError, match="delete it") as info:
        dl.safe_extract_zip(str(zip_path), str(tmp_path / "data"))
    assert str(zip_path) in str(info.value)
    assert not (tmp_path / "data").exists()


def test_safe_extract_zip_bad_crc(tmp_path):
    # Stored (uncompressed) members put the bytes verbatim in the file, so one can be flipped.
    archive = bytearray(_zip_bytes({"vgg/saved_model.pb": b"A" * 1000}))
    archive[archive.index(b"A" * 1000) + 10] ^= 0xFF
    zip_path = tmp_path / "vgg.zip"
    zip_path.write_bytes(bytes(archive))
    with pytest.raises(UserError, match=r"bad CRC in 'vgg/saved_model\.pb'.*delete it"):
        dl.safe_extract_zip(str(zip_path), str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_safe_extract_zip_interrupted_leaves_old_tree(tmp_path, monkeypatch):
    zip_path = tmp_path / "vgg.zip"
    zip_path.write_bytes(_zip_bytes(_vgg_members()))
    data_dir = tmp_path / "data"
    (data_dir / "vgg").mkdir(parents=True)
    (data_dir / "vgg" / "saved_model.pb").write_bytes(b"old")
    real_extract = zipfile.ZipFile.extract
    calls = []

    def extract_then_die(self, member, path=None, pwd=None):
        calls.append(member)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C halfway through
        return real_extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", extract_then_die)
    with pytest.raises(KeyboardInterrupt):
        dl.safe_extract_zip(str(zip_path), str(data_dir))
    assert _listing(tmp_path) == {"vgg.zip", "data", "data/vgg", "data/vgg/saved_model.pb"}
    assert (data_dir / "vgg" / "saved_model.pb").read_bytes() == b"old"


def _zip_members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}
