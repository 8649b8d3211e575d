"""The run config: one YAML file <-> validated, typed objects. Every field is documented once, here.

The YAML file is the whole truth of a run (like a PEFT config describes what gets built): the resolved
config is saved into every run folder, and ``distilora init`` writes an annotated starter file generated
from the field descriptions below.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distilora.errors import ConfigError

BUNDLED_BACKBONE = "minilm"
# the experiment trackers Accelerate drives (accelerate.tracking); each needs its own package installed
Tracker = Literal["tensorboard", "mlflow", "wandb", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    train: str | None = Field(None, description="Training data: CSV/TSV/JSONL/Parquet file, `datasets` folder or hub name; empty = the bundled demo set.")
    validation: str | None = Field(None, description="Validation data (same formats); empty = a seeded stratified split of train.")
    test: str | None = Field(None, description="Test data (same formats); empty = a seeded stratified split of train when test_fraction > 0.")
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "datasets", "hub"] = Field("auto", description="File format; auto = from the extension (a folder is a `datasets` save_to_disk folder).")
    hub_split: str = Field("train", description="Split name to read when a data path is a hub dataset id (train/validation/test files each name their own).")
    text_column: str = Field("text", description="Column holding the text to classify.")
    text_pair_column: str | None = Field(None, description="Optional second text column (sentence pairs, e.g. prompt + response).")
    label_column: str | list[str] = Field("label", description="Label column; a list of 0/1 columns makes a multi-label task.")
    task: Literal["auto", "binary", "multiclass", "multilabel"] = Field("auto", description="Task type; auto = multilabel for a list of label columns or separated labels, else binary/multiclass by class count.")
    labels: list[str] | str | None = Field(None, description="Class names in order, or a path to a file with one per line; empty = sorted values seen in train.")
    label_encoding: Literal["name", "index"] = Field("name", description="name = cells hold class names/values; index = cells hold 0-based indices into `labels`.")
    label_separator: str | None = Field(None, description="Separator for several labels in one cell (e.g. ','), which makes the task multi-label.")
    delimiter: str | None = Field(None, description="Field delimiter for CSV/TSV; empty = ',' for .csv and tab for .tsv/.txt.")
    quoting: Literal["minimal", "none"] = Field("minimal", description="CSV quoting; 'none' reads quote characters as text (needed for SST-2 and GoEmotions).")
    header: bool = Field(True, description="Whether CSV/TSV files have a header row.")
    column_names: list[str] | None = Field(None, description="Column names for header-less CSV/TSV files.")
    encoding: str = Field("utf-8", description="Text encoding of CSV/TSV/JSONL files.")
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of train held out for validation when no validation file is given; 0 = hold nothing out (tiny data): the last step is kept, no threshold tuning or calibration.")
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="Share of train held out for test when no test file is given.")
    train_size: int | None = Field(None, gt=0, description="Use at most this many training rows (seeded, stratified); empty = all.")
    test_size: int | None = Field(None, gt=0, description="Test on at most this many test rows (seeded, stratified), e.g. to keep sweeps cheap; empty = all.")
    balance: Literal["none", "down", "up"] = Field("none", description="Re-balance the training split only: down-sample majority or up-sample minority classes (seeded).")
    max_length: int = Field(128, gt=8, le=8192, description="Tokens per text after truncation.")
    seed: int = Field(42, description="Seed for splits, sampling and balancing.")


class ModelConfig(_Section):
    backbone: str = Field(BUNDLED_BACKBONE, description="Encoder: 'minilm' (bundled all-MiniLM-L6-v2), a local Hugging Face folder, or a hub id.")
    method: Literal["lora", "full", "head"] = Field("lora", description="lora = PEFT adapters + trained head; full = all weights; head = frozen encoder, trained head.")
    dropout: float | None = Field(None, ge=0.0, lt=1.0, description="Override the backbone's hidden/attention dropout; empty = keep the backbone's.")
    pooling: Literal["cls", "mean"] = Field("cls", description="What the head reads: cls = the [CLS] token (transformers' own head); mean = the mean of the token states, as sentence-embedding backbones were trained, by one added encoder layer (BERT-type backbones; the few-shot recipe turns it on).")


class PeftConfig(_Section):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r) with rslora).")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: Union[Literal["auto", "all-linear"], list[str]] = Field("auto", description="'auto' = attention + FFN projections chosen per architecture; 'all-linear'; or module names.")
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA scaling (alpha / sqrt(r)).")
    use_dora: bool = Field(False, description="DoRA: learn each wrapped weight's magnitude apart from its LoRA direction (slower steps).")


class TrainConfig(_Section):
    epochs: float = Field(3, gt=0, description="Training epochs (fractions allowed).")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(32, gt=0, description="Global batch size (split across processes under accelerate launch).")
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimizer step.")
    max_batch_tokens: int | None = Field(None, gt=0, description="Run a batch whose padded size (texts x longest text) exceeds this many tokens as micro-batches within the same optimizer step: the same update (class-weighted losses are normalised per micro-batch), with activation memory bounded by the budget instead of the longest batch.")
    reuse_freed_memory: bool = Field(False, description="Training and `distilora ship` keep memory the C library frees for the next step instead of returning it to the kernel (glibc only; released when they end): long inputs (512 tokens) trained 1.2-1.7x faster a step, but freed blocks of varying sizes pile up, and a long run can need up to twice the memory; whenever the process passes 70% of the machine's memory, the free part is handed back (with a warning at the end).")
    gradient_checkpointing: bool = Field(False, description="Recompute each transformer layer's activations in the backward pass instead of keeping them: much less memory at long lengths (an mpnet teacher at 256-512 tokens), about a third more compute per step.")
    lr: float | None = Field(None, gt=0, description="Peak learning rate; empty = 5e-4 for lora, 5e-5 for full, 2e-3 for head.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not applied to biases and LayerNorm).")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps spent in linear warm-up.")
    scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description="Learning-rate decay after warm-up.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping norm; empty = no clipping.")
    precision: Literal["auto", "no", "fp16", "bf16"] = Field("auto", description="Mixed precision; auto = bf16/fp16 on GPUs that support it, fp32 on CPU; bf16 also works on CPU.")
    loss: Literal["auto", "ce", "focal", "bce"] = Field("auto", description="auto = cross-entropy (single-label) or BCE (multi-label); focal down-weights easy examples.")
    focal_gamma: float = Field(2.0, ge=0, description="Focal-loss gamma.")
    class_weights: Union[Literal["none", "auto"], list[float]] = Field("none", description="'auto' = inverse class frequency (normalised); or one weight per class.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing for cross-entropy.")
    group_by_length: bool = Field(True, description="Batch texts of similar length together (less padding, faster).")
    eval_every: Union[Literal["epoch"], int] = Field("epoch", description="Evaluate on validation every epoch or every N optimizer steps.")
    metric: str = Field("auto", description="Validation metric that picks the best checkpoint; auto = f1 (binary), macro_f1 (multiclass), micro_f1 (multilabel).")
    early_stopping_patience: int | None = Field(None, gt=0, description="Stop after this many evaluations without improvement; empty = never.")
    checkpoint_every: int = Field(200, gt=0, description="Save a resumable checkpoint every N optimizer steps (and at every evaluation).")
    seed: int = Field(42, description="Seed for initialisation, shuffling and dropout.")
    threads: int | None = Field(None, gt=0, description="CPU threads for torch; empty = torch's default.")
    report_to: list[Tracker] = Field(default_factory=list, description="Experiment trackers (Accelerate's): tensorboard (event files in RUN/logs/), mlflow (MLFLOW_TRACKING_URI, else MLflow's default store), wandb, comet_ml, aim, clearml, dvclive, swanlab, trackio; they log the config, losses, learning rate, throughput and metrics. Empty = none.")
    few_shot: Union[Literal["auto"], bool] = Field(False, description="Tiny-data recipe (8-64 texts per class): mean pooling and full tuning (where model.pooling / model.method are left unset), SetFit-style contrastive pairs (single-label), the head warm-started by logistic regression, then at least train.few_shot_epochs; auto = on when train has at most 64 texts per class. Off by default, so a run uses the method it names; turn it on for tiny data (BENCHMARKS.md, few-shot).")
    few_shot_epochs: float = Field(20, gt=0, description="Fewest epochs of the few-shot recipe (tiny sets need many passes).")

    @field_validator("precision", mode="before")
    @classmethod
    def _unquoted_no(cls, value: object) -> object:
        """YAML reads an unquoted `no` (`precision: no`, `--set train.precision=no`) as false: it means "no"."""
        return "no" if value is False else value


class EvalConfig(_Section):
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold for binary / multi-label when not tuned.")
    tune_threshold: str = Field("f1", description="Pick the threshold on validation: 'none', 'f1', 'precision:0.9' or 'recall:0.9' (binary and per label for multi-label).")
    calibrate: bool = Field(True, description="Fit temperature scaling on validation and use it for reported probabilities.")
    report: bool = Field(True, description="Write report.html and report.md into the run folder after training.")
    batch_size: int = Field(64, gt=0, description="Batch size for evaluation and prediction.")


class DistillConfig(_Section):
    teacher: str | None = Field(None, description="Teacher run folder for soft targets; empty = no soft-target distillation.")
    teacher_backend: Literal["auto", "torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8"] = Field("auto", description="Engine that scores texts for soft targets; auto = the teacher's exported fp32 ONNX graph when present (the fused one first), else torch; torch-bf16 is about 2x faster on CPUs with bf16.")
    unlabeled: Union[str, list[str], None] = Field(None, description="Unlabelled texts (one or more files, same formats and text columns as data.train, or .txt one per line) that train on the teacher's soft targets only; texts that are also training, validation or test texts are left out.")
    unlabeled_size: int | None = Field(None, gt=0, description="Use at most this many unlabelled texts (seeded sample); empty = all.")
    augment: int = Field(0, ge=0, le=16, description="Perturbed copies of each training text (words dropped, or one span kept) that the teacher scores and the student trains on with soft targets only; 0 = none.")
    augment_drop: float = Field(0.1, gt=0, lt=1, description="Share of words a distill.augment copy drops when it drops words.")
    ensemble: list[str] = Field(default_factory=list, description="More teacher runs on the same labels (e.g. the teacher's config trained with other seeds): each text's soft target is then the mean of the softened outputs of distill.teacher and these, at distill.temperature; empty = distill.teacher alone. Layers a student copies still come from distill.teacher.")
    fold_teachers: list[str] = Field(default_factory=list, description="Out-of-fold teacher runs (as `distilora ship` trains with ship.teacher_folds): each training text, and each distill.augment copy of it, takes its soft targets from the fold teacher whose test split held it, so the targets are answers the teacher did not fit; unlabelled files keep distill.teacher's. Empty = distill.teacher scores everything.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the hard-label loss; 1 - alpha goes to the KD loss.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature for KD (loss scaled by T^2).")
    student_layers: Union[Literal["all", "odd", "even"], str, list[int]] = Field("all", description="Layers the student keeps: all, odd, even, first-K, last-K, uniform-K, or a list of 0-based indices.")
    layers_from: Literal["auto", "teacher", "backbone"] = Field("auto", description="Where a layer-dropped student's layers come from; auto = the teacher's when it was trained on model.backbone, else the pretrained backbone (the teacher then gives soft targets only, across tokenizers).")
    aux_column: str | None = Field(None, description="Column of teacher scores (JSON list of [name, score] pairs or of numbers) for multi-target distillation.")
    aux_names: list[str] | None = Field(None, description="Names of the auxiliary targets in order; empty = read from the first JSON pairs.")
    aux_file: str | None = Field(None, description="File holding aux_column when the training file does not (same formats); its rows are matched to training rows on aux_key.")
    aux_key: str | None = Field(None, description="Column present in both the training file and aux_file that pairs their rows (e.g. an id); rows without a match keep only the main loss.")
    sigma: float = Field(0.8, ge=0, le=1, description="Weight of the main loss; 1 - sigma goes to the auxiliary-score loss.")


class ShipConfig(_Section):
    teacher: str | None = Field(None, description="`distilora ship`: an existing teacher run folder; empty = train one on ship.teacher_backbone.")
    teacher_backbone: str = Field("mpnet", description="`distilora ship`: backbone of the teacher it trains (LoRA unless ship.teacher_set says otherwise).")
    teacher_set: list[str] = Field(default_factory=list, description="`distilora ship`: KEY=VALUE overrides for the teacher stage only, e.g. [train.precision=bf16].")
    teacher_folds: int = Field(0, ge=0, le=10, description="`distilora ship`: also train this many fold teachers (the teacher's config, each on the other folds of the training split, validated on the same validation split) whose held-out answers are the students' soft targets (distill.fold_teachers); 0 = the teacher scores its own training texts.")
    students: list[Union[str, list[int]]] = Field(default_factory=lambda: ["all"], description="`distilora ship`: one student per entry, by its layers (all, first-3, odd, ...) on model.backbone.")
    export: list[Literal["onnx", "onnx-int8"]] = Field(default_factory=lambda: ["onnx", "onnx-int8"], description="`distilora ship`: engines each student is exported to and timed on.")

    @field_validator("teacher_folds")
    @classmethod
    def _folds_or_none(cls, value: int) -> int:
        if value == 1:
            raise ValueError("one fold holds out every text: use 0 (no fold teachers) or at least 2")
        return value


class RunConfig(_Section):
    name: str = Field("run", description="Run name, used for the default output folder.")
    output_dir: str | None = Field(None, description="Run folder to write; empty = runs/<name>.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    peft: PeftConfig = Field(default_factory=PeftConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    ship: ShipConfig = Field(default_factory=ShipConfig)

    @model_validator(mode="after")
    def _check_threshold_rule(self) -> "RunConfig":
        parse_threshold_rule(self.eval.tune_threshold)
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    def learning_rate(self) -> float:
        """The configured learning rate, or the method's default (LoRA needs ~10x full fine-tuning's)."""
        if self.train.lr is not None:
            return self.train.lr
        return {"lora": 5e-4, "full": 5e-5, "head": 2e-3}[self.model.method]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def parse_threshold_rule(rule: str) -> tuple[str, float | None]:
    """Split 'precision:0.9' into ('precision', 0.9); 'f1' and 'none' carry no target."""
    kind, _, target = rule.partition(":")
    if kind in ("none", "f1") and not target:
        return kind, None
    if kind in ("precision", "recall") and target:
        try:
            value = float(target)
        except ValueError:
            value = -1.0
        if 0 < value <= 1:
            return kind, value
    raise ConfigError(
        f"eval.tune_threshold: {rule!r} is not valid; use 'none', 'f1', 'precision:0.9' or 'recall:0.9'"
    )


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        section_path, key = first["loc"][:-1], str(first["loc"][-1])
        model: type[BaseModel] = RunConfig
        for part in section_path:
            annotation = model.model_fields[str(part)].annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else model
        close = difflib.get_close_matches(key, list(model.model_fields), n=1)
        hint = f"; did you mean '{'.'.join([*map(str, section_path), close[0]])}'?" if close else ""
        valid = ", ".join(model.model_fields)
        return f"{source}: unknown key '{where}'{hint} (valid keys here: {valid})"
    return f"{source}: {where}: {first['msg']} (got {first.get('input')!r})"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ['peft.r=16', 'train.lr=5e-4'] into a nested dict; values are parsed as YAML scalars/lists."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set peft.r=16")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (int, float)) and raw.strip().lower() in ("inf", "nan"):
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: '{part}' is both a value and a section")
        node[parts[-1]] = value
    return nested


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(raw: dict[str, Any], overrides: list[str] | None = None, source: str = "config", *,
                 flags: dict[str, str] | None = None) -> RunConfig:
    """Validate a raw mapping plus KEY=VALUE overrides into a RunConfig, with one-line errors. An override is blamed
    as `--set KEY=VALUE` unless flags names the option its KEY came from ({'peft.r': '--grid'})."""
    merged = _deep_merge(raw, parse_overrides(overrides or []))
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as err:
        blamed = _blamed_source(err, overrides or [], source, flags or {})
        raise ConfigError(_format_validation_error(err, blamed)) from None


def _blamed_source(err: ValidationError, overrides: list[str], source: str, flags: dict[str, str]) -> str:
    """The override that set the field at fault ('--set train.lr=abc', '--grid peft.r=abc'), else the config file."""
    where = ".".join(str(part) for part in err.errors()[0]["loc"])
    for pair in reversed(overrides):
        key = pair.partition("=")[0].strip()
        if where == key or where.startswith(key + "."):
            return f"{flags.get(key, '--set')} {pair}"
    return source


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *,
                flags: dict[str, str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults when path is None) and apply overrides (flags: as in
    build_config)."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found; create one with `distilora init {path}`")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (data:, model:, ...) at the top level")
        raw = loaded or {}
    return build_config(raw, overrides, source, flags=flags)


def file_data_config(config_yaml: str | Path, overrides: list[str] | None = None) -> DataConfig:
    """How a finished run reads another file of texts (eval, predict, select): its own data section, changed by the
    file's mapping as data.* overrides ('data.text_column=body', 'data.delimiter=;'), so the file need not be
    rewritten to match the training file."""
    outside = [o for o in overrides or [] if not o.strip().startswith("data.")]
    if outside:
        raise ConfigError(f"--set {outside[0]}: only data.* fields say how to read this file")
    return load_config(config_yaml, overrides).data


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """'train.lr: 0.001 -> 0.0005' for every field whose value differs between two config mappings."""
    changes = []
    for key in sorted(set(old) | set(new), key=lambda k: (k not in new, k)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changes


def annotated_yaml(config: RunConfig | None = None) -> str:
    """A starter config: every field with its value and its one-line description as a comment."""
    config = config or RunConfig()
    lines = ["# distilora run config. Every key is optional; shown values are the defaults.",
             "# Override any field on the command line: distilora train config.yaml --set peft.r=8 train.lr=1e-3", ""]

    def emit(model: BaseModel, indent: str) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                lines.append(f"{indent}{name}:")
                emit(value, indent + "  ")
                continue
            dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
            dumped = dumped.removesuffix("\n...").removesuffix("...").strip()
            if value is None:
                dumped = "null"
            lines.append(f"{indent}{name}: {dumped}  # {field.description}")

    emit(config, "")
    return "\n".join(lines) + "\n"
