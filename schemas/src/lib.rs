//! The canonical case model of the Shanghai construction-approval exchange, and the strict
//! normalization that turns a bureau's native text into it.
//!
//! Every bureau adapter decodes its native format into the types of [`model`] (events about
//! cases) and [`survey`] (multi-survey-in-one results), using the parsers of [`normalize`].
//! Nothing here knows about TLS, HTTP, stores or any particular bureau's format: this crate is
//! the one language the rest of the gateway speaks.
//!
//! Rules that no single value shows (survey versioning, a figure given once, the case
//! lifecycle) live in [`rules`], written once: every adapter, and the gateway's own survey
//! publication, builds canonical values through them.
//!
//! Normalization is strict: a value that does not parse exactly is rejected with a
//! [`normalize::NormalizeError`] naming the canonical field, the bureau's own field path and the
//! offending text. Nothing is ever guessed, and money and areas are exact decimals, never `f64`.

pub mod bureau;
pub mod codes;
pub mod common;
pub mod credit;
pub mod district;
pub mod fold;
pub mod item;
pub mod joint;
pub mod model;
pub mod normalize;
pub mod quantity;
pub mod rules;
pub mod schema_files;
pub mod survey;
pub mod text;
pub mod time;

pub use bureau::{BureauId, BureauNames};
pub use codes::{CreditCode, ProjectCode};
pub use common::{Applicant, BureauCaseId, MessageId, Name, Organization};
pub use credit::{CreditEntry, CreditList, CreditMatch, CreditRemoval, CreditText, CreditWarning};
pub use district::District;
pub use joint::{
    BranchStatus, DeadlineNotice, DeadlineState, DueDate, FlowName, JointBranch, JointCaseId,
    JointNotice, JointStatus,
};
pub use model::{Case, CaseStatus, Event, EventKind, Item, Payload, Project, Stage};
pub use normalize::{CanonicalField, NormalizeError, Normalizer, Problem};
pub use quantity::{Area, Count, Length, Money, Percent, WorkingDays};
pub use rules::{FigureSet, NativeValue, NoticePart, SurveyNoticeParts, Violation};
pub use survey::{
    FigureName, FigureValue, FileRef, Sha256Hex, SurveyFigure, SurveyId, SurveyKind, SurveyNotice,
    SurveyResult,
};
pub use time::{LocalFormat, ShanghaiDate, ShanghaiTime};
