"""`make serve`: build the default CLIP checkpoint into a bundle (once) and serve it.

MODEL is a hub id (default openai/clip-vit-base-patch32), a local folder written by
save_pretrained, or `random` for a random-weight ViT-B/32 built offline (real cost,
meaningless answers) when the hub cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmship.core.bundle import MANIFEST
from mmship.core.cli.app import main as mmship


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="openai/clip-vit-base-patch32")
    parser.add_argument("--bundle", default="", help="default: bundles/<model name>")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()

    model = args.model
    if model == "random":
        from mmship.testing.models import make_random_clip

        folder = Path("models/random-clip-vit-base-patch32")
        if not (folder / "config.json").exists():
            real = _real_tokenizer_available()
            kind = "the real 49408-token CLIP tokenizer" if real else "a small stand-in tokenizer (no CLIP BPE file found)"
            print(f"making a random-weight CLIP ViT-B/32 in {folder} with {kind}")
            make_random_clip(folder, real_tokenizer=real)
        model = str(folder)

    bundle = Path(args.bundle or f"bundles/{Path(model.rstrip('/')).name}-{args.precision}")
    if not (bundle / MANIFEST).exists():
        print(f"building {model} -> {bundle}")
        code = mmship(["build", model, "--out", str(bundle), "--precision", "fp32", "--precision", args.precision])
        if code != 0:
            print(
                "\nThe build failed. Without Hugging Face Hub access, point MODEL at a local folder\n"
                "written by save_pretrained (make serve MODEL=./my-clip), or use a random-weight\n"
                "stand-in: make serve MODEL=random",
                file=sys.stderr,
            )
            return code
    else:
        print(f"using the existing bundle {bundle} (delete it to rebuild)")
    return mmship(["serve", str(bundle), "--precision", args.precision, "--host", args.host, "--port", str(args.port)])


def _real_tokenizer_available() -> bool:
    """True when the CLIP BPE vocabulary (the open-clip-torch wheel `make install`
    downloads) is on this machine."""
    from mmship.testing.tokenizers import ClipVocabularyError, read_clip_bpe

    try:
        read_clip_bpe()
    except ClipVocabularyError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
