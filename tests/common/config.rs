//! Pieces of the tests' greway configurations (TOML): the head every one starts with, pcap ports, neighbours and
//! routes. Each piece is whole lines without the last newline, to stand on lines of its own in a configuration
//! written out as TOML around it.
use super::eal_args;
use std::path::Path;

/// `[eal]` with the test's EAL arguments ([`eal_args`]) and `[dataplane]` with one worker; more `[dataplane]`
/// keys may follow.
pub fn config_head(tag: &str) -> String {
    format!(
        "[eal]\nargs = {}\n[dataplane]\nworkers = [1]",
        eal_args(tag)
    )
}

/// The `[[port]]` line, `name` and `device` of a port on `net_pcap{index}` that reads `rx` and writes `tx` (file
/// names in `dir`, or absolute paths); the port's other keys follow it.
pub fn pcap_port(
    name: &str,
    index: u32,
    dir: &Path,
    rx: impl AsRef<Path>,
    tx: impl AsRef<Path>,
) -> String {
    format!(
        "[[port]]\nname = \"{name}\"\ndevice = \"net_pcap{index},rx_pcap={},tx_pcap={}\"",
        dir.join(rx).display(),
        dir.join(tx).display()
    )
}

/// A `[[neighbor]]`: `ip`, on `port`, is at `mac`.
pub fn neighbor(port: &str, ip: &str, mac: &str) -> String {
    format!("[[neighbor]]\nport = \"{port}\"\nip = \"{ip}\"\nmac = \"{mac}\"")
}

/// A `[[route]]` to `prefix` through `via` on `port`.
pub fn route(prefix: &str, via: &str, port: &str) -> String {
    format!("[[route]]\nprefix = \"{prefix}\"\nvia = \"{via}\"\nport = \"{port}\"")
}

/// The outside port's next hop, 192.0.2.254 at 02:00:00:00:00:fe (its `[[neighbor]]`), and a `[[route]]` to
/// `prefix` through it.
pub fn outside_next_hop(prefix: &str) -> String {
    format!(
        "{}\n{}",
        neighbor("outside", "192.0.2.254", "02:00:00:00:00:fe"),
        route(prefix, "192.0.2.254", "outside")
    )
}

/// The inside host's `[[neighbor]]`: 10.0.0.2 on the port `inside`, at 02:00:00:00:00:0a.
pub fn inside_host() -> String {
    neighbor("inside", "10.0.0.2", "02:00:00:00:00:0a")
}

/// The encapsulating gateway of the mirror tests: port `inside` (10.0.0.1/24, 02:00:00:00:00:01) reading
/// `inside_rx`, port `outside` (192.0.2.1/24, 02:00:00:00:00:02) reading `empty.pcap`, each writing
/// `out-NAME.pcap` (in `dir`); tunnel `t1` (192.0.2.1 to 198.51.100.7, key 42) for 10.20.0.0/16; everything else
/// to the outside next hop ([`outside_next_hop`]).
pub fn encap_gateway(dir: &Path, inside_rx: &str) -> String {
    format!(
        r#"{inside}
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
{outside}
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "t1"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 42
routes = ["10.20.0.0/16"]
{next_hop}"#,
        inside = pcap_port("inside", 0, dir, inside_rx, "out-inside.pcap"),
        outside = pcap_port("outside", 1, dir, "empty.pcap", "out-outside.pcap"),
        next_hop = outside_next_hop("0.0.0.0/0"),
    )
}

/// An ERSPAN receiver: the `[[tunnel]]` `name` (`mode = "erspan"`, from `remote` to `local`, `erspan` its
/// session table's keys) that delivers the mirrored frames out of the l2 port `deliver`.
pub fn erspan_receiver(
    name: &str,
    local: &str,
    remote: &str,
    erspan: &str,
    deliver: &str,
) -> String {
    format!(
        "[[tunnel]]\nname = \"{name}\"\nmode = \"erspan\"\nlocal = \"{local}\"\nremote = \"{remote}\"\n\
         erspan = {{ {erspan} }}\ndeliver = \"{deliver}\""
    )
}

/// An ERSPAN session of [`encap_gateway`]: the `[[tunnel]]` `name` (`mode = "erspan"`) from 192.0.2.1 to
/// `remote`, `erspan` its session table's keys.
pub fn erspan_sender(name: &str, remote: &str, erspan: &str) -> String {
    format!(
        "[[tunnel]]\nname = \"{name}\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\nremote = \"{remote}\"\n\
         erspan = {{ {erspan} }}"
    )
}

/// A `[[mirror]]`: the frames `port` receives (`direction` "rx") or sends ("tx") into the ERSPAN tunnel `tunnel`.
pub fn mirror(port: &str, direction: &str, tunnel: &str) -> String {
    format!("[[mirror]]\nport = \"{port}\"\ndirection = \"{direction}\"\ntunnel = \"{tunnel}\"")
}
