"""`distilora predict`: one text, a whole file streamed in constant memory, or a corpus of shards on Ray."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from distilora.cli_options import AnyBackend, FileSetOpt, FileTextColumnOpt, file_mapping


def predict(run: Annotated[Path, typer.Argument(help="Run folder.")],
            text: Annotated[Optional[str], typer.Argument(help="A text to classify (or use --input).")] = None,
            pair: Annotated[Optional[str], typer.Option("--pair", help="The second text, for a run trained on text "
                                                        "pairs (data.text_pair_column).")] = None,
            input_: Annotated[Optional[str], typer.Option("--input", help="File of texts: CSV/TSV/JSONL/Parquet (the "
                                                          "run's text column, or --text-column) or .txt (one per "
                                                          "line); with --ray, a path or glob of such shards.")] = None,
            output: Annotated[Optional[str], typer.Option("--output", help="Where to write the input rows with "
                                                          "pred_label and score_<label> columns: .csv, .jsonl, "
                                                          ".parquet, or - for JSON lines on stdout; with --ray, a "
                                                          "folder that gets one shard per input shard.")] = None,
            text_column: FileTextColumnOpt = None,
            set_: FileSetOpt = None,
            backend: Annotated[AnyBackend, typer.Option(help="Engine (the ONNX ones need `distilora export`); auto = "
                                                        "the one export measured fastest.")] = "torch",
            batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
            threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: all; with --ray, per actor, "
                                                           "default 1).")] = None,
            ray: Annotated[Optional[str], typer.Option(help="Score the shards on Ray: 'local' starts Ray on this "
                                                       "machine, or a cluster address; shards already in --output "
                                                       "are skipped.")] = None,
            actors: Annotated[Optional[int], typer.Option(help="With --ray: engines scoring at once (default: the "
                                                          "cluster's CPUs / --threads).")] = None,
            shard_format: Annotated[Literal["parquet", "jsonl", "csv"], typer.Option(
                help="With --ray: format of the output shards.")] = "parquet") -> None:
    """Classify one text, a whole file (streamed in chunks, with progress), or a corpus of shards on Ray."""
    import json

    from distilora.errors import ConfigError

    if (text is None) == (input_ is None):
        raise ConfigError("give either a TEXT argument or --input FILE (with --output FILE)")
    if pair is not None and text is None:
        raise ConfigError("--pair goes with a TEXT argument; a file's second texts come from its column "
                          "data.text_pair_column (--set data.text_pair_column=COLUMN)")
    if input_ is not None and output is None:
        raise ConfigError("--input needs --output FILE (.csv, .jsonl or .parquet) or --output - (stdout)")
    mapping = file_mapping(text_column, set_)
    if mapping and input_ is None:
        raise ConfigError("--text-column and --set say how to read an --input file; a TEXT argument needs neither")
    if ray is not None:
        from distilora.scale.ray_scoring import score_corpus

        if output == "-":
            raise ConfigError("--ray writes shards into a folder: give --output DIR")
        score_corpus(run, input_, Path(output), address=ray, backend=backend, actors=actors, threads=threads or 1,
                     batch_size=batch_size, fmt=shard_format, data_overrides=mapping, say=typer.echo)
        return
    from distilora.inference.classifier import Classifier

    classifier = Classifier.load(run, backend=backend, threads=threads)
    if text is not None:
        prediction = classifier.predict([text], None if pair is None else [pair], batch_size=batch_size)[0]
        typer.echo(json.dumps({"label": prediction.label, "scores": prediction.scores}, ensure_ascii=False))
        return
    from distilora.config import file_data_config
    from distilora.inference.predict_file import predict_file
    from distilora.runfolder import RunFolder

    data = file_data_config(RunFolder(run).config_yaml, mapping)
    count = predict_file(classifier, input_, output, data, batch_size=batch_size)
    typer.echo(f"wrote {count} predictions to {'stdout' if output == '-' else output}", err=output == "-")
