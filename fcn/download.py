"""Fetch and unpack the pretrained VGG16 (Udacity ``vgg.zip``) without ever leaving half files.

``download`` writes to ``dest + '.part'``, resumes it with an HTTP Range request, retries with
backoff and renames into place only once the size (and optional sha256) check out.
``safe_extract_zip`` refuses members that would land outside the target folder and unpacks into a
staging folder first, so an interrupted run leaves either the old tree or the new one.
"""

import hashlib
import http.client
import os
import re
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import PureWindowsPath

from tqdm import tqdm

from fcn.errors import UserError

VGG_URL = "https://s3-us-west-1.amazonaws.com/udacity-selfdrivingcar/vgg.zip"
# The SavedModel that load_vgg() reads, relative to data_dir/vgg.
VGG_FILES = (
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
    "saved_model.pb",
)

_VGG_DIRNAME = "vgg"  # the zip's top-level folder
_VGG_ZIP_NAME = "vgg.zip"
_VGG_DESC = "Downloading pre-trained vgg model"
_KERAS_H5 = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"

_PART_SUFFIX = ".part"
_STAGING_PREFIX = ".extract-"
_CHUNK_BYTES = 1 << 20  # 1 MiB: few syscalls, and a cut connection loses little
_BACKOFF_S = 1.0  # first retry waits this long, then doubles: 1, 2, 4 s
# HTTP errors worth retrying (timeouts, rate limits, server trouble); other 4xx never heal.
_RETRY_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
# What a damaged archive raises somewhere between opening it and reading every member.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)

_sleep = time.sleep  # tests replace it so retries cost no time


class _RetryableError(Exception):
    """A network failure that a later attempt may get past; the ``.part`` file is kept."""


class _FetchError(UserError):
    """The download failed for good (offline, HTTP 404, ...); ``reason`` is the short cause."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def maybe_download_pretrained_vgg(
    data_dir: str,
    url: str = VGG_URL,
    retries: int = 3,
    timeout: float = 30,
    sha256: str | None = None,
) -> str:
    """Make sure ``data_dir/vgg`` holds the VGG16 SavedModel and return that folder.

    Nothing happens when all of ``VGG_FILES`` exist. Otherwise ``data_dir/vgg.zip`` is downloaded
    (or reused if it is already there, e.g. copied by hand), unpacked into ``data_dir`` (its
    top-level ``vgg/`` folder replaces any incomplete one) and deleted.
    """
    vgg_dir = os.path.join(data_dir, _VGG_DIRNAME)
    if all(os.path.isfile(os.path.join(vgg_dir, name)) for name in VGG_FILES):
        return vgg_dir
    os.makedirs(data_dir, exist_ok=True)
    zip_path = os.path.join(data_dir, _VGG_ZIP_NAME)
    if os.path.exists(zip_path):
        if sha256 is not None:
            _check_sha256(zip_path, sha256, f"{zip_path}: delete it and rerun to download it again")
    else:
        try:
            download(url, zip_path, retries=retries, timeout=timeout, sha256=sha256, desc=_VGG_DESC)
        except _FetchError as e:
            raise UserError(_vgg_unavailable_message(url, vgg_dir, e.reason)) from e
    # Check the contents before unpacking so a wrong archive leaves data_dir untouched.
    with _open_zip(zip_path) as archive:
        names = set(archive.namelist())
    missing = [name for name in VGG_FILES if f"{_VGG_DIRNAME}/{name}" not in names]
    if missing:
        raise UserError(
            f"{zip_path} is not the VGG16 archive (no {_VGG_DIRNAME}/{missing[0]}); "
            "delete it and rerun to download it again"
        )
    safe_extract_zip(zip_path, data_dir)
    os.remove(zip_path)  # ~500 MB that is no longer needed
    return vgg_dir


def download(
    url: str,
    dest: str,
    retries: int = 3,
    timeout: float = 30,
    sha256: str | None = None,
    desc: str | None = None,
) -> str:
    """Download ``url`` to ``dest`` and return ``dest``; makes ``1 + retries`` attempts.

    Bytes go to ``dest + '.part'``. Each retry (after ``_BACKOFF_S * 2**k`` seconds) resumes it
    with a Range request, or starts over when the server ignores Range. The finished file must
    match Content-Length and ``sha256`` (hex) when given; only then is it renamed to ``dest``, so
    ``dest`` is either absent or whole. Raises UserError when the attempts are spent, on an HTTP
    error that retrying cannot fix, on a checksum mismatch (the ``.part`` is deleted) or when the
    file cannot be written.
    """
    part = dest + _PART_SUFFIX
    desc = desc or os.path.basename(dest)
    attempts = 1 + max(0, retries)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        for attempt in range(attempts):
            if attempt:
                _sleep(_BACKOFF_S * 2 ** (attempt - 1))
            try:
                _fetch_once(url, part, timeout, desc)
                break
            except _RetryableError as e:
                reason = str(e)
        else:
            raise _FetchError(
                f"could not download {url} after {attempts} attempts ({reason}); "
                "check the network connection and rerun (a partial download is resumed)",
                reason,
            )
        if sha256 is not None:
            _check_sha256(part, sha256, f"downloaded from {url}; rerun to download it again")
        os.replace(part, dest)
    except OSError as e:  # network errors are _RetryableError by now: this is the local disk
        raise UserError(
            f"cannot write {e.filename or part} ({e.strerror or e}); "
            "free some disk space or choose another data folder"
        ) from e
    return dest


def safe_extract_zip(zip_path: str, target_dir: str) -> list[str]:
    """Unpack ``zip_path`` into ``target_dir`` and return the paths of the files written.

    The archive is checked first (CRC of every member) and every member must stay inside
    ``target_dir``: absolute names, ``..`` and symlink entries raise UserError before anything is
    written. Members are unpacked into a staging folder beside ``target_dir`` and each top-level
    entry is then renamed into place, replacing an existing entry of the same name.
    """
    target_dir = os.path.realpath(target_dir)
    with _open_zip(zip_path) as archive:
        try:
            bad = archive.testzip()
        except _ZIP_ERRORS as e:
            raise _corrupt_zip(zip_path, e) from e
        if bad is not None:
            raise _corrupt_zip(zip_path, f"bad CRC in {bad!r}")
        members = archive.infolist()
        for info in members:
            _check_member(zip_path, info, target_dir)
        try:
            os.makedirs(target_dir, exist_ok=True)
            staging = _make_staging_dir(target_dir)
        except OSError as e:
            raise _cannot_extract(zip_path, target_dir, e) from e
        try:
            for info in members:
                archive.extract(info, staging)
            _move_into_place(staging, target_dir)
        except _ZIP_ERRORS as e:
            raise _corrupt_zip(zip_path, e) from e
        except OSError as e:
            raise _cannot_extract(zip_path, target_dir, e) from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [
        os.path.join(target_dir, *info.filename.split("/")) for info in members if not info.is_dir()
    ]


def _fetch_once(url: str, part: str, timeout: float, desc: str) -> None:
    """One attempt: append the rest of ``url`` to ``part``; raise _RetryableError if cut short."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:
            # The .part is already whole, or longer than the file (stale): start over if so.
            match = _UNSATISFIED_RANGE.fullmatch(e.headers.get("Content-Range", ""))
            if match and int(match[1]) == offset:
                return
            os.remove(part)
            raise _RetryableError(f"HTTP 416 for a {offset}-byte partial file") from e
        if e.code in _RETRY_HTTP_CODES:
            raise _RetryableError(f"HTTP {e.code} {e.reason}") from e
        reason = f"HTTP {e.code} {e.reason}"
        raise _FetchError(f"could not download {url} ({reason}); check the URL", reason) from e
    except (OSError, http.client.HTTPException) as e:
        raise _RetryableError(_describe(e)) from e

    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if not match or int(match[1]) != offset:
                os.remove(part)  # some other slice: the .part cannot be trusted
                raise _RetryableError(f"unexpected Content-Range for a resume from byte {offset}")
            total = None if match[3] == "*" else int(match[3])
        else:
            # A 200 carries the whole file, also when the server ignored our Range.
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=total,
                initial=offset,
                desc=desc,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
            ) as bar,
        ):
            while chunk := _read_chunk(response):
                out.write(chunk)
                bar.update(len(chunk))
    size = os.path.getsize(part)
    if total is not None and size != total:
        if size > total:
            os.remove(part)  # more than the server says exists: start over
        # http.client ends a body cut short without raising, so the size is the only witness.
        raise _RetryableError(f"connection closed after {size} of {total} bytes")


def _read_chunk(response: http.client.HTTPResponse) -> bytes:
    # Network failures mid-body become _RetryableError so they are told apart from disk errors.
    try:
        return response.read(_CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as e:
        raise _RetryableError(_describe(e)) from e


def _describe(error: Exception) -> str:
    # URLError wraps the socket error that says what happened ("Connection refused").
    reason = getattr(error, "reason", None) or error
    return str(reason) or type(reason).__name__


def _check_sha256(path: str, expected: str, fix: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        os.remove(path)
        raise UserError(
            f"{path} has sha256 {digest.hexdigest()}, expected {expected.lower()} "
            f"(the file was deleted); {fix}"
        )


def _vgg_unavailable_message(url: str, vgg_dir: str, reason: str) -> str:
    return (
        f"could not download the pre-trained VGG16 from {url} ({reason}); build one locally "
        f"instead with `python main.py vgg --random --out {vgg_dir}` (random weights, trains "
        f"from scratch) or `python main.py vgg --keras-h5 {_KERAS_H5} --out {vgg_dir}` "
        f"(ImageNet weights), or copy the contents of an existing {_VGG_ZIP_NAME} there"
    )


def _open_zip(zip_path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except FileNotFoundError as e:
        raise UserError(f"{zip_path} does not exist; check the path") from e
    except (*_ZIP_ERRORS, OSError) as e:
        raise _corrupt_zip(zip_path, e) from e


def _corrupt_zip(zip_path: str, cause: object) -> UserError:
    return UserError(
        f"{zip_path} is not a valid zip archive ({cause}); "
        "it is probably an incomplete download: delete it and retry"
    )


def _cannot_extract(zip_path: str, target_dir: str, error: OSError) -> UserError:
    return UserError(
        f"cannot extract {zip_path} into {target_dir} ({error.strerror or error}); "
        "free some disk space or fix the folder's permissions and retry"
    )


def _check_member(zip_path: str, info: zipfile.ZipInfo, target_dir: str) -> None:
    """Raise UserError if ``info`` would be written anywhere but inside ``target_dir``."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        why = "symlink entry"
    elif name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        why = "absolute path"
    elif ".." in name.replace("\\", "/").split("/"):
        why = "'..' in path"
    elif not _is_inside(os.path.join(target_dir, name), target_dir):
        why = f"resolves outside {target_dir}"
    else:
        return
    raise UserError(
        f"{zip_path}: refusing to extract member {name!r} ({why}); the archive is unsafe, "
        "delete it and get it again from a trusted source"
    )


def _is_inside(path: str, root: str) -> bool:
    # realpath so that a symlink already on disk cannot carry a member out of root.
    return os.path.commonpath([os.path.realpath(path), root]) == root


def _make_staging_dir(target_dir: str) -> str:
    # Beside target_dir so the final moves are same-filesystem renames; inside it when the parent
    # is another filesystem (target_dir is a mount point) or is not writable.
    if not os.path.ismount(target_dir):
        try:
            return tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=os.path.dirname(target_dir))
        except OSError:
            pass
    return tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=target_dir)


def _move_into_place(staging: str, target_dir: str) -> None:
    for entry in os.listdir(staging):
        new, final = os.path.join(staging, entry), os.path.join(target_dir, entry)
        if os.path.isdir(final) and not os.path.islink(final):
            # A rename cannot replace a non-empty folder: park the old one in staging (deleted
            # with it) so the new one appears in one step.
            os.rename(final, os.path.join(staging, f"{_STAGING_PREFIX}old-{entry}"))
        os.replace(new, final)
