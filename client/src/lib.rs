//! The Zoo client library, the zoo-cli shell and the zoo-bench load generator.
//!
//! Nothing is here yet; see the project's open issues.
