//! The I/O side: tokio sockets, DNS, the clock, and the loop that feeds the engine.

pub mod dns;
