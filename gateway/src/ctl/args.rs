//! The command line of `gateway ctl`: the node and the operator certificate to reach it with,
//! and the commands.

use std::path::PathBuf;

use schemas::BureauId;

/// `gateway ctl` and its options.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The node: `https://HOST:PORT`.
    #[arg(
        long,
        env = "GATEWAY_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    pub url: String,
    /// The exchange CA's certificate (PEM), to verify the node.
    #[arg(
        long,
        env = "GATEWAY_CA",
        default_value = "data/pki/ca.pem",
        global = true
    )]
    pub ca: PathBuf,
    /// An operator certificate (PEM).
    #[arg(
        long,
        env = "GATEWAY_CERT",
        default_value = "data/pki/operator.pem",
        global = true
    )]
    pub cert: PathBuf,
    /// Its key (PEM).
    #[arg(
        long,
        env = "GATEWAY_KEY",
        default_value = "data/pki/operator.key",
        global = true
    )]
    pub key: PathBuf,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The commands of `gateway ctl`.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// The node and the exchange at a glance: nodes, health counts, backlog, what is wrong.
    Status,
    /// Every bureau's health with the reason, backlog, failures, circuit, pause, certificate.
    Bureaus,
    /// Dead letters: list, show one with its attempts, replay, purge.
    Dlq {
        /// What to do with them.
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Hold deliveries to a bureau in the store (in order, nothing lost) until `resume`.
    Pause {
        /// The bureau, e.g. `water`.
        bureau: BureauId,
    },
    /// Deliver what was held for a bureau, in order.
    Resume {
        /// The bureau.
        bureau: BureauId,
    },
    /// One message's story: received, routed, every delivery attempt.
    Trace {
        /// The gateway's message id (`gw-…`).
        message_id: String,
    },
    /// A project's or a case's timeline across every bureau.
    Case {
        /// A project code (`YYMM-DDDDDD-II-TT-NNNNNN`) or a bureau's case id.
        #[arg(value_name = "PROJECT_CODE|CASE_ID")]
        lookup: String,
    },
    /// The monthly bulletin (月度通報): per bureau and per flow, against the working-day limits.
    Report {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        month: String,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// One-stop joint cases with each branch's working-day clock: one by id, or a project's.
    Joint {
        /// A joint case id (`jc-…`) or a project code.
        #[arg(value_name = "JOINT_CASE_ID|PROJECT_CODE")]
        lookup: String,
    },
    /// The cases past their working-day due date (branches, applications and cases on their own
    /// clock), most overdue first, as the node's last look at the clocks found them.
    Overdue,
    /// Shared credit lists: the latest listings and the cases matched against them, or one
    /// enterprise's entries (active and past) with who listed them.
    Credit {
        /// A unified social credit code (18 characters) to look up.
        #[arg(value_name = "CREDIT_CODE")]
        code: Option<String>,
        /// How many of the latest listings and of the latest matches (1-200).
        #[arg(long, default_value_t = 20, conflicts_with = "code")]
        limit: usize,
    },
}

/// `gateway ctl dlq …`.
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// The oldest dead letters.
    List {
        /// Only this subscriber's.
        #[arg(long)]
        subscriber: Option<BureauId>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One dead letter with its attempt history.
    Show {
        /// Its id.
        id: i64,
    },
    /// Make dead letters pending again (ids, or every one of a subscriber).
    Replay {
        /// Their ids.
        ids: Vec<i64>,
        /// Every dead letter of this subscriber instead (in calls of 1000, the oldest first).
        #[arg(long, conflicts_with = "ids")]
        subscriber: Option<BureauId>,
    },
    /// Delete dead letters for good (the messages and events stay on record).
    Purge {
        /// Their ids.
        ids: Vec<i64>,
        /// Every dead letter of this subscriber instead (in calls of 1000, the oldest first).
        #[arg(long, conflicts_with = "ids")]
        subscriber: Option<BureauId>,
    },
}
