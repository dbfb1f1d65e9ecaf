//! Text clean-up shared by every parser: full-width forms to ASCII, and length-checked free text.

use std::borrow::Cow;

use crate::normalize::Problem;

/// Maps full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space (U+3000) to ASCII.
///
/// Chinese input methods produce `２０２２` and `ＡＢ` as readily as `2022` and `AB`; the two spell
/// the same value, so folding them is normalization, not guessing. Everything else is unchanged.
pub fn to_halfwidth(input: &str) -> Cow<'_, str> {
    if input
        .chars()
        .all(|c| !matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}'))
    {
        return Cow::Borrowed(input);
    }
    Cow::Owned(
        input
            .chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{3000}' => ' ',
                other => other,
            })
            .collect(),
    )
}

/// Folds full-width forms and trims surrounding white space: **the one folding rule** of the
/// exchange. Every native value of every format goes through it before it is parsed or compared
/// (`Normalizer::field` applies it; the parsers apply it again, harmlessly, for callers that use
/// them directly). It folds nothing else: letter case is significant (a code is accepted in the
/// case its specification writes it), and a character outside U+FF01–U+FF5E and U+3000 is
/// never mapped to another.
pub fn clean(input: &str) -> Cow<'_, str> {
    match to_halfwidth(input) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

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
    fn folds_fullwidth_digits_letters_and_space() {
        assert_eq!(to_halfwidth("２０２２ＡＢｃ－１"), "2022ABc-1");
        assert_eq!(to_halfwidth("浦東\u{3000}新區"), "浦東 新區");
        assert!(matches!(to_halfwidth("plain"), Cow::Borrowed(_)));
    }

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
