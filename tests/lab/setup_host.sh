#!/bin/bash
# Machine setup for the two-host libvirt/QEMU migration lab (Debian 12, root).
# Idempotent: a second run with everything present takes well under a second
# (plus the guest build check). No systemd needed: the lab starts its own libvirtd.
#
#   tests/lab/setup_host.sh            packages + libvirt-qemu user + guest image
#   POOLCTL_LAB_DIR=/x tests/lab/setup_host.sh   (guest cache under /x/guest)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

[ "$(id -u)" = 0 ] || { echo "setup_host.sh: must run as root" >&2; exit 1; }

# libvirt-daemon + driver-qemu: the two libvirtd "hosts" (no libvirt-daemon-system:
#   it wants systemd and would start a system libvirtd of its own).
# qemu-system-x86: the guest, under TCG. busybox-static: the guest's userland.
# iproute2/iputils-ping: namespaces, veths, bridges, boot probe.
# Not Essential in Debian 12, so absent from a minimal image: mount (mount, losetup),
#   passwd (groupadd, useradd below), xz-utils (build_guest.sh unpacks .ko.xz modules).
# libvirt-dev, pkg-config, gcc, python3-dev: libvirt-python is an sdist, built at pip install.
# tgt: the userspace iSCSI target the lab runs in a namespace of its own (labstorage.py);
#   libvirt-daemon-driver-storage-iscsi-direct: the hosts' iscsi-direct pool on its LUN, and
#   qemu-block-extra: QEMU's libiscsi block driver the guest's disk goes through (no kernel
#   initiator: none in a container).
# Everything else the lab runs is Essential (coreutils, util-linux, dpkg, findutils,
#   gzip, hostname, libc-bin) or guaranteed with apt itself (awk: base-files pre-depends).
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
      busybox-static iproute2 iputils-ping util-linux gzip mount passwd xz-utils
      libvirt-dev pkg-config gcc python3-dev
      tgt libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_host.sh: installing ${missing[*]}" >&2
  # update once, only when the lists are absent or lack a candidate for a missing package
  need_update=0
  ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || need_update=1
  if [ $need_update = 0 ]; then
    for p in "${missing[@]}"; do
      cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/{print $2}')
      if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; break; fi
    done
  fi
  [ $need_update = 1 ] && apt-get update -qq
  # No service of the machine's own is wanted (tgt's would serve the root namespace): the lab
  # starts its daemons itself. Debian's images hold this policy already; a machine without it
  # gets it for the install only.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# libvirt's QEMU driver resolves its compiled-in default user (libvirt-qemu) before it
# reads qemu.conf; libvirt-daemon-system would create it, and we do not install that.
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home \
  --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu

# The guest (kernel from Debian's linux-image package + busybox initramfs), cached.
"$HERE/build_guest.sh"
