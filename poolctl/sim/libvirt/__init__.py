"""A demo KVM pool on libvirt's test driver: two private hosts, no daemon, no root.

``demo_config(tmpdir)`` copies the host descriptions (``kvm-demo-a.xml``,
``kvm-demo-b.xml``) into ``tmpdir`` and returns the pool's settings (a ``KvmConfig``) whose URIs are
``test:///<tmpdir>/kvm-demo-a.xml`` and ``...-b.xml``. Each connection to such a URI
gets its own in-memory copy: power operations change only that copy and vanish
with it. The test driver cannot migrate: the backend says so in its capabilities.

What the hosts hold (the tests rely on it):
- kvm-demo-a (64 GiB): kvm-web-01 (running, shared disk, network default),
  kvm-web-02 (running, disk on local pool 'default'), kvm-db-01 (running, 24 GiB,
  network 'backend' that only A has), kvm-app-01 (running; also defined, shut off, on B),
  kvm-cache-01 (paused), kvm-build-01 (shut off, ISO in the shared 'isos' pool).
- kvm-demo-b (16 GiB): kvm-web-03 (running, bridge br0 that only B has),
  kvm-mon-01 (running), kvm-test-01 (suspended to disk: managed save).
- Storage: 'default' (dir, local to each host), 'vmstore' (netfs on both: one shared SR),
  'isos' (dir on both, shared because the config lists it in shared_storage).
"""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

from poolctl.config import PoolConfig, pool_config

HOST_FILES = ("kvm-demo-a.xml", "kvm-demo-b.xml")


def demo_config(tmpdir: str | Path, *, name: str = "kvm-demo", hosts: int = 2) -> PoolConfig:
    """Write the demo hosts into ``tmpdir`` and return the pool configuration for them."""
    if hosts not in (1, 2):
        raise ValueError("the KVM demo has one or two hosts")
    out = Path(tmpdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    uris = []
    for fname in HOST_FILES[:hosts]:
        with as_file(files(__package__) / fname) as src:
            shutil.copyfile(src, out / fname)
        uris.append(f"test://{(out / fname).as_posix()}")
    return pool_config({"name": name, "backend": "kvm", "uris": uris, "shared_storage": ["isos"]})
