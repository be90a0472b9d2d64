"""A login kept out of everything stored or shown: URIs without their userinfo, and that userinfo moved into
MLflow's credential variables. Plain strings: nothing here imports MLflow."""

import os
import re
import urllib.parse

from mlp_sweep import names


def split_userinfo(uri: str) -> tuple[str, dict[str, str]]:
    """The URI without ``user:password@``, and that login as MLflow's credential variables.

    MLflow's client would accept the userinfo, but every place that stores or
    shows the URI (params, config.yaml, tags, messages) would then hold the
    password; the bare URI and $MLFLOW_TRACKING_USERNAME/PASSWORD reach the same
    server with the same login, and the variables travel to every job.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri, {}
    login = {names.ENV_USERNAME: urllib.parse.unquote(parts.username or "")}
    if parts.password is not None:
        login[names.ENV_PASSWORD] = urllib.parse.unquote(parts.password)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), login


def argv_without_userinfo(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line with every URI's userinfo taken out (``key=URI`` or a bare URI), and the login it held.

    For the entry point, which puts the login into MLflow's variables before
    Hydra records the command line in the sweep's folder (.hydra/, multirun.yaml).
    """
    bare, login = [], {}
    for arg in argv:
        key, sep, value = arg.partition("=") if "=" in arg.split("://", 1)[0] else ("", "", arg)
        value, found = split_userinfo(value)
        bare.append(key + sep + value)
        login |= found
    return bare, login


def credentials() -> dict[str, str]:
    """MLflow's credential variables that are set here, to hand to jobs in other processes."""
    return {k: os.environ[k] for k in names.CREDENTIAL_VARS if os.environ.get(k)}


def redact_text(text: str) -> str:
    """Any text with the userinfo of every URI in it masked (Hydra overrides, YAML, messages)."""
    return USERINFO.sub(r"\1***@", text)


USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


def redacted(uri: str) -> str:
    """The URI without any password or token it carries: ``https://***@host/...``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"
