//! Text clean-up shared by every parser: full-width forms to ASCII, and length-checked free text.

pub use crate::fold::{clean, to_halfwidth};
use crate::normalize::Problem;

/// Free text (a name, a title): folded, trimmed, non-empty, at most `max_chars` characters, and
/// free of control characters (which no bureau form can legitimately contain) and of the
/// noncharacters U+FFFE and U+FFFF, which XML 1.0 forbids: canonical text must be deliverable in
/// every bureau's format.
pub fn free_text(input: &str, max_chars: usize) -> Result<String, Problem> {
    let text = clean(input);
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.chars().count() > max_chars {
        return Err(Problem::TooLong { max_chars });
    }
    if text
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    {
        return Err(Problem::BadFormat {
            expected: "text without control characters",
        });
    }
    Ok(text.into_owned())
}

/// True when every byte of `text` is an ASCII digit and there is at least one.
pub(crate) fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `text` against a shape where `d` stands for one ASCII digit and any other character
/// stands for itself, e.g. `dddd-dd-dd`.
pub(crate) fn has_shape(text: &str, shape: &str) -> bool {
    text.len() == shape.len()
        && text.bytes().zip(shape.bytes()).all(|(t, s)| {
            if s == b'd' {
                t.is_ascii_digit()
            } else {
                t == s
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_rejects_empty_long_and_control() {
        assert_eq!(free_text("  ", 10), Err(Problem::Empty));
        assert_eq!(
            free_text("abcdef", 5),
            Err(Problem::TooLong { max_chars: 5 })
        );
        assert!(free_text("a\u{7}b", 5).is_err());
        assert!(free_text("a\u{FFFE}b", 5).is_err());
        assert!(free_text("a\u{FFFF}", 5).is_err());
        assert_eq!(free_text(" ＡＢ建設 ", 5).as_deref(), Ok("AB建設"));
    }

    #[test]
    fn shapes() {
        assert!(has_shape("2022-01-31", "dddd-dd-dd"));
        assert!(!has_shape("2022-1-31", "dddd-dd-dd"));
        assert!(!has_shape("2022/01/31", "dddd-dd-dd"));
    }
}
