"""The stub server's own checks (the stub lives in tests/helpers/stub_server.py)."""

from __future__ import annotations

import numpy as np

from tests.helpers.stub_server import MODEL, embed_images


def test_stub_answers_v2_metadata_and_health(stub):
    import httpx

    url, _ = stub
    assert httpx.get(f"{url}/v2").json()["extensions"] == ["binary_tensor_data"]
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/nope").json()["error"].startswith("no model 'nope'")


def test_stock_tritonclient_talks_to_the_stub_over_http(stub):
    """tritonclient's own HTTP client, binary inputs and outputs, against mmship's codecs."""
    from importlib.resources import files

    import tritonclient.http as tc

    url, _ = stub
    jpeg = files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()
    image = tc.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([jpeg], dtype=object), binary_data=True)
    text = tc.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"a photo of a cat", "a dog"], dtype=object), binary_data=False)
    client = tc.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_ready()
        result = client.infer(
            MODEL, [image, text], request_id="t1",
            outputs=[tc.InferRequestedOutput("image_embeds"), tc.InferRequestedOutput("logits_per_image", binary_data=False)],
        )
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("image_embeds"), embed_images([jpeg]))
    assert result.as_numpy("logits_per_image").shape == (1, 2)
    assert result.get_response()["id"] == "t1"
