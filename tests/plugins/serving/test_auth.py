"""Authentication: no setting silently opens the server, and everything but the health
probes sits behind the key when one is set."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from mmship.core.cli.app import main
from mmship.serving.settings import ServerSettings
from tests.helpers.servers import running_server

KEY = "k3y-for-tests-0123456789"


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("", "empty"),  # --api-key "$UNSET_VAR": this used to turn auth off on 0.0.0.0
        ("short", "5 characters"),
        ("x" * 5000, "5000 characters"),
        ("has a space inside it!!", "printable ASCII"),
        ("newline\ninside-the-key-0123", "printable ASCII"),
        ("ключ-не-ascii-0123456789", "printable ASCII"),
    ],
    ids=["empty", "short", "huge", "space", "newline", "non-ascii"],
)
def test_unusable_keys_are_refused_by_the_settings_without_echoing_them(key, words):
    with pytest.raises(ValidationError) as info:
        ServerSettings(host="0.0.0.0", api_key=key)
    assert words in str(info.value)
    if key:
        assert key not in str(info.value)


def test_non_loopback_bind_needs_a_key():
    from mmship.core.errors import MmshipError

    with pytest.raises(MmshipError, match="API key"):
        ServerSettings(host="0.0.0.0").check_safe()
    ServerSettings(host="0.0.0.0", api_key=KEY).check_safe()
    ServerSettings(host="0.0.0.0", insecure=True).check_safe()
    ServerSettings(host="127.0.0.1").check_safe()


@pytest.mark.parametrize("key", ["", "short"])
def test_serve_cli_refuses_an_empty_or_short_key_before_loading_anything(tmp_path, capsys, key):
    code = main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0", "--api-key", key])
    err = capsys.readouterr().err
    assert code == 1
    assert "API key" in err and "token_urlsafe" in err
    assert "no-bundle" not in err, "the key is checked before the bundle is read"


def test_serve_cli_refuses_settings_that_could_never_serve_a_request(tmp_path, capsys):
    code = main(["serve", str(tmp_path / "no-bundle"), "--max-items", "512", "--max-queue", "256"])
    err = capsys.readouterr().err
    assert code == 1 and "max_queue_rows" in err and "--max-queue" in err


@pytest.fixture(scope="module")
def keyed(tiny_clip_bundle):
    with running_server(tiny_clip_bundle, precision="int8", api_key=KEY) as url:
        yield url


@pytest.mark.network
@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc", "/metrics", "/v2", "/docs/oauth2-redirect"])
def test_docs_and_metadata_need_the_key(keyed, path):
    denied = httpx.get(f"{keyed}{path}")
    assert denied.status_code == 401 and "Bearer" in denied.json()["error"]
    assert KEY not in denied.text
    allowed = httpx.get(f"{keyed}{path}", headers={"Authorization": f"Bearer {KEY}"})
    assert allowed.status_code in (200, 404) and allowed.status_code != 401


@pytest.mark.network
def test_probes_stay_open_and_inference_needs_the_key(keyed):
    assert httpx.get(f"{keyed}/v2/health/live").status_code == 200
    assert httpx.get(f"{keyed}/v2/health/ready").status_code == 200
    assert httpx.get(f"{keyed}/v2/health/../../embed").status_code in (401, 404)
    denied = httpx.post(f"{keyed}/embed", json={"texts": ["x"]}, headers={"Authorization": "Bearer " + KEY[:-1]})
    assert denied.status_code == 401
    allowed = httpx.post(f"{keyed}/embed", json={"texts": ["x"]}, headers={"Authorization": f"Bearer {KEY}"})
    assert allowed.status_code == 200


@pytest.mark.network
@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/embed"])
def test_a_header_byte_0xff_is_no_server_error(keyed, path):
    headers = [(b"x-junk", b"\xff\xfe"), (b"authorization", b"Bearer \xff" + KEY.encode())]
    response = httpx.request("GET" if "health" in path else "POST", f"{keyed}{path}", headers=headers, content=b"{}")
    assert response.status_code in ((200,) if "health" in path else (401,)), response.text
    good = httpx.post(f"{keyed}/embed", json={"texts": ["x"]}, headers=[(b"authorization", f"Bearer {KEY}".encode()), (b"x-junk", b"\xff")])
    assert good.status_code == 200
