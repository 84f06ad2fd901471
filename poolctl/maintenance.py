"""poolctl's own record of a host's maintenance, for hypervisors that keep none (libvirt has no
"disabled" flag for a host; XAPI has ``host.enabled`` and XenCenter's ``other_config`` keys).

One small JSON file per host, keyed by the host's UUID, under ``<state dir>/hosts/``: every poolctl
process (each CLI command, the TUI) reads the same record, so a host disabled by one is refused
as a destination by all. Files are replaced atomically (write, fsync, rename): a crash leaves the
old record or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from poolctl.audit import state_dir

_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class HostMark(BaseModel):
    """What poolctl knows of one host's maintenance."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    disabled: bool = False  # no VM may start on it or move to it
    maintenance: bool = False  # disabled by an evacuation: the admin is working on it
    evacuated: tuple[str, ...] = Field(default=())  # VM UUIDs the last evacuation moved away
    since: str = ""  # ISO 8601 UTC, when it was disabled
    by: str = ""  # which poolctl command disabled it, for the admin who wonders


class MarkError(Exception):
    """The record cannot be read or written: names the file."""


class HostMarks:
    """The records of every host, in ``folder`` (default: ``<state dir>/hosts``)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else state_dir() / "hosts"

    def path(self, host_uuid: str) -> Path:
        # A UUID from a hypervisor names a file here: nothing but a plain key may do that.
        if not _SAFE_KEY.match(host_uuid):
            raise MarkError(f"host UUID {host_uuid!r} cannot name a state file")
        return self.folder / f"{host_uuid}.json"

    def get(self, host_uuid: str) -> HostMark:
        path = self.path(host_uuid)
        try:
            return HostMark.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return HostMark()
        except (OSError, ValidationError, ValueError) as exc:
            raise MarkError(f"cannot read the maintenance record {path}: {exc}") from None

    def put(self, host_uuid: str, mark: HostMark) -> None:
        path = self.path(host_uuid)
        if mark == HostMark():
            self._remove(path)
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".host-", dir=self.folder)
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(mark.model_dump(mode="json"), out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise MarkError(f"cannot write the maintenance record {path}: {exc.strerror or exc}") from None

    def disable(
        self, host_uuid: str, *, maintenance: bool = False, evacuated: tuple[str, ...] = (), by: str = ""
    ) -> HostMark:
        old = self.get(host_uuid)
        mark = HostMark(
            disabled=True,
            maintenance=maintenance or old.maintenance,
            evacuated=evacuated or old.evacuated,
            since=old.since or datetime.now(UTC).isoformat(timespec="seconds"),
            by=by or old.by,
        )
        self.put(host_uuid, mark)
        return mark

    def enable(self, host_uuid: str) -> HostMark:
        """Clear the record; the one it replaced is returned (its ``evacuated`` list serves a restore)."""
        old = self.get(host_uuid)
        self.put(host_uuid, HostMark())
        return old

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MarkError(f"cannot remove the maintenance record {path}: {exc.strerror or exc}") from None
