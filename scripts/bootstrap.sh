#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: system packages when missing, then a
# virtualenv in .venv with poolctl installed editable. Idempotent and quiet when done.
# Usage: scripts/bootstrap.sh [pip extras, e.g. kvm,test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-kvm}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# libvirt-python builds against libvirt's headers; venv comes from python3-venv on Debian.
need=()
pkgs=(python3-venv python3-dev gcc pkg-config libvirt-dev)
# The KVM tests reach libvirt daemons through a real OpenSSH server (tests/support/sshd.py),
# whose sessions talk to the daemon's socket with netcat.
case ",$extras," in *,test,*) pkgs+=(openssh-server openssh-client netcat-openbsd) ;; esac
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  echo "poolctl: installing system packages: ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

py=${PYTHON:-}
if [ -z "$py" ]; then
  for cand in python3 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      py=$cand; break
    fi
  done
fi
[ -n "$py" ] || { echo "poolctl: needs Python 3.11 or newer" >&2; exit 1; }

[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.poolctl-installed-$extras
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "poolctl: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING' || true
  .venv/bin/python -m pip install -q -e ".[$extras]" 2>&1 | grep -v '^WARNING' || true
  .venv/bin/python -c 'import poolctl, textual, XenAPI, pydantic'
  touch "$stamp"
fi
# An editable install leaves poolctl's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE
# is set nothing ever writes their bytecode: every launch would compile them again (~0.1 s).
.venv/bin/python -m compileall -q poolctl >/dev/null || true
