//! `gateway ctl`: the operator's command line over the admin API, with an operator certificate
//! (mutual TLS). Human tables by default, `--json` for scripts (the API's own answer); the exit
//! status is 0 on success, 1 when the gateway refused or failed the request, 2 when it could not
//! be reached or the command line was wrong.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use schemas::BureauId;
use serde_json::Value;

use crate::delivery::{HttpsClient, https_client};

mod args;
mod print;

pub use args::{CtlArgs, CtlCommand, DlqCommand};

/// Most dead letters the gateway replays or purges per call.
const PER_CALL: u64 = 1000;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a ctl command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The certificate, key or CA could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::net::tls::TlsError),
    /// The URL is not `https://HOST:PORT`.
    #[error("--url {0:?} is not https://HOST:PORT")]
    Url(String),
    /// The node could not be reached.
    #[error("cannot reach {url}: {source}")]
    Connection {
        /// The node.
        url: String,
        /// Why.
        source: hyper_util::client::legacy::Error,
    },
    /// No answer in time.
    #[error("{url} did not answer within {}s", TIMEOUT.as_secs())]
    Timeout {
        /// The node.
        url: String,
    },
    /// The answer's body broke off.
    #[error("reading the answer of {url}: {source}")]
    Body {
        /// The node.
        url: String,
        /// Why.
        source: hyper::Error,
    },
    /// Usage: the command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
}

/// An answer of the admin API.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

/// A client of one node's admin API.
pub struct AdminClient {
    client: HttpsClient,
    base: String,
}

impl AdminClient {
    /// A client with the operator certificate `cert`/`key`, trusting `ca` for the node at `url`.
    pub fn new(
        url: &str,
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self, CtlError> {
        let base = url.trim_end_matches('/');
        let authority = base.strip_prefix("https://").unwrap_or_default();
        if authority.is_empty() || authority.contains('/') {
            return Err(CtlError::Url(url.to_owned()));
        }
        let tls = crate::net::tls::client_config(ca, cert, key)?;
        Ok(Self {
            client: https_client(&tls),
            base: base.to_owned(),
        })
    }

    /// Sends `method path` with a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, CtlError> {
        let url = format!("{}{path}", self.base);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|_| CtlError::Url(url.clone()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| CtlError::Timeout { url: url.clone() })?
            .map_err(|source| CtlError::Connection {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|source| CtlError::Body { url, source })?
            .to_bytes();
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A replay or purge body.
fn selector(ids: &[i64], subscriber: Option<BureauId>) -> Result<Value, CtlError> {
    match (ids.is_empty(), subscriber) {
        (false, None) => Ok(serde_json::json!({ "ids": ids })),
        (true, Some(subscriber)) => Ok(serde_json::json!({ "subscriber": subscriber })),
        _ => Err(CtlError::Usage(
            "give dead-letter ids or --subscriber BUREAU".to_owned(),
        )),
    }
}

/// Runs one ctl command; what it prints goes to `out`, errors to stderr.
pub async fn run(args: CtlArgs, out: &mut dyn std::io::Write) -> ExitCode {
    match run_inner(&args, out).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gateway ctl: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(args: &CtlArgs, out: &mut dyn std::io::Write) -> Result<ExitCode, CtlError> {
    let client = AdminClient::new(&args.url, &args.ca, &args.cert, &args.key)?;
    let (method, path, body) = match &args.command {
        CtlCommand::Status => (Method::GET, "/v1/admin/status".to_owned(), None),
        CtlCommand::Bureaus => (Method::GET, "/v1/admin/bureaus".to_owned(), None),
        CtlCommand::Dlq { command } => match command {
            DlqCommand::List { subscriber, limit } => {
                let mut path = format!("/v1/dead-letters?limit={limit}");
                if let Some(subscriber) = subscriber {
                    path.push_str(&format!("&subscriber={subscriber}"));
                }
                (Method::GET, path, None)
            }
            DlqCommand::Show { id } => (Method::GET, format!("/v1/dead-letters/{id}"), None),
            DlqCommand::Replay { ids, subscriber } => (
                Method::POST,
                "/v1/dead-letters/replay".to_owned(),
                Some(selector(ids, *subscriber)?),
            ),
            DlqCommand::Purge { ids, subscriber } => (
                Method::POST,
                "/v1/dead-letters/purge".to_owned(),
                Some(selector(ids, *subscriber)?),
            ),
        },
        CtlCommand::Pause { bureau } => (
            Method::POST,
            format!("/v1/admin/bureaus/{bureau}/pause"),
            None,
        ),
        CtlCommand::Resume { bureau } => (
            Method::POST,
            format!("/v1/admin/bureaus/{bureau}/resume"),
            None,
        ),
        CtlCommand::Trace { message_id } => (
            Method::GET,
            format!("/v1/admin/trace/{}", segment(message_id)),
            None,
        ),
        CtlCommand::Case { lookup } => (
            Method::GET,
            format!("/v1/admin/cases/{}", segment(lookup)),
            None,
        ),
        // Always JSON: `--csv` is made from it here, as the API makes it.
        CtlCommand::Report { month, .. } => (
            Method::GET,
            format!("/v1/reports/monthly?month={}", segment(month)),
            None,
        ),
        CtlCommand::Joint { lookup } if lookup.starts_with("jc-") => (
            Method::GET,
            format!("/v1/joint-cases/{}", segment(lookup)),
            None,
        ),
        CtlCommand::Joint { lookup } => (
            Method::GET,
            format!("/v1/joint-cases?project={}", segment(lookup)),
            None,
        ),
        CtlCommand::Overdue => (Method::GET, "/v1/clocks/overdue".to_owned(), None),
        CtlCommand::Credit {
            code: Some(code), ..
        } => (Method::GET, format!("/v1/credit/{}", segment(code)), None),
        CtlCommand::Credit { code: None, limit } => {
            (Method::GET, format!("/v1/credit?limit={limit}"), None)
        }
    };
    let mut answer = client.call(method.clone(), &path, body.clone()).await?;
    // A subscriber's dead letters go 1000 per call: call again until a call does fewer, and
    // answer with the total.
    if let (CtlCommand::Dlq { command }, true) = (&args.command, answer.status.is_success())
        && let DlqCommand::Replay {
            subscriber: Some(_),
            ..
        }
        | DlqCommand::Purge {
            subscriber: Some(_),
            ..
        } = command
    {
        let field = if matches!(command, DlqCommand::Replay { .. }) {
            "replayed"
        } else {
            "purged"
        };
        let mut total = answer.body[field].as_u64().unwrap_or(0);
        let mut last = total;
        while last >= PER_CALL {
            let next = client.call(method.clone(), &path, body.clone()).await?;
            if !next.status.is_success() {
                answer = next;
                break;
            }
            last = next.body[field].as_u64().unwrap_or(0);
            total += last;
            answer.body = serde_json::json!({ field: total });
        }
    }
    if !answer.status.is_success() {
        let detail = answer.body["detail"].as_str().unwrap_or("");
        let title = answer.body["title"]
            .as_str()
            .unwrap_or(answer.status.canonical_reason().unwrap_or(""));
        eprintln!("gateway ctl: {} {title}: {detail}", answer.status.as_u16());
        if args.json && !answer.body.is_null() {
            let _ = writeln!(out, "{}", answer.body);
        }
        return Ok(ExitCode::from(1));
    }
    let text = if args.json {
        format!("{:#}\n", answer.body)
    } else {
        print::human(&args.command, &answer.body)
    };
    // A closed pipe (`| head`) is not the gateway's failure.
    let _ = out.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
