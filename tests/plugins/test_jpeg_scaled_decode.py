"""``--jpeg-scaled-decode``: large JPEGs decoded at 1/2, 1/4 or 1/8 scale, never below the
resize target; off by default; limits still on the size the header declares; the build
measures what it does to the embeddings and the server and ``mmship inspect`` say it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mmship.core.bundle import Bundle
from mmship.core.cli.app import main
from mmship.core.errors import InputSpecError
from mmship.evaluation.scaled_decode import MIN_MEAN_COSINE, describe_scaled_decode, large_probe_photos
from mmship.preprocess.pixels import ImagePreprocessor, resize_target
from tests.plugins.conftest import encode
from tests.plugins.test_preprocessing_parity import SPECS


def photo(width: int, height: int) -> Image.Image:
    """A smooth photo-like RGB image (gradients and a disc) of ``width`` x ``height``."""
    y, x = np.mgrid[0:height, 0:width]
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2) * 120
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 60 + disc], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def decoded_size(preprocessor: ImagePreprocessor, data: bytes) -> tuple[int, int]:
    """(width, height) the preprocessor decodes ``data`` at."""
    opened = preprocessor.open(data)
    target = resize_target(opened.height, opened.width, preprocessor.spec)
    return preprocessor.rgb(opened, "image", target).size


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("spec", ["clip", "vit", "flava"])
def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_stays_close(spec):
    data = encode(photo(1600, 1200), "JPEG")
    full, scaled = ImagePreprocessor(SPECS[spec]), ImagePreprocessor(SPECS[spec], jpeg_scaled_decode=True)
    assert decoded_size(full, data) == (1600, 1200)
    assert decoded_size(scaled, data) in {(400, 300), (800, 600)}  # clip: 1/4 (>= 298x224); vit/flava: 224x224 -> 1/4
    expected, got = full([data]), scaled([data])
    assert got.shape == expected.shape
    assert not np.array_equal(got, expected)  # the option did something
    assert cosine(got, expected) > 0.999


def test_off_by_default_and_pngs_and_small_jpegs_are_untouched(photo_bytes):
    spec = SPECS["clip"]
    scaled = ImagePreprocessor(spec, jpeg_scaled_decode=True)
    assert ImagePreprocessor(spec).jpeg_scaled_decode is False
    large_png = encode(photo(1600, 1200), "PNG")
    small_jpeg = encode(photo(447, 300), "JPEG")  # under twice the target on its short side
    for data in (large_png, small_jpeg):
        np.testing.assert_array_equal(scaled([data]), ImagePreprocessor(spec)([data]))
    assert decoded_size(scaled, small_jpeg) == (447, 300)


@pytest.mark.parametrize("size", [(448, 448), (449, 2000), (3000, 225), (897, 899), (1793, 1800), (4000, 3000), (20, 4000)])
def test_never_decoded_below_the_resize_target(size):
    width, height = size
    spec = SPECS["clip"]
    scaled = ImagePreprocessor(spec, jpeg_scaled_decode=True, max_pixels=None)
    data = encode(photo(width, height), "JPEG")
    target_height, target_width = resize_target(height, width, spec)
    got_width, got_height = decoded_size(scaled, data)
    assert got_width >= min(target_width, width) and got_height >= min(target_height, height)
    can_halve = width >= 2 * target_width and height >= 2 * target_height
    assert (got_width < width) == can_halve  # scaled exactly when both sides are at least twice the target
    assert scaled([data]).shape == (1, 3, 224, 224)


def test_the_pixel_cap_applies_to_the_size_the_header_declares():
    """A 1600x1200 JPEG would decode as 400x300 scaled; the cap of 1 M pixels refuses it all the same."""
    data = encode(photo(1600, 1200), "JPEG")
    with pytest.raises(InputSpecError, match="1,920,000 pixels, more than the cap of 1,000,000"):
        ImagePreprocessor(SPECS["clip"], max_pixels=1_000_000, jpeg_scaled_decode=True)([data])


def test_a_truncated_large_jpeg_is_an_input_error_when_scaled():
    data = encode(photo(1600, 1200), "JPEG")
    with pytest.raises(InputSpecError, match="could not be decoded because the file is truncated"):
        ImagePreprocessor(SPECS["clip"], jpeg_scaled_decode=True)([data[: len(data) // 2]])


def test_grayscale_and_cmyk_jpegs_keep_their_conversion():
    spec = SPECS["clip"]
    for mode in ("L", "CMYK"):
        data = encode(photo(1600, 1200).convert(mode), "JPEG")
        full, scaled = ImagePreprocessor(spec)([data]), ImagePreprocessor(spec, jpeg_scaled_decode=True)([data])
        assert cosine(full, scaled) > 0.999, mode


def test_the_build_reports_what_scaled_decoding_does_to_the_embeddings(tiny_clip_bundle):
    figures = Bundle.load(tiny_clip_bundle).report["scaled_jpeg_decode"]
    assert figures["photos"] == len(large_probe_photos()) == 6 and figures["upscaled"] == 4
    assert set(figures["outputs"]) == {"image_embeds"}
    assert 0.99 < figures["mean_cosine"] < 1.0 and figures["min_cosine"] <= figures["mean_cosine"]


def test_what_the_server_says_with_and_without_figures():
    assert "did not measure" in describe_scaled_decode({})
    good = {"scaled_jpeg_decode": {"upscaled": 4, "mean_cosine": 0.9991, "min_cosine": 0.998}}
    assert describe_scaled_decode(good).endswith("0.99910 (min 0.99800)")
    bad = {"scaled_jpeg_decode": {"upscaled": 4, "mean_cosine": MIN_MEAN_COSINE - 0.01, "min_cosine": 0.9}}
    assert "serve without --jpeg-scaled-decode" in describe_scaled_decode(bad)


def test_serve_turns_it_on_and_says_the_builds_figure(tiny_clip_bundle, monkeypatch, capsys):
    from mmship.serving import serve

    built = {}
    real = serve.build_server

    def without_listening(*args):
        built["server"] = server = real(*args)
        server.run = lambda: None
        return server

    monkeypatch.setattr(serve, "build_server", without_listening)
    assert main(["serve", str(tiny_clip_bundle), "--port", "0", "--jpeg-scaled-decode"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "JPEG scaled decode is on: on the probe photos upscaled 4x" in out
    (service,) = built["server"].config.app.state.models.services()
    assert service.images.jpeg_scaled_decode is True
    assert main(["serve", str(tiny_clip_bundle), "--port", "0"]) == 0
    assert "JPEG scaled decode" not in capsys.readouterr().out


def test_inspect_shows_the_figure(tiny_clip_bundle, capsys):
    assert main(["inspect", str(tiny_clip_bundle)]) == 0
    assert "JPEG scaled decode (serve --jpeg-scaled-decode), probe photos upscaled 4x" in " ".join(capsys.readouterr().out.split())


def test_large_probe_photos_are_jpegs_four_times_the_probe_size():
    for data in large_probe_photos():
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.height == 1024


def test_a_server_with_it_answers_close_to_one_without(tiny_clip_bundle):
    import base64

    import httpx

    from tests.helpers.servers import running_server

    body = {"images": [base64.b64encode(encode(photo(1600, 1200), "JPEG")).decode()]}
    answers = {}
    for scaled in (False, True):
        with running_server(tiny_clip_bundle, precision="fp32", jpeg_scaled_decode=scaled) as url:
            response = httpx.post(f"{url}/embed", json=body, timeout=30)
            assert response.status_code == 200, response.text
            answers[scaled] = np.asarray(response.json()["image_embeds"][0])
    assert not np.array_equal(answers[True], answers[False])
    assert cosine(answers[True], answers[False]) > 0.99
