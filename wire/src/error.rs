//! Decoding errors.
//!
//! Decoders never panic: every failure is one of two kinds, because callers
//! branch on them differently. `Incomplete` means the bytes ended before the
//! record did (a codec waits for more; inside a complete frame it is a
//! malformed request). `Invalid` means the bytes can never be a valid record.

use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside `what`: `needed` bytes were required, only
    /// `remaining` were left.
    #[error("input ended while reading {what}: needed {needed} bytes, {remaining} left")]
    Incomplete {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    /// The bytes of `what` are not a valid encoding; `detail` says why.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl DecodeError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }

    /// True when more input could have completed the record.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, DecodeError::Incomplete { .. })
    }
}

/// Shorthand for decoder results.
pub type DecodeResult<T> = Result<T, DecodeError>;
