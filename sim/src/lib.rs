//! # pchat-sim
//!
//! The deterministic network simulator and QA harness for pchat: an XCCOS client
//! library ([`client`]), the scenario file format QA writes ([`scenario`]), the runner
//! that plays a scenario in turmoil or against a live server ([`runner`]), and
//! transcripts for snapshot tests ([`transcript`]).

pub mod auth;
pub mod batch;
pub mod client;
pub mod completeness;
pub mod data;
pub mod expect;
pub mod explore;
pub mod frames;
pub mod http;
pub mod http_steps;
pub mod invariants;
pub mod ladder;
pub mod live_rooms;
pub mod load;
pub mod macros;
pub mod pcap;
pub mod pool_invariants;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scenario_parse;
pub mod sim_clock;
pub mod sim_hosts;
pub mod sim_net;
pub mod sim_setup;
pub mod sim_tls;
pub mod step;
pub mod steps;
pub mod thresholds;
pub mod transcript;
pub mod watch;
