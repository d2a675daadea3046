//! Clients on shared simulated hosts (more than 16 clients, `sim_hosts`): a network
//! fault naming one client still cuts off that client only, and a run stays
//! deterministic.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use pchat_sim::sim_hosts::HostPlan;
use std::path::Path;

/// The scenario: 20 clients on shared hosts, one cut off by a partition.
const SCENARIO: &str = include_str!("data/shared-hosts.toml");

fn scenario() -> Scenario {
    Scenario::parse(SCENARIO, Path::new("shared-hosts.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_partitioned_client_has_its_own_host_and_the_others_share_one() {
    let plan = HostPlan::of(&scenario());
    assert_eq!(plan.host_names(), ["u1..u20", "u3"]);
}

#[test]
fn a_partition_of_one_client_on_a_shared_host_cuts_off_that_client_only() {
    let r = run_sim(&scenario(), 1);
    assert!(r.passed(), "{:?} {:?}", r.failure, r.violations);
    assert_eq!(r.steps_passed, r.steps_total);
}

#[test]
fn shared_hosts_same_seed_same_bytes() {
    let s = scenario();
    let a = run_sim(&s, 9).transcript.render_raw();
    let b = run_sim(&s, 9).transcript.render_raw();
    assert!(!a.is_empty());
    assert!(a == b, "two runs with seed 9 differ");
}
