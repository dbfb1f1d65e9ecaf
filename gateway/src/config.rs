//! The gateway's configuration: `config.default.toml`, the operator's file laid over it, then
//! `GATEWAY_*` environment variables. Validated at load: every error names the key and the
//! problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::{BureauId, CreditList, District, EventKind, FigureName, Item, Stage, SurveyKind};
use serde::Deserialize;

use crate::net::Identity;
use crate::net::listener;
use crate::net::tls::TlsFiles;

/// The documented defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../config.default.toml");

/// A configuration problem: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// The dotted key, e.g. `routes[2].to`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

fn error(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's name (`urn:gateway:<node>`).
    pub node: String,
    /// Listening address.
    pub listen: SocketAddr,
    /// The operations listener: the same API with its own connection permits
    /// (`limits.admin_max_connections`), for operators and health checks; absent: none.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Store location, `sqlite:PATH` or `postgres://…`.
    pub store: String,
    /// PostgreSQL connection pool.
    pub postgres: PostgresConfig,
    /// Retention of finished work.
    pub retention: RetentionConfig,
    /// Certificates.
    pub tls: TlsConfig,
    /// Request limits.
    pub limits: Limits,
    /// Delivery workers.
    pub delivery: DeliveryConfig,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Circuit breaker.
    pub circuit: CircuitConfig,
    /// The bureaus, by id.
    pub bureaus: BTreeMap<BureauId, BureauConfig>,
    /// Routing rules.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Multi-survey-in-one.
    pub surveys: SurveysConfig,
    /// The operator surface (dashboard, admin API).
    pub ops: OpsConfig,
    /// The audit trail's signed checkpoints.
    pub audit: AuditConfig,
    /// The working-day calendar.
    pub calendar: CalendarConfig,
    /// One-stop parallel approval: the flows that tie a window's application to its branches.
    #[serde(default)]
    pub flows: Vec<Flow>,
    /// When the working-day clocks warn.
    pub clocks: ClocksConfig,
    /// Shared credit lists: who publishes and who receives each list.
    pub credit: CreditConfig,
}

/// Shared credit lists (信用信息共享).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditConfig {
    /// Largest bulk upload, in bytes (413 beyond).
    pub max_upload_bytes: usize,
    /// Most entries one upload may carry (each a line).
    pub max_entries: usize,
    /// Per list: who may publish and who receives its entries and match notices. A list
    /// without an entry is published by no one.
    #[serde(default)]
    pub lists: BTreeMap<CreditList, CreditListConfig>,
}

/// Who publishes one credit list and who is told of it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreditListConfig {
    /// The bureaus that may publish and remove entries of the list.
    pub publishers: Vec<BureauId>,
    /// The bureaus that receive its entries and a match notice for each case of a listed
    /// applicant (once per case and entry).
    pub receivers: Vec<BureauId>,
}

impl CreditConfig {
    /// Whether `bureau` may publish entries of `list`.
    pub fn may_publish(&self, bureau: BureauId, list: CreditList) -> bool {
        self.lists
            .get(&list)
            .is_some_and(|l| l.publishers.contains(&bureau))
    }

    /// The bureaus told of `list`'s entries and matches, in `BureauId` order.
    pub fn receivers(&self, list: CreditList) -> Vec<BureauId> {
        let mut out = self
            .lists
            .get(&list)
            .map(|l| l.receivers.clone())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `bureau` may look up credit codes: it publishes or receives some list.
    pub fn may_look_up(&self, bureau: BureauId) -> bool {
        self.lists
            .values()
            .any(|l| l.publishers.contains(&bureau) || l.receivers.contains(&bureau))
    }
}

/// A one-stop flow (一口受理、並聯審批): a window bureau's case event opens a joint case whose
/// branches the other bureaus review in parallel, each within its own limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Its name (`schemas::FlowName` rules), written in every notice.
    pub name: String,
    /// Why it exists (shown by `flows explain`).
    pub reason: String,
    /// The window bureau whose case event opens it.
    pub window: BureauId,
    /// The kind of that event (e.g. `case.accepted`).
    pub kind: EventKind,
    /// Its item.
    pub item: Item,
    /// Its stage (absent: any).
    #[serde(default)]
    pub stage: Option<Stage>,
    /// The whole flow's limit, in working days from the window's acceptance.
    pub time_limit_working_days: u16,
    /// Whether a branch's clock stops while a supplement is requested of the applicant.
    #[serde(default = "yes")]
    pub pause_on_supplement: bool,
    /// "Accept now, supply later" (容缺後補): when set, a supplement requested by the window
    /// after acceptance is a document accepted for later supply, due within this many working
    /// days; unsupplied by then, the joint case is terminated and every branch told.
    #[serde(default)]
    pub supply_later_working_days: Option<u16>,
    /// The branches, each (bureau, item) once.
    pub branches: Vec<FlowBranch>,
}

fn yes() -> bool {
    true
}

/// One branch of a flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowBranch {
    /// The reviewing bureau.
    pub bureau: BureauId,
    /// The item it reviews (one of that bureau's).
    pub item: Item,
    /// Whether the joint outcome waits for it.
    pub required: bool,
    /// Its limit, in working days from its own acceptance.
    pub time_limit_working_days: u16,
}

/// When the working-day clocks warn the handling bureau.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClocksConfig {
    /// A deadline notice goes out this many working days before a due date (0: on the day).
    pub warn_working_days_before: u16,
    /// How often a node looks at the open clocks.
    pub check_interval_seconds: u64,
    /// Whether every case that is not a branch of a joint case runs on a clock of its own, of
    /// the time limit its events carry (`case.time_limit_working_days`), with the same notices.
    #[serde(default = "yes")]
    pub every_case: bool,
    /// Whether a case's own clock stops while a supplement is requested of the applicant.
    #[serde(default = "yes")]
    pub pause_on_supplement: bool,
}

/// The working-day calendar the time limits are counted on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// A calendar file replacing the one shipped with the gateway (`gateway/calendar/
    /// cn-workdays.toml`, one State Council notice per year); empty: the shipped one.
    pub file: std::path::PathBuf,
}

/// The audit trail's checkpoints: every `checkpoint_interval_seconds` (when the trail has grown)
/// the node signs every chain's head with its key and writes the checkpoint to the store and to
/// `checkpoint_dir/checkpoints.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// How often a checkpoint is signed.
    pub checkpoint_interval_seconds: u64,
    /// Where the checkpoint file is written (a copy outside the database).
    pub checkpoint_dir: std::path::PathBuf,
}

/// The operator surface: how often a node reports what it sees, and when a bureau counts as
/// degraded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// How often each node writes its counts and per-bureau state to the store (what every
    /// node's dashboard shows), and refreshes the queue gauges.
    pub report_interval_seconds: u64,
    /// A bureau whose oldest pending delivery is older than this is degraded.
    pub backlog_age_degraded_seconds: u64,
    /// A bureau whose certificate expires within this many days is degraded.
    pub certificate_warning_days: u64,
}

/// Multi-survey-in-one: who publishes, where files live, who may see what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveysConfig {
    /// The publishing bureau.
    pub publisher: BureauId,
    /// The content-addressed file folder.
    pub blob_dir: PathBuf,
    /// Largest publication.
    pub max_upload_bytes: usize,
    /// Longest upload.
    pub upload_timeout_seconds: u64,
    /// An upload that sends no byte for this long is cut off (408).
    pub upload_stall_seconds: u64,
    /// Per bureau: what it is entitled to.
    #[serde(default)]
    pub entitlements: BTreeMap<BureauId, Entitlement>,
}

/// What one bureau may see of survey results.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    /// The survey kinds it is notified of and may read.
    pub kinds: Vec<SurveyKind>,
    /// The figures it sees.
    pub figures: Vec<FigureName>,
    /// The kinds whose files it may download.
    #[serde(default)]
    pub files: Vec<SurveyKind>,
}

impl SurveysConfig {
    /// What `bureau` may see: everything for the publisher, its entitlement for others, nothing
    /// for a bureau without one.
    pub fn entitlement_of(&self, bureau: BureauId) -> Option<Entitlement> {
        if bureau == self.publisher {
            return Some(Entitlement {
                kinds: SurveyKind::ALL.to_vec(),
                figures: FigureName::ALL.to_vec(),
                files: SurveyKind::ALL.to_vec(),
            });
        }
        self.entitlements.get(&bureau).cloned()
    }
}

/// PostgreSQL settings (used when `store` is a `postgres://` URL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections per node.
    pub pool_size: usize,
}

/// How long finished work is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delivered deliveries are deleted this long after delivery (messages and events stay).
    pub delivered_hours: u64,
    /// How often a node looks for rows to delete (one node at a time does it).
    pub cleanup_interval_seconds: u64,
}

/// Certificate files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The exchange CA (PEM).
    pub ca: PathBuf,
    /// This node's certificate (PEM).
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
    /// `/readyz` fails when the certificate expires within this many days.
    pub min_validity_days: u32,
    /// The exchange CA's certificate revocation lists (PEM or DER), applied to every client
    /// certificate on the listener and every receiver's certificate when pushing.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// How often the node looks for changed TLS files (CRLs, CA, certificate, key) and reloads
    /// them for new connections; SIGHUP reloads at once.
    pub crl_check_interval_seconds: u64,
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Request timeout.
    pub request_timeout_seconds: u64,
    /// Longest feed long-poll.
    pub feed_max_wait_seconds: u64,
    /// Most items per feed fetch.
    pub feed_max_items: usize,
    /// Connections open at once on `listen`.
    pub max_connections: usize,
    /// Connections open at once on `admin_listen`.
    pub admin_max_connections: usize,
    /// Time to finish a TLS handshake.
    pub handshake_timeout_seconds: u64,
    /// Time to send an HTTP/1.1 request head.
    pub header_read_timeout_seconds: u64,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout_seconds: u64,
    /// Largest request head (HTTP/1.1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// HTTP/2 receive window, per connection and per stream.
    pub http2_window_bytes: u32,
    /// Requests in flight on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Request-body bytes held in memory at once, over all requests that buffer their body.
    pub max_in_flight_body_bytes: usize,
}

/// Delivery workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight to one subscriber at once.
    pub per_subscriber_concurrency: usize,
    /// Lease length.
    pub lease_seconds: u64,
    /// Timeout of one push.
    pub request_timeout_seconds: u64,
    /// Idle polling interval.
    pub poll_interval_ms: u64,
}

/// Retry policy: exponential backoff with full jitter, then dead letters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// First backoff ceiling.
    pub initial_delay_ms: u64,
    /// Largest backoff ceiling.
    pub max_delay_seconds: u64,
    /// Failed attempts before dead-lettering.
    pub max_attempts: u32,
    /// Age after which a failing delivery is dead-lettered.
    pub max_age_hours: u64,
}

/// Circuit breaker settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before probing.
    pub open_seconds: u64,
}

/// How a bureau receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The gateway POSTs each event to the bureau's endpoint.
    Push,
    /// The bureau long-polls `GET /v1/feed` and acknowledges.
    Pull,
}

/// One bureau.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BureauConfig {
    /// Push or pull.
    pub delivery: DeliveryMode,
    /// The HTTPS endpoint for push delivery.
    pub endpoint: Option<String>,
    /// Most deliveries in one push, for a push bureau that opted in to batches: each push is
    /// then its format's batch form (`Adapter::encode_batch`), answered with per-item results
    /// (`delivery::batch`). 1, the default, pushes one event per request.
    #[serde(default = "one_per_push")]
    pub push_batch: usize,
}

fn one_per_push() -> usize {
    1
}

/// The largest `push_batch`: a batch is leased, encoded and held in memory whole.
pub const MAX_PUSH_BATCH: usize = 500;

/// One routing rule: events matching every list it sets go to `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A short unique name.
    pub name: String,
    /// Why the receivers need these events (one line, shown by `routes explain`).
    pub reason: String,
    /// Source bureaus (empty: any).
    #[serde(default)]
    pub from: Vec<BureauId>,
    /// Event kinds (empty: any).
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    /// Items (empty: any).
    #[serde(default)]
    pub items: Vec<Item>,
    /// Stages (empty: any).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Districts (empty: any).
    #[serde(default)]
    pub districts: Vec<District>,
    /// Receiving bureaus.
    pub to: Vec<BureauId>,
}

impl RetryPolicy {
    /// The first backoff ceiling.
    pub fn initial_delay(&self) -> Duration {
        Duration::from_millis(self.initial_delay_ms)
    }

    /// The largest backoff ceiling.
    pub fn max_delay(&self) -> Duration {
        Duration::from_secs(self.max_delay_seconds)
    }

    /// The age after which a failing delivery is dead-lettered.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_hours * 3600)
    }
}

/// Lays `over` onto `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    /// The defaults alone.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_layers(&[], &[])
    }

    /// Loads the defaults, the operator's file and the environment, and validates the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(path.display().to_string(), format!("cannot read: {e}")))?;
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("GATEWAY_"))
            .collect();
        Self::from_layers(&[&text], &env)
    }

    /// Lays TOML texts over the defaults in order, then `GATEWAY_LISTEN`, `GATEWAY_STORE`,
    /// `GATEWAY_NODE` from `env`, and validates.
    pub fn from_layers(texts: &[&str], env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| error("config.default.toml", format!("{e}")))?;
        for text in texts {
            let layer: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                error(
                    "config",
                    e.message().to_owned() + &span_hint(text, e.span()),
                )
            })?;
            // An operator's routes replace the default routes as a whole.
            merge(&mut table, layer);
        }
        for (key, value) in env {
            let name = match key.as_str() {
                "GATEWAY_LISTEN" => "listen",
                "GATEWAY_STORE" => "store",
                "GATEWAY_NODE" => "node",
                _ => continue,
            };
            table.insert(name.to_owned(), toml::Value::String(value.clone()));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| error("config", e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Semantic checks the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if Identity::from_node(&self.node).is_none() {
            return Err(error(
                "node",
                "must be 1-64 characters of letters, digits, - _ .",
            ));
        }
        self.store_location()?;
        self.calendar()?;
        self.validate_flows()?;
        let positive = [
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64),
            (
                "audit.checkpoint_interval_seconds",
                self.audit.checkpoint_interval_seconds,
            ),
            (
                "ops.report_interval_seconds",
                self.ops.report_interval_seconds,
            ),
            (
                "ops.backlog_age_degraded_seconds",
                self.ops.backlog_age_degraded_seconds,
            ),
            (
                "limits.request_timeout_seconds",
                self.limits.request_timeout_seconds,
            ),
            ("limits.feed_max_items", self.limits.feed_max_items as u64),
            ("limits.max_connections", self.limits.max_connections as u64),
            (
                "limits.admin_max_connections",
                self.limits.admin_max_connections as u64,
            ),
            (
                "limits.handshake_timeout_seconds",
                self.limits.handshake_timeout_seconds,
            ),
            (
                "limits.header_read_timeout_seconds",
                self.limits.header_read_timeout_seconds,
            ),
            (
                "limits.idle_timeout_seconds",
                self.limits.idle_timeout_seconds,
            ),
            (
                "limits.http2_max_concurrent_streams",
                u64::from(self.limits.http2_max_concurrent_streams),
            ),
            (
                "surveys.upload_stall_seconds",
                self.surveys.upload_stall_seconds,
            ),
            (
                "tls.crl_check_interval_seconds",
                self.tls.crl_check_interval_seconds,
            ),
            ("delivery.concurrency", self.delivery.concurrency as u64),
            (
                "delivery.per_subscriber_concurrency",
                self.delivery.per_subscriber_concurrency as u64,
            ),
            ("delivery.lease_seconds", self.delivery.lease_seconds),
            (
                "delivery.request_timeout_seconds",
                self.delivery.request_timeout_seconds,
            ),
            ("delivery.poll_interval_ms", self.delivery.poll_interval_ms),
            ("retry.initial_delay_ms", self.retry.initial_delay_ms),
            ("retry.max_delay_seconds", self.retry.max_delay_seconds),
            ("retry.max_attempts", u64::from(self.retry.max_attempts)),
            ("retry.max_age_hours", self.retry.max_age_hours),
            (
                "circuit.failure_threshold",
                u64::from(self.circuit.failure_threshold),
            ),
            ("circuit.open_seconds", self.circuit.open_seconds),
            ("postgres.pool_size", self.postgres.pool_size as u64),
            (
                "retention.cleanup_interval_seconds",
                self.retention.cleanup_interval_seconds,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(error(key, "must be greater than 0"));
            }
        }
        if self.ops.report_interval_seconds > 60 {
            // A node keeps a few minutes of counts in memory until it reports them.
            return Err(error(
                "ops.report_interval_seconds",
                "must be at most 60 (a node keeps three minutes of counts until it reports)",
            ));
        }
        if self.limits.max_header_bytes < 8192 {
            return Err(error("limits.max_header_bytes", "must be at least 8192"));
        }
        if self.limits.http2_window_bytes < 65_535 {
            return Err(error(
                "limits.http2_window_bytes",
                "must be at least 65535 (the HTTP/2 default window)",
            ));
        }
        if self.limits.max_in_flight_body_bytes < self.limits.max_body_bytes {
            return Err(error(
                "limits.max_in_flight_body_bytes",
                "must be at least limits.max_body_bytes, or a largest message could never be read",
            ));
        }
        if self.admin_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(error("admin_listen", "must differ from listen"));
        }
        if self.delivery.request_timeout_seconds >= self.delivery.lease_seconds {
            return Err(error(
                "delivery.lease_seconds",
                "must be longer than delivery.request_timeout_seconds, or a slow push could be sent twice at once",
            ));
        }
        for (bureau, config) in &self.bureaus {
            let key = format!("bureaus.{bureau}.endpoint");
            match (config.delivery, &config.endpoint) {
                (DeliveryMode::Push, None) => {
                    return Err(error(key, "push delivery needs an https:// endpoint"));
                }
                (DeliveryMode::Push, Some(url)) => {
                    let parsed: hyper::Uri = url
                        .parse()
                        .map_err(|e| error(key.clone(), format!("not a URL: {e}")))?;
                    if parsed.scheme_str() != Some("https") || parsed.host().is_none() {
                        return Err(error(key, "must be an https:// URL with a host"));
                    }
                }
                (DeliveryMode::Pull, Some(_)) => {
                    return Err(error(key, "a pull bureau has no endpoint"));
                }
                (DeliveryMode::Pull, None) => {}
            }
            let key = format!("bureaus.{bureau}.push_batch");
            if !(1..=MAX_PUSH_BATCH).contains(&config.push_batch) {
                return Err(error(
                    key,
                    format!("must be between 1 and {MAX_PUSH_BATCH}"),
                ));
            }
            if config.push_batch > 1 && config.delivery == DeliveryMode::Pull {
                return Err(error(
                    key,
                    "a pull bureau reads batches from its feed; push_batch is for push bureaus",
                ));
            }
        }
        for (list, config) in &self.credit.lists {
            let key = format!("credit.lists.{}", list.code());
            for (what, bureaus) in [
                ("publishers", &config.publishers),
                ("receivers", &config.receivers),
            ] {
                if let Some(bureau) = bureaus.iter().find(|b| !self.bureaus.contains_key(b)) {
                    return Err(error(
                        format!("{key}.{what}"),
                        format!("bureau {bureau} is not configured under [bureaus]"),
                    ));
                }
            }
        }
        if self.credit.max_entries == 0 || self.credit.max_upload_bytes == 0 {
            return Err(error(
                "credit.max_entries",
                "an upload must be allowed at least one entry and one byte",
            ));
        }
        if !self.bureaus.contains_key(&self.surveys.publisher) {
            return Err(error(
                "surveys.publisher",
                format!(
                    "bureau {} is not configured under [bureaus]",
                    self.surveys.publisher
                ),
            ));
        }
        for (bureau, entitlement) in &self.surveys.entitlements {
            let key = format!("surveys.entitlements.{bureau}");
            if !self.bureaus.contains_key(bureau) {
                return Err(error(key, "bureau is not configured under [bureaus]"));
            }
            if let Some(kind) = entitlement
                .files
                .iter()
                .find(|k| !entitlement.kinds.contains(k))
            {
                return Err(error(
                    format!("{key}.files"),
                    format!("{kind:?} files without the kind in {key}.kinds"),
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let key = |field: &str| format!("routes[{i}].{field}");
            if route.name.trim().is_empty() || !names.insert(route.name.as_str()) {
                return Err(error(key("name"), "must be non-empty and unique"));
            }
            if route.reason.trim().is_empty() {
                return Err(error(
                    key("reason"),
                    "say why the receivers need these events",
                ));
            }
            if route.to.is_empty() {
                return Err(error(key("to"), "names no receiving bureau"));
            }
            for bureau in route.from.iter().chain(&route.to) {
                if !self.bureaus.contains_key(bureau) {
                    return Err(error(
                        key(if route.to.contains(bureau) {
                            "to"
                        } else {
                            "from"
                        }),
                        format!("bureau {bureau} is not configured under [bureaus]"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the flows: names, bureaus configured, items of their bureaus, limits, branches.
    fn validate_flows(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, flow) in self.flows.iter().enumerate() {
            let key = |field: &str| format!("flows[{i}].{field}");
            if schemas::FlowName::parse(&flow.name).is_err() || !names.insert(flow.name.as_str()) {
                return Err(error(
                    key("name"),
                    "must be unique, 1-48 of a-z 0-9 _, starting with a letter",
                ));
            }
            if flow.reason.trim().is_empty() {
                return Err(error(key("reason"), "say why the flow exists"));
            }
            if !self.bureaus.contains_key(&flow.window) {
                return Err(error(
                    key("window"),
                    format!("bureau {} is not configured under [bureaus]", flow.window),
                ));
            }
            if !matches!(
                flow.kind,
                EventKind::CaseSubmitted | EventKind::CaseAccepted
            ) {
                return Err(error(
                    key("kind"),
                    "a flow opens on case.submitted or case.accepted",
                ));
            }
            if flow.item.bureau() != flow.window {
                return Err(error(
                    key("item"),
                    format!("{} is not an item of {}", flow.item.code(), flow.window),
                ));
            }
            if !(1..=365).contains(&flow.time_limit_working_days) {
                return Err(error(key("time_limit_working_days"), "must be 1 to 365"));
            }
            if flow.supply_later_working_days == Some(0) {
                return Err(error(
                    key("supply_later_working_days"),
                    "must be at least 1 (or absent: no supply later)",
                ));
            }
            if flow.branches.is_empty() || flow.branches.len() > schemas::joint::MAX_BRANCHES {
                return Err(error(key("branches"), "must list 1 to 16 branches"));
            }
            if !flow.branches.iter().any(|b| b.required) {
                return Err(error(key("branches"), "at least one branch is required"));
            }
            for (j, branch) in flow.branches.iter().enumerate() {
                let bkey = |field: &str| format!("flows[{i}].branches[{j}].{field}");
                if !self.bureaus.contains_key(&branch.bureau) {
                    return Err(error(
                        bkey("bureau"),
                        format!("bureau {} is not configured under [bureaus]", branch.bureau),
                    ));
                }
                if branch.item.bureau() != branch.bureau {
                    return Err(error(
                        bkey("item"),
                        format!("{} is not an item of {}", branch.item.code(), branch.bureau),
                    ));
                }
                if branch.item == flow.item
                    || flow.branches[..j].iter().any(|b| b.item == branch.item)
                {
                    return Err(error(
                        bkey("item"),
                        "each item once, and not the window's own",
                    ));
                }
                if !(1..=365).contains(&branch.time_limit_working_days) {
                    return Err(error(bkey("time_limit_working_days"), "must be 1 to 365"));
                }
            }
        }
        if self.clocks.check_interval_seconds == 0 {
            return Err(error("clocks.check_interval_seconds", "must be at least 1"));
        }
        if self.clocks.warn_working_days_before > 30 {
            return Err(error("clocks.warn_working_days_before", "must be 0 to 30"));
        }
        Ok(())
    }

    /// The working-day calendar: the operator's `calendar.file`, checked, or the shipped one.
    pub fn calendar(&self) -> Result<crate::workdays::Calendar, ConfigError> {
        if self.calendar.file.as_os_str().is_empty() {
            return Ok(crate::workdays::Calendar::builtin());
        }
        let text = std::fs::read_to_string(&self.calendar.file).map_err(|e| {
            error(
                "calendar.file",
                format!("cannot read {}: {e}", self.calendar.file.display()),
            )
        })?;
        crate::workdays::Calendar::parse(&text).map_err(|e| {
            error(
                "calendar.file",
                format!("{}: {e}", self.calendar.file.display()),
            )
        })
    }

    /// Where the store is: `sqlite:PATH` or `postgres://…`.
    pub fn store_location(&self) -> Result<StoreLocation, ConfigError> {
        StoreLocation::parse(&self.store).ok_or_else(|| {
            error(
                "store",
                "expected sqlite:PATH or postgres://USER@HOST:PORT/DB",
            )
        })
    }

    /// The bounds of the main listener (`listen`).
    pub fn listener_limits(&self) -> listener::Limits {
        let limits = &self.limits;
        listener::Limits {
            max_connections: limits.max_connections,
            handshake_timeout: Duration::from_secs(limits.handshake_timeout_seconds),
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(limits.idle_timeout_seconds),
            max_header_bytes: limits.max_header_bytes,
            http2_window_bytes: limits.http2_window_bytes,
            http2_max_concurrent_streams: limits.http2_max_concurrent_streams,
            drain: listener::Limits::default().drain,
        }
    }

    /// The bounds of the operations listener (`admin_listen`): the main listener's, with its
    /// own connection count.
    pub fn admin_limits(&self) -> listener::Limits {
        listener::Limits {
            max_connections: self.limits.admin_max_connections,
            ..self.listener_limits()
        }
    }

    /// The TLS files of `[tls]`.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.tls.ca.clone(),
            cert: self.tls.cert.clone(),
            key: self.tls.key.clone(),
            crls: self.tls.crl_files.clone(),
        }
    }

    /// Most deliveries per push to `subscriber` (1 when it has not opted in to batches).
    pub fn push_batch(&self, subscriber: BureauId) -> usize {
        self.bureaus.get(&subscriber).map_or(1, |b| b.push_batch)
    }

    /// The bureaus that receive by push.
    pub fn push_subscribers(&self) -> Vec<BureauId> {
        self.bureaus
            .iter()
            .filter(|(_, c)| c.delivery == DeliveryMode::Push)
            .map(|(b, _)| *b)
            .collect()
    }
}

/// Where the store lives, parsed from `store = "…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreLocation {
    /// Parses `sqlite:PATH` or `postgres://…` / `postgresql://…`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            return (!path.is_empty()).then(|| Self::Sqlite(PathBuf::from(path)));
        }
        (text.starts_with("postgres://") || text.starts_with("postgresql://"))
            .then(|| Self::Postgres(text.to_owned()))
    }
}

/// A hint pointing at the line of a TOML syntax error.
fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|span| {
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        format!(" (line {line})")
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_route_among_every_bureau() {
        let config = Config::defaults().unwrap();
        assert_eq!(config.bureaus.len(), BureauId::ALL.len());
        assert!(config.routes.len() >= 8);
        let receivers: std::collections::BTreeSet<_> =
            config.routes.iter().flat_map(|r| r.to.clone()).collect();
        assert_eq!(
            receivers.len(),
            BureauId::ALL.len(),
            "every bureau receives something"
        );
        assert_eq!(config.push_subscribers().len(), BureauId::ALL.len() - 1);
    }

    #[test]
    fn the_ops_example_is_valid() {
        let config =
            Config::from_layers(&[include_str!("../../ops/gateway.example.toml")], &[]).unwrap();
        assert_eq!(
            config.store_location().unwrap(),
            StoreLocation::Sqlite(PathBuf::from("/var/lib/gateway/gateway.db"))
        );
    }

    #[test]
    fn the_two_node_examples_are_valid() {
        for text in [
            include_str!("../../ops/two-nodes/node-1.toml"),
            include_str!("../../ops/two-nodes/node-2.toml"),
        ] {
            let config = Config::from_layers(&[text], &[]).unwrap();
            assert!(matches!(
                config.store_location().unwrap(),
                StoreLocation::Postgres(_)
            ));
        }
    }

    #[test]
    fn layers_merge_and_env_overrides() {
        let config = Config::from_layers(
            &["[retry]\nmax_attempts = 3\n"],
            &[("GATEWAY_LISTEN".into(), "127.0.0.1:9443".into())],
        )
        .unwrap();
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.retry.initial_delay_ms, 1_000);
        assert_eq!(config.listen.port(), 9443);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[retry]\nmax_attempts = 0\n", "retry.max_attempts"),
            (
                "[bureaus.water]\ndelivery = \"push\"\nendpoint = \"http://x\"\n",
                "bureaus.water.endpoint",
            ),
            (
                "[bureaus.water]\npush_batch = 0\n",
                "bureaus.water.push_batch",
            ),
            (
                "[bureaus.water]\npush_batch = 501\n",
                "bureaus.water.push_batch",
            ),
            (
                "[bureaus.civil_defense]\npush_batch = 10\n",
                "bureaus.civil_defense.push_batch",
            ),
            (
                "[bureaus.civil_defense]\ndelivery = \"pull\"\nendpoint = \"https://x\"\n",
                "bureaus.civil_defense.endpoint",
            ),
            ("store = \"mysql://x\"\n", "store"),
            (
                "[[routes]]\nname = \"a\"\nreason = \"r\"\nto = []\n",
                "routes[0].to",
            ),
            ("[delivery]\nlease_seconds = 5\n", "delivery.lease_seconds"),
            (
                concat!(
                    "[[flows]]\nname = \"f\"\nreason = \"r\"\nwindow = \"planning\"\n",
                    "kind = \"case.accepted\"\nitem = \"construction_planning_permit\"\n",
                    "time_limit_working_days = 5\n[[flows.branches]]\nbureau = \"water\"\n",
                    "item = \"tree_felling\"\nrequired = true\ntime_limit_working_days = 3\n"
                ),
                "flows[0].branches[0].item",
            ),
            (
                concat!(
                    "[[flows]]\nname = \"One Stop\"\nreason = \"r\"\nwindow = \"planning\"\n",
                    "kind = \"case.accepted\"\nitem = \"construction_planning_permit\"\n",
                    "time_limit_working_days = 5\nbranches = []\n"
                ),
                "flows[0].name",
            ),
            (
                concat!(
                    "[[flows]]\nname = \"f\"\nreason = \"r\"\nwindow = \"planning\"\n",
                    "kind = \"case.approved\"\nitem = \"construction_planning_permit\"\n",
                    "time_limit_working_days = 5\nbranches = []\n"
                ),
                "flows[0].kind",
            ),
            (
                concat!(
                    "[[flows]]\nname = \"f\"\nreason = \"r\"\nwindow = \"planning\"\n",
                    "kind = \"case.accepted\"\nitem = \"construction_planning_permit\"\n",
                    "time_limit_working_days = 5\n[[flows.branches]]\nbureau = \"water\"\n",
                    "item = \"drainage_permit\"\nrequired = false\ntime_limit_working_days = 3\n"
                ),
                "flows[0].branches",
            ),
            (
                "[clocks]\ncheck_interval_seconds = 0\n",
                "clocks.check_interval_seconds",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_layers(&[text], &[]).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let err = Config::from_layers(&["[retry]\nmax_attempt = 3\n"], &[]).unwrap_err();
        assert!(err.problem.contains("max_attempt"), "{err}");
        let err = Config::from_layers(
            &["[[routes]]\nname = \"a\"\nreason = \"r\"\nto = [\"tax\"]\n"],
            &[],
        )
        .unwrap_err();
        assert!(err.problem.contains("tax"), "{err}");
    }

    #[test]
    fn listener_limits_come_from_the_documented_defaults() {
        let config = Config::defaults().unwrap();
        let limits = config.listener_limits();
        assert_eq!(
            limits,
            listener::Limits::default(),
            "config.default.toml and net::listener::Limits::default() agree"
        );
        assert_eq!(
            config.admin_limits().max_connections,
            config.limits.admin_max_connections
        );
        assert!(config.admin_listen.is_none());
        assert!(config.tls.crl_files.is_empty());
        let err =
            Config::from_layers(&["[limits]\nmax_in_flight_body_bytes = 1\n"], &[]).unwrap_err();
        assert_eq!(err.key, "limits.max_in_flight_body_bytes");
        let err = Config::from_layers(&["[limits]\nmax_connections = 0\n"], &[]).unwrap_err();
        assert_eq!(err.key, "limits.max_connections");
    }

    #[test]
    fn the_calendar_file_is_checked_at_start() {
        assert_eq!(
            Config::from_layers(&[], &[])
                .unwrap()
                .calendar()
                .unwrap()
                .last_year(),
            2026
        );
        let dir = std::env::temp_dir().join(format!("gateway-calendar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("calendar.toml");
        std::fs::write(
            &file,
            "[[notice]]\nyear = 2027\ndocument = \"X\"\nissued = \"2026-11-01\"\nwork = [\"2027-01-06\"]\n",
        )
        .unwrap();
        let layer = format!("[calendar]\nfile = {:?}\n", file.display().to_string());
        let refused = Config::from_layers(&[&layer], &[]).unwrap_err();
        assert_eq!(refused.key, "calendar.file");
        assert!(refused.problem.contains("2027-01-06 is a Wed"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn store_locations() {
        assert_eq!(
            StoreLocation::parse("sqlite:data/g.db"),
            Some(StoreLocation::Sqlite("data/g.db".into()))
        );
        assert!(matches!(
            StoreLocation::parse("postgres://postgres@127.0.0.1/test"),
            Some(StoreLocation::Postgres(_))
        ));
        assert_eq!(StoreLocation::parse("sqlite:"), None);
        assert_eq!(StoreLocation::parse("mysql://x"), None);
    }
}
