//! What the store keeps of a joint case (one-stop parallel approval): the notice as last sent
//! and the clocks behind it; and of every other case, its own clock (`clocks.every_case`). The flows engine (`gateway::flows`) decides every change; the store
//! keeps the record whole (one JSON document beside the columns it is searched by) and refuses a
//! change written over a newer one (`revision`).

use schemas::{
    BureauCaseId, BureauId, CaseStatus, Item, JointCaseId, JointNotice, ProjectCode, ShanghaiDate,
};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// A joint case as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointCase {
    /// The joint case as its last notice told it.
    pub notice: JointNotice,
    /// One clock per branch, in the notice's order.
    pub clocks: Vec<BranchClock>,
    /// The clock of the whole: from the window's acceptance.
    pub clock: Clock,
    /// The last sequence of the window's case applied.
    pub window_sequence: u64,
    /// A document accepted for later supply (容缺後補), while it is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supply_later: Option<SupplyLater>,
    /// When it reached its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    /// When it last changed.
    pub updated_at: Millis,
    /// Counts every stored change; a change is written only over the revision it was computed
    /// from.
    pub revision: u64,
}

impl JointCase {
    /// Its id.
    pub fn id(&self) -> &JointCaseId {
        &self.notice.joint_case_id
    }
}

/// A working-day clock: when it started, its limit, its pauses, and which deadline notices went
/// out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Clock {
    /// The day of acceptance; the count starts on the next working day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<ShanghaiDate>,
    /// The limit, in working days.
    pub limit: u16,
    /// Intervals while a supplement was requested of the applicant (the clock stopped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Paused>,
    /// When it stopped for good (its case decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_on: Option<ShanghaiDate>,
    /// Deadline notices sent about it.
    #[serde(default)]
    pub notices_sent: u32,
    /// Whether the approaching notice went out.
    #[serde(default)]
    pub warned: bool,
    /// Whether the passed notice went out.
    #[serde(default)]
    pub passed: bool,
}

/// One pause of a clock: from the day a supplement was requested to the day it was supplied
/// (open while awaited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// The day the supplement was requested.
    pub from: ShanghaiDate,
    /// The day it was supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ShanghaiDate>,
}

/// A branch's clock and what was last applied of its case.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BranchClock {
    /// The clock.
    pub clock: Clock,
    /// The last sequence of the branch case applied (older events are ignored).
    #[serde(default)]
    pub last_sequence: u64,
}

/// A document accepted for later supply: since when, and by when it must come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyLater {
    /// The day the window accepted without it.
    pub since: ShanghaiDate,
    /// The last working day to supply it.
    pub until: ShanghaiDate,
}

/// The clock of one bureau's case, on the time limit its events carry, kept while the case is
/// not a branch of a joint case (a branch's clock is the joint case's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClock {
    /// The bureau handling the case.
    pub bureau: BureauId,
    /// Its case.
    pub case_id: BureauCaseId,
    /// The case's item.
    pub item: Item,
    /// The case's project.
    pub project: ProjectCode,
    /// The case's status as last applied.
    pub status: CaseStatus,
    /// The clock.
    pub clock: Clock,
    /// The last sequence of the case applied (older events are ignored).
    pub last_sequence: u64,
    /// The joint case that took the case in as a branch (the clock then lives on there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_case_id: Option<JointCaseId>,
    /// When it last changed.
    pub updated_at: Millis,
    /// Counts every stored change; a change is written only over the revision it was computed
    /// from.
    pub revision: u64,
}

impl CaseClock {
    /// Whether the clock may still run or send notices: its case undecided and not taken in by
    /// a joint case.
    pub fn is_open(&self) -> bool {
        self.joint_case_id.is_none() && self.clock.stopped_on.is_none()
    }
}
