"""The state store under ``--root``: one directory per container.

``state.json`` is the single source of truth between commands; the status is
derived at read time (DESIGN-NOTES: never trust a stored status).  Writers
hold the container's ``lock`` (flock) so concurrent commands never corrupt
it, and the directory is created with ``mkdir`` so two creates of one ID race
safely: exactly one wins.
"""
import errno
import fcntl
import json
import os
import re

from ocirt.errors import ContainerNotFound, OcirtError

_ID_RE = re.compile(r"^[A-Za-z0-9_+.-]+$")


def validate_id(container_id):
    if not _ID_RE.match(container_id) or container_id in (".", ".."):
        raise OcirtError(f"invalid container ID format: {container_id}")
    return container_id
