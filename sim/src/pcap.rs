//! A transcript as a pcap file (libpcap format, Ethernet link type, written with the
//! `pcap-file` crate; frames built with `etherparse`) that Wireshark and
//! `tshark -r FILE -Y sip` decode as SIP over TCP.
//!
//! Timestamps are the transcript's: simulated time in the simulator (a 2 s retry shows
//! 2 s apart), wall-clock time since the first message live. Addresses are the ones in
//! the SIP headers: a client's is the `sent-by` of the top `Via` of its first request
//! (`192.168.0.2:49152` in the simulator), the server's the host:port of the first
//! `Contact` it sends (`192.168.0.1:5060`); a label without one gets `10.0.1.N:40000+N`
//! (clients) or `10.0.0.1:5060` (server). Each message is one or more TCP segments (at
//! most [`MSS`] bytes) with consistent sequence numbers per direction.

use crate::transcript::Transcript;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;

/// Largest TCP payload per packet, bytes.
pub const MSS: usize = 1400;

/// The address a SIP message shows for its sender: the top Via's sent-by (requests)
/// or the Contact's host:port (responses and requests), if it is an IPv4 address.
fn advertised(bytes: &[u8], header: &str) -> Option<SocketAddrV4> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let line = head.lines().find(|l| {
        l.split(':')
            .next()
            .is_some_and(|h| h.trim().eq_ignore_ascii_case(header))
    })?;
    let value = line.split_once(':')?.1;
    let host_port = match header {
        "Via" => value.split_whitespace().nth(1)?.split(';').next()?,
        _ => value
            .split("sip:")
            .nth(1)?
            .split(['>', ';'])
            .next()?
            .rsplit('@')
            .next()?,
    };
    host_port.parse().ok()
}

/// Every label's address (module docs).
fn addresses(transcript: &Transcript) -> BTreeMap<String, SocketAddrV4> {
    let mut out: BTreeMap<String, SocketAddrV4> = BTreeMap::new();
    for e in transcript.entries() {
        if e.from == "#" || out.contains_key(&e.from) {
            continue;
        }
        let found = match e.from.as_str() {
            "server" => advertised(&e.bytes, "Contact"),
            _ => advertised(&e.bytes, "Via"),
        };
        if let Some(a) = found {
            out.insert(e.from.clone(), a);
        }
    }
    let mut n = 0u16;
    for e in transcript.entries() {
        for label in [&e.from, &e.to] {
            if label == "#" || label.is_empty() || out.contains_key(label) {
                continue;
            }
            n += 1;
            let addr = match label.as_str() {
                "server" => SocketAddrV4::new([10, 0, 0, 1].into(), 5060),
                _ => SocketAddrV4::new(
                    [10, 0, 1 + (n / 250) as u8, (n % 250) as u8 + 1].into(),
                    40_000 + n,
                ),
            };
            out.insert(label.clone(), addr);
        }
    }
    out
}

/// One Ethernet/IPv4/TCP frame (PSH|ACK) carrying `payload`.
fn frame(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mac = |a: SocketAddrV4| {
        let o = a.ip().octets();
        [0x02, 0, o[0], o[1], o[2], o[3]]
    };
    let builder = PacketBuilder::ethernet2(mac(src), mac(dst))
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), seq, 0xffff)
        .ack(ack)
        .psh();
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // Writing into a Vec fails only for a payload too large for IPv4; MSS bounds it.
    let _ = builder.write(&mut out, payload);
    out
}

/// The pcap bytes of `transcript` (see the module docs). Notes are not captured.
pub fn from_transcript(transcript: &Transcript) -> Vec<u8> {
    let addr = addresses(transcript);
    let Ok(mut w) = PcapWriter::new(Vec::new()) else {
        return Vec::new();
    };
    // (from, to) -> next sequence number.
    let mut seqs: BTreeMap<(SocketAddrV4, SocketAddrV4), u32> = BTreeMap::new();
    for e in transcript.entries() {
        if e.from == "#" {
            continue;
        }
        let (Some(&src), Some(&dst)) = (addr.get(&e.from), addr.get(&e.to)) else {
            continue;
        };
        for chunk in e.bytes.chunks(MSS) {
            let seq = *seqs.entry((src, dst)).or_insert(1);
            let ack = *seqs.entry((dst, src)).or_insert(1);
            let data = frame(src, dst, seq, ack, chunk);
            seqs.insert((src, dst), seq.wrapping_add(chunk.len() as u32));
            let _ = w.write_packet(&PcapPacket::new(e.at, data.len() as u32, &data));
        }
    }
    w.into_writer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn addresses_and_times_come_from_the_transcript() {
        let t = Transcript::default();
        t.note("a note is not captured");
        t.record(
            "user1",
            "server",
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.0.2:49152;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.record("server", "user1", &vec![b'a'; MSS + 10]);
        let p = from_transcript(&t);
        let mut r = PcapReader::new(&p[..]).unwrap();
        let mut packets = Vec::new();
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            packets.push((pkt.timestamp, pkt.data.into_owned()));
        }
        assert_eq!(packets.len(), 3, "1 + 2 segments");
        fn ip(d: &[u8]) -> etherparse::SlicedPacket<'_> {
            etherparse::SlicedPacket::from_ethernet(d).unwrap()
        }
        let first = ip(&packets[0].1);
        let Some(etherparse::NetSlice::Ipv4(v4)) = first.net else {
            panic!("ipv4")
        };
        assert_eq!(v4.header().source(), [192, 168, 0, 2]);
        assert!(packets[1].0 >= packets[0].0 + std::time::Duration::from_millis(20));
        let seq = |d: &[u8]| match ip(d).transport {
            Some(etherparse::TransportSlice::Tcp(t)) => t.sequence_number(),
            _ => panic!("tcp"),
        };
        assert_eq!(
            seq(&packets[2].1),
            seq(&packets[1].1) + MSS as u32,
            "contiguous"
        );
    }
}
