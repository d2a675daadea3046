//! Run-level latency thresholds (issue 17; like k6's `thresholds`): a scenario's
//! `[thresholds]` table bounds the 50th and 99th percentile of
//! - `post_*`: a post's latency, from its grpchat INFO leaving the client to the final
//!   answer arriving (each try of a retried post counts on its own), and
//! - `relay_*`: a relay's latency, from the post leaving its author to the relayed
//!   grpchat arriving at another client (matched by room, author and text; the first
//!   copy sent),
//!
//! in milliseconds, read from the run's transcript: wall-clock time in live runs
//! (`--target`; what the thresholds are for), simulated time in the simulator.
//! Percentiles are nearest-rank. A threshold over a run with no such sample fails (it
//! cannot be met by nothing).
//!
//! ```toml
//! [thresholds]
//! post_p50_ms = 20
//! post_p99_ms = 200
//! relay_p99_ms = 250
//! ```

use crate::transcript::{Entry, Transcript};
use pchat_server::sip::{parse, SipMessage};
use pchat_server::xccos::{self, Body};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[thresholds]`: upper bounds, ms; every key is optional.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Median post latency (INFO sent -> final answer), ms.
    pub post_p50_ms: Option<u64>,
    /// 99th percentile post latency, ms.
    pub post_p99_ms: Option<u64>,
    /// Median relay latency (post sent -> relay received), ms.
    pub relay_p50_ms: Option<u64>,
    /// 99th percentile relay latency, ms.
    pub relay_p99_ms: Option<u64>,
}

/// Latency samples of a run, ms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Samples {
    /// Post latencies.
    pub post: Vec<u64>,
    /// Relay latencies.
    pub relay: Vec<u64>,
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of `v`, or None when empty.
pub fn percentile(v: &[u64], p: u64) -> Option<u64> {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n.max(1));
    sorted.get(rank as usize - 1).copied()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The post and relay latencies in `entries`.
pub fn samples(entries: &[Entry]) -> Samples {
    let mut sent: BTreeMap<(String, u32), Duration> = BTreeMap::new();
    let mut first_post: BTreeMap<(String, String, String), Duration> = BTreeMap::new();
    let mut out = Samples::default();
    for e in entries.iter().filter(|e| e.from != "#") {
        let Ok(msg) = parse(&e.bytes) else { continue };
        match msg {
            SipMessage::Request(req) if req.method == "INFO" => {
                let Ok(env) = xccos::parse(&req.body) else {
                    continue;
                };
                let Body::GrpChat(g) = env.body else { continue };
                let key = (g.chan_uri, g.author.unwrap_or_default(), g.text);
                if e.to == "server" {
                    let id = req.call_id().unwrap_or_default().to_string();
                    sent.insert((id, req.cseq().map_or(0, |c| c.0)), e.at);
                    first_post.entry(key).or_insert(e.at);
                } else if let Some(at) = first_post.get(&key) {
                    out.relay.push(ms(e.at.saturating_sub(*at)));
                }
            }
            SipMessage::Response(resp) if e.from == "server" && resp.code >= 200 => {
                let id = resp.call_id().unwrap_or_default().to_string();
                let cseq = resp.cseq().map_or(0, |c| c.0);
                if let Some(at) = sent.remove(&(id, cseq)) {
                    out.post.push(ms(e.at.saturating_sub(at)));
                }
            }
            _ => {}
        }
    }
    out
}

/// The thresholds `t` does not meet over `transcript`, one line each
/// (`threshold post_p99_ms = 200: 213 ms over 40 posts`).
pub fn check(t: &Thresholds, transcript: &Transcript) -> Vec<String> {
    let s = samples(&transcript.entries());
    let rows = [
        ("post_p50_ms", t.post_p50_ms, &s.post, 50, "posts"),
        ("post_p99_ms", t.post_p99_ms, &s.post, 99, "posts"),
        ("relay_p50_ms", t.relay_p50_ms, &s.relay, 50, "relays"),
        ("relay_p99_ms", t.relay_p99_ms, &s.relay, 99, "relays"),
    ];
    let mut out = Vec::new();
    for (key, limit, v, p, what) in rows {
        let Some(limit) = limit else { continue };
        match percentile(v, p) {
            None => out.push(format!("threshold {key} = {limit}: no {what} to measure")),
            Some(got) if got > limit => out.push(format!(
                "threshold {key} = {limit}: {got} ms over {} {what}",
                v.len()
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[5, 1, 9, 3], 50), Some(3));
    }
}
