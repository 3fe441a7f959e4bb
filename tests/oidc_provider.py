"""A small but real OpenID Connect provider for the tests, built on Authlib's server components: the
authorization-code grant with PKCE and OpenID Connect's code flow (ID tokens signed RS256 with a key made at
start), a discovery document, the JWKS, token and userinfo endpoints. `Provider(...).start()` serves it over
HTTP on 127.0.0.1 (werkzeug, in a thread); the app under test fetches its discovery document, keys and
tokens over real HTTP like from any provider.

Its "login" asks nothing: /authorize approves at once as `provider.account` (set by the test), or answers
access_denied when that is None. Its end-session endpoint (/logout, RP-initiated logout) keeps each query
in `logout_requests`, checks an id_token_hint's signature and audience, and sends the browser back (with the
state) to a post_logout_redirect_uri registered for the client.
ID tokens carry sub, name, preferred_username and email; the groups come only from the userinfo endpoint
(as with many providers). Knobs for what the app must refuse:
`signing_key` (sign ID tokens with another key, under the published key's id), `id_token_overrides` (e.g.
another iss, aud or nonce) and `discovery_overrides`. `authorize_requests` keeps each /authorize query."""
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import AuthorizationCodeGrant, ClientMixin, TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo, UserInfoEndpoint
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

KEY_ID = "test-key-1"


@dataclass
class Account:
    """Someone at the provider."""
    sub: str
    preferred_username: str
    name: str = ""
    email: str = ""
    groups: list = field(default_factory=list)

    def id_claims(self) -> dict:
        return {"sub": self.sub, "preferred_username": self.preferred_username, "name": self.name,
                "email": self.email}


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list

    @property
    def client_metadata(self):           # read by the userinfo endpoint: no signed userinfo
        return {}

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile", "email", "groups"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    account: Account
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


@dataclass
class Token(TokenMixin):
    access_token: str
    scope: str
    account: Account
    client: Client
    expires_at: float

    def check_client(self, client):
        return client.get_client_id() == self.client.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return int(self.expires_at - time.time())

    def is_expired(self):
        return time.time() >= self.expires_at

    def is_revoked(self):
        return False

    def get_user(self):
        return self.account

    def get_client(self):
        return self.client


class Provider:
    def __init__(self, client_id="complaints-app", client_secret=None,
                 redirect_uris=("http://localhost/login/sso/callback",),
                 post_logout_redirect_uris=("http://localhost/login",)):
        self.client = Client(client_id, client_secret or secrets.token_urlsafe(24), list(redirect_uris))
        self.post_logout_redirect_uris = list(post_logout_redirect_uris)
        self.logout_requests: list = []
        self.key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})
        self.signing_key = self.key
        self.account: Account | None = None
        self.id_token_overrides: dict = {}
        self.discovery_overrides: dict = {}
        self.authorize_requests: list = []
        self.codes: dict = {}
        self.tokens: dict = {}
        self._server = None
        self.issuer = None

    # ---- serving ----
    def start(self) -> "Provider":
        app = self._flask_app()
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def app_config(self, **more) -> dict:
        """The app's settings for this provider (as an operator would set them)."""
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": self.client.client_id,
                "OIDC_CLIENT_SECRET": self.client.client_secret, "OIDC_TIMEOUT_SECONDS": 3, **more}

    def _flask_app(self) -> Flask:
        app = Flask(__name__)
        server = AuthorizationServer(app, query_client=self._query_client, save_token=self._save_token)
        server.register_grant(self._code_grant(), [CodeChallenge(required=True), self._openid_code()])
        protector = ResourceProtector()
        protector.register_token_validator(self._bearer_validator())
        server.register_endpoint(self._userinfo_endpoint()(resource_protector=protector))

        @app.get("/.well-known/openid-configuration")
        def discovery():
            base = self.issuer
            return jsonify({
                "issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo", "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "grant_types_supported": ["authorization_code"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "groups"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "end_session_endpoint": f"{base}/logout?tenant=main",
                **self.discovery_overrides})

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            self.authorize_requests.append(request.args.to_dict())
            grant = server.get_consent_grant(end_user=self.account)
            return server.create_authorization_response(grant_user=self.account, grant=grant)

        @app.get("/logout")
        def end_session():
            self.logout_requests.append(request.args.to_dict())
            back, hint = request.args.get("post_logout_redirect_uri"), request.args.get("id_token_hint")
            if request.args.get("client_id") != self.client.client_id or back not in self.post_logout_redirect_uris:
                return "unknown client or post_logout_redirect_uri", 400
            if hint and self.client.client_id not in jwt.decode(hint, self.key).claims["aud"]:
                return "an ID token issued to another client", 400
            state = request.args.get("state")
            return redirect(f"{back}?{urlencode({'state': state})}" if state else back)

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            return server.create_endpoint_response("userinfo")

        return app

    # ---- what Authlib asks the provider ----
    def _query_client(self, client_id):
        return self.client if client_id == self.client.client_id else None

    def _save_token(self, token, req):
        self.tokens[token["access_token"]] = Token(token["access_token"], token.get("scope", ""), req.user,
                                                   req.client, time.time() + token.get("expires_in", 3600))

    def _code_grant(self):
        provider = self

        class Grant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                provider.codes[code] = Code(code, req.client.client_id, req.payload.redirect_uri, req.scope, req.user,
                                            data.get("nonce"), data.get("code_challenge"),
                                            data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):       # a code is good once
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.account

        return Grant

    def _openid_code(self):
        provider = self

        class OpenID(OpenIDCode):
            def resolve_client_private_key(self, client):
                return provider.signing_key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": KEY_ID}

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()], "exp": int(time.time()) + 300}

            def get_authorization_code_claims(self, authorization_code):
                return {**super().get_authorization_code_claims(authorization_code), **provider.id_token_overrides}

            def exists_nonce(self, nonce, req):
                return any(code.nonce == nonce for code in provider.codes.values())

            def generate_user_info(self, user, scope):
                return UserInfo(user.id_claims())

        return OpenID(require_nonce=True)

    def _bearer_validator(self):
        provider = self

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                return provider.tokens.get(token_string)

        return Validator()

    def _userinfo_endpoint(self):
        provider = self

        class Endpoint(UserInfoEndpoint):
            def get_issuer(self):
                return provider.issuer

            def generate_user_info(self, user, scope):
                return UserInfo({**user.id_claims(), "groups": list(user.groups)})

        return Endpoint
