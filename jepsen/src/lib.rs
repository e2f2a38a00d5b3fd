//! Fault-injection harness for Zoo clusters: histories and checkers.
//!
//! Nothing is here yet; see the project's open issues.
