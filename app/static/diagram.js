/* The deployed diagram in the bpmn-js navigated viewer (pan with the mouse, zoom with the wheel; the
 * bpmn.io watermark stays, as its licence asks). Everything to draw comes from the page itself: the
 * JSON in #diagram-data, rendered by the server (labels already translated). Two modes:
 *  - "procedure": per element, complaints waiting / overdue / median time as overlays and a colour
 *    scale (markers load-1..load-4, has-overdue); the side panel shows the documentation of the
 *    element under the cursor, or of the one clicked (the server rendered one hidden section each).
 *  - "complaint": one complaint's path: markers done, current, missed, deadline-open on elements,
 *    taken on sequence flows, and a "×n" badge where it passed more than once.
 * #diagram gets data-state="ready" (or "error") when done, for people and tests alike. */
(function () {
  'use strict';

  function readData() {
    var node = document.getElementById('diagram-data');
    return node ? JSON.parse(node.textContent) : null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function fail(container, message) {
    container.setAttribute('data-state', 'error');
    var box = el('p', 'diagram-error', (container.getAttribute('data-error-text') || 'The diagram could not be shown.') + ' ' + message);
    container.appendChild(box);
  }

  function has(registry, id) { return !!registry.get(id); }

  // ---- procedure mode ------------------------------------------------------------------------------
  function procedure(viewer, data) {
    var canvas = viewer.get('canvas');
    var overlays = viewer.get('overlays');
    var registry = viewer.get('elementRegistry');
    var eventBus = viewer.get('eventBus');

    (data.overlays || []).forEach(function (row) {
      if (!has(registry, row.id)) { return; }
      if (row.level) { canvas.addMarker(row.id, 'load-' + row.level); }
      if (row.overdue) { canvas.addMarker(row.id, 'has-overdue'); }
      var badge = el('div', 'stat-badge' + (row.overdue ? ' stat-overdue' : ''));
      badge.setAttribute('data-testid', 'overlay-' + row.id);
      badge.setAttribute('data-waiting', row.waiting);
      badge.setAttribute('data-overdue', row.overdue);
      badge.setAttribute('data-completed', row.completed);
      var line = el('div', 'stat-now');
      line.appendChild(el('span', 'stat-waiting', row.waiting_text));
      if (row.overdue) { line.appendChild(el('span', 'stat-late', row.overdue_text)); }
      badge.appendChild(line);
      if (row.median_hours !== null && row.median_hours !== undefined) {
        badge.appendChild(el('div', 'stat-median', row.median_text));
      }
      badge.title = row.title || '';
      // Above the element (CSS moves it up by its own height), readable at any zoom: never drawn
      // smaller than its natural size.
      overlays.add(row.id, 'stats', { position: { top: -3, left: 0 }, scale: { min: 1 }, html: badge });
    });

    var panel = document.getElementById('element-docs');
    var intro = document.getElementById('element-doc-intro');
    var selected = null;

    function show(id) {
      var found = false;
      if (panel) {
        panel.querySelectorAll('.element-doc').forEach(function (section) {
          var match = section.getAttribute('data-element-id') === id;
          section.hidden = !match;
          found = found || match;
        });
      }
      if (intro) { intro.hidden = found; }
      if (panel) { panel.setAttribute('data-showing', found ? id : ''); }
    }

    function idOf(element) {
      if (!element) { return null; }
      var target = element.labelTarget || element;
      return target.businessObject && target.businessObject.id;
    }

    function select(id) {
      if (selected && has(registry, selected)) { canvas.removeMarker(selected, 'selected'); }
      selected = id && has(registry, id) ? id : null;
      if (selected) { canvas.addMarker(selected, 'selected'); }
      show(selected);
    }

    eventBus.on('element.hover', function (event) {
      var id = idOf(event.element);
      if (id && panel && panel.querySelector('.element-doc[data-element-id="' + CSS.escape(id) + '"]')) { show(id); }
    });
    eventBus.on('element.out', function () { show(selected); });
    eventBus.on('element.click', function (event) {
      var id = idOf(event.element);
      var root = canvas.getRootElement();
      select(event.element === root ? null : id);
    });

    if (data.select) {
      select(data.select);
      var element = registry.get(data.select);
      if (element && canvas.scrollToElement) { canvas.zoom(0.9); canvas.scrollToElement(element); }
    }
  }

  // ---- complaint mode ------------------------------------------------------------------------------
  function complaint(viewer, data) {
    var canvas = viewer.get('canvas');
    var overlays = viewer.get('overlays');
    var registry = viewer.get('elementRegistry');
    var marks = data.marks || {};
    var markers = { done: 'done', current: 'current', missed: 'missed', deadline_open: 'deadline-open',
                    taken: 'taken' };
    Object.keys(markers).forEach(function (key) {
      (marks[key] || []).forEach(function (id) {
        if (has(registry, id)) { canvas.addMarker(id, markers[key]); }
      });
    });
    Object.keys(marks.counts || {}).forEach(function (id) {
      if (!has(registry, id)) { return; }
      var badge = el('div', 'visit-badge', '\u00d7' + marks.counts[id]);
      badge.setAttribute('data-testid', 'visits-' + id);
      overlays.add(id, 'visits', { position: { top: -10, left: -10 }, scale: { min: 1 }, html: badge });
    });
  }

  function start() {
    var container = document.getElementById('diagram');
    var data = readData();
    if (!container || !data) { return; }
    if (typeof window.BpmnJS !== 'function') { fail(container, '(bpmn-js is missing: run make vendor)'); return; }
    var viewer = new window.BpmnJS({ container: container });
    window.procedureViewer = viewer;
    fetch(data.xml_url, { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        viewer.get('canvas').zoom('fit-viewport', 'auto');
        if (data.mode === 'procedure') { procedure(viewer, data); } else { complaint(viewer, data); }
        container.setAttribute('data-state', 'ready');
      })
      .catch(function (error) { fail(container, error && error.message ? error.message : String(error)); });

    document.querySelectorAll('[data-zoom]').forEach(function (button) {
      button.addEventListener('click', function () {
        var canvas = viewer.get('canvas');
        var how = button.getAttribute('data-zoom');
        if (how === 'fit') { canvas.zoom('fit-viewport', 'auto'); } else {
          canvas.zoom(canvas.zoom() * (how === 'in' ? 1.25 : 0.8));
        }
      });
    });
    document.querySelectorAll('form[data-autosubmit] select').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
}());
