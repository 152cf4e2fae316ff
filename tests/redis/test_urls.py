"""SOLLOL_REDIS_URL: every accepted form parsed in one place, passwords never shown."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import sollol_otel
from sollol_otel.cli import app
from sollol_otel.redis.urls import Topology, parse_redis_url, redact_url, scrub


def test_a_plain_url_names_one_server_and_its_database() -> None:
    address = parse_redis_url("redis://user:pw@redis.internal:6380/2")
    assert address.topology is Topology.SERVER and address.nodes == (("redis.internal", 6380),)
    assert address.options == {"username": "user", "password": "pw", "db": 2}


def test_rediss_turns_on_tls_with_redis_pys_query_options() -> None:
    address = parse_redis_url("rediss://localhost:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required")
    assert address.tls
    assert address.options["ssl_ca_certs"] == "/etc/ca.pem" and address.options["ssl_cert_reqs"] == "required"


def test_a_unix_socket_has_no_node_to_ask_about_a_cluster() -> None:
    address = parse_redis_url("unix:///run/redis.sock?db=1")
    assert address.nodes == () and address.options == {"db": 1, "unix_socket_path": "/run/redis.sock"}


def test_a_sentinel_url_lists_sentinels_with_their_default_port_the_service_and_db() -> None:
    address = parse_redis_url("redis+sentinel://:pw@s1:26380,s2,[::1]:26381/mymaster/3?sentinel_password=sp")
    assert address.topology is Topology.SENTINEL and address.service == "mymaster"
    assert address.nodes == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert address.options == {"password": "pw", "db": 3}
    assert address.sentinel_options == {"password": "sp"}


def test_rediss_sentinel_speaks_tls_to_the_sentinels_too() -> None:
    address = parse_redis_url("rediss+sentinel://s1/mymaster?ssl_ca_certs=/ca.pem")
    assert address.tls and address.sentinel_options == {"ssl": True, "ssl_ca_certs": "/ca.pem"}


def test_a_cluster_url_lists_its_seed_nodes() -> None:
    address = parse_redis_url("redis+cluster://n1:7000,n2")
    assert address.topology is Topology.CLUSTER and address.nodes == (("n1", 7000), ("n2", 6379))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://:secret@host", "unsupported Redis URL scheme"),
        ("redis+sentinel://:secret@s1:26379", "must name /<service>"),
        ("redis+cluster://:secret@n1/2", "only database 0"),
        ("redis+cluster://:secret@n1:port", "bad host"),
    ],
)
def test_a_bad_url_is_refused_without_showing_its_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_redis_url(url)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:secret@host", "redis://:***@host"),
        (
            "redis+sentinel://:secret@s1,s2/m?sentinel_password=secret",
            "redis+sentinel://:***@s1,s2/m?sentinel_password=***",
        ),
        ("rediss://host?password=secret&ssl_ca_certs=/ca", "rediss://host?password=***&ssl_ca_certs=/ca"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redaction_hides_every_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_error_text_loses_the_passwords_of_the_url() -> None:
    url = "redis+sentinel://:master-pw@s1/m?sentinel_password=sentinel-pw"
    assert scrub("AUTH master-pw failed; sentinel-pw too", url) == "AUTH *** failed; *** too"


def test_a_command_refuses_a_bad_url_at_once_without_showing_its_password() -> None:
    result = CliRunner().invoke(app, ["stats", "--redis-url", "redis+sentinel://:secret@s1:26379"])
    assert result.exit_code == 2
    assert "must name /<service>" in result.output and "secret" not in result.output


#: Pasted unencoded: `@` and `:` still parse (the last `@` ends the credentials); `/`, `?`, `#` cannot.
PASTED = ["AAA@BBB:CCC", "AAA/BBB@CCC", "AAA:BBB/CCC", "AAA?BBB@CCC", "AAA#BBB@CCC", "AAA@BBB/CCC?DDD"]


def pieces(password: str) -> list[str]:
    return [piece for piece in "".join(c if c.isalnum() else " " for c in password).split()]


@pytest.mark.parametrize("password", PASTED)
@pytest.mark.parametrize(
    "form",
    [
        "redis://user:{}@host:6379/0",
        "redis://:{}@host",
        "redis+sentinel://:{}@s1,s2/m",
        "unix://:{}@/run/r.sock",
    ],
)
def test_an_unencoded_password_is_hidden_whole_in_every_url_shape(password: str, form: str) -> None:
    url = form.format(password)
    shown = redact_url(url)
    assert "***@" in shown and not any(piece in shown for piece in pieces(password)), shown
    try:
        address = parse_redis_url(url)
    except ValueError as refused:
        assert "percent-encoded" in str(refused) and not any(p in str(refused) for p in pieces(password))
    else:
        assert address.options["password"] == password  # only `@` and `:` parse, and then exactly


@pytest.mark.parametrize("command", ["stats", "tail", "dashboard", "receiver"])
def test_every_command_refuses_a_url_it_cannot_parse_without_echoing_it(command: str) -> None:
    url = "redis://user:AAA/BBB@CCC@127.0.0.1:6379/0"
    result = CliRunner().invoke(app, [command, "--redis-url", url])
    assert result.exit_code == 2 and "cannot be parsed" in result.output
    assert not any(piece in result.output for piece in pieces("AAA/BBB@CCC")), result.output


def test_configure_refuses_a_url_it_cannot_parse_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="percent-encoded") as refused:
        sollol_otel.configure(redis_url="redis://:AAA#BBB@127.0.0.1:6379")
    assert "AAA" not in str(refused.value) and "BBB" not in str(refused.value)
