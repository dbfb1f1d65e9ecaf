//! One-stop parallel approval (一口受理、並聯審批): the joint case that ties one application's
//! branches together, and the deadline notices of the working-day clocks.
//!
//! The gateway opens a joint case when a window bureau accepts an application that a flow of
//! its configuration names; every change of the joint case (a branch filed, approved, rejected
//! ..., or the whole decided) is a [`JointNotice`] to the window and the branch bureaus. A
//! [`DeadlineNotice`] tells the handling bureau that a case's due date approaches or has
//! passed. Both travel like every other event, in each bureau's own format.
//!
//! The rules no single value shows are here too, written once ([`JointNotice::violations`]):
//! a joint case names each (bureau, item) branch once, a branch's item is its bureau's, a
//! branch not yet filed has no case id and a filed one has, at least one branch is required,
//! version 1 opens the case, and no due date precedes the opening.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bureau::BureauId;
use crate::codes::{ProjectCode, string_newtype_serde};
use crate::common::{BureauCaseId, Name};
use crate::item::{Item, Project};
use crate::normalize::{CanonicalField, Problem};
use crate::text::clean;
use crate::time::ShanghaiDate;

/// Most branches one joint case may have.
pub const MAX_BRANCHES: usize = 16;

/// The gateway's id of a joint case: `jc-` and 32 lowercase hex digits, derived from the flow
/// and the window bureau's case, so every node opening it names it alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JointCaseId(String);

impl JointCaseId {
    /// Parses `jc-` followed by 32 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        crate::common::prefixed_hex_id(
            input,
            "jc-",
            "joint case id jc- followed by 32 lowercase hex digits",
        )
        .map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The event case id of the joint case's notices: the id itself (35 characters, a valid
    /// case id), so every notice of one joint case is delivered in order.
    pub fn as_case_id(&self) -> BureauCaseId {
        match BureauCaseId::parse(&self.0) {
            Ok(id) => id,
            // `jc-` and hex digits are case-id characters and 35 ≤ 40.
            Err(problem) => unreachable!("joint case id {:?} is no case id: {problem}", self.0),
        }
    }
}

string_newtype_serde!(
    JointCaseId,
    "JointCaseId",
    "^jc-[0-9a-f]{32}$",
    "The gateway's id of a joint case (one-stop parallel approval)."
);

/// The name of a flow of the gateway's configuration: 1 to 48 characters of `a-z 0-9 _`,
/// starting with a letter (`one_stop_construction_permit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowName(String);

impl FlowName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 48;

    /// Parses a flow name.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        if text.is_empty() {
            return Err(Problem::Empty);
        }
        if text.len() > Self::MAX_CHARS {
            return Err(Problem::TooLong {
                max_chars: Self::MAX_CHARS,
            });
        }
        let mut bytes = text.bytes();
        let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        if !starts_with_letter
            || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Problem::BadFormat {
                expected: "flow name of a-z, 0-9 and _, starting with a letter",
            });
        }
        Ok(Self(text.into_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    FlowName,
    "FlowName",
    "^[a-z][a-z0-9_]{0,47}$",
    "The name of a one-stop flow of the gateway's configuration."
);

/// Where a joint case stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JointStatus {
    /// Open: its branches are under review.
    Open,
    /// Every required branch approved.
    Approved,
    /// A required branch rejected; the other branches are told to stop.
    Rejected,
    /// The applicant withdrew the application at the window.
    Withdrawn,
    /// A document accepted for later supply (容缺後補) was not supplied in time.
    Terminated,
}

impl JointStatus {
    /// Every status.
    pub const ALL: [JointStatus; 5] = [
        Self::Open,
        Self::Approved,
        Self::Rejected,
        Self::Withdrawn,
        Self::Terminated,
    ];

    /// True for the states a joint case never leaves.
    pub fn is_final(self) -> bool {
        self != Self::Open
    }

    /// The canonical snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Terminated => "terminated",
        }
    }
}

/// Where one branch of a joint case stands: not yet filed with its bureau, or its case's status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BranchStatus {
    /// The branch bureau has reported no case for it yet.
    Waiting,
    /// The branch case's status.
    Submitted,
    #[allow(missing_docs)]
    Accepted,
    #[allow(missing_docs)]
    SupplementRequested,
    #[allow(missing_docs)]
    Approved,
    #[allow(missing_docs)]
    Rejected,
    #[allow(missing_docs)]
    Withdrawn,
}

impl BranchStatus {
    /// Every status.
    pub const ALL: [BranchStatus; 7] = [
        Self::Waiting,
        Self::Submitted,
        Self::Accepted,
        Self::SupplementRequested,
        Self::Approved,
        Self::Rejected,
        Self::Withdrawn,
    ];

    /// The canonical snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::SupplementRequested => "supplement_requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// A due date counted in working days, and whether it is provisional: counted across a year
/// the gateway's calendar holds no State Council notice for (weekends alone were taken off
/// there), to be recomputed once the notice is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DueDate {
    /// The last working day of the limit.
    pub on: ShanghaiDate,
    /// True when the date may move once next year's notice is loaded.
    pub provisional: bool,
}

/// One branch of a joint case: one bureau's review of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JointBranch {
    /// The reviewing bureau.
    pub bureau: BureauId,
    /// What it reviews (an item of that bureau).
    pub item: Item,
    /// Whether the joint outcome waits for it: a rejected required branch rejects the whole.
    pub required: bool,
    /// Where it stands.
    pub status: BranchStatus,
    /// The branch bureau's own case id, once it has reported the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<BureauCaseId>,
    /// The branch's due date, once its clock runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DueDate>,
}

/// A joint case as it stands after a change: what the window and every branch bureau receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JointNotice {
    /// The joint case.
    pub joint_case_id: JointCaseId,
    /// The flow of the configuration that opened it.
    pub flow: FlowName,
    /// The change's number, from 1 (the opening); the event's sequence.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// The project applied for.
    pub project: Project,
    /// The bureau whose window accepted the application.
    pub window: BureauId,
    /// The window bureau's case id of the application.
    pub window_case_id: BureauCaseId,
    /// Where the whole stands.
    pub status: JointStatus,
    /// The day the window accepted it.
    pub opened_on: ShanghaiDate,
    /// The flow's overall due date.
    pub due: DueDate,
    /// The working-day calendar the due dates were computed with (its notices' numbers).
    pub calendar: Name,
    /// The branches, in the flow's order.
    pub branches: Vec<JointBranch>,
}

/// Whether a due date approaches or has passed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    /// The due date is a few working days away (`working_days` left).
    Approaching,
    /// The due date has passed (`working_days` overdue).
    Passed,
}

impl DeadlineState {
    /// Both states.
    pub const ALL: [DeadlineState; 2] = [Self::Approaching, Self::Passed];
}

/// A deadline notice to the bureau handling a case: its due date approaches or has passed.
/// The event's source is that bureau and its case id the case's; its sequence numbers the
/// case's deadline notices from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineNotice {
    /// The case's item.
    pub item: Item,
    /// The case's project.
    pub project: ProjectCode,
    /// Approaching or passed.
    pub state: DeadlineState,
    /// Working days left (approaching) or overdue (passed).
    #[schemars(range(max = 366))]
    pub working_days: u16,
    /// The case's due date.
    pub due: DueDate,
    /// The calendar the due date was computed with.
    pub calendar: Name,
    /// The joint case the case is a branch of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_case_id: Option<JointCaseId>,
}

/// Most working days a deadline notice counts.
pub const MAX_DEADLINE_DAYS: u16 = 366;

/// The part of a joint notice a broken rule is reported against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointPart {
    /// The version.
    Version,
    /// The overall due date.
    Due,
    /// The branch list as a whole.
    Branches,
    /// `branches[i]`'s item.
    BranchItem(usize),
    /// `branches[i]`'s case id (or where it belongs).
    BranchCaseId(usize),
    /// `branches[i]`'s due date.
    BranchDue(usize),
}

/// A rule a joint notice breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JointViolation {
    /// The canonical field it is reported under.
    pub field: CanonicalField,
    /// Where in the notice.
    pub part: JointPart,
    /// What is wrong.
    pub problem: Problem,
}

fn inconsistent(field: CanonicalField, part: JointPart, reason: &'static str) -> JointViolation {
    JointViolation {
        field,
        part,
        problem: Problem::Inconsistent { reason },
    }
}

impl JointNotice {
    /// Every rule the notice breaks, in the notice's order. Empty for every notice a decoder,
    /// the gateway or the sample generator builds.
    pub fn violations(&self) -> Vec<JointViolation> {
        use CanonicalField as F;
        let mut found = Vec::new();
        if self.version == 1 && self.status != JointStatus::Open {
            found.push(inconsistent(
                F::JointVersion,
                JointPart::Version,
                "version 1 opens the joint case",
            ));
        }
        if self.due.on < self.opened_on {
            found.push(inconsistent(
                F::JointDue,
                JointPart::Due,
                "the due date precedes the opening",
            ));
        }
        if self.branches.is_empty() || self.branches.len() > MAX_BRANCHES {
            found.push(JointViolation {
                field: F::JointBranches,
                part: JointPart::Branches,
                problem: Problem::OutOfRange {
                    min: "1 branch",
                    max: "16 branches",
                },
            });
        } else if !self.branches.iter().any(|b| b.required) {
            found.push(inconsistent(
                F::JointBranches,
                JointPart::Branches,
                "a joint case has at least one required branch",
            ));
        }
        for (i, branch) in self.branches.iter().enumerate() {
            if branch.item.bureau() != branch.bureau {
                found.push(inconsistent(
                    F::JointBranchItem,
                    JointPart::BranchItem(i),
                    "the item is another bureau's",
                ));
            } else if self.branches[..i]
                .iter()
                .any(|b| (b.bureau, b.item) == (branch.bureau, branch.item))
            {
                found.push(inconsistent(
                    F::JointBranchItem,
                    JointPart::BranchItem(i),
                    "a branch is named once",
                ));
            }
            match (branch.status, &branch.case_id) {
                (BranchStatus::Waiting, Some(_)) => found.push(inconsistent(
                    F::JointBranchCaseId,
                    JointPart::BranchCaseId(i),
                    "a waiting branch has no case yet",
                )),
                (status, None) if status != BranchStatus::Waiting => found.push(inconsistent(
                    F::JointBranchCaseId,
                    JointPart::BranchCaseId(i),
                    "a filed branch names its case",
                )),
                _ => {}
            }
            if branch.due.is_some_and(|due| due.on < self.opened_on) {
                found.push(inconsistent(
                    F::JointBranchDue,
                    JointPart::BranchDue(i),
                    "the due date precedes the opening",
                ));
            }
        }
        found
    }
}

impl DeadlineNotice {
    /// The rule a deadline notice can break: its item is the source bureau's, and the count is
    /// in range.
    pub fn violation(&self, source: BureauId) -> Option<(CanonicalField, Problem)> {
        if self.item.bureau() != source {
            return Some((
                CanonicalField::DeadlineItem,
                Problem::Inconsistent {
                    reason: "a deadline notice is about a case of the bureau it is sent for",
                },
            ));
        }
        (self.working_days > MAX_DEADLINE_DAYS).then_some((
            CanonicalField::DeadlineWorkingDays,
            Problem::OutOfRange {
                min: "0",
                max: "366",
            },
        ))
    }
}

/// Parses a count of working days in a deadline notice: digits, 0 to 366.
pub fn parse_deadline_days(input: &str) -> Result<u16, Problem> {
    let text = clean(input);
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadFormat {
            expected: "a number of working days in digits",
        });
    }
    match text.parse::<u16>() {
        Ok(days) if days <= MAX_DEADLINE_DAYS => Ok(days),
        _ => Err(Problem::OutOfRange {
            min: "0",
            max: "366",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> ShanghaiDate {
        ShanghaiDate::parse_iso(text).unwrap()
    }

    fn notice() -> JointNotice {
        JointNotice {
            joint_case_id: JointCaseId::parse("jc-0123456789abcdef0123456789abcdef").unwrap(),
            flow: FlowName::parse("one_stop_construction_permit").unwrap(),
            version: 1,
            project: Project {
                code: ProjectCode::parse("2201-310115-04-01-123456").unwrap(),
                name: Name::parse("臨港新片區研發樓").unwrap(),
            },
            window: BureauId::Planning,
            window_case_id: BureauCaseId::parse("GH-1").unwrap(),
            status: JointStatus::Open,
            opened_on: date("2026-02-13"),
            due: DueDate {
                on: date("2026-03-06"),
                provisional: false,
            },
            calendar: Name::parse("国办发明电〔2025〕7号").unwrap(),
            branches: vec![JointBranch {
                bureau: BureauId::CivilDefense,
                item: Item::CivilDefenseDesignReview,
                required: true,
                status: BranchStatus::Waiting,
                case_id: None,
                due: None,
            }],
        }
    }

    #[test]
    fn ids_and_names_parse_strictly() {
        assert!(JointCaseId::parse("jc-0123456789abcdef0123456789abcdef").is_ok());
        assert!(JointCaseId::parse("jc-0123456789ABCDEF0123456789abcdef").is_err());
        assert!(JointCaseId::parse("sv-0123456789abcdef0123456789abcdef").is_err());
        assert!(FlowName::parse("one_stop_completion").is_ok());
        assert!(FlowName::parse("One_stop").is_err());
        assert!(FlowName::parse("1stop").is_err());
        assert!(FlowName::parse(&"a".repeat(49)).is_err());
        assert_eq!(parse_deadline_days("366"), Ok(366));
        assert!(parse_deadline_days("367").is_err());
        assert!(parse_deadline_days("-1").is_err());
    }

    #[test]
    fn a_sound_notice_breaks_no_rule_and_each_rule_is_named() {
        assert_eq!(notice().violations(), vec![]);

        let mut n = notice();
        n.status = JointStatus::Approved;
        assert_eq!(n.violations()[0].part, JointPart::Version);

        let mut n = notice();
        n.branches[0].item = Item::TreeFelling;
        assert_eq!(n.violations()[0].part, JointPart::BranchItem(0));

        let mut n = notice();
        n.branches.push(n.branches[0].clone());
        assert_eq!(
            n.violations()[0].problem.to_string(),
            "inconsistent: a branch is named once"
        );

        let mut n = notice();
        n.branches[0].status = BranchStatus::Accepted;
        assert_eq!(n.violations()[0].part, JointPart::BranchCaseId(0));

        let mut n = notice();
        n.branches[0].required = false;
        assert_eq!(n.violations()[0].part, JointPart::Branches);

        let mut n = notice();
        n.due.on = date("2026-02-12");
        assert_eq!(n.violations()[0].part, JointPart::Due);
    }
}
