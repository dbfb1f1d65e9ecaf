//! The canonical case model: projects, cases and the events that carry them between bureaus.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bureau::BureauId;
use crate::codes::ProjectCode;
use crate::credit::{CreditEntry, CreditMatch, CreditWarning};
use crate::district::District;
use crate::joint::{BranchStatus, DeadlineNotice, DeadlineState, JointNotice, JointStatus};
use crate::normalize::Problem;
use crate::quantity::{Area, Money, WorkingDays};
use crate::survey::SurveyNotice;
use crate::time::ShanghaiTime;

// Kept at their old paths (`schemas::model::Name`, `schemas::model::Item`, ...).
pub use crate::common::{Applicant, BureauCaseId, MessageId, Name, Organization, parse_sequence};
pub use crate::item::{Item, Project};

/// The four stages of the reformed approval process (四個階段).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 立項用地規劃許可.
    LandUsePlanning,
    /// 工程建設許可.
    EngineeringConstructionPermit,
    /// 施工許可.
    ConstructionPermit,
    /// 竣工驗收.
    CompletionAcceptance,
}

impl Stage {
    /// Every stage, in process order.
    pub const ALL: [Stage; 4] = [
        Self::LandUsePlanning,
        Self::EngineeringConstructionPermit,
        Self::ConstructionPermit,
        Self::CompletionAcceptance,
    ];
}

/// Where a case stands. The lifecycle is submitted → accepted → (supplement_requested ↔
/// accepted) → approved | rejected, and withdrawn from any open state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 已申報: filed by the applicant.
    Submitted,
    /// 已受理: accepted for review.
    Accepted,
    /// 補正: documents must be supplied (容缺後補).
    SupplementRequested,
    /// 準予許可: granted.
    Approved,
    /// 不予許可: refused.
    Rejected,
    /// 撤回: withdrawn by the applicant.
    Withdrawn,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [CaseStatus; 6] = [
        Self::Submitted,
        Self::Accepted,
        Self::SupplementRequested,
        Self::Approved,
        Self::Rejected,
        Self::Withdrawn,
    ];

    /// True for the states a case never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected | Self::Withdrawn)
    }

    /// Whether a case may move from `self` to `next`.
    pub fn can_become(self, next: CaseStatus) -> bool {
        use CaseStatus::*;
        matches!(
            (self, next),
            (Submitted, Accepted | Rejected | Withdrawn)
                | (
                    Accepted,
                    SupplementRequested | Approved | Rejected | Withdrawn
                )
                | (SupplementRequested, Accepted | Rejected | Withdrawn)
        )
    }

    /// The event kind that reports a case entering this status.
    pub fn event_kind(self) -> EventKind {
        match self {
            Self::Submitted => EventKind::CaseSubmitted,
            Self::Accepted => EventKind::CaseAccepted,
            Self::SupplementRequested => EventKind::CaseSupplementRequested,
            Self::Approved => EventKind::CaseApproved,
            Self::Rejected => EventKind::CaseRejected,
            Self::Withdrawn => EventKind::CaseWithdrawn,
        }
    }
}

/// A case (辦件): one application handled by one bureau for one project, as it stands after the
/// event that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The project the case belongs to.
    pub project: Project,
    /// What is applied for.
    pub item: Item,
    /// The approval stage.
    pub stage: Stage,
    /// Where the case is handled.
    pub district: District,
    /// Who applies.
    pub applicant: Applicant,
    /// Where the case stands.
    pub status: CaseStatus,
    /// When the applicant filed it.
    pub submitted_at: ShanghaiTime,
    /// The statutory time limit, in working days.
    pub time_limit_working_days: WorkingDays,
    /// The total floor area applied for, when the item has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_area: Option<Area>,
    /// The total investment, when the item has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investment: Option<Money>,
}

/// What an event reports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[allow(missing_docs)] // the serialized names say it
pub enum EventKind {
    #[serde(rename = "case.submitted")]
    CaseSubmitted,
    #[serde(rename = "case.accepted")]
    CaseAccepted,
    #[serde(rename = "case.supplement_requested")]
    CaseSupplementRequested,
    #[serde(rename = "case.approved")]
    CaseApproved,
    #[serde(rename = "case.rejected")]
    CaseRejected,
    #[serde(rename = "case.withdrawn")]
    CaseWithdrawn,
    /// A survey result was published (its first version).
    #[serde(rename = "survey.published")]
    SurveyPublished,
    /// A new version of a survey result supersedes an earlier one.
    #[serde(rename = "survey.superseded")]
    SurveySuperseded,
    /// A window accepted an application a flow names: its joint case is open.
    #[serde(rename = "joint.opened")]
    JointOpened,
    /// A branch of an open joint case changed.
    #[serde(rename = "joint.updated")]
    JointUpdated,
    #[serde(rename = "joint.approved")]
    JointApproved,
    #[serde(rename = "joint.rejected")]
    JointRejected,
    #[serde(rename = "joint.withdrawn")]
    JointWithdrawn,
    /// A document accepted for later supply was not supplied in time.
    #[serde(rename = "joint.terminated")]
    JointTerminated,
    /// A case's due date is a few working days away.
    #[serde(rename = "deadline.approaching")]
    DeadlineApproaching,
    /// A case's due date has passed.
    #[serde(rename = "deadline.passed")]
    DeadlinePassed,
    /// A credit-list entry was published or changed (not removed).
    #[serde(rename = "credit.listed")]
    CreditListed,
    /// A credit-list entry was removed.
    #[serde(rename = "credit.removed")]
    CreditRemoved,
    /// A case's applicant is on an active credit list.
    #[serde(rename = "credit.matched")]
    CreditMatched,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 19] = [
        Self::CaseSubmitted,
        Self::CaseAccepted,
        Self::CaseSupplementRequested,
        Self::CaseApproved,
        Self::CaseRejected,
        Self::CaseWithdrawn,
        Self::SurveyPublished,
        Self::SurveySuperseded,
        Self::JointOpened,
        Self::JointUpdated,
        Self::JointApproved,
        Self::JointRejected,
        Self::JointWithdrawn,
        Self::JointTerminated,
        Self::DeadlineApproaching,
        Self::DeadlinePassed,
        Self::CreditListed,
        Self::CreditRemoved,
        Self::CreditMatched,
    ];

    /// The serialized name (`case.accepted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaseSubmitted => "case.submitted",
            Self::CaseAccepted => "case.accepted",
            Self::CaseSupplementRequested => "case.supplement_requested",
            Self::CaseApproved => "case.approved",
            Self::CaseRejected => "case.rejected",
            Self::CaseWithdrawn => "case.withdrawn",
            Self::SurveyPublished => "survey.published",
            Self::SurveySuperseded => "survey.superseded",
            Self::JointOpened => "joint.opened",
            Self::JointUpdated => "joint.updated",
            Self::JointApproved => "joint.approved",
            Self::JointRejected => "joint.rejected",
            Self::JointWithdrawn => "joint.withdrawn",
            Self::JointTerminated => "joint.terminated",
            Self::DeadlineApproaching => "deadline.approaching",
            Self::DeadlinePassed => "deadline.passed",
            Self::CreditListed => "credit.listed",
            Self::CreditRemoved => "credit.removed",
            Self::CreditMatched => "credit.matched",
        }
    }
}

/// The body of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// The case as it stands after the event.
    Case(Case),
    /// A survey result shared with an entitled bureau (multi-survey-in-one).
    Survey(SurveyNotice),
    /// A joint case (one-stop parallel approval) as it stands after a change.
    Joint(JointNotice),
    /// A case's due date approaches or has passed.
    Deadline(DeadlineNotice),
    /// A credit-list entry at one of its versions.
    Credit(CreditEntry),
    /// A case's applicant is on an active credit list.
    CreditMatch(CreditMatch),
}

/// The envelope every exchanged message is normalized into: one event about one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The event's stable id.
    pub message_id: MessageId,
    /// The bureau whose system produced the event.
    pub source: BureauId,
    /// The source bureau's own id of the case: (source, case_id) names the case.
    pub case_id: BureauCaseId,
    /// Position of this event among the case's events, from 1; per-case order follows it.
    pub sequence: u64,
    /// When it happened.
    pub occurred_at: ShanghaiTime,
    /// What happened.
    pub kind: EventKind,
    /// What it carries.
    pub payload: Payload,
    /// Set by the gateway on a case event whose applicant is on an active credit list when it
    /// arrives; delivered in the `Credit-Warning` header, never read from a bureau's message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credit_warnings: Vec<CreditWarning>,
}

impl Event {
    /// Builds a case event; the kind follows from the case's status. Fails when the event
    /// predates the case's submission, which no real history can produce.
    pub fn for_case(
        message_id: MessageId,
        source: BureauId,
        case_id: BureauCaseId,
        sequence: u64,
        occurred_at: ShanghaiTime,
        case: Case,
    ) -> Result<Self, Problem> {
        if occurred_at < case.submitted_at {
            return Err(Problem::Inconsistent {
                reason: "the event occurs before the case was submitted",
            });
        }
        Ok(Self {
            message_id,
            source,
            case_id,
            sequence,
            occurred_at,
            kind: case.status.event_kind(),
            payload: Payload::Case(case),
            credit_warnings: Vec::new(),
        })
    }

    /// Builds a survey event: the series of a project's survey kind is its "case" (so versions
    /// are delivered in order), the version is the sequence, and the kind says whether it
    /// supersedes an earlier version.
    pub fn for_survey(
        message_id: MessageId,
        source: BureauId,
        occurred_at: ShanghaiTime,
        notice: SurveyNotice,
    ) -> Self {
        let kind = if notice.supersedes.is_some() {
            EventKind::SurveySuperseded
        } else {
            EventKind::SurveyPublished
        };
        Self {
            message_id,
            source,
            case_id: notice.series_id(),
            sequence: u64::from(notice.result.version),
            occurred_at,
            kind,
            payload: Payload::Survey(notice),
            credit_warnings: Vec::new(),
        }
    }

    /// Builds a joint-case event: the window bureau is its source, the joint case id its case
    /// id (so a joint case's notices are delivered in order), the version its sequence, and the
    /// kind follows from the version and status.
    pub fn for_joint(
        message_id: MessageId,
        occurred_at: ShanghaiTime,
        notice: JointNotice,
    ) -> Self {
        Self {
            message_id,
            source: notice.window,
            case_id: notice.joint_case_id.as_case_id(),
            sequence: u64::from(notice.version),
            occurred_at,
            kind: notice.event_kind(),
            payload: Payload::Joint(notice),
            credit_warnings: Vec::new(),
        }
    }

    /// Builds a deadline event about `source`'s case `case_id`; `sequence` numbers the case's
    /// deadline notices.
    pub fn for_deadline(
        message_id: MessageId,
        source: BureauId,
        case_id: BureauCaseId,
        sequence: u64,
        occurred_at: ShanghaiTime,
        notice: DeadlineNotice,
    ) -> Self {
        Self {
            message_id,
            source,
            case_id,
            sequence,
            occurred_at,
            kind: notice.event_kind(),
            payload: Payload::Deadline(notice),
            credit_warnings: Vec::new(),
        }
    }

    /// Builds a credit-list event: the publisher is its source, the entry id its case id (so an
    /// entry's versions are delivered in order), the version its sequence.
    pub fn for_credit(
        message_id: MessageId,
        publisher: BureauId,
        occurred_at: ShanghaiTime,
        entry: CreditEntry,
    ) -> Self {
        Self {
            message_id,
            source: publisher,
            case_id: entry.entry_id.clone(),
            sequence: u64::from(entry.version),
            occurred_at,
            kind: if entry.removal.is_some() {
                EventKind::CreditRemoved
            } else {
                EventKind::CreditListed
            },
            payload: Payload::Credit(entry),
            credit_warnings: Vec::new(),
        }
    }

    /// Builds a match notice about `source`'s case `case_id`, whose event `sequence` matched.
    pub fn for_credit_match(
        message_id: MessageId,
        source: BureauId,
        case_id: BureauCaseId,
        sequence: u64,
        occurred_at: ShanghaiTime,
        notice: CreditMatch,
    ) -> Self {
        Self {
            message_id,
            source,
            case_id,
            sequence,
            occurred_at,
            kind: EventKind::CreditMatched,
            payload: Payload::CreditMatch(notice),
            credit_warnings: Vec::new(),
        }
    }

    /// The project the event is about: a case's project, the project a survey result or a
    /// joint case is for, a deadline notice's or a credit match's case's project; none for a
    /// credit-list entry.
    pub fn project(&self) -> Option<&ProjectCode> {
        match &self.payload {
            Payload::Case(case) => Some(&case.project.code),
            Payload::Survey(notice) => Some(&notice.result.project),
            Payload::Joint(notice) => Some(&notice.project.code),
            Payload::Deadline(notice) => Some(&notice.project),
            Payload::CreditMatch(notice) => Some(&notice.project),
            Payload::Credit(_) => None,
        }
    }

    /// The credit-list entry the event carries, if it is a credit-list event.
    pub fn credit(&self) -> Option<&CreditEntry> {
        match &self.payload {
            Payload::Credit(entry) => Some(entry),
            _ => None,
        }
    }

    /// The match notice the event carries, if it is one.
    pub fn credit_match(&self) -> Option<&CreditMatch> {
        match &self.payload {
            Payload::CreditMatch(notice) => Some(notice),
            _ => None,
        }
    }

    /// The joint notice the event carries, if it is a joint-case event.
    pub fn joint(&self) -> Option<&JointNotice> {
        match &self.payload {
            Payload::Joint(notice) => Some(notice),
            _ => None,
        }
    }

    /// The deadline notice the event carries, if it is a deadline event.
    pub fn deadline(&self) -> Option<&DeadlineNotice> {
        match &self.payload {
            Payload::Deadline(notice) => Some(notice),
            _ => None,
        }
    }

    /// The case the event carries, if it is a case event.
    pub fn case(&self) -> Option<&Case> {
        match &self.payload {
            Payload::Case(case) => Some(case),
            _ => None,
        }
    }

    /// The survey notice the event carries, if it is a survey event.
    pub fn survey(&self) -> Option<&SurveyNotice> {
        match &self.payload {
            Payload::Survey(notice) => Some(notice),
            _ => None,
        }
    }
}

impl From<CaseStatus> for BranchStatus {
    fn from(status: CaseStatus) -> Self {
        match status {
            CaseStatus::Submitted => Self::Submitted,
            CaseStatus::Accepted => Self::Accepted,
            CaseStatus::SupplementRequested => Self::SupplementRequested,
            CaseStatus::Approved => Self::Approved,
            CaseStatus::Rejected => Self::Rejected,
            CaseStatus::Withdrawn => Self::Withdrawn,
        }
    }
}

impl JointNotice {
    /// The event kind of this change: opened (version 1), updated while open, or the outcome.
    pub fn event_kind(&self) -> EventKind {
        match (self.status, self.version) {
            (JointStatus::Open, 1) => EventKind::JointOpened,
            (JointStatus::Open, _) => EventKind::JointUpdated,
            (JointStatus::Approved, _) => EventKind::JointApproved,
            (JointStatus::Rejected, _) => EventKind::JointRejected,
            (JointStatus::Withdrawn, _) => EventKind::JointWithdrawn,
            (JointStatus::Terminated, _) => EventKind::JointTerminated,
        }
    }
}

impl DeadlineNotice {
    /// The event kind: approaching or passed.
    pub fn event_kind(&self) -> EventKind {
        match self.state {
            DeadlineState::Approaching => EventKind::DeadlineApproaching,
            DeadlineState::Passed => EventKind::DeadlinePassed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_real_transitions() {
        use CaseStatus::*;
        assert!(Submitted.can_become(Accepted));
        assert!(Accepted.can_become(SupplementRequested));
        assert!(SupplementRequested.can_become(Accepted));
        assert!(Accepted.can_become(Approved));
        assert!(!Submitted.can_become(Approved));
        for done in [Approved, Rejected, Withdrawn] {
            assert!(done.is_final());
            assert!(CaseStatus::ALL.iter().all(|&next| !done.can_become(next)));
        }
    }

    #[test]
    fn a_joint_notice_says_its_kind_by_version_and_status() {
        let event = |version: u32, status: JointStatus| {
            let mut rng_notice = serde_json::json!({
                "joint_case_id": "jc-0123456789abcdef0123456789abcdef",
                "flow": "one_stop_construction_permit",
                "version": version,
                "project": {"code": "2201-310115-04-01-123456", "name": "x"},
                "window": "planning",
                "window_case_id": "GH-1",
                "status": status,
                "opened_on": "2026-02-13",
                "due": {"on": "2026-03-12", "provisional": false},
                "calendar": "c",
                "branches": []
            });
            let notice: JointNotice = serde_json::from_value(rng_notice.take()).unwrap();
            notice.event_kind()
        };
        assert_eq!(event(1, JointStatus::Open), EventKind::JointOpened);
        assert_eq!(event(2, JointStatus::Open), EventKind::JointUpdated);
        assert_eq!(event(3, JointStatus::Rejected), EventKind::JointRejected);
        assert_eq!(
            event(3, JointStatus::Terminated),
            EventKind::JointTerminated
        );
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn every_item_round_trips_its_code() {
        for item in Item::ALL {
            assert_eq!(Item::parse_code(item.code()), Ok(item));
            assert_eq!(serde_json::to_value(item).unwrap(), item.code());
        }
    }
}
