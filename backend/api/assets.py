"""The frontend's own files (frontend/: the page's modules, styles, the docs' script), served
from memory.

Starlette's StaticFiles stats, opens and reads each file on the thread pool: two or three thread
hops a request, ~3 ms of the event loop's time each on this machine with nothing training and
7-9 ms with two runs training (the GIL changes hands every 5 ms), against ~1 ms for an answer from
memory. The page asks for ~40 of them at once, one after the other on the one event loop: the
compare view's first visit waited ~1 s for its modules. Here a file is read once and kept with its
gzipped bytes and ETag; a stat on each request (microseconds, on the loop) notices an edit.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response


@dataclass(frozen=True)
class Asset:
    version: tuple[int, int]  # the file's (mtime_ns, size) when it was read
    body: bytes
    gzipped: bytes | None  # None: too small to be worth it
    media_type: str
    etag: str
    last_modified: str


class Assets:
    """GET/HEAD /static/{path}: the regular files under `root`, nothing outside it."""

    def __init__(self, root: Path, gzip_min_bytes: int) -> None:
        self.root = root.resolve()
        self.gzip_min_bytes = gzip_min_bytes  # smaller files go as they are
        self._kept: dict[Path, Asset] = {}

    async def serve(self, request: Request) -> Response:
        path = self._resolve(request.path_params["path"])
        asset = None if path is None else self._asset(path)
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        headers = {"ETag": asset.etag, "Last-Modified": asset.last_modified, "Vary": "Accept-Encoding"}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped  # the gzip middleware leaves an answer with a Content-Encoding alone
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers=headers, media_type=asset.media_type)

    def _resolve(self, relative: str) -> Path | None:
        """The file `relative` names under the root, or None if it names anything else."""
        path = (self.root / relative).resolve()  # follows "..", and links, before the check
        return path if path.is_relative_to(self.root) and path != self.root else None

    def _asset(self, path: Path) -> Asset | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        version = (st.st_mtime_ns, st.st_size)
        kept = self._kept.get(path)
        if kept is not None and kept.version == version:
            return kept
        body = path.read_bytes()  # small files (the largest ~30 KB): read once per edit
        asset = Asset(
            version=version,
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= self.gzip_min_bytes else None,
            # Starlette adds "; charset=utf-8" to text types
            media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            last_modified=formatdate(st.st_mtime, usegmt=True),
        )
        self._kept[path] = asset
        return asset
