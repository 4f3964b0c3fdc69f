//! `cnnlab-torch`: the `cnnlab` commands that need libtorch (the light `cnnlab`
//! binary hands them over): train and evaluate convolutional image classifiers from
//! experiment files. Exit codes: see `exit.rs`.

mod checks;
mod commands;
mod ensemble;
mod exit;
mod process;
mod signals;
mod weights;

use std::process::ExitCode;

use clap::Parser;
use cnnlab_cli::args::{Cli, Command, DataCommand};
use cnnlab_cli::{data_stats, metrics_cmd};

use crate::exit::Outcome;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Train(_) | Command::LrFind { .. } | Command::Tune { .. }) {
        cnnlab_cli::quit_quietly_on_broken_pipe();
    }
    process::init_logging(cli.verbose, cli.quiet);
    process::keep_freed_memory();
    process::use_thread_budget(cli.threads);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(signals::exit_code),
    }
}

/// One function per command (in `commands/`), as ripgrep's `main` -> `try_main`.
/// The commands that read datasets or weights or hold a run folder know exit codes
/// beyond 1 (a missing dataset, a held lock, a signal); every other command's error is exit 1.
fn run(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::Train(args) => commands::train::command(args, cli.quiet),
        Command::LrFind { config, start, end, steps, out, data_dir } => {
            commands::lr_find::lr_find_command(commands::lr_find::LrFindArgs {
                config,
                start: *start,
                end: *end,
                steps: *steps,
                out: out.as_deref(),
                data_dir,
                quiet: cli.quiet,
            })
        }
        Command::Pretrained { backbone, weights, out, data_dir } => {
            weights::imagenet_run(backbone, weights.as_deref().unwrap_or(backbone), out, data_dir)
        }
        Command::Summary { config, classes, data_dir } => {
            commands::predict::summary_command(config, data_dir, *classes)
        }
        Command::Data(DataCommand::Export { config, out, data_dir }) => {
            commands::data::export_command(config, data_dir, out, cli.quiet)
        }
        Command::Tune { file, out, data_dir, shard, jobs, check } => {
            commands::tune::tune_command(commands::tune::TuneArgs {
                file,
                out: out.as_deref(),
                data_dir,
                quiet: cli.quiet,
                shard: shard.is_some(),
                jobs: *jobs,
                check: *check,
            })
        }
        _ => Ok(run_plain(cli)?),
    }
}

fn run_plain(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Train(_)
        | Command::LrFind { .. }
        | Command::Pretrained { .. }
        | Command::Summary { .. }
        | Command::Data(DataCommand::Export { .. })
        | Command::Tune { .. } => unreachable!("run() answers them"),
        Command::Metrics { file, json } => metrics_cmd::run(file, *json),
        Command::Compare { a, b, metric, resamples, seed, json } => {
            let boot = cnnlab_metrics::stats::Bootstrap { resamples: *resamples, seed: *seed, ..Default::default() };
            cnnlab_cli::compare::run(a, b, metric, &boot, *json)
        }
        Command::Status { runs, json } => cnnlab_cli::status::run(runs, *json),
        Command::Info { json } => commands::info::command(*json),
        Command::Report { runs, comparisons } => cnnlab_cli::report::run(runs, comparisons),
        Command::Predict { run, inputs, top, submission, tta, best, last: _ } => {
            commands::predict::predict_command(commands::predict::PredictArgs {
                run,
                inputs,
                top: *top,
                submission: submission.as_deref(),
                tta: tta.as_deref().map(tta_from_name),
                best: *best,
            })
        }
        Command::Evaluate { run, dir, tta, best, out, json } => {
            commands::predict::evaluate_command(commands::predict::EvaluateArgs {
                run,
                dir,
                tta: tta.as_deref().map(tta_from_name),
                best: *best,
                out: out.as_deref(),
                json: *json,
                quiet: cli.quiet,
            })
        }
        Command::Export { run, format, out, best } => commands::export::export_command(commands::export::ExportArgs {
            run,
            format,
            out: out.as_deref(),
            best: *best,
        }),
        Command::Explain { run, images, layer, class, out } => {
            commands::explain::explain_command(commands::explain::ExplainArgs {
                run,
                images,
                layer: *layer,
                class: class.as_deref(),
                out: out.as_deref(),
            })
        }
        Command::Data(DataCommand::Stats { dir, json, plot }) => data_stats::stats(dir, *json, plot.as_deref()),
        Command::Serve { runs, host, port, max_batch, max_wait_ms, max_body_mb } => {
            commands::serve::serve_command(commands::serve::ServeArgs {
                runs,
                host,
                port: *port,
                max_batch: *max_batch,
                max_wait_ms: *max_wait_ms,
                max_body_mb: *max_body_mb,
                threads: cnnlab_cli::threads::thread_budget(cli.threads, |k| std::env::var(k).ok()).threads,
            })
        }
    }
}

/// A `--tta` value, which clap has checked against `TTA_NAMES`.
fn tta_from_name(name: &str) -> cnnlab_train::Tta {
    cnnlab_train::Tta::from_name(name).unwrap_or_else(|| unreachable!("clap accepts only TTA_NAMES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` describes every command and every argument of every command.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !["help", "version"].contains(&id) && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        use clap::CommandFactory;
        let mut missing = Vec::new();
        walk(&Cli::command(), "cnnlab", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn the_light_binarys_tta_names_are_trains() {
        assert_eq!(cnnlab_cli::args::TTA_NAMES, cnnlab_train::Tta::ALL.map(|t| t.name()));
    }
}
