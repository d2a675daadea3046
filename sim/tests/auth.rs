//! SIP Digest scenarios of issue 12 seen in their transcripts: a stale nonce is
//! answered by the client without asking again, a replayed nonce-count is refused.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use std::path::PathBuf;

fn load(name: &str) -> Scenario {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::load(&root.join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn stale_nonce_is_answered_without_asking_and_the_client_proceeds() {
    let r = run_sim(&load("auth-stale-nonce.toml"), 1);
    assert!(r.passed(), "{:?} {:?}", r.failure, r.step_failures);
    let raw = r.transcript.render_raw();
    let stale = raw.find("stale=true").expect("the server said stale=true");
    // After the stale challenge: the client's next SUBSCRIBE answers the new nonce
    // (no user involved) and the server admits it.
    let after = &raw[stale..];
    assert!(
        after.contains("Authorization: Digest") && after.contains("SIP/2.0 200 OK"),
        "{after}"
    );
    // Before it, a new connection got in with the remembered nonce, unchallenged.
    assert!(
        raw[..stale].contains("nc=00000002"),
        "second connection used the next nonce-count"
    );
}

#[test]
fn replayed_nonce_count_is_refused_and_admits_nothing() {
    let r = run_sim(&load("auth-replayed-nonce.toml"), 1);
    assert!(r.passed(), "{:?} {:?}", r.failure, r.step_failures);
    let raw = r.transcript.render_raw();
    assert!(
        raw.contains("401 Unauthorized: nonce count replayed"),
        "{raw}"
    );
    // The replay carried nc=1 of the captured answer; the real client then used nc=2.
    let replay = raw
        .find("replay-1@pchat-sim")
        .expect("the replayed request");
    assert!(raw[replay..].contains("nc=00000001"));
    assert!(raw[replay..].contains("nc=00000002"));
}
