//! The `agentwire` binary. Thin: it parses arguments and environment, builds the library pieces and
//! runs them. Run with `cargo run --release -- demo`, or `cargo run --release -- serve --help`.

mod analyze;
mod check;
mod cli;
mod demo;
mod duration;
mod ingest;
mod load;
mod serve;
mod token;

use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc instead of the system allocator: a loaded server allocates and frees many small
/// buffers on several threads, where glibc's malloc spent about a fifth of the CPU
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the process waits, once its command is done, for blocking work still running (a
/// tenant's load no run waits for any more): the server has drained and recorded every run's
/// end by then, so nothing is lost, and a SIGTERM ends the process within the drain timeout.
const BLOCKING_WORK_GRACE: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing();
    // Offline analysis is synchronous CPU work: it runs on this thread, with no async runtime.
    let args = match args.command {
        cli::Command::Analyze(analyze) => return exit_code(analyze::run(analyze)),
        command => cli::Cli { command },
    };
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
    // check and load end with their own exit codes (0, 1, 2, 99).
    let args = match args.command {
        cli::Command::Check(check) => return runtime.block_on(check::run(check)),
        cli::Command::Load(load) => return runtime.block_on(load::run(load)),
        command => cli::Cli { command },
    };
    let result = runtime.block_on(async move {
        match args.command {
            cli::Command::Serve(args) => serve::run(args).await,
            cli::Command::Demo(args) => demo::run(args).await,
            cli::Command::Token(args) => token::run(args),
            cli::Command::Ingest(args) => ingest::run(args).await,
            cli::Command::Analyze(args) => analyze::run(args),
            // Handled above with their own exit codes.
            cli::Command::Check(_) | cli::Command::Load(_) => Ok(()),
        }
    });
    // Dropping the runtime would wait for every blocking task, however long.
    runtime.shutdown_timeout(BLOCKING_WORK_GRACE);
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // 1: the database could not be reached, so the same command may work later
            // (a supervisor should retry); 2: anything else, which needs a change first.
            let unreachable = err.chain().any(|cause| {
                cause
                    .downcast_ref::<agentwire_store::StoreError>()
                    .is_some_and(|e| matches!(e, agentwire_store::StoreError::Unavailable(_)))
                    || cause
                        .downcast_ref::<agentwire_engine::EngineError>()
                        .is_some_and(|e| matches!(e, agentwire_engine::EngineError::Unavailable(_)))
            });
            ExitCode::from(if unreachable { 1 } else { 2 })
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
