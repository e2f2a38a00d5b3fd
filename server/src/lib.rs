//! The Zoo server: the znode tree, sessions, watches and the request pipeline.
//!
//! Nothing is here yet; see the project's open issues.
