//! Pool members on PostgreSQL: a thread that LISTENs on the store's notification
//! channel (`store::postgres::NOTIFY_CHANNEL`, notified when a transaction that wrote
//! a room's log commits) and wakes the core with a tick, so the core relays the new
//! entries at once (`crate::pool`). Without it relays would wait for the next batch
//! or the lease renewal. In the simulator's pool (members on one SQLite file) a task
//! waits on the store's [`crate::store::CommitBell`] instead ([`start`]).

use super::Event;
use crate::core::Input;
use postgres::fallible_iterator::FallibleIterator;
use std::time::Duration;
use tokio::sync::mpsc;

/// Starts what wakes the core of a pool member when another member commits: the
/// LISTEN thread on PostgreSQL (`[store] url`), or a task waiting on the core's commit
/// bell (the simulator's pool). Nothing outside a pool.
pub(crate) fn start(core: &crate::core::Core, tx: &mpsc::Sender<Event>) {
    if let Some(url) = core.config().store.url.clone() {
        spawn(url, tx.clone());
    } else if let Some(bell) = core.pool_bell() {
        let mut rings = bell.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            while rings.changed().await.is_ok() {
                // A full queue means the core is busy: it relays after every batch.
                if tx.try_send(Event::Input(Input::Tick)).is_err() && tx.is_closed() {
                    break;
                }
            }
        });
    }
}

/// Starts the listener thread for the store at `url`; it ends when the core's queue
/// `tx` closes. A lost connection is retried every second (the core still relays
/// after every batch meanwhile).
fn spawn(url: String, tx: mpsc::Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("pchat-pool-listen".into())
        .spawn(move || {
            while !tx.is_closed() {
                if let Err(e) = listen(&url, &tx) {
                    tracing::warn!("pool: LISTEN connection failed (retrying): {e}");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("pool: no LISTEN thread, relays wait for the next batch: {e}");
    }
}

fn listen(url: &str, tx: &mpsc::Sender<Event>) -> Result<(), postgres::Error> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(&format!(
        "LISTEN {}",
        crate::store::postgres::NOTIFY_CHANNEL
    ))?;
    while !tx.is_closed() {
        let mut notes = client.notifications();
        if notes.timeout_iter(Duration::from_secs(1)).next()?.is_none() {
            continue;
        }
        // Drain what else is already here: one tick for all of it.
        let mut rest = notes.iter();
        while rest.next()?.is_some() {}
        // A full queue means the core is busy: it relays after every batch anyway.
        let _ = tx.try_send(Event::Input(Input::Tick));
    }
    Ok(())
}
