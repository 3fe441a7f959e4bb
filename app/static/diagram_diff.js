/* What a version changed, drawn on its diagram (the procedure page with ?changes=1): markers diff-added,
 * diff-changed and diff-moved (app/static/diagram_diff.css) and a small badge naming the change on each
 * element. The ids come from the page (#diagram-diff-data, computed on the server by
 * app/web/procedure/changes.py:diagram_diff); removed elements are listed on the page, linked to the
 * previous version's diagram where they are still drawn. Runs once app/static/diagram.js has drawn the
 * diagram (#diagram data-state="ready"), on the viewer it leaves in window.procedureViewer; then sets
 * data-diff="ready" on #diagram. */
(function () {
  'use strict';

  function mark(viewer, data) {
    var canvas = viewer.get('canvas');
    var overlays = viewer.get('overlays');
    var registry = viewer.get('elementRegistry');
    var labels = data.labels || {};
    ['added', 'changed', 'moved'].forEach(function (kind) {
      ((data.marks || {})[kind] || []).forEach(function (id) {
        var element = registry.get(id);
        if (!element) { return; }
        canvas.addMarker(id, 'diff-' + kind);
        if (element.waypoints) { return; }       // a flow: its colour says it
        var badge = document.createElement('div');
        badge.className = 'diff-badge diff-badge-' + kind;
        badge.textContent = labels[kind] || kind;
        badge.setAttribute('data-testid', 'diff-' + id);
        overlays.add(id, 'diff', { position: { bottom: 0, right: 0 }, scale: { min: 1 }, html: badge });
      });
    });
  }

  function start() {
    var container = document.getElementById('diagram');
    var node = document.getElementById('diagram-diff-data');
    if (!container || !node) { return; }
    var data = JSON.parse(node.textContent);
    var done = false;
    function run() {
      if (done || container.getAttribute('data-state') !== 'ready' || !window.procedureViewer) { return; }
      done = true;
      mark(window.procedureViewer, data);
      container.setAttribute('data-diff', 'ready');
    }
    new MutationObserver(run).observe(container, { attributes: true, attributeFilter: ['data-state'] });
    run();
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
}());
