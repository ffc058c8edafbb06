"""EmulatorConfig is the one source of the emulator's defaults: the CLI and the parts read it."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.cli import build_parser
from pipeline.cli.servers import EMULATOR_FLAGS
from pipeline.emulator.config import DEFAULTS, EmulatorConfig, help_of
from pipeline.emulator.server import _simulation_config
from pipeline.emulator.simulation.model import SimulationConfig
from pipeline.emulator.state.org import OrgSettings
from pipeline.emulator.state.ratelimit import RateLimitSettings
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig

FIELDS = {f.name for f in dataclasses.fields(EmulatorConfig)}


def test_every_emulator_flag_is_a_config_field_with_its_default() -> None:
    args = build_parser().parse_args(["emulator"])
    assert set(EMULATOR_FLAGS) <= FIELDS
    assert {name: getattr(args, name) for name in EMULATOR_FLAGS} == {
        name: getattr(DEFAULTS, name) for name in EMULATOR_FLAGS
    }


def test_emulator_flags_keep_their_names_and_types() -> None:
    args = build_parser().parse_args(
        ["emulator", "--port", "0", "--queues", "3", "--arrival-rate", "2.5", "--heartbeat-s",
         "0.5", "--socket-closing-delay-s", "60", "--token-lifetime-s", "120",
         "--bad-credentials-status", "400", "--rate-limit", "7", "--send-initial-state"]
    )  # fmt: skip
    config = EmulatorConfig(**{name: getattr(args, name) for name in EMULATOR_FLAGS})
    assert (config.port, config.queues, config.arrival_rate) == (0, 3, 2.5)
    assert (config.heartbeat_s, config.socket_closing_delay_s) == (0.5, 60.0)
    assert (config.token_lifetime_s, config.bad_credentials_status) == (120, 400)
    assert (config.rate_limit, config.send_initial_state) == (7, True)


def test_history_flags_reach_the_simulation() -> None:
    args = build_parser().parse_args(["emulator", "--history", "PT2H", "--history-budget-s", "1.5"])
    config = EmulatorConfig(**{name: getattr(args, name) for name in EMULATOR_FLAGS})
    assert (config.history, config.history_budget_s) == ("PT2H", 1.5)
    assert DEFAULTS.history == "PT24H"
    simulation = _simulation_config(config)
    assert (simulation.history_s, simulation.history_budget_s) == (7200, 1.5)


def test_the_cli_refuses_a_history_that_is_not_a_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--history", "2 hours"])
    assert "is not an ISO-8601 duration like PT24H" in capsys.readouterr().err


def test_the_cli_refuses_a_status_the_emulator_does_not_model() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--bad-credentials-status", "403"])


def test_every_field_has_help() -> None:
    assert all(help_of(name) for name in FIELDS)
    with pytest.raises(KeyError):
        help_of("bind")


def test_the_parts_take_their_shared_defaults_from_the_config() -> None:
    simulation = SimulationConfig()
    assert (simulation.queues, simulation.agents, simulation.seed) == (
        DEFAULTS.queues,
        DEFAULTS.agents,
        DEFAULTS.seed,
    )
    assert simulation.arrival_rate_per_queue_per_min == DEFAULTS.arrival_rate
    limits = RateLimitSettings()
    assert (limits.limit, limits.window_seconds) == (DEFAULTS.rate_limit, DEFAULTS.rate_window_s)
    assert OrgSettings().bad_client_status == DEFAULTS.bad_credentials_status
    client = OAuthClientConfig(ClientId("c"), "s")
    assert client.token_lifetime == DEFAULTS.token_lifetime_s


def test_the_client_secret_stays_out_of_repr() -> None:
    canary = "canary-secret-0451"
    assert canary not in repr(EmulatorConfig(client_secret=canary))
