//! Cross-check `greway::wire` against real GRE captures made by other people (tcpdump's test suite), and
//! against tshark's decoding of the same bytes, field by field, frame by frame.
//!
//! The captures live in `shared/peer-captures` beside the repository: `<repo>/../shared` in CI and in the
//! main checkout, `<worktree>/../../shared` in a `wt/<name>` worktree; `GREWAY_PEER_CAPTURES` overrides both.
//! tshark is required (the test suite installs it): its absence is a failure, not a skip.
//!
//! Frames are decoded the way the data path will: Ethernet (one VLAN tag) or raw IP, IPv4/IPv6 (extension
//! headers walked), GRE, and through the Cisco MetaData shim or an IPv4/IPv6 payload into nested GRE (Cisco
//! keepalives). Capture snapping is the one leniency: when an IP header announces more bytes than were captured,
//! the captured bytes are decoded (tshark does the same), so the GRE layer still sees the malformed headers.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use greway::wire::ethernet::{self, Frame};
use greway::wire::gre::{self, CiscoMetaData, GreError, PptpHeader};
use greway::wire::{ipv4, ipv6};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const MAX_NESTING: usize = 4;

fn captures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GREWAY_PEER_CAPTURES") {
        return dir.into();
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../shared/peer-captures"),
        manifest.join("../../shared/peer-captures"),
    ];
    candidates
        .iter()
        .find(|p| p.join("various_gre.pcap").is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "peer captures not found in {candidates:?}; set GREWAY_PEER_CAPTURES to the folder"
            )
        })
}

/// One GRE header the decoder accepted.
#[derive(Debug, Clone, PartialEq)]
struct GreSeen {
    flags_version: u16,
    checksum: Option<u16>,
    checksum_ok: bool,
    key: Option<u32>,
    sequence: Option<u32>,
    protocol: u16,
}

/// A GRE header the decoder rejected, with the raw words tshark also shows.
#[derive(Debug, Clone, PartialEq)]
struct GreRejected {
    error: GreError,
    flags_version: Option<u16>,
    protocol: Option<u16>,
}

#[derive(Debug, Default)]
struct Decoded {
    outer_addrs: Option<(IpAddr, IpAddr)>,
    gre: Vec<GreSeen>,
    metadata: Vec<CiscoMetaData>,
    rejected: Option<GreRejected>,
}

impl Decoded {
    fn has_gre(&self) -> bool {
        !self.gre.is_empty() || self.rejected.is_some()
    }
}

fn decode_frame(linktype: u32, bytes: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    match linktype & 0xFFFF {
        LINKTYPE_ETHERNET => decode_ethernet(bytes, &mut d, 0),
        LINKTYPE_RAW => decode_ip(bytes, &mut d, 0),
        other => panic!("unexpected link type {other}"),
    }
    d
}

fn decode_ethernet(bytes: &[u8], d: &mut Decoded, depth: usize) {
    let Ok(frame) = Frame::new_checked(bytes) else {
        return;
    };
    match frame.ethertype() {
        ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6 => {
            decode_ip(frame.payload(), d, depth)
        }
        _ => {}
    }
}

fn decode_ip(bytes: &[u8], d: &mut Decoded, depth: usize) {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => {
            let packet = match ipv4::Packet::new_checked(bytes) {
                Ok(p) => p,
                // Snapped capture: header complete, payload cut.
                Err(greway::wire::Error::Truncated { needed, .. })
                    if bytes.len() >= 20
                        && needed == usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))
                        && usize::from(bytes[0] & 0x0F) * 4 <= bytes.len()
                        && usize::from(bytes[0] & 0x0F) >= 5 =>
                {
                    ipv4::Packet::new_unchecked(bytes)
                }
                Err(_) => return,
            };
            if depth == 0 {
                d.outer_addrs = Some((packet.src_addr().into(), packet.dst_addr().into()));
            }
            if packet.protocol() == ipv4::protocol::GRE && !packet.is_fragment() {
                let end = usize::from(packet.total_len()).min(bytes.len());
                decode_gre(&bytes[packet.header_len()..end], d, depth);
            }
        }
        Some(6) => {
            if bytes.len() < ipv6::HEADER_LEN {
                return;
            }
            let packet = ipv6::Packet::new_unchecked(bytes);
            if packet.version() != 6 {
                return;
            }
            if depth == 0 {
                d.outer_addrs = Some((packet.src_addr().into(), packet.dst_addr().into()));
            }
            let end = (ipv6::HEADER_LEN + usize::from(packet.payload_len())).min(bytes.len());
            let payload = &bytes[ipv6::HEADER_LEN..end];
            if let Ok(upper) = ipv6::walk_extension_headers(packet.next_header(), payload) {
                if upper.protocol == ipv6::next_header::GRE
                    && upper.fragment.is_none_or(|f| f.offset == 0)
                {
                    decode_gre(&payload[upper.offset..], d, depth);
                }
            }
        }
        _ => {}
    }
}

fn decode_gre(bytes: &[u8], d: &mut Decoded, depth: usize) {
    let packet = match gre::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(error) => {
            d.rejected = Some(GreRejected {
                error,
                flags_version: bytes.get(0..2).map(|w| u16::from_be_bytes([w[0], w[1]])),
                protocol: bytes.get(2..4).map(|w| u16::from_be_bytes([w[0], w[1]])),
            });
            return;
        }
    };
    d.gre.push(GreSeen {
        flags_version: packet.flags_version(),
        checksum: packet.checksum(),
        checksum_ok: packet.verify_checksum(),
        key: packet.key(),
        sequence: packet.sequence(),
        protocol: packet.protocol(),
    });
    if depth + 1 >= MAX_NESTING {
        return;
    }
    let payload = packet.payload();
    match packet.protocol() {
        gre::protocol::IPV4 | gre::protocol::IPV6 => decode_ip(payload, d, depth + 1),
        gre::protocol::TEB => decode_ethernet(payload, d, depth + 1),
        gre::protocol::CISCO_METADATA => {
            if let Ok(cmd) = CiscoMetaData::parse(payload) {
                d.metadata.push(cmd);
                if matches!(
                    cmd.inner_ethertype,
                    ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6
                ) {
                    decode_ip(&payload[cmd.shim_len..], d, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Every frame of a capture, decoded.
fn decode_capture(name: &str) -> Vec<Decoded> {
    let path = captures_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader =
        pcap_file::pcap::PcapReader::new(file).unwrap_or_else(|e| panic!("{name}: {e}"));
    let linktype = u32::from(reader.header().datalink);
    let mut frames = Vec::new();
    // Raw records: the malformed captures have orig_len > snaplen, which the validating reader refuses.
    while let Some(raw) = reader.next_raw_packet() {
        let raw = raw.unwrap_or_else(|e| panic!("{name}: {e}"));
        frames.push(decode_frame(linktype, &raw.data));
    }
    frames
}

const TSHARK_FIELDS: [&str; 9] = [
    "frame.number",
    "gre.flags_and_version",
    "gre.checksum",
    "gre.key",
    "gre.sequence_number",
    "gre.proto",
    "gre.key.payload_length",
    "gre.key.call_id",
    "gre.ack_number",
];

/// tshark's GRE fields, one row per frame, each field the list of its occurrences (outer first).
fn tshark_rows(name: &str) -> Vec<Vec<Vec<String>>> {
    let path = captures_dir().join(name);
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(&path).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in TSHARK_FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "tshark is required for the peer-capture cross-check and could not be run ({e}). \
             Install it (Debian: apt-get install tshark); this test does not skip."
        )
    });
    assert!(
        out.status.success(),
        "tshark failed on {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            line.split('\t')
                .map(|f| {
                    if f.is_empty() {
                        Vec::new()
                    } else {
                        f.split(',').map(str::to_owned).collect()
                    }
                })
                .collect()
        })
        .collect()
}

fn hex(v: impl Into<u64>, width: usize) -> String {
    format!("0x{:0width$x}", v.into(), width = width)
}

/// Compare our decoding of every frame of `name` with tshark's; returns how many frames carried GRE.
fn cross_check_with_tshark(name: &str, frames: &[Decoded]) -> usize {
    let rows = tshark_rows(name);
    assert_eq!(
        rows.len(),
        frames.len(),
        "{name}: tshark and pcap-file disagree on the frame count"
    );
    let mut gre_frames = 0;
    for (i, (row, ours)) in rows.iter().zip(frames).enumerate() {
        let frame = i + 1;
        let ctx = format!("{name} frame {frame}: ours {ours:?}, tshark {row:?}");
        assert_eq!(row[0], vec![frame.to_string()], "{ctx}");
        let tshark_has_gre = !row[1].is_empty();
        assert_eq!(ours.has_gre(), tshark_has_gre, "{ctx}");
        if !tshark_has_gre {
            continue;
        }
        gre_frames += 1;

        // Flags and protocol: every GRE layer, accepted or rejected (the rejected one's raw words).
        let mut flags: Vec<String> = ours.gre.iter().map(|g| hex(g.flags_version, 4)).collect();
        let mut protocols: Vec<String> = ours.gre.iter().map(|g| hex(g.protocol, 4)).collect();
        if let Some(r) = &ours.rejected {
            flags.extend(r.flags_version.map(|f| hex(f, 4)));
            protocols.extend(r.protocol.map(|p| hex(p, 4)));
        }
        assert_eq!(flags, row[1], "flags: {ctx}");
        assert_eq!(protocols, row[5], "protocol: {ctx}");

        let checksums: Vec<String> = ours
            .gre
            .iter()
            .filter_map(|g| g.checksum)
            .map(|c| hex(c, 4))
            .collect();
        let keys: Vec<String> = ours
            .gre
            .iter()
            .filter_map(|g| g.key)
            .map(|k| hex(k, 8))
            .collect();
        let sequences: Vec<String> = ours
            .gre
            .iter()
            .filter_map(|g| g.sequence)
            .map(|s| s.to_string())
            .collect();
        match &ours.rejected {
            None => {
                assert_eq!(checksums, row[2], "checksum: {ctx}");
                assert_eq!(keys, row[3], "key: {ctx}");
                assert_eq!(sequences, row[4], "sequence: {ctx}");
                assert!(
                    ours.gre.iter().all(|g| g.checksum_ok),
                    "checksum verification: {ctx}"
                );
            }
            Some(rejected) => {
                // tshark keeps decoding what we refuse; the accepted layers must still be a prefix of its lists.
                assert!(row[2].starts_with(&checksums), "checksum prefix: {ctx}");
                assert!(row[3].starts_with(&keys), "key prefix: {ctx}");
                assert!(row[4].starts_with(&sequences), "sequence prefix: {ctx}");
                let tshark_flags =
                    u16::from_str_radix(row[1].last().unwrap().trim_start_matches("0x"), 16)
                        .unwrap();
                match rejected.error {
                    GreError::RoutingOrRecursion { flags } => {
                        assert_eq!(flags, tshark_flags, "{ctx}");
                        assert_ne!(flags & gre::flags::DISCARD_MASK, 0, "{ctx}");
                    }
                    GreError::UnsupportedVersion { version } => {
                        assert_eq!(u16::from(version), tshark_flags & 7, "{ctx}")
                    }
                    GreError::Pptp(PptpHeader {
                        payload_len,
                        call_id,
                        sequence,
                        ack,
                    }) => {
                        assert_eq!(tshark_flags & 7, 1, "{ctx}");
                        assert_eq!(
                            row[6],
                            vec![payload_len.to_string()],
                            "PPTP payload length: {ctx}"
                        );
                        assert_eq!(row[7], vec![call_id.to_string()], "PPTP call id: {ctx}");
                        let mut seqs = sequences.clone();
                        seqs.extend(sequence.map(|s| s.to_string()));
                        assert_eq!(seqs, row[4], "PPTP sequence: {ctx}");
                        assert_eq!(
                            ack.map(|a| a.to_string()).into_iter().collect::<Vec<_>>(),
                            row[8],
                            "{ctx}"
                        );
                    }
                    GreError::Eoip(_) => {
                        // No capture here holds EoIP; it is version 1 like PPTP.
                        assert_eq!(tshark_flags & 7, 1, "{ctx}");
                    }
                    GreError::Truncated { .. } => {}
                }
            }
        }
    }
    gre_frames
}

#[test]
fn various_gre_matches_tshark_and_the_tcpdump_decoding() {
    let frames = decode_capture("various_gre.pcap");
    let gre_frames = cross_check_with_tshark("various_gre.pcap", &frames);
    assert_eq!(gre_frames, 30, "tshark -Y gre counts 30 GRE frames");

    // From various_gre.tcpdump-v.out: every GRE frame is between 10.172.64.6 and .7 with key 0x28.
    let routers: [IpAddr; 2] = [
        "10.172.64.6".parse().unwrap(),
        "10.172.64.7".parse().unwrap(),
    ];
    for (i, d) in frames.iter().enumerate().filter(|(_, d)| d.has_gre()) {
        let (src, dst) = d.outer_addrs.unwrap();
        assert!(
            routers.contains(&src) && routers.contains(&dst) && src != dst,
            "frame {}",
            i + 1
        );
        assert_eq!(d.gre[0].key, Some(0x28), "frame {}", i + 1);
        assert_eq!(d.gre[0].flags_version, 0x2000, "frame {}", i + 1);
        assert!(d.rejected.is_none(), "frame {}", i + 1);
    }

    // Frame 12: "10.172.64.6 > 10.172.64.7: GREv0, Flags [key present], key=0x28, length 8 keep-alive".
    let reply = &frames[11];
    assert_eq!(reply.gre.len(), 1);
    assert_eq!(reply.gre[0].protocol, gre::protocol::KEEPALIVE);
    // Frame 11: a keepalive sent through the Cisco MetaData shim; its payload is IPv4 carrying the GRE reply.
    let keepalive = &frames[10];
    assert_eq!(
        keepalive.gre.iter().map(|g| g.protocol).collect::<Vec<_>>(),
        [0x8909, 0x0000]
    );
    assert_eq!(keepalive.gre[1].key, Some(0x28));
    assert_eq!(
        keepalive.metadata,
        [CiscoMetaData {
            shim_len: 8,
            sgt: 0,
            inner_ethertype: 0x0800
        }]
    );
    // Frame 49: CDP over the tunnel (protocol 0x2000).
    assert_eq!(frames[48].gre[0].protocol, gre::protocol::CDP);
    // Frame 25: a ping through the metadata shim.
    assert_eq!(frames[24].metadata.len(), 1);
    assert_eq!(frames[24].gre.len(), 1);
}

#[test]
fn pptp_is_recognised_and_reported() {
    let frames = decode_capture("pptp.pcap");
    assert_eq!(cross_check_with_tshark("pptp.pcap", &frames), 1);
    // pptp.tcpdump-v.out frame 16: "GREv1, call 0, seq 0, length 60: LCP, Conf-Request".
    let rejected = frames[15].rejected.as_ref().unwrap();
    assert_eq!(
        rejected.error,
        GreError::Pptp(PptpHeader {
            payload_len: 48,
            call_id: 0,
            sequence: Some(0),
            ack: None
        })
    );
    assert_eq!(rejected.protocol, Some(gre::protocol::PPP));
}

#[test]
fn erspan_captures_match_tshark() {
    for (name, gre_frames) in [
        ("erspan-type-i-1.pcap", 2),
        ("erspan-type-ii-1.pcap", 1),
        ("erspan-type-ii-2.pcap", 16),
        ("erspan-type-iii-ft-0.pcap", 9),
        ("erspan-type-iii-pb-1.pcap", 1),
    ] {
        let frames = decode_capture(name);
        assert_eq!(cross_check_with_tshark(name, &frames), gre_frames, "{name}");
    }
    let ii = decode_capture("erspan-type-ii-1.pcap");
    assert_eq!(ii[0].gre[0].sequence, Some(171));
    assert_eq!(ii[0].gre[0].protocol, gre::protocol::ERSPAN);
    // The type III "pb" frame sets s and Recur (flags 0x1d00): RFC 2784 section 2.3 says discard.
    let pb = decode_capture("erspan-type-iii-pb-1.pcap");
    assert_eq!(
        pb[0].rejected.as_ref().unwrap().error,
        GreError::RoutingOrRecursion { flags: 0x1d00 }
    );
}

#[test]
fn malformed_and_wccp_captures_do_not_panic_and_match_tshark() {
    for name in [
        "gre-heapoverflow-1.pcap",
        "gre-heapoverflow-2.pcap",
        "wccp_redirect_gre.pcap",
    ] {
        let frames = decode_capture(name);
        cross_check_with_tshark(name, &frames);
    }
    // gre-heapoverflow-2 frame 2: "GREv0, Flags [checksum present, routing present]" (0xc030): discarded.
    let frames = decode_capture("gre-heapoverflow-2.pcap");
    assert_eq!(
        frames[1].rejected.as_ref().unwrap().error,
        GreError::RoutingOrRecursion { flags: 0xc030 }
    );
    let wccp = decode_capture("wccp_redirect_gre.pcap");
    assert_eq!(wccp[0].gre[0].protocol, gre::protocol::WCCP);
}

#[test]
fn every_capture_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "erspan-type-i-1.pcap",
            "erspan-type-ii-1.pcap",
            "erspan-type-ii-2.pcap",
            "erspan-type-iii-ft-0.pcap",
            "erspan-type-iii-pb-1.pcap",
            "gre-heapoverflow-1.pcap",
            "gre-heapoverflow-2.pcap",
            "pptp.pcap",
            "various_gre.pcap",
            "wccp_redirect_gre.pcap",
        ],
        "a new capture appeared: add it to a test above"
    );
}
