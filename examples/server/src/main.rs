//! `gpt2-server`: the OpenAI-compatible server on the command line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use gpt2::lookup::{SearchPaths, locate};
use gpt2_server::{Served, Server, ServerConfig};

const USAGE: &str = "\
usage: gpt2-server [--host ADDR] [--port N] [--model DIR] [--model-name NAME]
                   [--slots N] [--queue N] [--threads N] [--max-tokens N]

  --host ADDR        address to listen on (default 127.0.0.1, loopback only)
  --port N           port (default 8000; 0 picks a free one)
  --model DIR        a GPT-2 directory (config.json, model.safetensors);
                     default: the Hugging Face cache's gpt2, else the bundled model
  --model-name NAME  the name clients pass as `model` (default gpt2)
  --slots N          sequences decoded together at most (default 16)
  --queue N          requests waiting for a slot at most; more get 503 (default 64)
  --threads N        threads of the matrix products (default: the CPU count)
  --max-tokens N     the largest max_tokens a request may ask (default 1024)
";

struct Args {
    host: IpAddr,
    port: u16,
    model: Option<PathBuf>,
    config: ServerConfig,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        host: IpAddr::from([127, 0, 0, 1]),
        port: 8000,
        model: None,
        config: ServerConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ..ServerConfig::default()
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--host" => {
                args.host = value.parse().map_err(|_| format!("--host: not an address: {value}"))?
            }
            "--port" => {
                args.port = value.parse().map_err(|_| format!("--port: not a port: {value}"))?
            }
            "--model" => args.model = Some(PathBuf::from(value)),
            "--model-name" => args.config.model_name = value,
            "--slots" => args.config.slots = number(&value)?.max(1),
            "--queue" => args.config.queue = number(&value)?.max(1),
            "--threads" => args.config.threads = number(&value)?.max(1),
            "--max-tokens" => args.config.limits.max_tokens = number(&value)?.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    args.config.limits.max_sequences = args.config.limits.max_sequences.max(args.config.slots);
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(message) if message.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let located = match locate(args.model.as_deref(), &SearchPaths::from_env()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(note) = located.note() {
        eprintln!("{note}");
    }
    let served = match Served::from_dir(&located.dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::new(args.host, args.port);
    let server = match Server::start(addr, served, args.config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("serving {} on http://{}/v1", located.dir.display(), server.addr());
    tokio::select! {
        r = server.wait() => {
            if let Err(e) = r {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ = tokio::signal::ctrl_c() => eprintln!("stopping"),
    }
    ExitCode::SUCCESS
}
