//! Code tables: how a bureau's format spells a closed vocabulary (statuses, stages, senders,
//! items), read and written through one pair of functions so every adapter parses them alike.

use schemas::text::clean;
use schemas::{BureauId, BureauNames, Problem};

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
/// tests check its tables are complete (and, should one not be, the panic names the vocabulary
/// and the missing value).
pub(crate) fn code_of<T: Copy + PartialEq + std::fmt::Debug>(
    table: &[(T, &'static str)],
    value: T,
) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, code)| *code)
        .unwrap_or_else(|| {
            unreachable!(
                "a code table of {} lacks {value:?}",
                std::any::type_name::<T>()
            )
        })
}

/// The item whose name, as `name` spells it, is `text` (full-width folded, trimmed), or
/// `UnknownCode` of `vocabulary`: for the formats that write an item by one of its shared names
/// (`schemas::Item::name_zh`, `name_zh_simplified`).
pub(crate) fn item_named(
    text: &str,
    name: fn(schemas::Item) -> &'static str,
    vocabulary: &'static str,
) -> Result<schemas::Item, Problem> {
    let text = clean(text);
    schemas::Item::ALL
        .into_iter()
        .find(|item| name(*item) == text)
        .ok_or(Problem::UnknownCode { vocabulary })
}

/// How a format spells a bureau: which of the bureau's names and codes it writes. The names
/// themselves are kept once, in `schemas::BureauId::names`; a format only chooses, so a new
/// bureau is spelled by every format without an edit to any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BureauSpelling {
    /// The project's id (`civil_defense`).
    Id,
    /// The project's id in upper case (`CIVIL_DEFENSE`).
    IdUpper,
    /// The short name in traditional characters (`市民防辦`).
    ShortZh,
    /// The short name in simplified characters (`市民防办`).
    ShortZhSimplified,
    /// The pinyin initials of its abbreviation (`MFB`).
    Initials,
    /// Its code in the city's department catalogue (`SHMFB`).
    DepartmentCode,
}

impl BureauSpelling {
    /// How this format writes `bureau`.
    pub(crate) fn code(self, bureau: BureauId) -> &'static str {
        let names: &BureauNames = bureau.names();
        match self {
            Self::Id => bureau.as_str(),
            Self::IdUpper => names_upper(bureau),
            Self::ShortZh => names.short_zh,
            Self::ShortZhSimplified => names.short_zh_simplified,
            Self::Initials => names.initials,
            Self::DepartmentCode => names.department_code,
        }
    }

    /// The bureau `text` spells (full-width folded, trimmed), or `UnknownCode` of `vocabulary`.
    pub(crate) fn parse(self, text: &str, vocabulary: &'static str) -> Result<BureauId, Problem> {
        let text = clean(text);
        BureauId::ALL
            .into_iter()
            .find(|bureau| self.code(*bureau) == text)
            .ok_or(Problem::UnknownCode { vocabulary })
    }

    /// Every bureau's spelling, in `BureauId::ALL` order (for messages naming what is
    /// expected).
    pub(crate) fn all(self) -> String {
        BureauId::ALL.map(|b| self.code(b)).join(", ")
    }
}

/// The id in upper case, kept as a `'static` string: the ids are the model's, so the table is
/// built once.
fn names_upper(bureau: BureauId) -> &'static str {
    static UPPER: std::sync::OnceLock<Vec<(BureauId, String)>> = std::sync::OnceLock::new();
    UPPER
        .get_or_init(|| {
            BureauId::ALL
                .map(|b| (b, b.as_str().to_ascii_uppercase()))
                .into_iter()
                .collect()
        })
        .iter()
        .find(|(b, _)| *b == bureau)
        .map_or("", |(_, upper)| upper.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back_as_its_bureau_and_no_two_bureaus_alike() {
        for spelling in [
            BureauSpelling::Id,
            BureauSpelling::IdUpper,
            BureauSpelling::ShortZh,
            BureauSpelling::ShortZhSimplified,
            BureauSpelling::Initials,
            BureauSpelling::DepartmentCode,
        ] {
            for bureau in BureauId::ALL {
                let code = spelling.code(bureau);
                assert!(!code.is_empty(), "{spelling:?} of {bureau}");
                assert_eq!(
                    spelling.parse(code, "bureau"),
                    Ok(bureau),
                    "{spelling:?} {code}"
                );
            }
        }
        assert_eq!(
            BureauSpelling::IdUpper.code(BureauId::TrafficPolice),
            "TRAFFIC_POLICE"
        );
        assert_eq!(
            BureauSpelling::DepartmentCode.code(BureauId::Planning),
            "SHGHZY"
        );
        assert_eq!(
            BureauSpelling::Initials.parse("ＳＷＪ", "sender"),
            Ok(BureauId::Water),
            "full-width forms fold"
        );
        assert_eq!(
            BureauSpelling::Id.parse("police", "sender"),
            Err(Problem::UnknownCode {
                vocabulary: "sender"
            })
        );
    }
}
