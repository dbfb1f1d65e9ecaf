//! Shared credit lists (信用信息共享): entries of the dishonest-entity blacklist, the
//! key-supervision list and the red list of trustworthy firms, published once by a listing
//! bureau and shared with every bureau that must act on them; the match notice a bureau
//! receives when a case's applicant is on a list; and the warning a case event carries then.
//!
//! An entry is named by its publisher's own id (`entry_id`, the same rules as a case id): the
//! (publisher, entry id) pair is one entry, and each change is its next `version`. A removal
//! is a version with [`CreditRemoval`]; from its day on, like after `valid_to`, the entry no
//! longer has effect ([`CreditEntry::is_active_on`]). Matching is by credit code only.
//!
//! The rules no single value shows are written once here ([`CreditEntry::violations`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bureau::BureauId;
use crate::codes::{ProjectCode, string_newtype_serde};
use crate::common::{BureauCaseId, Name, Organization};
use crate::item::Item;
use crate::normalize::{CanonicalField, Problem};
use crate::text::free_text;
use crate::time::ShanghaiDate;

/// Which list an entry is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CreditList {
    /// 嚴重失信主體名單 (the dishonest-entity blacklist, 失信聯合懲戒).
    Dishonest,
    /// 重點關注 / 重點監管名單: under closer supervision.
    KeySupervision,
    /// 守信紅名單: trustworthy, eligible for facilitation.
    Red,
}

impl CreditList {
    /// Every list.
    pub const ALL: [CreditList; 3] = [Self::Dishonest, Self::KeySupervision, Self::Red];

    /// The canonical snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Dishonest => "dishonest",
            Self::KeySupervision => "key_supervision",
            Self::Red => "red",
        }
    }

    /// Parses the canonical code.
    pub fn parse_code(text: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|list| list.code() == text)
            .ok_or(Problem::UnknownCode {
                vocabulary: "credit list (dishonest, key_supervision, red)",
            })
    }

    /// Whether a listed applicant loses "accept now, supply later" (容缺後補): the blacklist and
    /// the key-supervision list restrict it; the red list does not.
    pub fn restricts_deferral(self) -> bool {
        !matches!(self, Self::Red)
    }
}

/// Free text of a credit entry (its measures, legal basis, a removal's reason): 1 to 500
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreditText(String);

impl CreditText {
    /// Longest text accepted, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Parses the text (full-width folded, trimmed, no control characters).
    pub fn parse(input: &str) -> Result<Self, Problem> {
        free_text(input, Self::MAX_CHARS).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    CreditText,
    "CreditText",
    "^[^\\u0000-\\u001f]{1,500}$",
    "Free text of a credit entry, 1 to 500 characters."
);

/// The end of an entry before its term: from `on` the entry has no effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRemoval {
    /// The first day without effect.
    pub on: ShanghaiDate,
    /// Why (信用修復, a court's ruling ...).
    pub reason: CreditText,
}

/// One entry of a credit list, as it stands at its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditEntry {
    /// The publisher's own id of the entry.
    pub entry_id: BureauCaseId,
    /// The change's number, from 1.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// Which list.
    pub list: CreditList,
    /// The listed enterprise: its name and unified social credit code (matched by code only).
    pub subject: Organization,
    /// What the listing entails (限制措施 or facilitation).
    pub measures: CreditText,
    /// The department that decided the listing.
    pub issued_by: Name,
    /// The regulation it rests on.
    pub legal_basis: CreditText,
    /// The number of the deciding document (文號).
    pub document_number: Name,
    /// The first day of effect.
    pub valid_from: ShanghaiDate,
    /// The last day of effect, if the term is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<ShanghaiDate>,
    /// The removal, once the entry is withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<CreditRemoval>,
}

/// The part of an entry a broken rule is reported against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditPart {
    /// `valid_to`.
    ValidTo,
    /// The removal's date.
    RemovedOn,
}

/// A rule an entry breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditViolation {
    /// The canonical field it is reported under.
    pub field: CanonicalField,
    /// Where in the entry.
    pub part: CreditPart,
    /// What is wrong.
    pub problem: Problem,
}

impl CreditEntry {
    /// Every rule the entry breaks: its term ends before it starts, or it is removed before it
    /// starts or after it ended.
    pub fn violations(&self) -> Vec<CreditViolation> {
        let mut found = Vec::new();
        let broken = |field, part, reason| CreditViolation {
            field,
            part,
            problem: Problem::Inconsistent { reason },
        };
        if self.valid_to.is_some_and(|to| to < self.valid_from) {
            found.push(broken(
                CanonicalField::CreditValidTo,
                CreditPart::ValidTo,
                "the entry ends before it starts",
            ));
        }
        if let Some(removal) = &self.removal {
            if removal.on < self.valid_from {
                found.push(broken(
                    CanonicalField::CreditRemovedOn,
                    CreditPart::RemovedOn,
                    "the removal precedes the entry's first day",
                ));
            } else if self.valid_to.is_some_and(|to| removal.on > to) {
                found.push(broken(
                    CanonicalField::CreditRemovedOn,
                    CreditPart::RemovedOn,
                    "the removal follows the entry's last day",
                ));
            }
        }
        found
    }

    /// Whether the entry has effect on `day`: from `valid_from` to `valid_to` (both included),
    /// and before its removal's day.
    pub fn is_active_on(&self, day: ShanghaiDate) -> bool {
        self.valid_from <= day
            && self.valid_to.is_none_or(|to| day <= to)
            && self.removal.as_ref().is_none_or(|r| day < r.on)
    }

    /// The warning a case event of a listed applicant carries for this entry of `publisher`.
    pub fn warning(&self, publisher: BureauId) -> CreditWarning {
        CreditWarning {
            list: self.list,
            publisher,
            entry_id: self.entry_id.clone(),
            version: self.version,
        }
    }
}

/// A case's applicant is on an active list: what a case event's deliveries carry (in the
/// `Credit-Warning` header), set by the gateway when the event arrives. The gateway warns; it
/// never approves or refuses a case itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditWarning {
    /// The list.
    pub list: CreditList,
    /// The bureau that published the entry.
    pub publisher: BureauId,
    /// The publisher's id of the entry.
    pub entry_id: BureauCaseId,
    /// The entry's version the case was matched against.
    #[schemars(range(min = 1))]
    pub version: u32,
}

impl CreditWarning {
    /// The warning as one member of the `Credit-Warning` header (an RFC 8941 list member: the
    /// list's code, then the entry and its version as parameters).
    pub fn header_member(&self) -> String {
        format!(
            "{};publisher={};entry=\"{}\";version={}",
            self.list.code(),
            self.publisher.as_str(),
            self.entry_id.as_str(),
            self.version
        )
    }
}

/// The header a listed applicant's case event is delivered with (on a push, and on its part of
/// a multipart batch or feed).
pub const WARNING_HEADER: &str = "Credit-Warning";

/// The `Credit-Warning` header of a case event's delivery: every warning, comma-separated;
/// `None` when there is none.
pub fn warning_header(warnings: &[CreditWarning]) -> Option<String> {
    if warnings.is_empty() {
        return None;
    }
    Some(
        warnings
            .iter()
            .map(CreditWarning::header_member)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// A case's applicant is on an active list: the notice a bureau configured for the list
/// receives once per (case, entry). The event's source and case id are the case's, its
/// sequence the matching case event's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditMatch {
    /// The bureau that published the entry.
    pub publisher: BureauId,
    /// The entry as it stood when the case matched it.
    pub entry: CreditEntry,
    /// The case's item.
    pub item: Item,
    /// The case's project.
    pub project: ProjectCode,
}

impl CreditMatch {
    /// The rule no single value shows: the case's applicant is the entry's subject is checked by
    /// the gateway when it matches; what a notice can state wrongly on its own is its entry.
    pub fn violations(&self) -> Vec<CreditViolation> {
        self.entry.violations()
    }
}

/// Parses an entry's version: digits, 1 to 4294967295.
pub fn parse_credit_version(input: &str) -> Result<u32, Problem> {
    crate::survey::parse_version(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CreditEntry {
        serde_json::from_value(serde_json::json!({
            "entry_id": "SX-2026-0001",
            "version": 1,
            "list": "dishonest",
            "subject": {"name": "某建设有限公司", "credit_code": "91350100M000100Y43"},
            "measures": "限制容缺受理",
            "issued_by": "上海市住房和城乡建设管理委员会",
            "legal_basis": "上海市社会信用条例 第三十条",
            "document_number": "沪建信〔2026〕12号",
            "valid_from": "2026-03-01",
            "valid_to": "2027-02-28"
        }))
        .unwrap()
    }

    fn day(text: &str) -> ShanghaiDate {
        ShanghaiDate::parse_iso(text).unwrap()
    }

    #[test]
    fn an_entry_has_effect_within_its_term_and_before_its_removal() {
        let mut listed = entry();
        assert!(!listed.is_active_on(day("2026-02-28")));
        assert!(listed.is_active_on(day("2026-03-01")));
        assert!(listed.is_active_on(day("2027-02-28")));
        assert!(!listed.is_active_on(day("2027-03-01")));
        listed.removal = Some(CreditRemoval {
            on: day("2026-06-10"),
            reason: CreditText::parse("信用修復").unwrap(),
        });
        assert!(listed.is_active_on(day("2026-06-09")));
        assert!(!listed.is_active_on(day("2026-06-10")));
        assert!(listed.violations().is_empty());
    }

    #[test]
    fn a_term_or_removal_out_of_order_is_refused_at_its_field() {
        let mut listed = entry();
        listed.valid_to = Some(day("2026-02-01"));
        let found = listed.violations();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, CanonicalField::CreditValidTo);
        let mut listed = entry();
        listed.removal = Some(CreditRemoval {
            on: day("2027-05-01"),
            reason: CreditText::parse("x").unwrap(),
        });
        assert_eq!(listed.violations()[0].part, CreditPart::RemovedOn);
    }

    #[test]
    fn the_warning_header_names_list_entry_and_version() {
        let warning = entry().warning(BureauId::Water);
        assert_eq!(
            warning_header(&[warning.clone(), warning]).unwrap(),
            "dishonest;publisher=water;entry=\"SX-2026-0001\";version=1, \
             dishonest;publisher=water;entry=\"SX-2026-0001\";version=1"
        );
        assert_eq!(warning_header(&[]), None);
        for list in CreditList::ALL {
            assert_eq!(CreditList::parse_code(list.code()), Ok(list));
            assert_eq!(serde_json::to_value(list).unwrap(), list.code());
        }
    }
}
