//! Generated code for the `fedseg.v1` wire contract (messages, clients and
//! servers). The protocol core in [`crate::secagg`] does not depend on it;
//! the network layer converts between the two.

#![allow(missing_docs, clippy::all)]

tonic::include_proto!("fedseg.v1");
