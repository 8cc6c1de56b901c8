"""What ops/ ships: alert rules promtool accepts and whose unit tests pass, Grafana
dashboards that load in Grafana 10+ by construction, a compose profile that provisions
both, and every metric they name present in the `/metrics` of a real runbot."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from bots.tests.runtime_support import web_runbot

OPS = Path(settings.BASE_DIR) / "ops"
PROMETHEUS = OPS / "prometheus"
GRAFANA = OPS / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Series Prometheus makes itself, not the target.
SYNTHETIC = {"up"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "or", "and", "unless", "vector", "absent", "on", "ignoring",
    "group_left", "group_right", "bool", "offset", "label_values", "le", "inf", "nan",
}


def promtool() -> str:
    """promtool's path. CI installs it (scripts/install-promtool.sh, from `make test`);
    only a developer's machine without it, outside CI, skips."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: run scripts/install-promtool.sh")
        pytest.skip("promtool is not installed (bash scripts/install-promtool.sh)")
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    # Our own files through promtool, found on PATH by promtool().
    return subprocess.run(args, cwd=PROMETHEUS, capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)


# The YAML files are read with a few patterns (the project has no YAML parser, and
# promtool, which parses them for real, is the authority on their syntax).


def rule_expressions() -> list[str]:
    """Each `expr:` of alerts.yml, folded block scalars (`>-`) joined into one line."""
    lines = (PROMETHEUS / "alerts.yml").read_text().splitlines()
    exprs = []
    for n, line in enumerate(lines):
        match = re.match(r"^(\s*)expr: (.*)$", line)
        if match is None:
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value in (">-", ">", "|"):
            block = []
            for following in lines[n + 1:]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            value = " ".join(block)
        exprs.append(value)
    return exprs


def alert_names() -> set[str]:
    return set(re.findall(r"^\s*- alert: (\S+)\s*$", (PROMETHEUS / "alerts.yml").read_text(),
                          re.M))


def service_block(compose: str, name: str) -> str:
    match = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n)*)", compose, re.M)
    assert match is not None, f"no service {name} in compose.yaml"
    return match.group(1)


def dashboard_expressions() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        exprs += [v["definition"] for v in board["templating"]["list"] if v.get("definition")]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label values, label names in
    `by (...)`, ranges, functions and keywords taken out)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {name for name in names if name.lower() not in PROMQL_WORDS}


class TestAlertRules:
    def test_promtool_accepts_the_rules_and_the_prometheus_config(self):
        tool = promtool()
        checked = run(tool, "check", "rules", "alerts.yml")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        config = run(tool, "check", "config", "prometheus.yml")
        assert config.returncode == 0, config.stdout + config.stderr

    def test_the_rules_pass_their_unit_tests(self):
        tested = run(promtool(), "test", "rules", "alerts.test.yml")
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "SUCCESS" in tested.stdout

    def test_every_alert_has_a_unit_test_that_sees_it_fire(self):
        alerts = alert_names()
        tests = (PROMETHEUS / "alerts.test.yml").read_text()
        # `exp_alerts:` followed by list items (not `[]`): a case where the alert fires.
        fired = set(re.findall(r"alertname: (\S+)\n\s*exp_alerts:[ \t]*\n", tests))
        assert len(rule_expressions()) == len(alerts)
        assert alerts == fired
        # What the issue asks to be alerted on.
        assert {"NezukoBotDown", "NezukoUpdateLag", "NezukoTelegram429", "NezukoErrorRate",
                "NezukoRestrictionsOwed", "NezukoDatabaseUnavailable",
                "NezukoRedisUnavailable", "NezukoWebhookFailures"} <= alerts


class TestDashboards:
    def test_the_json_is_what_build_py_writes(self):
        spec = importlib.util.spec_from_file_location("grafana_build", GRAFANA / "build.py")
        build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(build)
        assert [p.stem for p in DASHBOARDS] == sorted(build.DASHBOARDS)
        for path in DASHBOARDS:
            assert path.read_text() == build.render(path.stem), f"run ops/grafana/build.py: {path}"

    @pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
    def test_it_loads_in_grafana_10_by_construction(self, path):
        board = json.loads(path.read_text())
        assert board["schemaVersion"] >= 38
        assert board["uid"] and board["title"] and board["panels"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        # Every datasource reference goes through the variable: no hard-coded uid.
        references = re.findall(r'"uid":\s*"([^"]*)"', path.read_text())
        assert set(references) - {board["uid"]} == {"${datasource}"}
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert target["expr"].strip()

    def test_the_four_dashboards_the_issue_names_exist(self):
        titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
        assert titles == {"Nezuko / Overview", "Nezuko / Engine",
                          "Nezuko / Telegram API and limiter", "Nezuko / Runtime and database"}


class TestComposeProfile:
    def test_monitoring_starts_prometheus_and_grafana_provisioned_from_ops(self):
        compose = (Path(settings.BASE_DIR) / "compose.yaml").read_text()
        profiled = set(re.findall(r"^  ([\w-]+):\n(?:    .*\n|\s*\n)*?    profiles: "
                                  r'\["monitoring"\]', compose, re.M))
        assert profiled == {"prometheus", "grafana"}
        prometheus = service_block(compose, "prometheus")
        grafana = service_block(compose, "grafana")
        assert "- ./ops/prometheus:/etc/prometheus:ro" in prometheus
        assert "- ./ops/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
        # The dashboard provider reads the directory the dashboards are mounted at.
        provider = (GRAFANA / "provisioning/dashboards/nezuko.yml").read_text()
        (path,) = re.findall(r"^\s*path: (\S+)$", provider, re.M)
        assert f"- ./ops/grafana/dashboards:{path}:ro" in grafana
        datasource = (GRAFANA / "provisioning/datasources/prometheus.yml").read_text()
        assert "type: prometheus" in datasource and "url: http://prometheus:9090" in datasource
        # Prometheus scrapes the runbot service, which exists.
        config = (PROMETHEUS / "prometheus.yml").read_text()
        assert 'targets: ["runbot:8000"]' in config
        assert service_block(compose, "runbot")


async def test_every_metric_the_dashboards_and_rules_name_is_in_metrics(scene, tmp_path):
    """A real runbot, some traffic through the emulator, then its real /metrics."""
    emu = scene.emulator
    async with web_runbot(scene, tmp_path, WEBHOOK_URL="", WEBHOOK_SECRET="") as (runbot, port):
        # Traffic: alice protects Cats, carol (no subscriber) joins and speaks, /help.
        since = len(emu.calls)
        emu.send_message(scene.group, scene.alice, "/protect @catnews")
        await emu.wait_for_call("sendMessage", since=since, timeout=30, chat_id=scene.group.id)
        emu.join(scene.group, scene.carol)
        emu.send_message(scene.group, scene.carol, "hello")
        await emu.wait_for_call("restrictChatMember", timeout=30, user_id=scene.carol.id)
        since = len(emu.calls)
        emu.send_message(scene.bot, scene.carol, "/help")
        await emu.wait_for_call("sendMessage", since=since, timeout=30, chat_id=scene.carol.id)
        async with aiohttp.ClientSession() as http:
            # A request to the webhook route (off here: 404) counts as an answer too.
            async with http.post(f"http://127.0.0.1:{port}/telegram/webhook/1") as response:
                assert response.status == 404
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                exposition = await response.text()
        await runbot.stop()

    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    declared = set()
    for family in families.values():
        declared.add(family.name)
        declared.update(sample.name for sample in family.samples)
        if family.type == "counter":
            declared.add(f"{family.name}_total")
        if family.type == "histogram":
            declared.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    named = set().union(*(metric_names(e) for e in rule_expressions() + dashboard_expressions()))
    # It should find what the dashboards are about (the extraction works)...
    assert {"nezuko_updates_total", "nezuko_handler_seconds_bucket",
            "nezuko_limiter_wait_seconds_bucket", "nezuko_errors_total"} <= named
    # ...and every one of them in what runbot serves.
    assert named - SYNTHETIC - declared == set()

    def samples(name: str) -> list:
        family = families[name]
        return [s for s in family.samples if s.name in (name, f"{name}_total", f"{name}_count")]

    bot = scene.bot.username
    # The traffic left series behind, labelled by the bot's username.
    for name in ("nezuko_updates", "nezuko_handled", "nezuko_commands", "nezuko_update_lag_seconds",
                 "nezuko_handler_seconds", "nezuko_telegram_calls", "nezuko_bot_up"):
        assert any(s.labels.get("bot") == bot and s.value > 0 for s in samples(name)), name
    assert any(s.labels == {"bot": bot, "window": "5m"} and s.value >= 1
               for s in samples("nezuko_active_users"))
    assert any(s.labels.get("window") == "5m" and s.value >= 1
               for s in samples("nezuko_active_groups"))
    assert [s.value for s in samples("nezuko_database_up")] == [1.0]
    assert any(s.labels == {"status": "404"} for s in samples("nezuko_webhook_requests"))
    # No Redis configured: no Redis gauge to alert on.
    assert samples("nezuko_redis_up") == []
