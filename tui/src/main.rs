//! `osiris-console`: parses arguments, sets up the terminal and runs the console's event loop.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

/// The on-site console of the OsirisCare appliance.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The daemon's local API socket.
    #[arg(long, env = "OSIRIS_SOCKET", default_value = api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Render the first frame and 200 home redraws off-screen, print the times and exit.
    #[arg(long)]
    bench_startup: bool,
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args = Args::parse();
    let res = if args.bench_startup {
        bench(started)
    } else {
        run(&args)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "osiris-console: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let daemon = Arc::new(api::Client::new(&args.socket));
    // `try_init` enters the alternate screen and raw mode and installs a panic hook that
    // restores the terminal before the panic message is printed.
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let res = osiris_console::runtime::run(&mut terminal, daemon);
    ratatui::try_restore().context("restoring the terminal")?;
    res
}

fn bench(started: Instant) -> anyhow::Result<()> {
    let report = osiris_console::bench::run(started, 200);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "first frame (80x24, recorded status): {:.2} ms",
        report.first_frame.as_secs_f64() * 1000.0
    )?;
    writeln!(
        out,
        "home redraw (160x48, full repaint, n={}): mean {:.2} ms, max {:.2} ms",
        report.redraws,
        report.redraw_mean.as_secs_f64() * 1000.0,
        report.redraw_max.as_secs_f64() * 1000.0
    )?;
    Ok(())
}
