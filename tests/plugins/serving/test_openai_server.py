"""/v1/embeddings and /v1/models against a real server on 127.0.0.1, called by the official
``openai`` Python client (and LangChain's OpenAIEmbeddings): every input convention, the
client's own base64 decoding, OpenAI's error object from every layer, Matryoshka-only
``dimensions``, token-id arrays and the token counts."""

from __future__ import annotations

import base64
from importlib.resources import files

import httpx
import numpy as np
import openai
import pytest
from tokenizers import Tokenizer

from mmship.core.bundle import Bundle
from tests.helpers.servers import running_server

pytestmark = pytest.mark.network

KEY = "test-key-7f3a9c-0123456789"  # keys have at least 16 characters
AUTH = {"authorization": f"Bearer {KEY}"}
CAT = files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()
COFFEE = files("mmship.data").joinpath("probe", "coffee.jpg").read_bytes()
TEXTS = ["a photo of a cat", "a cup of coffee", "x"]


def data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def server(tiny_clip_bundle):
    with running_server(
        tiny_clip_bundle, precision="fp32", max_delay_ms=5, api_key=KEY, max_items_per_request=8,
        max_body_bytes=1024 * 1024,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def name(tiny_clip_bundle) -> str:
    return Bundle.load(tiny_clip_bundle).manifest.name


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    with openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def reference(server) -> dict[str, np.ndarray]:
    """Unit-length embeddings of TEXTS, CAT and COFFEE from the server's own /embed."""
    body = httpx.post(f"{server}/embed", json={"texts": TEXTS, "images": [data_uri(CAT), data_uri(COFFEE)]}, headers=AUTH).json()
    return {"texts": np.array(body["text_embeds"]), "images": np.array(body["image_embeds"])}


@pytest.fixture(scope="module")
def tokenizer(tiny_clip_bundle) -> Tokenizer:
    return Tokenizer.from_file(str(Bundle.load(tiny_clip_bundle).path("processor/tokenizer.json")))


def vectors(response) -> np.ndarray:
    assert [d.index for d in response.data] == list(range(len(response.data)))
    return np.array([d.embedding for d in response.data], dtype=np.float32)


def openai_error_body(response: httpx.Response) -> dict:
    doc = response.json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"message", "type", "param", "code"}, doc
    return doc["error"]


def test_texts_with_the_openai_client(client, name, reference, tokenizer):
    """The client asks for base64 by default and decodes it itself."""
    response = client.embeddings.create(model=name, input=TEXTS)
    np.testing.assert_allclose(vectors(response), reference["texts"], atol=1e-6)
    assert response.model == name and response.object == "list"
    expected = sum(len(tokenizer.encode(t.lower()).ids) for t in TEXTS)
    assert response.usage.prompt_tokens == expected == response.usage.total_tokens
    single = client.embeddings.create(model=name, input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(vectors(single)[0], reference["texts"][0], atol=1e-6)


def test_base64_is_little_endian_float32(server, name):
    asked = {"model": name, "input": TEXTS}
    floats = httpx.post(f"{server}/v1/embeddings", json={**asked, "encoding_format": "float"}, headers=AUTH).json()
    packed = httpx.post(f"{server}/v1/embeddings", json={**asked, "encoding_format": "base64"}, headers=AUTH).json()
    for plain, coded in zip(floats["data"], packed["data"]):
        assert isinstance(coded["embedding"], str)
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(coded["embedding"]), dtype="<f4"),
                                      np.array(plain["embedding"], dtype=np.float32))


def test_images_through_extra_body_modality(client, name, reference):
    """infinity's convention: image data URIs as input, modality image, sent via extra_body."""
    response = client.embeddings.create(model=name, input=[data_uri(CAT), data_uri(COFFEE)], extra_body={"modality": "image"})
    np.testing.assert_allclose(vectors(response), reference["images"], atol=1e-6)
    assert response.usage.prompt_tokens == 0


def test_jina_item_objects_keep_their_order(client, name, reference):
    items = [{"text": TEXTS[0]}, {"image": data_uri(CAT)}, {"text": TEXTS[1]}, {"image": base64.b64encode(COFFEE).decode()}]
    got = vectors(client.embeddings.create(model=name, input=items))
    expected = np.stack([reference["texts"][0], reference["images"][0], reference["texts"][1], reference["images"][1]])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_vllm_messages_one_part(server, name, reference):
    def ask(content):
        doc = {"model": name, "messages": [{"role": "user", "content": content}], "encoding_format": "float"}
        return httpx.post(f"{server}/v1/embeddings", json=doc, headers=AUTH)

    image = ask([{"type": "image_url", "image_url": {"url": data_uri(CAT)}}])
    np.testing.assert_allclose(image.json()["data"][0]["embedding"], reference["images"][0], atol=1e-6)
    text = ask([{"type": "text", "text": TEXTS[1]}])
    np.testing.assert_allclose(text.json()["data"][0]["embedding"], reference["texts"][1], atol=1e-6)
    both = ask([{"type": "image_url", "image_url": {"url": data_uri(CAT)}}, {"type": "text", "text": "Represent the image."}])
    error = openai_error_body(both)
    assert both.status_code == 400 and error["param"] == "messages" and "one text or one image" in error["message"]


def test_token_id_arrays_are_the_model_tokenizers(client, name, reference, tokenizer):
    """Ids without special tokens (as tokenizer.encode(text, add_special_tokens=False) gives
    them, and as OpenAI's arrays are) and ids with them both embed like the text."""
    bare = tokenizer.encode(TEXTS[0], add_special_tokens=False).ids
    full = tokenizer.encode(TEXTS[0]).ids
    assert len(full) > len(bare)
    response = client.embeddings.create(model=name, input=[bare, full])
    np.testing.assert_allclose(vectors(response), np.stack([reference["texts"][0]] * 2), atol=1e-6)
    assert response.usage.prompt_tokens == 2 * len(full)
    one = client.embeddings.create(model=name, input=bare)
    np.testing.assert_allclose(vectors(one)[0], reference["texts"][0], atol=1e-6)


def test_token_ids_outside_the_vocabulary_are_refused(client, name, tokenizer):
    """tiktoken ids (what LangChain sends by default) run past a small vocabulary."""
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=name, input=[[tokenizer.get_vocab_size() + 100_000]])
    assert info.value.body["param"] == "input"
    assert "check_embedding_ctx_length=False" in info.value.message


def test_dimensions_refused_for_a_model_not_trained_for_it(client, name, reference):
    full = reference["texts"].shape[1]
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=name, input=TEXTS[0], dimensions=full // 2)
    assert info.value.body["param"] == "dimensions" and info.value.body["type"] == "invalid_request_error"
    assert "not trained to be cut" in info.value.message and "matryoshka_dimensions" in info.value.message
    same = client.embeddings.create(model=name, input=TEXTS[0], dimensions=full)
    np.testing.assert_allclose(vectors(same)[0], reference["texts"][0], atol=1e-6)


def test_unknown_model_is_a_404_naming_the_served_one(client, name):
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="gpt-nope", input="a cat")
    assert info.value.body["code"] == "model_not_found" and info.value.body["param"] == "model"
    assert repr(name) in info.value.message


def test_models_list_and_retrieve(client, name, reference):
    listed = client.models.list()
    assert [m.id for m in listed.data] == [name]
    card = client.models.retrieve(name)
    assert card.id == name and card.object == "model" and card.owned_by == "mmship"
    assert card.model_extra["dimensions"] == reference["texts"].shape[1]
    assert card.model_extra["matryoshka_dimensions"] == [] and card.model_extra["modalities"] == ["image", "text"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_wrong_key_is_openais_401(server, name):
    with openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as info:
            stranger.embeddings.create(model=name, input="a cat")
    assert info.value.body["code"] == "invalid_api_key"


def test_every_layer_answers_openais_error_object(server, name, client):
    """Body too large (the guard), unknown field and broken JSON (the codec), an unknown path
    and a wrong method (the router), too many items (the operation)."""
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model=name, input=["word " * 300_000])
    assert info.value.status_code == 413 and info.value.body["code"] == "request_too_large"
    cases = [
        (httpx.post, "/v1/embeddings", {"json": {"model": name, "inputs": "typo"}}, 400, "inputs"),
        (httpx.post, "/v1/embeddings", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, None),
        (httpx.post, "/v1/embeddings", {"json": {"model": name, "input": ["a"] * 9}}, 400, "input"),
        (httpx.post, "/v1/embeddings", {"json": {"model": name, "input": []}}, 400, "input"),
        (httpx.post, "/v1/embeddings", {"json": {"model": name, "input": [{"text": "a", "image": data_uri(CAT)}]}}, 400, "input"),
        (httpx.get, "/v1/nothing", {}, 404, None),
        (httpx.get, "/v1/embeddings", {}, 405, None),
    ]
    for method, path, kwargs, status, param in cases:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        response = method(f"{server}{path}", headers=headers, **kwargs)
        assert response.status_code == status, (path, response.text)
        error = openai_error_body(response)
        assert error["param"] == param and error["message"], (path, error)
    plain = httpx.post(f"{server}/embed", json={"texts": "not a list"}, headers=AUTH)
    assert plain.status_code == 400 and isinstance(plain.json()["error"], str), "other routes keep their shape"
    assert httpx.get(f"{server}/v2/health/ready").status_code == 200


def test_image_urls_are_refused_unless_the_operator_allows_them(client, name):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=name, input=["https://example.com/cat.jpg"], extra_body={"modality": "image"})
    assert "--allow-url-fetch" in info.value.message and info.value.body["param"] == "input"


def test_langchain_openai_embeddings(server, name, reference):
    """LangChain's OpenAIEmbeddings with check_embedding_ctx_length=False sends the texts."""
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model=name, base_url=f"{server}/v1", api_key=KEY, check_embedding_ctx_length=False, max_retries=0
    )
    np.testing.assert_allclose(np.array(embeddings.embed_documents(TEXTS[:2])), reference["texts"][:2], atol=1e-6)
    np.testing.assert_allclose(np.array(embeddings.embed_query(TEXTS[2])), reference["texts"][2], atol=1e-6)


# --- a model trained for truncation ----------------------------------------------------

MATRYOSHKA = [8, 16]


@pytest.fixture(scope="module")
def matryoshka_bundle(tmp_path_factory) -> Bundle:
    """The tiny CLIP whose config.json declares matryoshka_dimensions (as jina-clip-v2's does)."""
    from tests.helpers.bundles import build_bundle
    from tests.helpers.tiny_models import make_tiny_clip

    folder = make_tiny_clip(tmp_path_factory.mktemp("matryoshka-clip"), matryoshka_dimensions=MATRYOSHKA)
    return Bundle.load(build_bundle(folder, tmp_path_factory.mktemp("bundles") / "matryoshka", precisions=("fp32",)))


def test_dimensions_cut_and_renormalise_where_the_model_allows_it(matryoshka_bundle):
    name = matryoshka_bundle.manifest.name
    with running_server(matryoshka_bundle.root, precision="fp32", max_delay_ms=5) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
            full = vectors(client.embeddings.create(model=name, input=TEXTS))
            for size in MATRYOSHKA:
                cut = vectors(client.embeddings.create(model=name, input=TEXTS, dimensions=size))
                expected = full[:, :size] / np.linalg.norm(full[:, :size], axis=1, keepdims=True)
                np.testing.assert_allclose(cut, expected, atol=1e-6)
                np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)
            with pytest.raises(openai.BadRequestError) as info:
                client.embeddings.create(model=name, input=TEXTS, dimensions=12)
            assert "Matryoshka sizes [8, 16]" in info.value.message
            assert client.models.retrieve(name).model_extra["matryoshka_dimensions"] == MATRYOSHKA


def test_mmships_client_speaks_the_openai_codec(server, name, reference):
    from mmship.client import Client, ServerError
    from mmship.core.payload import EmbedItem, ItemEmbeddings, PayloadInputs

    with Client(server, api_key=KEY) as client:
        items = [EmbedItem.image(CAT), EmbedItem.text(TEXTS[0])]
        answer = client.call(PayloadInputs(items=items), "openai")
        assert isinstance(answer, ItemEmbeddings) and answer.model == name and answer.prompt_tokens > 0
        np.testing.assert_allclose(answer.embeddings, np.stack([reference["images"][0], reference["texts"][0]]), atol=1e-6)
        with pytest.raises(ServerError) as info:
            client.call(PayloadInputs(texts=["a"], model="nope"), "openai")
        assert info.value.status == 404 and "the model 'nope' does not exist here" in info.value.message
    schema = httpx.get(f"{server}/openapi.json", headers=AUTH)
    assert schema.status_code == 200 and "/v1/embeddings" in schema.json()["paths"]
