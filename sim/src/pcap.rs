//! A transcript as a pcap file (libpcap format, Ethernet link type) that Wireshark and
//! `tshark -r FILE -Y sip` decode as SIP over TCP: the server is `10.0.0.1:5060`, each
//! client label gets `10.0.1.N:40000+N` in order of first appearance; every message is
//! one or more TCP segments (at most [`MSS`] bytes each) with consistent sequence
//! numbers per direction and valid IPv4/TCP checksums, 1 ms apart.

use crate::transcript::Transcript;
use std::collections::BTreeMap;

/// Largest TCP payload per packet, bytes.
pub const MSS: usize = 1400;

/// SIP port of the server in the capture.
const SERVER_PORT: u16 = 5060;

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Endpoint {
    ip: [u8; 4],
    port: u16,
}

/// One Ethernet/IPv4/TCP packet (PSH|ACK) carrying `payload`.
fn packet(src: &Endpoint, dst: &Endpoint, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port.to_be_bytes());
    tcp.extend_from_slice(&dst.port.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let tcp_len = tcp.len() as u16;
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.ip);
    pseudo.extend_from_slice(&dst.ip);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&tcp_len.to_be_bytes());
    let c = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let total = 20 + tcp_len;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&src.ip);
    ip.extend_from_slice(&dst.ip);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut frame = Vec::with_capacity(14 + ip.len() + tcp.len());
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, dst.ip[3]]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, src.ip[3]]);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&tcp);
    frame
}

/// The pcap bytes of `transcript` (see the module docs). Notes are not captured.
pub fn from_transcript(transcript: &Transcript) -> Vec<u8> {
    let mut out = Vec::new();
    // Global header: magic, v2.4, GMT offset 0, accuracy 0, snaplen, LINKTYPE_ETHERNET.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut clients: BTreeMap<String, u16> = BTreeMap::new();
    // (client, to_server) -> next sequence number.
    let mut seqs: BTreeMap<(u16, bool), u32> = BTreeMap::new();
    let server = Endpoint {
        ip: [10, 0, 0, 1],
        port: SERVER_PORT,
    };
    let mut t_ms: u64 = 0;
    for e in transcript.entries() {
        if e.from == "#" {
            continue;
        }
        let (label, to_server) = if e.to == "server" {
            (e.from.clone(), true)
        } else {
            (e.to.clone(), false)
        };
        let next = clients.len() as u16 + 1;
        let n = *clients.entry(label).or_insert(next);
        let client = Endpoint {
            ip: [10, 0, 1 + (n / 250) as u8, (n % 250) as u8 + 1],
            port: 40_000 + n,
        };
        let (src, dst) = if to_server {
            (&client, &server)
        } else {
            (&server, &client)
        };
        for chunk in e.bytes.chunks(MSS) {
            let seq = *seqs.entry((n, to_server)).or_insert(1);
            let ack = *seqs.entry((n, !to_server)).or_insert(1);
            let frame = packet(src, dst, seq, ack, chunk);
            seqs.insert((n, to_server), seq.wrapping_add(chunk.len() as u32));
            t_ms += 1;
            out.extend_from_slice(&((t_ms / 1000) as u32).to_le_bytes());
            out.extend_from_slice(&(((t_ms % 1000) * 1000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_and_records_are_well_formed() {
        let t = Transcript::default();
        t.note("a note is not captured");
        t.record(
            "user1",
            "server",
            b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        );
        t.record("server", "user1", &vec![b'a'; MSS + 10]);
        let p = from_transcript(&t);
        assert_eq!(&p[..4], &0xa1b2_c3d4u32.to_le_bytes());
        let mut at = 24;
        let mut frames = Vec::new();
        while at < p.len() {
            let len = u32::from_le_bytes(p[at + 8..at + 12].try_into().unwrap()) as usize;
            frames.push(&p[at + 16..at + 16 + len]);
            at += 16 + len;
        }
        assert_eq!(at, p.len());
        assert_eq!(frames.len(), 3, "1 + 2 segments");
        for f in &frames {
            let ip = &f[14..34];
            assert_eq!(checksum(&[ip]), 0, "IPv4 header checksum verifies");
            let tcp = &f[34..];
            let mut pseudo = ip[12..20].to_vec();
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            assert_eq!(checksum(&[&pseudo, tcp]), 0, "TCP checksum verifies");
        }
        let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
        assert_eq!(seq(frames[2]), seq(frames[1]) + MSS as u32, "contiguous");
    }
}
