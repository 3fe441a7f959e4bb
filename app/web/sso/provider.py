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


def logout_url(config: sso.Settings, back_to: str, locale: str, id_token: str | None) -> str | None:
    """Where the browser of a user who just logged out here goes so that the provider ends their session too
    (OpenID Connect RP-Initiated Logout, Authlib's create_logout_url): its end-session endpoint with the ID
    token of the login as a hint (when it was kept), our client id, the address to come back to and the
    user's language. None when the discovery document names no endpoint, or none at an https address."""
    remote = client(config)
    endpoint = remote.server_metadata.get("end_session_endpoint")
    if not endpoint:
        return None
    if not sso.secure_url(endpoint):
        current_app.logger.error("single sign-on: the provider's end_session_endpoint is not https; not used")
        return None
    return remote.create_logout_url(post_logout_redirect_uri=back_to, id_token_hint=id_token,
                                    client_id=config.client_id, ui_locales=locale)["url"]


def claims_options(config: sso.Settings) -> dict:
    """What the ID token must say besides its signature and nonce (Authlib checks only the issuer unless
    told): issued by our provider, to us, about someone."""
    return {"iss": {"essential": True, "value": config.issuer},
            "aud": {"essential": True, "value": config.client_id},
            "sub": {"essential": True}}
