"""The alert rules and the Prometheus configuration pass promtool (Debian's prometheus package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops import DEPLOY, RULES, rules

pytestmark = pytest.mark.unit
PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: scripts/test.sh installs Debian's prometheus package"
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_check():
    assert "SUCCESS" in promtool("check", "rules", str(RULES))


def test_rules_unit_tests_pass():
    assert "SUCCESS" in promtool("test", "rules", str(PROMETHEUS / "tests" / "alerts_test.yml"))


def test_the_issue_alerts_are_there_with_runbooks(tmp_path: Path):
    by_name = {rule["alert"]: rule for rule in rules()}
    thresholds = {"TalkfarmLLMTimeToFirstTokenHigh": "> 0.5", "TalkfarmASRLatencyHigh": "> 0.8",
                  "TalkfarmTTSRealTimeFactorHigh": "> 1.2", "TalkfarmAnimationBelowTargetFPS": "< 0.8 *",
                  "TalkfarmGPUMemoryHigh": "> 0.9", "TalkfarmJobFailureRateHigh": "> 0.05"}
    for name, threshold in thresholds.items():
        assert threshold in by_name[name]["expr"], name
    assert {"TalkfarmQueueGrowing", "TalkfarmWorkerDown", "TalkfarmDeadLetterQueueNotEmpty"} <= set(by_name)
    assert by_name["TalkfarmQueueGrowing"]["for"] == "5m"
    tested = (PROMETHEUS / "tests" / "alerts_test.yml").read_text()
    readme = (DEPLOY.parent / "README.md").read_text().lower()
    for name, rule in by_name.items():
        assert f"alertname: {name}" in tested, f"{name} has no promtool unit test"
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert f"#### {anchor}" in readme, f"{name}: no runbook heading in README.md"


def test_the_prometheus_configs(tmp_path: Path):
    # promtool resolves rule_files relative to the config: check copies that point at the repo's rules.
    compose = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose["rule_files"] = [str(RULES)]
    # The coordinator's scrape sends an operator key's token from a file (promtool checks that it exists).
    [coordinator] = [job for job in compose["scrape_configs"] if job["job_name"] == "talkfarm-coordinator"]
    assert coordinator["authorization"]["type"] == "Bearer"
    (tmp_path / "coordinator.token").write_text("tf_example\n")
    coordinator["authorization"]["credentials_file"] = str(tmp_path / "coordinator.token")
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(compose))
    assert "SUCCESS" in promtool("check", "config", str(tmp_path / "compose.yml"))
    # Debian's Prometheus is built without Kubernetes discovery: the k8s config is checked for shape only.
    k8s = yaml.safe_load((PROMETHEUS / "prometheus-k8s.yml").read_text())
    jobs = {job["job_name"]: job for job in k8s["scrape_configs"]}
    assert set(jobs) == {job["job_name"] for job in compose["scrape_configs"]}
    for job in jobs.values():
        assert job["kubernetes_sd_configs"][0]["role"] == "pod"
        assert any(r.get("action") == "keep" for r in job["relabel_configs"])
