//! Every wire parser on arbitrary bytes: none may panic, and what parses must re-emit to the same header.
#![no_main]
use greway::wire::{arp, ethernet, gre, icmpv4, icmpv6, ipv4, ipv6};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let _ = ethernet::EthernetRepr::parse(&f);
    }
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = p.verify_checksum();
        let _ = p.payload();
        if let Ok(r) = gre::GreRepr::parse(&p) {
            let mut buf = vec![0u8; r.header_len()];
            r.emit(&mut buf);
            // Key and sequence are re-emitted as received (the checksum field is filled separately, and the
            // ignored flag bits are not re-emitted).
            let opt = if r.checksum { 8 } else { 4 };
            assert_eq!(&buf[opt..], &data[opt..r.header_len()]);
        }
    }
    let _ = gre::CiscoMetaData::parse(data);
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = ipv4::Ipv4Repr::parse(&p);
        let _ = p.verify_checksum();
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = ipv6::Ipv6Repr::parse(&p);
        let _ = p.upper_layer();
    }
    let _ = arp::ArpRepr::parse_bytes(data);
    let _ = icmpv4::Icmpv4Repr::parse_bytes(data);
    if data.len() >= 32 {
        let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        let dst = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
        let _ = icmpv6::Icmpv6Repr::parse_bytes(&data[32..], src, dst);
    }
});
