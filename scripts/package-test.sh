#!/usr/bin/env bash
# The Debian package end to end, as root: build it (scripts/package.sh), install it with dpkg -i, check what it
# installed (greway --version, man pages, the example configuration, completions, the systemd unit with
# `systemd-analyze verify`, the alerting rules with promtool), then purge it: the machine is left as it was.
# Refuses to run where a greway package is already installed.
# Usage: scripts/package-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "package-test: needs root (dpkg -i)" >&2; exit 1; }
# Installed, or removed with its conffiles left: either way not ours to replace or purge.
if dpkg-query -W -f='${Status}' greway 2>/dev/null | grep -Eq " (installed|config-files|half-.*|unpacked)$"; then
    echo "package-test: a greway package is installed already; not touching it" >&2
    exit 1
fi

deb=$(scripts/package.sh | tail -n 1)
echo "package-test: $deb"
fail=0
check() { # check DESCRIPTION COMMAND...: one assertion
    if "$@"; then echo "  ok: $1 ${*:2}" | cut -c1-160; else echo "  FAILED: $*"; fail=1; fi
}
cleanup() {
    dpkg -r greway >/dev/null 2>&1 || true
    dpkg --purge greway >/dev/null 2>&1 || true
}
trap cleanup EXIT

dpkg -i "$deb"
check test -x /usr/bin/greway
version=$(/usr/bin/greway --version)
echo "$version" | sed 's/^/    /'
check grep -qx "greway $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" <<<"$(head -n 1 <<<"$version")"
check grep -Eq '^commit: [0-9a-f]{12}$|^commit: unknown$' <<<"$version"
check grep -Eq '^DPDK \(running\): DPDK 22\.11' <<<"$version"
# man pages from the installed files (man-db reads /usr/share/man/man1/*.1.gz).
check grep -q "Kernel-bypass GRE tunnel gateway" <<<"$(MANPAGER=cat MANWIDTH=100 man greway 2>&1)"
check grep -q "allowed-source" <<<"$(MANPAGER=cat MANWIDTH=100 man greway-ctl-tunnel-add 2>&1)"
# The example configuration is a conffile, and valid.
check grep -q "/etc/greway/greway.toml" <<<"$(dpkg-query -W -f='${Conffiles}' greway)"
check /usr/bin/greway check-config /etc/greway/greway.toml
# Completions for the three shells.
check bash -c 'source /usr/share/bash-completion/completions/greway && complete -p greway'
check test -s /usr/share/zsh/vendor-completions/_greway
check test -s /usr/share/fish/vendor_completions.d/greway.fish
check test -s /usr/share/doc/greway/LICENSE
check test -s /usr/share/doc/greway/CHANGELOG.md
check test -s /usr/share/doc/greway/install.md
# The unit: systemd-analyze verifies the template (as an instance) against the installed binary and man page;
# this machine need not run systemd.
verify=$(systemd-analyze verify /lib/systemd/system/greway@.service 2>&1) && v=0 || v=$?
[ -z "$verify" ] || echo "$verify" | sed 's/^/    /'
unit_verified() { [ "$v" -eq 0 ] && [ -z "$verify" ]; }
check unit_verified "(systemd-analyze verify greway@.service: status $v, no message)"
# The hugepage setup does nothing without GREWAY_HUGEPAGES_2M.
check env -u GREWAY_HUGEPAGES_2M /usr/libexec/greway/greway-hugepages
check promtool check rules /usr/share/greway/prometheus/greway-alerts.yml
python3 -m json.tool /usr/share/greway/grafana/greway-dashboard.json >/dev/null && check true dashboard JSON

dpkg -r greway
dpkg --purge greway
trap - EXIT
check test ! -e /usr/bin/greway -a ! -e /etc/greway/greway.toml -a ! -e /lib/systemd/system/greway@.service
if dpkg-query -W -f='${Status}' greway 2>/dev/null | grep -Eq " (installed|config-files|half-.*|unpacked)$"; then
    echo "  FAILED: still installed"
    fail=1
fi
[ "$fail" -eq 0 ] && echo "package-test: ok" || echo "package-test: FAILED"
exit "$fail"
