//! RFC 791 fragmentation of an inner IPv4 packet that is larger than the tunnel MTU and may be fragmented
//! (DF clear). greway fragments the *inner* packet and encapsulates each fragment, so the far gateway forwards
//! fragments the destination host reassembles; outer packets are never fragmented. This is the rare path: it
//! takes extra buffers from the packet's own pool ([`PacketBuf::alloc_sibling`]).
use crate::buf::PacketBuf;
use greway_wire::{ethernet, ipv4};

/// The Ethernet header and an option-less IPv4 header: what every fragment starts with.
const HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// Why a packet could not be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragError {
    /// Options present (RFC 791 copies only some of them into later fragments: not done here), or a header
    /// too long for the MTU.
    Unsupported,
    /// No buffer for a fragment.
    NoBuffer,
    /// Chained input.
    Segmented,
}

/// Split the IPv4 packet at offset 14 of `pkt` (Ethernet header in front) into fragments whose IP packets are
/// at most `mtu` bytes. `pkt` becomes the first fragment; the others are passed to `out` in order. Offsets and
/// MF continue those of the original (which may itself be a fragment).
pub fn fragment_ipv4<B: PacketBuf>(
    pkt: &mut B,
    mtu: usize,
    out: &mut dyn FnMut(B),
) -> Result<usize, FragError> {
    if !pkt.is_contiguous() {
        return Err(FragError::Segmented);
    }
    let Some(header) = pkt.data().first_chunk::<HEADERS>().copied() else {
        return Err(FragError::Unsupported);
    };
    let ip = ipv4::Header::from_prefix(&header[ethernet::HEADER_LEN..]).expect("20 bytes");
    let ihl = ip.header_len();
    if ihl != ipv4::HEADER_LEN || mtu < ihl + 8 {
        return Err(FragError::Unsupported);
    }
    let total = usize::from(ip.total_len());
    let payload = total - ihl;
    // Every fragment but the last carries a multiple of 8 payload bytes.
    let chunk = (mtu - ihl) & !7;
    let frag_word = ip.flags_frag();
    let base_off = usize::from(frag_word & ipv4::flags_frag::OFFSET_MASK) * 8;
    let orig_mf = frag_word & ipv4::flags_frag::MORE_FRAGMENTS != 0;
    let mut count = 1;
    // Later fragments first, built from the untouched original bytes; then the first one is trimmed in place.
    let mut at = chunk;
    while at < payload {
        let len = chunk.min(payload - at);
        let last = at + len == payload;
        let mut f = pkt.alloc_sibling().ok_or(FragError::NoBuffer)?;
        let Some(buf) = f.append(HEADERS + len) else {
            return Err(FragError::NoBuffer);
        };
        buf[..HEADERS].copy_from_slice(&header);
        buf[HEADERS..].copy_from_slice(&pkt.data()[HEADERS + at..HEADERS + at + len]);
        set_fragment_fields(buf, ipv4::HEADER_LEN + len, base_off + at, !last || orig_mf);
        out(f);
        count += 1;
        at += len;
    }
    let excess = pkt.pkt_len() - (HEADERS + chunk);
    if !pkt.trim(excess) {
        return Err(FragError::Segmented);
    }
    set_fragment_fields(pkt.data_mut(), ipv4::HEADER_LEN + chunk, base_off, true);
    Ok(count)
}

/// Total length, MF and offset of the fragment in `frame` (whose IPv4 header came from the original), and the
/// header checksum over them.
fn set_fragment_fields(frame: &mut [u8], total: usize, offset_bytes: usize, more: bool) {
    let (_, rest) = ethernet::HeaderMut::split_prefix(frame).expect("an Ethernet header");
    let mut ip = ipv4::HeaderMut::from_prefix(rest).expect("an IPv4 header");
    ip.set_total_len(total as u16);
    let mf = if more {
        ipv4::flags_frag::MORE_FRAGMENTS
    } else {
        0
    };
    ip.set_flags_frag(((offset_bytes / 8) as u16) | mf);
    ip.fill_checksum();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use greway_wire::checksum;

    const ETH: usize = ethernet::HEADER_LEN;

    fn packet(payload: usize, frag_word: u16) -> Vec<u8> {
        let mut f = vec![0u8; ETH];
        f[12] = 8;
        let total = 20 + payload;
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0xab, 0xcd];
        ip.extend_from_slice(&frag_word.to_be_bytes());
        ip.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 2, 10, 20, 0, 1]);
        f.extend(ip);
        f.extend((0..payload).map(|i| (i * 7) as u8));
        f
    }

    fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
        let mut data = Vec::new();
        for f in frags {
            let off = usize::from(u16::from_be_bytes([f[ETH + 6], f[ETH + 7]]) & 0x1fff) * 8;
            let tot = usize::from(u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]));
            assert_eq!(f.len(), ETH + tot);
            assert_eq!(
                checksum::checksum(&f[ETH..ETH + 20]),
                0,
                "fragment header checksum"
            );
            assert!(tot <= 1400);
            if data.len() < off + tot - 20 {
                data.resize(off + tot - 20, 0);
            }
            data[off..off + tot - 20].copy_from_slice(&f[ETH + 20..]);
        }
        data
    }

    #[test]
    fn fragments_reassemble_to_the_original() {
        for payload in [1381usize, 1500, 2000, 2760, 1999] {
            let orig = packet(payload, 0);
            let mut b = VecBuf::with_room(&orig, 128, 4096);
            let mut rest = Vec::new();
            let n = fragment_ipv4(&mut b, 1400, &mut |f: VecBuf| rest.push(f.to_vec())).unwrap();
            let mut all = vec![b.to_vec()];
            all.extend(rest);
            assert_eq!(n, all.len());
            assert_eq!(n, payload.div_ceil(1376));
            // MF on all but the last; identification kept.
            for (i, f) in all.iter().enumerate() {
                assert_eq!(f[ETH + 6] & 0x20 != 0, i + 1 < n, "MF of fragment {i}");
                assert_eq!(&f[ETH + 4..ETH + 6], &[0xab, 0xcd]);
            }
            assert_eq!(
                reassemble(&all),
                orig[ETH + 20..].to_vec(),
                "payload {payload}"
            );
        }
    }

    #[test]
    fn a_fragment_of_a_fragment_keeps_offsets_and_mf() {
        // Original: offset 800 bytes (100 units), MF set.
        let orig = packet(2000, 0x2000 | 100);
        let mut b = VecBuf::with_room(&orig, 128, 4096);
        let mut rest = Vec::new();
        fragment_ipv4(&mut b, 1400, &mut |f: VecBuf| rest.push(f.to_vec())).unwrap();
        assert_eq!(
            u16::from_be_bytes([b.to_vec()[ETH + 6], b.to_vec()[ETH + 7]]),
            0x2000 | 100
        );
        let last = rest.last().unwrap();
        assert_eq!(
            u16::from_be_bytes([last[ETH + 6], last[ETH + 7]]),
            0x2000 | (100 + 1376 / 8),
            "MF kept"
        );
    }

    #[test]
    fn options_are_not_fragmented() {
        let mut orig = packet(2000, 0);
        orig[ETH] = 0x46;
        let mut b = VecBuf::with_room(&orig, 128, 4096);
        assert_eq!(
            fragment_ipv4(&mut b, 1400, &mut |_| {}),
            Err(FragError::Unsupported)
        );
    }
}
