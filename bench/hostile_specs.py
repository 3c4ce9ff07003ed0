"""Benchmark: `renderspec check` of hostile specs, each in a project of its own, as CI would run it.

Every case is one shot (or one matrix) built to exhaust the machine; the limits (see
renderspec/core/limits.py) must turn each into one located problem within seconds and well under
300 MB. Printed per case: wall seconds, the command's peak memory, its exit code and its last
and first lines of output. The last three cases spend the budgets of a whole expansion: 10,000-shot
matrices whose prompts work, or print, for nearly as long as one render may.

Usage: python bench/hostile_specs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HUNDRED = ", ".join(str(n) for n in range(100))
TEN_THOUSAND = ", ".join(str(n) for n in range(10_000))

CASES = {
    "'x' * 4000000000": "prompt = \"{{ mia }} {{ 'x' * 4000000000 }}\"",
    "nested range(99999) loops": (
        'prompt = "{{ mia }} {% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"'
    ),
    "100^4 matrix": (
        'id = "m-{{ a }}-{{ b }}-{{ c }}-{{ d }}"\nprompt = "{{ mia }}"\n'
        f"matrix = {{ a = [{HUNDRED}], b = [{HUNDRED}], c = [{HUNDRED}], d = [{HUNDRED}] }}"
    ),
    "center(999999999)": "prompt = \"{{ mia }} {{ 'x'|center(999999999) }}\"",
    "'{:>999999999}'.format(1)": "prompt = \"{{ mia }} {{ '{:>999999999}'.format(1) }}\"",
    "10 ** 100000000": 'prompt = "{{ mia }} {{ 10 ** 100000000 }}"',
    "macro call tree 2^40": (
        'prompt = "{{ mia }} {% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}'
        '{% endmacro %}{{ f(40) }}"'
    ),
    "10,000 x 90,000 iterations": (
        'id = "m-{{ n }}"\nprompt = "{{ mia }} {% for a in \'x\' * 90000 %}{% endfor %}"\n'
        f"matrix = {{ n = [{TEN_THOUSAND}] }}"
    ),
    "10,000 x 9,000 macro calls": (
        'id = "m-{{ n }}"\nprompt = "{{ mia }} {% macro f() %}{% endmacro %}'
        '{% for a in range(9000) %}{% set t = f() %}{% endfor %}"\n'
        f"matrix = {{ n = [{TEN_THOUSAND}] }}"
    ),
    "10,000 x 99,999 characters": (
        f'id = "m-{{{{ n }}}}"\nprompt = "{{{{ mia }}}} {{{{ \'x\' * 99990 }}}}"\nmatrix = {{ n = [{TEN_THOUSAND}] }}'
    ),
}


def make_project(root: Path, body: str) -> None:
    from PIL import Image

    (root / "specs" / "refs").mkdir(parents=True)
    Image.new("RGB", (320, 480), (200, 120, 40)).save(root / "specs" / "refs" / "mia.png")
    (root / "renderspec.toml").write_text("[renderspec]\n")
    if "id = " not in body:
        body = f'id = "bomb"\n{body}'
    (root / "specs" / "bomb.toml").write_text(
        f'[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nmedia = ["mia"]\n{body}\n'
    )


def check(root: Path) -> tuple[float, float, int, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "renderspec", "check"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    lines = output.splitlines()
    return time.perf_counter() - started, peak_mb, process.returncode, f"{lines[-1]} | {lines[0]}"


def main() -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores: renderspec check, one project per case")
    print(f"{'case':28} {'s':>6} {'peak MB':>8} {'exit':>4}  last | first line")
    for name, body in CASES.items():
        with tempfile.TemporaryDirectory(prefix="renderspec-hostile-") as folder:
            make_project(Path(folder), body)
            seconds, peak_mb, code, first = check(Path(folder))
        print(f"{name:28} {seconds:6.2f} {peak_mb:8.0f} {code:>4}  {first[:160]}")


if __name__ == "__main__":
    main()
