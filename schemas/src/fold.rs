//! The one folding rule of the exchange: full-width forms to ASCII, surrounding white space
//! trimmed. Used by `Normalizer::field` for every native value and by the parsers; it depends on
//! nothing else in the crate, so both can use it.

use std::borrow::Cow;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_fullwidth_digits_letters_and_space() {
        assert_eq!(to_halfwidth("２０２２ＡＢｃ－１"), "2022ABc-1");
        assert_eq!(to_halfwidth("浦東\u{3000}新區"), "浦東 新區");
        assert!(matches!(to_halfwidth("plain"), Cow::Borrowed(_)));
    }
}
