"""The Authlib client of the insurer's OpenID Connect provider: one per app and settings, created on first
use; its discovery document and keys are fetched again after METADATA_MAX_AGE (and the keys at once when a
token names a key it does not know)."""
import time

from authlib.integrations.flask_client import OAuth
from flask import current_app

from ... import sso

METADATA_MAX_AGE = 3600        # seconds
NAME = "sso"                   # the client's name in Authlib (its state is kept in the session as _state_sso_…)


class IssuerMismatch(RuntimeError):
    """The discovery document names another issuer than OIDC_ISSUER (OpenID Connect Discovery 4.3)."""


def client(config: sso.Settings):
    """The client for these settings with the provider's discovery document loaded and checked."""
    cached = current_app.extensions.get("sso_client")
    if cached is None or cached[0] != config or \
            time.time() - cached[1].server_metadata.get("_loaded_at", time.time()) > METADATA_MAX_AGE:
        remote = OAuth(current_app._get_current_object()).register(
            NAME, client_id=config.client_id, client_secret=config.client_secret,
            server_metadata_url=config.discovery_url,
            client_kwargs={"scope": config.scopes, "code_challenge_method": "S256",
                           "default_timeout": config.timeout})
        cached = current_app.extensions["sso_client"] = (config, remote)
    remote = cached[1]
    issuer = remote.load_server_metadata().get("issuer")
    if issuer != config.issuer:
        current_app.extensions.pop("sso_client", None)
        raise IssuerMismatch(f"the provider's discovery document names the issuer {issuer!r}, "
                             f"OIDC_ISSUER is {config.issuer!r}")
    return remote


def end_session_endpoint(config: sso.Settings) -> str | None:
    """The provider's end-session endpoint (RP-initiated logout), None when its discovery document names
    none, or none at an https address (http only on this machine)."""
    endpoint = client(config).server_metadata.get("end_session_endpoint")
    if endpoint and not sso.secure_url(endpoint):
        current_app.logger.error("single sign-on: the provider's end_session_endpoint is not https; not used")
        return None
    return endpoint or None


def claims_options(config: sso.Settings) -> dict:
    """What the ID token must say besides its signature and nonce (Authlib checks only the issuer unless
    told): issued by our provider, to us, about someone."""
    return {"iss": {"essential": True, "value": config.issuer},
            "aud": {"essential": True, "value": config.client_id},
            "sub": {"essential": True}}
