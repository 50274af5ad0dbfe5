"""``mmship invoke``: call a served model with images and texts and print the scores."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import typer

from mmship import hookimpl
from mmship.core.cli.console import console, table
from mmship.core.errors import MmshipError
from mmship.core.payload import DEFAULT_TEMPLATE
from mmship.core.specs import ScoringSpec
from mmship.scoring import Scorer, cosine_matrix

PROTOCOL_CHOICES = ("auto", "v2", "v2-binary", "embed")
#: ``scheme://ID``: a deployment on the target that declares ``scheme`` (``friendli://``).
_SCHEME_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$")
#: The output holding the model's image-text logits.
LOGITS = ScoringSpec().output


def _invoke_target(scheme: str, deployment: str, texts: list[str], images: list[Path], protocol: str, timeout: float) -> None:
    """One call to a deployment on the target that declares ``scheme``, through its
    :meth:`~mmship.core.target.Target.invoke` (as ``mmship deployments invoke``)."""
    from mmship.plugins.commands.deploy import print_invoke_result, read_images
    from mmship.plugins.commands.target_settings import invoke_mode, target_registry

    cls = target_registry().for_scheme(scheme)
    mode = invoke_mode(cls, protocol, "--protocol")
    if not deployment:
        raise MmshipError(
            f"{scheme}:// needs a deployment id",
            hint=f"write {scheme}://ID (see `mmship deployments list --target {cls.name}`)",
        )
    result = cls.for_url(timeout).invoke(deployment, texts=texts, images=read_images(images), mode=mode)
    print_invoke_result(result)


def similarity_rows(
    image_names: list[str], texts: list[str], outputs: dict[str, np.ndarray], scoring: str = "softmax"
) -> list[dict[str, object]]:
    """One row per image-text pair: cosine of the embeddings and, when the server sent
    ``logits_per_image``, the probability under the model's ``scoring`` (a ``softmax``
    over the texts, or each text's own ``sigmoid``), keyed by that name."""
    if "image_embeds" not in outputs or "text_embeds" not in outputs:
        return []
    cos = cosine_matrix(outputs["image_embeds"], outputs["text_embeds"])
    scorer = Scorer(ScoringSpec(kind=scoring)) if scoring in ("softmax", "sigmoid") else None
    logits = outputs.get(LOGITS)
    probs = scorer.probabilities(logits) if scorer is not None and logits is not None else None
    rows = []
    for i, image in enumerate(image_names):
        for j, text in enumerate(texts):
            row: dict[str, object] = {"image": image, "text": text, "cosine": float(cos[i, j])}
            if probs is not None:
                row[scoring] = float(probs[i, j])
            rows.append(row)
    return rows


def server_scoring(client: object) -> str:
    """The scoring the server's model metadata names (``parameters.scoring``); ``softmax``
    when it names none (servers from before scoring was recorded always softmaxed)."""
    try:
        parameters = client.metadata().get("parameters") or {}  # type: ignore[attr-defined]
    except (MmshipError, ValueError, AttributeError):
        return "softmax"
    return str(parameters.get("scoring") or "softmax")


def _resolve_protocol(client: object, protocol: str) -> str:
    if protocol != "auto":
        return protocol
    try:
        client.model_name()  # type: ignore[attr-defined]
    except MmshipError:
        return "embed"
    return "v2-binary"


def _print_outputs(outputs: dict[str, np.ndarray], title: str) -> None:
    rows = [(name, list(array.shape), array.dtype) for name, array in outputs.items()]
    console.print(table(title, ["output", "shape", "dtype"], rows))


def _rank(client: object, images: list[Path], texts: list[str], top_k: int | None, as_json: bool) -> None:
    """``--rank``: the texts for one image, or the images for one text, best first."""
    if len(images) == 1 and texts:
        result = client.rank(image=images[0], texts=texts, top_k=top_k)  # type: ignore[attr-defined]
        names = texts
    elif len(texts) == 1 and images:
        result = client.rank(text=texts[0], images=images, top_k=top_k)  # type: ignore[attr-defined]
        names = [p.name for p in images]
    else:
        raise MmshipError(
            f"--rank ranks several texts for one image, or several images for one text; got {len(images)} image(s) "
            f"and {len(texts)} text(s)",
            hint="pass one --image and several --text, or one --text and several --image",
        )
    rows = [{"candidate": names[r.index], "index": r.index, "cosine": r.cosine, result.scoring: r.probability} for r in result.results]
    if as_json:
        print(json.dumps({"model": result.model, "query": result.query, "scoring": result.scoring, "results": rows}))
        return
    query = images[0].name if result.query == "image" else texts[0]
    cells = [[str(n), str(row["candidate"]), f"{row['cosine']:.4f}", f"{row[result.scoring]:.4f}"] for n, row in enumerate(rows, 1)]
    console.print(table(
        f"{query}: {len(rows)} of {result.candidates} ranked ({result.model}, {result.scoring})",
        ["rank", "text" if result.query == "image" else "image", "cosine", result.scoring], cells,
    ))


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``invoke`` command to ``app``."""
    from mmship.plugins.commands.target_settings import target_registry

    schemes = "; ".join(f"{s}://ID: {' or '.join(c.invoke_modes)}" for s, c in sorted(target_registry().schemes().items()))

    @app.command("invoke")
    def invoke(
        url: str = typer.Argument(..., help="The server's base URL, e.g. http://127.0.0.1:8000."),
        image: list[Path] = typer.Option([], "--image", "-i", help="An image file (repeat for several)."),
        text: list[str] = typer.Option([], "--text", "-t", help="A text (repeat for several)."),
        protocol: str = typer.Option(
            "auto", "--protocol", help="v2, v2-binary, embed, or auto (v2-binary when the model name is known, else embed)"
            + (f"; for a deployment URL the target's modes ({schemes}; auto: the first)" if schemes else "") + ".",
        ),
        model: str | None = typer.Option(None, "--model", "-m", help="The served model to call (default: the server's first)."),
        api_key: str | None = typer.Option(None, "--api-key", envvar="MMSHIP_API_KEY", show_envvar=True, help="Bearer API key."),
        labels: str | None = typer.Option(None, "--labels", help="Zero-shot classify each image against these comma-separated labels."),
        template: list[str] = typer.Option(
            [], "--template", help="Prompt template for --labels (default 'a photo of a {}'); repeat for a prompt ensemble."
        ),
        rank: bool = typer.Option(
            False, "--rank", help="Rank the --text candidates for one --image, or the --image candidates for one --text (POST /rank)."
        ),
        top_k: int | None = typer.Option(None, "--top-k", min=1, help="With --rank: show the best K (default: all)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Send images and texts to a served model; print similarities, classes (--labels), a ranking
        (--rank) or embedding shapes.

        URL may also be ``SCHEME://ID``: a deployment on the deploy target that declares
        the scheme (``friendli://ENDPOINT_ID``, a FriendliAI endpoint, with the token from
        FRIENDLI_TOKEN), called through the target like ``mmship deployments invoke``."""
        from mmship.client import Client

        scheme_url = _SCHEME_URL.match(url)
        if scheme_url and scheme_url.group(1) not in ("http", "https"):
            _invoke_target(scheme_url.group(1), scheme_url.group(2), text, image, protocol, timeout)
            return

        if protocol not in PROTOCOL_CHOICES:  # (SCHEME:// URLs were handled above)
            raise MmshipError(f"unknown protocol {protocol!r}", hint=f"use one of {', '.join(PROTOCOL_CHOICES)}")
        if not image and not text:
            raise MmshipError("nothing to send", hint="pass --image PATH and/or --text TEXT")
        names = [p.name for p in image]
        with Client(url, api_key=api_key, timeout=timeout, model=model) as client:
            if rank:
                _rank(client, image, text, top_k, as_json)
                return
            if labels is not None:
                label_list = [part.strip() for part in labels.split(",") if part.strip()]
                if not image:
                    raise MmshipError("--labels classifies images, and no --image was given", hint="pass --image PATH")
                ensemble = template if len(template) > 1 else None
                one = template[0] if template else DEFAULT_TEMPLATE
                answer = (  # one image goes as "image": servers from before "images" answer it too
                    client.classify(image[0], label_list, one, templates=ensemble) if len(image) == 1
                    else client.classify_many(list(image), label_list, one, templates=ensemble)
                )
                results = {
                    name: dataclasses.replace(answer, probs=scores.probs, top=scores.top, results=[scores])
                    for name, scores in zip(names, answer.results, strict=True)
                }
                if as_json:
                    print(json.dumps({n: dict(zip(r.labels, r.probs, strict=True)) | {"top": r.top} for n, r in results.items()}))
                    return
                for name, result in results.items():
                    ranked = [(label, f"{prob:.4f}", "<- top" if label == result.top else "") for label, prob in result.ranked()]
                    how = f", {result.scoring}" if result.scoring else ""
                    console.print(table(f"{name}: zero-shot ({result.model}{how})", ["label", "probability", ""], ranked))
                return
            chosen = _resolve_protocol(client, protocol)
            scoring = server_scoring(client) if chosen != "embed" and image and text else "softmax"
            outputs = client.infer(images=list(image), texts=list(text), protocol=chosen)
        rows = similarity_rows(names, list(text), outputs, scoring)
        if as_json:
            print(json.dumps({
                "protocol": chosen,
                "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in outputs.items()},
                "similarity": rows,
            }))
            return
        _print_outputs(outputs, f"outputs ({chosen})")
        if rows:
            scored = scoring in rows[0]
            columns = ["image", "text", "cosine"] + ([scoring] if scored else [])
            cells = [
                [row["image"], row["text"], f"{row['cosine']:.4f}"] + ([f"{row[scoring]:.4f}"] if scored else [])
                for row in rows
            ]
            console.print(table("image-text similarity", columns, cells))
            if not scored and chosen == "embed":
                console.print("scoring the texts needs the model's logits: use --protocol v2-binary (with --model)")
