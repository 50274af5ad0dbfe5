"""The models a server serves, by name: the one place a request's ``model`` is resolved.

:class:`ServedModels` answers which service a name means (a 404 naming the served models
otherwise) and describes each model for the protocols' model lists (:class:`ModelCard`).

Truncating embeddings (``dimensions``) is allowed only for models trained for it
(Matryoshka representation learning). A model says so in its Hugging Face
``config.json`` with ``matryoshka_dimensions`` (the sizes it was trained at, as
jina-clip-v2's config does); mmship reads it from the bundle's ``hf/config.json``. CLIP,
SigLIP and FLAVA checkpoints do not declare it: cutting their vectors would lose meaning.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence

from mmship.core.errors import BundleError, RequestFieldError
from mmship.core.payload import ModelCard, PayloadInputs
from mmship.serving.service import ModelService

#: The name a request gives when it names no model.
UNNAMED = PayloadInputs().model
MATRYOSHKA_KEY = "matryoshka_dimensions"
EMBEDDING_OUTPUTS = {"image": "image_embeds", "text": "text_embeds"}


def embedding_outputs(service: ModelService) -> dict[str, str]:
    """Modality -> the output holding one embedding per item (those the model has)."""
    spec = service.scorer.spec
    names = {"image": spec.image_embeds, "text": spec.text_embeds} if service.scorer.kind != "none" else EMBEDDING_OUTPUTS
    outputs = service.engine.output_specs
    return {modality: name for modality, name in names.items() if name in outputs}


def matryoshka_dimensions(service: ModelService, full: int | None) -> list[int]:
    """The sizes the model's embeddings may be cut to: ``matryoshka_dimensions`` of the
    bundle's ``hf/config.json`` (empty when absent).

    :raises BundleError: when the declaration is not a list of sizes up to ``full``.
    """
    path = service.engine.bundle.path("hf/config.json")
    if not path.is_file():
        return []
    try:
        declared = json.loads(path.read_text(encoding="utf-8")).get(MATRYOSHKA_KEY)
    except (OSError, ValueError, AttributeError):
        return []
    if declared is None:
        return []
    if (
        not isinstance(declared, list) or full is None
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= full for d in declared)
    ):
        raise BundleError(
            f"{path} declares {MATRYOSHKA_KEY} {declared!r}; expected a list of sizes from 1 to {full}",
            hint=f"fix {MATRYOSHKA_KEY} in the model's config.json and rebuild, or remove it",
        )
    return sorted(set(declared))


def _card(service: ModelService) -> ModelCard:
    manifest = service.engine.bundle.manifest
    outputs = embedding_outputs(service)
    shapes = {service.engine.output_specs[name].shape[-1] for name in outputs.values()}
    full = shapes.pop() if len(shapes) == 1 and -1 not in shapes else None
    try:
        created = int(_dt.datetime.fromisoformat(manifest.created_at).timestamp())
    except ValueError:
        created = 0
    modalities = [m for m, ok in (("image", service.images), ("text", service.tokenizer)) if ok is not None]
    return ModelCard(
        name=service.name, created=created, adapter=manifest.adapter, precision=service.engine.precision,
        modalities=modalities, dimensions=full, matryoshka_dimensions=matryoshka_dimensions(service, full),
        max_input_tokens=service.max_text_length,
    )


class ServedModels:
    """The served models by name, in the order given; the first is the default model."""

    def __init__(self, services: Sequence[ModelService]) -> None:
        names = [s.name for s in services]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise BundleError(
                f"two served models are called {', '.join(repr(n) for n in twice)}; each needs its own name",
                hint="name them on the command line: mmship serve NAME=BUNDLE OTHER=BUNDLE",
            )
        if not services:
            raise BundleError("no model to serve", hint="pass at least one bundle folder")
        self._services = {s.name: s for s in services}
        self._cards = {s.name: _card(s) for s in services}

    def names(self) -> list[str]:
        """The served model names (the default first)."""
        return list(self._services)

    def services(self) -> list[ModelService]:
        """The served models' services (the default first)."""
        return list(self._services.values())

    @property
    def default(self) -> ModelService:
        """The model a request naming none is answered by: the first served."""
        return next(iter(self._services.values()))

    def label(self, name: str | None) -> str:
        """The served name ``name`` resolves to, or ``""`` when it names none (a metrics
        label: never a name a client made up)."""
        if name is not None and name in self._services:
            return name
        return self.default.name if name is None or name == UNNAMED else ""

    def resolve(self, name: str | None) -> ModelService:
        """The service called ``name``; no name (or the unnamed default) means the
        default model (the first served; the only one when one is served).

        :raises RequestFieldError: 404 naming the served models.
        """
        if name is not None and name in self._services:
            return self._services[name]
        if name is None or name == UNNAMED:
            return self.default
        served = ", ".join(repr(n) for n in self._services)
        raise RequestFieldError(
            f"the model {name!r} does not exist here; this server serves {served}",
            hint="use a name from GET /v1/models", field="model", code="model_not_found", status=404,
        )

    def card(self, name: str | None) -> ModelCard:
        """What the model lists say about the model ``name`` (404 when not served)."""
        return self._cards[self.resolve(name).name]

    def cards(self) -> list[ModelCard]:
        """Every served model's card."""
        return list(self._cards.values())
