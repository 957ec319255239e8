"""A live client's requests past the SDK (``harness.run._client``'s direct path, over ``harness.record._network``)
answer, fail and record exactly as the SDK over httpx2's own network did.

Three ways to send the same request to the same server: the SDK over httpx2's own transport (how every live call
went before issue 14; recorded here the way ``harness.record._transport`` recorded then), the SDK over the new
network (a client's first request), and the direct path (every later one). Each answer is compared: the classified
result (all but the measured latency), the interaction recorded (all but the latency header), the request the server
received.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness.load._evals import Endpoint
from harness.record import _cassettes as cassettes
from harness.record._cassettes import LATENCY_HEADER, TRANSIENT_STATUSES, RecordMode, sent
from harness.record._network import KEEPALIVE_S, Network
from harness.record._transport import record_answer
from harness.run import _client as client
from tests.fakeserver import FakeOpenAI, Reply, completion, streamed

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Ça va ? 🙂"}], "temperature": 0.2}
WIRE = {"content-encoding", "content-length", "transfer-encoding"}


class _OldTransport(httpx2.BaseTransport):
    """The SDK's transport before issue 14, as far as what it answered and recorded goes: httpx2's own network, the
    answer recorded (unless transient) with the wire headers dropped and its latency added."""

    def __init__(self) -> None:
        self._network = httpx2.HTTPTransport(trust_env=False)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        cassette, sample = cassettes.current()
        body = request.read()
        live = self._network.handle_request(request)
        try:
            content = live.read()
        finally:
            live.close()
        headers = [(k, v) for k, v in live.headers.multi_items() if k.lower() not in WIRE]
        headers.append((LATENCY_HEADER, "1.0"))
        if live.status_code not in TRANSIENT_STATUSES:
            answer = (live.status_code, live.reason_phrase, headers, content)
            record_answer(cassette, cassette.key_of(body), sample, request, answer)
        return httpx2.Response(live.status_code, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._network.close()


def _old_client(endpoint: Endpoint) -> Any:
    import openai

    http = httpx2.Client(transport=_OldTransport(), timeout=endpoint.timeout_s, trust_env=False)
    return openai.OpenAI(api_key="local-needs-no-key", base_url=endpoint.base_url, max_retries=0, http_client=http)


def _sent(api: Any, tmp: Path, name: str, *, direct: bool | None) -> tuple[client.CallResult, list[Any]]:
    """One call through ``api`` (``direct``: past the SDK; False: through it; None: an old client), its result
    without the latency, and what its cassette recorded without the latency and date headers."""
    transport = client._TRANSPORTS.get(api)
    if transport is not None and not direct:
        transport.template = None  # the SDK sends it, and teaches the transport its template again
    assert direct is None or (transport is not None and (transport.template is not None) == bool(direct))
    cassette = cassettes.Cassette(tmp / f"{name}.yaml", RecordMode.ALL)
    with cassettes.playing(cassette, 0):
        result = client.call(api, BODY)
    cassette.close()
    for interaction in cassette.data:  # what differs from one send to the next
        interaction["response"]["headers"].pop(LATENCY_HEADER, None)
        interaction["response"]["headers"].pop("date", None)
    return dataclasses.replace(result, latency_ms=None), cassette.data


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI) -> Endpoint:
    return Endpoint.parse({"base_url": fake_openai.base_url, "timeout_s": 0.5, "max_retries": 0})


def _three_ways(fake_openai: FakeOpenAI, endpoint: Endpoint, reply: Reply, tmp: Path) -> list[Any]:
    fake_openai.respond = lambda body: reply
    new = client.make_client(endpoint, replay=False)
    old = _old_client(endpoint)
    try:
        seen = [_sent(old, tmp, "old", direct=None), _sent(new, tmp, "sdk", direct=False)]
        seen.append(_sent(new, tmp, "direct", direct=True))
    finally:
        new.close()
        old.close()
    return seen


REPLIES = {
    "200": Reply(body=completion("Oui !"), headers={"x-ratelimit-remaining-requests": "99 ", "x-request-id": "r1"}),
    "200 latin-1": Reply(
        body='{"choices": [{"message": {"content": "caf\xe9"}}]}'.encode("latin-1"),
        headers={"content-type": "application/json; charset=latin-1"},
    ),
    "200 gzip": Reply(
        body=gzip.compress(json.dumps(completion("zipped")).encode()), headers={"content-encoding": "gzip"}
    ),
    "200 not JSON": Reply(body="<html>oops</html>", headers={"content-type": "text/html"}),
    "200 no choices": Reply(body={"object": "chat.completion", "choices": []}),
    "400": Reply(400, {"error": {"message": "bad temperature", "type": "invalid_request_error"}}),
    "401": Reply(401, {"error": {"message": "Incorrect API key provided: sk-abc…", "code": "invalid_api_key"}}),
    "404": Reply(404, {"error": {"message": "The model does not exist"}}),
    "429": Reply(429, {"error": {"message": "Rate limit reached"}}, {"retry-after": "1", "retry-after-ms": "900"}),
    "500": Reply(500, "upstream exploded"),
    "503": Reply(503, {"error": {"message": "overloaded"}}),
    "302": Reply(302, "", {"location": "https://example.invalid/"}),
    "cut short": Reply(events=["data: {}\n\n"], cut=True, headers={"content-type": "application/json"}),
    "timeout": Reply(events=["data: {}\n\n"], gap_s=0.8, headers={"content-type": "application/json"}),
}


@pytest.mark.parametrize("case", list(REPLIES))
def test_the_direct_path_answers_fails_and_records_as_the_sdk_over_httpx2_did(
    case: str, fake_openai: FakeOpenAI, endpoint: Endpoint, tmp_path: Path
) -> None:
    (old, old_kept), (sdk, sdk_kept), (direct, direct_kept) = _three_ways(
        fake_openai, endpoint, REPLIES[case], tmp_path
    )
    assert sdk == old and direct == old
    assert sdk_kept == old_kept and direct_kept == old_kept
    sent = fake_openai.chat_requests
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]  # the same headers and body each time
    if case == "200":
        assert old.response is not None and old.response["choices"][0]["message"]["content"] == "Oui !"
        assert old.headers == {"x-ratelimit-remaining-requests": "99"}
        assert len(old_kept) == 1 and old_kept[0]["request"]["headers"] == {
            "accept": ["application/json"],
            "content-type": ["application/json"],
        }
    if case == "timeout":
        assert old.error == client.ErrorKind.TIMEOUT and old.message == "Request timed out."
    if case == "429":
        assert old.error == client.ErrorKind.RATE_LIMITED and old.headers["retry-after"] == "1" and not old_kept


def test_a_refused_connection_is_unreachable_either_way(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    endpoint = Endpoint.parse({"base_url": f"http://127.0.0.1:{port}/v1", "timeout_s": 2})
    new, old = client.make_client(endpoint, replay=False), _old_client(endpoint)
    results = [_sent(old, tmp_path, "old", direct=None)[0], _sent(new, tmp_path, "sdk", direct=False)[0]]
    results.append(_sent(new, tmp_path, "direct", direct=True)[0])
    assert results[0] == results[1] == results[2]
    assert results[0].error == client.ErrorKind.CONNECTION and results[0].unreachable
    assert results[0].message == "Connection error."


def test_the_body_sent_past_the_sdk_is_the_bytes_the_sdk_sends() -> None:
    from openai._utils._json import openapi_dumps

    bodies = [BODY, {"model": "m", "messages": [], "stop": ["\n", "é"], "n": 1, "logit_bias": {"50256": -100.0}}]
    for body in bodies:
        assert sent(body, allow_nan=False) == sent(body) == openapi_dumps(body)
    nan = {"model": "m", "messages": [], "temperature": float("nan")}
    with pytest.raises(ValueError):
        openapi_dumps(nan)
    with pytest.raises(ValueError):  # sent as the SDK would refuse to send it
        sent(nan, allow_nan=False)
    assert sent(nan) == b'{"model":"m","messages":[],"temperature":NaN}'  # a cassette's key of it never raises


# ---------------------------------------------------------------------------------------------------- the network


@pytest.fixture
def slow_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(lambda body: streamed(["a", "b"], gap_s=0.2)) as server:
        yield server


def _post(network: Network, base_url: str, deadline_s: float = 5.0) -> int:
    host = base_url.split("//")[1].split("/")[0]
    headers = [("host", host), ("content-type", "application/json")]
    body = json.dumps(BODY).encode()
    return network.send("POST", base_url + "/chat/completions", headers, body, time.monotonic() + deadline_s).status


def _idle(network: Network, origin: Any) -> list[Any]:
    return [sock for sock, _ in network._idle.get(origin, [])]


def test_connections_are_kept_alive_and_at_most_idle_of_them_are_kept(slow_server: FakeOpenAI) -> None:
    network = Network(idle=2)
    assert _post(network, slow_server.base_url) == 200
    ((origin, idle),) = network._idle.items()
    first = idle[0][0]
    assert _post(network, slow_server.base_url) == 200 and _idle(network, origin) == [first]  # the same one again
    threads = [threading.Thread(target=_post, args=(network, slow_server.base_url)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(_idle(network, origin)) == 2  # four were open at once; two kept
    network.close()
    assert not network._idle


def test_an_idle_connection_the_server_closed_or_kept_too_long_is_not_used_again(fake_openai: FakeOpenAI) -> None:
    network = Network(idle=4)
    _post(network, fake_openai.base_url)
    ((origin, idle),) = network._idle.items()
    stale = idle[0][0]
    stale.shutdown(socket.SHUT_RD)  # type: ignore[attr-defined]  # a socket  # reads as a connection the server closed: readable, at its end
    assert _post(network, fake_openai.base_url) == 200
    assert _idle(network, origin) and _idle(network, origin)[0] is not stale
    idle = network._idle[origin]
    idle[0] = (idle[0][0], idle[0][1] - KEEPALIVE_S)  # idle as long as a connection is kept: not used again
    old = idle[0][0]
    assert _post(network, fake_openai.base_url) == 200 and _idle(network, origin)[0] is not old
    fake_openai.respond = lambda body: Reply(body=completion("bye"), headers={"connection": "close"})
    network.close()
    _post(network, fake_openai.base_url)
    assert not _idle(network, origin)  # the server said it closes: not kept
    network.close()


def test_a_call_has_one_deadline_however_its_body_trickles_in(slow_server: FakeOpenAI) -> None:
    network = Network(idle=1)
    # six pieces 0.2 s apart: every read is well within 0.5 s, the whole is not
    slow_server.respond = lambda body: streamed(["a", "b", "c"], gap_s=0.2)
    with pytest.raises(httpx2.ReadTimeout):
        _post(network, slow_server.base_url, deadline_s=0.5)
    assert _post(network, slow_server.base_url, deadline_s=5.0) == 200
    network.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[FakeOpenAI, Path]]:
    """The fake server behind TLS, with a certificate for 127.0.0.1 made here (openssl's command line)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate with")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = FakeOpenAI(lambda body: streamed(["a", "b", "c"], gap_s=0.2))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server._httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a client gone
    with server:
        yield server, cert


def test_tls_connections_check_the_certificate_are_kept_alive_and_keep_the_deadline(
    tls_server: tuple[FakeOpenAI, Path],
) -> None:
    server, cert = tls_server
    url = server.base_url.replace("http://", "https://")
    network = Network(idle=2, tls=ssl.create_default_context(cafile=str(cert)))
    assert _post(network, url) == 200
    ((origin, idle),) = network._idle.items()
    first = idle[0][0]
    assert origin[0] == "https" and isinstance(first, ssl.SSLSocket)
    assert _post(network, url) == 200 and _idle(network, origin) == [first]
    with pytest.raises(httpx2.ReadTimeout):
        _post(network, url, deadline_s=0.5)  # every read within 0.5 s, the whole not
    network.close()
    untrusting = Network(idle=1)  # the CA bundle's: this certificate is signed by no one it knows
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post(untrusting, url)
    untrusting.close()
