//! Loading TOML configuration files: one error type for both binaries, so a
//! wrong file always fails at start-up naming the file and the key at fault.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

/// A configuration file that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid TOML for its struct (unknown or missing key, wrong type);
    /// the message names the key and line.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's description, naming the key.
        message: String,
    },
    /// A key has a value outside what it accepts.
    #[error("{path}: key `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, dotted for nested tables.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Reads `path` as TOML into `T`, returning the value and the exact text.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((value, text))
}

/// A constructor of [`ConfigError::Invalid`] for one file.
pub fn invalid(path: &Path) -> impl Fn(&str, String) -> ConfigError + '_ {
    move |key, reason| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    }
}

/// The directory relative paths in `path` are taken from.
pub fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Checks the keys every member that connects out to the coordinator has:
/// its own `id`, `coordinator_id`, and the `coordinator` URL.
pub fn check_connecting_member(
    path: &Path,
    id: &str,
    coordinator_id: &str,
    coordinator: &str,
) -> Result<(), ConfigError> {
    let invalid = invalid(path);
    crate::identity::validate_id(id).map_err(|e| invalid("id", e.to_string()))?;
    crate::identity::validate_id(coordinator_id)
        .map_err(|e| invalid("coordinator_id", e.to_string()))?;
    if !coordinator.starts_with("https://") {
        return Err(invalid("coordinator", "must be an https:// URL".into()));
    }
    Ok(())
}
