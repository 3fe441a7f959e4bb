/* The API reference page: Swagger UI (app/static/vendor/swagger-ui, vendored from npm by `make vendor`)
 * on the OpenAPI document named in #swagger-ui's data-spec-url, fetched with the page's session.
 * In a file, not inline, because the Content-Security-Policy allows no inline script. No validator
 * badge: it would call validator.swagger.io, and nothing here leaves the server.
 * #swagger-ui gets data-state="ready" (or "error") once the document is shown, for people and tests. */
(function () {
  'use strict';
  var node = document.getElementById('swagger-ui');
  if (!node || typeof window.SwaggerUIBundle !== 'function') {
    if (node) { node.setAttribute('data-state', 'error'); }
    return;
  }
  window.SwaggerUIBundle({
    url: node.getAttribute('data-spec-url'),
    domNode: node,
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    onComplete: function () { node.setAttribute('data-state', 'ready'); }
  });
}());
