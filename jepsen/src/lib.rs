//! `zoo-jepsen`: fault injection on real Zoo clusters, histories of what
//! clients saw, and checkers that judge them.
//!
//! - [`cluster`]: real `zoo-server` processes on 127.0.0.1, every peer link
//!   through a [`proxy::LinkProxy`] the harness controls;
//! - [`history`]: operations with invoke and complete times and outcomes,
//!   saved as JSON lines;
//! - [`checker`]: linearizability of registers, ZooKeeper's read
//!   guarantees, and the set, sequential, lock, session and watch checkers;
//! - [`nemesis`]: kills, pauses, partitions, one-way loss, delays and crash
//!   points on a seeded schedule;
//! - [`workload`]: what the clients do; [`runner`]: one run end to end;
//!   [`report`]: its timeline and plots.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod workload;
