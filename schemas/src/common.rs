//! Values the case model and the survey model share: event and case ids, names,
//! organizations and sequence numbers. Both `model` and `survey` build on this module, and it
//! on neither, so imports between the three point one way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codes::{CreditCode, string_newtype_serde};
use crate::normalize::Problem;
use crate::text::{all_digits, clean, free_text};

/// Checks an identifier: 1 to `max` characters of `A-Z a-z 0-9 . _ : / -`.
fn identifier(input: &str, max: usize, expected: &'static str) -> Result<String, Problem> {
    let text = clean(input);
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.len() > max {
        return Err(Problem::TooLong { max_chars: max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
    {
        return Err(Problem::BadFormat { expected });
    }
    Ok(text.into_owned())
}

/// The stable id of one event. Receivers drop duplicates by it: delivery is at-least-once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// Parses a message id: 1 to 64 characters of `A-Z a-z 0-9 . _ : / -`.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        identifier(input, 64, "message id of letters, digits and . _ : / -").map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    MessageId,
    "MessageId",
    "^[A-Za-z0-9._:/-]{1,64}$",
    "Stable id of one event; receivers drop duplicates by it."
);

/// A bureau's own id of a case (辦件編號). Together with the source bureau it names the case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BureauCaseId(String);

impl BureauCaseId {
    /// Parses a case id: 1 to 40 characters of `A-Z a-z 0-9 . _ : / -`.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        identifier(input, 40, "case id of letters, digits and . _ : / -").map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    BureauCaseId,
    "BureauCaseId",
    "^[A-Za-z0-9._:/-]{1,40}$",
    "A bureau's own id of a case."
);

/// `prefix` and 32 lowercase hex digits (the gateway's minted ids: `sv-…`, `jc-…`), or
/// `BadFormat` with `expected`.
pub(crate) fn prefixed_hex_id(
    input: &str,
    prefix: &str,
    expected: &'static str,
) -> Result<String, Problem> {
    let text = clean(input);
    match text.strip_prefix(prefix) {
        Some(hex)
            if hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(text.into_owned())
        }
        _ => Err(Problem::BadFormat { expected }),
    }
}

/// Free text of at most 100 characters: project and organization names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a name (full-width folded, trimmed, no control characters).
    pub fn parse(input: &str) -> Result<Self, Problem> {
        free_text(input, Self::MAX_CHARS).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    Name,
    "Name",
    "^[^\\u0000-\\u001f]{1,100}$",
    "A name, 1 to 100 characters."
);

/// An enterprise: an applicant, or a surveying agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// The registered name.
    pub name: Name,
    /// The unified social credit code.
    pub credit_code: CreditCode,
}

/// The applicant of a case is an enterprise.
pub type Applicant = Organization;

/// Parses a per-case sequence number: digits only, 1 or more.
pub fn parse_sequence(input: &str) -> Result<u64, Problem> {
    let text = clean(input);
    if !all_digits(&text) || text.len() > 18 {
        return Err(Problem::BadFormat {
            expected: "a sequence number of at most 18 digits",
        });
    }
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err(Problem::OutOfRange {
            min: "1",
            max: "999999999999999999",
        }),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(MessageId::parse("GH-2022/000123").is_ok());
        assert!(MessageId::parse("").is_err());
        assert!(MessageId::parse("a b").is_err());
        assert!(BureauCaseId::parse(&"x".repeat(41)).is_err());
        assert_eq!(
            parse_sequence("0"),
            Err(Problem::OutOfRange {
                min: "1",
                max: "999999999999999999"
            })
        );
        assert_eq!(parse_sequence("12"), Ok(12));
        assert!(parse_sequence("1.0").is_err());
    }
}
