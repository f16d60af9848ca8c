//! `fieldcast qa`: the field lab (root). Scenarios played on an emulated phone behind an
//! emulated network, with a readable report; two runs compared; the device profiles
//! calibrated. See docs/QA.md, "Field lab".

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use fieldcast_qa::device::DeviceProfile;
use fieldcast_qa::record::RunRecord;
use fieldcast_qa::run::{RunError, RunOptions};
use fieldcast_qa::scenario::Scenario;
use fieldcast_sandbox::netlab::Profile;

/// `fieldcast qa ...`
#[derive(Subcommand)]
pub enum QaCommand {
    /// Play a scenario (a shipped name such as market-day, or a JSON file) and write its report.
    /// Exit status: 0 when every assertion passed, 1 when one failed, 2 when the lab cannot run
    /// here (it needs root).
    Run {
        /// The scenario: a shipped name or a file.
        scenario: String,
        /// Where to write the report (default: a new directory under /tmp).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Another device profile than the scenario's (e.g. desktop, to compare).
        #[arg(long)]
        device: Option<String>,
        /// Another network profile than the scenario's.
        #[arg(long)]
        network: Option<String>,
    },
    /// Put two runs side by side (directories written by `qa run`): a table here and
    /// compare.html in --out (default: the second run's directory).
    Compare {
        /// The first run (the baseline).
        a: PathBuf,
        /// The second run.
        b: PathBuf,
        /// Where to write compare.html.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure x264 ultrafast frames per second inside each device profile (root).
    Calibrate {
        /// The profiles to measure (default: every shipped one).
        devices: Vec<String>,
        /// Seconds of video per measurement.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// List the shipped scenarios, device profiles and network profiles.
    List,
    /// The seller's app of a run, driven by JSON commands on stdin (started by `qa run`).
    #[command(hide = true)]
    App {
        /// The platform API root as reached from the app.
        #[arg(long)]
        api: String,
        /// The platform's bearer token.
        #[arg(long)]
        token: String,
        /// The app's data directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs a `qa` command; its exit status.
pub fn run(command: QaCommand) -> ExitCode {
    match command {
        QaCommand::Run {
            scenario,
            out,
            device,
            network,
        } => run_scenario(&scenario, out, device, network),
        QaCommand::Compare { a, b, out } => compare(a, b, out),
        QaCommand::Calibrate { devices, seconds } => calibrate(devices, seconds),
        QaCommand::List => {
            println!("scenarios: {}", Scenario::builtin_names().join(", "));
            println!("devices:   {}", DeviceProfile::builtin_names().join(", "));
            println!("networks:  {}", Profile::builtin_names().join(", "));
            ExitCode::SUCCESS
        }
        QaCommand::App { api, token, dir } => {
            let code = fieldcast_qa::app::run(&fieldcast_qa::app::AppOptions { api, token, dir });
            ExitCode::from(code.clamp(0, 255) as u8)
        }
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn run_scenario(
    name: &str,
    out: Option<PathBuf>,
    device: Option<String>,
    network: Option<String>,
) -> ExitCode {
    let scenario = match Scenario::load(name) {
        Ok(scenario) => scenario,
        Err(e) => return fail(e),
    };
    println!(
        "qa: {} on {} / {}, {} s",
        scenario.name,
        device.as_deref().unwrap_or(&scenario.device),
        network.as_deref().unwrap_or(&scenario.network),
        scenario.duration_s
    );
    // Ctrl-C or SIGTERM end the run early, still cleaning up and reporting what it has.
    fieldcast_qa::stop::catch_stop_signals();
    let options = RunOptions {
        out,
        device,
        network,
        fieldcast: None,
    };
    match fieldcast_qa::run::run(&scenario, &options) {
        Ok((record, dir)) => {
            for check in &record.assertions {
                println!(
                    "  {} {}: {} (target: {})",
                    if check.pass { "PASS" } else { "FAIL" },
                    check.name,
                    check.measured,
                    check.target
                );
            }
            println!("{}", record.summary_line());
            println!("qa: report {}", dir.join("report.html").display());
            if record.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(RunError::Unavailable(reason)) => {
            eprintln!("qa: the field lab cannot run here: {reason}");
            ExitCode::from(2)
        }
        Err(e) => fail(e),
    }
}

fn compare(a: PathBuf, b: PathBuf, out: Option<PathBuf>) -> ExitCode {
    let (run_a, run_b) = match (RunRecord::read(&a), RunRecord::read(&b)) {
        (Ok(run_a), Ok(run_b)) => (run_a, run_b),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let comparison = fieldcast_qa::report::compare(&run_a, &run_b);
    println!("{comparison}");
    let dir = out.unwrap_or(b);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(format!("{}: {e}", dir.display()));
    }
    match fieldcast_qa::report::write_comparison(&comparison, &run_a, &run_b, &dir) {
        Ok(report) => {
            println!("qa: comparison {}", report.html.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn calibrate(devices: Vec<String>, seconds: f64) -> ExitCode {
    let names: Vec<String> = match devices.is_empty() {
        true => DeviceProfile::builtin_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
        false => devices,
    };
    if let Err(reason) = fieldcast_qa::cage::DeviceCage::available() {
        eprintln!("qa: cannot calibrate here: {reason}");
        return ExitCode::from(2);
    }
    for name in names {
        let profile = match DeviceProfile::load(&name) {
            Ok(profile) => profile,
            Err(e) => return fail(e),
        };
        match fieldcast_qa::calibrate::calibrate(&profile, seconds) {
            Ok(c) => {
                println!("{c}");
                println!(
                    "  720p: {} frames in {:.2} s, {:.2} CPU s ({:.1} frames per host CPU second); \
                     480p: {} frames in {:.2} s, {:.2} CPU s",
                    c.p720.frames,
                    c.p720.seconds,
                    c.p720.cpu_seconds,
                    c.p720.frames as f64 / c.p720.cpu_seconds,
                    c.p480.frames,
                    c.p480.seconds,
                    c.p480.cpu_seconds
                );
            }
            Err(e) => return fail(format!("{name}: {e}")),
        }
    }
    ExitCode::SUCCESS
}
