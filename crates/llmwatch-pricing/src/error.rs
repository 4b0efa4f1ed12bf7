//! Catalog errors that name the file, the entry and the field.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// The file (or `built-in`).
    pub source: String,
    /// The model entry, when the problem is inside one.
    pub entry: Option<String>,
    /// The field path inside the file, e.g. `model[3].prices[0].input`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(entry) = &self.entry {
            write!(f, ": model {entry:?}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CatalogError {}

impl CatalogError {
    pub(crate) fn new(
        source: &str,
        entry: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        CatalogError {
            source: source.to_owned(),
            entry: entry.map(str::to_owned),
            field: field.into(),
            message: message.into(),
        }
    }
}
