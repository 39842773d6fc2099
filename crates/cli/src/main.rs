//! The `agentwire` binary. Thin: it parses arguments and environment, builds the library pieces and
//! runs them. Run with `cargo run --release -- demo`, or `cargo run --release -- serve --help`.

mod cli;
mod demo;
mod duration;
mod ingest;
mod serve;
mod token;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match args.command {
            cli::Command::Serve(args) => serve::run(args).await,
            cli::Command::Demo(args) => demo::run(args).await,
            cli::Command::Token(args) => token::run(args),
            cli::Command::Ingest(args) => ingest::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
