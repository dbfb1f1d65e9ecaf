//! The overdue list (`GET /v1/clocks/overdue`, `gateway ctl overdue`, the dashboard): the cases
//! the last look at the clocks found past their due date, most overdue first. Each node's clock
//! tick makes it anew; it is bounded ([`OVERDUE_LISTED`]) however many cases are late.

use schemas::{BureauCaseId, BureauId, Item, JointCaseId, ProjectCode, ShanghaiDate};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// The most overdue cases the overdue list keeps.
pub const OVERDUE_LISTED: usize = 100;

/// The cases past their due date at the last look at the clocks, most overdue first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueList {
    /// The day of that look (absent: the clocks were not looked at yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<ShanghaiDate>,
    /// When it was (Unix milliseconds).
    pub looked_at: Millis,
    /// How many cases were overdue (the list keeps the [`OVERDUE_LISTED`] most overdue).
    pub total: u64,
    /// The cases.
    pub cases: Vec<OverdueCase>,
}

/// A case past its due date: a branch of an open joint case, an application of one (its whole
/// limit), or a case on its own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueCase {
    /// The bureau handling it.
    pub bureau: BureauId,
    /// Its case.
    pub case_id: BureauCaseId,
    /// Its item.
    pub item: Item,
    /// Its project.
    pub project: ProjectCode,
    /// Its due date.
    pub due_on: ShanghaiDate,
    /// Working days past it.
    pub working_days_overdue: i64,
    /// The joint case whose clock it is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_case_id: Option<JointCaseId>,
}

impl OverdueList {
    /// Adds a case, keeping memory bounded: past twice the listed number, only the most
    /// overdue are kept.
    pub fn push(&mut self, case: OverdueCase) {
        self.total += 1;
        self.cases.push(case);
        if self.cases.len() >= 2 * OVERDUE_LISTED {
            self.settle();
        }
    }

    /// Sorts most overdue first (then by bureau and case) and keeps the listed number.
    pub fn settle(&mut self) {
        self.cases.sort_by(|a, b| {
            b.working_days_overdue
                .cmp(&a.working_days_overdue)
                .then_with(|| a.bureau.as_str().cmp(b.bureau.as_str()))
                .then_with(|| a.case_id.as_str().cmp(b.case_id.as_str()))
        });
        self.cases.truncate(OVERDUE_LISTED);
    }
}
