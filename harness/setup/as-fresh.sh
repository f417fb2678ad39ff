#!/usr/bin/env bash
# Runs a command as a fresh machine sees it: in a private mount namespace where what a developer may
# have set up by hand is not there. bpffs and tracefs are unmounted (a fresh machine boots without
# them), and the Jupyter kernel folder is an empty tmpfs (the bootstrap must register tslab itself).
# Nothing outside this namespace changes. Usage: harness/setup/as-fresh.sh npm test
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "as-fresh: not root, so no private mount namespace; running as is" >&2
  exec "$@"
fi
exec unshare --mount --propagation private -- bash -c '
  set -euo pipefail
  hidden=()
  for m in /sys/fs/bpf /sys/kernel/tracing; do
    while mountpoint -q "$m"; do umount -l "$m"; hidden+=("$m"); done
  done
  mkdir -p /usr/local/share/jupyter && mount -t tmpfs fxh-fresh-jupyter /usr/local/share/jupyter
  echo "as-fresh: private mount namespace; unmounted: ${hidden[*]:-nothing (was not mounted)}; /usr/local/share/jupyter empty" >&2
  exec "$@"' as-fresh "$@"
