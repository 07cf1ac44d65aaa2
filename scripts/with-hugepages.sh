#!/usr/bin/env bash
# Run a command with 2 MB hugepages available: at least HUGEPAGES_NEED free pages (default 256, i.e. 512 MB)
# and a hugetlbfs mount. What is missing is reserved (needs root) before the command runs and given back after
# it, whatever its outcome; the command's exit status is passed on.
#
#   scripts/with-hugepages.sh COMMAND [ARGS...]
#
# The test suite runs the hugepage-only checks through it (scripts/dumpcap.sh, the benchmark smoke on hugepages).
set -euo pipefail
[[ $# -gt 0 ]] || {
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
}
NEED=${HUGEPAGES_NEED:-256}
nr=/proc/sys/vm/nr_hugepages
old_nr=$(cat $nr)
mounted=
restore() {
    if [[ -n $mounted ]]; then umount "$mounted" 2>/dev/null || true; fi
    if [[ $(cat $nr) != "$old_nr" ]]; then echo "$old_nr" >$nr 2>/dev/null || true; fi
}
trap restore EXIT

free_pages() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }
free=$(free_pages)
if ((free < NEED)); then
    echo $((old_nr + NEED - free)) >$nr 2>/dev/null || true
    if (($(free_pages) < NEED)); then
        echo "with-hugepages: cannot reserve $NEED hugepages of 2 MB (needs root and hugepage support; $(free_pages) free)" >&2
        exit 1
    fi
fi
if ! grep -qs hugetlbfs /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages
    mounted=/dev/hugepages
fi
set +e
"$@"
rc=$?
set -e
exit $rc
