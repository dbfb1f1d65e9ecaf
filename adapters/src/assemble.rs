//! Assembling a canonical case event from the values an adapter parsed, so each adapter only
//! reads its own format and every one builds the event the same way.

use schemas::model::Name;
use schemas::{
    Area, BureauCaseId, BureauId, Case, CaseStatus, CreditCode, District, Event, Item, MessageId,
    Money, Normalizer, Organization, Problem, Project, ProjectCode, ShanghaiTime, Stage,
    WorkingDays,
};

/// The parsed parts of a case event. `None` means the value was rejected (or missing) and the
/// normalizer holds why; the optional figures are `Some(None)` when absent.
pub(crate) struct CaseParts {
    pub(crate) message_id: Option<MessageId>,
    pub(crate) source: Option<BureauId>,
    pub(crate) case_id: Option<BureauCaseId>,
    pub(crate) sequence: Option<u64>,
    pub(crate) occurred_at: Option<ShanghaiTime>,
    pub(crate) project_code: Option<ProjectCode>,
    pub(crate) project_name: Option<Name>,
    pub(crate) item: Option<Item>,
    pub(crate) stage: Option<Stage>,
    pub(crate) district: Option<District>,
    pub(crate) applicant_name: Option<Name>,
    pub(crate) credit_code: Option<CreditCode>,
    pub(crate) status: Option<CaseStatus>,
    pub(crate) submitted_at: Option<ShanghaiTime>,
    pub(crate) time_limit: Option<WorkingDays>,
    pub(crate) floor_area: Option<Option<Area>>,
    pub(crate) investment: Option<Option<Money>>,
}

impl CaseParts {
    /// `None` when anything was rejected; else the event, or the problem that makes the parts
    /// contradict each other (an event dated before its case's submission), which the adapter
    /// reports against its own event-time field.
    pub(crate) fn into_event(self, n: &Normalizer) -> Option<Result<Event, Problem>> {
        if !n.is_clean() {
            return None;
        }
        let case = Case {
            project: Project {
                code: self.project_code?,
                name: self.project_name?,
            },
            item: self.item?,
            stage: self.stage?,
            district: self.district?,
            applicant: Organization {
                name: self.applicant_name?,
                credit_code: self.credit_code?,
            },
            status: self.status?,
            submitted_at: self.submitted_at?,
            time_limit_working_days: self.time_limit?,
            floor_area: self.floor_area?,
            investment: self.investment?,
        };
        Some(Event::for_case(
            self.message_id?,
            self.source?,
            self.case_id?,
            self.sequence?,
            self.occurred_at?,
            case,
        ))
    }
}
