//! The fedseg coordinator. The binary in `main.rs` only parses arguments;
//! the work lives in these modules.
//!
//! - [`bench`]: the `bench secure-sum` command and its sweep.

pub mod bench;
