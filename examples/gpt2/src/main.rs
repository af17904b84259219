//! `cargo run --release -p gpt2 -- [OPTIONS]`: GPT-2 text generation with
//! the `decoding` crate (see `--help`).

use std::process::ExitCode;

use gpt2::cli::{self, Args, USAGE};

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = if args.is_demo() { gpt2::demo::run(&args) } else { cli::generate(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: "the model failed at step 3: context overflow ...".
            // One line: a grammar engine's message may carry a state dump.
            let first = |text: String| text.lines().next().unwrap_or_default().to_string();
            let mut message = first(e.to_string());
            let mut source = e.source();
            while let Some(s) = source {
                message.push_str(&format!(": {}", first(s.to_string())));
                source = s.source();
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
