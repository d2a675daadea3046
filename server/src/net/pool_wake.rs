//! Pool members on PostgreSQL: a thread that LISTENs on the store's notification
//! channel (`store::postgres::NOTIFY_CHANNEL`, notified when a transaction that wrote
//! a room's log commits) and wakes the core with a tick, so the core relays the new
//! entries at once (`crate::pool`). Without it relays would wait for the next batch
//! or the lease renewal.

use super::Event;
use crate::core::Input;
use postgres::fallible_iterator::FallibleIterator;
use std::time::Duration;
use tokio::sync::mpsc;

/// Starts the listener thread for the store at `url`; it ends when the core's queue
/// `tx` closes. A lost connection is retried every second (the core still relays
/// after every batch meanwhile).
pub(crate) fn spawn(url: String, tx: mpsc::Sender<Event>) {
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
