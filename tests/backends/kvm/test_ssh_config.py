"""A KVM pool's ssh settings: what each transport takes, said at config load."""

from __future__ import annotations

from poolctl.config import load_config


def _load(tmp_path, body: str):
    path = tmp_path / "config.toml"
    path.write_text(body)
    path.chmod(0o600)
    return load_config(path)


def test_a_password_on_a_qemu_ssh_pool_is_warned_about_naming_the_pool(tmp_path):
    cfg = _load(
        tmp_path,
        '[[pool]]\nname = "rack"\nbackend = "kvm"\nuris = ["qemu+ssh://root@kvm1/system", "qemu+libssh://kvm2/system"]\n'
        'username = "admin"\npassword = "s3cret"\n',
    )
    (warning,) = cfg.warnings
    assert "pool 'rack'" in warning and "username and password" in warning and "kvm1" in warning
    assert "kvm2" not in warning and "qemu+libssh://" in warning and "s3cret" not in warning


def test_libssh_pools_and_key_only_ssh_pools_load_without_warnings(tmp_path):
    cfg = _load(
        tmp_path,
        '[[pool]]\nname = "a"\nbackend = "kvm"\nuris = ["qemu+libssh://kvm2/system"]\npassword = "x"\n'
        '[[pool]]\nname = "b"\nbackend = "kvm"\nuris = ["qemu+ssh://root@kvm1/system"]\n'
        'known_hosts = "hosts/known"\nconnect_timeout_s = 5\n',
    )
    assert cfg.warnings == ()
    b = cfg.pools[1]
    assert b.known_hosts == str(tmp_path / "hosts/known") and b.connect_timeout_s == 5  # type: ignore[attr-defined]
