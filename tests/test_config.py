"""The config file loader: good files load, every bad file gets one message naming file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from poolctl.backends.kvm.config import KvmConfig
from poolctl.backends.xen.config import XenConfig
from poolctl.config import Config, ConfigError, MigrationSettings, default_config_path, load_config

pytestmark = pytest.mark.timeout(30)

SECRET = "hunter2-very-secret"

GOOD = f"""\
[keys]
"vm.force_off" = "ctrl+k"

[[pool]]
name = "lab"
backend = "xen"
url = "https://xcp-master.example"
username = "admin"
password = "{SECRET}"
fingerprint = "{"ab" * 32}"

[[pool]]
name = "rack2"
backend = "kvm"
uris = ["qemu+ssh://root@kvm1/system", "qemu+ssh://root@kvm2/system"]
"""


def write(tmp_path: Path, text: str, mode: int = 0o600, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg, msg  # one message, one line
    assert SECRET not in msg and SECRET not in repr(info.value)
    # No chained pydantic error (it would repeat the input, passwords included).
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return msg


def test_good_file_loads_pools_and_keys(tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.path == path
    assert config.keys == {"vm.force_off": "ctrl+k"}
    assert config.warnings == ()
    lab, rack2 = config.pools
    assert isinstance(lab, XenConfig) and isinstance(rack2, KvmConfig)  # each backend's own model
    assert (lab.name, lab.backend, lab.url, lab.username) == ("lab", "xen", "https://xcp-master.example", "admin")
    assert lab.verify_tls is True
    assert lab.resolve_password() == SECRET
    assert rack2.backend == "kvm" and rack2.uris == ("qemu+ssh://root@kvm1/system", "qemu+ssh://root@kvm2/system")
    assert rack2.password is None and not hasattr(rack2, "url")


def test_password_never_in_repr(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert SECRET not in repr(config.pools[0]) and SECRET not in config.pools[0].model_dump_json()


def test_ca_file_is_resolved_against_the_config_directory(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = '[[pool]]\nname = "a"\nbackend = "xen"\nurl = "https://m"\nca_file = "ca.pem"\n'
    config = load_config(write(tmp_path, text))
    assert config.pools[0].ca_file == tmp_path / "ca.pem"


def test_missing_ca_file_is_named(tmp_path):
    text = '[[pool]]\nname = "a"\nbackend = "xen"\nurl = "https://m"\nca_file = "/nowhere/ca.pem"\n'
    msg = error_of(write(tmp_path, text))
    assert "config.toml:5:" in msg and "ca_file" in msg and "/nowhere/ca.pem" in msg


def test_toml_syntax_error_names_file_and_line(tmp_path):
    text = GOOD.replace('url = "https://xcp-master.example"', 'url = "https://xcp-master.example')
    path = write(tmp_path, text)
    msg = error_of(path)
    assert msg.startswith(f"{path}:7:"), msg
    assert "invalid TOML" in msg


def test_unclosed_table_header_names_its_line(tmp_path):
    msg = error_of(write(tmp_path, '[keys]\n"a" = "b"\n[[pool]\nname = "x"\n'))
    assert "config.toml:3:" in msg and "invalid TOML" in msg


def test_unknown_backend_names_pool_and_lists_registered(tmp_path):
    path = write(tmp_path, GOOD.replace('backend = "kvm"', 'backend = "vmware"'))
    msg = error_of(path)
    assert msg.startswith(f"{path}:14:"), msg  # the backend line of the second table
    assert 'pool #2 ("rack2")' in msg and "'vmware'" in msg
    assert "registered backends: kvm, xen" in msg


def test_missing_url_names_pool_and_what_is_expected(tmp_path):
    path = write(tmp_path, GOOD.replace('url = "https://xcp-master.example"\n', ""))
    msg = error_of(path)
    assert msg.startswith(f"{path}:4:"), msg  # the [[pool]] line: the key is absent
    assert 'pool #1 ("lab")' in msg and "needs url" in msg and "https://" in msg


def test_missing_uris_for_kvm(tmp_path):
    text = GOOD.replace('uris = ["qemu+ssh://root@kvm1/system", "qemu+ssh://root@kvm2/system"]', "uris = []")
    msg = error_of(write(tmp_path, text))
    assert 'pool #2 ("rack2")' in msg and "needs uris" in msg


def test_kvm_without_libvirt_python_names_the_line_and_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "libvirt", None)  # what `import libvirt` does when it is missing
    for name in [m for m in sys.modules if m == "poolctl.backends.kvm" or m.startswith("poolctl.backends.kvm.")]:
        monkeypatch.delitem(sys.modules, name)
    path = write(tmp_path, GOOD)
    msg = error_of(path)
    assert msg.startswith(f"{path}:14: pool #2 (\"rack2\"), backend: backend 'kvm' cannot be loaded: "), msg
    assert "libvirt" in msg and "install poolctl[kvm]" in msg


def test_the_loader_knows_no_backends_fields():
    from poolctl import config

    assert set(config.PoolConfig.model_fields) == {"name", "backend", "username", "password", "password_command"}


def test_the_contract_and_the_registry_import_without_the_loader():
    # the dependency runs one way: poolctl.config -> poolctl.backends, never back
    code = "import sys, poolctl.backends, poolctl.backends.base, poolctl.poolconfig\n"
    code += "print('poolctl.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_address_field_of_the_other_backend_is_rejected(tmp_path):
    text = GOOD.replace('backend = "xen"', 'backend = "xen"\nuris = ["qemu:///system"]')
    msg = error_of(write(tmp_path, text))
    assert "config.toml:7:" in msg and 'pool #1 ("lab"), uris' in msg and "reads url" in msg


def test_xen_url_must_be_http(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("https://xcp-master.example", "xcp-master.example")))
    assert "config.toml:7:" in msg and "url" in msg and "http:// or https://" in msg


def test_kvm_uri_with_a_password_is_refused_without_echoing_it(tmp_path):
    text = GOOD.replace("qemu+ssh://root@kvm2/system", f"qemu+tcp://admin:{SECRET}@kvm2/system")
    msg = error_of(write(tmp_path, text))  # error_of checks the password is not in the message
    assert "config.toml:15:" in msg and 'pool #2 ("rack2"), uris' in msg
    assert "host kvm2 holds a password" in msg and "password_command" in msg


def test_user_without_password_in_a_kvm_uri_is_fine(tmp_path):
    config = load_config(write(tmp_path, GOOD.replace("qemu+ssh://root@kvm2", "qemu+tcp://admin@kvm2")))
    assert config.pools[1].uris[1] == "qemu+tcp://admin@kvm2/system"


@pytest.mark.parametrize("where", ["key", "value"])
def test_migration_uri_with_a_password_is_refused(tmp_path, where):
    secret_uri = f"qemu+tcp://admin:{SECRET}@10.0.0.2/system"
    key, value = (
        ("qemu+ssh://root@kvm2/system", secret_uri) if where == "value" else (secret_uri, "qemu+tcp://10.0.0.2/system")
    )
    text = GOOD + f'migration_uris = {{ "{key}" = "{value}" }}\n'
    msg = error_of(write(tmp_path, text))
    assert "config.toml:16:" in msg and 'pool #2 ("rack2"), migration_uris' in msg
    assert "host 10.0.0.2 holds a password" in msg


@pytest.mark.parametrize("userinfo", [f"root:{SECRET}@", "root@"])
def test_xen_url_with_credentials_is_refused(tmp_path, userinfo):
    msg = error_of(write(tmp_path, GOOD.replace("https://xcp-master", f"https://{userinfo}xcp-master")))
    assert "config.toml:7:" in msg and 'pool #1 ("lab"), url' in msg
    assert "xcp-master.example holds credentials" in msg and "username and password" in msg
    assert "root@" not in msg


def test_malformed_uri_with_a_password_is_still_refused(tmp_path):
    text = GOOD.replace("qemu+ssh://root@kvm2/system", f"qemu+tcp://admin:{SECRET}@[::1/system")
    msg = error_of(write(tmp_path, text))
    assert "config.toml:15:" in msg and "holds a password" in msg


def test_duplicate_pool_names(tmp_path):
    path = write(tmp_path, GOOD.replace('name = "rack2"', 'name = "lab"'))
    msg = error_of(path)
    assert msg.startswith(f"{path}:13:"), msg
    assert "duplicate pool name 'lab'" in msg and "pool #1" in msg and "pool #2" in msg


def test_unknown_key_in_pool(tmp_path):
    path = write(tmp_path, GOOD.replace('username = "admin"', 'user = "admin"'))
    msg = error_of(path)
    assert msg.startswith(f"{path}:8:"), msg
    assert 'pool #1 ("lab"), user' in msg and "unknown key 'user'" in msg and "username" in msg


def test_unknown_top_level_key(tmp_path):
    msg = error_of(write(tmp_path, "[pools]\nname = 1\n"))
    assert "config.toml:1:" in msg and "unknown key 'pools'" in msg and "keys, migration, pool" in msg


def test_single_bracket_pool_table_is_explained(tmp_path):
    msg = error_of(write(tmp_path, '[pool]\nname = "a"\nbackend = "xen"\n'))
    assert "config.toml:1:" in msg and "[[pool]]" in msg


def test_both_password_and_password_command(tmp_path):
    path = write(
        tmp_path, GOOD.replace(f'password = "{SECRET}"', f'password = "{SECRET}"\npassword_command = "pass x"')
    )
    msg = error_of(path)
    assert msg.startswith(f"{path}:10:"), msg
    assert 'pool #1 ("lab")' in msg and "either password or password_command" in msg


def test_wrong_type_for_password_does_not_echo_it(tmp_path):
    path = write(tmp_path, GOOD.replace(f'password = "{SECRET}"', "password = 123456789"))
    msg = error_of(path)
    assert "123456789" not in msg and "password" in msg and "config.toml:9:" in msg


def test_wrong_type_elsewhere_shows_the_value(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace('"ctrl+k"', "5")))
    assert "config.toml:2:" in msg and "keys.vm.force_off" in msg and "(got 5)" in msg


def test_several_problems_are_counted_in_one_line(tmp_path):
    text = GOOD.replace('backend = "xen"', 'backend = "nope"').replace('name = "rack2"', 'name = "lab"')
    msg = error_of(write(tmp_path, text))
    assert "(and 1 more problem)" in msg


def test_world_readable_password_warns(tmp_path):
    path = write(tmp_path, GOOD, mode=0o644)
    config = load_config(path)
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert str(path) in warning and "chmod 600" in warning and SECRET not in warning


def test_group_readable_password_command_does_not_warn(tmp_path):
    text = GOOD.replace(f'password = "{SECRET}"', 'password_command = "pass show lab"')
    assert load_config(write(tmp_path, text, mode=0o644)).warnings == ()


def test_env_var_points_at_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD, name="other.toml")
    monkeypatch.setenv("POOLCTL_CONFIG", str(path))
    config = load_config()
    assert config.path == path and [p.name for p in config.pools] == ["lab", "rack2"]


def test_env_var_naming_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_CONFIG", str(tmp_path / "gone.toml"))
    msg = error_of(tmp_path / "gone.toml")
    assert "gone.toml" in msg and "does not exist" in msg
    with pytest.raises(ConfigError, match="gone.toml"):
        load_config()


def test_default_path_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "poolctl" / "config.toml"


def test_missing_default_file_explains_where_and_demo(tmp_path, monkeypatch):
    monkeypatch.delenv("POOLCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ConfigError) as info:
        load_config()
    msg = str(info.value)
    assert str(tmp_path / "xdg" / "poolctl" / "config.toml") in msg
    assert "[[pool]]" in msg and "poolctl --demo" in msg


def test_default_file_is_read_when_present(tmp_path, monkeypatch):
    monkeypatch.delenv("POOLCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "poolctl").mkdir()
    write(tmp_path / "poolctl", GOOD)
    assert [p.name for p in load_config().pools] == ["lab", "rack2"]


def test_unreadable_path_is_a_config_error(tmp_path):
    msg = error_of(tmp_path)  # a directory
    assert str(tmp_path) in msg and "cannot read" in msg


def test_empty_file_has_no_pools(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.pools == () and config.keys == {}


def test_migration_table_sets_the_ping_defaults(tmp_path):
    text = GOOD.replace("[[pool]]", "[migration]\nping_interval = 0.25\nping_port = 22\n\n[[pool]]", 1)
    config = load_config(write(tmp_path, text))
    assert config.migration == MigrationSettings(ping_interval=0.25, ping_port=22)
    assert [p.name for p in config.pools] == ["lab", "rack2"]
    whole_seconds = load_config(write(tmp_path, "[migration]\nping_interval = 1\n"))
    assert whole_seconds.migration.ping_interval == 1.0 and whole_seconds.migration.ping_port is None


def test_migration_table_is_optional(tmp_path):
    assert load_config(write(tmp_path, GOOD)).migration == MigrationSettings(ping_interval=0.1, ping_port=None)


@pytest.mark.parametrize("value", ["0", "-1", "10.5", '"0.1"', "true"])
def test_bad_ping_interval_names_file_line_and_range(tmp_path, value):
    path = write(tmp_path, f"[keys]\n\n[migration]\nping_port = 22\nping_interval = {value}\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:5: migration.ping_interval: "), msg
    assert "more than 0" in msg and "at most 10" in msg and "(got " in msg


@pytest.mark.parametrize("value", ["0", "70000", '"ssh"', "22.0"])
def test_bad_ping_port_names_file_line(tmp_path, value):
    path = write(tmp_path, f"[migration]\nping_port = {value}\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:2: migration.ping_port: expected a TCP port number, 1 to 65535"), msg


def test_unknown_migration_key_lists_the_known_ones(tmp_path):
    path = write(tmp_path, "[migration]\nping_intervall = 1\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:2:"), msg
    assert "unknown key 'ping_intervall'" in msg and "ping_interval, ping_port" in msg


def test_migration_must_be_a_table(tmp_path):
    msg = error_of(write(tmp_path, "migration = 5\n"))
    assert "config.toml:1:" in msg and "[migration] table" in msg


def test_migration_table_takes_the_tuning_knobs_by_the_cli_names(tmp_path):
    from poolctl.migration.tuner import TuneRequest, request_from

    text = (
        '[migration]\ntune = "auto"\nmax_downtime = 10\nbandwidth = 16\nauto_converge = true\n'
        'post_copy = "never"\nparallel = 2\ncompress = false\n'
    )
    settings = load_config(write(tmp_path, text)).migration
    assert request_from(settings) == TuneRequest(
        tune="auto",
        max_downtime_ms=10,
        bandwidth_mib_s=16,
        auto_converge=True,
        post_copy="never",
        parallel=2,
        compress=False,
    )
    assert request_from(MigrationSettings()) == TuneRequest()  # nothing set: the tuner chooses


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('tune = "fast"', 'expected "auto" or "off"'),
        ("max_downtime = 0", "expected milliseconds"),
        ('post_copy = "sometimes"', 'expected "auto", "always" or "never"'),
        ("parallel = 17", "expected a number of connections, 1 to 16"),
        ('compress = "yes"', "expected true or false"),
    ],
)
def test_bad_tuning_keys_say_what_they_expect(tmp_path, line, words):
    path = write(tmp_path, f"[migration]\n{line}\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:2: migration.{line.split()[0]}: "), msg
    assert words in msg, msg
