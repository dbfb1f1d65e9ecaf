//! Typed normalization errors and the [`Normalizer`] that collects them.
//!
//! An adapter reads one native field at a time and hands its text to a parser of this crate
//! through [`Normalizer::field`]. A failure is recorded with the canonical field, the bureau's own
//! path to it and the offending text, and decoding goes on, so one reply can list every problem
//! of a message instead of only the first.

use serde::Serialize;

use crate::fold::clean;

/// The canonical field a native value was meant to fill, named as in the canonical JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[allow(missing_docs)] // each variant's documentation is its dotted canonical name
pub enum CanonicalField {
    #[serde(rename = "document")]
    Document,
    #[serde(rename = "message_id")]
    MessageId,
    #[serde(rename = "source")]
    Source,
    #[serde(rename = "case_id")]
    CaseId,
    #[serde(rename = "sequence")]
    Sequence,
    #[serde(rename = "occurred_at")]
    OccurredAt,
    #[serde(rename = "kind")]
    Kind,
    #[serde(rename = "case.project.code")]
    ProjectCode,
    #[serde(rename = "case.project.name")]
    ProjectName,
    #[serde(rename = "case.item")]
    Item,
    #[serde(rename = "case.stage")]
    Stage,
    #[serde(rename = "case.district")]
    District,
    #[serde(rename = "case.applicant.name")]
    ApplicantName,
    #[serde(rename = "case.applicant.credit_code")]
    ApplicantCreditCode,
    #[serde(rename = "case.status")]
    Status,
    #[serde(rename = "case.submitted_at")]
    SubmittedAt,
    #[serde(rename = "case.time_limit_working_days")]
    TimeLimit,
    #[serde(rename = "case.floor_area")]
    FloorArea,
    #[serde(rename = "case.investment")]
    Investment,
    #[serde(rename = "survey.project")]
    SurveyProject,
    #[serde(rename = "survey.kind")]
    SurveyKind,
    #[serde(rename = "survey.agency.name")]
    SurveyAgencyName,
    #[serde(rename = "survey.agency.credit_code")]
    SurveyAgencyCreditCode,
    #[serde(rename = "survey.version")]
    SurveyVersion,
    #[serde(rename = "survey.surveyed_on")]
    SurveyedOn,
    #[serde(rename = "survey.figures")]
    SurveyFigure,
    #[serde(rename = "survey.files")]
    SurveyFile,
    #[serde(rename = "survey.survey_id")]
    SurveyId,
    #[serde(rename = "survey.supersedes")]
    SurveySupersedes,
    #[serde(rename = "joint.joint_case_id")]
    JointCaseId,
    #[serde(rename = "joint.flow")]
    JointFlow,
    #[serde(rename = "joint.version")]
    JointVersion,
    #[serde(rename = "joint.project.code")]
    JointProjectCode,
    #[serde(rename = "joint.project.name")]
    JointProjectName,
    #[serde(rename = "joint.window")]
    JointWindow,
    #[serde(rename = "joint.window_case_id")]
    JointWindowCaseId,
    #[serde(rename = "joint.status")]
    JointStatus,
    #[serde(rename = "joint.opened_on")]
    JointOpenedOn,
    #[serde(rename = "joint.due")]
    JointDue,
    #[serde(rename = "joint.calendar")]
    JointCalendar,
    #[serde(rename = "joint.branches")]
    JointBranches,
    #[serde(rename = "joint.branches.bureau")]
    JointBranchBureau,
    #[serde(rename = "joint.branches.item")]
    JointBranchItem,
    #[serde(rename = "joint.branches.required")]
    JointBranchRequired,
    #[serde(rename = "joint.branches.status")]
    JointBranchStatus,
    #[serde(rename = "joint.branches.case_id")]
    JointBranchCaseId,
    #[serde(rename = "joint.branches.due")]
    JointBranchDue,
    #[serde(rename = "deadline.item")]
    DeadlineItem,
    #[serde(rename = "deadline.project")]
    DeadlineProject,
    #[serde(rename = "deadline.state")]
    DeadlineState,
    #[serde(rename = "deadline.working_days")]
    DeadlineWorkingDays,
    #[serde(rename = "deadline.due")]
    DeadlineDue,
    #[serde(rename = "deadline.calendar")]
    DeadlineCalendar,
    #[serde(rename = "deadline.joint_case_id")]
    DeadlineJointCaseId,
    #[serde(rename = "credit.entry_id")]
    CreditEntryId,
    #[serde(rename = "credit.version")]
    CreditVersion,
    #[serde(rename = "credit.list")]
    CreditList,
    #[serde(rename = "credit.subject.name")]
    CreditSubjectName,
    #[serde(rename = "credit.subject.credit_code")]
    CreditSubjectCode,
    #[serde(rename = "credit.measures")]
    CreditMeasures,
    #[serde(rename = "credit.issued_by")]
    CreditIssuedBy,
    #[serde(rename = "credit.legal_basis")]
    CreditLegalBasis,
    #[serde(rename = "credit.document_number")]
    CreditDocumentNumber,
    #[serde(rename = "credit.valid_from")]
    CreditValidFrom,
    #[serde(rename = "credit.valid_to")]
    CreditValidTo,
    #[serde(rename = "credit.removal.on")]
    CreditRemovedOn,
    #[serde(rename = "credit.removal.reason")]
    CreditRemovalReason,
    #[serde(rename = "credit_match.publisher")]
    CreditPublisher,
    #[serde(rename = "credit_match.item")]
    CreditMatchItem,
    #[serde(rename = "credit_match.project")]
    CreditMatchProject,
    /// A count read from free text, such as the number of projects in a report.
    #[serde(rename = "count")]
    Count,
}

impl CanonicalField {
    /// The dotted canonical name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::MessageId => "message_id",
            Self::Source => "source",
            Self::CaseId => "case_id",
            Self::Sequence => "sequence",
            Self::OccurredAt => "occurred_at",
            Self::Kind => "kind",
            Self::ProjectCode => "case.project.code",
            Self::ProjectName => "case.project.name",
            Self::Item => "case.item",
            Self::Stage => "case.stage",
            Self::District => "case.district",
            Self::ApplicantName => "case.applicant.name",
            Self::ApplicantCreditCode => "case.applicant.credit_code",
            Self::Status => "case.status",
            Self::SubmittedAt => "case.submitted_at",
            Self::TimeLimit => "case.time_limit_working_days",
            Self::FloorArea => "case.floor_area",
            Self::Investment => "case.investment",
            Self::SurveyProject => "survey.project",
            Self::SurveyKind => "survey.kind",
            Self::SurveyAgencyName => "survey.agency.name",
            Self::SurveyAgencyCreditCode => "survey.agency.credit_code",
            Self::SurveyVersion => "survey.version",
            Self::SurveyedOn => "survey.surveyed_on",
            Self::SurveyFigure => "survey.figures",
            Self::SurveyFile => "survey.files",
            Self::SurveyId => "survey.survey_id",
            Self::SurveySupersedes => "survey.supersedes",
            Self::JointCaseId => "joint.joint_case_id",
            Self::JointFlow => "joint.flow",
            Self::JointVersion => "joint.version",
            Self::JointProjectCode => "joint.project.code",
            Self::JointProjectName => "joint.project.name",
            Self::JointWindow => "joint.window",
            Self::JointWindowCaseId => "joint.window_case_id",
            Self::JointStatus => "joint.status",
            Self::JointOpenedOn => "joint.opened_on",
            Self::JointDue => "joint.due",
            Self::JointCalendar => "joint.calendar",
            Self::JointBranches => "joint.branches",
            Self::JointBranchBureau => "joint.branches.bureau",
            Self::JointBranchItem => "joint.branches.item",
            Self::JointBranchRequired => "joint.branches.required",
            Self::JointBranchStatus => "joint.branches.status",
            Self::JointBranchCaseId => "joint.branches.case_id",
            Self::JointBranchDue => "joint.branches.due",
            Self::DeadlineItem => "deadline.item",
            Self::DeadlineProject => "deadline.project",
            Self::DeadlineState => "deadline.state",
            Self::DeadlineWorkingDays => "deadline.working_days",
            Self::DeadlineDue => "deadline.due",
            Self::DeadlineCalendar => "deadline.calendar",
            Self::DeadlineJointCaseId => "deadline.joint_case_id",
            Self::CreditEntryId => "credit.entry_id",
            Self::CreditVersion => "credit.version",
            Self::CreditList => "credit.list",
            Self::CreditSubjectName => "credit.subject.name",
            Self::CreditSubjectCode => "credit.subject.credit_code",
            Self::CreditMeasures => "credit.measures",
            Self::CreditIssuedBy => "credit.issued_by",
            Self::CreditLegalBasis => "credit.legal_basis",
            Self::CreditDocumentNumber => "credit.document_number",
            Self::CreditValidFrom => "credit.valid_from",
            Self::CreditValidTo => "credit.valid_to",
            Self::CreditRemovedOn => "credit.removal.on",
            Self::CreditRemovalReason => "credit.removal.reason",
            Self::CreditPublisher => "credit_match.publisher",
            Self::CreditMatchItem => "credit_match.item",
            Self::CreditMatchProject => "credit_match.project",
            Self::Count => "count",
        }
    }
}

impl std::fmt::Display for CanonicalField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one native value. The variants are the sender's fault: a retry with the
/// same text can never succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Problem {
    /// A required field is absent.
    #[error("required field is missing")]
    Missing,
    /// The field is present but holds nothing once trimmed.
    #[error("value is empty")]
    Empty,
    /// The text is longer than the canonical model allows.
    #[error("value is longer than {max_chars} characters")]
    TooLong {
        /// The limit.
        max_chars: usize,
    },
    /// The text does not have the shape the field requires.
    #[error("expected {expected}")]
    BadFormat {
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A code's check character does not match the one computed from its other characters.
    #[error("check character is {found:?} but the code's characters give {expected:?}")]
    BadCheckCharacter {
        /// The check character computed from the first 17 characters.
        expected: char,
        /// The check character the text carries.
        found: char,
    },
    /// The text is not one of the codes of a closed vocabulary.
    #[error("not a known {vocabulary}")]
    UnknownCode {
        /// The vocabulary, e.g. "Shanghai district".
        vocabulary: &'static str,
    },
    /// A quantity carries a unit this field does not accept.
    #[error("unit is not one of {allowed}")]
    UnknownUnit {
        /// The accepted units.
        allowed: &'static str,
    },
    /// A unit that could mean more than one thing (`日`: calendar or working days?).
    #[error("ambiguous unit: {hint}")]
    AmbiguousUnit {
        /// Why it is ambiguous and what to send instead.
        hint: &'static str,
    },
    /// A date-time lacks the explicit `+08:00` offset, or carries another one.
    #[error("date-time must carry the explicit Asia/Shanghai offset +08:00")]
    NotShanghaiOffset,
    /// A date or time that does not exist (30 February, 25 o'clock).
    #[error("no such date or time")]
    NoSuchDate,
    /// More decimal places than the canonical unit keeps; rounding would be a guess.
    #[error("more than {max_decimals} decimal places in the canonical unit")]
    TooPrecise {
        /// Decimal places kept in the canonical unit.
        max_decimals: u32,
    },
    /// A number outside the range the field allows.
    #[error("value out of range {min}..={max}")]
    OutOfRange {
        /// The smallest accepted value.
        min: &'static str,
        /// The largest accepted value.
        max: &'static str,
    },
    /// A value that contradicts another field of the same message.
    #[error("inconsistent: {reason}")]
    Inconsistent {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A field the native format does not define.
    #[error("field is not part of this format")]
    UnknownField,
    /// The native value has the wrong type (an object where text belongs).
    #[error("expected {expected}")]
    WrongType {
        /// The expected native type.
        expected: &'static str,
    },
}

/// One rejected native value: which canonical field, where in the bureau's message, what text,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field} at {path}: {problem} (text {text:?})")]
pub struct NormalizeError {
    /// The canonical field the value was meant to fill.
    pub field: CanonicalField,
    /// The bureau's own path to the value: XPath-like for XML, a JSON pointer for JSON.
    pub path: String,
    /// The offending text, as received (empty when the field is missing).
    pub text: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// Collects the errors of one decode so that a message is rejected with all of them at once.
#[derive(Debug, Default)]
pub struct Normalizer {
    errors: Vec<NormalizeError>,
}

impl Normalizer {
    /// A normalizer with no errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a required native value. `text` is `None` when the field is absent. The parser
    /// gets the text folded and trimmed by [`clean`] (full-width forms to ASCII), so every
    /// field of every format folds alike; a rejection reports the text as received. The path is
    /// built only when the value is rejected, so the happy path allocates nothing for it.
    pub fn field<T>(
        &mut self,
        field: CanonicalField,
        path: impl FnOnce() -> String,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let Some(text) = text else {
            self.reject(field, path(), "", Problem::Missing);
            return None;
        };
        // The one folding rule, for every field of every format: see `fold::clean`.
        match parse(&clean(text)) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.reject(field, path(), text, problem);
                None
            }
        }
    }

    /// Parses an optional native value: absent is `Some(None)`, present and bad is `None`.
    pub fn optional<T>(
        &mut self,
        field: CanonicalField,
        path: impl FnOnce() -> String,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match text {
            None => Some(None),
            Some(text) => self.field(field, path, Some(text), parse).map(Some),
        }
    }

    /// Records a rejection found by the adapter itself (a structural problem, an unknown field).
    pub fn reject(
        &mut self,
        field: CanonicalField,
        path: impl Into<String>,
        text: impl Into<String>,
        problem: Problem,
    ) {
        self.errors.push(NormalizeError {
            field,
            path: path.into(),
            text: text.into(),
            problem,
        });
    }

    /// True when nothing has been rejected so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors recorded so far.
    pub fn errors(&self) -> &[NormalizeError] {
        &self.errors
    }

    /// Ends a decode: the value when nothing was rejected, else every error. `value` is built
    /// only when there were no errors, which is also when all its `Option` parts are `Some`.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<NormalizeError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        value().ok_or_else(|| {
            // A parser returned None without recording why: a bug in an adapter, reported as a
            // rejection of the whole document rather than a panic in the gateway.
            vec![NormalizeError {
                field: CanonicalField::Document,
                path: "/".into(),
                text: String::new(),
                problem: Problem::Inconsistent {
                    reason: "document could not be assembled",
                },
            }]
        })
    }

    /// Moves the errors of another normalizer (one record of a batch) into this one.
    pub fn absorb(&mut self, errors: Vec<NormalizeError>) {
        self.errors.extend(errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_with_field_path_and_text() {
        let mut n = Normalizer::new();
        let a: Option<u8> = n.field(
            CanonicalField::Sequence,
            || "/a".into(),
            Some("x"),
            |_| Err(Problem::BadFormat { expected: "digits" }),
        );
        let b: Option<u8> = n.field(CanonicalField::CaseId, || "/b".into(), None, |_| Ok(1));
        assert!(a.is_none() && b.is_none());
        let errors = n.finish(|| Some(())).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].path, "/a");
        assert_eq!(errors[0].text, "x");
        assert_eq!(errors[1].problem, Problem::Missing);
        assert_eq!(errors[1].field.as_str(), "case_id");
    }

    #[test]
    fn optional_absent_is_fine() {
        let mut n = Normalizer::new();
        let v: Option<Option<u8>> =
            n.optional(CanonicalField::FloorArea, String::new, None, |_| {
                Err(Problem::Empty)
            });
        assert_eq!(v, Some(None));
        assert!(n.is_clean());
    }

    #[test]
    fn field_names_serialize_as_their_dotted_names() {
        for field in [
            CanonicalField::ApplicantCreditCode,
            CanonicalField::TimeLimit,
        ] {
            let json = serde_json::to_value(field).unwrap();
            assert_eq!(json, field.as_str());
        }
    }
}
