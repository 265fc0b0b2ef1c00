""".github/workflows/book.yml: valid for GitHub Actions (the JSON schema of workflow files that
check-jsonschema ships, so no network), and doing what the reproducing page says it does."""

import subprocess
import sys
from pathlib import Path

import yaml

from tsrobust.book.costs import COSTS_BEGIN

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def schema_errors(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(path)], capture_output=True, text=True, timeout=600)


def test_the_workflow_passes_the_github_workflow_schema(tmp_path):
    ok = schema_errors(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the check can fail: a job without runs-on and a misspelled step key are rejected
    broken = WORKFLOW.read_text().replace("    runs-on: ubuntu-latest\n", "", 1)
    broken = broken.replace("      - uses: actions/checkout@v4\n", "      - use: actions/checkout@v4\n", 1)
    (tmp_path / "book.yml").write_text(broken)
    bad = schema_errors(tmp_path / "book.yml")
    assert bad.returncode != 0 and "runs-on" in bad.stdout, bad.stdout + bad.stderr


def _steps(job) -> str:
    return "\n".join(str(s.get("uses", "")) + " " + str(s.get("run", "")) for s in job["steps"])


def test_the_workflow_builds_smoke_on_prs_and_publishes_the_gpu_build():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    smoke, gpu, publish = jobs["smoke"], jobs["gpu"], jobs["publish"]
    assert smoke["if"] == "github.event_name == 'pull_request'"
    assert "build --profile smoke" in _steps(smoke)
    cache = next(s for s in smoke["steps"] if str(s.get("uses", "")).startswith("actions/cache"))
    assert cache["with"]["path"] == "~/.cache/tsrobust"  # tsrobust.data.default_root()
    assert gpu["runs-on"] == ["self-hosted", "gpu"]
    assert "build --profile gpu" in _steps(gpu)
    assert "actions/upload-pages-artifact" in _steps(gpu)
    upload = next(s for s in gpu["steps"] if "upload-pages-artifact" in str(s.get("uses", "")))
    assert upload["with"]["path"] == "_build/html"
    assert publish["needs"] == "gpu" and "actions/deploy-pages" in _steps(publish)
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}


def test_the_runner_label_and_the_costs_are_documented():
    page = (ROOT / "book" / "reproducing.md").read_text()
    assert "`self-hosted` and `gpu`" in page and ".github/workflows/book.yml" in page
    assert COSTS_BEGIN in page
