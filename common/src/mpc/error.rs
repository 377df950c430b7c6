//! Errors of the joint-modelling protocol. Messages never carry a share, a
//! mask or a data value.

use thiserror::Error;

/// Who caused an error (as in the secure sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another party sent something out of protocol.
    Peer,
    /// The protocol was called with invalid inputs or parameters.
    Usage,
}

/// Everything that can go wrong in the joint-modelling protocol.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MpcError {
    /// Parameters or inputs do not describe a valid fit.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A value does not fit the fixed-point encoding.
    #[error("value out of the fixed-point range in {0}")]
    OutOfRange(&'static str),
    /// Operands or messages of mismatched shapes.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A message or request arrived out of order.
    #[error("out of order: {0}")]
    OutOfOrder(String),
    /// The link to the peer or the dealer closed.
    #[error("link closed: {0}")]
    LinkClosed(&'static str),
}

impl MpcError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            MpcError::InvalidInput(_) | MpcError::OutOfRange(_) => Fault::Usage,
            MpcError::Shape(_) | MpcError::OutOfOrder(_) | MpcError::LinkClosed(_) => Fault::Peer,
        }
    }

    /// A stable code for metrics and the journal.
    pub fn code(&self) -> &'static str {
        match self {
            MpcError::InvalidInput(_) => "mpc-invalid-input",
            MpcError::OutOfRange(_) => "mpc-out-of-range",
            MpcError::Shape(_) => "mpc-shape",
            MpcError::OutOfOrder(_) => "mpc-out-of-order",
            MpcError::LinkClosed(_) => "mpc-link-closed",
        }
    }
}
