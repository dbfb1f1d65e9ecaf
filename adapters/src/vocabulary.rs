//! Code tables: how a bureau's format spells a closed vocabulary (statuses, stages, senders,
//! items), read and written through one pair of functions so every adapter parses them alike.

use schemas::Problem;
use schemas::text::clean;

/// The value a native code stands for (full-width folded, trimmed), or `UnknownCode`.
pub(crate) fn lookup<T: Copy>(
    table: &[(T, &'static str)],
    text: &str,
    vocabulary: &'static str,
) -> Result<T, Problem> {
    let text = clean(text);
    table
        .iter()
        .find(|(_, code)| *code == text)
        .map(|(value, _)| *value)
        .ok_or(Problem::UnknownCode { vocabulary })
}

/// The native code of a value. Every table lists every value of its vocabulary; each adapter's
/// tests check its tables are complete.
pub(crate) fn code_of<T: Copy + PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, code)| *code)
        .unwrap_or_else(|| unreachable!("a code table lacks a value"))
}
