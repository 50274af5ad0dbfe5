"""Build time of two checkouts of mmship, A/B on one machine, each build in a fresh process.

The VM's speed moves between runs (benchmarks/README.md), so a change to the build is
measured against the code before it in the same sitting, alternating: A, B, A, B. Each
build runs ``benchmarks/build_time.py``'s ``run`` of its own checkout (its ``src`` first on
the path) on the same model folder, from cold imports, and prints its stages and the
variant it chose per tower.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/build_ab.py --work .bench --checkout /tmp/before --checkout . --rounds 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in a fresh interpreter: one build of the checkout at argv[1], figures as JSON.
ONE_BUILD = """
import json, sys
from pathlib import Path
checkout, folder, out, only = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
sys.path[:0] = [str(checkout / "src"), str(checkout / "benchmarks")]
import build_time, mmship
assert Path(mmship.__file__).resolve().is_relative_to(checkout.resolve()), mmship.__file__
named = (["openvino"], ["int8"]) if only == "named" else (None, None)
r = build_time.run(folder, out, *named)
chosen = {t: f"{c.runtime} {c.precision} {c.batch_ms} ms ({c.reason})" for t, c in r["bundle"].manifest.chosen.items()}
print("RESULT " + json.dumps({**{k: r[k] for k in ("build_s", "answer_s", "total_s", "stages")}, "chosen": chosen}))
"""


def one_build(checkout: Path, folder: Path, out: Path, only: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", ONE_BUILD, str(checkout), str(folder), str(out), only],
        capture_output=True, text=True, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"build of {checkout} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--checkout", type=Path, action="append", required=True, help="twice: before, after")
    parser.add_argument("--only", choices=("all", "named"), default="named")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from mmship.testing.models import make_random_clip

    folder = args.work / "clip-b32"
    if not (folder / "config.json").is_file():
        make_random_clip(folder, real_tokenizer=True)
    print("| checkout | round | folder -> first answer s | build s | load + first answer s | stages |")
    print("|---|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        for checkout in args.checkout:
            r = one_build(checkout.resolve(), folder.resolve(), (args.work / "bundle-ab").resolve(), args.only)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
            print(f"| {checkout} | {round_} | {r['total_s']:.1f} | {r['build_s']:.1f} | {r['answer_s']:.1f} | {stages} |",
                  flush=True)
            for tower, text in r.get("chosen", {}).items():
                print(f"|  | chosen | {tower}: {text} | | | |", flush=True)


if __name__ == "__main__":
    main()
