//! Shared helpers of the association tests: two endpoints on a simulated network.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::{
    AssociationConfig, AssociationId, ConnectRequest, Endpoint, EndpointConfig, Event, Message,
};

pub const A: usize = 0;
pub const B: usize = 1;
pub const PORT: u16 = 5000;

pub fn addr_a() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}

pub fn addr_b() -> IpAddr {
    "198.18.0.2".parse().unwrap()
}

pub fn endpoint(seed: u8, assoc: AssociationConfig) -> Endpoint {
    let mut c = EndpointConfig::with_seed([seed; 32]);
    c.association = assoc;
    Endpoint::new(c).unwrap()
}

/// A test configuration: fast timers so scenarios run in little virtual time.
pub fn fast_config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.rto_initial = Duration::from_millis(100);
    c.rto_min = Duration::from_millis(50);
    c.rto_max = Duration::from_secs(2);
    c.heartbeat_interval = Some(Duration::from_secs(5));
    c.shutdown_guard = Duration::from_secs(10);
    c.nodelay = true;
    c
}

pub struct Pair {
    pub net: Network,
    /// The client's association (on node A).
    pub a: AssociationId,
    /// The server's association (on node B), once connected.
    pub b: Option<AssociationId>,
}

/// A network with a client A and a listening server B, link as given.
pub fn network(
    seed: u64,
    ca: AssociationConfig,
    cb: AssociationConfig,
    link: LinkConfig,
) -> Network {
    let mut net = Network::new(seed);
    net.add_node(endpoint(1 + seed as u8, ca), &[addr_a()]);
    net.add_node(endpoint(101 + seed as u8, cb), &[addr_b()]);
    net.set_links(A, B, link);
    net.node(B).endpoint.listen(PORT).unwrap();
    net
}

impl Pair {
    /// Connects A to B and runs until both report `Connected`.
    pub fn connected(
        seed: u64,
        ca: AssociationConfig,
        cb: AssociationConfig,
        link: LinkConfig,
    ) -> Pair {
        let mut net = network(seed, ca, cb, link);
        let now = net.now();
        let a = net
            .node(A)
            .endpoint
            .connect(now, ConnectRequest::new(addr_b(), PORT))
            .unwrap();
        let ok = net.run_until(Duration::from_secs(60), |n| {
            n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
        });
        assert!(ok, "handshake did not complete");
        let b = net.node(B).assoc_with_event(&Event::Connected);
        net.node(A).take_events();
        net.node(B).take_events();
        Pair { net, a, b }
    }

    pub fn b(&self) -> AssociationId {
        self.b.expect("server association")
    }

    pub fn send(
        &mut self,
        node: usize,
        stream: u16,
        data: &[u8],
    ) -> Result<(), sctp_stack::SendError> {
        let id = if node == A { self.a } else { self.b() };
        self.net
            .node(node)
            .endpoint
            .association(id)
            .expect("association")
            .send(stream, 0, data, sctp_stack::SendOptions::default())
    }

    pub fn recv_all(&mut self, node: usize) -> Vec<Message> {
        let id = if node == A { self.a } else { self.b() };
        let mut out = Vec::new();
        if let Some(mut assoc) = self.net.node(node).endpoint.association(id) {
            while let Some(m) = assoc.recv() {
                out.push(m);
            }
        }
        out
    }
}
