//! Assembling canonical events from the values an adapter parsed, so each adapter only reads
//! its own format and every one builds events (and ends a decode) the same way. Survey notices
//! are assembled by `schemas::rules::SurveyNoticeParts`, which the gateway uses too.

use schemas::model::Name;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField, Case, CaseStatus, CreditCode, District, Event,
    Item, MessageId, Money, NativeValue, Normalizer, Organization, Project, ProjectCode,
    ShanghaiTime, Stage, SurveyNotice, WorkingDays,
};

use crate::adapter::DecodeError;

/// Ends the decode of a single-event message: the event `decode` reads, or every error it
/// recorded.
pub(crate) fn one_event(
    decode: impl FnOnce(&mut Normalizer) -> Option<Event>,
) -> Result<Vec<Event>, DecodeError> {
    let mut n = Normalizer::new();
    let event = decode(&mut n);
    n.finish(|| event)
        .map(|event| vec![event])
        .map_err(DecodeError::Invalid)
}

/// A survey event: the notice, published by `source` at `occurred_at` (`None` when anything
/// was rejected).
pub(crate) fn survey_event(
    message_id: Option<MessageId>,
    source: Option<BureauId>,
    occurred_at: Option<ShanghaiTime>,
    notice: Option<SurveyNotice>,
) -> Option<Event> {
    Some(Event::for_survey(
        message_id?,
        source?,
        occurred_at?,
        notice?,
    ))
}

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
    /// The event, or `None` when anything was rejected. Parts that contradict each other (an
    /// event dated before its case's submission) are rejected under `occurred_at`, at the
    /// adapter's own event-time field that `event_time_at` gives (asked for only then).
    pub(crate) fn into_event(
        self,
        n: &mut Normalizer,
        event_time_at: impl FnOnce() -> NativeValue,
    ) -> Option<Event> {
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
        let event = Event::for_case(
            self.message_id?,
            self.source?,
            self.case_id?,
            self.sequence?,
            self.occurred_at?,
            case,
        );
        match event {
            Ok(event) => Some(event),
            Err(problem) => {
                let at = event_time_at();
                n.reject(CanonicalField::OccurredAt, at.path, at.text, problem);
                None
            }
        }
    }
}
