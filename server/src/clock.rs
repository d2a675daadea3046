//! Time as the server sees it. Determinism rule (DESIGN.md): no wall clock in logic.
//! The host reads the wall clock once at start (binary) or uses a fixed epoch (simulator)
//! and everything after is tokio time, which turmoil controls in the simulator.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A source of "now", in milliseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> i64;
}

/// `base_ms` plus the tokio time elapsed since construction. Under turmoil, tokio time
/// is simulated, so this is deterministic.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base_ms` (ms since the epoch) now. Must be called inside a tokio
    /// runtime (tokio time).
    pub fn starting_at(base_ms: i64) -> TokioClock {
        TokioClock {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        self.base_ms
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to (unit tests, benchmarks).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(ms))
    }
    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Formats ms-since-epoch as ISO 8601 UTC with millisecond precision, e.g.
/// `2026-01-01T00:00:01.250Z` (the form of XCCOS `ts` and `serverTime`).
pub fn iso8601(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
            format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        }
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Parses an ISO 8601 / RFC 3339 timestamp into ms since the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// 2026-01-01T00:00:00Z in ms: the epoch the simulator's clock starts at.
pub const SIM_EPOCH_MS: i64 = 1_767_225_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        assert_eq!(iso8601(SIM_EPOCH_MS + 1_250), "2026-01-01T00:00:01.250Z");
        assert_eq!(
            parse_iso8601("2026-01-01T00:00:01.250Z"),
            Some(SIM_EPOCH_MS + 1_250)
        );
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        assert_eq!(c.now_ms(), 5);
        c.advance(10);
        assert_eq!(c.now_ms(), 15);
    }
}
