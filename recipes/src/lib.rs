//! Coordination recipes on the Zoo client: locks, elections, barriers, counters, queues.
//!
//! Nothing is here yet; see the project's open issues.
