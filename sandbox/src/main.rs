//! `fieldcast-sandbox`: the local platform API and RTMP ingest, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use fieldcast_sandbox::{SandboxOptions, run_until_signal};

const USAGE: &str = "\
usage: fieldcast-sandbox [--port N] [--tls-port N] [--data-dir DIR] [--token T]... [--read-only-token T]... [--no-ingest]

  --port N               API port on 127.0.0.1 (default 0: a free port)
  --tls-port N           serve the API over TLS too, on this port (0: a free one), with a
                         certificate from a private CA written to DIR/tls-ca.pem
  --data-dir DIR         keep the database, uploads and recordings in DIR (default: a temp dir)
  --token T              a write token (repeatable; default sandbox-token)
  --read-only-token T    a read-only token (repeatable; default sandbox-readonly)
  --no-ingest            no RTMP ingest: live-session creation answers 503 ingest_unavailable";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fieldcast-sandbox: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run_until_signal(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fieldcast-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The options from the command line; `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<SandboxOptions>, String> {
    let mut opts = SandboxOptions::default();
    let mut tokens = Vec::new();
    let mut read_only = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value()?;
                opts.port = v
                    .parse()
                    .map_err(|_| format!("--port must be a number from 0 to 65535, got {v:?}"))?;
            }
            "--tls-port" => {
                let v = value()?;
                opts.tls_port = Some(v.parse().map_err(|_| {
                    format!("--tls-port must be a number from 0 to 65535, got {v:?}")
                })?);
            }
            "--data-dir" => opts.data_dir = Some(PathBuf::from(value()?)),
            "--token" => tokens.push(value()?),
            "--read-only-token" => read_only.push(value()?),
            "--no-ingest" if inline.is_none() => opts.ingest = false,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if !tokens.is_empty() {
        opts.tokens = tokens;
    }
    if !read_only.is_empty() {
        opts.read_only_tokens = read_only;
    }
    Ok(Some(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_every_option() {
        let opts = parse(&args(&[
            "--port",
            "8080",
            "--tls-port=0",
            "--data-dir=/tmp/x",
            "--token",
            "a",
            "--token",
            "b",
            "--read-only-token",
            "r",
            "--no-ingest",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(opts.port, 8080);
        assert_eq!(opts.tls_port, Some(0));
        assert_eq!(opts.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(opts.tokens, ["a", "b"]);
        assert_eq!(opts.read_only_tokens, ["r"]);
        assert!(!opts.ingest);
    }

    #[test]
    fn defaults_and_errors() {
        let opts = parse(&[]).unwrap().unwrap();
        assert_eq!(opts.tokens, ["sandbox-token"]);
        assert!(opts.ingest);
        assert_eq!(opts.tls_port, None);
        assert!(parse(&args(&["--help"])).unwrap().is_none());
        assert!(
            parse(&args(&["--tls-port", "443x"]))
                .unwrap_err()
                .contains("--tls-port")
        );
        assert!(
            parse(&args(&["--port", "http"]))
                .unwrap_err()
                .contains("--port")
        );
        assert!(
            parse(&args(&["--port"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&args(&["--bogus"])).unwrap_err().contains("--bogus"));
    }
}
