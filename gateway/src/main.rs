//! The exchange gateway's command line.
//!
//! Today it holds the developer tools over the adapters: list them, decode a native message
//! into canonical events (or the list of what is wrong with it), and print realistic sample
//! messages. The network service (`serve`, `demo`) is built on top of these in the gateway-core
//! issue; see README.md for the status.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use adapters::{Adapter, DecodeError, Syntax};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use schemas::BureauId;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Shanghai construction-approval data-exchange gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the bureau adapters and their native formats.
    Adapters,
    /// Decode a bureau's native message and print the canonical events as JSON, or every
    /// problem found in it (exit status 2).
    Decode {
        /// The bureau whose format the message is in.
        #[arg(long = "from")]
        bureau: BureauId,
        /// The content type the message would be sent with (default: the format's).
        #[arg(long)]
        content_type: Option<String>,
        /// The message file.
        file: PathBuf,
    },
    /// Print realistic native messages of a bureau, as its system would send them.
    Sample {
        /// The bureau whose format to write.
        #[arg(long = "from")]
        bureau: BureauId,
        /// Seed of the generator: the same seed gives the same messages.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many messages.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

fn adapter(bureau: BureauId) -> Result<&'static dyn Adapter> {
    adapters::for_bureau(bureau).with_context(|| format!("no adapter registered for {bureau}"))
}

fn list_adapters() {
    println!(
        "{:<16} {:<18} {:<16} {:<6} {:>10}",
        "bureau", "media type", "syntax", "batch", "max bytes"
    );
    for adapter in adapters::ALL {
        let format = adapter.format();
        let syntax = match format.syntax {
            Syntax::Xml { encoding } => format!("XML {}", encoding.name()),
            Syntax::Json => "JSON".to_owned(),
        };
        println!(
            "{:<16} {:<18} {:<16} {:<6} {:>10}",
            adapter.bureau().as_str(),
            format.media_type,
            syntax,
            if format.batch { "yes" } else { "no" },
            format.max_message_bytes
        );
    }
}

fn decode(bureau: BureauId, content_type: Option<String>, file: PathBuf) -> Result<ExitCode> {
    let adapter = adapter(bureau)?;
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let content_type = content_type.unwrap_or_else(|| adapter.format().media_type.to_owned());
    match adapter.decode(&body, &content_type) {
        Ok(events) => {
            println!("{}", serde_json::to_string_pretty(&events)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(DecodeError::Invalid(errors)) => {
            eprintln!("{}: {} invalid field(s)", file.display(), errors.len());
            println!("{}", serde_json::to_string_pretty(&errors)?);
            Ok(ExitCode::from(2))
        }
        Err(error) => {
            eprintln!("{}: rejected: {error}", file.display());
            Ok(ExitCode::from(2))
        }
    }
}

fn sample(bureau: BureauId, seed: u64, count: usize) -> Result<ExitCode> {
    let adapter = adapter(bureau)?;
    let mut rng = fastrand_rng(seed);
    let mut out = std::io::stdout().lock();
    for _ in 0..count {
        out.write_all(&adapter.sample(&mut rng).body)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fastrand_rng(seed: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed)
}

fn main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Adapters => {
            list_adapters();
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode {
            bureau,
            content_type,
            file,
        } => decode(bureau, content_type, file),
        Command::Sample {
            bureau,
            seed,
            count,
        } => sample(bureau, seed, count),
    }
}
