"""A request of images only that finds its batcher idle is decoded, resized and run in one
trip to the batcher's thread: the same answer as the usual path, the same errors, and
only when nothing else is queued or running."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from mmship.core.bundle import Bundle
from mmship.core.errors import InputSpecError
from mmship.core.payload import PayloadInputs
from mmship.serving.batcher import DynamicBatcher
from mmship.serving.engine import Engine
from mmship.serving.metrics import ServerMetrics
from mmship.serving.service import ModelService
from mmship.serving.settings import ServerSettings


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


CAT = jpeg(skimage.data.chelsea())


@pytest.fixture
def service(tiny_clip_bundle) -> ModelService:
    engine = Engine(Bundle.load(tiny_clip_bundle), precision="fp32", threads=1)
    return ModelService(engine, ServerSettings(max_delay_ms=1), ServerMetrics())


@pytest.fixture
def alone_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = DynamicBatcher.run_alone

    async def counting(self, prepare, timeout_s):
        calls.append(self.name)
        return await real(self, prepare, timeout_s)

    monkeypatch.setattr(DynamicBatcher, "run_alone", counting)
    return calls


def run(service: ModelService, work):
    async def main():
        await service.start()
        try:
            return await work()
        finally:
            await service.stop()

    return asyncio.run(main())


def test_a_lone_image_request_runs_alone_and_answers_as_the_usual_path(service, alone_calls):
    async def work():
        alone = await service.infer(PayloadInputs(images=[CAT]))
        # the usual path: the same request while the image batcher is busy with another
        batcher = service.batchers["image"]
        batcher._inflight += 1
        try:
            usual = await service.infer(PayloadInputs(images=[CAT]))
        finally:
            batcher._inflight -= 1
        return alone, usual

    alone, usual = run(service, work)
    assert alone_calls == ["image"]  # the first only
    assert set(alone.outputs) == set(usual.outputs) and "image_embeds" in alone.outputs
    for name in alone.outputs:
        np.testing.assert_array_equal(alone.outputs[name], usual.outputs[name])


def test_texts_images_with_texts_and_raw_tensors_take_the_usual_path(service, alone_calls):
    async def work():
        await service.infer(PayloadInputs(texts=["a photo of a cat"]))
        both = await service.infer(PayloadInputs(images=[CAT], texts=["a photo of a cat"]))
        await service.infer(PayloadInputs(images=[CAT]))
        return both

    both = run(service, work)
    assert "logits_per_image" in both.outputs  # scored as before
    assert alone_calls == ["image"]  # only the request of images alone


def test_a_bad_image_run_alone_fails_only_itself(service, alone_calls):
    async def work():
        with pytest.raises(InputSpecError):
            await service.infer(PayloadInputs(images=[b"not an image at all"]))
        idle = service.batchers["image"].idle()
        answer = await service.infer(PayloadInputs(images=[CAT]))
        return idle, answer

    idle, answer = run(service, work)
    assert alone_calls == ["image", "image"] and idle
    assert answer.outputs["image_embeds"].shape[0] == 1


def test_more_images_than_a_batch_take_the_usual_path(tiny_clip_bundle, alone_calls):
    engine = Engine(Bundle.load(tiny_clip_bundle), precision="fp32", threads=1)
    small_batches = ModelService(engine, ServerSettings(max_delay_ms=1, max_batch_size=1), ServerMetrics())

    async def work():
        one = await small_batches.infer(PayloadInputs(images=[CAT]))
        idle = small_batches.batchers["image"].idle()
        two = await small_batches.infer(PayloadInputs(images=[CAT, CAT]))
        return one, idle, two

    one, idle, two = run(small_batches, work)
    assert one.outputs["image_embeds"].shape[0] == 1 and two.outputs["image_embeds"].shape[0] == 2
    assert idle and alone_calls == ["image"]  # the single image only: the batcher was idle for both
