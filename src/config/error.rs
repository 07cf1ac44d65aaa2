//! Configuration errors: [`ConfigError`] (file, line, field, message) as the user sees it, and [`Issue`], a rule
//! violation before it is placed in a file.
use std::fmt;

/// A configuration error: file, line, field path and message.
///
/// Displays as `FILE:LINE: FIELD: message` (`FILE: FIELD: message` when no line is known, e.g.
/// an unreadable file or a tunnel added at run time; the field part is left out when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    line: Option<usize>,
    field: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(
        file: &str,
        line: Option<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_string(),
            line,
            field: field.into(),
            message: msg.into(),
        }
    }

    /// The file name as given to [`Config::load`] / [`Config::from_str_named`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line of the offending value or table, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Field path in TOML spelling, e.g. `tunnel[1].key`; empty for file-level errors.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The human-readable message (without file, line and field).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}:", self.field)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A rule violation before it is placed in a file: field path plus message.
#[derive(Debug)]
pub(crate) struct Issue {
    pub(crate) path: String,
    pub(crate) msg: String,
}

pub(crate) fn issue(path: impl Into<String>, msg: impl Into<String>) -> Issue {
    Issue {
        path: path.into(),
        msg: msg.into(),
    }
}

pub(crate) type Check = Result<(), Issue>;
