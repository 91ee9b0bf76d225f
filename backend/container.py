"""Whether this process runs in the project's Docker image, whose Dockerfile sets
MAKEMORE_IN_CONTAINER=1. Not /.dockerenv: dev containers and CI jobs have that file too, where the
server is not behind the image's `-p` and its own addresses are the ones to open.
"""

from __future__ import annotations

import os

ENV = "MAKEMORE_IN_CONTAINER"


def in_container() -> bool:
    return os.environ.get(ENV, "").strip() == "1"
