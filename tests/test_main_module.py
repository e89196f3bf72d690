"""Issue 30.4: ``python -m amictl`` is the ``amictl`` script: same output, same exit codes,
same error handling (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("amictl"))


def _run(cmd: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AMICTL_STATE": f"sqlite:///{tmp_path}/state.db",
        "XDG_STATE_HOME": str(tmp_path),
        "COLUMNS": "200",
    }
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_python_m_amictl_is_the_script(tmp_path: Path) -> None:
    version = _run([sys.executable, "-m", "amictl", "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("amictl, version ")
    bad = tmp_path / "policy.yaml"
    bad.write_text("format: 1\nrules:\n  - name: x\n    selectt: {}\n")
    module = _run([sys.executable, "-m", "amictl", "policy", "validate", str(bad)], tmp_path)
    script = _run([SCRIPT, "policy", "validate", str(bad)], tmp_path)
    assert module.returncode == script.returncode == 2  # bad input, as docs/cli.md says
    assert module.stderr == script.stderr and module.stdout == script.stdout
    assert f"{bad}:4: rules[0].selectt" in module.stderr and "Traceback" not in module.stderr
