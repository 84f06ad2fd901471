#!/bin/bash
# Build (once) the lab's tiny guest: the kernel from Debian's linux-image-amd64
# (downloaded and extracted, never installed) + a busybox-static initramfs whose /init
# loads virtio-net/virtio-blk/virtio-console, takes a static address from the kernel
# command line (guestip=A.B.C.D/NN), so the guest answers ping a few seconds after boot,
# and answers libvirt's guest-agent questions about its addresses (see /init below);
# guestdirty=N on the command line makes it a busy guest (N MiB rewritten every second).
#
# Output: $POOLCTL_LAB_DIR/guest/{vmlinuz,initramfs.gz,stamp}  (~8 MiB + ~1 MiB)
# Cached: skipped when the stamp matches this script; concurrent builders serialize on a lock.
set -euo pipefail
LAB=${POOLCTL_LAB_DIR:-/var/tmp/poolctl-lab}
OUT=$LAB/guest
STAMP=$(sha256sum "$0" | cut -c1-16)
mkdir -p "$LAB"

exec 9>"$LAB/guest.lock"
flock 9
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.gz" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
  exit 0
fi
start=$(date +%s%N)

WORK=$(mktemp -d "$LAB/guestbuild.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
KPKG=$(kernel_pkg)
if [ -z "$KPKG" ]; then apt-get update -qq; KPKG=$(kernel_pkg); fi
[ -n "$KPKG" ] || { echo "build_guest.sh: no linux-image-amd64 candidate in apt" >&2; exit 1; }
KVER=${KPKG#linux-image-}
# keep the .deb: a rebuild after a script change must not download 70 MB again
DEB=$(ls "$LAB/cache/${KPKG}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$DEB" ]; then
  mkdir -p "$LAB/cache"
  (cd "$WORK" && apt-get download -qq -o APT::Sandbox::User=root "$KPKG")
  mv "$WORK/${KPKG}"_*.deb "$LAB/cache/"
  DEB=$(ls "$LAB/cache/${KPKG}"_*.deb | head -1)
fi
dpkg -x "$DEB" "$WORK/k"

R=$WORK/root
mkdir -p "$R"/{bin,lib/modules,proc,sys,dev,tmp} "$WORK/out"
cp /bin/busybox "$R/bin/busybox"   # busybox-static: no libc needed in the initramfs
# Debian builds these as modules; this list is in dependency (load) order.
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk virtio_console e1000"
for m in $MODS; do
  f=$(find "$WORK/k/lib/modules/$KVER" -name "$m.ko*" | head -1)
  [ -n "$f" ] || continue          # built in: nothing to load
  case "$f" in
    *.xz) xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
    *) cp "$f" "$R/lib/modules/$m.ko" ;;
  esac
done
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# the KVM probe boots without a NIC and waits only for this line
echo "POOLCTL-GUEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk virtio_console e1000; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
GIP=10.99.0.50/24
for w in $(cat /proc/cmdline); do case "$w" in guestip=*) GIP=${w#guestip=};; esac; done
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip addr add "$GIP" dev eth0
ip link set eth0 up
# gratuitous ARP so the bridges learn the guest at once
arping -U -c 1 -I eth0 "${GIP%/*}" >/dev/null 2>&1 &
DISK=none; [ -b /dev/vda ] && DISK="vda $(cat /sys/block/vda/size) sectors"
# A minimal QEMU guest agent on the virtio port libvirt names org.qemu.guest_agent.0:
# libvirt learns a bridged guest's address from its agent (interfaceAddresses, source
# "agent"), as from qemu-ga on a real guest. The other sources give nothing here: no
# DHCP lease on a plain bridge, and libvirt 9.0's ARP source fails ("wrong nlmsg len")
# on kernels >= 6.9. It answers guest-sync, guest-ping and guest-network-get-interfaces.
# It stays idle between questions (no polling: the guest's own activity is what a
# migration copies). The port is opened once and kept open: a port admits one opener,
# and closing it makes libvirt drop its agent connection; reads give EOF while no host
# side is connected (before libvirt connects, just after a migration): wait, read again.
# Without the channel (the lab's single-guest tests, the KVM probe) it exits at once.
agent() {
  MAC=$(cat /sys/class/net/eth0/address)
  LO='{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"127.0.0.1","prefix":8}]}'
  ETH='{"name":"eth0","hardware-address":"'$MAC'","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"'${GIP%/*}'","prefix":'${GIP#*/}'}]}'
  PORT=
  for n in /sys/class/virtio-ports/*/name; do
    [ "$(cat "$n" 2>/dev/null)" = org.qemu.guest_agent.0 ] && PORT=${n%/name} && PORT=/dev/${PORT##*/}
  done
  [ -c "$PORT" ] || return 0  # a domain without the channel (the KVM probe): no agent
  exec 3<>"$PORT"
  while true; do
    if IFS= read -r line <&3; then
      case "$line" in
        *'"guest-sync'*) id=${line##*'"id":'}; id=${id%%[!0-9]*}; echo "{\"return\": $id}" >&3 ;;
        *'"guest-ping"'*) echo '{"return": {}}' >&3 ;;
        *'"guest-network-get-interfaces"'*) echo "{\"return\": [$LO, $ETH]}" >&3 ;;
        *) echo '{"error": {"class": "CommandNotFound", "desc": "the lab agent knows sync, ping, network"}}' >&3 ;;
      esac
    else
      sleep 1
    fi
  done
}
agent </dev/null >/dev/null 2>&1 &
# guestdirty=N: a busy guest, rewriting an N MiB tmpfs file every second (a database's
# buffer cache, a build): what a migration must copy again and again. Filled with text
# once, not zeros (QEMU sends a zero page as a flag, which would hide the copy); each
# rewrite shifts it by 4093 bytes, so every page's content changes: QEMU's dirty-rate
# sampling compares page hashes and would not see a page rewritten with the same bytes.
# A quarter at a time with 0.1 s between, not all of it then a 1 s sleep: any 1 s dirty-rate
# window sees the rewrite. The BUSY line tells the lab the loop runs (ping answers before).
DIRTY=0
for w in $(cat /proc/cmdline); do case "$w" in guestdirty=*) DIRTY=${w#guestdirty=};; esac; done
if [ "$DIRTY" -gt 0 ] 2>/dev/null; then
  mkdir -p /busy && mount -t tmpfs -o size=$((DIRTY + 1))m tmpfs /busy
  yes poolctl-lab-busy-guest | head -c $((DIRTY * 1048576)) > /busy/f
  Q=$((DIRTY * 1048576 / 4093 / 4 + 1))
  (while true; do for k in 0 1 2 3; do
    dd if=/busy/f of=/busy/f bs=4093 skip=$((k * Q + 1)) seek=$((k * Q)) count=$Q conv=notrunc 2>/dev/null
    sleep 0.1
  done; done) </dev/null >/dev/null 2>&1 &
  echo "POOLCTL-GUEST-BUSY dirty=${DIRTY}MiB/s" > /dev/ttyS0
fi
echo "POOLCTL-GUEST-READY ip=$GIP disk=$DISK uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
while true; do sleep 3600; done
EOF
chmod +x "$R/init"
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > "$WORK/out/initramfs.gz"
cp "$WORK/k/boot/vmlinuz-$KVER" "$WORK/out/vmlinuz"
echo "$STAMP" > "$WORK/out/stamp"
rm -rf "$OUT.old"
[ -d "$OUT" ] && mv "$OUT" "$OUT.old"
mv "$WORK/out" "$OUT"
rm -rf "$OUT.old"
echo "build_guest.sh: $KVER guest built in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
