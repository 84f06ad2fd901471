"""A third party's backend, registered through the real ``poolctl.backends`` entry-point group,
brings its own ``[[pool]]`` keys: the config file takes them, checks them and names them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolctl import backends
from poolctl.config import ConfigError, load_config

pytestmark = pytest.mark.timeout(30)

# An installed distribution as importlib.metadata finds it: a module and its dist-info.
MODULE = """\
from pydantic import SecretStr

from poolctl.backends.base import Backend
from poolctl.poolconfig import PoolConfig


class FakeConfig(PoolConfig):
    endpoint: str
    retries: int = 3
    token: SecretStr | None = None


class FakeBackend(Backend):
    NAME = "fake"
    Config = FakeConfig

    def connect(self): raise NotImplementedError
    def close(self): pass
    def inventory(self): raise NotImplementedError
    def watch(self, on_change, on_state): raise NotImplementedError
    def power(self, vm, op): raise NotImplementedError
    def check_migration(self, vm, host): raise NotImplementedError
    def migrate(self, vm, host, options): raise NotImplementedError
"""
BROKEN = "import fakelib_that_is_not_installed  # noqa: F401\n"
ENTRY_POINTS = """\
[poolctl.backends]
fake = fake_backend:FakeBackend
broken = fake_backend_broken:BrokenBackend
"""

POOL = """\
[keys]

[[pool]]
name = "far"
backend = "fake"
endpoint = "fake://far.example"
retries = 5
"""


@pytest.fixture
def fake_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    info = site / "fake_backend-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "fake_backend.py").write_text(MODULE)
    (site / "fake_backend_broken.py").write_text(BROKEN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-backend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))  # and invalidates importlib's caches, metadata's too
    for name in ("fake_backend", "fake_backend_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    for name in ("fake_backend", "fake_backend_broken"):
        sys.modules.pop(name, None)


def write(directory: Path, text: str) -> Path:
    path = directory / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_the_entry_point_is_found_next_to_poolctls_own(fake_backend):
    assert {"fake", "broken", "xen", "kvm"} <= set(backends.available())


def test_its_own_field_arrives_in_its_own_model(fake_backend):
    (pool,) = load_config(write(fake_backend, POOL)).pools
    cls = backends.load("fake")
    assert type(pool) is cls.Config and type(pool).__name__ == "FakeConfig"
    assert (pool.name, pool.endpoint, pool.retries) == ("far", "fake://far.example", 5)
    assert cls(pool).config is pool  # the backend is configured by it
    defaults = load_config(write(fake_backend, POOL.replace("retries = 5\n", ""))).pools[0]
    assert defaults.retries == 3


def test_a_wrong_type_names_file_line_and_field(fake_backend):
    path = write(fake_backend, POOL.replace("retries = 5", 'retries = "many"'))
    msg = error_of(path)
    assert msg.startswith(f'{path}:7: pool #1 ("far"), retries: '), msg
    assert "integer" in msg and "(got 'many')" in msg


def test_an_unknown_key_lists_that_backends_fields(fake_backend):
    path = write(fake_backend, POOL.replace("retries = 5", "retry = 5"))
    msg = error_of(path)
    assert msg.startswith(f"{path}:7: pool #1 (\"far\"), retry: unknown key 'retry'"), msg
    shared = "name, backend, username, password, password_command"
    assert msg.endswith(f"expected one of: {shared}, endpoint, retries, token")


def test_a_secret_of_its_own_is_never_echoed(fake_backend):
    msg = error_of(write(fake_backend, POOL.replace("retries = 5", "token = 987654321")))
    assert "config.toml:7:" in msg and "token" in msg and "987654321" not in msg
    (pool,) = load_config(write(fake_backend, POOL.replace("retries = 5", 'token = "987654321"'))).pools
    assert pool.token.get_secret_value() == "987654321" and "987654321" not in repr(pool)


def test_a_missing_field_of_its_own_is_named(fake_backend):
    path = write(fake_backend, POOL.replace('endpoint = "fake://far.example"\n', ""))
    msg = error_of(path)
    assert msg.startswith(f'{path}:3: pool #1 ("far"): '), msg  # the [[pool]] line: the key is absent
    assert "backend 'fake' needs endpoint" in msg


def test_the_other_backends_fields_are_not_its_own(fake_backend):
    msg = error_of(write(fake_backend, POOL.replace("retries = 5", "verify_tls = false")))
    assert "config.toml:7:" in msg and "unknown key 'verify_tls'" in msg


def test_a_backend_whose_module_cannot_be_imported_is_one_message(fake_backend):
    path = write(fake_backend, POOL.replace('backend = "fake"', 'backend = "broken"'))
    msg = error_of(path)
    assert msg.startswith(f'{path}:5: pool #1 ("far"), backend: '), msg
    assert "backend 'broken' cannot be loaded" in msg and "fakelib_that_is_not_installed" in msg
    assert "reinstall fake-backend" in msg  # the distribution that registered it
    assert "\n" not in msg


def test_an_unknown_backend_lists_the_third_partys_too(fake_backend):
    msg = error_of(write(fake_backend, POOL.replace('backend = "fake"', 'backend = "fakes"')))
    assert "config.toml:5:" in msg and "registered backends: broken, fake, kvm, xen" in msg
