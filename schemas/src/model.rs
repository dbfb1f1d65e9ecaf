//! The canonical case model: projects, cases and the events that carry them between bureaus.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bureau::BureauId;
use crate::codes::{CreditCode, ProjectCode, string_newtype_serde};
use crate::district::District;
use crate::normalize::Problem;
use crate::quantity::{Area, Money, WorkingDays};
use crate::text::{clean, free_text};
use crate::time::ShanghaiTime;

/// Checks an identifier: 1 to `max` characters of `A-Z a-z 0-9 . _ : / -`.
fn identifier(input: &str, max: usize, expected: &'static str) -> Result<String, Problem> {
    let text = clean(input);
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.len() > max {
        return Err(Problem::TooLong { max_chars: max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
    {
        return Err(Problem::BadFormat { expected });
    }
    Ok(text.into_owned())
}

/// The stable id of one event. Receivers drop duplicates by it: delivery is at-least-once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// Parses a message id: 1 to 64 characters of `A-Z a-z 0-9 . _ : / -`.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        identifier(input, 64, "message id of letters, digits and . _ : / -").map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    MessageId,
    "MessageId",
    "^[A-Za-z0-9._:/-]{1,64}$",
    "Stable id of one event; receivers drop duplicates by it."
);

/// A bureau's own id of a case (辦件編號). Together with the source bureau it names the case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BureauCaseId(String);

impl BureauCaseId {
    /// Parses a case id: 1 to 40 characters of `A-Z a-z 0-9 . _ : / -`.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        identifier(input, 40, "case id of letters, digits and . _ : / -").map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    BureauCaseId,
    "BureauCaseId",
    "^[A-Za-z0-9._:/-]{1,40}$",
    "A bureau's own id of a case."
);

/// Free text of at most 100 characters: project and organization names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a name (full-width folded, trimmed, no control characters).
    pub fn parse(input: &str) -> Result<Self, Problem> {
        free_text(input, Self::MAX_CHARS).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    Name,
    "Name",
    "^[^\\u0000-\\u001f]{1,100}$",
    "A name, 1 to 100 characters."
);

/// A construction project, identified by its national investment project code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The national investment project code.
    pub code: ProjectCode,
    /// The project's registered name.
    pub name: Name,
}

/// An enterprise: an applicant, or a surveying agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// The registered name.
    pub name: Name,
    /// The unified social credit code.
    pub credit_code: CreditCode,
}

/// The applicant of a case is an enterprise.
pub type Applicant = Organization;

/// The kind of a case (事項): which permit or review is applied for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// 建設用地規劃許可證.
    LandUsePlanningPermit,
    /// 建設工程規劃許可證.
    ConstructionPlanningPermit,
    /// 規劃資源驗收.
    PlanningVerification,
    /// 供水接入 (water connection as one step).
    WaterSupplyConnection,
    /// 排水許可.
    DrainagePermit,
    /// 城市道路挖掘許可.
    RoadExcavationPermit,
    /// 交通影響評價審查.
    TrafficImpactReview,
    /// 涉路施工交通安全審核 (done within one working day).
    RoadWorksTrafficSafety,
    /// 人防工程設計審查.
    CivilDefenseDesignReview,
    /// 人防工程竣工驗收備案.
    CivilDefenseCompletionFiling,
    /// 臨時佔用綠地審批.
    GreenLandOccupation,
    /// 樹木砍伐審批.
    TreeFelling,
    /// 綠化配套方案審查.
    GreeningPlanReview,
}

impl Item {
    /// Every item.
    pub const ALL: [Item; 13] = [
        Self::LandUsePlanningPermit,
        Self::ConstructionPlanningPermit,
        Self::PlanningVerification,
        Self::WaterSupplyConnection,
        Self::DrainagePermit,
        Self::RoadExcavationPermit,
        Self::TrafficImpactReview,
        Self::RoadWorksTrafficSafety,
        Self::CivilDefenseDesignReview,
        Self::CivilDefenseCompletionFiling,
        Self::GreenLandOccupation,
        Self::TreeFelling,
        Self::GreeningPlanReview,
    ];

    /// The bureau that handles cases of this item.
    pub fn bureau(self) -> BureauId {
        match self {
            Self::LandUsePlanningPermit
            | Self::ConstructionPlanningPermit
            | Self::PlanningVerification => BureauId::Planning,
            Self::WaterSupplyConnection | Self::DrainagePermit => BureauId::Water,
            Self::RoadExcavationPermit | Self::TrafficImpactReview => BureauId::Transport,
            Self::RoadWorksTrafficSafety => BureauId::TrafficPolice,
            Self::CivilDefenseDesignReview | Self::CivilDefenseCompletionFiling => {
                BureauId::CivilDefense
            }
            Self::GreenLandOccupation | Self::TreeFelling | Self::GreeningPlanReview => {
                BureauId::Greenery
            }
        }
    }

    /// The canonical snake_case code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Self::LandUsePlanningPermit => "land_use_planning_permit",
            Self::ConstructionPlanningPermit => "construction_planning_permit",
            Self::PlanningVerification => "planning_verification",
            Self::WaterSupplyConnection => "water_supply_connection",
            Self::DrainagePermit => "drainage_permit",
            Self::RoadExcavationPermit => "road_excavation_permit",
            Self::TrafficImpactReview => "traffic_impact_review",
            Self::RoadWorksTrafficSafety => "road_works_traffic_safety",
            Self::CivilDefenseDesignReview => "civil_defense_design_review",
            Self::CivilDefenseCompletionFiling => "civil_defense_completion_filing",
            Self::GreenLandOccupation => "green_land_occupation",
            Self::TreeFelling => "tree_felling",
            Self::GreeningPlanReview => "greening_plan_review",
        }
    }

    /// The item's name in traditional characters.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::LandUsePlanningPermit => "建設用地規劃許可證",
            Self::ConstructionPlanningPermit => "建設工程規劃許可證",
            Self::PlanningVerification => "規劃資源驗收",
            Self::WaterSupplyConnection => "供水接入",
            Self::DrainagePermit => "排水許可",
            Self::RoadExcavationPermit => "城市道路挖掘許可",
            Self::TrafficImpactReview => "交通影響評價審查",
            Self::RoadWorksTrafficSafety => "涉路施工交通安全審核",
            Self::CivilDefenseDesignReview => "人防工程設計審查",
            Self::CivilDefenseCompletionFiling => "人防工程竣工驗收備案",
            Self::GreenLandOccupation => "臨時佔用綠地審批",
            Self::TreeFelling => "樹木砍伐審批",
            Self::GreeningPlanReview => "綠化配套方案審查",
        }
    }

    /// Parses the canonical code.
    pub fn parse_code(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        Self::ALL
            .into_iter()
            .find(|item| item.code() == text)
            .ok_or(Problem::UnknownCode {
                vocabulary: "item code",
            })
    }
}

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
}

/// The body of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// The case as it stands after the event.
    Case(Case),
    /// A survey result shared with an entitled bureau (multi-survey-in-one).
    Survey(crate::survey::SurveyNotice),
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
        })
    }

    /// Builds a survey event: the series of a project's survey kind is its "case" (so versions
    /// are delivered in order), the version is the sequence, and the kind says whether it
    /// supersedes an earlier version.
    pub fn for_survey(
        message_id: MessageId,
        source: BureauId,
        occurred_at: ShanghaiTime,
        notice: crate::survey::SurveyNotice,
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
        }
    }

    /// The case the event carries, if it is a case event.
    pub fn case(&self) -> Option<&Case> {
        match &self.payload {
            Payload::Case(case) => Some(case),
            Payload::Survey(_) => None,
        }
    }

    /// The survey notice the event carries, if it is a survey event.
    pub fn survey(&self) -> Option<&crate::survey::SurveyNotice> {
        match &self.payload {
            Payload::Survey(notice) => Some(notice),
            Payload::Case(_) => None,
        }
    }
}

/// Parses a per-case sequence number: digits only, 1 or more.
pub fn parse_sequence(input: &str) -> Result<u64, Problem> {
    let text = clean(input);
    if !crate::text::all_digits(&text) || text.len() > 18 {
        return Err(Problem::BadFormat {
            expected: "a sequence number of at most 18 digits",
        });
    }
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err(Problem::OutOfRange {
            min: "1",
            max: "999999999999999999",
        }),
        Ok(n) => Ok(n),
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
    fn every_item_round_trips_its_code() {
        for item in Item::ALL {
            assert_eq!(Item::parse_code(item.code()), Ok(item));
            assert_eq!(serde_json::to_value(item).unwrap(), item.code());
        }
    }

    #[test]
    fn identifiers() {
        assert!(MessageId::parse("GH-2022/000123").is_ok());
        assert!(MessageId::parse("").is_err());
        assert!(MessageId::parse("a b").is_err());
        assert!(BureauCaseId::parse(&"x".repeat(41)).is_err());
        assert_eq!(
            parse_sequence("0"),
            Err(Problem::OutOfRange {
                min: "1",
                max: "999999999999999999"
            })
        );
        assert_eq!(parse_sequence("12"), Ok(12));
        assert!(parse_sequence("1.0").is_err());
    }
}
