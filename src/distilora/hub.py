"""`distilora push`: a finished run folder to a Hugging Face Hub model repository, through huggingface_hub.

The repository gets the run folder as it is (model card README.md at the top, model/, metrics, report, ONNX graphs
when exported), so `Classifier.load(snapshot_download(REPO_ID))` works on any machine, and plain PEFT loads
`from_pretrained(REPO_ID, subfolder="model")`. Resume checkpoints and unfinished folders never leave the machine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from distilora.errors import DistiloraError
from distilora.runfolder import RunFolder

NEVER_PUSHED = ["checkpoints/**", "*.partial/**", "**/.*.tmp", "**/.staging/**"]


def push_run(run_dir: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
             token: str | None = None, commit_message: str | None = None) -> str:
    """Create the repository if needed and upload the run folder as one commit; returns the commit's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = RunFolder(run_dir)
    info = folder.info()  # an unfinished or damaged run fails here, before any network call
    if not folder.card_md.is_file():
        raise DistiloraError(f"{folder.path}: no model card (README.md); write it with `distilora report "
                             f"{folder.path}`, then push")
    api = HfApi(token=token)
    # HfHubHTTPError derives from its HTTP client's base error (requests', httpx's or httpx2's, by huggingface_hub
    # version), which is also what a refused or unresolvable connection raises: catch that family, not only OSError
    failures = (HfHubHTTPError, *HfHubHTTPError.__bases__, OSError, ValueError)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit: Any = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder.path), revision=revision, ignore_patterns=NEVER_PUSHED,
            commit_message=commit_message or f"distilora {info.method} {info.task} classifier ({folder.path.name})")
    except failures as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DistiloraError(f"push to {repo_id} failed: {first}; check the network, `hf auth login` or --token, "
                             f"and that the repository id is yours") from None
    return str(getattr(commit, "commit_url", commit))
