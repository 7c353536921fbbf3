//! The `mamori` binary: parses the command line and wires the parts together. No
//! detection logic lives here (see docs/ARCHITECTURE.md).

mod cmd;
mod ctx;
mod progress;

use clap::{Parser, Subcommand};
use mamori_core::{Lang, Severity};
use std::path::PathBuf;
use std::process::ExitCode;

/// mamori (守り): tamper, skimmer and attack detection for web shops.
#[derive(Parser, Debug)]
#[command(name = "mamori", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file (default ./mamori.toml; env MAMORI_CONFIG).
    #[arg(long, global = true, env = "MAMORI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Language of messages and reports: ja or en (default: config `lang`, then LANG).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<Lang>,
    /// Print findings as JSON Lines on stdout (nothing else goes to stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Exit 1 when a finding is at or above this severity (default: config, else high).
    #[arg(long, global = true, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// No progress bars or notes on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Detect the shop, write mamori.toml and take the first signed baseline.
    Init(cmd::init::InitArgs),
    /// Rebuild the baseline; with changes present, --approve accepts them.
    Baseline(cmd::baseline::BaselineArgs),
    /// Accept the current state of some files or directories as known-good.
    Approve(cmd::approve::ApproveArgs),
    /// Run a release command; what it changes is approved and re-baselined, and a
    /// running `watch` holds its responses meanwhile.
    Deploy(cmd::approve::DeployArgs),
    /// Compare the shop's files with the baseline (and verify the store's integrity).
    Check(cmd::check::CheckArgs),
    /// Watch the shop in real time: findings within milliseconds, restore or deny for
    /// altered payment code.
    Watch(cmd::watch::WatchArgs),
    /// Find attacks in web access logs: per request, brute force, credential stuffing,
    /// card testing and the slow many-IP campaign; optionally block them.
    Logs(cmd::logs::LogsArgs),
    /// Find data leaving the shop in connection logs: new destinations, beacons,
    /// sends that follow checkouts, volume; print or install an egress allow-list.
    Egress(cmd::egress::EgressArgs),
    /// Audit the server against the incident's checklist (20-1.1 … 20-1.9) and the
    /// card-security guideline; a score per checklist item.
    Audit(cmd::posture::AuditArgs),
    /// Record a signed attestation for an item no machine can check.
    Attest(cmd::posture::AttestArgs),
    /// Make an age key pair for sealing (keep the identity off the server).
    Keygen,
    /// Encrypt exports and backups (age format) so stolen copies cannot be read.
    Seal(cmd::posture::SealArgs),
    /// Decrypt a sealed file.
    Unseal(cmd::posture::UnsealArgs),
    /// Replay the founding incident on a built-in demo shop and show what mamori reports.
    Demo(cmd::demo::DemoArgs),
    /// Internal: compile the config's scan rules and write them to stdout. `watch` runs
    /// this in a child process so the rule compiler never becomes part of the daemon.
    #[command(name = "compile-rules", hide = true)]
    CompileRules,
    /// Scan files for skimmers, webshells, obfuscated code and card-number stashes
    /// (YARA rules plus a card-number finder); needs no config.
    Scan(cmd::scan::ScanArgs),
    /// Watch the payment pages as customers' browsers receive them (PCI DSS 6.4.3 /
    /// 11.6.1): approve, check, show the inventory, CSP advice and report endpoint.
    Page(cmd::page::PageArgs),
    /// Show findings stored in the event log.
    Events(cmd::events::EventsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version are not errors; usage errors exit 2, as everywhere.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let ctx = match ctx::Ctx::new(&cli) {
        Ok(c) => c,
        Err(e) => return ctx::report_error(Lang::resolve(cli.lang, None), &e),
    };
    let result = match &cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Baseline(a) => cmd::baseline::run(&ctx, a),
        Command::Check(a) => cmd::check::run(&ctx, a),
        Command::Approve(a) => cmd::approve::approve(&ctx, a),
        Command::Deploy(a) => cmd::approve::deploy(&ctx, a),
        Command::Events(a) => cmd::events::run(&ctx, a),
        Command::Scan(a) => cmd::scan::run(&ctx, a),
        Command::CompileRules => cmd::scan::compile_rules(&ctx),
        Command::Page(a) => cmd::page::run(&ctx, a),
        Command::Demo(a) => cmd::demo::run(&ctx, a),
        Command::Watch(a) => cmd::watch::run(&ctx, a),
        Command::Logs(a) => cmd::logs::run(&ctx, a),
        Command::Audit(a) => cmd::posture::audit(&ctx, a),
        Command::Attest(a) => cmd::posture::attest(&ctx, a),
        Command::Keygen => cmd::posture::keygen(&ctx),
        Command::Seal(a) => cmd::posture::seal_cmd(&ctx, a),
        Command::Unseal(a) => cmd::posture::unseal_cmd(&ctx, a),
        Command::Egress(a) => cmd::egress::run(&ctx, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => ctx::report_error(ctx.lang, &e),
    }
}
