#!/usr/bin/env bash
# Build greway's Debian package: the release binary, its man pages and shell completions (generated from the
# clap definitions by the binary itself), the systemd unit, example configuration, docs, dashboard and alerts,
# packed by cargo-deb from [package.metadata.deb] in Cargo.toml. Installs the pinned cargo-deb if missing.
# Prints the path of the .deb as its last line.
# Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_DEB_VERSION=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "package: installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION" >&2
fi
# cargo-deb computes the DPDK runtime dependencies with dpkg-shlibdeps (dpkg-dev).
command -v dpkg-shlibdeps >/dev/null || { echo "package: dpkg-shlibdeps missing: scripts/install-deps.sh" >&2; exit 1; }

target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
cargo build --release --bin greway >&2
bin="$target/release/greway"
pkg="$target/release/pkg"
rm -rf "$pkg"
mkdir -p "$pkg/man" "$pkg/completions"
"$bin" man --out "$pkg/man"
# Debian policy: compressed man pages (cargo-deb compresses only pages it did not see built).
gzip -9n "$pkg"/man/*.1
"$bin" completions bash > "$pkg/completions/greway.bash"
"$bin" completions zsh > "$pkg/completions/_greway"
"$bin" completions fish > "$pkg/completions/greway.fish"
out="$target/debian"
mkdir -p "$out"
# --no-build: the binary above, which the man pages and completions came from. --strip: the release profile
# keeps line tables for profiling (debug = 1); the package does not need them.
deb=$(cargo deb --no-build --strip --output "$out" | tail -n 1)
[ -f "$deb" ] || { echo "package: cargo deb did not name a package: $deb" >&2; exit 1; }
echo "$deb"
