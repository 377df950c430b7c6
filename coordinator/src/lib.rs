//! The fedseg coordinator. The binary in `main.rs` only parses arguments;
//! the work lives in these modules.
//!
//! - [`bench`]: the `bench secure-sum` command and its sweep.
//! - [`pki`]: the consortium CA and member certificates.

pub mod bench;
pub mod pki;
