//! Which simulated host each client runs on.
//!
//! turmoil's cost per step grows with the number of hosts (each host's runtime is
//! ticked every step). A scenario with a few clients keeps one host per client (the
//! addresses in transcripts stay what they were); a larger one packs its clients onto
//! shared hosts of up to [`CLIENTS_PER_HOST`], each client keeping its own TCP
//! connection (its own ephemeral port). A client named by a host-level fault
//! (`partition`, `latency`, `loss`: in `hosts` or `client`) always gets a host of its
//! own, since turmoil applies those faults per pair of hosts; its host is named after it.

use crate::scenario::{ActionKind, Scenario};
use std::collections::BTreeSet;

/// Scenarios with at most this many clients keep one simulated host per client.
pub const OWN_HOSTS_UP_TO: usize = 16;
/// Clients packed onto one shared simulated host.
pub const CLIENTS_PER_HOST: usize = 250;

/// One simulated client host: its turmoil name and the clients (indices into the
/// scenario's expanded client list) it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHost {
    /// turmoil host name: the client's own name, or `first..last` for a shared host.
    pub name: String,
    /// Indices into `scenario.file.clients`, in order.
    pub clients: Vec<usize>,
}

/// The client hosts of a run, in registration order (the order of their first client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// Every client host.
    pub hosts: Vec<ClientHost>,
}

/// Clients named by a host-level network fault step or `[[fault]]` (templates expanded).
fn fault_named(scenario: &Scenario) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for step in scenario.file.steps.iter().chain(&scenario.file.faults) {
        let step = step.get_ref();
        if !matches!(
            step.kind(),
            ActionKind::Partition | ActionKind::Latency | ActionKind::Loss
        ) {
            continue;
        }
        let names = step
            .hosts()
            .iter()
            .map(|h| h.get_ref())
            .chain(step.client.as_ref().map(|c| c.get_ref()));
        for n in names {
            named.extend(scenario.clients_of(n));
        }
    }
    named
}

impl HostPlan {
    /// The plan for `scenario` (module docs).
    pub fn of(scenario: &Scenario) -> HostPlan {
        let clients = &scenario.file.clients;
        let named = fault_named(scenario);
        let own_all = clients.len() <= OWN_HOSTS_UP_TO;
        let mut hosts: Vec<ClientHost> = Vec::new();
        // Index (in `hosts`) of the shared host being filled.
        let mut open: Option<usize> = None;
        for (i, c) in clients.iter().enumerate() {
            if own_all || named.contains(&c.name) {
                hosts.push(ClientHost {
                    name: c.name.clone(),
                    clients: vec![i],
                });
                continue;
            }
            match open {
                Some(h) if hosts[h].clients.len() < CLIENTS_PER_HOST => hosts[h].clients.push(i),
                _ => {
                    open = Some(hosts.len());
                    hosts.push(ClientHost {
                        name: String::new(),
                        clients: vec![i],
                    });
                }
            }
        }
        for h in hosts.iter_mut().filter(|h| h.name.is_empty()) {
            let first = h.clients.first().map_or("", |&i| clients[i].name.as_str());
            let last = h.clients.last().map_or("", |&i| clients[i].name.as_str());
            h.name = format!("{first}..{last}");
        }
        HostPlan { hosts }
    }

    /// Every client host's name, in order.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::path::Path;

    fn scenario(clients: usize, fault: &str) -> Scenario {
        let mut s = String::from("name = \"t\"\n");
        for i in 0..clients {
            let _ = write!(
                s,
                "[[client]]\nname = \"u{i}\"\nuri = \"sip:u{i}@contoso.com\"\n"
            );
        }
        s.push_str("[[step]]\nclient = \"u0\"\naction = \"sign-in\"\n");
        s.push_str(fault);
        Scenario::parse(&s, Path::new("t.toml")).expect("valid")
    }

    #[test]
    fn few_clients_keep_a_host_each() {
        let plan = HostPlan::of(&scenario(3, ""));
        assert_eq!(plan.host_names(), ["u0", "u1", "u2"]);
    }

    #[test]
    fn many_clients_share_hosts_of_at_most_250() {
        let plan = HostPlan::of(&scenario(600, ""));
        assert_eq!(plan.host_names(), ["u0..u249", "u250..u499", "u500..u599"]);
        assert_eq!(plan.hosts[2].clients.len(), 100);
    }

    #[test]
    fn a_client_named_by_a_network_fault_gets_its_own_host() {
        let fault = "[[step]]\naction = \"partition\"\nhosts = [\"u7\"]\nms = 100\n";
        let plan = HostPlan::of(&scenario(40, fault));
        assert_eq!(plan.host_names(), ["u0..u39", "u7"]);
        assert!(!plan.hosts[0].clients.contains(&7));
        assert_eq!(plan.hosts[0].clients.len(), 39);
    }
}
