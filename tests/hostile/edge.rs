//! Attacks on the network edge (see main.rs).
