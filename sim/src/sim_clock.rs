//! The pace of the simulation: how far each turmoil step moves simulated time.
//!
//! turmoil moves every host forward by one tick per `Sim::step`. With a fixed 1 ms tick
//! a run costs one step per simulated millisecond even while every client only waits (an
//! hour of idle sessions would be 3.6 M steps). The [`Pacer`] picks each step's length:
//! - [`BUSY_TICK`] (1 ms) while any message is on the network, and for [`QUIET_STEPS`]
//!   steps after the last one or after an *alarm* (below) went off: the answers and the
//!   work a wake-up starts run at the same pace as before;
//! - otherwise up to [`IDLE_TICK_MAX`], but never past the next alarm: the instant a
//!   timer of the runner fires (a `wait` step, `think_ms`, the end of a fault window, a
//!   Retry-After pause, a client's receive deadline; all go through [`sleep`] /
//!   [`sleep_until`] / [`alarm_in`]). Those wake-ups therefore fall on a step boundary
//!   as they did with 1 ms ticks.
//!
//! Timers the runner does not know of (the server's 1 s core tick, session expiry, the
//! compliance worker) still fire at their own instant inside a step (tokio's paused
//! clock), but a message they send leaves when the step ends: at most [`IDLE_TICK_MAX`]
//! later than with 1 ms steps. The pace depends on simulated state only, so a run stays
//! deterministic (same file + seed = same bytes).
//!
//! Alarms live in a thread-local set: turmoil runs every host of a simulation on the
//! calling thread, and [`Pacer::new`] clears the set when a run starts. Outside the
//! simulator (live runs) [`sleep`] is `tokio::time::sleep` and records nothing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

/// Step length while messages are in flight: the latency model's resolution (ms).
pub const BUSY_TICK: Duration = Duration::from_millis(1);
/// Longest step while nothing is in flight; bounds how late a message sent by a timer
/// the runner does not know of can leave.
pub const IDLE_TICK_MAX: Duration = Duration::from_millis(50);
/// Steps of [`BUSY_TICK`] after the network went idle or an alarm went off.
pub const QUIET_STEPS: u32 = 5;

thread_local! {
    /// Simulated instants (time since the start of the run, whole ms) at which a
    /// runner timer fires.
    static ALARMS: RefCell<BTreeSet<Duration>> = const { RefCell::new(BTreeSet::new()) };
}

/// Rounds `d` up to a whole millisecond.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// In the simulator: records that a runner timer fires `d` from now, so that a step
/// ends there. Elsewhere: nothing.
pub fn alarm_in(d: Duration) {
    if let Some(now) = turmoil::sim_elapsed() {
        let at = ceil_ms(now.saturating_add(d));
        ALARMS.with(|a| a.borrow_mut().insert(at));
    }
}

/// `tokio::time::sleep(d)` that, in the simulator, ends a step at the wake-up.
pub async fn sleep(d: Duration) {
    alarm_in(d);
    tokio::time::sleep(d).await;
}

/// `tokio::time::sleep_until(deadline)` that, in the simulator, ends a step there.
pub async fn sleep_until(deadline: tokio::time::Instant) {
    alarm_in(deadline.saturating_duration_since(tokio::time::Instant::now()));
    tokio::time::sleep_until(deadline).await;
}

/// Chooses the length of each simulation step (module docs).
#[derive(Debug)]
pub struct Pacer {
    /// Steps since the network was last busy or an alarm last went off.
    quiet: u32,
}

impl Pacer {
    /// A pacer for a new run on this thread (forgets the alarms of earlier runs).
    pub fn new() -> Self {
        ALARMS.with(|a| a.borrow_mut().clear());
        Pacer { quiet: 0 }
    }

    /// The length of the next step, `now` being the simulated time since the start and
    /// `network_idle` whether no message is on the network (`Sim::is_network_idle`).
    /// Always a whole number of ms in `BUSY_TICK..=IDLE_TICK_MAX`.
    pub fn next_tick(&mut self, now: Duration, network_idle: bool) -> Duration {
        let (went_off, next) = ALARMS.with(|a| {
            let mut a = a.borrow_mut();
            let mut went_off = false;
            while a.first().is_some_and(|&at| at <= now) {
                a.pop_first();
                went_off = true;
            }
            (went_off, a.first().copied())
        });
        if !network_idle || went_off {
            self.quiet = 0;
            return BUSY_TICK;
        }
        self.quiet = self.quiet.saturating_add(1);
        if self.quiet < QUIET_STEPS {
            return BUSY_TICK;
        }
        let until_alarm = next.map_or(IDLE_TICK_MAX, |at| at.saturating_sub(now));
        ceil_ms(until_alarm.min(IDLE_TICK_MAX)).max(BUSY_TICK)
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm_at(ms: u64) {
        ALARMS.with(|a| a.borrow_mut().insert(Duration::from_millis(ms)));
    }

    #[test]
    fn busy_network_steps_one_ms() {
        let mut p = Pacer::new();
        for t in 0..20 {
            assert_eq!(p.next_tick(Duration::from_millis(t), false), BUSY_TICK);
        }
    }

    #[test]
    fn idle_network_grows_after_quiet_steps_up_to_the_cap() {
        let mut p = Pacer::new();
        let ticks: Vec<u64> = (0..QUIET_STEPS + 1)
            .map(|t| {
                p.next_tick(Duration::from_millis(t.into()), true)
                    .as_millis() as u64
            })
            .collect();
        assert!(ticks[..QUIET_STEPS as usize - 1].iter().all(|&t| t == 1));
        assert_eq!(
            ticks[QUIET_STEPS as usize],
            IDLE_TICK_MAX.as_millis() as u64
        );
    }

    #[test]
    fn an_idle_step_ends_on_the_next_alarm_then_goes_back_to_one_ms() {
        let mut p = Pacer::new();
        for t in 0..QUIET_STEPS {
            p.next_tick(Duration::from_millis(t.into()), true);
        }
        alarm_at(30);
        let now = Duration::from_millis(10);
        assert_eq!(p.next_tick(now, true), Duration::from_millis(20));
        // The alarm went off at the end of that step: small steps again.
        assert_eq!(p.next_tick(Duration::from_millis(30), true), BUSY_TICK);
        assert_eq!(p.next_tick(Duration::from_millis(31), true), BUSY_TICK);
    }

    #[test]
    fn a_new_pacer_forgets_old_alarms() {
        alarm_at(7);
        let mut p = Pacer::new();
        for t in 0..QUIET_STEPS {
            p.next_tick(Duration::from_millis(t.into()), true);
        }
        assert_eq!(p.next_tick(Duration::from_millis(5), true), IDLE_TICK_MAX);
    }

    #[test]
    fn ceil_ms_rounds_up() {
        assert_eq!(
            ceil_ms(Duration::from_micros(1_001)),
            Duration::from_millis(2)
        );
        assert_eq!(ceil_ms(Duration::from_millis(3)), Duration::from_millis(3));
    }
}
