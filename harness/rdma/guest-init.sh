#!/bin/busybox sh
# /init of the throwaway QEMU guest (harness/rdma/guest.ts boots it). The host's root arrives over 9p,
# read-only, under a tmpfs overlay so that programs may write anywhere (the writes stay in the guest);
# the run's folder arrives writable at its own path. The host writes <out>/guest/command.sh; this runs
# it chrooted into the host's root and leaves its output and exit code beside it, then powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "fxh-guest: init"
arg() { sed -n "s/.*fxh\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
if [ "$(arg probe)" = 1 ]; then echo "fxh-guest: up (probe)"; poweroff -f; fi
for m in $(cat /modules/order); do insmod "/modules/$m" || echo "fxh-guest: insmod $m failed"; done
fail() { echo "fxh-guest: failed: $*"; poweroff -f; }
OUT=$(arg out)
[ -n "$OUT" ] || fail "no fxh.out= on the kernel command line"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /lower || fail "mounting the host root over 9p"
mount -t tmpfs upper /upper && mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /host || fail "overlay on the host root"
mkdir -p "/host$OUT" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 outshare "/host$OUT" || fail "mounting the run folder over 9p"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t devpts pts /host/dev/pts
# the host's /run (its netns, its daemons' sockets) must not show through
mount -t tmpfs run /host/run
mount -t bpf bpf /host/sys/fs/bpf
mount -t tracefs tracefs /host/sys/kernel/tracing
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
# a fresh cgroup2 root delegates no controller; a systemd host enables these (runc and the native jail need them)
echo '+cpu +memory +pids +io' > /host/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
echo "fxh-guest: up $(cut -d' ' -f1 /proc/uptime) s"
chroot /host /bin/sh "$OUT/guest/command.sh" > "/host$OUT/guest/output.txt" 2>&1
echo $? > "/host$OUT/guest/exit-code"
sync
echo "fxh-guest: done $(cat "/host$OUT/guest/exit-code") at $(cut -d' ' -f1 /proc/uptime) s"
poweroff -f
