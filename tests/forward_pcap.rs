//! Foundation: the real binary on real pcap ports in cross-connect mode. Packets in equal packets out, the
//! output bytes equal the input bytes, and the mempool holds as many free mbufs after the run as before.
mod common;
use common::*;

#[test]
fn cross_connect_forwards_every_packet_and_leaks_no_mbuf() {
    let dir = scratch("forward");
    let a: Vec<Vec<u8>> = (0..500u16)
        .map(|i| {
            udp4_frame(
                [2, 0, 0, 0, 0, 0x10],
                [2, 0, 0, 0, 0, 1],
                [10, 0, 0, 2],
                [10, 20, 0, 1],
                i,
                &[i as u8; 22],
            )
        })
        .collect();
    let b: Vec<Vec<u8>> = (0..321u16)
        .map(|i| {
            let len = 1 + (usize::from(i) * 7) % 1400;
            udp4_frame(
                [2, 0, 0, 0, 0, 0x20],
                [2, 0, 0, 0, 0, 2],
                [192, 0, 2, 9],
                [10, 0, 0, 2],
                i,
                &vec![0xab; len],
            )
        })
        .collect();
    write_pcap(&dir.join("a.pcap"), &a);
    write_pcap(&dir.join("b.pcap"), &b);
    let d = dir.display();
    let cfg = format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
mode = "forward"
[[port]]
name = "inside"
device = "net_pcap0,rx_pcap={d}/a.pcap,tx_pcap={d}/out-inside.pcap"
address = "10.0.0.1/24"
[[port]]
name = "outside"
device = "net_pcap1,rx_pcap={d}/b.pcap,tx_pcap={d}/out-outside.pcap"
address = "192.0.2.1/24"
"#,
        eal = eal_args("fwd")
    );
    let (_, s) = run_greway(&dir, &cfg, &[]);
    assert_eq!(s["ports"]["inside"]["rx"], 500);
    assert_eq!(s["ports"]["outside"]["tx"], 500);
    assert_eq!(s["ports"]["outside"]["rx"], 321);
    assert_eq!(s["ports"]["inside"]["tx"], 321);
    assert_eq!(
        s["ports"]["inside"]["hw"]["ipackets"], 500,
        "device counters agree"
    );
    // Byte counters: greway's own (rx per burst, tx as packets join a tx burst) and the PMD's agree with the
    // frames.
    let bytes = |v: &[Vec<u8>]| v.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!(s["ports"]["inside"]["rx_bytes"], bytes(&a));
    assert_eq!(s["ports"]["outside"]["tx_bytes"], bytes(&a));
    assert_eq!(s["ports"]["outside"]["rx_bytes"], bytes(&b));
    assert_eq!(s["ports"]["inside"]["tx_bytes"], bytes(&b));
    assert_eq!(s["ports"]["outside"]["hw"]["obytes"], bytes(&a));
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked: {s}"
    );
    assert!(
        s["drops"].as_object().unwrap().values().all(|v| v == 0),
        "no drops: {s}"
    );
    assert_eq!(
        read_pcap(&dir.join("out-outside.pcap")),
        a,
        "inside frames leave outside unchanged"
    );
    assert_eq!(
        read_pcap(&dir.join("out-inside.pcap")),
        b,
        "outside frames leave inside unchanged"
    );
    assert_eq!(
        s["latency"]["count"], 821,
        "every forwarded packet has a latency sample"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
