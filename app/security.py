"""Browser hardening on every response: a strict Content-Security-Policy (no inline script or style,
nothing from another origin, never framed), nosniff, a Referrer-Policy, HSTS when configured, and
`Cache-Control: no-store` on everything but static files, since pages and API answers carry
customers' personal data that must not stay in a shared browser's or proxy's cache.

Behind a reverse proxy, TRUSTED_PROXIES=n makes the app believe the last n X-Forwarded-For /
X-Forwarded-Proto hops (werkzeug's ProxyFix); without it those headers are ignored, so a client
cannot forge its address to dodge the per-IP login limit."""
from flask import current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",          # bpmn-js draws its watermark logo from a data: URL
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",                       # frame-ancestors for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def init_app(app):
    """Trust the configured proxies and add the headers to every response."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    hsts = app.config.get("HSTS_SECONDS")

    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={int(hsts)}")
        if not is_static() and not is_cacheable():
            # Overrides any earlier caching header: only a view marked @cacheable keeps its own.
            response.headers["Cache-Control"] = "no-store"
        return response


def cacheable(view):
    """Mark a view whose answers never hold personal data (e.g. a deployed BPMN file, immutable): the
    Cache-Control header it sets is kept instead of no-store."""
    view.cacheable = True
    return view


def is_cacheable() -> bool:
    return bool(getattr(current_app.view_functions.get(request.endpoint or ""), "cacheable", False))


def is_static() -> bool:
    """Static assets (the app's and any blueprint's): no personal data, normal caching."""
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")
