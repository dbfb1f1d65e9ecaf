//! A joint case as operators and the bureaus taking part read it (`GET /v1/joint-cases/...`,
//! `gateway ctl joint`, the dashboard): the notice, and each clock as of today — when it
//! started, its pauses, its due date and the working days left (negative: overdue).

use chrono::NaiveDate;
use schemas::{BureauId, JointNotice, ShanghaiDate};
use serde::{Deserialize, Serialize};

use super::FlowTable;
use super::rules;
use crate::clock::Millis;
use crate::store::joint::{Clock, JointCase, Paused, SupplyLater};

/// A joint case with its clocks read on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointView {
    /// The joint case as its last notice told it.
    pub notice: JointNotice,
    /// The day the clocks are read on.
    pub as_of: ShanghaiDate,
    /// The whole flow's clock.
    pub clock: ClockView,
    /// One clock per branch, in the notice's order.
    pub branches: Vec<ClockView>,
    /// A document accepted for later supply, while it is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supply_later: Option<SupplyLater>,
    /// When it reached its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    /// When it last changed.
    pub updated_at: Millis,
}

/// One clock on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockView {
    /// The day of acceptance (the count starts on the next working day); absent: not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<ShanghaiDate>,
    /// The limit, in working days.
    pub limit: u16,
    /// While it stood still for a supplement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<Paused>,
    /// Whether it stands still now.
    pub paused_now: bool,
    /// When it stopped for good (its case decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_on: Option<ShanghaiDate>,
    /// Its due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<ShanghaiDate>,
    /// Whether the due date may move once next year's notice is loaded.
    pub provisional: bool,
    /// Working days left on `as_of` (or at its stop); negative: overdue by that many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_days_left: Option<i64>,
}

fn clock_view(clock: &Clock, table: &FlowTable, today: NaiveDate) -> ClockView {
    let standing = rules::standing(clock, table.calendar(), today);
    ClockView {
        started_on: clock.started_on,
        limit: clock.limit,
        paused: clock.pauses.clone(),
        paused_now: rules::is_paused(clock),
        stopped_on: clock.stopped_on,
        due_on: standing.map(|(due, _)| ShanghaiDate::new(due.date)),
        provisional: standing.is_some_and(|(due, _)| due.provisional),
        working_days_left: standing.map(|(_, left)| left),
    }
}

impl JointView {
    /// The view of `case` on `today`.
    pub fn of(case: &JointCase, table: &FlowTable, today: NaiveDate) -> Self {
        let mut whole = case.clock.clone();
        if whole.stopped_on.is_none() && case.notice.status.is_final() {
            whole.stopped_on = case.closed_at.and_then(|at| {
                chrono::DateTime::from_timestamp_millis(at + 8 * 3_600_000)
                    .map(|t| ShanghaiDate::new(t.naive_utc().date()))
            });
        }
        Self {
            notice: case.notice.clone(),
            as_of: ShanghaiDate::new(today),
            clock: clock_view(&whole, table, today),
            branches: case
                .clocks
                .iter()
                .map(|c| clock_view(&c.clock, table, today))
                .collect(),
            supply_later: case.supply_later,
            closed_at: case.closed_at,
            updated_at: case.updated_at,
        }
    }

    /// Whether `bureau` takes part (the window or a branch): who may read it.
    pub fn concerns(notice: &JointNotice, bureau: BureauId) -> bool {
        notice.window == bureau || notice.branches.iter().any(|b| b.bureau == bureau)
    }
}
