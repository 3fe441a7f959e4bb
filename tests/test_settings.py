"""Settings from the environment: a value that cannot work stops the app with a message that names the setting
and says what it takes, instead of Python's own error (or, for a switch, a silent "off")."""
import os
import subprocess
import sys

import pytest

from app import config
from app.config import ROOT, SettingError


def test_numbers(monkeypatch):
    monkeypatch.delenv("DIGEST_HOUR", raising=False)
    assert config._number("DIGEST_HOUR", 8, most=23) == 8
    monkeypatch.setenv("DIGEST_HOUR", " 7 ")
    assert config._number("DIGEST_HOUR", 8, most=23) == 7
    for raw, message in (("25", "DIGEST_HOUR='25': must be from 0 to 23"), ("-1", "must be from 0 to 23"),
                         ("8am", "DIGEST_HOUR='8am': not a whole number"), ("8.5", "not a whole number")):
        monkeypatch.setenv("DIGEST_HOUR", raw)
        with pytest.raises(SettingError, match=message):
            config._number("DIGEST_HOUR", 8, most=23)
    monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", "2.5")
    assert config._number("SMTP_TIMEOUT_SECONDS", 10, float, least=0.1) == 2.5
    for raw, message in (("nan", "not a number"), ("inf", "not a number"), ("9" * 400, "not a number"),
                         ("0", "must be at least 0.1"), ("ten", "'ten': not a number")):
        monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", raw)
        with pytest.raises(SettingError, match=message):
            config._number("SMTP_TIMEOUT_SECONDS", 10, float, least=0.1)


def test_zero_where_it_means_something():
    done = start_with("C.OUTBOX_MAX_PER_SECOND, C.TRUSTED_PROXIES, C.HSTS_SECONDS",     # 0: no pacing, none, none
                      OUTBOX_MAX_PER_SECOND="0", TRUSTED_PROXIES="0", HSTS_SECONDS="0")
    assert done.returncode == 0 and done.stdout.split() == ["0.0", "0", "0"], done.stderr


def test_switches_take_the_usual_words_and_refuse_others(monkeypatch):
    for raw, value in (("1", True), ("true", True), ("Yes", True), ("on", True),
                       ("0", False), ("false", False), ("NO", False), ("off", False)):
        monkeypatch.setenv("OIDC_LINK_LOCAL_ACCOUNTS", raw)
        assert config._flag("OIDC_LINK_LOCAL_ACCOUNTS", False) is value
    monkeypatch.setenv("OIDC_LINK_LOCAL_ACCOUNTS", "2")
    with pytest.raises(SettingError, match=r"OIDC_LINK_LOCAL_ACCOUNTS='2': use 1 \(on\) or 0 \(off\)"):
        config._flag("OIDC_LINK_LOCAL_ACCOUNTS", False)
    monkeypatch.delenv("OIDC_LINK_LOCAL_ACCOUNTS")
    assert config._flag("OIDC_LINK_LOCAL_ACCOUNTS", False) is False


def test_choices(monkeypatch):
    monkeypatch.setenv("SPIFF_LOG_LEVEL", "info")
    assert config._choice("SPIFF_LOG_LEVEL", "WARNING", ("INFO", "WARNING")) == "INFO"
    monkeypatch.setenv("SPIFF_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingError, match="SPIFF_LOG_LEVEL='LOUD': must be one of INFO, WARNING"):
        config._choice("SPIFF_LOG_LEVEL", "WARNING", ("INFO", "WARNING"))


def start_with(shown="C.SPIFF_LOG_LEVEL, C.OIDC_LINK_LOCAL_ACCOUNTS, C.SMTP_PORT", **env):
    """A process that reads the settings as the app's do (gunicorn, the CLI, the scheduler) and prints `shown`."""
    return subprocess.run([sys.executable, "-c", f"from app.config import Config as C; print({shown})"],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_the_app_does_not_start_with_a_setting_that_cannot_work():
    done = start_with(SPIFF_LOG_LEVEL="debug", OIDC_LINK_LOCAL_ACCOUNTS="true", SMTP_PORT="2525")
    assert done.returncode == 0 and done.stdout.split() == ["DEBUG", "True", "2525"], done.stderr
    done = start_with("C.TOTP_REQUIRED_ROLES, C.SMTP_SECURITY", TOTP_REQUIRED_ROLES="admin, process_owner",
                      SMTP_SECURITY="SSL")
    assert done.returncode == 0 and done.stdout.split() == ["('admin',", "'process_owner')", "ssl"], done.stderr
    assert start_with("C.TOTP_REQUIRED_ROLES", TOTP_REQUIRED_ROLES="-").stdout.split() == ["()"]
    for name, raw, message in (
            ("SPIFF_LOG_LEVEL", "LOUD", "SPIFF_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
            ("SMTP_PORT", "smtp", "SMTP_PORT='smtp': not a whole number"),
            ("OIDC_LINK_LOCAL_ACCOUNTS", "ja", "OIDC_LINK_LOCAL_ACCOUNTS='ja': use 1 (on) or 0 (off)"),
            ("SMTP_SECURITY", "tls", "SMTP_SECURITY='tls': must be one of starttls, ssl, none"),
            ("TOTP_REQUIRED_ROLES", "admin,admn", "TOTP_REQUIRED_ROLES='admin,admn': no role admn (roles: "
             "customer_service, claims_specialist, management, head_office, training, measure_owner, compliance, "
             "process_owner, admin; - for none)")):
        done = start_with(**{name: raw})
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1] == f"app.config.SettingError: {message}"


def test_an_evidence_store_setting_that_names_no_class_is_refused_by_name():
    from app import create_app
    from app.config import TestConfig
    for setting in ("nope:X", "app.evidence.store:Nothing", "app.evidence.store"):
        with pytest.raises(SettingError, match=f"EVIDENCE_STORE='{setting}': names no store class"):
            create_app(TestConfig, EVIDENCE_STORE=setting, SQLALCHEMY_DATABASE_URI="sqlite://")
