"""Backends and the core must import without Textual: they serve the CLI and third parties."""

import subprocess
import sys

from poolctl import backends


def _modules_after_import(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def test_every_registered_backend_imports_without_textual():
    names = sorted(backends.available())
    assert {"xen", "kvm"} <= set(names)
    loads = "\n".join(f"backends.load({n!r})" for n in names)
    mods = _modules_after_import("from poolctl import backends\n" + loads)
    assert "poolctl.backends.xen" in mods and "poolctl.backends.kvm" in mods
    assert not {m for m in mods if m == "textual" or m.startswith(("textual.", "poolctl.tui"))}


def test_core_modules_import_without_textual():
    mods = _modules_after_import(
        "import poolctl.model, poolctl.inventory, poolctl.config, poolctl.backends.base, poolctl.sim.xapi, poolctl.ping"
    )
    assert "poolctl.sim.xapi" in mods
    assert "textual" not in mods


def _tui_modules(mods: set[str]) -> set[str]:
    return {m for m in mods if m == "textual" or m.startswith(("textual.", "poolctl.tui"))}


def test_cli_modules_import_without_textual():
    mods = _modules_after_import(
        "import poolctl.cli.ls, poolctl.format, poolctl.cli, poolctl.cli.migrate, poolctl.migration.controller, "
        "poolctl.audit"
    )
    assert {"poolctl.cli.ls", "poolctl.format", "poolctl.cli.migrate"} <= mods
    assert not _tui_modules(mods)


def test_poolctl_ls_runs_without_textual():
    # the whole `poolctl ls` path, against the demo pools, not just its imports
    mods = _modules_after_import(
        "import contextlib, io\nfrom poolctl.cli import main\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n    assert main(['ls', '--demo']) == 0, out.getvalue()\n"
        "assert 'web-01' in out.getvalue(), out.getvalue()"
    )
    assert "poolctl.cli.ls" in mods and "poolctl.backends.xen" in mods
    assert not _tui_modules(mods)
